#!/usr/bin/env bash
# Runs inside the rig VM (started by scripts/rig/run.sh through vng --exec):
# prepares the guest, then runs the scenario.
#   guest-init.sh SCENARIO [ARGS...]
#   RIG_BATCH=1 guest-init.sh SCENARIO...   (each in $RIG_OUT/NAME, one boot)
# Environment from run.sh: RIG_OUT, RIG_REPO, RIG_EXPECT_PFS, RIG_VFS_AUTOPROBE,
# RIG_BATCH, RIG_SWIFT_BIN.
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
LAST_SID=""
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

# prepare_pfs: every PF bound to igb with its netdev, no VFs, autoprobe as
# asked. Before each scenario (a batch runs several in one boot).
prepare_pfs() {
  local pf dev drv
  modprobe igb || fail "the igb driver is required"
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
}

# reset_guest: what one scenario of a batch may leave behind, taken away
# before the next: its processes (its own session), network namespaces,
# the links it made (bonds, bridges, veths, VLANs: not the PFs), bind
# mounts and sriovd's folders. The PFs are prepared again after it.
reset_guest() {
  local sid="$1" link kind
  pkill -KILL -s "$sid" 2>/dev/null || true
  rig_wait_for "! pgrep -s '$sid' >/dev/null" 10 || rig_log "WARNING: processes of the last scenario outlived SIGKILL: $(pgrep -s "$sid" | tr '\n' ' ')"
  ip -all netns delete 2>/dev/null || true
  for kind in bond bridge veth vlan dummy macvlan; do
    for link in $(ip -o link show type "$kind" | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
      ip link delete dev "$link" 2>/dev/null || true
    done
  done
  for m in $(findmnt -rn -o TARGET | grep -E '^/run/sriovd' | sort -r); do umount -l "$m" || true; done
  rm -rf /run/sriovd /run/sriovd-* /var/lib/sriovd-test /etc/sriovd-test
  # A scenario that ran systemd leaves its journal: the next one reads its own.
  rm -rf /run/log/journal /var/log/journal
  rig_log "guest reset"
}

# The guest's PATH is virtme-ng's (no pyenv, no Swift): add the Swift
# toolchain found beside the host's swift, if the host said where.
[ -n "${RIG_SWIFT_BIN:-}" ] && [ -d "$RIG_SWIFT_BIN" ] && PATH="$PATH:$RIG_SWIFT_BIN"
export PATH RIG_REPO RIG_PFS="$pfs"
export RIG_VFS_AUTOPROBE
cd "$RIG_REPO"

# sriovd and sriovctl, copied once into the guest's memory: the root file
# system is the host's over 9p without a page cache, so each start of a
# binary read from there pages its tens of megabytes in again (seen: 7-13 s
# for `sriovctl --help` from 9p, 0.3-2.4 s from this copy).
bin_src="${SRIOVD_BIN_DIR:-$RIG_REPO/.build/debug}"
if [ -x "$bin_src/sriovd" ] && [ -x "$bin_src/sriovctl" ]; then
  mkdir -p /run/rig-bin
  cp "$bin_src/sriovd" "$bin_src/sriovctl" /run/rig-bin/
  rig_log "sriovd and sriovctl from $bin_src, copied to /run/rig-bin"
  export SRIOVD_BIN_DIR=/run/rig-bin
fi
[ -n "${SRIOVD_TESTS_DIR:-}" ] && export SRIOVD_TESTS_DIR

# run_scenario OUT SCENARIO [ARGS...]: the scenario in a session of its own
# (so that what it leaves running can be found), its log, dmesg and
# exit-code in OUT.
run_scenario() {
  local dir="$1" scenario="$2" start rc=0 sid
  shift 2
  export RIG_OUT="$dir"
  rig_log "running scenario: $scenario $* -> $dir"
  start=$(date +%s)
  # Not a process-group leader (no job control here): setsid(1) makes the
  # session without forking, so the job's PID is the session's ID.
  setsid "$scenario" "$@" < /dev/null > "$dir/scenario.log" 2>&1 &
  sid=$!
  wait "$sid" || rc=$?
  rig_log "scenario exited $rc after $(( $(date +%s) - start ))s"
  dmesg > "$dir/dmesg.txt" 2>&1 || true
  dmesg -C 2>/dev/null || true
  echo "$rc" > "$dir/exit-code.tmp"
  mv "$dir/exit-code.tmp" "$dir/exit-code"
  sync
  LAST_SID=$sid
}

out="$RIG_OUT"
if [ "${RIG_BATCH:-0}" = 1 ]; then
  # One boot, several scenarios: each in OUT/NAME with its own results, the
  # guest reset and the PFs prepared again between them. The batch's own
  # exit-code is the number of scenarios that failed.
  failed=0
  for s in "$scenario" "$@"; do
    name="$(basename "$s" .sh)"
    mkdir -p "$out/$name"
    prepare_pfs
    run_scenario "$out/$name" "$s"
    [ "$(cat "$out/$name/exit-code")" = 0 ] || failed=$((failed + 1))
    reset_guest "$LAST_SID"
  done
  echo "$failed" > "$out/exit-code.tmp"
  mv "$out/exit-code.tmp" "$out/exit-code"
  sync
else
  prepare_pfs
  run_scenario "$out" "$scenario" "$@"
fi
