# shellcheck shell=bash
# Two "hosts" in the SR-IOV test VM (run.sh --pfs 3 --wire), for the
# migration scenario and the demo: daemon A owns PF 0 (the source), daemon B
# PF 1 (the destination); PF 2 is the network they both reach over the QEMU
# hub, a bridge holding the traffic peer (10.77.0.1 on its VLAN device) and
# the guest's standby veth. The guest is the namespace "guest" with an
# active-backup bond (the VF primary, the veth standby, the guest's MAC).
. "$RIG_REPO/Tests/RigTests/Scenarios/common.sh"

pfA=${PFS[0]} pfB=${PFS[1]} pfC=${PFS[2]:?the migration rig needs 3 PFs (run.sh --pfs 3 --wire)}
netA=$(rig_pf_netdev "$pfA") netB=$(rig_pf_netdev "$pfB") netC=$(rig_pf_netdev "$pfC")
MAC=52:54:00:77:00:01
VLAN=${MIGRATION_VLAN:-100}
PEER=10.77.0.1
PROBE="$RIG_REPO/Tests/RigTests/Scenarios/probe.py"
results="${results:-$RIG_OUT/results.txt}"
SOCK_A=/run/sriovd-a.sock SOCK_B=/run/sriovd-b.sock
STATE_A=/var/lib/sriovd-a STATE_B=/var/lib/sriovd-b
declare -A DAEMON_PID

