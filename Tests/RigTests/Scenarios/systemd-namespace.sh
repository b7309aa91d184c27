# shellcheck shell=bash
# Starts this machine's systemd as PID 1 of a new PID and mount namespace in
# the test VM (which runs no systemd: PID 1 is virtme-ng-init), as a container
# manager would, on the VM's own root, /sys and network, and waits for the
# checks it runs to end. Sourced by the systemd scenarios.

# run_systemd_namespace UNITS TARGET RESULTS: the manager takes its units from
# the folder UNITS first, then from the usual places, and starts TARGET, whose
# check unit writes KEY=value lines to RESULTS, `done=...` last. Then the
# whole namespace goes (its PID 1 killed from outside, which kills everything
# in it). Appends manager_alive=yes|no to RESULTS; the manager's own log is
# $RIG_OUT/systemd.log; if the checks did not finish, $RIG_OUT/unfinished.txt
# has the manager's jobs and the processes then running.
run_systemd_namespace() {
  local units="$1" target="$2" results="$3" namespace
  # This machine's own tmpfiles.d setup walks the whole shared file system
  # under TCG (200 s); the scenarios apply what sriovd needs themselves.
  ln -sf /dev/null "$units/systemd-tmpfiles-setup.service"
  # cgroup v2 for the manager.
  mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
  rig_log "starting systemd as PID 1 of a new PID namespace"
  unshare --pid --fork --mount --mount-proc --propagation private \
    env SYSTEMD_UNIT_PATH="$units:" container=sriovd-rig \
    /lib/systemd/systemd --system --unit="$target" --log-target=kmsg --show-status=no \
    >"$RIG_OUT/systemd.log" 2>&1 &
  namespace=$!
  for _ in $(seq 600); do
    grep -q '^done=' "$results" 2>/dev/null && break
    kill -0 "$namespace" 2>/dev/null || break
    sleep 1
  done
  echo "manager_alive=$(kill -0 "$namespace" 2>/dev/null && echo yes || echo no)" >>"$results"
  if ! grep -q '^done=' "$results" 2>/dev/null; then
    # Not finished: what the manager was waiting for (its private socket is
    # on the shared /run) and what ran, for the test's failure message.
    rig_log "the checks did not finish; jobs and processes in $RIG_OUT/unfinished.txt"
    { systemctl list-jobs --no-pager; ps -eo pid,ppid,etimes,stat,args; } >"$RIG_OUT/unfinished.txt" 2>&1 || true
  fi
  pkill -KILL -P "$namespace" 2>/dev/null || true
  wait "$namespace" 2>/dev/null || true
  rig_log "systemd ended"
}
