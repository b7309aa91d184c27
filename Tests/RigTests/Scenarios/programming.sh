#!/usr/bin/env bash
# Programming scenario on the real igb driver: VF counts, every VF setting,
# bad input, restore, driver binding (vfio-pci with the emulated IOMMU, and
# back to igbvf), a MAC in effect when igbvf binds, and lowering the count
# over an in-use VF. Results go to $RIG_OUT for ProgrammingRigTests.
set -euo pipefail
. "$RIG_REPO/Tests/RigTests/Scenarios/common.sh"

pf=${PFS[0]}
ip link set dev "$(rig_pf_netdev "$pf")" up
start_sriovd

# VF counts: 0 -> 3 -> 5 -> 2 -> 0, each read back from sysfs.
: >"$RIG_OUT/transitions.txt"
for n in 3 5 2 0; do
  api "numvfs-$n" PUT "/v1/pfs/$pf" "{\"numVFs\": $n}"
  echo "$n $(cat "/sys/bus/pci/devices/$pf/sriov_numvfs") $(rig_vf_count "$pf")" >>"$RIG_OUT/transitions.txt"
done
api numvfs-too-many PUT "/v1/pfs/$pf" '{"numVFs": 8}'
api numvfs-bad-type PUT "/v1/pfs/$pf" '{"numVFs": "three"}'
echo "after-refusals $(cat "/sys/bus/pci/devices/$pf/sriov_numvfs")" >>"$RIG_OUT/transitions.txt"

api numvfs-3 PUT "/v1/pfs/$pf" '{"numVFs": 3, "driversAutoprobe": false}'
vf0=$(rig_vf_pci "$pf" 0); vf1=$(rig_vf_pci "$pf" 1); vf2=$(rig_vf_pci "$pf" 2)
echo "$vf0 $vf1 $vf2" >"$RIG_OUT/vfs.txt"
echo "$(basename "$(readlink "/sys/bus/pci/devices/$vf0/iommu_group")")" >"$RIG_OUT/vf0-iommu-group.txt"
ipvf original "$pf"

# Every setting at once; link state and RSS query are unsupported on igb
# (no ndo_set_vf_link_state, no ndo_set_vf_rss_query_en) and must not block the rest.
api set-all PATCH "/v1/vfs/$vf0" \
  '{"mac":"52:54:00:12:34:56","vlan":100,"qos":3,"spoofCheck":false,"trust":true,"linkState":"enable","rssQuery":true}'
ipvf after-set "$pf"
# Rollback on the real driver: igb takes only 802.1Q VLANs, so this VLAN
# fails; the MAC (written before it), spoof check and trust (written after
# it) were applied and must be undone: the VF reads as before the request.
api set-qinq PATCH "/v1/vfs/$vf0" \
  '{"mac":"52:54:00:12:34:99","vlan":200,"vlanProto":"802.1ad","spoofCheck":true,"trust":false}'
ipvf after-qinq "$pf"
ip -d link show dev "$(rig_pf_netdev "$pf")" >"$RIG_OUT/after-qinq.ip.txt"
api after-qinq-vfs GET "/v1/vfs?pf=$pf"
# TX rate (igb refuses it until the PF link speed is known: wait for it).
rig_wait_for "[ \"\$(cat /sys/class/net/$(rig_pf_netdev "$pf")/speed 2>/dev/null)\" -gt 0 ]" 20 \
  || rig_die "the PF's link speed is not known: igb would refuse every TX rate"
api set-rate PATCH "/v1/vfs/$vf0" '{"maxTxRate":100}'
ipvf after-rate "$pf"
# igb has no minimum TX rate (it reports 0 and refuses anything else).
api set-min-rate PATCH "/v1/vfs/$vf0" '{"minTxRate":10}'
ipvf after-min-rate "$pf"

# Bad input: refused with a 400 naming the field, and nothing changes.
ipvf before-bad "$pf"
api bad-vlan PATCH "/v1/vfs/$vf0" '{"vlan":5000}'
api bad-qos PATCH "/v1/vfs/$vf0" '{"vlan":10,"qos":9}'
api bad-mac PATCH "/v1/vfs/$vf0" '{"mac":"01:00:5e:00:00:01"}'
api bad-zero-mac PATCH "/v1/vfs/$vf0" '{"mac":"00:00:00:00:00:00"}'
api bad-field PATCH "/v1/vfs/$vf0" '{"vlanid":10}'
api bad-json PATCH "/v1/vfs/$vf0" '{"vlan":'
api bad-address PATCH "/v1/vfs/0000:01:10.9" '{"vlan":10}'
api not-a-vf PATCH "/v1/vfs/$pf" '{"vlan":10}'
ipvf after-bad "$pf"

# Restore: VF 0 as it was found.
api restore POST "/v1/vfs/$vf0/restore"
ipvf after-restore "$pf"

# Drivers: vfio-pci (IOMMU group checked, /dev/vfio/N appears), igbvf, none.
api bind-vfio POST "/v1/vfs/$vf1/driver" '{"driver":"vfio-pci"}'
{
  echo "driver=$(basename "$(readlink "/sys/bus/pci/devices/$vf1/driver" 2>/dev/null || echo none)")"
  group=$(basename "$(readlink "/sys/bus/pci/devices/$vf1/iommu_group")")
  echo "group=$group"
  [ -e "/dev/vfio/$group" ] && echo "devnode=yes" || echo "devnode=no"
} >"$RIG_OUT/bind-vfio.txt"
api bind-host POST "/v1/vfs/$vf1/driver" '{"driver":"host"}'
echo "driver=$(basename "$(readlink "/sys/bus/pci/devices/$vf1/driver" 2>/dev/null || echo none)")" >"$RIG_OUT/bind-host.txt"
api bind-none POST "/v1/vfs/$vf1/driver" '{"driver":"none"}'
echo "driver=$(basename "$(readlink "/sys/bus/pci/devices/$vf1/driver" 2>/dev/null || echo none)")" >"$RIG_OUT/bind-none.txt"
api bind-bad POST "/v1/vfs/$vf1/driver" '{"driver":"e1000"}'

