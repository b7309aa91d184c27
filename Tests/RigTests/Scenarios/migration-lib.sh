# shellcheck shell=bash
# Two "hosts" in the SR-IOV test VM (run.sh --pfs 3 --wire), for the
# migration scenario, its benchmark and the demo: daemon A owns PF 0, daemon
# B PF 1, all PFs on one QEMU hub (one wire). The network is the bridge br0:
# the traffic peer (10.77.0.1 on its VLAN device, with the MAC of the PF
# under the bridge) and the guest's standby veth. It sits in one of two
# topologies (`topology`):
#   i   on PF 2, a third NIC: the peer behind the wire, as seen from both hosts;
#   ii  on the source PF itself (a host with one NIC: the virtio backend
#       bridged onto the PF whose VFs go to VMs): moved to the other PF for
#       the way back.
# The guest is the namespace "guest" with an active-backup bond (the VF
# primary, the veth standby, the guest's MAC), default options or
# all_slaves_active 1 (`bond_options`). One prober in the guest for the whole
# scenario (probe.py run) measures windows (`window`).
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
# A fork costs ~0.1 s under TCG and this runs hundreds of times: the time
# from bash's own printf, not date(1).
rig_log() { printf '[rig %(%T)T] %s\n' -1 "$*" >&2; }

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
  # A crash point needs sriovd's test flag (it refuses the variable alone).
  local test_flag=() a
  for a in "$@"; do case "$a" in SRIOVD_TEST_CRASH_POINT=?*) test_flag=(--test-crash-points) ;; esac; done
  env "$@" "$BIN/sriovd" --socket "${!sock_var}" --state-dir "${!state_var}" --log-target stderr "${test_flag[@]}" \
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

# The network, the guest, the peer's echo server and the guest's prober.
migration_setup() {
  local l
  for l in "$netA" "$netB" "$netC"; do ip link set "$l" up; done
  ip link add br0 type bridge vlan_filtering 1
  ip link add veth-h type veth peer name veth-g
  ip link set veth-h master br0
  bridge vlan add dev veth-h vid "$VLAN" pvid untagged
  bridge vlan add dev br0 vid "$VLAN" self
  ip link add link br0 name br0.v type vlan id "$VLAN"
  ip addr add "$PEER/24" dev br0.v
  for l in br0 br0.v veth-h; do ip link set "$l" up; done
  topology i
  ip netns add guest
  ip link set veth-g netns guest
  guest_bond default
  py "$PROBE" serve "$PEER" 7777 &
  ECHO_PID=$!
  prober_up
}

# topology i | ii A|B: where br0 (the peer and the standby's veth) sits: on
# PF 2 (i), or on the PF of host A or B (ii). The peer takes the MAC of that
# PF (a host's own address on its bridge); both ends forget the old one.
TOPOLOGY=""
topology() {
  local name="$1" dev l
  case "$name" in
    i) dev=$netC ;;
    ii) local v="net$2"; dev=${!v} ;;
    *) rig_die "topology i | ii A|B" ;;
  esac
  for l in "$netA" "$netB" "$netC"; do
    [ "$l" = "$dev" ] || [ ! -e "/sys/class/net/$l/master" ] || ip link set "$l" nomaster
  done
  ip link set br0 address "$(cat "/sys/class/net/$dev/address")"
  ip link set br0.v address "$(cat "/sys/class/net/$dev/address")"
  [ -e "/sys/class/net/$dev/master" ] || ip link set "$dev" master br0
  bridge vlan add dev "$dev" vid "$VLAN"
  ip neigh flush dev br0.v 2>/dev/null || true
  ip netns exec guest ip neigh flush dev bond0 2>/dev/null || true
  TOPOLOGY="$name${2:+ on $2}"
  rig_log "topology $TOPOLOGY: br0 over $dev"
}

