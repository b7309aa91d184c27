#!/usr/bin/env bash
# Watch and heal on the real igb driver: `rmmod igb; modprobe igb` under two
# assignments (one vfio-pci, one host driver with a netns failover guest), a
# VF's VLAN and trust changed behind sriovd's back (corrected, then, after a
# restart with drift = "report", only reported), `sriovctl events` following
# all of it, /metrics on the socket and on TCP, and a burst of 200
# concurrent API requests while the stream and a scrape go on.
set -euo pipefail
. "$RIG_REPO/Tests/RigTests/Scenarios/common.sh"

pf=${PFS[0]}
R="$RIG_OUT/watch-results.txt"
: >"$R"
res() { echo "$1=$2" >>"$R"; }
py() { /usr/bin/python3 "$@"; }
now_ms() { date +%s%3N; }
conf=/etc/sriovd-test/watch.toml
mkdir -p /etc/sriovd-test

write_config() { # DRIFT
  cat >"$conf" <<TOML
[daemon]
reconcile_interval_seconds = 0
drift = "$1"

[metrics]
listen = "127.0.0.1:9477"

[[pf]]
pci = "$pf"
num_vfs = 4
drivers_autoprobe = true

[[vf]]
pf = "$pf"
index = 3
vlan = 300
TOML
  chmod 0644 "$conf"
}

# vf_state INDEX: "mac vlan trust" of VF INDEX as the PF reports it ("none" when absent).
vf_state() {
  local netdev
  netdev=$(rig_pf_netdev "$pf" 2>/dev/null) || { echo none; return; }
  ip -d -j link show dev "$netdev" | py -c '
import json,sys
i=int(sys.argv[1]); link=json.load(sys.stdin)[0]
vf=[v for v in link.get("vfinfo_list",[]) if v["vf"]==i]
if not vf: print("none"); sys.exit()
v=vf[0]; vl=(v.get("vlan_list") or [{}])[0]
print(v["address"], vl.get("vlan", v.get("vlan",0)), "on" if v.get("trust") else "off")' "$1"
}
state_of() { # VM: the assignment's state
  ctl --json assignment "$1" net0 2>/dev/null | py -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || echo none
}
field_of() { # VM FIELD
  ctl --json assignment "$1" net0 | py -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1]))' "$2"
}
driver_of() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null || echo none)"; }
active_slave() {
  ip netns exec wguest sh -c '
    a=$(cat /sys/class/net/bond0/bonding/active_slave 2>/dev/null)
    [ -n "$a" ] || { echo none; exit; }
    if [ -e "/sys/class/net/$a/device" ]; then d=$(readlink -f "/sys/class/net/$a/device"); echo "${d##*/}"; else echo "$a"; fi'
}
follow_events() { # FILE: `sriovctl events --json` in the background
  ctl events --json --since 0 >"$1" 2>"$1.err" &
  EVENTS_PID=$!
  rig_wait_for "grep -q '\"seq\"' '$1'" 10 || true
}
stop_daemon() {
  kill -TERM "$SRIOVD_PID" 2>/dev/null || true
  wait "$SRIOVD_PID" 2>/dev/null || true
  kill "$EVENTS_PID" 2>/dev/null || true
  wait "$EVENTS_PID" 2>/dev/null || true
}

# The guest: a namespace with an active-backup bond whose standby is a veth.
ip netns add wguest
ip link add veth-wh type veth peer name veth-wg
ip link set veth-wg netns wguest
ip link set veth-wh up
ip netns exec wguest sh -ec "
  ip link set lo up
  ip link add bond0 type bond mode active-backup miimon 20
  ip link set bond0 address 52:54:00:ee:00:02
  ip link set veth-wg master bond0
  ip link set bond0 up"

ip link set dev "$(rig_pf_netdev "$pf")" up
write_config correct
start_sriovd --config "$conf"
rig_wait_for "[ \"\$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)\" = 4 ] && vf_state 3 | grep -q ' 300 '" 60 || true
follow_events "$RIG_OUT/events.jsonl"
ctl events --since 0 >"$RIG_OUT/events.txt" 2>&1 &
EVENTS_TEXT_PID=$!

