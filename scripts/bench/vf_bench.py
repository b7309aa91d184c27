#!/usr/bin/env python3
"""VF-programming benchmark driver (runs as root inside the rig VM).

Programs every VF of one SR-IOV PF with MAC + VLAN + QoS + spoof check + trust,
round after round, through up to three methods, and times each call:

  sriovd    PATCH /v1/vfs/{vfPciAddress} over sriovd's Unix socket, from this one
            process (http.client; keep-alive when the server allows it, a new
            connection otherwise -- the report says which happened). End to end
            per request, plus sriovd's own netlink time from the response's
            `Server-Timing: netlink;dur=<ms>` header.
  ip        one `ip link set dev PF vf N mac .. vlan .. qos .. spoofchk .. trust ..`
            process per VF, as shell scripts do (fork + exec + netlink + exit).
  pyroute2  one IPRoute() opened once, ipr.link("set", index=PF, vf={...}) per VF.
  rawnl     the floor: one AF_NETLINK socket, a hand-packed RTM_SETLINK per VF.

Rounds are interleaved (round r runs every method, in an order rotated by r) so a
load change on the machine hits all methods alike. Every call changes every field
of its VF (a global step counter feeds the values), so none is a no-op. After each
method's pass over the VFs, `ip -d -j link show` must read back what was written.
A warm-up round (not counted) runs first.

With --concurrent-pf PF2 (and sriovd measured), a second part programs the VFs of
two PFs through sriovd, round after round: once one PF at a time (PF then PF2,
one request at a time), once both PFs at once (one client thread and connection
per PF), in alternating order, and prints the wall time of each pass and the
speed-up of the concurrent pass over the one-at-a-time pass, both measured here.

Writes OUT/results.json (raw samples) and OUT/report.txt, prints the report.
Exit status: 0 when every requested method was measured, 1 when at least one was
not (endpoint missing, errors, wrong read-back), 2 for bad usage or setup.
"""

import argparse
import datetime
import http.client
import json
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

ALL_METHODS = ("sriovd", "ip", "pyroute2", "rawnl")


class MethodUnavailable(Exception):
    """The method cannot be measured at all (e.g. the endpoint is missing)."""


class CallFailed(Exception):
    """One programming call failed."""


class CallTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise CallTimeout()


class Deadline:
    """Bounds a blocking call with SIGALRM (main thread only)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        return False


# ---------------------------------------------------------------- the values


def settings_for(step, vf, slot=0):
    """Values for VF `vf` (of the PF in `slot`, 0 or 1) at global step `step`:
    every field differs from step-1; the two PFs' VFs never share a MAC."""
    return {
        "mac": "52:54:00:%02x:%02x:%02x" % ((0xB0 + 0x20 * slot) | vf, (step >> 8) & 0xFF, step & 0xFF),
        "vlan": 2 + (step * 8 + vf) % 4000,
        "qos": step % 8,
        "spoofchk": step % 2 == 0,
        "trust": step % 2 == 1,
    }


# ---------------------------------------------------------------- the methods


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over AF_UNIX; counts the connections it opens."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path
        self.connects = 0

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except BaseException:
            s.close()
            raise
        self.sock = s
        self.connects += 1


def parse_server_timing(value, metric="netlink"):
    """Returns the dur (ms, float) of `metric` in a Server-Timing header, or None."""
    if not value:
        return None
    for entry in value.split(","):
        parts = [p.strip() for p in entry.split(";")]
        if not parts or parts[0] != metric:
            continue
        for p in parts[1:]:
            if p.startswith("dur="):
                try:
                    return float(p[4:].strip('"'))
                except ValueError:
                    return None
    return None


