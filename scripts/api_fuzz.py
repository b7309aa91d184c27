#!/usr/bin/env python3
"""Checks a live sriovd against docs/openapi.yaml and fuzzes its API.

Runs a real `sriovd` on a fake sysfs tree (scripts/api_fuzz_sysfs.py) in a
temporary folder, with its own Unix socket and state folder, in a private
network namespace (`unshare --net`, so root): the fake PF's netdev is that
namespace's loopback (ifindex 1), so the VF settings sriovd reads and
writes over rtnetlink go there; it has no VFs: reads report nothing and
writes are "unsupported" (EOPNOTSUPP), which sriovd reports per setting
without failing. No real device, interface or file outside the temporary
folder is touched. Exit status 2 when this cannot be set up.

Schemathesis speaks TCP only, so a loopback forwarder (127.0.0.1, an
ephemeral port, nothing else) relays each connection to the Unix socket.

Stages (each failure is listed in the summary; exit status 1 if any):
  1. contract probes: hand-written requests for what generation rarely hits
     (413, 415, unknown route, `field` of each kind of 400), each checked to
     change nothing;
     scenarios: the assignment life cycle, VF changes, drivers and VF
     counts as request sequences, every response checked against the
     document, every refused write checked to change nothing;
     peer credentials: requests as uid 65534 must be refused 403;
  2. schemathesis, negative mode (invalid input only: coverage + fuzzing
     phases) on every operation with input: no 5xx, 4xx problem documents
     that conform to the schema; then, when every invalid write was refused,
     the whole host state (GET /v1/pfs, /v1/vfs, /v1/assignments, the fake
     sysfs tree, every table of state.db) must be exactly as before;
  3. schemathesis, positive mode (examples, coverage, fuzzing, stateful
     through the document's links) on every operation: no 5xx, every
     response conforms to the document (status, content type, headers,
     schema);
  4. sriovd must still be running, then stop cleanly on SIGTERM.

In every schemathesis request, a 4xx to a non-GET request must leave the
fake sysfs tree and state.db exactly as they were (checked per request in
scripts/api_fuzz_hooks.py).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import api_fuzz_hooks as hooks  # noqa: E402
from api_fuzz_sysfs import PF, FakeSysfs, vf_address  # noqa: E402

VF0 = vf_address(0)


# MARK: plumbing


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def request(sock: str, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None):
    connection = UnixHTTPConnection(sock)
    try:
        if isinstance(body, str):
            body = body.encode()
        all_headers = {"Content-Type": "application/json"} if body is not None else {}
        all_headers.update(headers or {})
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return response.status, response.getheader("Content-Type", ""), parsed, data
    finally:
        connection.close()


class Forwarder(socketserver.ThreadingTCPServer):
    """127.0.0.1:<ephemeral> -> the daemon's Unix socket, byte for byte."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, unix_path: str):
        self.unix_path = unix_path
        super().__init__(("127.0.0.1", 0), ForwardHandler)


class ForwardHandler(socketserver.BaseRequestHandler):
    def handle(self):
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.server.unix_path)
        except OSError:
            self.request.close()
            return

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
        back.start()
        pump(self.request, upstream)
        back.join(timeout=60)
        upstream.close()


# MARK: the daemon


