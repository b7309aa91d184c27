#!/usr/bin/env bash
# Runs every test of sriovd: the unit tests and the real-kernel tests, which
# boot the SR-IOV test VM (scripts/rig) with emulated igb NICs, and builds the
# Debian package they check (scripts/package.sh). This is what CI runs
# (.ci/run). The real-kernel tests need root, QEMU, a kernel image and
# virtme-ng: scripts/install-deps.sh installs them. With SRIOVD_REQUIRE_RIG=1
# (the default here) a missing rig fails the run instead of skipping tests.
#
#   scripts/test.sh                 everything, one line per phase, then a table
#   scripts/test.sh --update-docs   the same, and the table into docs/ci.md
#   scripts/test.sh ARGS...         one `swift test` with ARGS (e.g. --filter X)
#
# The tools' own output goes to a log file whose path is printed first
# (SRIOVD_TEST_LOG overrides it); SRIOVD_VERBOSE=1 shows it as it comes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/progress.sh

update_docs=0
if [ "${1:-}" = --update-docs ]; then update_docs=1; shift; fi

export SRIOVD_REQUIRE_RIG="${SRIOVD_REQUIRE_RIG:-1}"
# virtme-ng (vng) is installed by pip: its scripts folder, as Python says.
PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
export PATH

log="${SRIOVD_TEST_LOG:-$PWD/.build-logs/test-$(date -u +%Y%m%dT%H%M%SZ).log}"
progress_init "$log"

# The suites that need the SR-IOV test VM, and what the rig lacks here.
vm_suites() { grep -ho '^struct [A-Za-z]*RigTests' Tests/RigTests/*.swift | sed 's/^struct //' | sort | tr '\n' ' '; }
rig_missing() {
  [ "$(id -u)" = 0 ] || { echo "not root"; return; }
  command -v qemu-system-x86_64 >/dev/null || { echo "no qemu-system-x86_64"; return; }
  command -v vng >/dev/null || { echo "no virtme-ng (vng)"; return; }
  ls /boot/vmlinuz-* >/dev/null 2>&1 || { echo "no kernel image in /boot"; return; }
}
skip_notice() {
  [ "$SRIOVD_REQUIRE_RIG" = 1 ] && return 0
  local missing
  missing="$(rig_missing)"
  if [ -n "$missing" ]; then
    echo "SRIOVD_REQUIRE_RIG=$SRIOVD_REQUIRE_RIG and the rig is missing here ($missing): these suites are SKIPPED, not passed: $(vm_suites)"
  else
    echo "SRIOVD_REQUIRE_RIG=$SRIOVD_REQUIRE_RIG: the rig is here, the VM suites run; a suite that cannot start is skipped instead of failing"
  fi
}
skip_notice

# The closing line of a `swift test` run (Swift Testing's, or XCTest's).
test_summary() { grep -E 'Test run with [0-9]+ tests?' "$log" | tail -n 1; }
# "tests: N passed, N failed" over every `swift test` run of this log: each
# run's closing line counts its tests; a failed test is one "✘ Test ... failed
# after N seconds" line.
test_totals() {
  local all failed
  all=$(grep -oE 'Test run with [0-9]+ tests?' "$log" | awk '{ n += $4 } END { print n + 0 }')
  failed=$(grep -E '✘ Test .* failed after [0-9.]+ seconds' "$log" | grep -vc 'Test run with' || true)
  echo "tests: $(( all - failed )) passed, $failed failed"
}
# Every failure Swift Testing reported, for a run that failed.
test_failures() { grep -E '✘|error:' "$log" | grep -v '^$' | head -n 80 | sed 's/^/    /'; }
# "seconds  suite" for each suite of the last run, slowest first.
suite_times() {
  sed -n "/^===== $1/,\$p" "$log" \
    | grep -E '(Suite|Test) .* (passed|failed) after [0-9.]+ seconds' \
    | grep -E 'Suite ' \
    | sed -E 's/.*Suite (.*) (passed|failed) after ([0-9.]+) seconds.*/\3\t\2\t\1/' \
    | sort -rn | awk -F '\t' '{ printf "    %7.1f s  %-6s  %s\n", $1, $2, substr($3, 1, 110) }'
}

