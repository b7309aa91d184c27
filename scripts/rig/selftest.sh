#!/usr/bin/env bash
# Rig self-test scenario (needs --pfs 2 or more):
#   scripts/rig/run.sh --pfs 2 --out /tmp/rig-selftest scripts/rig/selftest.sh
# Proves that VFs can be created on every PF, that netlink reports them, that
# VF MAC/VLAN programming works and records what igb says to `vf N state`.
set -euo pipefail
. "$RIG_REPO/scripts/rig/lib.sh"

py=/usr/bin/python3
[ -x "$py" ] || py=python3

read -r -a pfs <<< "$RIG_PFS"
rig_log "PFs: ${pfs[*]}"
rig_require "at least 2 PFs found (got ${#pfs[@]})" test "${#pfs[@]}" -ge 2

# json_get FILE EXPR: evaluate a Python expression on the parsed JSON `j`.
json_get() { "$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

vf_count_is() { [ "$(rig_vf_count "$1")" -eq "$2" ]; }

vf_has_no_driver() { [ ! -e "/sys/bus/pci/devices/$1/driver" ]; }
vf_driver_is() { [ "$(basename "$(readlink "/sys/bus/pci/devices/$1/driver")")" = "$2" ]; }

distinct_iommu_groups() {
  local pf="$1" i vf g groups=()
  g="$(basename "$(readlink "/sys/bus/pci/devices/$pf/iommu_group")")"
  groups+=("$g")
  for i in 0 1 2; do
    vf="$(rig_vf_pci "$pf" "$i")"
    g="$(basename "$(readlink "/sys/bus/pci/devices/$vf/iommu_group")")"
    echo "  $vf iommu_group $g"
    groups+=("$g")
  done
  [ "$(printf '%s\n' "${groups[@]}" | sort -u | wc -l)" -eq 4 ]
}

n=0
for pf in "${pfs[@]}"; do
  n=$((n + 1))
  dev="$(rig_pf_netdev "$pf")"
  rig_log "== PF $pf (netdev $dev, totalvfs $(cat "/sys/bus/pci/devices/$pf/sriov_totalvfs"))"

  rig_require "$pf: set 3 VFs" rig_set_numvfs "$pf" 3
  rig_check "$pf: 3 virtfn links" vf_count_is "$pf" 3
  for i in 0 1 2; do
    echo "  virtfn$i -> $(rig_vf_pci "$pf" "$i")"
  done
  rig_check "$pf: PF and its VFs in distinct IOMMU groups" distinct_iommu_groups "$pf"
  if [ "$RIG_VFS_AUTOPROBE" = 1 ]; then
    rig_check "$pf: VF 0 bound to igbvf (autoprobe on)" rig_wait_for "vf_driver_is '$(rig_vf_pci "$pf" 0)' igbvf" 30
  else
    rig_check "$pf: VF 0 unbound (autoprobe off)" vf_has_no_driver "$(rig_vf_pci "$pf" 0)"
  fi

  json="$RIG_OUT/ip-link-$pf.json"
  ip -d -j link show dev "$dev" > "$json"
  echo "ip -d -j link show dev $dev:"
  cat "$json"; echo
  rig_check "$pf: ip -j vfinfo_list has 3 entries" \
    test "$(json_get "$json" 'len(j[0]["vfinfo_list"])')" -eq 3

  mac="02:00:00:00:0$n:01"
  vlan=$((100 + n))
  rig_check "$pf: set vf 0 mac $mac vlan $vlan" ip link set dev "$dev" vf 0 mac "$mac" vlan "$vlan"
  ip -d -j link show dev "$dev" > "$json"
  got_mac="$(json_get "$json" 'j[0]["vfinfo_list"][0]["address"]')"
  got_vlan="$(json_get "$json" 'j[0]["vfinfo_list"][0].get("vlan_list", [{}])[0].get("vlan", 0)')"
  echo "vf 0 read back: mac $got_mac vlan $got_vlan"
  rig_check "$pf: vf 0 mac reads back" test "$got_mac" = "$mac"
  rig_check "$pf: vf 0 vlan reads back" test "$got_vlan" = "$vlan"

  rig_check "$pf: set vf 1 trust on spoofchk off" ip link set dev "$dev" vf 1 trust on spoofchk off

  state_rc=0
  state_err="$(ip link set dev "$dev" vf 0 state enable 2>&1)" || state_rc=$?
  printf '%s: ip link set vf 0 state enable -> exit %s: %s\n' "$pf" "$state_rc" "$state_err" | tee -a "$RIG_OUT/vf-state.txt"
  rig_check "$pf: igb rejects vf state with 'not supported'" \
    eval '[ "$state_rc" -ne 0 ] && [[ "$state_err" == *"not supported"* ]]'
done

# Changing between two non-zero counts must go through 0.
pf="${pfs[0]}"
rig_check "$pf: change 3 -> 2 VFs" rig_set_numvfs "$pf" 2
rig_check "$pf: 2 virtfn links" vf_count_is "$pf" 2
for pf in "${pfs[@]}"; do
  rig_check "$pf: back to 0 VFs" rig_set_numvfs "$pf" 0
  rig_check "$pf: no virtfn links" vf_count_is "$pf" 0
done

rig_summary
