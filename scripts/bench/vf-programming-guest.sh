#!/usr/bin/env bash
# Runs inside the SR-IOV test VM (started by scripts/bench/vf-programming.sh through
# scripts/rig/run.sh): brings the first igb PF up with all its VFs, starts sriovd,
# and runs scripts/bench/vf_bench.py, which writes $RIG_OUT/report.txt and
# results.json.
#
# usage: vf-programming-guest.sh --python PY [--rounds N] [--methods LIST]
#                                [--bin DIR] [--call-timeout S] [--budget S] [--concurrent]
#
# --concurrent: the second igb PF gets all its VFs too, and vf_bench.py also
# programs both PFs through sriovd, one at a time and at once.
#
# Exits 0 once the report is written (whether or not every method could be
# measured: $RIG_OUT/bench-status says, 0 = all measured, 1 = not all), non-zero
# when the benchmark could not run at all.
set -euo pipefail
. "$RIG_REPO/scripts/rig/lib.sh"

python="" rounds=20 methods="sriovd,ip,pyroute2,rawnl" bin="$RIG_REPO/.build/debug" call_timeout=10 budget=900
concurrent=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --python) python="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --methods) methods="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --call-timeout) call_timeout="$2"; shift 2 ;;
    --budget) budget="$2"; shift 2 ;;
    --concurrent) concurrent=1; shift ;;
    *) rig_die "unknown argument: $1" ;;
  esac
done
[ -n "$python" ] || rig_die "--python is required"
[ -x "$python" ] || rig_die "python $python not found or not executable in the guest"
rm -f "$RIG_OUT/report.txt" "$RIG_OUT/results.json" "$RIG_OUT/bench-status" "$RIG_OUT/sriovd.log"

read -r -a pfs <<< "${RIG_PFS:-}"
[ "${#pfs[@]}" -ge 1 ] || rig_die "no SR-IOV PF in the guest (RIG_PFS is empty)"
pf="${pfs[0]}"
dev="/sys/bus/pci/devices/$pf"
netdev="$(rig_pf_netdev "$pf")"
pf2="" dev2="" netdev2=""
if [ "$concurrent" = 1 ]; then
  [ "${#pfs[@]}" -ge 2 ] || rig_die "--concurrent needs two SR-IOV PFs in the guest (RIG_PFS: ${RIG_PFS:-})"
  pf2="${pfs[1]}"
  dev2="/sys/bus/pci/devices/$pf2"
  netdev2="$(rig_pf_netdev "$pf2")"
fi

sriovd_pid=""
# sriovd logs one line per change: keep that off the 9p share (RIG_OUT) while
# measuring, as journald would; copied to $RIG_OUT/sriovd.log at the end.
sriovd_log=/run/sriovd-bench.log
cleanup() {
  if [ -n "$sriovd_pid" ] && kill -0 "$sriovd_pid" 2>/dev/null; then
    kill -TERM "$sriovd_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$sriovd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$sriovd_pid" 2>/dev/null || true
  fi
  [ -f "$sriovd_log" ] && cp "$sriovd_log" "$RIG_OUT/sriovd.log" 2>/dev/null || true
  [ -e "$dev/sriov_numvfs" ] && echo 0 > "$dev/sriov_numvfs" 2>/dev/null || true
  if [ -n "$dev2" ] && [ -e "$dev2/sriov_numvfs" ]; then echo 0 > "$dev2/sriov_numvfs" 2>/dev/null || true; fi
}
trap cleanup EXIT

for p in "$pf" $pf2; do
  n="$(rig_pf_netdev "$p")"
  t="$(cat "/sys/bus/pci/devices/$p/sriov_totalvfs")"
  rig_log "PF $p ($n): up, $t VFs"
  ip link set dev "$n" up
  rig_set_numvfs "$p" "$t"
done
# Let the links come up before timing anything (the carrier event reaches the VFs).
for n in "$netdev" $netdev2; do
  rig_wait_for "[ \"\$(cat /sys/class/net/$n/operstate)\" = up ]" 30 \
    || rig_log "WARNING: $n operstate is $(cat "/sys/class/net/$n/operstate"), going on"
done
rig_settle 30

sriovd_note=""
case ",$methods," in
  *,sriovd,*)
    sock=/run/sriovd/sriovd.sock
    state=/var/lib/sriovd-bench
    if [ ! -x "$bin/sriovd" ]; then
      sriovd_note="no sriovd binary at $bin/sriovd (swift build --product sriovd)"
    else
      mkdir -p "$state" /run/sriovd
      rm -f "$sock"
      rig_log "starting $bin/sriovd"
      "$bin/sriovd" --socket "$sock" --state-dir "$state" --log-target stderr \
        >>"$sriovd_log" 2>&1 &
      sriovd_pid=$!
      # Up when its health endpoint answers (python: no dependence on sriovctl).
      health="import socket,sys
s=socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect('$sock')
s.sendall(b'GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
sys.exit(0 if s.recv(64).startswith(b'HTTP/1.1 200') else 1)"
      if ! rig_wait_for "kill -0 $sriovd_pid && [ -S '$sock' ] && '$python' -c \"\$health\"" 90; then
        sriovd_note="sriovd did not come up within 90 s (see sriovd.log)"
        kill -0 "$sriovd_pid" 2>/dev/null || sriovd_note="sriovd exited at start (see sriovd.log)"
        tail -n 20 "$sriovd_log" >&2 || true
      else
        rig_log "sriovd up (pid $sriovd_pid)"
      fi
    fi
    ;;
esac

rc=0
timeout --kill-after=10 "$budget" "$python" "$RIG_REPO/scripts/bench/vf_bench.py" \
  --pf "$pf" --rounds "$rounds" --methods "$methods" --call-timeout "$call_timeout" \
  --out "$RIG_OUT" ${sriovd_note:+--sriovd-note "$sriovd_note"} ${pf2:+--concurrent-pf "$pf2"} || rc=$?
case "$rc" in
  0|1) echo "$rc" > "$RIG_OUT/bench-status" ;;
  124|137) rig_die "vf_bench.py did not finish within ${budget}s" ;;
  *) rig_die "vf_bench.py failed (exit $rc)" ;;
esac
[ -f "$RIG_OUT/report.txt" ] || rig_die "vf_bench.py wrote no report"
