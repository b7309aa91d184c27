#!/usr/bin/env bash
# Runs as sriovd-pkg-check.service under the systemd that package.sh starts:
# an operator's life with the package, step by step (README, "Install on a
# host"). One KEY=value line per fact to $RIG_OUT/package-results.txt; the
# host-side test (PackageRigTests) says what each must be. DEB1 and DEB2 are
# the package and its upgrade.
set -uo pipefail
. "$RIG_REPO/scripts/rig/lib.sh"
read -r -a PFS <<< "$RIG_PFS"
pf=${PFS[0]}
SOCK=/run/sriovd/sriovd.sock
out="$RIG_OUT/package-results.txt"
r() { echo "$1=$2" >>"$out"; }
# step NAME: where the checks are, with the seconds since they started, in checks.log.
step() { echo "== ${SECONDS}s: $*" >>"$RIG_OUT/checks.log"; }
# ok COMMAND...: "ok", or "failed N" with its output in checks.log.
ok() { local rc=0; "$@" >>"$RIG_OUT/checks.log" 2>&1 || rc=$?; [ "$rc" = 0 ] && echo ok || echo "failed $rc"; }
# as USER COMMAND...: exit status of COMMAND run as USER, its output to $RIG_OUT/as-USER.log.
as() { local rc=0; runuser -u "$1" -- "${@:2}" >>"$RIG_OUT/as-$1.log" 2>&1 || rc=$?; echo "$rc"; }
active() { echo "$(systemctl is-active sriovd.socket) $(systemctl is-active sriovd.service)"; }
mainpid() { systemctl show sriovd.service -p MainPID --value; }
conf=/etc/sriovd/sriovd.toml
export PAGER=cat MANPAGER=cat

# Install: groups, folders, units known to systemd; nothing enabled or started.
step install
r install "$(ok dpkg -i "$DEB1")"
r version "$(dpkg-query -W -f '${Version} ${Status}' sriovd)"
r groups "$(getent group sriovd >/dev/null && getent group sriovd-ro >/dev/null && echo yes || echo no)"
r state_dir "$(stat -c '%a %U %G' /var/lib/sriovd 2>&1)"
r run_dir "$(stat -c '%a %U %G' /run/sriovd 2>&1)"
r enabled_after_install "$(systemctl is-enabled sriovd.socket) $(systemctl is-enabled sriovd.service)"
r active_after_install "$(active)"
r exec_start "$(systemctl show sriovd.service -p ExecStart --value | sed -n 's/.*path=\([^ ;]*\).*/\1/p')"
r conffile_pristine "$(cmp -s "$conf" "$RIG_REPO/config/sriovd.toml" && echo yes || echo no)"
r conffile_check "$(ok /usr/sbin/sriovd check-config "$conf")"
r binary_version "$(/usr/sbin/sriovd --version)"

# Man pages and completions, from the installed files.
step man pages and completions
r man_sriovctl "$(man -w sriovctl 2>&1)"
r man_sriovd "$(man 8 sriovd 2>/dev/null | grep -c 'check-config')"
r man_sriovctl_text "$(man 8 sriovctl 2>/dev/null | grep -c 'assign')"
r man_toml "$(man 5 sriovd.toml 2>/dev/null | grep -c 'reconcile_interval_seconds')"
r completion_bash "$(bash -c '. /usr/share/bash-completion/completions/sriovctl
  COMP_WORDS=(sriovctl ""); COMP_CWORD=1; COMP_LINE="sriovctl "; COMP_POINT=${#COMP_LINE}
  _sriovctl sriovctl "" sriovctl 2>/dev/null; printf "%s\n" "${COMPREPLY[@]}"' | grep -cxE 'vfs|assign|release|health')"
r completion_zsh "$(grep -c '^#compdef sriovctl' /usr/share/zsh/vendor-completions/_sriovctl)"

# The operator's edits: a reader group, a PF with two VFs in a pool.
step configuration and users
sed -i 's/^#reader_group = ""/reader_group = "sriovd-ro"/' "$conf"
cat >>"$conf" <<TOML

[[pf]]
pci = "$pf"
num_vfs = 2
  [[pf.pool]]
  name = "physnet1"
TOML
r conffile_edited_check "$(ok /usr/sbin/sriovd check-config "$conf")"
edited="$(md5sum <"$conf")"
r users "$(ok useradd --system --no-create-home --shell /usr/sbin/nologin --groups sriovd-ro sriovd-reader) $(
  ok useradd --system --no-create-home --shell /usr/sbin/nologin sriovd-stranger)"
r reader_groups "$(id -nG sriovd-reader 2>&1)"

