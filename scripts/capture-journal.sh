#!/usr/bin/env bash
# Captures what sriovd sends to journald, without journald: in a private mount
# namespace (unshare -m) a tmpfs hides the host's /run/systemd and a datagram
# listener takes /run/systemd/journal/socket, the address libsystemd sends
# native-protocol records to (and drops them, silently, when nothing is
# there). sriovd runs with --log-target journal on a socket and state folder
# in OUTDIR and an empty sysfs tree (no PFs); once its socket accepts
# connections it gets SIGTERM.
#   scripts/capture-journal.sh OUTDIR [SRIOVD_BINARY]
# Writes to OUTDIR:
#   journal.bin     every datagram received, each as an 8-byte little-endian
#                   length and the datagram's bytes (a record sent as a memfd,
#                   as libsystemd does for large ones, is stored by content)
#   sriovd.stderr   sriovd's standard error (records the journal refused land here)
#   sriovd.exit     sriovd's exit status
# Needs root (unshare, mount) and python3. Exits 0 when sriovd started,
# stopped on SIGTERM and the capture finished; non-zero, with a reason, if not.
set -euo pipefail

out="${1:?usage: capture-journal.sh OUTDIR [SRIOVD_BINARY]}"
cd "$(dirname "$0")/.."
binary="$(realpath -m "${2:-.build/debug/sriovd}")"
[ -x "$binary" ] || { echo "capture-journal: $binary is not an executable (swift build)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "capture-journal: needs root (unshare -m, mount)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "capture-journal: needs python3" >&2; exit 1; }
mkdir -p "$out"
out="$(realpath "$out")"
case "$out/" in /run/*) echo "capture-journal: OUTDIR must not be under /run (a tmpfs hides it)" >&2; exit 1 ;; esac
rm -f "$out/journal.bin" "$out/sriovd.stderr" "$out/sriovd.exit"
mkdir -p "$out/sys/bus/pci/devices" "$out/state"


export CAPTURE_OUT="$out" CAPTURE_BINARY="$binary" CAPTURE_LISTENER="$PWD/scripts/journal-listener.py"
exec unshare --mount --propagation private -- bash -euo pipefail -c '
  # Hide the host journal (if any) and make our own /run/systemd/journal.
  target=/run/systemd; [ -d "$target" ] || target=/run
  mount -t tmpfs -o mode=0755 tmpfs "$target"
  mkdir -p /run/systemd/journal
  journal=/run/systemd/journal/socket
  python3 "$CAPTURE_LISTENER" "$journal" "$CAPTURE_OUT/journal.bin" "$CAPTURE_OUT/listener.ready" &
  listener=$!
  for _ in $(seq 100); do [ -e "$CAPTURE_OUT/listener.ready" ] && break; sleep 0.1; done
  [ -e "$CAPTURE_OUT/listener.ready" ] || { echo "capture-journal: the listener did not start" >&2; exit 1; }

  socket="$CAPTURE_OUT/api.sock"
  "$CAPTURE_BINARY" --log-target journal --log-level info --socket "$socket" \
    --state-dir "$CAPTURE_OUT/state" --sysfs-root "$CAPTURE_OUT/sys" 2> "$CAPTURE_OUT/sriovd.stderr" &
  daemon=$!
  up=no
  for _ in $(seq 300); do
    if [ -S "$socket" ] && python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])" "$socket" 2>/dev/null; then
      up=yes; break
    fi
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$daemon" 2>/dev/null || true
  status=0; wait "$daemon" || status=$?
  echo "$status" > "$CAPTURE_OUT/sriovd.exit"

  # Everything sriovd sent is queued before this: end the capture.
  python3 -c "import socket,sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b\"SRIOVD_CAPTURE_END=1\n\", sys.argv[1])" "$journal"
  wait "$listener"
  [ "$up" = yes ] || { echo "capture-journal: sriovd never accepted connections on $socket (exit $status)" >&2; cat "$CAPTURE_OUT/sriovd.stderr" >&2; exit 1; }
'
