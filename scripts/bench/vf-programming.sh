#!/usr/bin/env bash
# VF-programming benchmark: boots the SR-IOV test VM (scripts/rig/run.sh, one igb
# PF with all 7 VFs), programs every VF with MAC + VLAN + QoS + spoof check +
# trust, round after round, through (a) sriovd's PATCH /v1/vfs/{pci}, (b) one
# `ip link set ... vf N ...` process per VF, (c) pyroute2, (d) a bare netlink
# socket (the floor), and prints per-call latency figures and ratios. A
# benchmark that prints figures, not a test. See docs/benchmarks.md.
#
# usage: scripts/bench/vf-programming.sh [--rounds N] [--methods sriovd,ip,pyroute2,rawnl]
#          [--bin DIR] [--python PY] [--out DIR] [--call-timeout S] [--timeout S]
#          [--concurrent] [--update-docs]
#
#   --rounds N        counted rounds (default 20), after one warm-up round
#   --methods LIST    comma-separated subset of sriovd,ip,pyroute2,rawnl (default all;
#                     rawnl: a bare netlink socket, the floor)
#   --bin DIR         folder with the sriovd binary (default .build/debug)
#   --python PY       python3 with pyroute2 (default: the first of python3 on
#                     PATH, /usr/bin/python3 that imports pyroute2)
#   --out DIR         results folder (default: a new /tmp/vf-bench.XXXXXX, kept)
#   --call-timeout S  bound on one programming call (default 10)
#   --timeout S       bound on the whole VM run (default 600 + 15 s per round)
#   --concurrent      two igb PFs with all their VFs; after the methods above,
#                     program both PFs' VFs through sriovd, one PF at a time and
#                     both at once (a client per PF), and print the speed-up
#                     (needs sriovd among the methods)
#   --update-docs     also write the report into docs/benchmarks.md (between
#                     its vf-programming markers)
#
# Prints the report (also in DIR/report.txt; raw samples in DIR/results.json).
# Exit status: 0 every method measured; 1 some method not measured (e.g. the
# sriovd endpoint is missing: the others are still measured and printed);
# 2 bad usage or a missing prerequisite; 3 the VM failed (see run.sh).
set -euo pipefail

log() { printf '[vf-bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
usage() { sed -n '8,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rounds=20 methods="sriovd,ip,pyroute2,rawnl" bin="${SRIOVD_BIN_DIR:-$repo/.build/debug}" python="" out=""
call_timeout=10 timeout="" concurrent=0 update=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
    --methods) methods="${2:?--methods needs a list}"; shift 2 ;;
    --bin) bin="${2:?--bin needs a folder}"; shift 2 ;;
    --python) python="${2:?--python needs a path}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --call-timeout) call_timeout="${2:?--call-timeout needs seconds}"; shift 2 ;;
    --timeout) timeout="${2:?--timeout needs seconds}"; shift 2 ;;
    --concurrent) concurrent=1; shift ;;
    --update-docs) update=1; shift ;;
    -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) log "unknown argument: $1"; usage ;;
  esac
done
case "$rounds" in ''|*[!0-9]*|0) die "--rounds must be a positive number, got '$rounds'" ;; esac
case "$call_timeout" in ''|*[!0-9]*|0) die "--call-timeout must be a positive number of seconds" ;; esac
[ -n "$timeout" ] || timeout=$((600 + 15 * rounds))
case "$timeout" in ''|*[!0-9]*|0) die "--timeout must be a positive number of seconds" ;; esac
IFS=',' read -r -a mlist <<< "$methods"
[ "${#mlist[@]}" -ge 1 ] || die "--methods is empty"
for m in "${mlist[@]}"; do
  case "$m" in sriovd|ip|pyroute2|rawnl) ;; *) die "unknown method '$m' (known: sriovd, ip, pyroute2, rawnl)" ;; esac
done
has() { case ",$methods," in *,"$1",*) return 0 ;; *) return 1 ;; esac; }
if [ "$concurrent" = 1 ] && ! has sriovd; then die "--concurrent programs two PFs through sriovd: keep sriovd in --methods"; fi
doc="$repo/docs/benchmarks.md"
begin='<!-- vf-programming figures: scripts/bench/vf-programming.sh --update-docs -->'
end='<!-- end of vf-programming figures -->'
if [ "$update" = 1 ]; then
  grep -qF "$begin" "$doc" && grep -qF "$end" "$doc" || die "docs/benchmarks.md has no vf-programming markers"
fi

# A python3 for the guest. It must be an absolute path that exists in the guest
# (which shares this file system but not PATH), so resolve
# sys.executable. With pyroute2 among the methods, it must import pyroute2.
candidates=()
if [ -n "$python" ]; then candidates=("$python"); else
  c="$(command -v python3 || true)"; [ -n "$c" ] && candidates+=("$c")
  candidates+=(/usr/bin/python3)
