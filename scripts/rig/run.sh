#!/usr/bin/env bash
# Boots the SR-IOV test VM (QEMU igb PFs, TCG, virtme-ng sharing this machine's
# root file system) and runs one scenario script inside it as root.
#
# usage: scripts/rig/run.sh [--pfs N] [--vfs-autoprobe] [--wire] [--memory 1G]
#                           [--cpus 2] [--timeout SECONDS] [--verbose]
#                           --out DIR SCENARIO [ARGS...]
#        scripts/rig/run.sh [options] --batch --out DIR SCENARIO...
#
# --batch runs several scenarios in one boot, one after the other, each with
# its results in DIR/NAME (NAME: the script's name without .sh); between two
# of them the guest is reset (the scenario's processes, namespaces, links and
# sriovd's folders go; the PFs are prepared again). DIR/exit-code is then the
# number of scenarios that failed.
#
# Results in DIR: scenario.log, exit-code, checks.txt (if the scenario used
# rig_check), guest-init.log, dmesg.txt, console.log. Exits with the
# scenario's status; 4 when it exited 0 but a checks.txt (DIR's, or with
# --batch one of DIR/NAME's) records a failed check; 3 when the VM or the
# guest preparation failed; 2 for bad usage.
# Environment: SRIOVD_BIN_DIR (the sriovd and sriovctl the scenarios run;
# default the debug build), SRIOVD_TESTS_DIR (the test binary's folder),
# RIG_KERNEL (kernel image; default newest /boot/vmlinuz-*-amd64),
# RIG_VNG (vng command; default vng from PATH), RIG_LOCK (the lock file that
# keeps to one VM at a time).
set -euo pipefail

me="rig"
log() { printf '[%s] %s\n' "$me" "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
usage() {
  sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

pfs=1 autoprobe=0 wire=0 memory=1G cpus=2 timeout=600 verbose=0 out="" batch=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --pfs) pfs="${2:?--pfs needs a number}"; shift 2 ;;
    --vfs-autoprobe) autoprobe=1; shift ;;
    --wire) wire=1; shift ;;
    --memory) memory="${2:?--memory needs a size}"; shift 2 ;;
    --cpus) cpus="${2:?--cpus needs a number}"; shift 2 ;;
    --timeout) timeout="${2:?--timeout needs seconds}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --verbose) verbose=1; shift ;;
    --batch) batch=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) log "unknown option: $1"; usage ;;
    *) break ;;
  esac
done
[ "$#" -ge 1 ] || { log "missing SCENARIO"; usage; }
[ -n "$out" ] || { log "missing --out DIR"; usage; }
case "$pfs" in ''|*[!0-9]*|0) die "--pfs must be a positive number, got '$pfs'" ;; esac
[ "$pfs" -le 8 ] || die "--pfs $pfs: at most 8 supported"
case "$timeout" in ''|*[!0-9]*|0) die "--timeout must be a positive number of seconds, got '$timeout'" ;; esac
case "$cpus" in ''|*[!0-9]*|0) die "--cpus must be a positive number, got '$cpus'" ;; esac

scenario="$1"
shift
check_scenario() {
  [ -f "$1" ] || die "scenario not found: $1"
  [ -x "$1" ] || die "scenario is not executable (chmod +x): $1"
}
check_scenario "$scenario"
scenario="$(realpath "$scenario")"
if [ "$batch" = 1 ]; then
  batch_list=()
  for s in "$@"; do check_scenario "$s"; batch_list+=("$(realpath "$s")"); done
  set -- "${batch_list[@]}"
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
guest_init="$repo/scripts/rig/guest-init.sh"
[ -f "$guest_init" ] || die "missing $guest_init"

mkdir -p "$out" || die "cannot create $out"
out="$(realpath "$out")"
case "$out" in /) die "--out must not be /" ;; esac
rm -f "$out/scenario.log" "$out/exit-code" "$out/exit-code.tmp" "$out/checks.txt" \
      "$out/guest-init.log" "$out/dmesg.txt" "$out/console.log"

