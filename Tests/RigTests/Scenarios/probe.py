#!/usr/bin/env python3
"""Traffic probes for the migration scenario, benchmark and demo (the test VM
has no ping): UDP datagrams with a sequence number, echoed by a peer.

  probe.py serve ADDR PORT
      echo every datagram back to its sender (runs until killed)
  probe.py run ADDR PORT DIR
      one long-running prober for a whole scenario (Python starts slowly
      under TCG: one start, not one per window). It creates DIR/cmd (a FIFO)
      and DIR/ready, then reads commands, one a line:
        start NAME INTERVAL_S  a window: one probe every INTERVAL_S from now
                               (DIR/NAME.started once the first one is out)
        stop NAME              end the window now; 0.3 s later (replies in
                               flight) DIR/NAME.kv holds NAME_sent,
                               NAME_received, NAME_lost, NAME_gap_ms,
                               NAME_lost_runs and NAME_start (wall clock);
                               DIR/NAME.json the same as JSON
        quit
      Between windows nothing is sent. A window's longest gap is the longest
      time without a reply from the window's start to its end, the edges
      included: a path that is down when the window opens or closes counts.
      lost_runs are "first-last@ms" runs of lost probes, ms from the start.
"""
import json
import os
import socket
import struct
import sys
import time

GRACE_S = 0.3


def serve(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(64)
        s.sendto(data, peer)


class Window:
    def __init__(self, name, interval, first_seq):
        self.name, self.interval = name, interval
        self.first_seq = first_seq
        self.start = time.monotonic()
        self.start_wall = time.time()
        self.next_at = self.start
        self.end = None
        self.sent_at = {}  # seq -> send time

    def summary(self, replies):
        end = self.end
        seqs = sorted(self.sent_at)
        got = {n: replies[n] for n in seqs if n in replies}
        points = sorted([self.start, end] + [t for t in got.values() if t <= end])
        gap = max((b - a for a, b in zip(points, points[1:])), default=0.0)
        runs, run = [], None
        for n in seqs:
            if n in got:
                run = None
            elif run and run[1] == n - 1:
                run[1] = n
            else:
                run = [n, n]
                runs.append(run)
        ms = lambda t: round((t - self.start) * 1000)
        return {
            "sent": len(seqs), "received": len(got), "lost": len(seqs) - len(got),
            "gap_ms": round(gap * 1000, 1), "interval_ms": self.interval * 1000,
            "duration_s": round(end - self.start, 2), "start": round(self.start_wall, 3),
            "lost_runs": [f"{a - self.first_seq}-{b - self.first_seq}@{ms(self.sent_at[a])}" for a, b in runs[:20]],
        }


def run(addr, port, folder):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    cmd_path = os.path.join(folder, "cmd")
    if not os.path.exists(cmd_path):
        os.mkfifo(cmd_path)
    cmd = os.open(cmd_path, os.O_RDONLY | os.O_NONBLOCK)
    keep = os.open(cmd_path, os.O_WRONLY | os.O_NONBLOCK)  # no EOF when writers close
    pending = b""
    seq = 0
    replies = {}  # seq -> receive time
    window = None
    closing = []  # windows in their grace time: (deadline, window)
    open(os.path.join(folder, "ready"), "w").close()

    def write(w):
        r = w.summary(replies)
        n = w.name
        with open(os.path.join(folder, n + ".json.tmp"), "w") as f:
            json.dump(r, f)
        kv = "".join(f"{n}_{k}={' '.join(v) if isinstance(v, list) else v}\n"
                     for k, v in r.items() if k in ("sent", "received", "lost", "gap_ms", "lost_runs", "start"))
        with open(os.path.join(folder, n + ".kv.tmp"), "w") as f:
            f.write(kv)
        os.rename(os.path.join(folder, n + ".json.tmp"), os.path.join(folder, n + ".json"))
        os.rename(os.path.join(folder, n + ".kv.tmp"), os.path.join(folder, n + ".kv"))

    while True:
        try:
            chunk = os.read(cmd, 4096)
        except BlockingIOError:
            chunk = b""
        if chunk:
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                words = line.decode().split()
                if not words:
                    continue
                if words[0] == "start":
                    if window:  # an unclosed window ends where the next begins
                        window.end = time.monotonic()
                        closing.append((window.end + GRACE_S, window))
                    window = Window(words[1], float(words[2]), seq)
                elif words[0] == "stop" and window and window.name == words[1]:
                    window.end = time.monotonic()
                    closing.append((window.end + GRACE_S, window))
                    window = None
                elif words[0] == "quit":
                    for _, w in closing:
                        write(w)
                    return
        now = time.monotonic()
        if window and now >= window.next_at:
            try:
                s.sendto(struct.pack("!I", seq), (addr, port))
            except OSError:
                pass  # no route for a moment counts as lost
            window.sent_at[seq] = now
            if seq == window.first_seq:
                open(os.path.join(folder, window.name + ".started"), "w").close()
            seq += 1
            window.next_at += window.interval
            if window.next_at < now - 1:  # fell far behind: do not burst
                window.next_at = now + window.interval
        while True:
            try:
                data = s.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if len(data) >= 4:
                replies.setdefault(struct.unpack("!I", data[:4])[0], time.monotonic())
        now = time.monotonic()
        while closing and closing[0][0] <= now:
            write(closing.pop(0)[1])
        if window:
            delay = window.next_at - now
        elif closing:
            delay = closing[0][0] - now
        else:
            delay = 0.005
        time.sleep(min(max(delay, 0), 0.0005 if window else 0.005))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "run":
        run(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(f"usage: {sys.argv[0]} serve ADDR PORT | run ADDR PORT DIR")
