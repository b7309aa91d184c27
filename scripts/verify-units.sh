#!/usr/bin/env bash
# Checks sriovd's systemd files: the units with `systemd-analyze verify`, the
# sysusers.d and tmpfiles.d files by applying them to an empty root, and prints
# the service's `systemd-analyze security` exposure where --offline is
# supported (systemd 252+).
#   scripts/verify-units.sh [SRIOVD_BINARY]
# SRIOVD_BINARY (default .build/debug/sriovd) stands in for the units'
# /usr/sbin/sriovd (ExecStart=, ExecStartPost=), which verify requires to exist. Exits non-zero on
# any error or warning; 77 when systemd-analyze is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."

binary="$(realpath -m "${1:-.build/debug/sriovd}")"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "verify-units: systemd-analyze is not installed (apt-get install systemd)" >&2
  exit 77
fi
[ -x "$binary" ] || { echo "verify-units: $binary is not an executable (swift build)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/units" "$work/root"
sed "s#^ExecStartPost=-/usr/sbin/sriovd #ExecStartPost=-$binary #" systemd/sriovd.socket > "$work/units/sriovd.socket"
sed "s#^ExecStart=/usr/sbin/sriovd #ExecStart=$binary #" systemd/sriovd.service > "$work/units/sriovd.service"
grep -q "^ExecStart=$binary " "$work/units/sriovd.service" || {
  echo "verify-units: sriovd.service has no ExecStart=/usr/sbin/sriovd line to point at $binary" >&2; exit 1; }

status=0
# check quiet|chatty NAME COMMAND...: runs COMMAND; failing is an error, and
# so is any output from a quiet one (systemd-analyze verify reports problems
# as warnings and still exits 0).
check() {
  local out
  if ! out="$("${@:3}" 2>&1)"; then
    printf 'verify-units: %s FAILED\n%s\n' "$2" "$out" >&2; status=1
  elif [ "$1" = quiet ] && [ -n "$out" ]; then
    printf 'verify-units: %s warned\n%s\n' "$2" "$out" >&2; status=1
  else
    echo "verify-units: $2 OK"
  fi
}

# --man=no: the Documentation= file is not installed here.
check quiet "systemd-analyze verify sriovd.service sriovd.socket" \
  systemd-analyze verify --man=no "$work/units/sriovd.service" "$work/units/sriovd.socket"
mkdir -p "$work/root/etc"
check chatty "sriovd.sysusers (applied to an empty root)" \
  systemd-sysusers --root="$work/root" "$PWD/systemd/sriovd.sysusers"
grep -q '^sriovd:' "$work/root/etc/group" && grep -q '^sriovd-ro:' "$work/root/etc/group" || {
  echo "verify-units: sriovd.sysusers did not create groups sriovd and sriovd-ro" >&2; status=1; }
check chatty "sriovd.tmpfiles (applied to an empty root)" \
  systemd-tmpfiles --root="$work/root" --create "$PWD/systemd/sriovd.tmpfiles"
for d in run/sriovd var/lib/sriovd; do
  [ -d "$work/root/$d" ] || { echo "verify-units: sriovd.tmpfiles did not create /$d" >&2; status=1; }
done

if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
  exposure="$(systemd-analyze security --offline=yes --no-pager "$work/units/sriovd.service" 2>&1 | grep 'Overall exposure level' || true)"
  echo "verify-units: ${exposure:-systemd-analyze security printed no exposure level}"
else
  echo "verify-units: this systemd-analyze has no 'security --offline'; exposure not measured"
fi
exit "$status"
