#!/usr/bin/env bash
# The QMP adapter with a real igb VF (a passed-through VF cannot be plugged
# on a machine without SR-IOV hardware, so this runs in the SR-IOV test VM):
# a QEMU process inside the VM (no guest OS: a nested guest does not boot
# here, firmware only) takes `device_add vfio-pci` of a VF that sriovd bound
# to vfio-pci, when sriovd assigns it with a qmp failover; query-pci lists it;
# with the VM paused the removal times out with a message saying why; with
# QEMU gone the release completes.
set -euo pipefail
. "$RIG_REPO/Tests/RigTests/Scenarios/common.sh"
results="$RIG_OUT/results.txt"
: >"$results"
say() { echo "$1=$2" >>"$results"; rig_log "$1=$2"; }
pf=${PFS[0]}
ip link set dev "$(rig_pf_netdev "$pf")" up
mkdir -p /etc/sriovd-test
cat >/etc/sriovd-test/qmp.toml <<TOML
[daemon]
reconcile_interval_seconds = 0
unplug_timeout_seconds = 8
[[pf]]
pci = "$pf"
num_vfs = 2
drivers_autoprobe = false
TOML
start_sriovd --config /etc/sriovd-test/qmp.toml
rig_wait_for "[ \"\$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)\" = 2 ]" 60

QMP=/tmp/q1.qmp
qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || rig_die "no qemu-system-x86_64 in the VM"
"$qemu" -machine q35 -accel tcg -m 128 -nodefaults -display none -no-user-config \
  -device pcie-root-port,id=rp1,chassis=1,slot=1 \
  -netdev hubport,id=n0,hubid=0 -device virtio-net-pci,netdev=n0,id=net0 \
  -qmp "unix:$QMP,server=on,wait=off" >"$RIG_OUT/qemu.log" 2>&1 &
QEMU_PID=$!
rig_wait_for "[ -S $QMP ]" 120 || { cat "$RIG_OUT/qemu.log"; rig_die "QEMU did not start"; }

# qmp COMMAND [ARGS_JSON]: one command on QEMU's monitor, its answer on stdout.
qmp() {
  /usr/bin/python3 - "$QMP" "$1" "${2:-{\}}" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
f.readline()
def run(cmd, args):
    f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n"); f.flush()
    while True:
        m = json.loads(f.readline())
        if "return" in m or "error" in m: return m
run("qmp_capabilities", {})
print(json.dumps(run(sys.argv[2], json.loads(sys.argv[3]))))
PY
}

body='{"vm":"q1","nic":"net0","pf":"'"$pf"'","driver":"vfio-pci","mac":"52:54:00:99:00:01","vlan":7,
  "failover":{"adapter":"qmp","socket":"'"$QMP"'","device":"hostdev0","bus":"rp1","standby":"net0"}}'
# The rig's emulated IOMMU has no interrupt remapping: QEMU's device_add is
# refused, and sriovd says what to do and undoes the assignment.
unsafe=/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts
echo N >"$unsafe" 2>/dev/null || true
api assign_refused POST /v1/assignments "$body"
say assign_refused_status "$(cat "$RIG_OUT/assign_refused.status")"
say assign_refused_says "$(grep -q 'interrupt remapping' "$RIG_OUT/assign_refused.json" && echo remapping || cat "$RIG_OUT/assign_refused.json")"
api after_refused GET /v1/assignments/q1/net0
say after_refused_status "$(cat "$RIG_OUT/after_refused.status")"
# What the message says to do, in the test VM only.
echo Y >"$unsafe"
api assign POST /v1/assignments "$body"
say assign_status "$(cat "$RIG_OUT/assign.status")"
vf=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("vf",""))' "$RIG_OUT/assign.json")
say vf_driver "$(basename "$(readlink "/sys/bus/pci/devices/$vf/driver" 2>/dev/null || echo none)")"
qmp query-pci >"$RIG_OUT/query-pci.json"
say listed "$(/usr/bin/python3 -c '
import json,sys
def walk(devs):
    for d in devs:
        yield d
        yield from walk(d.get("pci_bridge", {}).get("devices", []))
for bus in json.load(open(sys.argv[1]))["return"]:
    for d in walk(bus["devices"]):
        if d.get("qdev_id") == "hostdev0":
            print("%04x:%04x" % (d["id"]["vendor"], d["id"]["device"]))' "$RIG_OUT/query-pci.json")"
# The same request again: the device is there already, left as it is.
api assign_again POST /v1/assignments "$body"
say assign_again_status "$(cat "$RIG_OUT/assign_again.status")"

# Paused: nothing in the guest can answer the unplug, so it times out.
qmp stop >/dev/null
start=$(date +%s)
api release_paused DELETE /v1/assignments/q1/net0
say release_paused_status "$(cat "$RIG_OUT/release_paused.status")"
say release_paused_seconds "$(( $(date +%s) - start ))"
say release_paused_says_paused "$(grep -q 'paused' "$RIG_OUT/release_paused.json" && echo yes || cat "$RIG_OUT/release_paused.json")"
say still_listed "$(qmp query-pci | grep -q hostdev0 && echo yes || echo no)"

# QEMU gone: no guest holds the VF; the release completes.
kill "$QEMU_PID"; wait "$QEMU_PID" 2>/dev/null || true
api release_gone DELETE /v1/assignments/q1/net0
say release_gone_status "$(cat "$RIG_OUT/release_gone.status")"
say vf_driver_after "$(basename "$(readlink "/sys/bus/pci/devices/$vf/driver" 2>/dev/null || echo none)")"
kill -TERM "$SRIOVD_PID"; wait "$SRIOVD_PID" || true
say done yes
