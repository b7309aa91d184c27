#!/usr/bin/env bash
# A duplicate MAC on the wire, measured (run.sh --pfs 2 --wire; no sriovd):
# the guest (namespace "guest", active-backup bond, default options, of a VF
# of PF A and a veth standby) probes a peer on a bridge over PF A, where its
# standby's veth also sits (a host with one NIC). While the probes run, the
# guest's MAC is set on a VF of PF B and cleared again, the guest is moved to
# its standby and back, a VF is put in promiscuous mode, and the peer's MAC
# becomes one that is not PF A's own. tcpdump (-p: it
# changes no receive mode) records PF A, the bridge, the standby's veth and
# PF B; before and after each step the bridge's forwarding entry for the
# guest's MAC and both PFs' registers (ethtool -d) are kept. Evidence for
# docs/duplicate-mac.md: marks.txt (what was done when, wall clock), the
# probe windows' lost runs, fdb-*.txt, regs-*.txt and *.pcap in RIG_OUT.
set -euo pipefail
. "$RIG_REPO/scripts/rig/lib.sh"
read -r -a PFS <<< "$RIG_PFS"
pfA=${PFS[0]} pfB=${PFS[1]:?two PFs on one wire (run.sh --pfs 2 --wire)}
netA=$(rig_pf_netdev "$pfA") netB=$(rig_pf_netdev "$pfB")
MAC=52:54:00:77:00:01 VLAN=100 PEER=10.77.0.1
PROBE="$RIG_REPO/Tests/RigTests/Scenarios/probe.py"
results="$RIG_OUT/results.txt"; : >"$results"
mark() { echo "$EPOCHREALTIME $*" >>"$RIG_OUT/marks.txt"; rig_log "$*"; }
snap() {  # TAG: the bridge's entries for the guest's MAC, both PFs' registers
  bridge fdb show br br0 2>/dev/null | grep -i "$MAC" >"$RIG_OUT/fdb-$1.txt" || true
  ethtool -d "$netA" >"$RIG_OUT/regs-$1-A.txt" 2>&1 || true
  ethtool -d "$netB" >"$RIG_OUT/regs-$1-B.txt" 2>&1 || true
  ip -s -d link show dev "$netA" >"$RIG_OUT/link-$1-A.txt" 2>&1 || true
}
command -v tcpdump >/dev/null && command -v ethtool >/dev/null || rig_die "needs tcpdump and ethtool on the machine"

rig_set_numvfs "$pfA" 2
rig_set_numvfs "$pfB" 2
ip link set "$netA" up; ip link set "$netB" up
# The bridge over PF A, with PF A's MAC, VLAN filtering; the peer on VLAN 100.
ip link add br0 type bridge vlan_filtering 1
ip link set br0 address "$(cat "/sys/class/net/$netA/address")"
ip link set "$netA" master br0
ip link add veth-h type veth peer name veth-g
ip link set veth-h master br0
bridge vlan add dev veth-h vid "$VLAN" pvid untagged
bridge vlan add dev "$netA" vid "$VLAN"
bridge vlan add dev br0 vid "$VLAN" self
ip link add link br0 name br0.v type vlan id "$VLAN"
ip addr add "$PEER/24" dev br0.v
for l in br0 br0.v veth-h; do ip link set "$l" up; done
# The guest: bond (default options) of A's VF 0 (primary) and the veth.
ip netns add guest
ip link set veth-g netns guest
ip netns exec guest sh -ec "
  ip link set lo up
  ip link add bond0 type bond mode active-backup miimon 20
  ip link set bond0 address $MAC
  ip link set veth-g master bond0
  ip link set bond0 up
  ip addr add 10.77.0.2/24 dev bond0"
vfA=$(rig_vf_pci "$pfA" 0)
ip link set "$netA" vf 0 mac "$MAC" vlan "$VLAN" spoofchk on
echo igbvf >"/sys/bus/pci/devices/$vfA/driver_override"
echo "$vfA" >/sys/bus/pci/drivers_probe
rig_wait_for "ls /sys/bus/pci/devices/$vfA/net/ 2>/dev/null | grep -q ." 30 || rig_die "no netdev for $vfA"
rig_settle
vfnet=$(ls "/sys/bus/pci/devices/$vfA/net/")
ip link set "$vfnet" netns guest
ip netns exec guest sh -ec "ip link set $vfnet down; ip link set $vfnet master bond0; ip link set $vfnet up
  echo $vfnet >/sys/class/net/bond0/bonding/primary; echo $vfnet >/sys/class/net/bond0/bonding/active_slave"
