#!/usr/bin/env bash
# Part of the demo (run by scripts/demo-scenario.sh inside the SR-IOV test VM,
# booted with three PFs on one wire): a live migration of a guest between two
# sriovd daemons, one per PF, standing for two hosts. The guest is a network
# namespace whose active-backup bond (default options) has a VF (primary) and
# a veth (standby); host A has one NIC: the standby's bridge and the traffic
# peer sit on the PF whose VF the guest holds (topology ii of the migration
# suite). UDP probes every 10 ms measure what the switch costs its traffic,
# from before incoming to after complete.
set -euo pipefail
results="$RIG_OUT/demo-migration.txt"
: >"$results"
. "$RIG_REPO/Tests/RigTests/Scenarios/migration-lib.sh"
title() { printf '\n### %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; }
call() {  # SIDE METHOD PATH [BODY]: curl as an orchestrator would, answer summarized
  local side="$1" method="$2" path="$3" body="${4:-}"
  show "curl --unix-socket /run/sriovd-$(echo "$side" | tr AB ab).sock -X $method http://localhost$path${body:+ -d '$(echo "$body" | tr -d '\n' | tr -s ' ')'}"
  on "$side" "demo-$(date +%s%N)" "$method" "$path" "$body" 2>/dev/null
  local last; last=$(ls -t "$RIG_OUT"/demo-*.json | head -n1)
  py - "$last" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
parts = ["%s: %s" % (k, d[k]) for k in ("state", "vf", "pf", "role") if k in d]
if "detail" in d:
    parts.append("detail: %s" % d["detail"])
print("  -> " + ", ".join(parts))
PY
}

title "Live migration: host A (sriovd on $pfA), host B (sriovd on $pfB), on one wire; the guest's standby and its peer on a bridge over host A's PF"
start_daemon A
start_daemon B
rig_wait_for "[ \"\$(cat /sys/bus/pci/devices/$pfA/sriov_numvfs)\" = 2 ] && [ \"\$(cat /sys/bus/pci/devices/$pfB/sriov_numvfs)\" = 2 ]" 60
migration_setup
topology ii A
bond_options default
echo "guest: namespace 'guest', bond0 (active-backup miimon 20, default options) = a VF (primary) + veth-g (standby), MAC $MAC"
echo "network: br0 over $netA (host A's only NIC) holds the standby's veth and the peer $PEER on VLAN $VLAN"

title "On host A the guest's NIC gets a VF, attached into the guest's bond and made its active slave"
call A POST /v1/assignments "$(assign_body "$pfA")"
echo "bond0's active slave is now the device $(active_slave)"

title "Probes every 10 ms from the guest while host B takes the VM in, host A lets go, and host B completes"
probe_start migration 0.01
call B POST /v1/vms/vm1/migration/incoming "$(incoming "$pfB")"
call A POST /v1/vms/vm1/migration/prepare
echo "bond0's active slave: $(active_slave) (the standby; the VM could now be live-migrated by its hypervisor)"
call B POST /v1/vms/vm1/migration/complete
probe_stop migration
echo "bond0's active slave is now $(active_slave), a VF of $pfB: $(vf_on "$pfB" "$(active_slave)") (MAC, VLAN as asked)"

title "Host A's timeline (sriovctl migration show vm1)"
show "sriovctl migration show vm1"
sctl_on A migration show vm1
title "Host B's timeline"
show "sriovctl migration show vm1"
sctl_on B migration show vm1

title "What the guest's traffic saw"
py - "$PROBE_DIR/migration.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("%d probes every %g ms from before incoming to after complete, %d lost, longest time without a reply %s ms"
      % (r["sent"], r["interval_ms"], r["lost"], r["gap_ms"]))
PY

stop_daemon A
stop_daemon B
prober_down
kill "$ECHO_PID" 2>/dev/null || true
