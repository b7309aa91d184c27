#!/usr/bin/env bash
# What a live migration's switch costs the guest's traffic: runs the migration
# scenario in the SR-IOV test VM (two sriovd daemons, two igb PFs on one
# wire, a guest namespace with an active-backup bond of a VF and a veth) and
# prints, from UDP probes every 10 ms and every 1 ms, the probes lost and the
# longest gap for
#   - no switch (baseline, through the VF; through the standby),
#   - (a) a plain unplug with no preparation (the VF's driver unbound under
#     the guest, what nova and KubeVirt amount to),
#   - (b) sriovd's prepare (standby up, the bond's active slave, the VF's MAC
#     cleared, detach, release),
#   - (c) sriovd's complete (attach, carrier plus settling, active slave back),
# with each step's duration from the migration timelines. A benchmark that
# prints figures, not a test; the same scenario is the MigrationRigTests suite.
#
# usage: scripts/bench/migration.sh [--out DIR] [--update-docs]
#   --out DIR       results folder (default: a new /tmp/migration-bench.XXXXXX, kept)
#   --update-docs   also replace the "Live migration" figures in docs/benchmarks.md
set -euo pipefail
log() { printf '[migration-bench] %s\n' "$*" >&2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="" update=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --update-docs) update=1; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) log "unknown argument: $1"; exit 2 ;;
  esac
done
[ -n "$out" ] || out="$(mktemp -d "${TMPDIR:-/tmp}/migration-bench.XXXXXX")"
mkdir -p "$out"
if [ ! -s "$out/results.txt" ]; then
  (cd "$repo" && swift build >&2)
  "$repo/scripts/rig/run.sh" --pfs 3 --wire --timeout 1500 --out "$out" Tests/RigTests/Scenarios/migration.sh >&2
fi
python3 - "$out" "$update" "$repo/docs/benchmarks.md" <<'PY'
import json, os, sys, time
out, update, doc = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
r = dict(l.split("=", 1) for l in open(os.path.join(out, "results.txt")).read().splitlines() if "=" in l)
def row(label, name):
    if f"{name}_sent" not in r: return None
    return f"| {label} | {r[name + '_sent']} | {r[name + '_lost']} | {r[name + '_gap_ms']} |"
rows = [
    ("no switch, through the VF, 10 ms", "baseline_vf_10ms"), ("no switch, through the VF, 1 ms", "baseline_vf_1ms"),
    ("no switch, on the standby after prepare, 10 ms", "standby_ab"), ("no switch, on the standby after prepare, 1 ms", "standby_ba"),
    ("(a) plain unplug, no preparation, 10 ms", "unplug_10ms"), ("(a) plain unplug, no preparation, 1 ms", "unplug_1ms"),
    ("(b) prepare: bond active slave, MAC cleared, detach, 10 ms (PF A -> B)", "prepare_ab"),
    ("(b) prepare: bond active slave, MAC cleared, detach, 1 ms (PF B -> A)", "prepare_ba"),
    ("(c) complete: attach, carrier + settle, active slave back, 10 ms (onto PF B)", "complete_ab"),
    ("(c) complete: attach, carrier + settle, active slave back, 1 ms (onto PF A)", "complete_ba"),
    ("abort on the source after prepare, 10 ms", "abort_10ms"),
    ("after a restart that finished an interrupted complete, 10 ms", "after_crash_10ms"),
]
lines = ["| probes | sent | lost | longest gap (ms) |", "|---|---:|---:|---:|"]
lines += [x for x in (row(*p) for p in rows) if x]
steps = ["", "Per-step durations (ms) from the timelines:", "",
         "| call | step | A -> B (10 ms probes) | B -> A (1 ms probes) | lever |", "|---|---|---:|---:|---|"]
def timeline(name):
    try: return json.load(open(os.path.join(out, name + ".json")))["timeline"]
    except Exception: return []
for call, src in (("prepare", "show_source"), ("complete", "show")):
    a = [s for s in timeline(f"{src}_ab") if s["operation"] == call]
    b = {s["step"]: s for s in timeline(f"{src}_ba") if s["operation"] == call}
    for s in a:
        other = b.get(s["step"], {})
        lever = s.get("lever") or (f"none: {s['detail']}" if s.get("result") == "skipped" else "")
        steps.append(f"| {call} | {s['step']} | {s.get('durationMs', 0):.1f} | {other.get('durationMs', 0):.1f} | {lever} |")
text = "\n".join(lines + steps)
print(text)
if update:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = f"## Live migration: what the switch costs the guest's traffic\n\n`scripts/bench/migration.sh`, {stamp} (TCG-emulated VM, 2 vCPUs).\n\n{text}\n"
    body = open(doc).read()
    head = "## Live migration: what the switch costs the guest's traffic"
    if head in body:
        start = body.index(head); end = body.find("\n## ", start + 1)
        body = body[:start] + section + (body[end + 1:] if end != -1 else "")
    else:
        body = body.rstrip("\n") + "\n\n" + section
    open(doc, "w").write(body)
PY
