#!/usr/bin/env bash
# Declarative configuration on the real igb driver: sriovd reconciles the host
# to its file at start, again on SIGHUP after the file changed, keeps running
# on a broken file, and check-config/plan report as documented.
set -euo pipefail
. "$RIG_REPO/Tests/RigTests/Scenarios/common.sh"

pf=${PFS[0]}
ip link set dev "$(rig_pf_netdev "$pf")" up
conf=/etc/sriovd-test/sriovd.toml
mkdir -p /etc/sriovd-test

write_config() { # NUM_VFS VLAN_OF_VF1 [POOL_NAME]
  local pool=""
  [ -n "${3:-}" ] && pool=$(printf '\n  [[pf.pool]]\n  name = "%s"\n  vfs = "2-3"\n' "$3")
  cat >"$conf" <<TOML
[daemon]
reconcile_interval_seconds = 0

[[pf]]
pci = "$pf"
num_vfs = $1
drivers_autoprobe = false

  [pf.vf_defaults]
  spoof_check = true
  trust = false
$pool

[[vf]]
pf = "$pf"
index = 1
mac = "52:54:00:cf:00:01"
vlan = $2
qos = 2
trust = true
TOML
  chmod 0644 "$conf"
}

vf1_state() { # prints "numvfs mac vlan qos trust" for VF 1
  ip -d -j link show dev "$(rig_pf_netdev "$pf")" | /usr/bin/python3 -c '
import json,sys
link=json.load(sys.stdin)[0]
vf=[v for v in link.get("vfinfo_list",[]) if v["vf"]==1]
if not vf: print("none"); sys.exit()
v=vf[0]; vl=(v.get("vlan_list") or [{}])[0]
print(v["address"], vl.get("vlan", v.get("vlan",0)), vl.get("qos", v.get("qos",0)), v.get("trust"))'
}

write_config 3 42
"$BIN/sriovd" check-config "$conf" >"$RIG_OUT/check-good.out" 2>&1; echo "check_good_exit=$?" >"$RIG_OUT/results.txt"
set +e
"$BIN/sriovd" plan --config "$conf" >"$RIG_OUT/plan-before.out" 2>&1; echo "plan_before_exit=$?" >>"$RIG_OUT/results.txt"
set -e

start_sriovd --config "$conf"
rig_wait_for "[ \"\$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)\" = 3 ] && vf1_state | grep -q '52:54:00:cf:00:01 42 2 True'" 60 || true
echo "start_numvfs=$(cat "/sys/bus/pci/devices/$pf/sriov_numvfs")" >>"$RIG_OUT/results.txt"
echo "start_vf1=$(vf1_state)" >>"$RIG_OUT/results.txt"
set +e
"$BIN/sriovd" plan --config "$conf" >"$RIG_OUT/plan-after.out" 2>&1; echo "plan_after_exit=$?" >>"$RIG_OUT/results.txt"
set -e

# No pool "hot" yet: an assignment from it is refused.
assign_hot='{"vm":"vm-hot","nic":"net0","pool":"hot","driver":"vfio-pci"}'
api assign-before-reload POST /v1/assignments "$assign_hot"

# Change the file, SIGHUP: the new count, VLAN and pool are applied.
write_config 4 43 hot
kill -HUP "$SRIOVD_PID"
rig_wait_for "[ \"\$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)\" = 4 ] && vf1_state | grep -q ' 43 2 '" 60 || true
echo "reload_numvfs=$(cat "/sys/bus/pci/devices/$pf/sriov_numvfs")" >>"$RIG_OUT/results.txt"
echo "reload_vf1=$(vf1_state)" >>"$RIG_OUT/results.txt"
# The reloaded pool is served without a restart.
api assign-after-reload POST /v1/assignments "$assign_hot"
api release-after-reload DELETE /v1/assignments/vm-hot/net0

# A broken file: sriovd keeps the running configuration and keeps serving.
printf '[[pf]]\npci = "%s"\nnum_vfs = "seven"\nfrobnicate = 1\n' "$pf" >"$conf"
kill -HUP "$SRIOVD_PID"
sleep 3
if kill -0 "$SRIOVD_PID" 2>/dev/null && ctl health >/dev/null; then echo "alive_after_bad=yes"; else echo "alive_after_bad=no"; fi >>"$RIG_OUT/results.txt"
echo "bad_numvfs=$(cat "/sys/bus/pci/devices/$pf/sriov_numvfs")" >>"$RIG_OUT/results.txt"
set +e
"$BIN/sriovd" check-config "$conf" >"$RIG_OUT/check-bad.out" 2>&1; echo "check_bad_exit=$?" >>"$RIG_OUT/results.txt"
set -e

kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" || true
rig_log "done"
