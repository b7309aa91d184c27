#!/usr/bin/env bash
# Runs every test of sriovd: the unit tests and the real-kernel tests, which
# boot the SR-IOV test VM (scripts/rig) with emulated igb NICs, and builds the
# Debian package they check (scripts/package.sh). This is what
# CI runs (.ci/run). The real-kernel tests need root, QEMU, a kernel image and
# virtme-ng: scripts/install-deps.sh installs them. With SRIOVD_REQUIRE_RIG=1
# (the default here) a missing rig fails the run instead of skipping tests.
set -euo pipefail
cd "$(dirname "$0")/.."

export SRIOVD_REQUIRE_RIG="${SRIOVD_REQUIRE_RIG:-1}"
# virtme-ng is installed by pip; make sure its scripts folder is on PATH.
PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true):/root/.pyenv/shims"
export PATH

echo "== build (debug, with tests)"
swift build --build-tests
echo "== Debian package: release build (static Swift standard library), revisions 1 and 2"
# Built once per run: PackageContentsTests check its contents and lintian's
# verdict, PackageRigTests install, upgrade (to revision 2) and purge it in
# the test VM.
rm -rf .build-release/deb
scripts/package.sh --revision 1 >/dev/null
scripts/package.sh --revision 2 >/dev/null
echo "== tests (unit + SR-IOV test VM)"
# Serially: several tests block a thread on a child process or a socket,
# and on 2 cores the cooperative pool has only 2 threads to share.
swift test --skip-build --no-parallel "$@"
