# shellcheck shell=bash
# One line per phase for scripts/test.sh, scripts/demo.sh and .ci/run: each
# phase's own output (apt, pip, the compiler, the test runner) goes to a log
# file; the screen gets the phase's name, a live count or elapsed time while
# it runs (on a terminal), its duration when it ends, and on a failure the
# log's last lines.
#
#   . scripts/lib/progress.sh
#   progress_init LOG       the log file (its path is printed once)
#   phase LABEL CMD...      runs CMD with its output appended to the log
#   phase_table             the phases so far: label, seconds, result
#
# SRIOVD_PHASES names the file the phases are recorded in (label, seconds,
# result, tab-separated), so that .ci/run and scripts/test.sh share one
# table. SRIOVD_VERBOSE=1 shows the tools' output as it comes instead.

PROGRESS_LOG=""

progress_init() {
  PROGRESS_LOG="$1"
  mkdir -p "$(dirname "$PROGRESS_LOG")"
  touch "$PROGRESS_LOG"
  export SRIOVD_PHASES="${SRIOVD_PHASES:-${PROGRESS_LOG%.log}.phases}"
  touch "$SRIOVD_PHASES"
  if [ "${SRIOVD_LOG_SHOWN:-}" != "$PROGRESS_LOG" ]; then
    echo "Output of the tools: $PROGRESS_LOG"
    export SRIOVD_LOG_SHOWN="$PROGRESS_LOG"
  fi
}

# The log's last "[n/m]" (swift build's count), or nothing.
_progress_count() {
  tail -c 4096 "$PROGRESS_LOG" 2>/dev/null | grep -oE '^\[[0-9]+/[0-9]+\]' | tail -n1
}

_progress_seconds() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.0f", e - s }'; }

# phase LABEL CMD...: runs CMD, its output to the log. Returns CMD's status
# after showing the log's last lines when it failed.
phase() {
  local label="$1" start rc=0 pid spin='|/-\' i=0 elapsed
  shift
  start=$EPOCHREALTIME
  local marker
  marker="===== $label ($(date -u +%H:%M:%S))"
  printf '\n%s\n' "$marker" >>"$PROGRESS_LOG"
  if [ "${SRIOVD_VERBOSE:-0}" = 1 ]; then
    echo "== $label"
    "$@" 2>&1 | tee -a "$PROGRESS_LOG" || rc=${PIPESTATUS[0]}
  elif [ -t 1 ]; then
    "$@" >>"$PROGRESS_LOG" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      elapsed=$(_progress_seconds "$start" "$EPOCHREALTIME")
      printf '\r\033[K%s %s %s s %s' "${spin:i++%4:1}" "$label" "$elapsed" "$(_progress_count)"
      sleep 0.5
    done
    wait "$pid" || rc=$?
    printf '\r\033[K'
  else
    printf '%s ... ' "$label"
    "$@" >>"$PROGRESS_LOG" 2>&1 || rc=$?
  fi
  elapsed=$(_progress_seconds "$start" "$EPOCHREALTIME")
  printf '%s\t%s\t%s\n' "$label" "$elapsed" "$([ "$rc" = 0 ] && echo ok || echo "failed ($rc)")" >>"$SRIOVD_PHASES"
  if [ "$rc" = 0 ]; then
    if [ -t 1 ] && [ "${SRIOVD_VERBOSE:-0}" != 1 ]; then printf '%s ... ' "$label"; fi
    echo "ok (${elapsed} s)"
  else
    if [ -t 1 ] && [ "${SRIOVD_VERBOSE:-0}" != 1 ]; then printf '%s ... ' "$label"; fi
    echo "FAILED (exit $rc, ${elapsed} s)"
    echo "----- the last lines of $PROGRESS_LOG"
    awk -v m="$marker" '$0 == m { on = 1 } on' "$PROGRESS_LOG" | tail -n "${SRIOVD_FAIL_LINES:-60}"
    echo "----- (the whole output: $PROGRESS_LOG)"
  fi
  return "$rc"
}

# phase_table: every phase recorded in $SRIOVD_PHASES, and the total.
phase_table() {
  [ -s "${SRIOVD_PHASES:-}" ] || return 0
  awk -F '\t' '
    { label[NR] = $1; secs[NR] = $2; result[NR] = $3; total += $2; if (length($1) > w) w = length($1) }
    END {
      if (w < 5) w = 5
      printf "%-" w "s  %7s  %s\n", "phase", "seconds", "result"
      for (i = 1; i <= NR; i++) printf "%-" w "s  %7d  %s\n", label[i], secs[i], result[i]
      printf "%-" w "s  %7d\n", "total", total
    }' "$SRIOVD_PHASES"
}