fi
py=""
for c in "${candidates[@]}"; do
  if has pyroute2; then
    py="$("$c" -c 'import sys, pyroute2; print(sys.executable)' 2>/dev/null)" || py=""
  else
    py="$("$c" -c 'import sys; print(sys.executable)' 2>/dev/null)" || py=""
  fi
  [ -n "$py" ] && [ -x "$py" ] && break
  py=""
done
if [ -z "$py" ]; then
  if has pyroute2; then
    die "no python3 with pyroute2 among: ${candidates[*]} (run scripts/install-deps.sh, pass --python, or leave pyroute2 out of --methods)"
  fi
  die "no python3 found among: ${candidates[*]}"
fi
if has pyroute2; then
  log "python: $py (pyroute2 $("$py" -c 'import pyroute2; print(pyroute2.__version__)'))"
else
  log "python: $py"
fi
if has sriovd; then
  [ -x "$bin/sriovd" ] ||
    die "no sriovd binary at $bin/sriovd: build it (swift build --product sriovd), pass --bin, or leave sriovd out of --methods"
  case "$(realpath "$bin")" in
    */debug|*/debug/) log "NOTE: $bin is a debug build; for figures to publish: swift build -c release --product sriovd, --bin .build/release" ;;
  esac
fi

if [ -z "$out" ]; then
  out="$(mktemp -d "${TMPDIR:-/tmp}/vf-bench.XXXXXX")"
fi
mkdir -p "$out"
out="$(realpath "$out")"
log "results in $out (VM run bounded to ${timeout}s)"

rc=0
guest_flags=()
[ "$concurrent" = 1 ] && guest_flags+=(--concurrent)
"$repo/scripts/rig/run.sh" --pfs "$((concurrent + 1))" --timeout "$timeout" --out "$out" \
  "$repo/scripts/bench/vf-programming-guest.sh" \
  --python "$py" --rounds "$rounds" --methods "$methods" --bin "$bin" \
  --call-timeout "$call_timeout" --budget "$((timeout - 120 > 60 ? timeout - 120 : 60))" "${guest_flags[@]}" || rc=$?
if [ "$rc" -ne 0 ]; then
  log "the benchmark did not run to the end (run.sh exit $rc); logs in $out"
  [ "$rc" -eq 3 ] && exit 3
  exit 2
fi
[ -s "$out/report.txt" ] || { log "no report in $out"; exit 2; }

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
# The binary's folder as the reports name it: under the repository, relative to it.
bin_shown="$bin"
case "$bin_shown" in "$repo"/*) bin_shown="${bin_shown#"$repo"/}" ;; /*) bin_shown="$(basename "$bin_shown")" ;; esac
{
  printf 'host: %s, %s core(s), %s, load average %s; guest: QEMU TCG (no KVM): absolute figures are inflated by emulation, compare ratios\n' \
    "${cpu:-unknown CPU}" "$(nproc)" "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)"
  if has sriovd; then
    build="debug"
    case "$(realpath "$bin")" in */release|*/release/) build="release" ;; esac
    printf 'sriovd binary: %s build (%s/sriovd)\n' "$build" "$bin_shown"
  fi
  cat "$out/report.txt"
} >"$out/full-report.txt"
cat "$out/full-report.txt"
status="$(cat "$out/bench-status" 2>/dev/null || echo 1)"
if [ "$update" = 1 ] && [ "$status" = 0 ]; then
  section="$out/docs-section.md"
  {
    printf '`scripts/bench/vf-programming.sh --rounds %s%s --bin %s --update-docs`, %s:\n\n```\n' \
      "$rounds" "$([ "$concurrent" = 1 ] && echo ' --concurrent')" "$bin_shown" "$(date -u '+%Y-%m-%d %H:%M UTC')"
    # The interpreter's path is this machine's: the docs name it python3.
    py_name="python3 $("$py" -c 'import platform; print(platform.python_version())')"
    awk -v p="$py" -v n="$py_name" '{ while ((i = index($0, p)) > 0) $0 = substr($0, 1, i - 1) n substr($0, i + length(p)); print }' \
      "$out/full-report.txt"
    printf '```\n'
  } >"$section"
  awk -v b="$begin" -v e="$end" -v f="$section" '
    $0 == b { print; while ((getline line < f) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip' "$doc" >"$doc.new" && mv "$doc.new" "$doc"
  log "docs/benchmarks.md updated"
elif [ "$update" = 1 ]; then
  log "docs/benchmarks.md left as it was: not every method was measured"
fi
if [ "$status" != 0 ]; then
  log "not every method was measured (see the notes above); results in $out"
  exit 1
fi
log "results in $out"