say() { echo "$1=$2" >>"$results"; rig_log "$1=$2"; }
py() { /usr/bin/python3 "$@"; }
# field NAME PATH: a member of $RIG_OUT/NAME.json (a.b.0.c).
field() { py -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    d = d[int(k)] if isinstance(d, list) else d.get(k) if isinstance(d, dict) else None
print("" if d is None else d)' "$RIG_OUT/$1.json" "$2"; }

# start_daemon A|B [ENV=VALUE...]: one daemon with its own socket, state and PF.
start_daemon() {
  local side="$1"; shift
  local sock_var=SOCK_$side state_var=STATE_$side pf_var=pf$side
  mkdir -p /etc/sriovd-test "${!state_var}"
  cat >"/etc/sriovd-test/migration-$side.toml" <<TOML
[daemon]
reconcile_interval_seconds = 0
[[pf]]
pci = "${!pf_var}"
num_vfs = 2
drivers_autoprobe = false
TOML
  env "$@" "$BIN/sriovd" --socket "${!sock_var}" --state-dir "${!state_var}" --log-target stderr \
    --config "/etc/sriovd-test/migration-$side.toml" >>"$RIG_OUT/sriovd-$side.log" 2>&1 &
  DAEMON_PID[$side]=$!
  rig_wait_for "'$BIN/sriovctl' --socket '${!sock_var}' health >/dev/null 2>&1" 60 \
    || { tail -n 50 "$RIG_OUT/sriovd-$side.log" >&2; rig_die "sriovd $side did not come up"; }
}
stop_daemon() { kill -TERM "${DAEMON_PID[$1]}" 2>/dev/null || true; wait "${DAEMON_PID[$1]}" 2>/dev/null || true; }
# on A|B NAME METHOD PATH [BODY]: one API call to that daemon (see api).
on() { local side="$1"; shift; local sock_var=SOCK_$side; SOCK=${!sock_var} api "$@"; }
# sctl_on A|B ARGS: sriovctl against that daemon.
sctl_on() { local side="$1"; shift; local sock_var=SOCK_$side; "$BIN/sriovctl" --socket "${!sock_var}" "$@"; }

# The network, the guest and the peer's echo server.
migration_setup() {
  local l
  for l in "$netA" "$netB" "$netC"; do ip link set "$l" up; done
  ip link add br0 type bridge vlan_filtering 1
  ip link set br0 address "$(cat "/sys/class/net/$netC/address")"
  ip link set "$netC" master br0
  ip link add veth-h type veth peer name veth-g
  ip link set veth-h master br0
  bridge vlan add dev veth-h vid "$VLAN" pvid untagged
  bridge vlan add dev "$netC" vid "$VLAN"
  bridge vlan add dev br0 vid "$VLAN" self
  ip link add link br0 name br0.v type vlan id "$VLAN"
  ip addr add "$PEER/24" dev br0.v
  for l in br0 br0.v veth-h; do ip link set "$l" up; done
  ip netns add guest
  ip link set veth-g netns guest
  guest_bond
  py "$PROBE" serve "$PEER" 7777 &
  ECHO_PID=$!
}

# guest_bond: the guest's bond, as a DNIS guest sets it up: active-backup,
# MII monitoring every 20 ms, the guest's MAC, frames taken from both slaves
# (all_slaves_active: what is in flight on the old path during a switch
# still arrives), the veth standby enslaved.
guest_bond() {
  ip netns exec guest sh -ec "
    ip link set lo up
    ip link add bond0 type bond mode active-backup miimon 20 all_slaves_active 1
    ip link set bond0 address $MAC
    ip link set veth-g down
    ip link set veth-g master bond0
    ip link set bond0 up
    ip addr add 10.77.0.2/24 dev bond0"
}

# nic PF: the NIC as the orchestrator asks for it on a host (only pf differs).
nic() { echo '{"nic":"net0","pf":"'"$1"'","driver":"host","mac":"'"$MAC"'","vlan":'"$VLAN"',"spoofCheck":true,
  "failover":{"adapter":"netns","namespace":"guest","bond":"bond0","standby":"veth-g"}}'; }
incoming() { echo '{"nics":['"$(nic "$1")"']}'; }
assign_body() { echo '{"vm":"vm1",'"$(nic "$1" | sed 's/^{//')"; }

# active_slave: the PCI address of the device behind the bond's active slave,
# or the slave's name when it has none (the veth).
active_slave() {
  ip netns exec guest sh -c '
    a=$(cat /sys/class/net/bond0/bonding/active_slave 2>/dev/null)
    [ -n "$a" ] || { echo none; exit; }
    if [ -e "/sys/class/net/$a/device" ]; then d=$(readlink -f "/sys/class/net/$a/device"); echo "${d##*/}"; else echo "$a"; fi'
}
# vf_on PF PCI: "mac vlan" of that VF as its PF reports it.
vf_on() {
  local pf="$1" vf="$2" idx
  for idx in 0 1; do
    [ "$(basename "$(readlink -f "/sys/bus/pci/devices/$pf/virtfn$idx")")" = "$vf" ] || continue
    ip -j link show dev "$(rig_pf_netdev "$pf")" | py -c '
import json,sys; i=int(sys.argv[1]); v=[x for x in json.load(sys.stdin)[0]["vfinfo_list"] if x["vf"]==i][0]
print(v["address"], v.get("vlan_list",[{}])[0].get("vlan", 0))' "$idx"
  done
}
assigned_vf() { sctl_on "$1" --json assignment vm1 net0 | py -c 'import json,sys; print(json.load(sys.stdin)["vf"])'; }

# probe_start NAME INTERVAL / probe_stop NAME: UDP probes from the guest to
# the peer (probe.py; `ip netns exec` forks, so a stop file ends them), then
# NAME_sent, NAME_lost and NAME_gap_ms (the longest time between two replies).
probe_start() {
  rm -f "$RIG_OUT/probe-$1.stop" "$RIG_OUT/probe-$1.json.started"
  ip netns exec guest /usr/bin/python3 "$PROBE" send "$PEER" 7777 "$2" "$RIG_OUT/probe-$1.json" "$RIG_OUT/probe-$1.stop" &
  PROBE_PID=$!
  rig_wait_for "[ -e '$RIG_OUT/probe-$1.json.started' ]" 60 || rig_die "probe $1 did not start"
  sleep 0.5
}
probe_stop() {
  sleep 0.5
  touch "$RIG_OUT/probe-$1.stop"
  local i
  for i in $(seq 1 50); do kill -0 "$PROBE_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$PROBE_PID" 2>/dev/null || true
  wait "$PROBE_PID" 2>/dev/null || true
  [ -s "$RIG_OUT/probe-$1.json" ] || echo '{"sent":0,"lost":0,"gap_ms":0}' >"$RIG_OUT/probe-$1.json"
  py - "$RIG_OUT/probe-$1.json" "$1" >>"$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); n = sys.argv[2]
print(f"{n}_sent={r['sent']}\n{n}_lost={r['lost']}\n{n}_gap_ms={r['gap_ms']}")
PY
  rig_log "probes $1: $(grep "^$1_" "$results" | tr '\n' ' ')"
}
