#!/usr/bin/env bash
# The Debian package under a real systemd: install, socket activation, a
# reader and an admin through the socket, an upgrade, remove, purge; all from
# the package's own files (scripts/package.sh builds them into
# .build-release/deb: revision 1 and its upgrade, revision 2). systemd runs as
# PID 1 of a namespace (systemd-namespace.sh); the check unit,
# package-checks.sh, does the operator's steps with dpkg and systemctl and
# writes KEY=value lines to $RIG_OUT/package-results.txt.
#
# The VM shares the host's root file system (9p, read-only): dpkg must write
# only to the VM's own layers. The scenario refuses to run unless every
# folder dpkg writes is an overlay or tmpfs of the VM.
set -euo pipefail
. "$RIG_REPO/scripts/rig/lib.sh"
. "$RIG_REPO/Tests/RigTests/Scenarios/systemd-namespace.sh"

debs="$RIG_REPO/.build-release/deb"
shopt -s nullglob
first=("$debs"/sriovd_*-1_amd64.deb)
second=("$debs"/sriovd_*-2_amd64.deb)
[ "${#first[@]}" = 1 ] && [ "${#second[@]}" = 1 ] \
  || rig_die "need one sriovd_*-1_amd64.deb and one sriovd_*-2_amd64.deb in $debs (scripts/package.sh --revision 1, --revision 2)"

for dir in /usr /usr/sbin /usr/lib /etc /var/lib /var/lib/dpkg /var/cache /run; do
  fstype="$(findmnt -n -o FSTYPE -T "$dir")"
  case "$fstype" in
    overlay|tmpfs) ;;
    *) rig_die "$dir is on $fstype, not a layer of the VM's own: dpkg would write to the host" ;;
  esac
done
# Every file the VM wrote is in these upper layers: package-checks.sh looks
# there for whatever sriovd's files purge left.
findmnt -n -o OPTIONS -t overlay | tr ',' '\n' | sed -n 's/^upperdir=//p' >/run/sriovd-pkg-uppers
echo /run >>/run/sriovd-pkg-uppers

# virtme-ng's init bind-mounts a generated /etc/shadow over the real one (for
# logins). useradd replaces /etc/shadow by rename(2), which a mount point
# refuses (EBUSY): it then stops after writing /etc/passwd and before
# /etc/group, leaving a user without its groups. The overlay's own file is
# what a host has.
if mountpoint -q /etc/shadow; then umount /etc/shadow; fi

# man-db reindexes after each dpkg run when this file exists: minutes over
# 9p under TCG, and `man` finds pages without the index.
rm -f /var/lib/man-db/auto-update
ip link set dev "$(rig_pf_netdev "${RIG_PFS%% *}")" up
units=/run/sriovd-pkg-units
mkdir -p "$units"
cat >"$units/sriovd-pkg.target" <<'UNIT'
[Unit]
Description=the sriovd package under systemd (rig)
Wants=sriovd-pkg-check.service
UNIT
cat >"$units/sriovd-pkg-check.service" <<UNIT
[Unit]
Description=sriovd package checks
[Service]
Type=oneshot
Environment=RIG_REPO=$RIG_REPO RIG_OUT=$RIG_OUT RIG_PFS=$RIG_PFS DEB1=${first[0]} DEB2=${second[0]}
ExecStart=/bin/bash $RIG_REPO/Tests/RigTests/Scenarios/package-checks.sh
StandardOutput=append:$RIG_OUT/checks.log
StandardError=append:$RIG_OUT/checks.log
UNIT

run_systemd_namespace "$units" sriovd-pkg.target "$RIG_OUT/package-results.txt"
grep -q '^done=yes$' "$RIG_OUT/package-results.txt" || rig_die "the package checks did not run to the end"
