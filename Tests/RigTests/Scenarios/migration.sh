#!/usr/bin/env bash
# Live migration between two sriovd daemons in the SR-IOV test VM
# (run.sh --pfs 3 --wire; see migration-lib.sh): daemon A owns PF 0, daemon B
# PF 1, all on one wire. The guest is a namespace with an active-backup bond
# of a VF (primary) and a veth (standby). The cycle (incoming, prepare,
# complete; A -> B, then back B -> A) runs in both topologies (the network
# on a third PF; on the source PF itself) with both guest bonds (default
# options; all_slaves_active 1), probes every 10 ms from before incoming to
# after complete in back-to-back windows. Then aborts, refusals, adapter
# failures and crashes. The results file has, per window, the probes sent,
# lost and the longest gap; the bond's active slave; API answers in files.
# scripts/bench/migration.sh prints the figures.
#
# usage (by run.sh): migration.sh [--1ms]
#   --1ms  also the 1 ms probes (baselines, plain unplug, every combination
#          again at 1 ms): for the benchmark, not for the test suite
set -euo pipefail
results="$RIG_OUT/results.txt"
: >"$results"
INTERVALS="0.01"
[ "${1:-}" = --1ms ] && INTERVALS="0.01 0.001"
. "$RIG_REPO/Tests/RigTests/Scenarios/migration-lib.sh"
# Every command, with a timestamp, to trace.log (for a step that hangs).
exec 9>>"$RIG_OUT/trace.log"
BASH_XTRACEFD=9
# EPOCHREALTIME, not date(1): a fork per traced line costs ~0.1 s in TCG.
PS4='+ $EPOCHREALTIME '
set -x
SECONDS=0
ms_tag() { [ "$1" = 0.01 ] && echo 10ms || echo 1ms; }

start_daemon A
start_daemon B
rig_wait_for "[ \"\$(cat /sys/bus/pci/devices/$pfA/sriov_numvfs)\" = 2 ] && [ \"\$(cat /sys/bus/pci/devices/$pfB/sriov_numvfs)\" = 2 ]" 60
migration_setup
probe_start setup 0.05; pause 0.5; probe_stop setup
[ "$(grep '^setup_lost=' "$results" | cut -d= -f2)" -lt "$(grep '^setup_sent=' "$results" | cut -d= -f2)" ] \
  || { ip -d link; bridge vlan show; ip netns exec guest cat /proc/net/bonding/bond0; rig_die "the standby path does not carry"; }

# --- 1. the guest gets its VF through daemon A -----------------------------
on A assign POST /v1/assignments "$(assign_body "$pfA")"
vfA=$(field assign vf)
say assign_status "$(cat "$RIG_OUT/assign.status")"
say assign_active "$( [ "$(active_slave)" = "$vfA" ] && echo vf || echo "$(active_slave)")"
say assign_vf_on_pf "$(vf_on "$pfA" "$vfA")"

# --- 2. baselines: no switch ------------------------------------------------
for iv in $INTERVALS; do
  probe_start "baseline_vf_$(ms_tag "$iv")" "$iv"; pause 2; probe_stop "baseline_vf_$(ms_tag "$iv")"
done

