#!/usr/bin/env bash
# Installs everything sriovd needs to build and to run its real-kernel tests on a
# Debian 12 (bookworm) machine: the C libraries' -dev packages, QEMU 10 from
# bookworm-backports (bookworm's 7.2 has no igb), the Debian kernel image that
# the test VM boots, and virtme-ng from PyPI. Idempotent; run as root.
set -euo pipefail

log() { printf '[install-deps] %s\n' "$*" >&2; }

export DEBIAN_FRONTEND=noninteractive

# systemd and util-linux: the VM tests run the shipped units under this
# machine's own systemd (PID 1 of a namespace in the guest: unshare,
# systemd-sysusers, journalctl), and the socket tests use setpriv.
# scripts/package.sh builds the Debian package with dpkg-deb and
# dpkg-shlibdeps (dpkg-dev), its sriovd.toml(5) with lowdown and checks it
# with lintian; man-db gives the tests `man`.
package_tools="dpkg-dev lowdown lintian man-db"

need_apt=0
for pkg in libnl-3-dev libnl-route-3-dev libsystemd-dev libpci-dev pkg-config \
           libsqlite3-dev iproute2 pciutils kmod busybox-static socat tcpdump ethtool python3-pip curl jq python3 \
           systemd udev util-linux $package_tools; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
# qemu-guest-agent: copied with its libraries into the initramfs of the
# QEMU guest the QMP tests boot (the guest agent's steering lever), from
# bookworm-backports like QEMU itself.
dpkg -s qemu-guest-agent >/dev/null 2>&1 || need_apt=1

# The Debian mirror this machine's own apt sources use for bookworm: the
# first URI of a one-line "deb URI bookworm ..." entry (sources.list and
# sources.list.d/*.list) or of a deb822 stanza (sources.list.d/*.sources)
# whose Suites: include bookworm. Backports come from the same mirror, so
# this repository names no package host of its own. APT_ETC (default
# /etc/apt) is for testing the lookup.
apt_mirror() {
  local etc="${APT_ETC:-/etc/apt}" f
  for f in "$etc/sources.list" "$etc"/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI suite components...
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                       if ($(i + 1) == "bookworm") { print $i; exit } }' "$f"
  done
  for f in "$etc"/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # Stanzas are separated by blank lines; keys are case-insensitive.
    awk 'BEGIN { RS = ""; FS = "\n" }
         { uri = ""; deb = 0; suite = 0; enabled = 1
           for (n = 1; n <= NF; n++) {
             line = $n; key = tolower(line); sub(/:.*/, "", key); sub(/^[^:]*:[ \t]*/, "", line)
             if (key == "types" && line ~ /(^| )deb( |$)/) deb = 1
             if (key == "uris") { split(line, u, /[ \t]+/); uri = u[1] }
             if (key == "suites" && line ~ /(^| )bookworm( |$)/) suite = 1
             if (key == "enabled" && tolower(line) == "no") enabled = 0
           }
           if (deb && suite && enabled && uri != "") { print uri; exit } }' "$f"
  done | head -n1
}

backports_line() {
  local mirror
  mirror="$(apt_mirror)"
  [ -n "$mirror" ] || {
    log "no apt source for bookworm in ${APT_ETC:-/etc/apt}: cannot tell which mirror to take bookworm-backports from"
    return 1
  }
  echo "deb ${mirror%/} bookworm-backports main"
}

# --backports-line: print the source line this script would add, and stop.
if [ "${1:-}" = --backports-line ]; then
  backports_line
  exit
fi

backports=/etc/apt/sources.list.d/bookworm-backports.list
if [ ! -f "$backports" ]; then
  log "adding bookworm-backports (for qemu-system-x86 >= 8, which has -device igb)"
  line="$(backports_line)"
  echo "$line" > "$backports"
  need_apt=1
fi

if ! command -v qemu-system-x86_64 >/dev/null || ! ls /boot/vmlinuz-* >/dev/null 2>&1; then
  need_apt=1
fi

if [ "$need_apt" = 1 ]; then
  log "apt-get update"
  apt-get update -qq
  log "installing build and rig packages"
  apt-get install -y -qq --no-install-recommends \
    libnl-3-dev libnl-route-3-dev libsystemd-dev libpci-dev pkg-config \
    libsqlite3-dev iproute2 pciutils kmod busybox-static socat tcpdump ethtool python3-pip curl jq python3 \
    systemd udev util-linux $package_tools >/dev/null
  log "installing qemu-system-x86 from bookworm-backports"
  apt-get install -y -qq --no-install-recommends -t bookworm-backports \
    qemu-system-x86 qemu-utils qemu-guest-agent >/dev/null
  # The kernel the VM boots. Installed whole (a half-installed linux-image
  # blocks later apt runs): it pulls initramfs-tools and linux-base.
  log "installing linux-image-amd64"
  apt-get install -y -qq linux-image-amd64 >/dev/null
fi

if ! command -v vng >/dev/null; then
  log "installing virtme-ng from PyPI"
  pip install --quiet --disable-pip-version-check virtme-ng
fi

# pyroute2 (PyPI) for scripts/bench/vf-programming.sh: the library OpenStack's
# SR-IOV agent programs VFs with. Same pip as virtme-ng.
if ! pip show pyroute2 >/dev/null 2>&1; then
  log "installing pyroute2 from PyPI"
  pip install --quiet --disable-pip-version-check pyroute2
fi
# schemathesis (PyPI) for scripts/api-fuzz.sh: checks a live sriovd against
# docs/openapi.yaml and fuzzes its API (its config format is that of 4.x).
if ! pip show schemathesis >/dev/null 2>&1; then
  log "installing schemathesis from PyPI"
  pip install --quiet --disable-pip-version-check 'schemathesis>=4.32,<5'
fi

# prometheus_client (PyPI): its exposition-format parser reads /metrics in
# scripts/metrics-conventions.py (the unit tests run it).
if ! pip show prometheus_client >/dev/null 2>&1; then
  log "installing prometheus_client from PyPI"
  pip install --quiet --disable-pip-version-check prometheus_client
fi

# pyenv's shims (vng) appear only after a rehash.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi

log "qemu: $(qemu-system-x86_64 --version | head -n1)"
log "kernel: $(ls /boot/vmlinuz-* | tail -n1)"
log "vng: $(command -v vng)"
log "pyroute2: $(pip show pyroute2 2>/dev/null | sed -n 's/^Version: //p')"