# Scrub: a VF left with a user's MAC, VLAN and privileges is cleared.
api scrub-set PATCH "/v1/vfs/$vf1" '{"mac":"52:54:00:5c:00:01","vlan":55,"trust":true,"spoofCheck":false}'
api scrub POST "/v1/vfs/$vf1/scrub"
ipvf after-scrub "$pf"

# The MAC is programmed before igbvf binds, so it is in effect at once.
dmesg -c >/dev/null 2>&1 || true
api mac-before-bind PATCH "/v1/vfs/$vf2" '{"mac":"52:54:00:ab:cd:02"}'
api bind-vf2-host POST "/v1/vfs/$vf2/driver" '{"driver":"host"}'
rig_wait_for "ls /sys/bus/pci/devices/$vf2/net/ 2>/dev/null | grep -q ." 20 || true
vfnet=$(ls "/sys/bus/pci/devices/$vf2/net/" 2>/dev/null | head -n1 || true)
{
  echo "netdev=${vfnet:-none}"
  echo "netdev_mac=$( [ -n "$vfnet" ] && cat "/sys/class/net/$vfnet/address" || echo none)"
  if dmesg | grep -qi "reload the vf driver"; then echo "reload_warning=yes"; else echo "reload_warning=no"; fi
} >"$RIG_OUT/mac-at-bind.txt"

# Lowering the count over VF 2 (configured by sriovd, bound): refused, then forced.
api lower-refused PUT "/v1/pfs/$pf" '{"numVFs": 1}'
echo "after-refused $(cat "/sys/bus/pci/devices/$pf/sriov_numvfs")" >>"$RIG_OUT/transitions.txt"
api lower-forced PUT "/v1/pfs/$pf" '{"numVFs": 1, "force": true}'
echo "after-forced $(cat "/sys/bus/pci/devices/$pf/sriov_numvfs")" >>"$RIG_OUT/transitions.txt"

# With autoprobe on, igbvf binds the new VFs: the count change waits for
# their network interfaces, so the answer already shows them.
api reset-0 PUT "/v1/pfs/$pf" '{"numVFs": 0, "force": true}'
api autoprobe-2 PUT "/v1/pfs/$pf" '{"numVFs": 2, "driversAutoprobe": true}'

kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" || true
dmesg >"$RIG_OUT/dmesg-end.txt" 2>&1 || true

# Journal records of state changes on the real driver: sriovd logs to
# journald's native socket, where a listener stands in for journald (the VM
# runs none), through a VF count change, settings, driver binds, a restore
# and an assignment's lifecycle, released with release_action = "scrub".
journal=/run/systemd/journal/socket
[ -e "$journal" ] && rig_die "a journald socket already exists in the VM"
mkdir -p /run/systemd/journal
/usr/bin/python3 "$RIG_REPO/scripts/journal-listener.py" "$journal" "$RIG_OUT/journal.bin" \
  "$RIG_OUT/journal.ready" "$RIG_OUT/journal.jsonl" &
listener=$!
# python3 starting in the emulated VM can take over 10 s on a loaded host.
rig_wait_for "[ -e '$RIG_OUT/journal.ready' ]" 60 || rig_die "the journal listener did not start"
mkdir -p /etc/sriovd-test
printf '[daemon]\nrelease_action = "scrub"\n' >/etc/sriovd-test/scrub.toml
start_sriovd --log-target journal --config /etc/sriovd-test/scrub.toml
api j-numvfs PUT "/v1/pfs/$pf" '{"numVFs": 3, "driversAutoprobe": false, "force": true}'
jvf=$(rig_vf_pci "$pf" 0)
echo "$jvf" >"$RIG_OUT/journal-vf.txt"
api j-settings PATCH "/v1/vfs/$jvf" '{"vlan": 300, "trust": true}'
api j-bind POST "/v1/vfs/$jvf/driver" '{"driver":"vfio-pci"}'
api j-unbind POST "/v1/vfs/$jvf/driver" '{"driver":"none"}'
api j-restore POST "/v1/vfs/$jvf/restore"
# Leftovers of an earlier user on every VF, behind sriovd's back: scrub clears them at release.
for i in 0 1 2; do ip link set dev "$(rig_pf_netdev "$pf")" vf "$i" mac "52:54:00:1e:f0:0$i" trust on; done
api j-assign POST /v1/assignments \
  "{\"vm\":\"vm-j\",\"nic\":\"net0\",\"pf\":\"$pf\",\"mac\":\"52:54:00:0a:0b:0c\",\"vlan\":12,\"driver\":\"vfio-pci\"}"
api j-change PATCH /v1/assignments/vm-j/net0 '{"vlan": 13}'
api j-release DELETE /v1/assignments/vm-j/net0
ipvf j-after-release "$pf"
kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" || true
/usr/bin/python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"SRIOVD_CAPTURE_END=1\n", sys.argv[1])' "$journal"
wait "$listener" || true
rig_log "done"