# --- 3. the cycle in every topology, with every bond, both ways ---------------
# cycle FROM TO TAG INTERVAL: incoming on TO, prepare on FROM, complete on TO,
# in back-to-back probe windows incoming_TAG (incoming and half a second with
# the guest still on FROM's VF), prepare_TAG, standby_TAG (half a second on
# the standby: the hypervisor's move) and complete_TAG (complete and 0.7 s).
cycle() {
  local from="$1" to="$2" tag="$3" iv="$4" from_pf_var="pf$1" to_pf_var="pf$2"
  window "incoming_$tag" "$iv"; pause 0.3
  on "$to" "incoming_$tag" POST /v1/vms/vm1/migration/incoming "$(incoming "${!to_pf_var}")"
  pause 0.5
  # Where the peer's bridge sends frames for the guest's MAC, while the
  # destination holds its VF (one entry: the port the guest is behind).
  say "fdb_incoming_$tag" "$(bridge fdb show br br0 | grep -i "$MAC" | cut -d' ' -f3 | tr '\n' ' ')"
  window "prepare_$tag" "$iv"; pause 0.3
  on "$from" "prepare_$tag" POST /v1/vms/vm1/migration/prepare
  window "standby_$tag" "$iv"
  say "prepared_active_$tag" "$(active_slave)"
  pause 0.3
  window "complete_$tag" "$iv"; pause 0.3
  on "$to" "complete_$tag" POST /v1/vms/vm1/migration/complete
  pause 0.7
  window_end "complete_$tag"
  say "completed_active_$tag" "$(active_slave)"
  on "$to" "assignment_$tag" GET /v1/assignments/vm1/net0
  ipvf "completed_pf_$tag" "${!to_pf_var}"
  on "$to" "show_$tag" GET /v1/vms/vm1/migration
  on "$from" "show_source_$tag" GET /v1/vms/vm1/migration
  on "$from" "source_held_$tag" GET "/v1/assignments?vm=vm1"
  say "cycle_$tag" "topology $TOPOLOGY, bond $BOND, $from -> $to, probes every ${iv}s"
  collect "incoming_$tag" "prepare_$tag" "standby_$tag" "complete_$tag"
}
# path TAG: half a second of probes where the guest now is (after a change of
# topology: the peer's MAC and the bridge's port are new).
path() { probe_start "path_$1" 0.01; probe_stop "path_$1"; }
for topo in i ii; do
  for BOND in default asa; do
    bond_options "$BOND"
    for iv in $INTERVALS; do
      suffix=$( [ "$iv" = 0.01 ] && echo "" || echo _1ms)
      [ "$topo" = i ] && topology i || topology ii A
      path "${topo}_${BOND}_ab$suffix"
      cycle A B "${topo}_${BOND}_ab$suffix" "$iv"
      [ "$topo" = i ] || { topology ii B; path "${topo}_${BOND}_ba$suffix"; }
      cycle B A "${topo}_${BOND}_ba$suffix" "$iv"
    done
  done
done
sctl_on A migration show vm1 >"$RIG_OUT/timeline_last.txt" 2>&1 || true  # A completed the last cycle (B -> A)
say prepare_answer_matches "$(py -c '
import json,sys; p=json.load(open(sys.argv[1]))["nics"]; i=json.load(open(sys.argv[2]))
p[0]["pf"]=i["nics"][0]["pf"]; print(p==i["nics"])' "$RIG_OUT/prepare_i_asa_ab.json" <(incoming "$pfB"))"
# What follows runs as the suite always did: the network on PF 2, the bond
# with all_slaves_active.
topology i
bond_options asa
BOND=asa
path after_cycles
say cycles_seconds "$SECONDS"

# --- 4. (a) a plain unplug with no preparation, as nova and KubeVirt do ----
for iv in $INTERVALS; do
  tag=$(ms_tag "$iv")
  vf=$(sctl_on A --json assignments --vm vm1 | py -c 'import json,sys; print(json.load(sys.stdin)["assignments"][0]["vf"])')
  probe_start "unplug_$tag" "$iv"
  echo "$vf" >/sys/bus/pci/drivers/igbvf/unbind
  pause 1.5
  probe_stop "unplug_$tag"
  on A "unplug_release_$tag" DELETE /v1/assignments/vm1/net0
  on A "unplug_reassign_$tag" POST /v1/assignments "$(assign_body "$pfA")"
done
say unplug_reassigned "$(cat "$RIG_OUT/unplug_reassign_10ms.status")"

# --- 5. abort on each side --------------------------------------------------
vf_before_abort=$(assigned_vf A)
on B abort_incoming POST /v1/vms/vm1/migration/incoming "$(incoming "$pfB")"
on A abort_prepare POST /v1/vms/vm1/migration/prepare
probe_start abort_10ms 0.01
on A abort_source POST /v1/vms/vm1/migration/abort
probe_stop abort_10ms
on B abort_destination POST /v1/vms/vm1/migration/abort
say abort_source_state "$(field abort_source state)"
say abort_destination_state "$(field abort_destination state)"
say abort_same_vf "$( [ "$(assigned_vf A)" = "$vf_before_abort" ] && echo yes || echo no)"
say abort_active "$(active_slave | grep -q '^0000:' && echo vf || active_slave)"
say abort_destination_free "$(sctl_on B assignments 2>&1 | head -n1)"

