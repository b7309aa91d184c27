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
cat >"$conf" <<TOML
[daemon]
reconcile_interval_seconds = 0
[[pf]]
pci = "$pf"
num_vfs = 4
drivers_autoprobe = false
  [[pf.pool]]
  name = "physnet1"
TOML
chmod 0644 "$conf"
check() { /usr/bin/python3 "$RIG_REPO/Tests/RigTests/Scenarios/invariants.py" "$SOCK" "$pf"; }
results="$RIG_OUT/results.txt"
: >"$results"

start_sriovd --config "$conf"
rig_wait_for "[ \"\$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)\" = 4 ]" 60

# The life of one assignment.
req1='{"vm":"vm1","nic":"net0","pool":"physnet1","driver":"vfio-pci","mac":"52:54:00:a1:00:01","vlan":101,"qos":1}'
api assign-1 POST /v1/assignments "$req1"
api assign-1-again POST /v1/assignments "$req1"
api assign-1-different POST /v1/assignments '{"vm":"vm1","nic":"net0","pool":"physnet1","driver":"vfio-pci","vlan":102}'
api assign-2 POST /v1/assignments '{"vm":"vm2","nic":"net0","pf":"'"$pf"'","driver":"host","mac":"52:54:00:a2:00:01"}'
vf2=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vf"])' "$RIG_OUT/assign-2.json")
rig_wait_for "ls /sys/bus/pci/devices/$vf2/net/ | grep -q ." 20 || true
n2=$(ls "/sys/bus/pci/devices/$vf2/net/" 2>/dev/null | head -n1 || true)
echo "vm2_netdev_mac=$( [ -n "$n2" ] && cat "/sys/class/net/$n2/address" || echo none)" >>"$results"
api list GET "/v1/assignments?vm=vm1"
api one GET /v1/assignments/vm1/net0
api patch-1 PATCH /v1/assignments/vm1/net0 '{"vlan":111,"qos":2}'
echo "invariants_live=$(check | tr '\n' ';')" >>"$results"
api release-2 DELETE /v1/assignments/vm2/net0
api release-2-again DELETE /v1/assignments/vm2/net0
echo "vf2_driver_after_release=$(basename "$(readlink "/sys/bus/pci/devices/$vf2/driver" 2>/dev/null || echo none)")" >>"$results"
echo "invariants_after_release=$(check | tr '\n' ';')" >>"$results"
api bad-vm POST /v1/assignments '{"vm":"vm 1","nic":"net0","pool":"physnet1","driver":"vfio-pci"}'
api bad-pool POST /v1/assignments '{"vm":"vm3","nic":"net0","pool":"nope","driver":"vfio-pci"}'
api bad-field POST /v1/assignments '{"vm":"vm3","nic":"net0","pool":"physnet1","driver":"vfio-pci","colour":"red"}'
kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" || true

# Crash safety: die at each step, restart, check.
n=0
for point in assign.reserved assign.programmed assign.bound release.begun release.unbound release.restored; do
  n=$((n + 1))
  SRIOVD_TEST_CRASH_POINT=$point start_sriovd --config "$conf"
  case "$point" in
    assign.*) api "crash-$point" POST /v1/assignments \
      '{"vm":"crash'$n'","nic":"net0","pool":"physnet1","driver":"vfio-pci","mac":"52:54:00:c0:00:0'$n'","vlan":'$((200 + n))'}' ;;
    release.*)
      api "setup-$point" POST /v1/assignments \
        '{"vm":"crash'$n'","nic":"net0","pool":"physnet1","driver":"vfio-pci","mac":"52:54:00:c0:00:0'$n'","vlan":'$((200 + n))'}'
      api "crash-$point" DELETE "/v1/assignments/crash$n/net0" ;;
  esac
  rc=0; wait "$SRIOVD_PID" || rc=$?
  start_sriovd --config "$conf"
  echo "crash_${point}_exit=$rc" >>"$results"
  echo "crash_${point}_invariants=$(check | tr '\n' ';')" >>"$results"
  # A retried request completes after the restart.
  case "$point" in
    assign.*) api "retry-$point" POST /v1/assignments \
      '{"vm":"crash'$n'","nic":"net0","pool":"physnet1","driver":"vfio-pci","mac":"52:54:00:c0:00:0'$n'","vlan":'$((200 + n))'}'
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
