#!/usr/bin/env bash
# Runs inside the rig VM (started by scripts/rig/run.sh through vng --exec):
# prepares the guest, then runs the scenario.
#   guest-init.sh SCENARIO [ARGS...]
# Environment from run.sh: RIG_OUT, RIG_REPO, RIG_EXPECT_PFS, RIG_VFS_AUTOPROBE.
# Writes $RIG_OUT/guest-init.log, scenario.log, exit-code (only if the scenario
# ran), dmesg.txt. Exits 0 after the scenario ran (its status is in exit-code).
set -euo pipefail

: "${RIG_OUT:?RIG_OUT not set}" "${RIG_REPO:?RIG_REPO not set}"
RIG_EXPECT_PFS="${RIG_EXPECT_PFS:-1}"
RIG_VFS_AUTOPROBE="${RIG_VFS_AUTOPROBE:-0}"
scenario="${1:?usage: guest-init.sh SCENARIO [ARGS...]}"
shift

exec >> "$RIG_OUT/guest-init.log" 2>&1
# shellcheck source=scripts/rig/lib.sh
. "$RIG_REPO/scripts/rig/lib.sh"

save_dmesg() { dmesg > "$RIG_OUT/dmesg.txt" 2>&1 || true; }
fail() { rig_log "GUEST-INIT FAILED: $*"; save_dmesg; exit 1; }

rig_log "guest up: kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"

# Modules. igb is essential; the others are reported if missing.
for m in igb igbvf vfio-pci bonding 8021q; do
  if ! out="$(modprobe "$m" 2>&1)"; then
    rig_log "WARNING: modprobe $m failed: $out"
    [ "$m" = igb ] && fail "the igb driver is required"
  fi
done

# Writable places the daemon needs. virtme-ng gives tmpfs /run and overlays on
# /tmp and /var; mount a tmpfs over any that is not writable anyway.
for d in /run /tmp /var/lib /var/run; do
  mkdir -p "$d" 2>/dev/null || true
  probe="$d/.rig-write-probe.$$"
  if ! { : > "$probe"; } 2>/dev/null; then
    rig_log "$d is not writable: mounting a tmpfs on it"
    mount -t tmpfs -o mode=0755 tmpfs "$d" || fail "cannot make $d writable"
  fi
  rm -f "$probe"
done

find_pfs() {
  local f
  for f in /sys/bus/pci/devices/*/sriov_totalvfs; do
    [ -e "$f" ] && basename "$(dirname "$f")"
  done
  return 0
}
count_pfs() { find_pfs | wc -l; }

rig_wait_for "[ \"\$(count_pfs)\" -ge '$RIG_EXPECT_PFS' ]" 30 ||
  fail "expected $RIG_EXPECT_PFS SR-IOV PFs, found $(count_pfs): $(find_pfs | tr '\n' ' ')"
pfs="$(find_pfs | tr '\n' ' ')"
pfs="${pfs% }"

for pf in $pfs; do
  dev="/sys/bus/pci/devices/$pf"
  drv="$(basename "$(readlink "$dev/driver" 2>/dev/null || echo none)")"
  if [ "$drv" != igb ]; then
    rig_log "$pf is bound to '$drv': rebinding to igb"
    if [ "$drv" != none ]; then echo "$pf" > "$dev/driver/unbind" || true; fi
    echo igb > "$dev/driver_override"
    echo "$pf" > /sys/bus/pci/drivers_probe || true
    rig_wait_for "[ -e '$dev/driver' ] && [ \"\$(basename \"\$(readlink '$dev/driver')\")\" = igb ]" 30 ||
      fail "$pf: could not bind igb"
  fi
  rig_wait_for "rig_pf_netdev '$pf'" 60 || fail "$pf: no netdev appeared"
  if [ "$(cat "$dev/sriov_numvfs")" -ne 0 ]; then
    echo 0 > "$dev/sriov_numvfs" || fail "$pf: cannot reset sriov_numvfs"
  fi
  if [ "$RIG_VFS_AUTOPROBE" = 1 ]; then
    echo 1 > "$dev/sriov_drivers_autoprobe"
  else
    echo 0 > "$dev/sriov_drivers_autoprobe"
  fi
done
rig_settle 30
for pf in $pfs; do
  dev="/sys/bus/pci/devices/$pf"
  rig_log "PF $pf: driver igb, netdev $(rig_pf_netdev "$pf"), totalvfs $(cat "$dev/sriov_totalvfs"), autoprobe $(cat "$dev/sriov_drivers_autoprobe"), iommu_group $(basename "$(readlink "$dev/iommu_group" 2>/dev/null || echo none)")"
done

# The guest's PATH is virtme-ng's (no pyenv, no Swift): add the Swift toolchain.
[ -d /opt/swift/usr/bin ] && PATH="$PATH:/opt/swift/usr/bin"
export PATH RIG_OUT RIG_REPO RIG_PFS="$pfs"
export RIG_VFS_AUTOPROBE
cd "$RIG_REPO"
rig_log "running scenario: $scenario $*"
start=$(date +%s)
rc=0
"$scenario" "$@" < /dev/null > "$RIG_OUT/scenario.log" 2>&1 || rc=$?
rig_log "scenario exited $rc after $(( $(date +%s) - start ))s"
save_dmesg
echo "$rc" > "$RIG_OUT/exit-code.tmp"
mv "$RIG_OUT/exit-code.tmp" "$RIG_OUT/exit-code"
sync
