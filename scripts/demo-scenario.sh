#!/usr/bin/env bash
# Runs inside the SR-IOV test VM (see scripts/demo.sh): sriovd takes two igb
# PFs through a VM's life: inventory, VFs created from its configuration file,
# a VF assigned to a VM NIC (programmed, bound to vfio-pci), changed live,
# released (restored and freed), all driven through sriovctl.
set -euo pipefail
. "$RIG_REPO/Tests/RigTests/Scenarios/common.sh"

say() { printf '\n### %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
sctl() { printf '$ sriovctl %s\n' "$*"; ctl "$@"; }

pf0=${PFS[0]} pf1=${PFS[1]}
say "The guest's SR-IOV PFs, found by PCI address: ${PFS[*]}"
for pf in "${PFS[@]}"; do
  printf '%s: driver %s, netdev %s, sriov_totalvfs %s\n' "$pf" \
    "$(basename "$(readlink "/sys/bus/pci/devices/$pf/driver")")" "$(rig_pf_netdev "$pf")" \
    "$(cat "/sys/bus/pci/devices/$pf/sriov_totalvfs")"
  ip link set dev "$(rig_pf_netdev "$pf")" up
done

say "sriovd's configuration: 4 VFs on the first PF in pool physnet1, 2 on the second"
mkdir -p /etc/sriovd
cat >/etc/sriovd/sriovd.toml <<TOML
[daemon]
reconcile_interval_seconds = 0

[[pf]]
pci = "$pf0"
num_vfs = 4
drivers_autoprobe = false
  [pf.vf_defaults]
  spoof_check = true
  trust = false
  [[pf.pool]]
  name = "physnet1"
  labels = { physical_network = "physnet1" }

[[pf]]
pci = "$pf1"
num_vfs = 2
drivers_autoprobe = false
TOML
chmod 0644 /etc/sriovd/sriovd.toml
cat /etc/sriovd/sriovd.toml
run "$BIN/sriovd" check-config /etc/sriovd/sriovd.toml
printf '$ sriovd plan\n'; "$BIN/sriovd" plan --config /etc/sriovd/sriovd.toml || true

say "Start sriovd: it makes the host match the file"
start_sriovd --config /etc/sriovd/sriovd.toml
rig_wait_for "[ \"\$(cat /sys/bus/pci/devices/$pf0/sriov_numvfs)\" = 4 ] && [ \"\$(cat /sys/bus/pci/devices/$pf1/sriov_numvfs)\" = 2 ]" 60
sctl health
sctl pfs
sctl vfs

say "A VM is created: assign a VF from physnet1 to vm-web/net0 (MAC, VLAN 100, QoS 3, vfio-pci)"
sctl assign vm-web net0 --pool physnet1 --driver vfio-pci --mac 52:54:00:de:ad:01 --vlan 100 --qos 3
sctl assignments
vf=$(ctl assignment vm-web net0 --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["vf"])')
say "What the kernel now says about $vf (ip -d link, driver, /dev/vfio)"
ip -d link show dev "$(rig_pf_netdev "$pf0")" | grep -E "vf [0-9]" || true
echo "driver: $(basename "$(readlink "/sys/bus/pci/devices/$vf/driver")")"
ls -l /dev/vfio/ | grep -v "^total" || true

say "The same request again is idempotent; a conflicting one is refused"
sctl assign vm-web net0 --pool physnet1 --driver vfio-pci --mac 52:54:00:de:ad:01 --vlan 100 --qos 3
sctl assign vm-web net0 --pool physnet1 --driver vfio-pci --vlan 200 || true

say "The VM moves to VLAN 200, live"
sctl assignment set vm-web net0 --vlan 200 || true
ip -d link show dev "$(rig_pf_netdev "$pf0")" | grep -E "vf [0-9]" || true

say "The VM is deleted: release its VF (restored, unbound, free again)"
sctl release vm-web net0
ip -d link show dev "$(rig_pf_netdev "$pf0")" | grep -E "vf [0-9]" || true
echo "driver: $(basename "$(readlink "/sys/bus/pci/devices/$vf/driver" 2>/dev/null || echo none)")"

say "Bad input gets a clear error"
sctl vf set "$vf" --vlan 5000 || true
sctl assign "vm web" net0 --pool physnet1 || true
ctl pf 0000:09:00.0 || true

say "Stop sriovd (SIGTERM)"
kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" && echo "sriovd exited cleanly"
[ -e "$SOCK" ] && echo "socket still present!" || echo "socket removed"
say "sriovd's log (one structured record per change)"
cat "$RIG_OUT/sriovd.log"

# Part two: a live migration between two daemons (scripts/demo-migration.sh).
bash "$RIG_REPO/scripts/demo-migration.sh"