api assign-vfio POST /v1/assignments \
  '{"vm":"vm1","nic":"net0","pf":"'"$pf"'","driver":"vfio-pci","mac":"52:54:00:ee:00:01","vlan":100}'
api assign-host POST /v1/assignments \
  '{"vm":"vm2","nic":"net0","pf":"'"$pf"'","driver":"host","mac":"52:54:00:ee:00:02","vlan":200,"trust":false,
    "failover":{"adapter":"netns","namespace":"wguest","bond":"bond0","standby":"veth-wg"}}'
res assign_vfio_status "$(cat "$RIG_OUT/assign-vfio.status")"
res assign_host_status "$(cat "$RIG_OUT/assign-host.status")"
i1=$(field_of vm1 vfIndex); vf1=$(field_of vm1 vf)
i2=$(field_of vm2 vfIndex); vf2=$(field_of vm2 vf)
res vf1_before "$(vf_state "$i1")"
res vf2_before "$(vf_state "$i2")"
res active_before "$( [ "$(active_slave)" = "$vf2" ] && echo vf || active_slave)"

# --- the PF's driver goes away and comes back
t0=$(now_ms)
rmmod igb
t_rm=$(now_ms)
res rmmod_ms "$(( t_rm - t0 ))"
rig_wait_for "[ \"\$(state_of vm1)\" = degraded ] && [ \"\$(state_of vm2)\" = degraded ]" 30 || true
res degraded_after_rmmod_ms "$(( $(now_ms) - t_rm ))"
res state_vm1_lost "$(state_of vm1)"
res state_vm2_lost "$(state_of vm2)"
res reason_vm1 "$(field_of vm1 reason)"
ctl assignments >"$RIG_OUT/assignments-degraded.txt" 2>&1 || true
res table_shows_degraded "$(grep -c degraded "$RIG_OUT/assignments-degraded.txt" || true)"
res active_while_lost "$(active_slave)"

t1=$(now_ms)
modprobe igb
rig_wait_for "rig_pf_netdev $pf" 30 || true
ip link set dev "$(rig_pf_netdev "$pf")" up || true
rig_wait_for "[ \"\$(state_of vm1)\" = assigned ] && [ \"\$(state_of vm2)\" = assigned ]" 90 || true
res healed_ms "$(( $(now_ms) - t1 ))"
res state_vm1_healed "$(state_of vm1)"
res state_vm2_healed "$(state_of vm2)"
res numvfs_after "$(cat "/sys/bus/pci/devices/$pf/sriov_numvfs")"
res vf1_after "$(vf_state "$i1")"
res vf2_after "$(vf_state "$i2")"
res driver_vf1_after "$(driver_of "$vf1")"
res driver_vf2_after "$(driver_of "$vf2")"
rig_wait_for "[ \"\$(active_slave)\" = '$vf2' ]" 10 || true
res active_after "$( [ "$(active_slave)" = "$vf2" ] && echo vf || active_slave)"
rig_wait_for "vf_state 3 | grep -q ' 300 '" 10 || true
res declared_vf3_after "$(vf_state 3 | cut -d' ' -f2)"

# --- drift, corrected (the PF is up: its link event tells sriovd)
netdev=$(rig_pf_netdev "$pf")
t2=$(now_ms)
ip link set dev "$netdev" vf "$i2" vlan 5
ip link set dev "$netdev" vf "$i2" trust on
rig_wait_for "vf_state $i2 | grep -q ' 200 off'" 10 || true
res drift_corrected_ms "$(( $(now_ms) - t2 ))"
res vf2_after_drift "$(vf_state "$i2")"
ip link set dev "$netdev" vf 3 vlan 7
rig_wait_for "vf_state 3 | grep -q ' 300 '" 10 || true
res declared_vf3_after_drift "$(vf_state 3 | cut -d' ' -f2)"

