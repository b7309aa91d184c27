#!/usr/bin/env bash
# Runs as sriovd-rig-check.service under the systemd that systemd.sh starts:
# socket activation, the notify protocol, the sandbox doing real work (sysfs
# and netlink writes), reload, restart after a crash, stop. One key=value per
# line to $RIG_OUT/systemd-results.txt.
set -uo pipefail
. "$RIG_REPO/scripts/rig/lib.sh"
read -r -a PFS <<< "$RIG_PFS"
pf=${PFS[0]}
SOCK=/run/sriovd/sriovd.sock
out="$RIG_OUT/systemd-results.txt"
r() { echo "$1=$2" >>"$out"; }
api() { # NAME METHOD PATH [BODY]: status to NAME, body to NAME.json
  local args=(-sS --max-time 60 --unix-socket "$SOCK" -X "$2" -o "$RIG_OUT/$1.json" -w '%{http_code}')
  [ -n "${4:-}" ] && args+=(-H 'Content-Type: application/json' --data "$4")
  r "$1" "$(curl "${args[@]}" "http://localhost$3" 2>>"$RIG_OUT/checks.log" || echo failed)"
}
show() { systemctl show sriovd.service -p "$1" --value; }

r socket_active "$(systemctl is-active sriovd.socket)"
r service_before "$(systemctl is-active sriovd.service)"
r socket_mode "$(stat -c '%a %U %G' "$SOCK")"
r socket_acl "$(/usr/bin/python3 -c 'import os,sys; print(len(os.getxattr(sys.argv[1], "system.posix_acl_access")))' "$SOCK" 2>/dev/null || echo none)"

api health GET /v1/health
r service_after "$(systemctl is-active sriovd.service)"
if ! grep -q '^health=200$' "$out"; then
  # Not started: say why, and do not wait out every request's timeout.
  systemctl status sriovd.service --no-pager -l >"$RIG_OUT/sriovd-status.txt" 2>&1
  journalctl -u sriovd.service --no-pager >"$RIG_OUT/sriovd-journal.txt" 2>&1
  r done no
  exit 1
fi
r type "$(show Type)"
r substate "$(show SubState)"
r status_text "$(show StatusText)"
r watchdog_usec "$(show WatchdogUSec)"
pid1=$(show MainPID)
r main_pid "$pid1"
r capabilities "$(grep CapBnd "/proc/$pid1/status" | awk '{print $2}')"
r no_new_privs "$(grep NoNewPrivs "/proc/$pid1/status" | awk '{print $2}')"

# The sandbox lets it do its work: sysfs (VF count, driver) and netlink (settings).
api numvfs PUT "/v1/pfs/$pf" '{"numVFs": 2, "driversAutoprobe": false}'
r numvfs_sysfs "$(cat "/sys/bus/pci/devices/$pf/sriov_numvfs")"
vf=$(rig_vf_pci "$pf" 0)
api settings PATCH "/v1/vfs/$vf" '{"mac":"52:54:00:5d:00:01","vlan":21,"trust":true}'
r vf_mac "$(ip -j -d link show dev "$(rig_pf_netdev "$pf")" | /usr/bin/python3 -c 'import json,sys; print([v for v in json.load(sys.stdin)[0]["vfinfo_list"] if v["vf"]==0][0]["address"])')"
api bind POST "/v1/vfs/$vf/driver" '{"driver":"vfio-pci"}'
r vf_driver "$(basename "$(readlink "/sys/bus/pci/devices/$vf/driver" 2>/dev/null || echo none)")"
api unbind POST "/v1/vfs/$vf/driver" '{"driver":"none"}'
api restore POST "/v1/vfs/$vf/restore"
# The sandbox keeps it from writing where it has no business.
r state_db "$( [ -e /var/lib/sriovd/state.db ] && echo yes || echo no)"

# Reload (ExecReload: SIGHUP) keeps it running; a crash is restarted, the socket kept.
systemctl reload sriovd.service
sleep 2
r after_reload "$(systemctl is-active sriovd.service) $(show MainPID)"
kill -KILL "$pid1"
for _ in $(seq 60); do
  [ "$(show MainPID)" != "$pid1" ] && [ "$(show MainPID)" != 0 ] && [ "$(systemctl is-active sriovd.service)" = active ] && break
  sleep 1
done
api health_after_crash GET /v1/health
r restarted "$(systemctl is-active sriovd.service) $( [ "$(show MainPID)" != "$pid1" ] && echo new-pid || echo same-pid) $(show NRestarts)"

api numvfs_zero PUT "/v1/pfs/$pf" '{"numVFs": 0}'
systemctl stop sriovd.service
r stopped "$(systemctl is-active sriovd.service) $( [ -S "$SOCK" ] && echo socket-kept || echo socket-gone)"
journalctl -u sriovd.service --no-pager -o short-monotonic >"$RIG_OUT/sriovd-journal.txt" 2>&1 || true
journalctl -u sriovd.service --no-pager -o json >"$RIG_OUT/sriovd-journal.json" 2>&1 || true
{ systemd-analyze blame | head -40; echo; systemd-analyze critical-chain sriovd-rig-check.service; } \
  >"$RIG_OUT/systemd-blame.txt" 2>&1 || true
r done yes
