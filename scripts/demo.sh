#!/usr/bin/env bash
# The main job on a machine without SR-IOV hardware: installs what is needed,
# builds sriovd, boots the SR-IOV test VM with two emulated Intel 82576 (igb)
# NICs (and a third one standing for the network) and runs
# scripts/demo-scenario.sh inside it: sriovd inventories the NICs and their
# VFs and is driven through sriovctl; then two daemons, one per NIC, move a
# guest between them in a live migration while probes measure its traffic.
# What it did is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${SRIOVD_SKIP_INSTALL:-0}" != 1 ]; then
  bash scripts/install-deps.sh
fi
PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true):/root/.pyenv/shims"
export PATH

echo "== building sriovd and sriovctl"
swift build --product sriovd
swift build --product sriovctl

out="${SRIOVD_DEMO_OUT:-$(mktemp -d /tmp/sriovd-demo.XXXXXX)}"
echo "== booting the SR-IOV test VM (3 x igb on one wire, software emulation: about a minute)"
rc=0
bash scripts/rig/run.sh --pfs 3 --wire --timeout 1200 --out "$out" scripts/demo-scenario.sh || rc=$?
echo
cat "$out/scenario.log"
echo
echo "== results and logs in $out (sriovd.log: the daemon's own log)"
exit "$rc"
