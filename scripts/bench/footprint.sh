#!/usr/bin/env bash
# Size and memory of sriovd as packaged: the stripped binaries' sizes (from
# the .deb scripts/package.sh builds), how much of them is Foundation's ICU
# data, the floor under them (small programs linked the same way), and the
# idle daemon's resident memory in the SR-IOV test VM with two
# igb PFs and 14 VFs (7 each), beside a python3 holding a pyroute2 IPRoute
# (what OpenStack's SR-IOV agent is built on), measured in the same run.
# A benchmark that prints figures, not a test. See docs/benchmarks.md.
#
# usage: scripts/bench/footprint.sh [--deb FILE] [--python PY] [--idle SECONDS]
#                                   [--out DIR] [--update-docs]
#
#   --deb FILE      the package (default: build one with scripts/package.sh)
#   --python PY     python3 with pyroute2 (default: python3 on PATH, then
#                   /usr/bin/python3, the first that imports pyroute2)
#   --idle SECONDS  how long sriovd idles before it is measured (default 30)
#   --out DIR       results folder (default: a new /tmp/footprint.XXXXXX, kept);
#                   one with a finished VM run is reported again without a new one
#   --update-docs   also replace the figures section of docs/benchmarks.md
#
# Exit status: 0 measured; 2 bad usage or a missing prerequisite; 3 the VM failed.
set -euo pipefail
log() { printf '[footprint] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
deb="" python="" idle=30 out="" update=0
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb="${2:?--deb needs a file}"; shift 2 ;;
    --python) python="${2:?--python needs a path}"; shift 2 ;;
    --idle) idle="${2:?--idle needs seconds}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --update-docs) update=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
case "$idle" in ''|*[!0-9]*) die "--idle must be a number of seconds" ;; esac

# An absolute python3 that exists in the guest too (the guest's PATH is not the host's).
py=""
for c in ${python:-$(command -v python3 || true) /usr/bin/python3}; do
  py="$("$c" -c 'import sys, pyroute2; print(sys.executable)' 2>/dev/null)" && [ -x "$py" ] && break
  py=""
done
[ -n "$py" ] || die "no python3 with pyroute2 (scripts/install-deps.sh installs it, or pass --python)"

[ -n "$deb" ] || deb="$("$repo/scripts/package.sh")"
[ -f "$deb" ] || die "no package at $deb"
[ -n "$out" ] || out="$(mktemp -d "${TMPDIR:-/tmp}/footprint.XXXXXX")"
mkdir -p "$out"
out="$(realpath "$out")"
rm -rf "$out/pkg"
dpkg-deb -x "$deb" "$out/pkg"
log "package $deb unpacked in $out/pkg; results in $out"

