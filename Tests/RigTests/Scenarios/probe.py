#!/usr/bin/env python3
"""Traffic probes for the migration scenario and benchmark (the test VM has
no ping): UDP datagrams with a sequence number, echoed by a peer.

  probe.py serve ADDR PORT
      echo every datagram back to its sender (runs until killed)
  probe.py send ADDR PORT INTERVAL_S OUT.json STOPFILE
      send one probe every INTERVAL_S until STOPFILE exists (or SIGINT/SIGTERM:
      `ip netns exec` forks and does not pass signals on), then wait 0.3 s
      for replies in flight and write {"sent", "received", "lost",
      "gap_ms" (longest time between two replies), "lost_runs"} to OUT.json
"""
import json
import os
import signal
import socket
import struct
import sys
import time


def serve(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(64)
        s.sendto(data, peer)


def send(addr, port, interval, out, stopfile):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    seq = 0
    replies = {}  # seq -> receive time
    open(out + ".started", "w").close()  # the caller waits for this (Python starts slowly under TCG)
    start = time.monotonic()
    next_at = start

    def drain():
        while True:
            try:
                data = s.recv(64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(data) >= 4:
                n = struct.unpack("!I", data[:4])[0]
                replies.setdefault(n, time.monotonic())

    while not stop and not os.path.exists(stopfile):
        now = time.monotonic()
        if now >= next_at:
            try:
                s.sendto(struct.pack("!I", seq), (addr, port))
            except OSError:
                pass  # no route for a moment counts as lost
            seq += 1
            next_at += interval
            if next_at < now - 1:  # fell far behind: do not burst
                next_at = now + interval
        drain()
        time.sleep(min(max(next_at - time.monotonic(), 0), 0.0005))
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        drain()
        time.sleep(0.001)
    got = sorted(replies.values())
    gap = max((b - a for a, b in zip(got, got[1:])), default=0.0)
    lost_seqs = [n for n in range(seq) if n not in replies]
    runs = []
    for n in lost_seqs:
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    result = {
        "sent": seq, "received": len([n for n in replies if n < seq]), "lost": len(lost_seqs),
        "gap_ms": round(gap * 1000, 1), "lost_runs": runs[:20], "interval_ms": interval * 1000,
        "duration_s": round(time.monotonic() - start, 2),
    }
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6])