class Daemon:
    def __init__(self, binary: str, tmp: str, fake: FakeSysfs, netns: bool):
        self.tmp = tmp
        self.socket = os.path.join(tmp, "s.sock")
        self.state = os.path.join(tmp, "state")
        self.log_path = os.path.join(tmp, "sriovd.log")
        config = os.path.join(tmp, "sriovd.toml")
        with open(config, "w") as f:
            # A pool on the fake PF, so POST /v1/assignments {"pool": "pool-a"}
            # can succeed; nothing else declared (the PF entry changes nothing).
            f.write(
                "[daemon]\n"
                # Any local user may connect (the folder is traversable only):
                # the peer-credentials probe connects as nobody, which sriovd
                # must then refuse with 403 (no admin or reader group).
                'socket_mode = "0666"\n'
                'admin_group = ""\n'
                "reconcile_interval_seconds = 0\n"
                "numvfs_timeout_seconds = 5\n"
                "\n[[pf]]\n"
                f'pci = "{PF}"\n'
                "\n[[pf.pool]]\n"
                'name = "pool-a"\n'
            )
        os.chmod(config, 0o644)
        command = [
            binary, "--config", config, "--sysfs-root", fake.root, "--socket", self.socket,
            "--state-dir", self.state, "--log-target", "stderr",
        ]
        if netns:
            command = ["unshare", "--net", "--"] + command
        self.log = open(self.log_path, "w")
        # Its own socket, never one passed by systemd (socket activation).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "NOTIFY_SOCKET", "WATCHDOG_"))}
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env, preexec_fn=_die_with_parent)

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sriovd exited with {self.process.returncode}:\n{self.log_text()}")
            if os.path.exists(self.socket):
                try:
                    status, _, _, _ = request(self.socket, "GET", "/v1/health")
                    if status == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"sriovd did not answer within {timeout}s:\n{self.log_text()}")

    def stop(self, timeout: float = 15) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return None
        self.log.close()
        return self.process.returncode

    def log_text(self) -> str:
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when this script dies, so a killed
    run leaves no sriovd behind (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def netns_available() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--net", "--", "true"], capture_output=True).returncode == 0


# MARK: whole-state snapshots


def api_snapshot(sock: str) -> dict:
    out = {}
    for path in ("/v1/pfs", "/v1/vfs", "/v1/assignments"):
        status, _, body, _ = request(sock, "GET", path)
        out[f"GET {path}"] = {"status": status, "body": json.dumps(body, sort_keys=True)}
    return out


def full_snapshot(sock: str) -> dict:
    snapshot = hooks.state_snapshot()
    snapshot["api"] = api_snapshot(sock)
    return snapshot


# MARK: stage 1: contract probes


def contract_probes(sock: str) -> tuple[list[str], list[str], int]:
    """(failures, known issues seen, requests sent)"""
    failures: list[str] = []
    known: list[str] = []
    big = '{"vlan": ' + " " * 70000 + "1}"
    probes = [
        # (method, path, body, headers, status, field)
        ("PATCH", f"/v1/vfs/{VF0}", big, None, 413, None),
        ("PATCH", f"/v1/vfs/{VF0}", '{"vlan": 1}', {"Content-Type": "text/plain"}, 415, None),
        ("PUT", f"/v1/pfs/{PF}", '{"numVFs": 1}', {"Content-Type": "application/xml"}, 415, None),
        ("GET", "/v1/no-such-endpoint", None, None, 404, None),
        ("DELETE", "/v1/health", None, None, 404, None),
        ("PATCH", f"/v1/vfs/{VF0}", "", None, 400, "body"),
        ("PATCH", f"/v1/vfs/{VF0}", "{", None, 400, "body"),
        ("PATCH", f"/v1/vfs/{VF0}", "[1]", None, 400, "body"),
        ("PATCH", f"/v1/vfs/{VF0}", "{}", None, 400, "body"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"vlan": 1, "bogus": 1}', None, 400, "bogus"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"vlan": null}', None, 400, "vlan"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"trust": "yes"}', None, 400, "trust"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"spoofCheck": 1}', None, 400, "spoofCheck"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"vlan": 4095}', None, 400, "vlan"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"vlan": -1}', None, 400, "vlan"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"vlan": 5, "qos": 8}', None, 400, "qos"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"qos": 3}', None, 400, "qos"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"vlanProto": "802.1ad"}', None, 400, "vlanProto"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"vlan": 5, "vlanProto": "802.1x"}', None, 400, "vlanProto"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"linkState": "up"}', None, 400, "linkState"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"mac": "01:00:5e:00:00:01"}', None, 400, "mac"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"mac": "00:00:00:00:00:00"}', None, 400, "mac"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"mac": "52:54:00:12:34"}', None, 400, "mac"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"minTxRate": -1}', None, 400, "minTxRate"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"maxTxRate": 4294967296}', None, 400, "maxTxRate"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"minTxRate": 100, "maxTxRate": 50}', None, 400, "minTxRate"),
        ("PATCH", f"/v1/vfs/{VF0}", '{"vlan": 1.5}', None, 400, "vlan"),
        ("PATCH", "/v1/vfs/zz", '{"vlan": 1}', None, 400, "pciAddress"),
        ("PATCH", "/v1/vfs/0000:01:20.0", '{"vlan": 1}', None, 400, "pciAddress"),
        ("PATCH", "/v1/vfs/0000:01:10.8", '{"vlan": 1}', None, 400, "pciAddress"),
        ("PATCH", "/v1/vfs/0000:09:10.0", '{"vlan": 1}', None, 404, None),
        ("PATCH", f"/v1/vfs/{PF}", '{"vlan": 1}', None, 404, None),
        ("POST", "/v1/vfs/zz/restore", None, None, 400, "pciAddress"),
        ("POST", "/v1/vfs/0000:09:10.0/restore", None, None, 404, None),
        ("POST", "/v1/vfs/zz/scrub", None, None, 400, "pciAddress"),
        ("POST", "/v1/vfs/0000:09:10.0/scrub", None, None, 404, None),
        ("POST", f"/v1/vfs/{VF0}/driver", '{"driver": "igb"}', None, 400, "driver"),
        ("POST", f"/v1/vfs/{VF0}/driver", "{}", None, 400, "driver"),
        ("POST", "/v1/vfs/0000:09:10.0/driver", '{"driver": "none"}', None, 404, None),
        ("GET", "/v1/pfs/zz", None, None, 400, "pciAddress"),
        # Percent-encoded ':' (as generic and generated clients send it).
        ("GET", "/v1/pfs/0000%3A09%3A00.0", None, None, 404, None),
        ("GET", "/v1/assignments/vm%3A1/n", None, None, 404, None),
        ("GET", "/v1/pfs/0000:09:00.0", None, None, 404, None),
        ("GET", f"/v1/pfs/{VF0}", None, None, 404, None),
        ("GET", "/v1/vfs?pf=zz", None, None, 400, "pf"),
        ("GET", "/v1/vfs?pf=0000:09:00.0", None, None, 404, None),
        ("GET", "/v1/assignments?pf=zz", None, None, 400, "pf"),
        ("PUT", f"/v1/pfs/{PF}", '{"force": true}', None, 400, "body"),
        ("PUT", f"/v1/pfs/{PF}", '{"numVFs": 8}', None, 400, "numVFs"),
        ("PUT", f"/v1/pfs/{PF}", '{"numVFs": -1}', None, 400, "numVFs"),
        ("PUT", f"/v1/pfs/{PF}", '{"numVFs": "2"}', None, 400, "numVFs"),
        ("PUT", f"/v1/pfs/{PF}", '{"driversAutoprobe": null}', None, 400, "driversAutoprobe"),
        ("PUT", "/v1/pfs/0000:09:00.0", '{"numVFs": 1}', None, 404, None),
        ("POST", "/v1/assignments", '{"vm": "v", "nic": "n", "driver": "vfio-pci"}', None, 400, "pool"),
        ("POST", "/v1/assignments", f'{{"vm": "v", "nic": "n", "driver": "vfio-pci", "pool": "pool-a", "pf": "{PF}"}}',
         None, 400, "pf"),
        ("POST", "/v1/assignments", '{"vm": "v", "nic": "n", "driver": "vfio-pci", "pool": "nope"}', None, 400, "pool"),
        ("POST", "/v1/assignments", '{"vm": "v", "nic": "n", "driver": "vfio-pci", "pf": "0000:09:00.0"}', None, 400, "pf"),
        ("POST", "/v1/assignments", '{"vm": "v/1", "nic": "n", "driver": "vfio-pci", "pool": "pool-a"}', None, 400, "vm"),
        ("POST", "/v1/assignments", '{"vm": "v", "nic": "", "driver": "vfio-pci", "pool": "pool-a"}', None, 400, "nic"),
        ("POST", "/v1/assignments", '{"vm": "v", "nic": "n", "driver": "none", "pool": "pool-a"}', None, 400, "driver"),
        ("POST", "/v1/assignments", '{"vm": "v", "nic": "n", "pool": "pool-a"}', None, 400, "driver"),
        ("POST", "/v1/assignments", '{"vm": "v", "nic": "n", "driver": "vfio-pci", "pool": "pool-a", "qos": 2}',
         None, 400, "qos"),
        ("POST", "/v1/assignments", '{"vm": "v", "nic": "n", "driver": "vfio-pci", "pool": "pool-a", "numaNode": -1}',
         None, 400, "numaNode"),
        ("POST", "/v1/assignments", '{"vm": "v", "nic": "n", "driver": "vfio-pci", "pool": "pool-a", "x": 1}',
         None, 400, "x"),
        ("GET", "/v1/assignments/v%2F1/n", None, None, 400, "vm"),
        ("GET", "/v1/assignments/v/n", None, None, 404, None),
        ("PATCH", "/v1/assignments/v/n", '{"mac": "52:54:00:12:34:56"}', None, 400, "mac"),
        ("PATCH", "/v1/assignments/v/n", "{}", None, 400, "body"),
        ("PATCH", "/v1/assignments/v/n", '{"vlan": 3}', None, 404, None),
        ("DELETE", "/v1/assignments/v/n", None, None, 404, None),
        ("DELETE", "/v1/assignments/v/" + "n" * 129, None, None, 400, "nic"),
    ]
    for method, path, body, headers, want_status, want_field in probes:
        before = full_snapshot(sock)
        status, content_type, problem, raw = request(sock, method, path, body, headers)
        label = f"{method} {path[:60]} {(body or '')[:70]!r}"
        problem = problem if isinstance(problem, dict) else {}
        issue = next(
            (i for i in hooks.KNOWN_ISSUES if "contract" in i["checks"] and i["match"](method, path, status, problem)),
            None,
        )
        wrong = []
        if status != want_status:
            wrong.append(f"status {status}, expected {want_status}")
        if not content_type.startswith("application/problem+json"):
            wrong.append(f"Content-Type {content_type!r}")
        if problem.get("status") != status:
            wrong.append(f"problem status {problem.get('status')!r}")
        if want_field is not None and problem.get("field") != want_field:
            wrong.append(f"field {problem.get('field')!r}, expected {want_field!r}")
        if want_field is None and "field" in problem:
            wrong.append(f"unexpected field {problem.get('field')!r}")
        changes = hooks.diff(before, full_snapshot(sock))
        if changes:
            wrong.append("changed state: " + "; ".join(changes[:5]))
        if wrong and issue and not changes:
            known.append(f"{issue['id']}: {label} -> {status} {raw[:200].decode(errors='replace')}")
        elif wrong:
            failures.append(f"{label}: " + ", ".join(wrong) + f"\n      response: {raw[:300].decode(errors='replace')}")
    return failures, known, len(probes)