# Kernel: RIG_KERNEL, else the newest Debian amd64 image in /boot.
kernel="${RIG_KERNEL:-}"
if [ -z "$kernel" ]; then
  kernel="$(find /boot -maxdepth 1 -name 'vmlinuz-*-amd64' -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$kernel" ] || die "no /boot/vmlinuz-*-amd64 (run scripts/install-deps.sh) and RIG_KERNEL unset"
  kernel="/boot/$kernel"
fi
[ -r "$kernel" ] || die "kernel image not readable: $kernel"
kver="$(basename "$kernel")"
kver="${kver#vmlinuz-}"
if [ ! -d "/lib/modules/$kver" ]; then
  log "WARNING: /lib/modules/$kver missing: the guest will not find igb/igbvf modules"
fi

vng="${RIG_VNG:-}"
if [ -z "$vng" ]; then
  vng="$(command -v vng || true)"
  # pip's scripts folder (where virtme-ng lands), as Python itself says.
  pip_scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
  for c in "$pip_scripts/vng" "$HOME/.local/bin/vng"; do
    [ -n "$vng" ] && break
    [ -x "$c" ] && vng="$c"
  done
fi
[ -n "$vng" ] || die "vng (virtme-ng) not found: run scripts/install-deps.sh or set RIG_VNG"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found: run scripts/install-deps.sh"

# Devices: one pcie-root-port + igb per PF. The igb netdev is a QEMU hub port:
# frames go to no host network at all (by default each PF is alone on its hub;
# with --wire all PFs share one hub, like NICs on one switch).
qopts="-device intel-iommu,intremap=off"
for ((i = 0; i < pfs; i++)); do
  hub=$i
  [ "$wire" = 1 ] && hub=0
  qopts+=" -device pcie-root-port,id=rigrp$i,chassis=$((i + 1)),slot=$((i + 1))"
  qopts+=" -netdev hubport,id=rignet$i,hubid=$hub"
  qopts+=" -device igb,bus=rigrp$i,netdev=rignet$i,mac=52:54:00:5a:00:$(printf '%02x' "$((i + 1))")"
done

# POSIX single-quoting for the guest command line.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
swift_bin="$(dirname "$(command -v swift 2>/dev/null || echo /nonexistent/swift)")"
guest_cmd="RIG_OUT=$(q "$out") RIG_REPO=$(q "$repo") RIG_EXPECT_PFS=$pfs RIG_VFS_AUTOPROBE=$autoprobe"
guest_cmd+=" RIG_BATCH=$batch RIG_SWIFT_BIN=$(q "$swift_bin")"
# The binaries under test (the guest gets no other variable of ours).
[ -n "${SRIOVD_BIN_DIR:-}" ] && guest_cmd+=" SRIOVD_BIN_DIR=$(q "$(realpath "$SRIOVD_BIN_DIR")")"
[ -n "${SRIOVD_TESTS_DIR:-}" ] && guest_cmd+=" SRIOVD_TESTS_DIR=$(q "$(realpath "$SRIOVD_TESTS_DIR")")"
guest_cmd+=" /bin/bash $(q "$guest_init") $(q "$scenario")"
for a in "$@"; do guest_cmd+=" $(q "$a")"; done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/rig.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# "--opt=value" forms: vng's argparse takes a separate value starting with "-" for an option.
vng_args=(-r "$kernel" --disable-kvm --disable-microvm --memory "$memory" --cpus "$cpus"
          --rwdir "$out" --cwd "$repo" --append=intel_iommu=on
          "--qemu-opts=$qopts" "--exec=$guest_cmd")
[ "$verbose" = 1 ] && vng_args+=(--verbose)

