#!/usr/bin/python3
"""Checks sriovd's assignment invariants against the kernel, inside the rig.

usage: invariants.py SOCKET PF_PCI
Prints "OK" or one line per violation, and exits 0 / 1:
- no VF belongs to two NICs, and no assignment is left half-done;
- every assigned VF reads back as recorded (MAC, VLAN) with its driver;
- no free VF carries a VM's MAC or VLAN, or sits on vfio-pci.
"""
import json, os, socket, subprocess, sys

sock_path, pf = sys.argv[1], sys.argv[2]

def get(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock_path)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    return json.loads(body)

dev = f"/sys/bus/pci/devices/{pf}"
netdev = os.listdir(f"{dev}/net")[0]
link = json.loads(subprocess.check_output(["ip", "-d", "-j", "link", "show", "dev", netdev]))[0]
kernel = {}
for v in link.get("vfinfo_list", []):
    vl = (v.get("vlan_list") or [{}])[0]
    kernel[v["vf"]] = (v["address"], vl.get("vlan", v.get("vlan", 0)) or 0)
vfs = {}
for name in os.listdir(dev):
    if name.startswith("virtfn"):
        addr = os.path.basename(os.readlink(f"{dev}/{name}"))
        drv = f"/sys/bus/pci/devices/{addr}/driver"
        vfs[addr] = (int(name[6:]), os.path.basename(os.readlink(drv)) if os.path.exists(drv) else None)

problems = []
assignments = get("/v1/assignments")["assignments"]
seen = {}
for a in assignments:
    if a["vf"] in seen:
        problems.append(f"VF {a['vf']} belongs to {seen[a['vf']]} and {a['vm']}/{a['nic']}")
    seen[a["vf"]] = f"{a['vm']}/{a['nic']}"
    if a["state"] != "assigned":
        problems.append(f"{a['vm']}/{a['nic']} left {a['state']}")
    if a["vf"] not in vfs:
        problems.append(f"{a['vm']}/{a['nic']} holds {a['vf']}, which does not exist")
        continue
    index, driver = vfs[a["vf"]]
    mac, vlan = kernel.get(index, (None, None))
    want_mac, want_vlan = a["config"].get("mac"), a["config"].get("vlan", 0)
    if want_mac and mac != want_mac:
        problems.append(f"{a['vf']} of {a['vm']}/{a['nic']}: MAC {mac}, recorded {want_mac}")
    if vlan != want_vlan:
        problems.append(f"{a['vf']} of {a['vm']}/{a['nic']}: VLAN {vlan}, recorded {want_vlan}")
    want_driver = "vfio-pci" if a["driver"] == "vfio-pci" else None
    if want_driver and driver != want_driver:
        problems.append(f"{a['vf']} of {a['vm']}/{a['nic']}: driver {driver}, recorded {a['driver']}")
for addr, (index, driver) in vfs.items():
    if addr in seen:
        continue
    mac, vlan = kernel.get(index, (None, None))
    if mac not in (None, "00:00:00:00:00:00") or vlan:
        problems.append(f"free VF {addr} carries MAC {mac} VLAN {vlan}")
    if driver == "vfio-pci":
        problems.append(f"free VF {addr} is still bound to vfio-pci")
print("\n".join(problems) if problems else "OK")
sys.exit(1 if problems else 0)