# --- 6. refused: no free VF on the destination, before the source is touched
on B fill_1 POST /v1/assignments '{"vm":"other","nic":"a","pf":"'"$pfB"'","driver":"vfio-pci"}'
on B fill_2 POST /v1/assignments '{"vm":"other","nic":"b","pf":"'"$pfB"'","driver":"vfio-pci"}'
on B refused POST /v1/vms/vm1/migration/incoming "$(incoming "$pfB")"
say refused_status "$(cat "$RIG_OUT/refused.status")"
say refused_reserved "$(sctl_on B assignments --vm vm1 2>&1 | head -n1)"
on B refused_show GET /v1/vms/vm1/migration
on B unfill_1 DELETE /v1/assignments/other/a
on B unfill_2 DELETE /v1/assignments/other/b
on B bad_field POST /v1/vms/vm1/migration/incoming '{"nics":[{"nic":"net0","pf":"'"$pfB"'","driver":"host","mac":"'"$MAC"'","colour":1}]}'
on B bad_failover POST /v1/vms/vm1/migration/incoming '{"nics":[{"nic":"net0","pf":"'"$pfB"'","driver":"host","mac":"'"$MAC"'","failover":{"adapter":"netns","namespace":"guest","bond":"bond0/x","standby":"veth-g"}}]}'

# --- 7. adapter failures in the middle ---------------------------------------
# prepare: the standby is no longer a slave of the bond: steering fails after
# the standby was brought up; rolled back, the guest stays on its VF.
ip netns exec guest ip link set veth-g nomaster
on A fail_prepare POST /v1/vms/vm1/migration/prepare
say fail_prepare_status "$(cat "$RIG_OUT/fail_prepare.status")"
on A fail_prepare_show GET /v1/vms/vm1/migration
say fail_prepare_state "$(field fail_prepare_show state)"
say fail_prepare_step "$(field fail_prepare_show error.step)"
say fail_prepare_active "$(active_slave | grep -q '^0000:' && echo vf || active_slave)"
say fail_prepare_assigned "$(sctl_on A --json assignment vm1 net0 | py -c 'import json,sys; print(json.load(sys.stdin)["state"])')"
ip netns exec guest sh -c 'ip link set veth-g down; ip link set veth-g master bond0'
rig_wait_for "ip netns exec guest grep -q 'Slave Interface: veth-g' /proc/net/bonding/bond0" 10 || true
# complete: the bond is gone when the VF is to be attached.
on B fail_incoming POST /v1/vms/vm1/migration/incoming "$(incoming "$pfB")"
on A fail_prepare2 POST /v1/vms/vm1/migration/prepare
ip netns exec guest ip link del bond0
on B fail_complete POST /v1/vms/vm1/migration/complete
say fail_complete_status "$(cat "$RIG_OUT/fail_complete.status")"
on B fail_complete_show GET /v1/vms/vm1/migration
say fail_complete_state "$(field fail_complete_show state)"
say fail_complete_step "$(field fail_complete_show error.step)"
say fail_complete_reserved "$(sctl_on B --json assignments --vm vm1 | py -c 'import json,sys; print(len(json.load(sys.stdin)["assignments"]))')"
# The guest's bond is back; B's reservation is released, A takes the guest back.
guest_bond asa
on B fail_abort_destination POST /v1/vms/vm1/migration/abort
on A fail_abort_source POST /v1/vms/vm1/migration/abort
say fail_abort_source_state "$(field fail_abort_source state)"
say fail_abort_active "$(active_slave | grep -q '^0000:' && echo vf || active_slave)"
probe_start after_failures_10ms 0.01; pause 1; probe_stop after_failures_10ms

