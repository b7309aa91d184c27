# shellcheck shell=bash
# Helpers for rig scenarios, sourced inside the guest:
#   . "$RIG_REPO/scripts/rig/lib.sh"
# Everything is resolved by PCI address (interface names are renamed by udev).
# Requires bash. Functions return non-zero with a message on stderr on failure.

rig_log() { printf '[rig %s] %s\n' "$(date +%T)" "$*" >&2; }
rig_die() { rig_log "ERROR: $*"; exit 1; }

_rig_dev() { printf '/sys/bus/pci/devices/%s' "$1"; }

# rig_settle: let udev finish renaming/probing (bounded).
rig_settle() {
  if command -v udevadm >/dev/null 2>&1; then
    udevadm settle --timeout="${1:-30}" >/dev/null 2>&1 || true
  fi
}

# rig_wait_for CMD TIMEOUT: evaluate the shell snippet CMD every 0.2 s until it
# succeeds (return 0) or TIMEOUT seconds pass (return 1, with a message).
rig_wait_for() {
  if [ "$#" -ne 2 ]; then
    rig_log "usage: rig_wait_for 'SHELL SNIPPET' TIMEOUT_SECONDS"
    return 2
  fi
  local cmd="$1" timeout="$2" deadline
  deadline=$(( $(date +%s) + timeout ))
  while :; do
    if eval "$cmd" >/dev/null 2>&1; then
      return 0
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      rig_log "timed out after ${timeout}s waiting for: $cmd"
      return 1
    fi
    sleep 0.2
  done
}

# rig_pf_netdev PCI: print the netdev name of a PCI function (exactly one).
rig_pf_netdev() {
  local pci="${1:?usage: rig_pf_netdev PCI}" dir names
  dir="$(_rig_dev "$pci")/net"
  if [ ! -d "$dir" ]; then
    rig_log "$pci has no netdev ($dir missing: no driver bound, or not a NIC)"
    return 1
  fi
  names=( "$dir"/* )
  if [ "${#names[@]}" -ne 1 ] || [ ! -e "${names[0]}" ]; then
    rig_log "$pci: expected exactly one netdev in $dir, found: ${names[*]##*/}"
    return 1
  fi
  printf '%s\n' "${names[0]##*/}"
}

# rig_vf_count PF: number of virtfn links of a PF.
rig_vf_count() {
  local pf="${1:?usage: rig_vf_count PF}" n=0 l
  for l in "$(_rig_dev "$pf")"/virtfn*; do
    [ -L "$l" ] && n=$((n + 1))
  done
  printf '%s\n' "$n"
}

# rig_vf_pci PF INDEX: print the PCI address of VF number INDEX of PF.
rig_vf_pci() {
  local pf="${1:?usage: rig_vf_pci PF INDEX}" idx="${2:?usage: rig_vf_pci PF INDEX}" link
  link="$(_rig_dev "$pf")/virtfn$idx"
  if [ ! -L "$link" ]; then
    rig_log "$pf has no VF $idx ($link missing; sriov_numvfs=$(cat "$(_rig_dev "$pf")/sriov_numvfs" 2>/dev/null || echo '?'))"
    return 1
  fi
  basename "$(readlink "$link")"
}