log "kernel $kernel, $pfs igb PF(s)$([ "$wire" = 1 ] && echo ', wired together'), $cpus cpus, $memory, timeout ${timeout}s"
log "scenario $scenario${*:+ $*} -> $out"
# One VM at a time on this machine, whichever checkout or process asks: two
# TCG guests on two cores slow each other past the scenarios' time bounds.
# RIG_LOCK names the lock file (default /tmp/sriovd-rig.lock).
exec 9>"${RIG_LOCK:-/tmp/sriovd-rig.lock}"
if ! flock -n 9; then
  log "waiting for another rig VM on this machine to finish"
  flock 9
fi
start=$(date +%s)
vrc=0
# timeout kills vng and its qemu child (same process group). vng's temporary
# files go to $tmp, removed on exit even after a kill.
boot() {
  vrc=0
  TMPDIR="$tmp" timeout --kill-after=15 "$timeout" "$vng" "${vng_args[@]}" \
    < /dev/null > "$out/console.log" 2>&1 || vrc=$?
}
boot
elapsed=$(( $(date +%s) - start ))
log "VM finished after ${elapsed}s (vng exit $vrc)"
# QEMU itself can die while booting (seen: TCG's "iotlb_to_section: Assertion
# ... failed" with the emulated IOMMU). The scenario never started, so one
# more boot is safe; a scenario that started is never run twice.
if [ ! -f "$out/guest-init.log" ] && [ ! -f "$out/exit-code" ] && grep -q "Assertion" "$out/console.log"; then
  log "QEMU crashed before the guest started ($(grep -m1 Assertion "$out/console.log")); booting once more"
  mv "$out/console.log" "$out/console-crashed.log"
  start=$(date +%s)
  boot
  elapsed=$(( $(date +%s) - start ))
  log "VM finished after ${elapsed}s (vng exit $vrc)"
fi

if [ -f "$out/guest-init.log" ]; then
  grep -E 'WARNING|FAILED' "$out/guest-init.log" >&2 || true
fi

show_failure() {
  if [ -s "$out/scenario.log" ]; then
    log "---- scenario.log ----"
    cat "$out/scenario.log" >&2
    log "---- end of scenario.log ----"
  fi
  if [ -s "$out/checks.txt" ] && grep -q '^FAIL' "$out/checks.txt"; then
    log "failed checks:"
    grep '^FAIL' "$out/checks.txt" >&2
  fi
}

if [ ! -f "$out/exit-code" ]; then
  if [ "$vrc" -eq 124 ] || [ "$vrc" -eq 137 ]; then
    log "ERROR: VM timed out after ${timeout}s (raise --timeout?)"
  elif [ ! -f "$out/guest-init.log" ]; then
    log "ERROR: the VM failed to boot or never ran guest-init (vng exit $vrc)"
  else
    log "ERROR: the scenario never completed (guest preparation failed or the VM died; vng exit $vrc)"
  fi
  [ -f "$out/guest-init.log" ] && { log "---- guest-init.log ----"; cat "$out/guest-init.log" >&2; }
  log "---- last lines of console.log (use --verbose for the boot log) ----"
  tail -n 30 "$out/console.log" >&2 || true
  show_failure
  exit 3
fi

rc="$(cat "$out/exit-code")"
case "$rc" in ''|*[!0-9]*) log "ERROR: bad exit-code file content: '$rc'"; exit 3 ;; esac
# Failed checks, as FILE:FAIL<TAB>NAME<TAB>exit N, of the scenario (and,
# with --batch, of each scenario of the batch).
failed_checks="$(grep -H '^FAIL' "$out/checks.txt" "$out"/*/checks.txt 2>/dev/null || true)"
if [ "$rc" -ne 0 ]; then
  log "scenario FAILED with exit status $rc"
  show_failure
elif [ -n "$failed_checks" ]; then
  # A check that failed is a failure, whatever the scenario's own status.
  log "scenario FAILED: it exited 0 but checks.txt records failed checks:"
  printf '%s\n' "$failed_checks" >&2
  exit 4
else
  log "scenario passed"
fi
exit "$rc"