# --- 8. SIGKILL during prepare (source) and during complete (destination) ---
on B crash_incoming POST /v1/vms/vm1/migration/incoming "$(incoming "$pfB")"
stop_daemon A
start_daemon A SRIOVD_TEST_CRASH_POINT=migration.prepare.detach
on A crash_prepare POST /v1/vms/vm1/migration/prepare
rc=0; wait "${DAEMON_PID[A]}" || rc=$?
say crash_prepare_exit "$rc"
say crash_prepare_active_before_restart "$(active_slave)"
start_daemon A
on A crash_prepare_show GET /v1/vms/vm1/migration
say crash_prepare_state "$(field crash_prepare_show state)"
say crash_prepare_active "$(active_slave | grep -q '^0000:' && echo vf || active_slave)"
vf=$(assigned_vf A)
say crash_prepare_vf_on_pf "$(vf_on "$pfA" "$vf")"
say crash_prepare_guest_on "$( [ "$(active_slave)" = "$vf" ] && echo assigned-vf || echo other)"
# Now a real prepare, then complete is killed after the VF was attached.
on A crash_prepare_again POST /v1/vms/vm1/migration/prepare
stop_daemon B
start_daemon B SRIOVD_TEST_CRASH_POINT=migration.complete.attach
on B crash_complete POST /v1/vms/vm1/migration/complete
rc=0; wait "${DAEMON_PID[B]}" || rc=$?
say crash_complete_exit "$rc"
start_daemon B
on B crash_complete_show GET /v1/vms/vm1/migration
say crash_complete_state "$(field crash_complete_show state)"
vf=$(assigned_vf B)
say crash_complete_guest_on "$( [ "$(active_slave)" = "$vf" ] && echo assigned-vf || echo "$(active_slave)")"
say crash_complete_vf_on_pf "$(vf_on "$pfB" "$vf")"
probe_start after_crash_10ms 0.01; pause 1; probe_stop after_crash_10ms
if [ "$(grep '^after_crash_10ms_lost=' "$results" | cut -d= -f2)" != 0 ]; then
  { ip netns exec guest cat /proc/net/bonding/bond0; ip netns exec guest ip -s link; bridge fdb show br br0 | grep -i 77:00:01
    ip -s link show dev "$netC"; } >"$RIG_OUT/after-crash-diagnostics.txt" 2>&1 || true
fi

# --- 8b. SIGKILL at each step of incoming and of abort (both sides) --------
# crash_at SIDE TAG POINT METHOD PATH [BODY]: the daemon on SIDE restarted
# with the crash point armed and the call made; TAG_exit is its exit (137:
# killed at the point; "alive": the point was never reached) and, after a
# plain restart, TAG_state the migration's state and TAG_held the VFs it
# holds for vm1.
crash_at() {
  local side="$1" tag="$2" point="$3" i rc=alive; shift 3
  stop_daemon "$side"
  start_daemon "$side" SRIOVD_TEST_CRASH_POINT="$point"
  on "$side" "$tag" "$@"
  for i in $(seq 1 50); do kill -0 "${DAEMON_PID[$side]}" 2>/dev/null || break; pause 0.1; done
  if kill -0 "${DAEMON_PID[$side]}" 2>/dev/null; then stop_daemon "$side"; else rc=0; wait "${DAEMON_PID[$side]}" || rc=$?; fi
  say "${tag}_exit" "$rc"
  start_daemon "$side"
  on "$side" "${tag}_show" GET /v1/vms/vm1/migration
  say "${tag}_state" "$(field "${tag}_show" state)"
  on "$side" "${tag}_held" GET "/v1/assignments?vm=vm1"
}
# The guest is on B's VF (step 8). incoming on A, killed after its reserve.
crash_at A crash_incoming_reserve migration.incoming.reserve POST /v1/vms/vm1/migration/incoming "$(incoming "$pfA")"
# Abort on the source (B) after a prepare, killed after each of its steps:
# the restart finishes the abort and the guest is on B's VF again.
# (standby-restore is a step only for a standby that was down before
# prepare; the guest's veth here is up, so no abort reaches that point.)
for step in reassign attach wait steer; do
  on B "crash_abort_${step}_prepare" POST /v1/vms/vm1/migration/prepare
  crash_at B "crash_abort_$step" "migration.abort.$step" POST /v1/vms/vm1/migration/abort
  say "crash_abort_${step}_guest" "$( [ "$(active_slave)" = "$(assigned_vf B)" ] && echo on-vf || echo "$(active_slave)")"