# Sizes on disk, and the ICU data (icudt*_dat, Foundation's
# internationalization tables) inside the unstripped release binaries.
release="$(cd "$repo" && swift build -c release --static-swift-stdlib --scratch-path "${SRIOVD_RELEASE_SCRATCH:-.build-release}" --show-bin-path)"
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1000000 }'; }
icu() {
  local total=0 hex
  for hex in $(nm -S --defined-only "$1" 2>/dev/null | awk '$4 ~ /^icudt[0-9]+_dat$/ { print $2 }'); do
    total=$((total + 16#$hex))
  done
  echo "$total"
}
declare -A size icu_bytes
for tool in sriovd sriovctl; do
  file="$out/pkg/usr/$([ "$tool" = sriovd ] && echo sbin || echo bin)/$tool"
  size[$tool]="$(stat -c %s "$file")"
  icu_bytes[$tool]="$(icu "$release/$tool")"
done

# The floor under those sizes: three small programs linked as the binaries
# are (-O, static standard library, stripped): the standard library alone;
# plus FoundationEssentials (JSON and Date, what sriovctl uses); plus
# Foundation's internationalization (String(format:), Locale: what pulls the
# ICU data in, as GRDB's Foundation import does for sriovd).
mkdir -p "$out/floor"
printf 'print("hi")\n' >"$out/floor/stdlib.swift"
printf 'import FoundationEssentials\nlet d = try JSONEncoder().encode(["a": Date().timeIntervalSince1970])\nprint(d.count)\n' \
  >"$out/floor/essentials.swift"
printf 'import Foundation\nlet d = try JSONEncoder().encode(["a": Date().timeIntervalSince1970])\nprint(d.count, String(format: "%%.1f", 1.5), Locale.current.identifier)\n' \
  >"$out/floor/foundation.swift"
declare -A floor_size floor_icu
for prog in stdlib essentials foundation; do
  swiftc -O -static-stdlib "$out/floor/$prog.swift" -o "$out/floor/$prog" 2>"$out/floor/$prog.log" \
    || die "swiftc $prog.swift failed: $(tail -n 3 "$out/floor/$prog.log")"
  floor_icu[$prog]="$(icu "$out/floor/$prog")"
  strip --strip-unneeded "$out/floor/$prog"
  floor_size[$prog]="$(stat -c %s "$out/floor/$prog")"
done

# A folder that already holds a finished VM run is reported again, not rerun.
if ! grep -qx 'done=yes' "$out/footprint.txt" 2>/dev/null; then
  "$repo/scripts/rig/run.sh" --pfs 2 --timeout 900 --out "$out" \
    "$repo/scripts/bench/footprint-guest.sh" --python "$py" --idle "$idle" || {
    rc=$?; log "the VM run failed (run.sh exit $rc); logs in $out"; exit 3; }
fi
declare -A f
while IFS='=' read -r k v; do f[$k]="$v"; done <"$out/footprint.txt"
[ "${f[done]:-}" = yes ] || { log "the guest did not finish; see $out/scenario.log"; exit 3; }

kb_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k * 1024 / 1000000 }'; }
# Files that import Foundation itself, not as the fallback of
# `#if canImport(FoundationEssentials)`.
foundation="$(cd "$repo" && git grep -l '^import Foundation$' -- Sources | xargs grep -L 'canImport(FoundationEssentials)' \
  | sed 's#^Sources/##; s#/.*##' | sort | uniq -c | awk '{printf "%s%s (%d file%s)", sep, $2, $1, $1 == 1 ? "" : "s"; sep=", "}')"
report="$out/report.md"
{
  echo "### Size and memory: sriovd $(dpkg-deb -f "$deb" Version), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "\`scripts/bench/footprint.sh\`: the binaries of \`$(basename "$deb")\` (release build,"
  echo "static Swift standard library, stripped); sriovd idle for ${idle} s in the SR-IOV test VM"
  echo "(kernel ${f[kernel]:-unknown}, TCG) managing two igb PFs with ${f[numvfs]} = ${f[vfs]} VFs; in the same run"
  echo "python3 ${f[python_version]} holding a pyroute2 ${f[pyroute2_version]} \`IPRoute\` after one \`get_links()\`."
  echo "MB = 10^6 bytes."
  echo
  echo "| | on disk | of which ICU data | goal |"
  echo "|---|---|---|---|"
  echo "| \`/usr/sbin/sriovd\` | $(mb "${size[sriovd]}") MB | $(mb "${icu_bytes[sriovd]}") MB | < 30 MB |"
  echo "| \`/usr/bin/sriovctl\` | $(mb "${size[sriovctl]}") MB | $(mb "${icu_bytes[sriovctl]}") MB | < 10 MB |"
  echo "| \`.deb\` | $(mb "$(stat -c %s "$deb")") MB (xz) | | |"
  echo "| floor: \`print(\"hi\")\` | $(mb "${floor_size[stdlib]}") MB | $(mb "${floor_icu[stdlib]}") MB | |"
  echo "| floor: + FoundationEssentials (\`JSONEncoder\`, \`Date\`) | $(mb "${floor_size[essentials]}") MB | $(mb "${floor_icu[essentials]}") MB | |"
  echo "| floor: + Foundation (\`String(format:)\`, \`Locale\`) | $(mb "${floor_size[foundation]}") MB | $(mb "${floor_icu[foundation]}") MB | |"
  echo
  echo "| resident memory, idle | VmRSS | of which file-backed | anonymous | PSS | threads |"
  echo "|---|---|---|---|---|---|"
  for p in sriovd pyroute2 python; do
    case "$p" in
      sriovd) name="sriovd (goal < 25 MB)" ;;
      pyroute2) name="python3 + pyroute2 IPRoute" ;;
      python) name="python3 alone (for scale)" ;;
    esac
    echo "| $name | $(kb_mb "${f[${p}_vmrss_kb]}") MB | $(kb_mb "${f[${p}_rss_file_kb]}") MB | $(kb_mb "${f[${p}_rss_anon_kb]}") MB | $(kb_mb "${f[${p}_pss_kb]}") MB | ${f[${p}_threads]} |"
  done
  echo
  echo "Modules that import Foundation (the whole of it, ICU included): ${foundation:-none}."
} >"$report"
cat "$report"

if [ "$update" = 1 ]; then
  doc="$repo/docs/benchmarks.md"
  begin='<!-- footprint figures: scripts/bench/footprint.sh --update-docs -->'
  end='<!-- end of footprint figures -->'
  grep -qF "$begin" "$doc" && grep -qF "$end" "$doc" || die "docs/benchmarks.md has no footprint markers"
  awk -v b="$begin" -v e="$end" -v f="$report" '
    $0 == b { print; while ((getline line < f) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip' "$doc" >"$doc.new" && mv "$doc.new" "$doc"
  log "docs/benchmarks.md updated"
fi