# Enable: the socket listens; the first request (the reader's) starts sriovd.
step enable
r enable "$(ok systemctl enable --now sriovd.socket)"
r active_after_enable "$(active)"
r reader_health "$(as sriovd-reader sriovctl health)"
r active_after_request "$(active)"
rig_wait_for "[ \"\$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)\" = 2 ]" 120 >>"$RIG_OUT/checks.log" 2>&1
vf0=$(rig_vf_pci "$pf" 0)
vf1=$(rig_vf_pci "$pf" 1)
r reader_vfs "$(as sriovd-reader sriovctl vfs)"
r reader_vfs_listed "$( [ -n "$vf0" ] && [ -n "$vf1" ] && grep -c -F -e "$vf0" -e "$vf1" "$RIG_OUT/as-sriovd-reader.log" || echo "no VFs")"
r reader_change "$(as sriovd-reader sriovctl vf set "$vf0" --trust on)"
r reader_change_trust "$(ip -d -j link show dev "$(rig_pf_netdev "$pf")" | python3 -c 'import json,sys; print([v for v in json.load(sys.stdin)[0]["vfinfo_list"] if v["vf"]==0][0].get("trust"))')"
r stranger_health "$(as sriovd-stranger sriovctl health)"
r admin_assign "$(ok sriovctl assign vm-pkg net0 --pool physnet1 --driver host --mac 52:54:00:5e:00:01 --vlan 10)"
assigned="$(sriovctl --json assignment vm-pkg net0 2>>"$RIG_OUT/checks.log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vf"])')"
r assigned_vf "$assigned"
r state_db "$( [ -s /var/lib/sriovd/state.db ] && echo yes || echo no)"
db_inode="$(stat -c %i /var/lib/sriovd/state.db)"
pid1="$(mainpid)"

# Upgrade to the second build: the edited configuration, the state and its
# assignment stay; a running sriovd is restarted on the new files.
step upgrade
r upgrade "$(ok dpkg -i "$DEB2")"
r upgraded_version "$(dpkg-query -W -f '${Version} ${Status}' sriovd)"
r conffile_kept "$( [ "$(md5sum <"$conf")" = "$edited" ] && echo yes || echo no)"
r conffile_leftovers "$(find /etc/sriovd -name '*.dpkg-*' | wc -l)"
r state_db_kept "$( [ "$(stat -c %i /var/lib/sriovd/state.db 2>&1)" = "$db_inode" ] && echo yes || echo no)"
r active_after_upgrade "$(active)"
r restarted "$( pid2="$(mainpid)"; [ "$pid2" != 0 ] && [ "$pid2" != "$pid1" ] && echo new-pid || echo "same-pid $pid2")"
r assignment_after_upgrade "$(sriovctl --json assignment vm-pkg net0 2>>"$RIG_OUT/checks.log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["vf"])' 2>>"$RIG_OUT/checks.log")"
r reader_after_upgrade "$(as sriovd-reader sriovctl vfs)"
r release "$(ok sriovctl release vm-pkg net0)"

# Remove: stopped, files gone but the configuration and the state.
step remove
r remove "$(ok dpkg -r sriovd)"
r removed_status "$(dpkg-query -W -f '${Status}' sriovd 2>&1)"
r active_after_remove "$(active)"
r removed_files "$(ls /usr/sbin/sriovd /usr/bin/sriovctl /lib/systemd/system/sriovd.service /usr/share/man/man8/sriovctl.8.gz 2>/dev/null | wc -l)"
r remove_keeps "$( [ -f "$conf" ] && [ -s /var/lib/sriovd/state.db ] && echo conf+state || echo lost)"

# Purge: nothing of sriovd's is left. Every file the VM wrote is in its
# overlays' upper layers (or tmpfs /run): none may be named for sriovd. The
# groups stay (postrm says why); the test users are this scenario's own.
step purge
r purge "$(ok dpkg -P sriovd)"
r purged_status "$(dpkg-query -W -f '${Status}' sriovd 2>/dev/null || echo not-installed)"
r purged_paths "$(ls -d /etc/sriovd /var/lib/sriovd /run/sriovd /etc/systemd/system/sockets.target.wants/sriovd.socket 2>/dev/null | wc -l)"
systemctl daemon-reload
r purged_units "$(systemctl list-unit-files 'sriovd.*' --no-legend | wc -l)"
# (/run/rig-bin: the rig's copy of the binaries under test, not the package's.)
leftovers="$(while read -r upper; do
  find "$upper" \( -path "$upper/sriovd-pkg-units" -o -path "$upper/sriovd-pkg-uppers" -o -path /run/rig-bin \) -prune \
    -o -name '*sriovd*' -print
done </run/sriovd-pkg-uppers 2>/dev/null | grep -v '^/run/systemd/' | sort | tr '\n' ' ')"
r leftovers "${leftovers:-none}"
journalctl -u sriovd.service --no-pager -o short-monotonic >"$RIG_OUT/sriovd-journal.txt" 2>&1 || true
step done
r done yes
