#!/usr/bin/env bash
# Guest side of scripts/bench/footprint.sh (run by scripts/rig/run.sh --pfs 2):
# the packaged sriovd (from the .deb unpacked in $RIG_OUT/pkg) managing two
# PFs with 7 VFs each, left idle, and a python3 holding a pyroute2 IPRoute;
# their memory from /proc, as KEY=value lines in $RIG_OUT/footprint.txt.
#
# usage: footprint-guest.sh --python PY [--idle SECONDS]
set -euo pipefail
. "$RIG_REPO/scripts/rig/lib.sh"
python="" idle=30
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python="$2"; shift 2 ;;
    --idle) idle="$2"; shift 2 ;;
    *) rig_die "unknown argument $1" ;;
  esac
done
[ -x "$python" ] || rig_die "no python at '$python'"
read -r -a PFS <<< "$RIG_PFS"
[ "${#PFS[@]}" = 2 ] || rig_die "needs two PFs, got: $RIG_PFS"
pkg="$RIG_OUT/pkg"
out="$RIG_OUT/footprint.txt"
: >"$out"
r() { echo "$1=$2" >>"$out"; }
# mem PID PREFIX: resident memory figures of a process, in kB.
mem() {
  r "$2_vmrss_kb" "$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status")"
  r "$2_vmhwm_kb" "$(awk '/^VmHWM:/ {print $2}' "/proc/$1/status")"
  r "$2_rss_anon_kb" "$(awk '/^RssAnon:/ {print $2}' "/proc/$1/status")"
  r "$2_rss_file_kb" "$(awk '/^RssFile:/ {print $2}' "/proc/$1/status")"
  r "$2_pss_kb" "$(awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup")"
  r "$2_threads" "$(awk '/^Threads:/ {print $2}' "/proc/$1/status")"
}

conf=/run/footprint.toml
{
  printf '[daemon]\nreconcile_interval_seconds = 30\n'
  for pf in "${PFS[@]}"; do
    ip link set dev "$(rig_pf_netdev "$pf")" up
    printf '\n[[pf]]\npci = "%s"\nnum_vfs = 7\n' "$pf"
  done
} >"$conf"
sock=/run/sriovd/sriovd.sock
mkdir -p /run/sriovd /var/lib/sriovd-footprint
"$pkg/usr/sbin/sriovd" --config "$conf" --socket "$sock" --state-dir /var/lib/sriovd-footprint \
  --log-target stderr >"$RIG_OUT/sriovd.log" 2>&1 &
sriovd=$!
ctl() { "$pkg/usr/bin/sriovctl" --socket "$sock" "$@"; }
rig_wait_for "ctl health >/dev/null 2>&1" 120 || rig_die "sriovd did not come up"
# vf_count: how many VFs sriovd lists (GET /v1/vfs answers {"vfs": [...]}).
vf_count() { ctl --json vfs | "$python" -c 'import json,sys; print(len(json.load(sys.stdin)["vfs"]))'; }
rig_wait_for '[ "$(vf_count 2>/dev/null)" = 14 ]' 180 || rig_die "sriovd did not reach 14 VFs (it lists: $(vf_count 2>&1))"
r vfs "$(vf_count)"
r numvfs "$(for pf in "${PFS[@]}"; do cat "/sys/bus/pci/devices/$pf/sriov_numvfs"; done | paste -sd+)"
# Idle: no requests for a while (one periodic reconcile pass included).
sleep "$idle"
mem "$sriovd" sriovd
r sriovd_version "$("$pkg/usr/sbin/sriovd" --version)"

# pyroute2: an IPRoute holding its netlink socket, having read every link once
# (what OpenStack's SR-IOV agent keeps).
"$python" -c '
import os, signal, sys
from pyroute2 import IPRoute
import pyroute2
ipr = IPRoute()
links = ipr.get_links()
print(pyroute2.__version__, len(links), flush=True)
signal.pause()
' >"$RIG_OUT/pyroute2.txt" 2>&1 &
py=$!
rig_wait_for "[ -s '$RIG_OUT/pyroute2.txt' ]" 60 || rig_die "pyroute2 did not start: $(cat "$RIG_OUT/pyroute2.txt")"
sleep 5
mem "$py" pyroute2
r pyroute2_version "$(cut -d' ' -f1 "$RIG_OUT/pyroute2.txt")"
r python_version "$("$python" -c 'import platform; print(platform.python_version())')"
kill "$py" 2>/dev/null || true

# A bare python3, for what the interpreter alone costs.
"$python" -c 'import signal; print("up", flush=True); signal.pause()' >"$RIG_OUT/python.txt" 2>&1 &
bare=$!
rig_wait_for "[ -s '$RIG_OUT/python.txt' ]" 60
sleep 2
mem "$bare" python
kill "$bare" 2>/dev/null || true

kill -TERM "$sriovd"
wait "$sriovd" 2>/dev/null || true
r kernel "$(uname -r)"
r done yes
