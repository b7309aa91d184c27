#!/usr/bin/env bash
# Inventory scenario: two igb PFs with VFs and assorted VF settings; sriovd's
# /v1/pfs and /v1/vfs are captured next to sysfs and `ip -d -j link` (compared
# by RigTests on the host), before and after the PF's netdev is renamed; then
# SIGTERM must stop sriovd within 5 s and remove its socket.
set -euo pipefail
. "$RIG_REPO/Tests/RigTests/Scenarios/common.sh"

[ "${#PFS[@]}" -ge 2 ] || rig_die "this scenario needs two PFs (got: ${PFS[*]})"
pf1=${PFS[0]} pf2=${PFS[1]}

for pf in "$pf1" "$pf2"; do ip link set dev "$(rig_pf_netdev "$pf")" up; done
rig_set_numvfs "$pf1" 3
rig_set_numvfs "$pf2" 2
n1=$(rig_pf_netdev "$pf1")
n2=$(rig_pf_netdev "$pf2")
# Settings made behind sriovd's back, so its report has something to show.
ip link set dev "$n1" vf 0 mac 52:54:00:aa:00:01 vlan 100 qos 3
ip link set dev "$n1" vf 1 spoofchk off trust on
ip link set dev "$n1" vf 2 mac 52:54:00:aa:00:03 vlan 4094
ip link set dev "$n2" vf 1 mac 52:54:00:bb:00:02 vlan 7

start_sriovd
snapshot before
{ ctl pfs; echo; ctl vfs; } >"$RIG_OUT/tables.txt"

# Error paths, from the command line.
set +e
ctl pf 0000:zz:00.0 >/dev/null 2>"$RIG_OUT/bad-address.err"; echo "bad_address_exit=$?" >"$RIG_OUT/errors.txt"
ctl pf 0000:09:00.0 >/dev/null 2>"$RIG_OUT/unknown-pf.err"; echo "unknown_pf_exit=$?" >>"$RIG_OUT/errors.txt"
set -e

# A rename behind sriovd's back: it must still find the PF by PCI address.
ip link set dev "$n1" down
ip link set dev "$n1" name sriovren0
ip link set dev sriovren0 up
snapshot renamed

start=$(date +%s%N)
kill -TERM "$SRIOVD_PID"
rc=0; wait "$SRIOVD_PID" || rc=$?
end=$(date +%s%N)
{
  echo "exit_code=$rc"
  echo "stop_ms=$(( (end - start) / 1000000 ))"
  if [ -e "$SOCK" ]; then echo "socket_removed=no"; else echo "socket_removed=yes"; fi
} >"$RIG_OUT/shutdown.txt"

# The PFs and VFs seen, as the state store keeps them.
dump_seen() {
  /usr/bin/python3 - "$STATE/state.db" "$1" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
db.row_factory = sqlite3.Row
out = {t: [dict(r) for r in db.execute(f"SELECT * FROM {t} ORDER BY pci")] for t in ("seenPF", "seenVF")}
json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
}
dump_seen "$RIG_OUT/seen-1.json"

# PF 2 taken off the bus while sriovd is down: the next start records it gone
# (and says so); after a rescan brings it back, the start after that says it is back.
echo 1 >"/sys/bus/pci/devices/$pf2/remove"
start_sriovd
kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" || true
dump_seen "$RIG_OUT/seen-2.json"
echo 1 >/sys/bus/pci/rescan
rig_wait_for "[ -e /sys/bus/pci/devices/$pf2/sriov_totalvfs ]" 30 || true
start_sriovd
kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" || true
dump_seen "$RIG_OUT/seen-3.json"
rig_log "done"
