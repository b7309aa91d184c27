#!/usr/bin/env bash
# Live migration between two sriovd daemons in the SR-IOV test VM
# (run.sh --pfs 3 --wire; see migration-lib.sh): daemon A owns PF 0 (the
# source host), daemon B PF 1 (the destination), PF 2 is the network both
# reach over the QEMU hub (a bridge with the traffic peer and the guest's
# standby veth). The guest is a namespace with an active-backup bond of a VF
# (primary) and the veth (standby). UDP probes from the guest every 10 ms
# (then 1 ms) through each phase; the results file has the probes sent/lost
# and the longest gap per phase, the bond's active slave, the VFs' MAC/VLAN on
# their PFs, and the API answers. scripts/bench/migration.sh prints its figures.
set -euo pipefail
results="$RIG_OUT/results.txt"
: >"$results"
. "$RIG_REPO/Tests/RigTests/Scenarios/migration-lib.sh"
# Every command, with a timestamp, to trace.log (for a step that hangs).
exec 9>>"$RIG_OUT/trace.log"
BASH_XTRACEFD=9
PS4='+ $(date +%T.%N | cut -c1-12) '
set -x

start_daemon A
start_daemon B
rig_wait_for "[ \"\$(cat /sys/bus/pci/devices/$pfA/sriov_numvfs)\" = 2 ] && [ \"\$(cat /sys/bus/pci/devices/$pfB/sriov_numvfs)\" = 2 ]" 60
migration_setup
probe_start setup 0.05; sleep 1; probe_stop setup
[ "$(grep '^setup_lost=' "$results" | cut -d= -f2)" -lt "$(grep '^setup_sent=' "$results" | cut -d= -f2)" ] \
  || { ip -d link; bridge vlan show; ip netns exec guest cat /proc/net/bonding/bond0; rig_die "the standby path does not carry"; }

# --- 1. the guest gets its VF through daemon A -----------------------------
on A assign POST /v1/assignments "$(assign_body "$pfA")"
vfA=$(field assign vf)
say assign_status "$(cat "$RIG_OUT/assign.status")"
say assign_active "$( [ "$(active_slave)" = "$vfA" ] && echo vf || echo "$(active_slave)")"
say assign_vf_on_pf "$(vf_on "$pfA" "$vfA")"

# --- 2. baselines: no switch ------------------------------------------------
for iv in 0.01 0.001; do
  tag=$( [ "$iv" = 0.01 ] && echo 10ms || echo 1ms)
  probe_start "baseline_vf_$tag" "$iv"; sleep 3; probe_stop "baseline_vf_$tag"
done

# --- 3. a full cycle A -> B, probes every 10 ms, then B -> A at 1 ms --------
cycle() {  # FROM TO FROM_PF TO_PF TAG INTERVAL
  local from="$1" to="$2" from_pf="$3" to_pf="$4" tag="$5" iv="$6"
  on "$to" "incoming_$tag" POST /v1/vms/vm1/migration/incoming "$(incoming "$to_pf")"
  probe_start "prepare_$tag" "$iv"
  on "$from" "prepare_$tag" POST /v1/vms/vm1/migration/prepare
  say "prepared_active_$tag" "$(active_slave)"
  probe_stop "prepare_$tag"
  probe_start "standby_$tag" "$iv"; sleep 2; probe_stop "standby_$tag"
  probe_start "complete_$tag" "$iv"
  on "$to" "complete_$tag" POST /v1/vms/vm1/migration/complete
  sleep 1
  probe_stop "complete_$tag"
  local vf; vf=$(field "incoming_$tag" timeline.0.detail | awk '{print $2}')
  say "completed_vf_$tag" "$vf"
  say "completed_active_$tag" "$( [ "$(active_slave)" = "$vf" ] && echo vf || echo "$(active_slave)")"
  say "completed_vf_on_pf_$tag" "$(vf_on "$to_pf" "$vf")"
  on "$to" "show_$tag" GET /v1/vms/vm1/migration
  on "$from" "show_source_$tag" GET /v1/vms/vm1/migration
  sctl_on "$to" migration show vm1 >"$RIG_OUT/timeline_$tag.txt" 2>&1 || true
}
cycle A B "$pfA" "$pfB" ab 0.01
say prepare_answer_matches "$(py -c '
import json,sys; p=json.load(open(sys.argv[1]))["nics"]; i=json.load(open(sys.argv[2]))
p[0]["pf"]=i["nics"][0]["pf"]; print(p==i["nics"])' "$RIG_OUT/prepare_ab.json" <(incoming "$pfB"))"
say source_free_after_prepare "$(sctl_on A assignments --vm vm1 2>&1 | head -n1)"
cycle B A "$pfB" "$pfA" ba 0.001

# --- 4. (a) a plain unplug with no preparation, as nova and KubeVirt do ----
for iv in 0.01 0.001; do
  tag=$( [ "$iv" = 0.01 ] && echo 10ms || echo 1ms)
  vf=$(sctl_on A --json assignments --vm vm1 | py -c 'import json,sys; print(json.load(sys.stdin)["assignments"][0]["vf"])')
  probe_start "unplug_$tag" "$iv"
  echo "$vf" >/sys/bus/pci/drivers/igbvf/unbind
  sleep 2
  probe_stop "unplug_$tag"
  on A "unplug_release_$tag" DELETE /v1/assignments/vm1/net0
  on A "unplug_reassign_$tag" POST /v1/assignments "$(assign_body "$pfA")"
done
say unplug_reassigned "$(cat "$RIG_OUT/unplug_reassign_1ms.status")"

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
guest_bond
on B fail_abort_destination POST /v1/vms/vm1/migration/abort
on A fail_abort_source POST /v1/vms/vm1/migration/abort
say fail_abort_source_state "$(field fail_abort_source state)"
say fail_abort_active "$(active_slave | grep -q '^0000:' && echo vf || active_slave)"
probe_start after_failures_10ms 0.01; sleep 2; probe_stop after_failures_10ms

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
probe_start after_crash_10ms 0.01; sleep 2; probe_stop after_crash_10ms
if [ "$(grep '^after_crash_10ms_lost=' "$results" | cut -d= -f2)" != 0 ]; then
  { ip netns exec guest cat /proc/net/bonding/bond0; ip netns exec guest ip -s link; bridge fdb show br br0 | grep -i 77:00:01
    ip -s link show dev "$netC"; } >"$RIG_OUT/after-crash-diagnostics.txt" 2>&1 || true
fi

stop_daemon A
stop_daemon B
kill "$ECHO_PID" 2>/dev/null || true
say done yes
