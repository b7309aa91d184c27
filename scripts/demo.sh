#!/usr/bin/env bash
# The main job on a machine without SR-IOV hardware: installs what is needed,
# builds sriovd, boots the SR-IOV test VM with two emulated Intel 82576 (igb)
# NICs (and a third one standing for the network) and runs
# scripts/demo-scenario.sh inside it: sriovd inventories the NICs and their
# VFs and is driven through sriovctl; then two daemons, one per NIC, move a
# guest between them in a live migration while probes measure its traffic.
# What it did is printed.
#
# One line per phase; the tools' own output (apt, pip, the compiler, the VM)
# goes to a log file whose path is printed first, and a failing phase shows
# its last lines. SRIOVD_SKIP_INSTALL=1 skips the installs; SRIOVD_VERBOSE=1
# shows the tools' output as it comes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/progress.sh

out="${SRIOVD_DEMO_OUT:-$(mktemp -d /tmp/sriovd-demo.XXXXXX)}"
progress_init "$out/demo-tools.log"

if [ "${SRIOVD_SKIP_INSTALL:-0}" != 1 ]; then
  phase "installing what the demo needs (scripts/install-deps.sh)" bash scripts/install-deps.sh
fi
# virtme-ng (vng) is installed by pip: its scripts folder, as Python says.
PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
export PATH

build() { swift build --product sriovd && swift build --product sriovctl; }
phase "building sriovd and sriovctl" build

rc=0
phase "booting the SR-IOV test VM (3 x igb on one wire, software emulation) and running the demo in it" \
  bash scripts/rig/run.sh --pfs 3 --wire --timeout 1200 --out "$out" scripts/demo-scenario.sh || rc=$?
cat "$out/scenario.log" 2>/dev/null || true
echo
echo "== results and logs in $out (sriovd.log: the daemon's own log; demo-tools.log: the installs, the build, the VM)"
exit "$rc"
