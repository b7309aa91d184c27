#!/usr/bin/env bash
# Assignments on the real igb driver: assign/inspect/release through the API,
# crash safety (sriovd killed at every step of assign and release, then
# restarted: invariants.py must hold), and concurrent assigns on a small pool.
set -euo pipefail
. "$RIG_REPO/Tests/RigTests/Scenarios/common.sh"

pf=${PFS[0]}
ip link set dev "$(rig_pf_netdev "$pf")" up
conf=/etc/sriovd-test/assign.toml
mkdir -p /etc/sriovd-test
# drift = "report": the checker must see the drift made below; sriovd
# (which would put it back at once) only reports it.
cat >"$conf" <<TOML
[daemon]
reconcile_interval_seconds = 0
drift = "report"
[[pf]]
pci = "$pf"
num_vfs = 4
drivers_autoprobe = false
  [[pf.pool]]
  name = "physnet1"
TOML
chmod 0644 "$conf"
invariants() { /usr/bin/python3 "$RIG_REPO/Tests/RigTests/Scenarios/invariants.py" "$@"; }
# The state store, the kernel and the baseline (the VFs as sriovd created them) agree.
check() { invariants check "$SOCK" "$STATE/state.db" "$pf" "$RIG_OUT/baseline.json"; }
results="$RIG_OUT/results.txt"
: >"$results"

start_sriovd --config "$conf"
rig_wait_for "[ \"\$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)\" = 4 ]" 60
invariants baseline "$pf" "$RIG_OUT/baseline.json"
# igb refuses a TX rate until the PF's link speed is known.
rig_wait_for "[ \"\$(cat /sys/class/net/$(rig_pf_netdev "$pf")/speed 2>/dev/null)\" -gt 0 ]" 20 \
  || rig_die "the PF's link speed is not known: igb would refuse every TX rate"

# The life of one assignment: every setting igb takes, so that the invariants
# compare each of them with something other than its default.
req1='{"vm":"vm1","nic":"net0","pool":"physnet1","driver":"vfio-pci","mac":"52:54:00:a1:00:01","vlan":101,"qos":1,
  "vlanProto":"802.1Q","trust":true,"spoofCheck":false,"maxTxRate":100}'
api assign-1 POST /v1/assignments "$req1"
api assign-1-again POST /v1/assignments "$req1"
api assign-1-different POST /v1/assignments '{"vm":"vm1","nic":"net0","pool":"physnet1","driver":"vfio-pci","vlan":102}'
api assign-2 POST /v1/assignments \
  '{"vm":"vm2","nic":"net0","pf":"'"$pf"'","driver":"host","mac":"52:54:00:a2:00:01","trust":true,"maxTxRate":50}'
vf2=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vf"])' "$RIG_OUT/assign-2.json")
rig_wait_for "ls /sys/bus/pci/devices/$vf2/net/ | grep -q ." 20 || true
n2=$(ls "/sys/bus/pci/devices/$vf2/net/" 2>/dev/null | head -n1 || true)
echo "vm2_netdev_mac=$( [ -n "$n2" ] && cat "/sys/class/net/$n2/address" || echo none)" >>"$results"
api list GET "/v1/assignments?vm=vm1"
api one GET /v1/assignments/vm1/net0
api patch-1 PATCH /v1/assignments/vm1/net0 '{"vlan":111,"qos":2,"maxTxRate":200}'
echo "invariants_live=$(check | tr '\n' ';')" >>"$results"
# The checker sees drift: vm1's VF changed behind sriovd's back, and a free
# VF bound to vfio-pci, each is reported; put back, all is OK again.
netdev=$(rig_pf_netdev "$pf")
vf1_index=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vfIndex"])' "$RIG_OUT/assign-1.json")
ip link set dev "$netdev" vf "$vf1_index" vlan 111 qos 3 spoofchk on trust off max_tx_rate 0
free_vf=$(/usr/bin/python3 -c 'import json,sys; print(sorted(set(json.load(open(sys.argv[1])))
  - {json.load(open(f))["vf"] for f in sys.argv[2:]})[0])' "$RIG_OUT/baseline.json" "$RIG_OUT/assign-1.json" "$RIG_OUT/assign-2.json")
