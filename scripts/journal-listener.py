#!/usr/bin/env python3
"""A stand-in for journald's native-protocol socket, for tests.

    journal-listener.py SOCKET CAPTURE READY [JSONL]

Binds a datagram socket at SOCKET (where libsystemd's sd_journal_send sends
records), creates READY once listening, and stores every record until one is
exactly b"SRIOVD_CAPTURE_END=1\\n":
  CAPTURE  each record as an 8-byte little-endian length and its bytes
           (a record passed as a memfd, as libsystemd does for large ones,
           is stored by content)
  JSONL    optional: each record as one JSON object of its fields, parsed
           here from the native protocol (`NAME=value\\n`, or `NAME\\n`, a
           64-bit little-endian length, the value and `\\n`)
"""
import array
import json
import os
import socket
import struct
import sys


def fields(data: bytes) -> dict:
    out, i = {}, 0
    while i < len(data):
        eq, nl = data.find(b"=", i), data.find(b"\n", i)
        if nl < 0:
            raise ValueError(f"field at byte {i} does not end")
        if 0 <= eq < nl:
            name, value, i = data[i:eq], data[eq + 1 : nl], nl + 1
        else:
            name = data[i:nl]
            (length,) = struct.unpack_from("<Q", data, nl + 1)
            start = nl + 9
            value, i = data[start : start + length], start + length + 1
        out[name.decode()] = value.decode("utf-8", "replace")
    return out


def main() -> None:
    path, capture, ready = sys.argv[1:4]
    jsonl = open(sys.argv[4], "w") if len(sys.argv) > 4 else None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    open(ready, "w").close()
    with open(capture, "wb") as f:
        while True:
            data, ancillary, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(4 * 8))
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds = array.array("i")
                    fds.frombytes(payload[: len(payload) - len(payload) % 4])
                    for fd in fds:
                        os.lseek(fd, 0, os.SEEK_SET)
                        chunks = []
                        while chunk := os.read(fd, 1 << 16):
                            chunks.append(chunk)
                        os.close(fd)
                        data = b"".join(chunks)
            if data == b"SRIOVD_CAPTURE_END=1\n":
                break
            f.write(struct.pack("<Q", len(data)) + data)
            f.flush()
            if jsonl:
                jsonl.write(json.dumps(fields(data)) + "\n")
                jsonl.flush()


if __name__ == "__main__":
    main()