done
ipvf crash_abort_pf "$pfB"
# Abort on the destination (A) after an incoming, killed after its release.
on A crash_abort_release_incoming POST /v1/vms/vm1/migration/incoming "$(incoming "$pfA")"
crash_at A crash_abort_release migration.abort.release POST /v1/vms/vm1/migration/abort

# --- 9. SIGKILL from outside, at moments chosen by the clock -----------------
# No crash point: the daemon is killed some fraction of an uninterrupted
# operation's duration after it began, wherever that lands. After the restart the migration is settled, and the guest is on a
# VF that carries its MAC and VLAN (or, when prepare had ended before the
# kill, on its standby with no VF held), which is what the store says.
took_ms() {  # NAME OPERATION: how long the operation of a migration answer took (ms)
  py -c 'import json,sys; t=json.load(open(sys.argv[1]))["timeline"]
t=[s for s in t if s["operation"]==sys.argv[2]]
print(int(max(s["offsetMs"]+(s.get("durationMs") or 0) for s in t)))' "$RIG_OUT/$1.json" "$2"
}
# B's own prepare (B -> A) times the kills of B's prepare; complete runs on
# both, so the shorter of the two.
prepare_ms=$(took_ms prepare_i_asa_ba prepare)
complete_ms=$(( $(took_ms complete_i_asa_ab complete) < $(took_ms complete_i_asa_ba complete) \
  ? $(took_ms complete_i_asa_ab complete) : $(took_ms complete_i_asa_ba complete) ))
