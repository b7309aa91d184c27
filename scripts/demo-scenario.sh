#!/usr/bin/env bash
# Runs inside the SR-IOV test VM (see scripts/demo.sh): sriovd inventories two
# igb PFs and their VFs, driven through sriovctl.
set -euo pipefail
. "$RIG_REPO/Tests/RigTests/Scenarios/common.sh"

say() { printf '\n### %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "The guest's SR-IOV PFs, found by PCI address: ${PFS[*]}"
for pf in "${PFS[@]}"; do
  printf '%s: driver %s, netdev %s, sriov_totalvfs %s\n' "$pf" \
    "$(basename "$(readlink "/sys/bus/pci/devices/$pf/driver")")" "$(rig_pf_netdev "$pf")" \
    "$(cat "/sys/bus/pci/devices/$pf/sriov_totalvfs")"
  ip link set dev "$(rig_pf_netdev "$pf")" up
done

say "Create VFs: 4 on the first PF, 2 on the second; give two VFs a MAC and a VLAN"
rig_set_numvfs "${PFS[0]}" 4
rig_set_numvfs "${PFS[1]}" 2
n1=$(rig_pf_netdev "${PFS[0]}")
run ip link set dev "$n1" vf 0 mac 52:54:00:de:00:01 vlan 100 qos 2
run ip link set dev "$n1" vf 1 mac 52:54:00:de:00:02 vlan 200 trust on

say "Start sriovd"
start_sriovd
run "$BIN/sriovctl" --socket "$SOCK" health

say "sriovctl pfs"
ctl pfs
say "sriovctl vfs"
ctl vfs
say "sriovctl vfs --pf ${PFS[1]} --json"
ctl vfs --pf "${PFS[1]}" --json

say "Rename ${n1} behind sriovd's back; it still finds the PF by PCI address"
ip link set dev "$n1" down
run ip link set dev "$n1" name uplink-demo
ip link set dev uplink-demo up
ctl pfs

say "Bad input gets a clear error"
ctl pf 0000:zz:00.0 || true
ctl pf 0000:09:00.0 || true

say "Stop sriovd (SIGTERM)"
kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" && echo "sriovd exited cleanly"
[ -e "$SOCK" ] && echo "socket still present!" || echo "socket removed"
say "sriovd's log"
cat "$RIG_OUT/sriovd.log"
