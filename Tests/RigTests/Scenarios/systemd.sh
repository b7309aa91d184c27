#!/usr/bin/env bash
# sriovd under a real systemd: the shipped units (systemd/sriovd.service and
# sriovd.socket, only the binary path changed), with their sandbox, on the real
# igb driver. The VM has no systemd running, so one is started as PID 1 of a
# new PID and mount namespace (as a container manager would), on the VM's own
# root, /sys and network: it starts sriovd-rig.target, whose check unit drives
# sriovd through the socket and ends the manager. Results go to $RIG_OUT.
set -euo pipefail
. "$RIG_REPO/Tests/RigTests/Scenarios/common.sh"
. "$RIG_REPO/Tests/RigTests/Scenarios/systemd-namespace.sh"

pf=${PFS[0]}
ip link set dev "$(rig_pf_netdev "$pf")" up
units=/run/sriovd-rig-units
mkdir -p "$units" /etc/sriovd /var/lib
systemd-sysusers "$RIG_REPO/systemd/sriovd.sysusers"
systemd-tmpfiles --create "$RIG_REPO/systemd/sriovd.tmpfiles"
cat >/etc/sriovd/sriovd.toml <<TOML
[daemon]
reader_group = "sriovd-ro"
reconcile_interval_seconds = 0
log_level = "info"
TOML
chmod 0644 /etc/sriovd/sriovd.toml

# The shipped units, pointed at the binary under test. The checkout may be
# anywhere (under /tmp, /home, /root), which the service's sandbox hides
# (PrivateTmp=, ProtectHome=): the build folder is bind-mounted under /run.
sbin=/run/sriovd-rig-bin
mkdir -p "$sbin"
mount --bind "$BIN" "$sbin"
sed "s#/usr/sbin/sriovd #$sbin/sriovd #" "$RIG_REPO/systemd/sriovd.service" >"$units/sriovd.service"
sed "s#/usr/sbin/sriovd #$sbin/sriovd #" "$RIG_REPO/systemd/sriovd.socket" >"$units/sriovd.socket"
grep -q "$sbin/sriovd " "$units/sriovd.service" "$units/sriovd.socket" || rig_die "the units' ExecStart= lines moved"
cat >"$units/sriovd-rig.target" <<'UNIT'
[Unit]
Description=sriovd under systemd (rig)
Wants=sriovd.socket sriovd-rig-check.service
UNIT
cat >"$units/sriovd-rig-check.service" <<UNIT
[Unit]
Description=sriovd rig checks
After=sriovd.socket
[Service]
Type=oneshot
Environment=RIG_REPO=$RIG_REPO RIG_OUT=$RIG_OUT RIG_PFS=$RIG_PFS SRIOVD_BIN_DIR=$BIN
ExecStart=/bin/bash $RIG_REPO/Tests/RigTests/Scenarios/systemd-checks.sh
StandardOutput=append:$RIG_OUT/checks.log
StandardError=append:$RIG_OUT/checks.log
UNIT

run_systemd_namespace "$units" sriovd-rig.target "$RIG_OUT/systemd-results.txt"