# guest_bond default|asa: the guest's bond, as a DNIS guest sets it up:
# active-backup, MII monitoring every 20 ms, the guest's MAC, the veth
# standby enslaved; "asa" adds all_slaves_active 1 (frames are taken from
# both slaves: what is in flight on the old path during a switch still
# arrives), "default" leaves the kernel's default (0: the inactive slave's
# frames are dropped).
guest_bond() {
  ip netns exec guest sh -ec "
    ip link set lo up
    ip link add bond0 type bond mode active-backup miimon 20
    ip link set bond0 address $MAC
    ip link set veth-g down
    ip link set veth-g master bond0
    ip link set bond0 up
    ip addr add 10.77.0.2/24 dev bond0"
  bond_options "$1"
}
# bond_options default|asa: all_slaves_active of the running bond.
bond_options() {
  case "$1" in
    default) ip netns exec guest sh -c 'echo 0 >/sys/class/net/bond0/bonding/all_slaves_active' ;;
    asa) ip netns exec guest sh -c 'echo 1 >/sys/class/net/bond0/bonding/all_slaves_active' ;;
    *) rig_die "bond_options default|asa" ;;
  esac
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

# The prober (probe.py run) in the guest, one process for the whole scenario;
# commands go to its FIFO on fd 6. fd 8 is a FIFO nobody writes: `read -t`
# on it is a sleep without a fork (a fork costs ~0.1 s under TCG).
PROBE_DIR="$RIG_OUT/probe"
prober_up() {
  mkdir -p "$PROBE_DIR"
  ip netns exec guest /usr/bin/python3 "$PROBE" run "$PEER" 7777 "$PROBE_DIR" &
  PROBER_PID=$!
  [ -p "$RIG_OUT/tick" ] || mkfifo "$RIG_OUT/tick"
  exec 8<>"$RIG_OUT/tick"
  wait_file "$PROBE_DIR/ready" 60 || rig_die "the prober did not start"
  exec 6<>"$PROBE_DIR/cmd"
}
prober_down() { echo quit >&6; wait "$PROBER_PID" 2>/dev/null || true; }
pause() { read -r -t "$1" -u 8 _ || true; }
# wait_file PATH SECONDS: until PATH exists (polled every 20 ms, no fork).
wait_file() {
  local n=$(($2 * 50))
  while [ ! -e "$1" ]; do
    [ "$n" -gt 0 ] || return 1
    n=$((n - 1)); pause 0.02
  done
}
# window NAME INTERVAL: a probe window from now on, one probe every INTERVAL
# seconds; it ends at the next `window` (back to back: no time between them
# goes unmeasured) or at `window_end NAME`. `collect NAME...` appends each
# window's NAME_sent, NAME_received, NAME_lost, NAME_gap_ms (the longest time
# without a reply, from the window's start to its end), NAME_lost_runs and
# NAME_start to the results (0 sent when the prober gave no answer).
window() {
  echo "start $1 $2" >&6
  wait_file "$PROBE_DIR/$1.started" 30 || rig_log "probe window $1 did not start"
}
window_end() { echo "stop $1" >&6; }
collect() {
  local n kv
  for n in "$@"; do
    if wait_file "$PROBE_DIR/$n.kv" 10; then
      kv=$(<"$PROBE_DIR/$n.kv")
      echo "$kv" >>"$results"
      rig_log "probes $n: ${kv//$'\n'/ }"
      [[ $'\n'"$kv"$'\n' == *$'\n'"${n}_lost=0"$'\n'* ]] || diagnose "$n"
    else
      printf '%s_sent=0\n%s_lost=0\n%s_gap_ms=0\n' "$n" "$n" "$n" >>"$results"
      rig_log "probes $n: no answer from the prober"
    fi
  done
}
# diagnose NAME: where the guest's frames went, after a window that lost probes.
diagnose() {
  { echo "# $1 lost probes (topology ${TOPOLOGY:-?}, bond ${BOND:-?})"
    bridge fdb show br br0 | grep -i "$MAC"
    ip netns exec guest cat /proc/net/bonding/bond0
    ip -d link show dev "$netA"; ip -d link show dev "$netB"; ip -s link show dev br0
  } >"$RIG_OUT/diagnose-$1.txt" 2>&1 || true
}
# probe_start NAME INTERVAL / probe_stop NAME: a window around something,
# with half a second on either side.
probe_start() { window "$1" "$2"; pause 0.5; }
probe_stop() { pause 0.5; window_end "$1"; collect "$1"; }