rig_wait_for "ip netns exec guest grep -q 'Currently Active Slave: $vfnet' /proc/net/bonding/bond0" 20 || rig_die "the VF is not active"

/usr/bin/python3 "$PROBE" serve "$PEER" 7777 &
mkdir -p "$RIG_OUT/probe"
ip netns exec guest /usr/bin/python3 "$PROBE" run "$PEER" 7777 "$RIG_OUT/probe" &
rig_wait_for "[ -e '$RIG_OUT/probe/ready' ]" 60 || rig_die "the prober did not start"
exec 6<>"$RIG_OUT/probe/cmd"
for l in "$netA" br0 veth-h "$netB"; do
  tcpdump -p -n -e -i "$l" -w "$RIG_OUT/$l.pcap" 'udp port 7777 or arp or (vlan and (udp port 7777 or arp))' 2>/dev/null &
done
sleep 3
# phase NAME WHAT...: a new back-to-back 20 ms probe window named NAME, then WHAT.
phase() { local n="$1"; shift; echo "start $n 0.02" >&6; mark "$n: $*"; "$@"; }
ip_vf_b() { ip link set "$netB" vf 0 "$@"; }
vfB=$(rig_vf_pci "$pfB" 0)
bind_b() {
  ip link set "$netB" vf 0 mac "$MAC" vlan "$VLAN" spoofchk on
  echo igbvf >"/sys/bus/pci/devices/$vfB/driver_override"; echo "$vfB" >/sys/bus/pci/drivers_probe
  rig_wait_for "ls /sys/bus/pci/devices/$vfB/net/ 2>/dev/null | grep -q ." 30
}
up_b() { ip link set "$(ls "/sys/bus/pci/devices/$vfB/net/")" up; }
unbind_b() { echo "$vfB" >/sys/bus/pci/drivers/igbvf/unbind; ip link set "$netB" vf 0 mac 00:00:00:00:00:00 vlan 0; }
steer() { ip netns exec guest sh -c "echo $1 >/sys/class/net/bond0/bonding/active_slave"; }
vf_promisc() { ip netns exec guest ip link set "$vfnet" promisc "$1"; }
peer_mac() { ip link set br0 address "$1"; ip link set br0.v address "$1"; ip netns exec guest ip neigh flush dev bond0; }
fdb_self() { bridge fdb "$1" "$(cat /sys/class/net/veth-h/address)" dev "$netA" self; }
phase 0-start true; sleep 3; snap 0-start
phase 1-b-mac ip_vf_b mac "$MAC"; sleep 4; snap 1-b-mac
phase 2-b-cleared ip_vf_b mac 00:00:00:00:00:00; sleep 4; snap 2-b-cleared
phase 3-b-bound bind_b; sleep 4; snap 3-b-bound
phase 4-b-up up_b; sleep 4; snap 4-b-up
phase 5-b-unbound unbind_b; sleep 5; snap 5-b-unbound
phase 6-standby steer veth-g; sleep 2; snap 6-standby
phase 7-back steer "$vfnet"; sleep 3; snap 7-back
phase 8-vf-promisc vf_promisc on; sleep 4; snap 8-vf-promisc
phase 9-vf-promisc-off vf_promisc off; sleep 3; snap 9-vf-promisc-off
# The peer's MAC is no longer the PF's own (the bridge takes the veth's):
# frames from the guest's VF to it match no address filter of PF A.
phase 10-peer-other-mac peer_mac "$(cat /sys/class/net/veth-h/address)"; sleep 4; snap 10-peer-other-mac
# That MAC in PF A's own filter (the bridge's FDB entry "self" on the PF).
phase 11-fdb-self fdb_self add; sleep 4; snap 11-fdb-self
phase 12-peer-pf-mac peer_mac "$(cat "/sys/class/net/$netA/address")"; sleep 3
fdb_self del || true
echo "stop 12-peer-pf-mac" >&6
sleep 1
for n in 0-start 1-b-mac 2-b-cleared 3-b-bound 4-b-up 5-b-unbound 6-standby 7-back 8-vf-promisc 9-vf-promisc-off 10-peer-other-mac 11-fdb-self 12-peer-pf-mac; do
  rig_wait_for "[ -e '$RIG_OUT/probe/$n.kv' ]" 20 || rig_die "no result for $n"
  cat "$RIG_OUT/probe/$n.kv" >>"$results"
done
ip netns exec guest cat /proc/net/bonding/bond0 >"$RIG_OUT/bond.txt"
echo quit >&6
sleep 1
kill $(jobs -p) 2>/dev/null || true
echo done=yes >>"$results"