# --- /metrics on the socket and on TCP
curl -sS --unix-socket "$SOCK" -o "$RIG_OUT/metrics-socket.txt" -w '%{http_code}' http://localhost/metrics >"$RIG_OUT/metrics-socket.status" || true
curl -sS -o "$RIG_OUT/metrics-tcp.txt" -w '%{http_code}' http://127.0.0.1:9477/metrics >"$RIG_OUT/metrics-tcp.status" || true
curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:9477/v1/vfs >"$RIG_OUT/tcp-api.status" || true
res metrics_socket_status "$(cat "$RIG_OUT/metrics-socket.status")"
res metrics_tcp_status "$(cat "$RIG_OUT/metrics-tcp.status")"
res tcp_api_status "$(cat "$RIG_OUT/tcp-api.status")"

# --- a burst of 200 concurrent requests: 120 reads, 40 changes, 40 scrapes
drift_before=$(grep -c '"vf.drift"' "$RIG_OUT/events.jsonl" || true)
burst() {
  local n="$1"
  case $(( n % 5 )) in
    0|1|2) curl -sS --unix-socket "$SOCK" -o /dev/null -w '%{http_code}\n' "http://localhost/v1/$([ $((n % 2)) = 0 ] && echo vfs || echo assignments)" ;;
    3) curl -sS --unix-socket "$SOCK" -o /dev/null -w '%{http_code}\n' -X PATCH -H 'Content-Type: application/json' \
         --data "{\"vlan\":$(( 200 + n % 40 + 1 ))}" http://localhost/v1/assignments/vm2/net0 ;;
    4) curl -sS --unix-socket "$SOCK" -o "$RIG_OUT/burst-metrics-$n.txt" -w '%{http_code}\n' http://localhost/metrics ;;
  esac
}
export -f burst
export SOCK RIG_OUT
seq 1 200 | xargs -P 200 -I{} bash -c 'burst {}' >"$RIG_OUT/burst.status" 2>&1 || true
res burst_answers "$(grep -c '^[0-9]' "$RIG_OUT/burst.status" || true)"
res burst_ok "$(grep -c '^2[0-9][0-9]$' "$RIG_OUT/burst.status" || true)"
res burst_scrapes_complete "$(grep -l 'sriovd_assignments{' "$RIG_OUT"/burst-metrics-*.txt 2>/dev/null | wc -l)"
sleep 2
api restore-vlan PATCH /v1/assignments/vm2/net0 '{"vlan":200}'
sleep 1
res burst_false_drift "$(( $(grep -c '"vf.drift"' "$RIG_OUT/events.jsonl" || true) - drift_before ))"
curl -sS --unix-socket "$SOCK" http://localhost/metrics >"$RIG_OUT/metrics-after-burst.txt" || true

stop_daemon
kill "$EVENTS_TEXT_PID" 2>/dev/null || true
wait "$EVENTS_TEXT_PID" 2>/dev/null || true

# --- drift = "report": found and reported, left as found
write_config report
start_sriovd --config "$conf"
follow_events "$RIG_OUT/events-report.jsonl"
sleep 1
ip link set dev "$netdev" vf "$i2" vlan 5
ip link set dev "$netdev" vf "$i2" trust on
rig_wait_for "[ \$(grep -c '\"vf.drift\"' '$RIG_OUT/events-report.jsonl') -ge 2 ]" 10 || true
sleep 2
res vf2_reported "$(vf_state "$i2")"
res reported_events "$(grep -c '"vf.drift"' "$RIG_OUT/events-report.jsonl" || true)"
ctl events --since 0 >"$RIG_OUT/events-report.txt" 2>&1 &
p=$!; sleep 2; kill $p 2>/dev/null || true; wait $p 2>/dev/null || true

api release-vm1 DELETE /v1/assignments/vm1/net0
api release-vm2 DELETE /v1/assignments/vm2/net0
res release_vm1_status "$(cat "$RIG_OUT/release-vm1.status")"
res release_vm2_status "$(cat "$RIG_OUT/release-vm2.status")"
stop_daemon
res done yes