echo vfio-pci >"/sys/bus/pci/devices/$free_vf/driver_override"
echo "$free_vf" >/sys/bus/pci/drivers_probe
echo "drift_free_vf=$free_vf" >>"$results"
echo "invariants_drift=$(check | tr '\n' ';')" >>"$results"
ip link set dev "$netdev" vf "$vf1_index" vlan 111 qos 2 spoofchk off trust on max_tx_rate 200
echo "$free_vf" >"/sys/bus/pci/devices/$free_vf/driver/unbind"
echo >"/sys/bus/pci/devices/$free_vf/driver_override"
echo "invariants_undrifted=$(check | tr '\n' ';')" >>"$results"
api release-2 DELETE /v1/assignments/vm2/net0
api release-2-again DELETE /v1/assignments/vm2/net0
echo "vf2_driver_after_release=$(basename "$(readlink "/sys/bus/pci/devices/$vf2/driver" 2>/dev/null || echo none)")" >>"$results"
echo "invariants_after_release=$(check | tr '\n' ';')" >>"$results"
api bad-vm POST /v1/assignments '{"vm":"vm 1","nic":"net0","pool":"physnet1","driver":"vfio-pci"}'
api bad-pool POST /v1/assignments '{"vm":"vm3","nic":"net0","pool":"nope","driver":"vfio-pci"}'
api bad-field POST /v1/assignments '{"vm":"vm3","nic":"net0","pool":"physnet1","driver":"vfio-pci","colour":"red"}'
kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" || true

# Crash safety: die at each step, restart, check. Each request carries every
# setting igb takes; half bind igbvf (driver host), half vfio-pci, so a
# rollback or roll-forward must undo either.
n=0
for point in assign.reserved assign.programmed assign.bound release.begun release.unbound release.restored; do
  n=$((n + 1))
  case "$point" in
    assign.programmed | assign.bound | release.begun) driver=host ;;
    *) driver=vfio-pci ;;
  esac
  req='{"vm":"crash'$n'","nic":"net0","pool":"physnet1","driver":"'$driver'","mac":"52:54:00:c0:00:0'$n'",
    "vlan":'$((200 + n))',"qos":'$n',"vlanProto":"802.1Q","trust":true,"spoofCheck":false,"maxTxRate":'$((10 * n))'}'
  SRIOVD_TEST_CRASH_POINT=$point start_sriovd --config "$conf"
  case "$point" in
    assign.*) api "crash-$point" POST /v1/assignments "$req" ;;
    release.*)
      api "setup-$point" POST /v1/assignments "$req"
      echo "crash_${point}_assigned=$(check | tr '\n' ';')" >>"$results"
      api "crash-$point" DELETE "/v1/assignments/crash$n/net0" ;;
  esac
  rc=0; wait "$SRIOVD_PID" || rc=$?
  start_sriovd --config "$conf"
  echo "crash_${point}_exit=$rc" >>"$results"
  echo "crash_${point}_invariants=$(check | tr '\n' ';')" >>"$results"
  # A retried request completes after the restart.
  case "$point" in
    assign.*) api "retry-$point" POST /v1/assignments "$req"
      echo "crash_${point}_assigned=$(check | tr '\n' ';')" >>"$results"
      api "cleanup-$point" DELETE "/v1/assignments/crash$n/net0" ;;
    release.*) api "retry-$point" DELETE "/v1/assignments/crash$n/net0" ;;
  esac
  echo "crash_${point}_after_retry=$(check | tr '\n' ';')" >>"$results"
  kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" || true
done

# Concurrency: 12 NICs ask at once for the 3 free VFs of the pool (vm1 holds one).
start_sriovd --config "$conf"
pids=()
for i in $(seq 1 12); do
  (curl -sS --unix-socket "$SOCK" -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
     --data '{"vm":"race'$i'","nic":"net0","pool":"physnet1","driver":"vfio-pci","mac":"52:54:00:d0:00:'$(printf %02x "$i")'","vlan":'$((300 + i))'}' \
     http://localhost/v1/assignments >"$RIG_OUT/race-$i.status") &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
echo "race_201=$(cat "$RIG_OUT"/race-*.status | grep -c '^201' || true)" >>"$results"
echo "race_409=$(cat "$RIG_OUT"/race-*.status | grep -c '^409' || true)" >>"$results"
echo "invariants_race=$(check | tr '\n' ';')" >>"$results"
# Release them all at once while others ask again. (Wait for these
# clients by pid: a bare `wait` would also wait for sriovd itself.)
pids=()
for i in $(seq 1 12); do
  curl -sS --unix-socket "$SOCK" -o /dev/null -X DELETE "http://localhost/v1/assignments/race$i/net0" &
  pids+=($!)
  curl -sS --unix-socket "$SOCK" -o /dev/null -H 'Content-Type: application/json' \
    --data '{"vm":"again'$i'","nic":"net0","pool":"physnet1","driver":"vfio-pci","vlan":'$((400 + i))'}' \
    http://localhost/v1/assignments &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
echo "invariants_churn=$(check | tr '\n' ';')" >>"$results"
# SIGKILL in the middle of a burst, then restart.
pids=()
for i in $(seq 1 12); do
  curl -sS --unix-socket "$SOCK" -o /dev/null -X DELETE "http://localhost/v1/assignments/again$i/net0" &
  pids+=($!)
done
sleep 0.3
kill -KILL "$SRIOVD_PID"; wait "$SRIOVD_PID" || true
for p in "${pids[@]}"; do wait "$p" || true; done
start_sriovd --config "$conf"
echo "invariants_after_kill=$(check | tr '\n' ';')" >>"$results"
kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" || true
rig_log "done"