run_tests() {
  local label="$1"
  shift
  if ! phase "$label" swift test --skip-build --no-parallel "$@"; then
    test_failures
    return 1
  fi
  test_summary
}

finish() {
  local rc=$?
  echo
  phase_table
  skip_notice
  if [ "$update_docs" = 1 ] && [ "$rc" = 0 ]; then write_docs; fi
  echo "Output of the tools: $log"
  if [ -n "${SRIOVD_CI_START:-}" ]; then echo "CI finished in $(( $(date +%s) - SRIOVD_CI_START )) s"; fi
  test_totals
  exit "$rc"
}
trap finish EXIT

write_docs() {
  local doc=docs/ci.md
  {
    cat <<'MD'
# Where the test run's time goes

`scripts/test.sh --update-docs` (what CI runs, `.ci/run`, plus this file)
writes this page from the run it just made; nothing here is typed in.

MD
    printf 'Measured on %s, %s cores, %s GiB, commit %s.\n\n' "$(date -u +%F)" "$(nproc)" \
      "$(awk '/MemTotal/ { printf "%d", $2 / 1048576 }' /proc/meminfo)" "$(git rev-parse --short HEAD)"
    echo '| phase | seconds | result |'
    echo '|---|---:|---|'
    awk -F '\t' '{ printf "| %s | %d | %s |\n", $1, $2, $3; t += $2 } END { printf "| **total** | **%d** | |\n", t }' "$SRIOVD_PHASES"
    printf '\nThe VM suites, one by one (seconds; a suite that shares a VM boot with others\nwaits for that boot inside its time):\n\n'
    echo '| suite | seconds |'
    echo '|---|---:|'
    suite_times "VM tests" | awk '{ s = $1; $1 = ""; $2 = ""; $3 = ""; sub(/^ +/, ""); printf "| %s | %s |\n", $0, s }'
  } >"$doc.tmp"
  mv "$doc.tmp" "$doc"
  echo "wrote $doc"
}

if [ $# -gt 0 ]; then
  phase "build (debug, with tests)" swift build --build-tests
  run_tests "swift test $*" "$@"
  exit
fi

phase "build (debug, with tests)" swift build --build-tests
# Built once per run: PackageContentsTests check its contents and lintian's
# verdict, PackageRigTests install, upgrade (to revision 2) and purge it in
# the test VM.
rm -rf .build-release/deb
phase "Debian package (release build), revisions 1 and 2" scripts/package.sh --revisions 1,2
# Serially: several tests block a thread on a child process or a socket,
# and on 2 cores the cooperative pool has only 2 threads to share.
# A failing unit run does not stop the VM tests: one run shows every failure.
failed=0
run_tests "unit tests (and QEMU guests)" --skip RigTests || failed=1
# The VM scenarios run the release build the package is made of, stripped
# as the package strips it (what ships; the guest copies it into its memory
# at boot, and half the size is half the copy); the contract scenario runs
# the debug test binary.
vm_bin() {
  local release
  release="$(swift build -c release --static-swift-stdlib --scratch-path .build-release --show-bin-path)"
  mkdir -p .build-release/vm-bin
  for tool in sriovd sriovctl; do
    strip --strip-unneeded -o ".build-release/vm-bin/$tool" "$release/$tool"
  done
}
phase "the binaries the VM runs (release build, stripped)" vm_bin
export SRIOVD_BIN_DIR="$PWD/.build-release/vm-bin"
run_tests "VM tests (SR-IOV test VM)" --filter RigTests || failed=1
suite_times "VM tests"
exit "$failed"