say kill_prepare_ms "$prepare_ms"
say kill_complete_ms "$complete_ms"
# marks NAME: the latest migration record's id and how many steps a restart's
# recovery (or a rollback) added to it.
marks() { py -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(d.get("id", 0), sum(1 for s in d.get("timeline", []) if s["operation"] in ("recover", "rollback")))' "$RIG_OUT/$1.json" 2>/dev/null || echo "0 0"; }
# kill_at SIDE NAME PATH STATE DELAY_MS: POST PATH; once the daemon has
# logged that the migration entered STATE, wait DELAY_MS, SIGKILL it and
# restart it. Timed from the daemon's own log, not from the call: starting
# curl alone takes hundreds of milliseconds in TCG. Not traced, and no fork
# until the kill: the log is read and the waits are made with bash builtins
# (read -t on the FIFO nobody writes).
kill_at() {
  { set +x; } 2>/dev/null
  local side="$1" name="$2" path="$3" state="$4" delay_ms="$5" sock_var="SOCK_$1" caller secs line polls=0
  printf -v secs '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000))
  exec 7<"$RIG_OUT/sriovd-$side.log"  # fd 8: the FIFO nobody writes (migration-lib.sh)
  while read -r -u 7 line; do :; done
  curl -sS --unix-socket "${!sock_var}" -X POST -o "$RIG_OUT/$name.json" -w '%{http_code}' \
    "http://localhost$path" >"$RIG_OUT/$name.status" 2>/dev/null &
  caller=$!
  while [ "$polls" -lt 3000 ]; do
    if read -r -u 7 line; then
      [[ "$line" == *"migration $state "* ]] && break
    else
      read -r -t 0.01 -u 8 line || true
      polls=$((polls + 1))
    fi
  done
  read -r -t "$secs" -u 8 line || true
  kill -KILL "${DAEMON_PID[$side]}" 2>/dev/null || true
  exec 7<&-
  set -x
  rig_log "killed sriovd $side ${delay_ms} ms after it logged 'migration $state' (after $polls polls of 10 ms)"
  wait "${DAEMON_PID[$side]}" 2>/dev/null || true
  wait "$caller" 2>/dev/null || true
  start_daemon "$side"
}
guest_check() {  # TAG SIDE: the migration on SIDE after its restart, and where the guest is
  local tag="$1" side="$2" pf_var="pf$2" vf before after
  on "$side" "${tag}_show" GET /v1/vms/vm1/migration
  say "${tag}_state" "$(field "${tag}_show" state)"
  before=$(marks "${tag}_before") after=$(marks "${tag}_show")
  # Where the kill landed: in a step the restart had to finish or undo
  # (recover steps added), after the operation ended, or before it began.
  say "${tag}_landed" "$(py -c 'import json,sys
b=sys.argv[2].split(); a=sys.argv[3].split(); d=json.load(open(sys.argv[1])); t=d.get("timeline", [])
new_record = a[0] != b[0]; recovered = int(a[1]) > (0 if new_record else int(b[1]))
ops = [s for s in t if s["operation"] not in ("recover", "rollback")]
if recovered:
    running = [s["step"] for s in ops if s["result"] == "running"]
    print("recovered:" + (running[-1] if running else (ops[-1]["step"] + " done" if ops else "start")))
elif new_record or d.get("state") not in ("incoming",) and sys.argv[4] == "complete":
    print("ended")
else:
    print("not-begun")' "$RIG_OUT/${tag}_show.json" "$before" "$after" "$3")"
  vf=$(sctl_on "$side" --json assignments --vm vm1 | py -c 'import json,sys; a=json.load(sys.stdin)["assignments"]; print(a[0]["vf"] if a else "")') || vf=""
  if [ -n "$vf" ]; then
    say "${tag}_guest" "$( [ "$(active_slave)" = "$vf" ] && echo on-vf || echo "$(active_slave)")"
    say "${tag}_vf_on_pf" "$(vf_on "${!pf_var}" "$vf")"
  else
    say "${tag}_guest" "$( [ "$(active_slave)" = veth-g ] && echo on-standby || echo "$(active_slave)")"
    say "${tag}_vf_on_pf" "none held"
  fi
}
# The guest is on B's VF (step 8). Prepare on B, killed at 10, 30, 55, 85 %.
i=0
for pct in 10 30 55 85; do
  i=$((i + 1)); tag="kill_prepare_$i"
  on A "${tag}_incoming" POST /v1/vms/vm1/migration/incoming "$(incoming "$pfA")"
  on B "${tag}_before" GET /v1/vms/vm1/migration
  kill_at B "$tag" /v1/vms/vm1/migration/prepare preparing "$((prepare_ms * pct / 100))"
  guest_check "$tag" B prepare
  # Back to the start: the guest on B's VF, nothing reserved on A.
  [ "$(field "${tag}_show" state)" = prepared ] && on B "${tag}_abort" POST /v1/vms/vm1/migration/abort
  on A "${tag}_abort_incoming" POST /v1/vms/vm1/migration/abort
done
# Complete killed at 20, 45, 70 % of the shorter complete measured above (its
# first step, the MAC and a host driver's re-probe, varies by seconds under
# emulation), alternating the direction.
from=B to=A
i=0
for pct in 20 45 70; do
  i=$((i + 1)); tag="kill_complete_$i"
  to_pf_var="pf$to"
  on "$to" "${tag}_incoming" POST /v1/vms/vm1/migration/incoming "$(incoming "${!to_pf_var}")"
  on "$from" "${tag}_prepare" POST /v1/vms/vm1/migration/prepare
  on "$to" "${tag}_before" GET /v1/vms/vm1/migration
  kill_at "$to" "$tag" /v1/vms/vm1/migration/complete completing "$((complete_ms * pct / 100))"
  guest_check "$tag" "$to" complete
  if [ "$(field "${tag}_show" state)" = incoming ]; then
    # Killed before complete began: nothing to repair; the orchestrator's
    # retry completes it.
    on "$to" "${tag}_retry" POST /v1/vms/vm1/migration/complete
    guest_check "$tag" "$to" complete
    say "${tag}_landed" not-begun
  fi
  tmp=$from from=$to to=$tmp
done
probe_start after_kills_10ms 0.01; pause 1; probe_stop after_kills_10ms

stop_daemon A
stop_daemon B
prober_down
kill "$ECHO_PID" 2>/dev/null || true
say suite_seconds "$SECONDS"
say done yes