# MARK: stage 1c: peer credentials


NOBODY = 65534


def request_as(uid: int, sock: str, method: str, path: str, body: str | None):
    """A request from a child process running as `uid` (and its group):
    sriovd knows its clients only by SO_PEERCRED. (status, content type,
    parsed body, raw) or raises."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to uid, one request, report, exit
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            status, content_type, _, raw = request(sock, method, path, body)
            os.write(write_end, json.dumps([status, content_type, raw.decode(errors="replace")]).encode())
            code = 0
        except BaseException as error:  # noqa: BLE001 - reported by the parent
            os.write(write_end, json.dumps(["error", repr(error)]).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    answer = json.loads(b"".join(chunks) or b'["error", "no answer"]')
    if answer[0] == "error":
        raise RuntimeError(f"request as uid {uid} failed: {answer[1]}")
    status, content_type, raw = answer
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return status, content_type, parsed, raw.encode()


def peer_probes(sock: str, document: Document) -> tuple[list[str], list[str], int]:
    """An unprivileged peer (nobody; no admin or reader group configured)
    must be refused with a conformant 403, and change nothing."""
    failures: list[str] = []
    known: list[str] = []
    probes = [
        ("GET", "/v1/pfs", "/v1/pfs", None),
        ("GET", "/v1/assignments", "/v1/assignments", None),
        ("PATCH", f"/v1/vfs/{VF0}", "/v1/vfs/{pciAddress}", '{"vlan": 7}'),
        ("PUT", f"/v1/pfs/{PF}", "/v1/pfs/{pciAddress}", '{"numVFs": 3}'),
        ("POST", "/v1/assignments", "/v1/assignments", '{"vm": "x", "nic": "y", "pool": "pool-a", "driver": "vfio-pci"}'),
    ]
    sent = 0
    for method, path, template, body in probes:
        if method != "GET" and any(k.startswith("peer-credentials-not-enforced:") for k in known):
            continue  # reads went through: writes would too, and change things
        sent += 1
        before = full_snapshot(sock)
        status, content_type, parsed, raw = request_as(NOBODY, sock, method, path, body)
        label = f"{method} {path} {body or ''} as uid {NOBODY}".strip()
        problems = [] if status == 403 else [f"status {status}, expected 403"]
        problems += document.check(template, method, status, content_type, parsed)
        changes = hooks.diff(before, full_snapshot(sock))
        if changes:
            problems.append("changed state: " + "; ".join(changes[:5]))
        text = f"{label} -> {status} {raw[:200].decode(errors='replace')}"
        issue = next((i for i in hooks.KNOWN_ISSUES if "peer" in i["checks"]
                      and i["match"](method, template, status, parsed if isinstance(parsed, dict) else {})), None)
        if problems and issue and not changes:
            known.append(f"{issue['id']}: {text}")
        elif problems:
            failures.append(f"{text}\n      " + "\n      ".join(problems))
    return failures, known, sent


# MARK: the document, for hand-made requests


class Document:
    """docs/openapi.yaml, to check a response of a hand-made request: its
    status documented for the operation, its content type, its body against
    the documented schema (JSON Schema 2020-12, refs resolved in place)."""

    def __init__(self, path: str):
        import yaml

        with open(path) as f:
            self.doc = yaml.safe_load(f)

    def operations(self) -> set[str]:
        methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
        return {f"{m.upper()} {p}" for p, item in self.doc["paths"].items() for m in item if m in methods}

    def _resolve(self, node: dict) -> dict:
        while "$ref" in node:
            target = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def check(self, template: str, method: str, status: int, content_type: str, body) -> list[str]:
        import jsonschema

        operation = self.doc["paths"].get(template, {}).get(method.lower())
        if operation is None:
            return [f"{method} {template} is not in the document"]
        response = operation["responses"].get(str(status))
        if response is None:
            return [f"status {status} is not documented for {method} {template}"]
        response = self._resolve(response)
        media = content_type.split(";")[0].strip()
        content = response.get("content", {})
        if media not in content:
            return [f"Content-Type {media!r} is not documented for {status} (documented: {sorted(content)})"]
        schema = content[media]["schema"]
        validator = jsonschema.Draft202012Validator({**self.doc, **schema}, format_checker=jsonschema.FormatChecker())
        return [f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message[:300]}" for e in validator.iter_errors(body)]


# MARK: stage 1b: scenarios


def scenarios(sock: str, document: Document) -> tuple[list[str], list[str], int]:
    """Hand-made request sequences through the assignment life cycle and VF
    changes, each response checked against the document, and each 4xx to a
    write checked to change nothing. (failures, known issues seen, requests)"""
    failures: list[str] = []
    known: list[str] = []
    sent = 0
    a = "/v1/assignments"

    def step(method, path, template, body, want, note=""):
        nonlocal sent
        sent += 1
        before = full_snapshot(sock) if method != "GET" else None
        status, content_type, parsed, raw = request(sock, method, path, json.dumps(body) if body is not None else None)
        problems = []
        if status not in want:
            problems.append(f"status {status}, expected {' or '.join(map(str, want))}")
        problems += document.check(template, method, status, content_type, parsed)
        changes = hooks.diff(before, full_snapshot(sock)) if before is not None and 400 <= status < 500 else []
        if changes:
            problems.append("a refused request changed state: " + "; ".join(changes[:6]))
        label = f"{method} {path} {json.dumps(body) if body is not None else ''} {note}".strip()
        if problems:
            detail = parsed if isinstance(parsed, dict) else {}
            issue = next((i for i in hooks.KNOWN_ISSUES if "scenario" in i["checks"]
                          and i["match"](method, template, status, detail)), None)
            text = f"{label} -> {status} {raw[:300].decode(errors='replace')}"
            if issue:
                known.append(f"{issue['id']}: {text}")
            else:
                failures.append(f"{text}\n      " + "\n      ".join(problems))
        return status, parsed if isinstance(parsed, dict) else {}

    one = f"{a}/{{vm}}/{{nic}}"
    request_body = {"vm": "vm-s1", "nic": "net0", "pool": "pool-a", "driver": "vfio-pci",
                    "mac": "52:54:00:aa:bb:01", "vlan": 10, "qos": 2, "spoofCheck": True}
    # The life cycle of one assignment.
    status, created = step("POST", a, a, request_body, {201})
    step("POST", a, a, request_body, {200}, "(the same request again)")
    step("POST", a, a, {**request_body, "vlan": 11}, {409}, "(a different request for the same NIC)")
    step("GET", f"{a}/vm-s1/net0", one, None, {200})
    step("GET", f"{a}?vm=vm-s1&pool=pool-a&pf={PF}", a, None, {200})
    step("GET", f"{a}?vm=nobody", a, None, {200})
    step("PATCH", f"{a}/vm-s1/net0", one, {"vlan": 20, "trust": True, "linkState": "enable"}, {200})
    step("PATCH", f"{a}/vm-s1/net0", one, {"qos": 3}, {200}, "(qos alone: the assignment has vlan 20)")
    step("PATCH", f"{a}/vm-s1/net0", one, {"minTxRate": 100, "maxTxRate": 1000}, {200})
    step("PATCH", f"{a}/vm-s1/net0", one, {"minTxRate": 2000}, {400}, "(above the recorded maxTxRate)")
    host = {"vm": "vm-s1", "nic": "net1", "pf": PF, "driver": "host"}
    step("POST", a, a, host, {201})
    step("DELETE", f"{a}/vm-s1/net1", one, None, {200})
    step("DELETE", f"{a}/vm-s1/net0", one, None, {200})
    step("GET", f"{a}/vm-s1/net0", one, None, {404}, "(released)")
    step("DELETE", f"{a}/vm-s1/net0", one, None, {404}, "(released)")
    step("PATCH", f"{a}/vm-s1/net0", one, {"vlan": 1}, {404}, "(released)")

    # Direct VF changes: configure, restore, drivers.
    vf = f"/v1/vfs/{VF0}"
    step("PATCH", vf, "/v1/vfs/{pciAddress}", {"mac": "52-54-00-AA-BB-02", "vlan": 5, "qos": 1, "vlanProto": "802.1ad",
                                                "spoofCheck": False, "trust": True, "linkState": "disable",
                                                "minTxRate": 0, "maxTxRate": 0}, {200})
    step("POST", f"{vf}/restore", "/v1/vfs/{pciAddress}/restore", None, {200})
    step("POST", f"{vf}/restore", "/v1/vfs/{pciAddress}/restore", None, {200}, "(nothing left to restore)")
    step("PATCH", vf, "/v1/vfs/{pciAddress}", {"mac": "52:54:00:aa:bb:03", "vlan": 6}, {200})
    step("POST", f"{vf}/scrub", "/v1/vfs/{pciAddress}/scrub", None, {200})
    step("POST", f"{vf}/restore", "/v1/vfs/{pciAddress}/restore", None, {200}, "(scrubbed: nothing left to restore)")
    for driver in ("vfio-pci", "vfio-pci", "host", "none", "host"):
        step("POST", f"{vf}/driver", "/v1/vfs/{pciAddress}/driver", {"driver": driver}, {200})
    step("PUT", f"/v1/pfs/{PF}", "/v1/pfs/{pciAddress}", {"driversAutoprobe": False}, {200})
    step("POST", f"{vf}/driver", "/v1/vfs/{pciAddress}/driver", {"driver": "none"}, {200})
    step("POST", f"{vf}/driver", "/v1/vfs/{pciAddress}/driver", {"driver": "host"}, {409},
         "(autoprobe off: no host driver to pick)")
    step("PUT", f"/v1/pfs/{PF}", "/v1/pfs/{pciAddress}", {"driversAutoprobe": True}, {200})

    # VF counts, and an assignment whose VF goes away with a forced count.
    step("PUT", f"/v1/pfs/{PF}", "/v1/pfs/{pciAddress}", {"numVFs": 4}, {200})
    step("PUT", f"/v1/pfs/{PF}", "/v1/pfs/{pciAddress}", {"numVFs": 4}, {200}, "(unchanged)")
    step("POST", a, a, {"vm": "vm-s2", "nic": "net0", "pf": PF, "driver": "vfio-pci"}, {201})
    step("PUT", f"/v1/pfs/{PF}", "/v1/pfs/{pciAddress}", {"numVFs": 2}, {409}, "(an assigned VF would go)")
    status, body = step("GET", f"{a}/vm-s2/net0", one, None, {200})
    if status == 200 and isinstance(body, dict) and body.get("vf"):
        step("POST", f"/v1/vfs/{body['vf']}/scrub", "/v1/vfs/{pciAddress}/scrub", None, {409}, "(assigned)")
    step("PUT", f"/v1/pfs/{PF}", "/v1/pfs/{pciAddress}", {"numVFs": 0, "force": True}, {200})
    step("GET", f"{a}/vm-s2/net0", one, None, {200}, "(its VF is gone)")
    step("DELETE", f"{a}/vm-s2/net0", one, None, {200, 409}, "(its VF is gone)")
    step("PUT", f"/v1/pfs/{PF}", "/v1/pfs/{pciAddress}", {"numVFs": 2}, {200})
    status, _ = step("GET", f"{a}/vm-s2/net0", one, None, {200, 404}, "(its VF is back)")
    if status == 200:
        step("DELETE", f"{a}/vm-s2/net0", one, None, {200}, "(clean up)")
    step("GET", a, a, None, {200})
    return failures, known, sent


# MARK: stages 2 and 3: schemathesis


def schemathesis_config(path: str, port: int, args, mode: str) -> None:
    phases = ["coverage", "fuzzing"] if mode == "negative" else ["examples", "coverage", "fuzzing", "stateful"]
    lines = [
        f'base-url = "http://127.0.0.1:{port}"',
        "workers = 1",
        f"seed = {args.seed}",
        "request-timeout = 20",
        "",
        "[generation]",
        f'mode = "{mode}"',
        f"max-examples = {args.max_examples}",
        # sriovd ignores query parameters it does not know (bodies are
        # strict, query strings are not); the document cannot say so.
        "allow-extra-parameters = false",
        'database = "none"',
        "",
        "[phases]",
    ]
    for name in ("examples", "coverage", "fuzzing", "stateful"):
        lines.append(f"{name}.enabled = {'true' if name in phases else 'false'}")
    lines += [
        f"stateful.max-steps = {args.max_steps}",
        "",
        "[checks]",
        # Positive data can still be refused on what the document cannot
        # express: the host (numVFs above sriov_totalvfs, a pf that is not a
        # PF, a pool not in the configuration), the state (an assignment's
        # merged settings), or minTxRate > maxTxRate. Such refusals are 400s
        # that name the field; the other checks still apply to them. 5xx are
        # judged by no_unexpected_server_error.
        'positive_data_acceptance.expected-statuses = ["2xx", "400", "403", "404", "409", "5xx"]',
        "",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def run_schemathesis(name: str, port: int, tmp: str, fake_root: str, state_dir: str, args, mode: str, budget: float):
    config = os.path.join(tmp, f"schemathesis-{name}.toml")
    schemathesis_config(config, port, args, mode)
    log = os.path.join(tmp, f"requests-{name}.jsonl")
    open(log, "w").close()
    env = dict(os.environ)
    env.update(
        {
            "SCHEMATHESIS_HOOKS": "api_fuzz_hooks",
            "PYTHONPATH": HERE + os.pathsep + env.get("PYTHONPATH", ""),
            "SRIOVD_FUZZ_SYSFS": fake_root,
            "SRIOVD_FUZZ_STATE": state_dir,
            "SRIOVD_FUZZ_LOG": log,
            "NO_COLOR": "1",
            "SRIOVD_FUZZ_NEGATIVE_ONLY": "1" if mode == "negative" else "0",
        }
    )
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", config, "run", args.schema,
        # Every check, and the hooks' own, except: not_a_server_error, which
        # no_unexpected_server_error replaces (the same, minus the known,
        # reported bugs of api_fuzz_hooks.KNOWN_ISSUES); and the two that
        # want 405 + Allow for a method a path does not have: sriovd answers
        # 404 (its router has no per-path method table), as the document
        # says. Reported.
        "--checks", "all",
        "--exclude-checks", "not_a_server_error,unsupported_method,allow_header_conformance",
        "--no-color", "--output-truncate", "false", "--suppress-health-check", "all",
        "--report", "junit", "--report-junit-path", os.path.join(tmp, f"junit-{name}.xml"),
    ]
    # GET /v1/events answers with a stream that does not end: its filters
    # are checked by the unit tests (EventStreamTests), not here.
    command += ["--exclude-operation-id", "followEvents"]
    if mode == "negative":
        # No input to make invalid: nothing to generate.
        command += ["--exclude-operation-id", "getHealth", "--exclude-operation-id", "listPFs",
                    "--exclude-operation-id", "getMetrics"]
    started = time.monotonic()
    try:
        result = subprocess.run(
            command, env=env, cwd=tmp, capture_output=True, text=True, timeout=budget, preexec_fn=_die_with_parent)
        output, code = result.stdout + result.stderr, result.returncode
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode(errors="replace") if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        output += f"\n[api-fuzz] schemathesis ({name}) ran out of its {budget:.0f}s budget"
        code = -1
    records = []
    with open(log) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
    return code, output, records, time.monotonic() - started


def status_table(records: list[dict], documented: set[str]) -> str:
    by_op: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in records:
        op = f"{r['method']} {r['path']}"
        by_op[op if op in documented else "(methods a path does not have)"][r["status"]] += 1
    lines = []
    for op in sorted(by_op):
        counts = by_op[op]
        lines.append(f"    {op:42} {sum(counts.values()):5}  " + " ".join(f"{s}x{n}" for s, n in sorted(counts.items())))
    return "\n".join(lines)


# MARK: main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sriovd", default=os.path.join(REPO, ".build/debug/sriovd"))
    parser.add_argument("--schema", default=os.path.join(REPO, "docs/openapi.yaml"))
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("API_FUZZ_MAX_EXAMPLES", "25")))
    parser.add_argument("--max-steps", type=int, default=8, help="stateful phase: most steps per scenario")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("API_FUZZ_SEED", "20260125")))
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("API_FUZZ_TIMEOUT", "150")),
                        help="wall-clock budget of the whole run, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, reports)")
    args = parser.parse_args()

    started = time.monotonic()
    deadline = started + args.timeout
    if not os.access(args.sriovd, os.X_OK):
        print(f"api-fuzz: {args.sriovd} not found; build it first (swift build)", file=sys.stderr)
        return 2

    if not netns_available():
        # Without it the fake PF has no netdev, every VF settings read fails
        # (500), and rtnetlink writes would reach the host's own links.
        print("api-fuzz: needs root and `unshare --net` (a private network namespace for sriovd)", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="sriovd-api-fuzz-")
    os.chmod(tmp, 0o711)  # the unprivileged peer reaches the socket, lists nothing
    fake = FakeSysfs(os.path.join(tmp, "sys"), pf_netdev_ifindex=1)
    fake.build()
    fake.start()
    os.environ["SRIOVD_FUZZ_SYSFS"] = fake.root
    daemon = Daemon(args.sriovd, tmp, fake, netns=True)
    hooks.SYSFS, hooks.STATE = fake.root, daemon.state
    forwarder = None
    failures: list[str] = []
    known: list[str] = []
    report: list[str] = []
    total_requests = 0
    try:
        daemon.wait_ready()
        forwarder = Forwarder(daemon.socket)
        port = forwarder.server_address[1]
        threading.Thread(target=forwarder.serve_forever, daemon=True).start()
        report.append(f"sriovd on fake sysfs {fake.root}, socket {daemon.socket}, forwarder 127.0.0.1:{port}")
        report.append("network namespace: private (VF settings go to its loopback: reads empty, writes 'unsupported')")

        # Stage 1
        probe_failures, probe_known, sent = contract_probes(daemon.socket)
        total_requests += sent
        failures += [f"contract: {f}" for f in probe_failures]
        known += probe_known
        report.append(f"contract probes: {sent} requests, {len(probe_failures)} failures")

        # Stage 1b
        document = Document(args.schema)
        scenario_failures, scenario_known, sent = scenarios(daemon.socket, document)
        total_requests += sent
        failures += [f"scenario: {f}" for f in scenario_failures]
        known += scenario_known
        report.append(f"scenarios: {sent} requests, {len(scenario_failures)} failures")

        # Stage 1c, last of the hand-made ones: its writes may go through
        # while peer credentials are not enforced.
        peer_failures, peer_known, sent = peer_probes(daemon.socket, document)
        total_requests += sent
        failures += [f"peer credentials: {f}" for f in peer_failures]
        known += peer_known
        report.append(f"peer credentials (as uid {NOBODY}): {sent} requests, {len(peer_failures)} failures")

        # Stage 2 and 3
        for name, mode in (("negative", "negative"), ("positive", "positive")):
            remaining = deadline - time.monotonic() - 10
            if remaining < 15:
                failures.append(f"schemathesis {name}: no time left in the {args.timeout:.0f}s budget")
                continue
            before = full_snapshot(daemon.socket) if mode == "negative" else None
            code, output, records, took = run_schemathesis(
                name, port, tmp, fake.root, daemon.state, args, mode, budget=remaining if mode == "positive" else remaining / 2
            )
            total_requests += len(records)
            statuses = collections.Counter(r["status"] for r in records)
            report.append(
                f"schemathesis {name}: {len(records)} requests in {took:.1f}s, exit {code}; statuses "
                + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
            )
            report.append(status_table(records, document.operations()))
            for r in records:
                if r.get("known_issue"):
                    known.append(f"{r['known_issue']}: {r['method']} {r['url']} {r['request_body'][:120]!r} -> "
                                 f"{r['status']} {r['response_body'][:200]}")
            if code != 0:
                tail = output.strip().splitlines()
                failures.append(f"schemathesis {name} failed (exit {code}):\n" + "\n".join(tail[-150:]))
            if not records:
                failures.append(f"schemathesis {name} sent no requests:\n{output[-3000:]}")
            if before is not None:
                # Invalid requests that were not refused must not have done
                # anything either (schemathesis' negative_data_rejection judges
                # whether they should have been refused: e.g. a bad
                # Content-Type on POST .../restore, which reads no body).
                accepted = [r for r in records if r["method"] != "GET" and not 400 <= r["status"] < 500]
                for r in accepted[:5]:
                    report.append(f"    accepted: {r['method']} {r['url']} {r['request_body'][:80]!r} "
                                  f"({r.get('description') or 'negative'}) -> {r['status']}")
                changes = hooks.diff(before, full_snapshot(daemon.socket))
                if accepted:
                    # Each refused one was still checked on its own (hooks).
                    report.append(f"schemathesis {name}: {len(accepted)} invalid write requests were accepted "
                                  "(see negative_data_rejection); whole-run state comparison skipped")
                elif changes:
                    failures.append(f"schemathesis {name}: invalid requests changed the host state:\n  "
                                    + "\n  ".join(changes[:30]))
                else:
                    report.append(f"schemathesis {name}: host state (API, fake sysfs, state.db) unchanged after the run")

        # Stage 4
        if daemon.process.poll() is not None:
            failures.append(f"sriovd died during the run (exit {daemon.process.returncode})")
    except Exception as error:  # setup problems: report, do not hide
        failures.append(f"{type(error).__name__}: {error}")
    finally:
        if forwarder:
            forwarder.shutdown()
            forwarder.server_close()
        code = daemon.stop()
        fake.stop()
    if code not in (0, None) and not any("died" in f for f in failures):
        failures.append(f"sriovd did not stop cleanly on SIGTERM (exit {code})")
    elif code is None:
        failures.append("sriovd did not stop within 15s of SIGTERM")
    log = daemon.log_text() if not daemon.log.closed else open(daemon.log_path, errors="replace").read()
    unexpected = [line for line in log.splitlines() if "unexpected error" in line or line.startswith("critical")]
    if unexpected:
        failures.append("sriovd logged unexpected errors:\n  " + "\n  ".join(unexpected[:10]))
    if fake.errors:
        failures.append("fake kernel: " + "; ".join(fake.errors[:10]))

    print("=== sriovd API conformance and fuzzing ===")
    for line in report:
        print(line)
    print(f"total: {total_requests} requests in {time.monotonic() - started:.1f}s")
    if known:
        distinct = collections.Counter(k.split(":", 1)[0] for k in known)
        print(f"known issues (reported daemon bugs, not failed): " + ", ".join(f"{k} x{n}" for k, n in distinct.items()))
        for issue in hooks.KNOWN_ISSUES:
            if issue["id"] in distinct:
                print(f"  {issue['id']}: {issue['summary']}")
                example = next(k for k in known if k.startswith(issue["id"] + ":"))
                print(f"    e.g. {example.split(': ', 1)[1][:400]}")
    if failures:
        print(f"FAILED: {len(failures)} problem(s)")
        for f in failures:
            print(" - " + f)
        print(f"logs and reports kept in {tmp}")
        return 1
    print("OK")
    if args.keep:
        print(f"logs and reports kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
