# shellcheck shell=bash
# Shared by sriovd's rig scenarios (run inside the test VM by scripts/rig/run.sh).
. "$RIG_REPO/scripts/rig/lib.sh"

BIN="${SRIOVD_BIN_DIR:-$RIG_REPO/.build/debug}"
SOCK=/run/sriovd/sriovd.sock
STATE=/var/lib/sriovd-test
[ -x "$BIN/sriovd" ] || rig_die "no sriovd binary in $BIN (build first: swift build)"

read -r -a PFS <<< "$RIG_PFS"

ctl() { "$BIN/sriovctl" --socket "$SOCK" "$@"; }

# start_sriovd [ARGS...]: start the daemon in the background, wait for its socket.
# With SRIOVD_TEST_CRASH_POINT set it gets the test flag that lets it honour
# the variable (sriovd refuses to start on the variable alone).
start_sriovd() {
  mkdir -p "$STATE"
  local test_flag=()
  [ -n "${SRIOVD_TEST_CRASH_POINT:-}" ] && test_flag=(--test-crash-points)
  "$BIN/sriovd" --socket "$SOCK" --state-dir "$STATE" --log-target stderr "${test_flag[@]}" "$@" \
    >>"$RIG_OUT/sriovd.log" 2>&1 &
  SRIOVD_PID=$!
  rig_wait_for "[ -S '$SOCK' ] && '$BIN/sriovctl' --socket '$SOCK' health" 60 \
    || { cat "$RIG_OUT/sriovd.log" >&2; rig_die "sriovd did not come up"; }
  rig_log "sriovd running (pid $SRIOVD_PID)"
}

# dump_sysfs FILE: what sysfs says about every SR-IOV PF and its VFs, one line
# per function, for the host-side test to compare with sriovd's answers.
dump_sysfs() {
  local file="$1" pf dev vf vdev idx netdev
  : >"$file"
  for dev in /sys/bus/pci/devices/*; do
    [ -e "$dev/sriov_totalvfs" ] || continue
    pf=${dev##*/}
    netdev=$(ls "$dev/net" 2>/dev/null | head -n1)
    printf 'pf %s totalvfs=%s numvfs=%s driver=%s netdev=%s ifindex=%s numa=%s autoprobe=%s vendor=%s device=%s\n' \
      "$pf" "$(cat "$dev/sriov_totalvfs")" "$(cat "$dev/sriov_numvfs")" \
      "$(basename "$(readlink "$dev/driver" 2>/dev/null || echo -)")" "${netdev:--}" \
      "$( [ -n "$netdev" ] && cat "$dev/net/$netdev/ifindex" || echo -)" "$(cat "$dev/numa_node")" \
      "$(cat "$dev/sriov_drivers_autoprobe")" "$(cat "$dev/vendor")" "$(cat "$dev/device")" >>"$file"
    for vf in "$dev"/virtfn*; do
      [ -L "$vf" ] || continue
      idx=${vf##*/virtfn}
      vdev=$(readlink -f "$vf")
      printf 'vf %s %s %s driver=%s netdev=%s iommu=%s\n' "$pf" "$idx" "${vdev##*/}" \
        "$(basename "$(readlink "$vdev/driver" 2>/dev/null || echo -)")" \
        "$(ls "$vdev/net" 2>/dev/null | head -n1 || true)" \
        "$(basename "$(readlink "$vdev/iommu_group" 2>/dev/null || echo -)")" >>"$file"
    done
  done
}

# snapshot NAME: sriovd's answers, `ip -d -j link` and sysfs, side by side.
snapshot() {
  local name="$1" pf
  ctl pfs --json >"$RIG_OUT/$name.pfs.json"
  ctl vfs --json >"$RIG_OUT/$name.vfs.json"
  for pf in "${PFS[@]}"; do
    ctl pf "$pf" --json >"$RIG_OUT/$name.pf-$pf.json"
    ip -d -j link show dev "$(rig_pf_netdev "$pf")" >"$RIG_OUT/$name.ip-$pf.json"
  done
  dump_sysfs "$RIG_OUT/$name.sysfs.txt"
}

# api NAME METHOD PATH [JSON]: one API call with curl; the body goes to
# $RIG_OUT/NAME.json and the HTTP status to $RIG_OUT/NAME.status.
api() {
  local name="$1" method="$2" path="$3" body="${4:-}"
  local args=(-sS --unix-socket "$SOCK" -X "$method" -o "$RIG_OUT/$name.json" -w '%{http_code}')
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  curl "${args[@]}" "http://localhost$path" >"$RIG_OUT/$name.status" || echo "curl failed" >>"$RIG_OUT/$name.status"
  rig_log "$method $path ${body:+$body }-> $(cat "$RIG_OUT/$name.status")"
}

# ipvf NAME PF: `ip -d -j link show` of a PF, to NAME.ip.json.
ipvf() { ip -d -j link show dev "$(rig_pf_netdev "$2")" >"$RIG_OUT/$1.ip.json"; }