class SriovdMethod:
    name = "sriovd"

    def __init__(self, args, pf):
        self.socket_path = args.socket
        self.timeout = args.call_timeout
        if not os.path.exists(self.socket_path):
            raise MethodUnavailable("sriovd socket %s does not exist (sriovd not running?)" % self.socket_path)
        self.conn = UnixHTTPConnection(self.socket_path, self.timeout)
        self.requests = 0
        self.stale_retries = 0
        self.closed_by_server = 0
        self.missing_server_timing = 0
        self.controller_ms = []  # Server-Timing controller;dur=, when sent (warm-up included)
        self.sample_response = None

    def prepare(self, vf_index, vf_pci, s):
        body = json.dumps({"mac": s["mac"], "vlan": s["vlan"], "qos": s["qos"],
                           "spoofCheck": s["spoofchk"], "trust": s["trust"]}).encode()
        return ("/v1/vfs/" + vf_pci, body)

    def _exchange(self, path, body):
        self.conn.request("PATCH", path, body=body,
                          headers={"Content-Type": "application/json", "Accept": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        return resp, data

    def call(self, prepared):
        path, body = prepared
        reused = self.conn.sock is not None
        t0 = time.perf_counter_ns()
        try:
            with Deadline(self.timeout):
                resp, data = self._exchange(path, body)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # A kept-alive connection the server had closed meanwhile: PATCH is
            # idempotent, retry once on a new connection and time only that.
            self.conn.close()
            if not reused:
                raise
            self.stale_retries += 1
            t0 = time.perf_counter_ns()
            with Deadline(self.timeout):
                resp, data = self._exchange(path, body)
        t1 = time.perf_counter_ns()
        self.requests += 1
        if resp.will_close:
            self.closed_by_server += 1
        text = data.decode("utf-8", "replace")
        if resp.status in (404, 405) and self.requests == 1:
            raise MethodUnavailable(
                "PATCH %s answered HTTP %d %s: the endpoint is probably not implemented yet in this "
                "sriovd build (or sriovd does not know the VF). Body: %s"
                % (path, resp.status, resp.reason, text.strip()[:400]))
        if resp.status != 200:
            raise CallFailed("PATCH %s: HTTP %d %s: %s" % (path, resp.status, resp.reason, text.strip()[:400]))
        try:
            doc = json.loads(text)
        except ValueError:
            raise CallFailed("PATCH %s: 200 but the body is not JSON: %r" % (path, text[:200]))
        if not isinstance(doc, dict) or "vf" not in doc:
            raise CallFailed("PATCH %s: 200 but no \"vf\" in the body: %r" % (path, text[:200]))
        if self.sample_response is None:
            self.sample_response = {"status": resp.status, "headers": dict(resp.getheaders()), "body": doc}
        timing = resp.getheader("Server-Timing")
        netlink = parse_server_timing(timing, "netlink")
        if netlink is None:
            self.missing_server_timing += 1
        controller = parse_server_timing(timing, "controller")
        if controller is not None:
            self.controller_ms.append(controller)
        return (t1 - t0) / 1e6, netlink

    def notes(self):
        n = []
        if self.requests:
            n.append("sriovd client: one python3 http.client connection object over AF_UNIX; %d requests "
                     "used %d connection(s) (%s)%s." % (
                         self.requests, self.conn.connects,
                         "the server kept connections alive" if self.conn.connects < self.requests
                         else "the server closed each connection: every timed request includes a connect()",
                         "; %d request(s) retried after the server had closed an idle kept-alive connection"
                         % self.stale_retries if self.stale_retries else ""))
            if self.missing_server_timing:
                n.append("sriovd: %d response(s) had no usable `Server-Timing: netlink;dur=` header."
                         % self.missing_server_timing)
        return n

    def close(self):
        self.conn.close()


class IpMethod:
    name = "ip"

    def __init__(self, args, pf):
        self.ip = shutil.which("ip")
        if not self.ip:
            raise MethodUnavailable("the ip command (iproute2) is not installed")
        self.netdev = pf["netdev"]
        self.timeout = args.call_timeout
        try:
            self.version = subprocess.run([self.ip, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          timeout=self.timeout).stdout.decode().strip()
        except (OSError, subprocess.TimeoutExpired):
            self.version = "?"

    def prepare(self, vf_index, vf_pci, s):
        return [self.ip, "link", "set", "dev", self.netdev, "vf", str(vf_index),
                "mac", s["mac"], "vlan", str(s["vlan"]), "qos", str(s["qos"]),
                "spoofchk", "on" if s["spoofchk"] else "off",
                "trust", "on" if s["trust"] else "off"]

    def call(self, argv):
        t0 = time.perf_counter_ns()
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise CallFailed("%s: no exit after %ss" % (" ".join(argv), self.timeout))
        t1 = time.perf_counter_ns()
        if p.returncode != 0:
            raise CallFailed("%s: exit %d: %s" % (" ".join(argv), p.returncode,
                                                 p.stderr.decode("utf-8", "replace").strip()))
        return (t1 - t0) / 1e6, None

    def notes(self):
        return ["ip: %s (%s), started with subprocess.run from the driver: fork/exec + netlink + exit."
                % (self.ip, self.version)]

    def close(self):
        pass


class Pyroute2Method:
    name = "pyroute2"

    def __init__(self, args, pf):
        try:
            import pyroute2
            from pyroute2 import IPRoute
        except ImportError as e:
            raise MethodUnavailable("pyroute2 is not importable by %s (%s): run scripts/install-deps.sh"
                                    % (sys.executable, e))
        self.version = getattr(pyroute2, "__version__", "?")
        self.ifindex = pf["ifindex"]
        self.timeout = args.call_timeout
        with Deadline(self.timeout):
            self.ipr = IPRoute()

    def prepare(self, vf_index, vf_pci, s):
        # pyroute2 pops keys from this dict: build a new one per call.
        return {"vf": vf_index, "mac": s["mac"],
                "vlan": {"vlan": s["vlan"], "qos": s["qos"]},
                "spoofchk": 1 if s["spoofchk"] else 0,
                "trust": 1 if s["trust"] else 0}

    def call(self, vf):
        from pyroute2.netlink.exceptions import NetlinkError
        t0 = time.perf_counter_ns()
        try:
            with Deadline(self.timeout):
                self.ipr.link("set", index=self.ifindex, vf=vf)
        except NetlinkError as e:
            raise CallFailed("ipr.link('set', index=%d, vf=...): %s" % (self.ifindex, e))
        t1 = time.perf_counter_ns()
        return (t1 - t0) / 1e6, None

    def notes(self):
        return ["pyroute2 %s: one IPRoute() for the whole run, one RTM_SETLINK per VF." % self.version]

    def close(self):
        try:
            self.ipr.close()
        except Exception:
            pass


class RawNetlinkMethod:
    """The floor: one AF_NETLINK socket, one hand-packed RTM_SETLINK per VF, wait
    for the ACK. What is left is the kernel, the igb driver and (in the rig) the
    emulated device -- no library, no process, no HTTP."""

    name = "rawnl"
    RTM_SETLINK, NLMSG_ERROR = 19, 2
    NLM_F_REQUEST, NLM_F_ACK = 1, 4
    IFLA_VFINFO_LIST, IFLA_VF_INFO = 22, 1
    IFLA_VF_MAC, IFLA_VF_VLAN, IFLA_VF_SPOOFCHK, IFLA_VF_TRUST = 1, 2, 4, 9

    def __init__(self, args, pf):
        self.ifindex = pf["ifindex"]
        self.timeout = args.call_timeout
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
        self.sock.settimeout(self.timeout)
        self.sock.bind((0, 0))
        self.seq = 0

    @staticmethod
    def _attr(kind, payload):
        n = 4 + len(payload)
        return struct.pack("=HH", n, kind) + payload + b"\0" * ((4 - n % 4) % 4)

    def prepare(self, vf_index, vf_pci, s):
        mac = bytes(int(x, 16) for x in s["mac"].split(":")) + b"\0" * 26
        vfinfo = b"".join([
            self._attr(self.IFLA_VF_MAC, struct.pack("=I", vf_index) + mac),
            self._attr(self.IFLA_VF_VLAN, struct.pack("=III", vf_index, s["vlan"], s["qos"])),
            self._attr(self.IFLA_VF_SPOOFCHK, struct.pack("=II", vf_index, 1 if s["spoofchk"] else 0)),
            self._attr(self.IFLA_VF_TRUST, struct.pack("=II", vf_index, 1 if s["trust"] else 0)),
        ])
        attrs = self._attr(self.IFLA_VFINFO_LIST, self._attr(self.IFLA_VF_INFO, vfinfo))
        self.seq += 1
        ifi = struct.pack("=BBHiII", socket.AF_UNSPEC, 0, 0, self.ifindex, 0, 0)
        body = ifi + attrs
        return self.seq, struct.pack("=IHHII", 16 + len(body), self.RTM_SETLINK,
                                     self.NLM_F_REQUEST | self.NLM_F_ACK, self.seq, 0) + body

    def call(self, prepared):
        seq, msg = prepared
        t0 = time.perf_counter_ns()
        self.sock.send(msg)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, kind, _, rseq, _ = struct.unpack_from("=IHHII", data, off)
                if kind == self.NLMSG_ERROR and rseq == seq:
                    t1 = time.perf_counter_ns()
                    err = struct.unpack_from("=i", data, off + 16)[0]
                    if err != 0:
                        raise CallFailed("RTM_SETLINK ifindex %d: %s" % (self.ifindex, os.strerror(-err)))
                    return (t1 - t0) / 1e6, None
                if length < 16:
                    break
                off += (length + 3) & ~3

    def notes(self):
        return []

    def close(self):
        self.sock.close()


METHOD_CLASSES = {"sriovd": SriovdMethod, "ip": IpMethod, "pyroute2": Pyroute2Method,
                  "rawnl": RawNetlinkMethod}


# ---------------------------------------------------------------- the PF


def pf_info(pf_pci):
    dev = "/sys/bus/pci/devices/" + pf_pci
    nets = os.listdir(dev + "/net") if os.path.isdir(dev + "/net") else []
    if len(nets) != 1:
        raise SystemExit("vf_bench: %s: expected one netdev, found %r" % (pf_pci, nets))
    netdev = nets[0]
    with open("/sys/class/net/%s/ifindex" % netdev) as f:
        ifindex = int(f.read())
    vfs = []
    for name in os.listdir(dev):
        if name.startswith("virtfn"):
            vfs.append((int(name[6:]), os.path.basename(os.readlink(os.path.join(dev, name)))))
    vfs.sort()
    if not vfs:
        raise SystemExit("vf_bench: %s has no VFs (sriov_numvfs=0?)" % pf_pci)
    try:
        driver = os.path.basename(os.readlink(dev + "/driver"))
    except OSError:
        driver = "?"
    return {"pci": pf_pci, "netdev": netdev, "ifindex": ifindex, "driver": driver, "vfs": vfs}


def read_back(pf, timeout):
    """VF settings as `ip -d -j link show` reports them: {index: dict}."""
    try:
        p = subprocess.run(["ip", "-d", "-j", "link", "show", "dev", pf["netdev"]],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CallFailed("read-back: ip -d -j link show dev %s took over %ss" % (pf["netdev"], timeout))
    if p.returncode != 0:
        raise CallFailed("ip -d -j link show dev %s: %s" % (pf["netdev"], p.stderr.decode().strip()))
    try:
        link = json.loads(p.stdout)[0]
    except (ValueError, IndexError) as e:
        raise CallFailed("read-back: cannot parse ip -d -j link show: %s" % e)
    out = {}
    for v in link.get("vfinfo_list", []):
        vl = (v.get("vlan_list") or [{}])[0]
        out[v["vf"]] = {"mac": (v.get("address") or v.get("mac") or "").lower(),
                        "vlan": vl.get("vlan", 0), "qos": vl.get("qos", 0),
                        "spoofchk": v.get("spoofchk"), "trust": v.get("trust")}
    return out


def check_read_back(pf, step, timeout, slot=0):
    got = read_back(pf, timeout)
    bad = []
    for idx, _ in pf["vfs"]:
        want = settings_for(step, idx, slot)
        have = got.get(idx)
        if have is None:
            bad.append("VF %d missing from ip -d -j link show" % idx)
            continue
        for k in ("mac", "vlan", "qos", "spoofchk", "trust"):
            if have[k] != want[k]:
                bad.append("VF %d %s: wrote %r, read back %r" % (idx, k, want[k], have[k]))
    if bad:
        raise CallFailed("read-back after the pass differs: " + "; ".join(bad[:6]))


# ---------------------------------------------------------------- statistics


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    n = len(sorted_values)
    k = max(1, math.ceil(p / 100.0 * n))
    return sorted_values[min(k, n) - 1]


def summary(values):
    if not values:
        return None
    s = sorted(values)
    return {"count": len(s), "p50": percentile(s, 50), "p90": percentile(s, 90),
            "p99": percentile(s, 99), "max": s[-1], "mean": sum(s) / len(s), "min": s[0]}


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return "%.2f" % (a / b)


# ---------------------------------------------------------------- two PFs at once


def patch_vfs(socket_path, timeout, pf, step, slot, latencies):
    """PATCHes every VF of `pf` in turn on a connection of its own; appends each
    request's ms to `latencies`. Bounded by the socket timeout (threads cannot
    use SIGALRM)."""
    conn = UnixHTTPConnection(socket_path, timeout)
    try:
        for idx, vf_pci in pf["vfs"]:
            s = settings_for(step, idx, slot)
            body = json.dumps({"mac": s["mac"], "vlan": s["vlan"], "qos": s["qos"],
                               "spoofCheck": s["spoofchk"], "trust": s["trust"]}).encode()
            t0 = time.perf_counter_ns()
            conn.request("PATCH", "/v1/vfs/" + vf_pci, body=body,
                         headers={"Content-Type": "application/json", "Accept": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            latencies.append((time.perf_counter_ns() - t0) / 1e6)
            if resp.status != 200:
                raise CallFailed("PATCH /v1/vfs/%s: HTTP %d: %s" % (vf_pci, resp.status, data[:300]))
    finally:
        conn.close()


def concurrent_part(args, pfs, step):
    """Programs the VFs of both PFs, one PF at a time and both at once, in
    alternating order, every round. Returns (results, report lines, step)."""
    import threading

    def one_pass(mode, step):
        latencies = []
        errors = []

        def run(pf, slot):
            try:
                patch_vfs(args.socket, args.call_timeout, pf, step, slot, latencies)
            except Exception as e:  # reported, the part stops
                errors.append("%s: %s: %s" % (pf["pci"], type(e).__name__, e))

        t0 = time.perf_counter_ns()
        if mode == "sequential":
            for slot, pf in enumerate(pfs):
                run(pf, slot)
        else:
            threads = [threading.Thread(target=run, args=(pf, slot)) for slot, pf in enumerate(pfs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        wall = (time.perf_counter_ns() - t0) / 1e6
        if errors:
            raise CallFailed("; ".join(errors))
        for slot, pf in enumerate(pfs):
            check_read_back(pf, step, args.call_timeout, slot)
        return wall, latencies

    walls = {"sequential": [], "concurrent": []}
    per_vf = {"sequential": [], "concurrent": []}
    status = "measured"
    for rnd in range(-1, args.rounds):  # -1: warm-up
        order = ["sequential", "concurrent"] if rnd % 2 == 0 else ["concurrent", "sequential"]
        try:
            for mode in order:
                step += 1
                wall, latencies = one_pass(mode, step)
                if rnd >= 0:
                    walls[mode].append(wall)
                    per_vf[mode].extend(latencies)
        except (CallFailed, OSError, http.client.HTTPException) as e:
            status = "%s (round %s)" % (e, "warm-up" if rnd < 0 else rnd + 1)
            break
    vfs = sum(len(pf["vfs"]) for pf in pfs)
    seq, conc = summary(walls["sequential"]), summary(walls["concurrent"])
    lat_seq, lat_conc = summary(per_vf["sequential"]), summary(per_vf["concurrent"])
    lines = ["", "two PFs through sriovd: %s (%s) and %s (%s), %d VFs per pass, %d rounds (+1 warm-up), "
             "one PF at a time vs both at once (one client thread per PF), alternating"
             % (pfs[0]["pci"], pfs[0]["netdev"], pfs[1]["pci"], pfs[1]["netdev"], vfs, args.rounds)]
    if status != "measured" or not seq or not conc:
        lines.append("two PFs: NOT MEASURED: %s" % status)
    else:
        lines.append("%-34s %6s %9s %9s %9s %9s %9s" % ("pass over both PFs (ms)", "count", "p50", "p90", "p99", "max", "mean"))
        for label, st in (("one PF at a time, wall", seq), ("two PFs at once, wall", conc),
                          ("  one at a time, per VF", lat_seq), ("  two at once, per VF", lat_conc)):
            lines.append("%-34s %6d %9.2f %9.2f %9.2f %9.2f %9.2f" % (
                label, st["count"], st["p50"], st["p90"], st["p99"], st["max"], st["mean"]))
        lines.append("speed-up of two PFs at once over one at a time (wall, p50 / mean): %s / %s"
                     % (fmt_ratio(seq["p50"], conc["p50"]), fmt_ratio(seq["mean"], conc["mean"])))
    results = {"status": status, "pfs": [pf["pci"] for pf in pfs], "wall_ms": walls, "per_vf_ms": per_vf,
               "wall_stats": {"sequential": seq, "concurrent": conc},
               "speedup_p50": (seq["p50"] / conc["p50"]) if seq and conc and conc["p50"] else None}
    return results, lines, step


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pf", required=True, help="PF PCI address")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--methods", default=",".join(ALL_METHODS))
    ap.add_argument("--socket", default="/run/sriovd/sriovd.sock")
    ap.add_argument("--call-timeout", type=float, default=10.0, help="seconds per call")
    ap.add_argument("--out", required=True, help="folder for results.json and report.txt")
    ap.add_argument("--sriovd-note", default="", help="why sriovd is unavailable, if it is")
    ap.add_argument("--concurrent-pf", default="",
                    help="a second PF: also program both PFs' VFs through sriovd, one PF at a time and at once")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    methods = list(dict.fromkeys(m.strip() for m in args.methods.split(",") if m.strip()))
    for m in methods:
        if m not in ALL_METHODS:
            ap.error("unknown method %r (known: %s)" % (m, ", ".join(ALL_METHODS)))
    signal.signal(signal.SIGALRM, _on_alarm)

    pf = pf_info(args.pf)
    print("vf_bench: PF %s (%s, ifindex %d), %d VFs, %d rounds + 1 warm-up, methods %s"
          % (pf["pci"], pf["netdev"], pf["ifindex"], len(pf["vfs"]), args.rounds, ",".join(methods)),
          file=sys.stderr, flush=True)

    active = {}
    status = {}  # method -> "measured" | reason it was not
    for m in methods:
        if m == "sriovd" and args.sriovd_note:
            status[m] = args.sriovd_note
            continue
        try:
            active[m] = METHOD_CLASSES[m](args, pf)
        except MethodUnavailable as e:
            status[m] = str(e)
        except CallTimeout:
            status[m] = "setup timed out after %ss" % args.call_timeout
        except Exception as e:  # e.g. a socket that cannot be opened
            status[m] = "setup failed: %s: %s" % (type(e).__name__, e)
    samples = {m: [] for m in methods}
    netlink = {m: [] for m in methods}

    step = 0
    started = time.monotonic()
    for rnd in range(-1, args.rounds):  # -1: warm-up
        order = [m for m in methods if m in active]
        if not order:
            break
        k = (rnd + 1) % len(order)
        order = order[k:] + order[:k]
        for m in order:
            meth = active[m]
            step += 1
            try:
                for idx, vf_pci in pf["vfs"]:
                    prepared = meth.prepare(idx, vf_pci, settings_for(step, idx))
                    try:
                        ms, nl = meth.call(prepared)
                    except CallTimeout:
                        raise CallFailed("VF %d (%s): no answer within %ss" % (idx, vf_pci, args.call_timeout))
                    except (OSError, http.client.HTTPException) as e:
                        raise CallFailed("VF %d (%s): %s: %s" % (idx, vf_pci, type(e).__name__, e))
                    if rnd < 0 and m == "sriovd":
                        meth.controller_ms.clear()  # warm-up: not counted
                    if rnd >= 0:
                        samples[m].append(ms)
                        if nl is not None:
                            netlink[m].append(nl)
                check_read_back(pf, step, args.call_timeout)
            except (MethodUnavailable, CallFailed) as e:
                status[m] = "%s (round %s)" % (e, "warm-up" if rnd < 0 else rnd + 1)
                print("vf_bench: %s stopped: %s" % (m, status[m]), file=sys.stderr, flush=True)
                meth.close()
                del active[m]
        if rnd == -1:
            print("vf_bench: warm-up done after %.1fs" % (time.monotonic() - started), file=sys.stderr, flush=True)
    elapsed = time.monotonic() - started
    for m, meth in active.items():
        status.setdefault(m, "measured")

    stats = {m: summary(samples[m]) if status.get(m) == "measured" else None for m in methods}
    nl_stats = summary(netlink["sriovd"]) if "sriovd" in methods and status.get("sriovd") == "measured" else None
    ctl_stats = summary(active["sriovd"].controller_ms) if nl_stats and "sriovd" in active else None
    concurrent, concurrent_lines = None, []
    if args.concurrent_pf:
        if status.get("sriovd") != "measured":
            concurrent_lines = ["", "two PFs: NOT MEASURED: sriovd was not measured (%s)" % status.get("sriovd", "not among the methods")]
            concurrent = {"status": "sriovd not measured"}
        else:
            concurrent, concurrent_lines, step = concurrent_part(args, [pf, pf_info(args.concurrent_pf)], step)

    # ---- report
    lines = []
    lines.append("VF programming: PF %s (%s, %s), %d VFs x %d rounds (+1 warm-up round not counted), "
                 "MAC+VLAN+QoS+spoofchk+trust per call"
                 % (pf["pci"], pf["netdev"], pf.get("driver", "?"), len(pf["vfs"]), args.rounds))
    lines.append("guest kernel %s, %d CPU(s), python %s, measured in %.1fs, %s"
                 % (os.uname().release, os.cpu_count() or 0, sys.executable, elapsed,
                    datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
    lines.append("")
    lines.append("%-34s %6s %9s %9s %9s %9s %9s" % ("method (ms per VF)", "count", "p50", "p90", "p99", "max", "mean"))
    labels = {"sriovd": "(a) sriovd PATCH, end to end", "ip": "(b) ip link set, one process",
              "pyroute2": "(c) pyroute2 IPRoute.link", "rawnl": "(d) raw netlink socket (floor)"}
    for m in methods:
        st = stats[m]
        if st:
            lines.append("%-34s %6d %9.2f %9.2f %9.2f %9.2f %9.2f" % (
                labels[m], st["count"], st["p50"], st["p90"], st["p99"], st["max"], st["mean"]))
        else:
            lines.append("%-34s %6s   NOT MEASURED" % (labels[m], "-"))
        for label, extra in (("    sriovd controller (Server-T.)", ctl_stats),
                             ("    sriovd netlink (Server-Timing)", nl_stats)):
            if m == "sriovd" and extra:
                lines.append("%-34s %6d %9.2f %9.2f %9.2f %9.2f %9.2f" % (
                    label, extra["count"], extra["p50"], extra["p90"], extra["p99"], extra["max"], extra["mean"]))
    lines.append("")
    a, b, c, d = (stats.get(m) for m in ("sriovd", "ip", "pyroute2", "rawnl"))
    g = lambda st, k: st[k] if st else None
    # (label, numerator, denominator, methods both need)
    ratios = [("sriovd / ip", a, b, ("sriovd", "ip")), ("sriovd / pyroute2", a, c, ("sriovd", "pyroute2")),
              ("sriovd netlink / pyroute2", nl_stats, c, ("sriovd", "pyroute2")),
              ("sriovd netlink / raw netlink", nl_stats, d, ("sriovd", "rawnl")),
              ("pyroute2 / ip", c, b, ("pyroute2", "ip")), ("raw netlink / pyroute2", d, c, ("rawnl", "pyroute2"))]
    ratios = [r for r in ratios if all(n in methods for n in r[3])]
    if ratios:
        lines.append("%-40s %7s %7s" % ("ratios (< 1: the first is faster)", "p50", "p99"))
    for name, x, y, _ in ratios:
        lines.append("  %-38s %7s %7s" % (name, fmt_ratio(g(x, "p50"), g(y, "p50")),
                                          fmt_ratio(g(x, "p99"), g(y, "p99"))))
    lines.extend(concurrent_lines)
    notes = []
    for m in methods:
        if status.get(m) != "measured":
            notes.append("%s NOT MEASURED: %s" % (m, status.get(m)))
    for m in methods:
        if m in active:
            notes.extend(active[m].notes())
    notes.append("percentiles: nearest rank over all VFs and rounds; every call read back with ip -d -j link show after each pass.")
    if notes:
        lines.append("")
        lines.extend("note: " + n for n in notes)
    report = "\n".join(lines) + "\n"

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"pf": pf, "rounds": args.rounds, "methods": methods, "status": status,
                   "stats": stats, "sriovd_netlink_stats": nl_stats, "sriovd_controller_stats": ctl_stats,
                   "sriovd_controller_ms": getattr(active.get("sriovd"), "controller_ms", []),
                   "samples_ms": samples, "sriovd_netlink_ms": netlink.get("sriovd", []),
                   "sriovd_sample_response": getattr(active.get("sriovd"), "sample_response", None),
                   "concurrent": concurrent, "python": sys.executable, "elapsed_s": elapsed}, f, indent=1)
    with open(os.path.join(args.out, "report.txt"), "w") as f:
        f.write(report)
    sys.stdout.write(report)
    for meth in active.values():
        meth.close()
    measured = all(status.get(m) == "measured" for m in methods)
    if concurrent is not None and concurrent.get("status") != "measured":
        measured = False
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
