#!/usr/bin/env bash
# Host port contract against the real igb driver: runs the contract suite of
# the already-built test binary (the guest shares this machine's files, so
# .build and the Swift toolchain are here; SRIOVD_TESTS_DIR is its folder,
# the debug build by default) with SRIOVD_CONTRACT_PF naming the first PF.
# The same cases run against FakeHost in the unit tests.
set -uo pipefail
. "$RIG_REPO/Tests/RigTests/Scenarios/common.sh"

TESTS="${SRIOVD_TESTS_DIR:-$RIG_REPO/.build/debug}/sriovdPackageTests.xctest"
[ -x "$TESTS" ] || rig_die "no test binary at $TESTS (build first: swift build --build-tests)"
PF="${PFS[0]}"
rig_log "contract suite against igb PF $PF"
# The checkout is read-only in the guest: the binary runs from a writable cwd.
cd "$RIG_OUT"
SRIOVD_CONTRACT_PF="$PF" SRIOVD_CONTRACT_REPORT="$RIG_OUT/contract-ran.txt" \
  "$TESTS" --testing-library swift-testing --filter "HostContractTests" >"$RIG_OUT/contract.log" 2>&1
echo "$?" >"$RIG_OUT/contract-exit"
tail -n 40 "$RIG_OUT/contract.log" >&2
# The PF is left as the next scenario expects it: no VFs.
echo 0 >"/sys/bus/pci/devices/$PF/sriov_numvfs" || true
exit 0