# rig_set_numvfs PCI N [TIMEOUT]: set the VF count of a PF. Goes through 0 when
# changing between two non-zero counts (the kernel refuses that with EBUSY),
# then waits (bounded, default 60 s) until exactly N virtfn links exist.
rig_set_numvfs() {
  local pf="${1:?usage: rig_set_numvfs PCI N [TIMEOUT]}" n="${2:?usage: rig_set_numvfs PCI N [TIMEOUT]}"
  local timeout="${3:-60}" dev cur total err
  dev="$(_rig_dev "$pf")"
  if [ ! -e "$dev/sriov_numvfs" ]; then
    rig_log "$pf is not an SR-IOV PF ($dev/sriov_numvfs missing)"
    return 1
  fi
  case "$n" in ''|*[!0-9]*) rig_log "rig_set_numvfs: bad VF count '$n'"; return 1 ;; esac
  total="$(cat "$dev/sriov_totalvfs")"
  if [ "$n" -gt "$total" ]; then
    rig_log "$pf: asked for $n VFs but sriov_totalvfs is $total"
    return 1
  fi
  cur="$(cat "$dev/sriov_numvfs")"
  if [ "$cur" -ne 0 ] && [ "$n" -ne 0 ] && [ "$cur" -ne "$n" ]; then
    if ! err="$( { echo 0 > "$dev/sriov_numvfs"; } 2>&1 )"; then
      rig_log "$pf: writing 0 to sriov_numvfs failed: $err"
      return 1
    fi
    rig_wait_for "[ \"\$(rig_vf_count '$pf')\" -eq 0 ]" "$timeout" || {
      rig_log "$pf: VFs did not go away after writing 0"
      return 1
    }
  fi
  if [ "$cur" -ne "$n" ]; then
    if ! err="$( { echo "$n" > "$dev/sriov_numvfs"; } 2>&1 )"; then
      rig_log "$pf: writing $n to sriov_numvfs failed: $err"
      return 1
    fi
  fi
  if ! rig_wait_for "[ \"\$(rig_vf_count '$pf')\" -eq '$n' ]" "$timeout"; then
    rig_log "$pf: expected $n virtfn links, have $(rig_vf_count "$pf") (sriov_numvfs=$(cat "$dev/sriov_numvfs"))"
    return 1
  fi
  rig_settle
}

# _rig_run_check NAME CMD...: run CMD in a subshell with errexit on, record
# "PASS<TAB>NAME" or "FAIL<TAB>NAME<TAB>exit N" in $RIG_OUT/checks.txt, set
# _rig_rc to CMD's status.
_rig_run_check() {
  local name="$1" had_e=0
  shift
  name="${name//[$'\t\n']/ }"
  case "$-" in *e*) had_e=1 ;; esac
  set +e
  ( set -e; "$@" )
  _rig_rc=$?
  [ "$had_e" = 1 ] && set -e
  if [ "$_rig_rc" -eq 0 ]; then
    printf 'PASS\t%s\n' "$name" >> "${RIG_OUT:?RIG_OUT not set}/checks.txt"
    rig_log "PASS $name"
  else
    printf 'FAIL\t%s\texit %s\n' "$name" "$_rig_rc" >> "${RIG_OUT:?RIG_OUT not set}/checks.txt"
    rig_log "FAIL $name (exit $_rig_rc)"
  fi
}

# rig_check NAME CMD...: run CMD, record PASS/FAIL in $RIG_OUT/checks.txt and
# keep going (always returns 0; end the scenario with rig_summary, which fails
# if any check failed). CMD runs in a subshell with errexit on, so a shell
# function CMD stops at its first failing command -- but only if rig_check is
# not itself called from an if/while condition or a && / || list (bash then
# ignores errexit in everything underneath).
rig_check() {
  [ "$#" -ge 2 ] || { rig_log "usage: rig_check NAME CMD..."; return 2; }
  _rig_run_check "$@"
  return 0
}

# rig_require NAME CMD...: like rig_check, but a failure ends the scenario
# (exit 1) -- for steps everything after depends on.
rig_require() {
  [ "$#" -ge 2 ] || { rig_log "usage: rig_require NAME CMD..."; exit 2; }
  _rig_run_check "$@"
  if [ "$_rig_rc" -ne 0 ]; then
    rig_log "required check failed: $1"
    rig_summary || true
    exit 1
  fi
}

# rig_summary: print the pass/fail counts of checks.txt; non-zero if any FAIL
# or if no check ran at all.
rig_summary() {
  local f="${RIG_OUT:?RIG_OUT not set}/checks.txt" pass=0 fail=0
  if [ -f "$f" ]; then
    pass="$(grep -c '^PASS' "$f" || true)"
    fail="$(grep -c '^FAIL' "$f" || true)"
  fi
  rig_log "checks: $pass pass, $fail fail"
  if [ "$fail" -ne 0 ]; then
    grep '^FAIL' "$f" >&2
    return 1
  fi
  [ "$pass" -gt 0 ] || { rig_log "no checks ran"; return 1; }
}
