#!/usr/bin/python3
"""Checks sriovd's assignment invariants against the kernel, inside the rig.

usage: invariants.py baseline PF_PCI OUT.json
           Records every VF of the PF as the kernel reports it now (settings
           and driver): what a free VF must look like later.
       invariants.py check SOCKET STATE_DB PF_PCI BASELINE.json
           Prints "OK" or one line per violation, and exits 0 / 1.

What `check` compares, the state store (SQLite, read only) on one side and
the kernel (`ip -j -d link show` of the PF, sysfs) on the other:
- the API lists the assignments the state store holds; no VF belongs to two
  NICs; no assignment is left half-done (state other than assigned, or an
  operation still journaled);
- every assigned VF reads back as its recorded config says, field by field:
  MAC, VLAN, QoS, VLAN protocol, spoof check, trust, min and max TX rate; a
  field the config leaves unset is as the VF had it before (the baseline);
  its driver is the recorded one (vfio-pci, or igbvf for `host`); the
  recorded previous driver and original settings are what it had before;
- every free VF is exactly as it was before: every setting and its driver,
  and no original is left recorded for it (that would keep it from the pool).
"""
import json, os, socket, sqlite3, subprocess, sys

# The fields compared, as (name in the kernel view, key in a VFConfig/VFSettings JSON).
FIELDS = [("mac", "mac"), ("vlan", "vlan"), ("qos", "qos"), ("proto", "vlanProto"), ("spoofchk", "spoofCheck"),
          ("trust", "trust"), ("min_tx", "minTxRate"), ("max_tx", "maxTxRate")]
# igb's VFs have their own driver, igbvf: what `driver: host` binds.
HOST_DRIVER = "igbvf"


def kernel_vfs(pf):
    """VF address -> its settings as the PF reports them and its driver (sysfs)."""
    dev = f"/sys/bus/pci/devices/{pf}"
    netdev = os.listdir(f"{dev}/net")[0]
    link = json.loads(subprocess.check_output(["ip", "-d", "-j", "link", "show", "dev", netdev]))[0]
    by_index = {}
    for v in link.get("vfinfo_list", []):
        vl = (v.get("vlan_list") or [{}])[0]
        rate = v.get("rate", {})
        by_index[v["vf"]] = {
            "mac": v["address"], "vlan": vl.get("vlan", 0), "qos": vl.get("qos", 0),
            # ip prints the protocol only when it is not 802.1Q.
            "proto": vl.get("protocol", "802.1Q"),
            "spoofchk": v.get("spoofchk"), "trust": v.get("trust"),
            "min_tx": rate.get("min_tx"), "max_tx": rate.get("max_tx"),
        }
    vfs = {}
    for name in os.listdir(dev):
        if name.startswith("virtfn"):
            addr = os.path.basename(os.readlink(f"{dev}/{name}"))
            index = int(name[6:])
            drv = f"/sys/bus/pci/devices/{addr}/driver"
            vfs[addr] = dict(by_index.get(index, {}), index=index,
                             driver=os.path.basename(os.readlink(drv)) if os.path.exists(drv) else None)
    return vfs


def api_get(sock_path, path):
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


def expected(config, before):
    """What an assigned VF must read: its baseline, with the config's fields over it."""
    want = {k: before[k] for k, _ in FIELDS}
    for field, key in FIELDS:
        if key in config and key not in ("vlan", "qos", "vlanProto"):
            want[field] = config[key]
    # VLAN id, QoS and protocol are one setting: a VLAN given sets all three.
    if "vlan" in config:
        want["vlan"] = config["vlan"]
        want["qos"] = config.get("qos", 0)
        want["proto"] = config.get("vlanProto", "802.1Q")
    return want


def check(sock_path, db_path, pf, baseline_path):
    baseline = json.load(open(baseline_path))
    vfs = kernel_vfs(pf)
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM assignment ORDER BY vm, nic")]
    operations = [dict(r) for r in db.execute("SELECT * FROM operation")]
    originals = {r["vf"]: dict(r) for r in db.execute("SELECT * FROM vfOriginal")}
    db.close()
    problems = []

    listed = sorted((a["vm"], a["nic"], a["vf"], a["state"]) for a in api_get(sock_path, "/v1/assignments")["assignments"])
    stored = sorted((r["vm"], r["nic"], r["vf"], r["state"]) for r in rows)
    if listed != stored:
        problems.append(f"the API lists {listed}, the state store holds {stored}")
    for op in operations:
        problems.append(f"operation {op['kind']} of {op['vm']}/{op['nic']} left at step {op['step']}")
    if set(baseline) != set(vfs):
        problems.append(f"the VFs changed: {sorted(baseline)} before, {sorted(vfs)} now")

    seen = {}
    for r in rows:
        who = f"{r['vm']}/{r['nic']}"
        if r["vf"] in seen:
            problems.append(f"VF {r['vf']} belongs to {seen[r['vf']]} and {who}")
        seen[r["vf"]] = who
        if r["state"] != "assigned":
            problems.append(f"{who} left {r['state']}")
        vf = vfs.get(r["vf"])
        if vf is None or r["vf"] not in baseline:
            problems.append(f"{who} holds {r['vf']}, which does not exist")
            continue
        at = f"{r['vf']} of {who}"
        if r["vfIndex"] != vf["index"]:
            problems.append(f"{at}: recorded as VF {r['vfIndex']}, is virtfn{vf['index']}")
        before = baseline[r["vf"]]
        want = expected(json.loads(r["config"]), before)
        for field, key in FIELDS:
            if vf[field] != want[field]:
                problems.append(f"{at}: {key} {vf[field]!r}, recorded {want[field]!r}")
        want_driver = {"vfio-pci": "vfio-pci", "host": HOST_DRIVER}.get(r["driver"])
        if want_driver is None:
            problems.append(f"{at}: unknown recorded driver {r['driver']!r}")
        elif vf["driver"] != want_driver:
            problems.append(f"{at}: driver {vf['driver']}, recorded {r['driver']} ({want_driver})")
        if r["previousDriver"] != before["driver"]:
            problems.append(f"{at}: previous driver recorded {r['previousDriver']}, was {before['driver']}")
        original = originals.get(r["vf"])
        if original is None:
            problems.append(f"{at}: no original settings recorded")
        else:
            settings = json.loads(original["settings"])
            for field, key in FIELDS:
                if settings.get(key) != before[field]:
                    problems.append(f"{at}: original {key} recorded {settings.get(key)!r}, was {before[field]!r}")

    for addr, vf in sorted(vfs.items()):
        if addr in seen or addr not in baseline:
            continue
        before = baseline[addr]
        for field, key in FIELDS + [("driver", "driver")]:
            if vf[field] != before[field]:
                problems.append(f"free VF {addr}: {key} {vf[field]!r}, was {before[field]!r}")
        if addr in originals:
            problems.append(f"free VF {addr}: an original is still recorded (changed: {originals[addr]['changed']})")
    print("\n".join(problems) if problems else "OK")
    return 1 if problems else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["baseline"] and len(sys.argv) == 4:
        vfs = kernel_vfs(sys.argv[2])
        json.dump(vfs, open(sys.argv[3], "w"), indent=1, sort_keys=True)
        sys.exit(0)
    if sys.argv[1:2] == ["check"] and len(sys.argv) == 6:
        sys.exit(check(*sys.argv[2:]))
    sys.exit(__doc__)
