#!/usr/bin/env bash
# What a live migration's switch costs the guest's traffic: runs the migration
# scenario in the SR-IOV test VM (two sriovd daemons, two igb PFs on one
# wire, a guest namespace with an active-backup bond of a VF and a veth) and
# prints, from UDP probes every 10 ms, the probes sent and lost and the
# longest gap for
#   - no switch (through the VF),
#   - (a) a plain unplug with no preparation (the VF's driver unbound under
#     the guest, what nova and KubeVirt amount to),
#   - the whole cycle (incoming, prepare, the standby, complete), A -> B and
#     back, in both topologies (the network on a third PF; on the source PF
#     itself) with both guest bonds (active-backup miimon 20 with default
#     options; with all_slaves_active 1): eight combinations, window by window,
#   - the QMP adapter against a real QEMU guest, with and without the guest
#     agent, when a results file of that test is given (--qmp-results),
# with each step's duration from the migration timelines. A benchmark that
# prints figures, not a test; the same scenario is the MigrationRigTests suite.
#
# usage: scripts/bench/migration.sh [--out DIR] [--1ms] [--qmp-results FILE] [--update-docs]
#   --out DIR            results folder (default: a new /tmp/migration-bench.XXXXXX, kept);
#                        a folder that already holds results.txt is only printed
#   --1ms                also probes every 1 ms (baselines, unplug, every combination)
#   --qmp-results FILE   KEY=value lines of the QMP guest test (qmp_<agent|noagent>_<window>_<sent|lost|gap_ms>)
#   --update-docs        write the figures into docs/benchmarks.md and README.md
set -euo pipefail
log() { printf '[migration-bench] %s\n' "$*" >&2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="" update=0 fast="" qmp=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --1ms) fast=--1ms; shift ;;
    --qmp-results) qmp="${2:?--qmp-results needs a file}"; shift 2 ;;
    --update-docs) update=1; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) log "unknown argument: $1"; exit 2 ;;
  esac
done
[ -z "$qmp" ] || [ -r "$qmp" ] || { log "--qmp-results: cannot read $qmp"; exit 2; }
[ -n "$out" ] || out="$(mktemp -d "${TMPDIR:-/tmp}/migration-bench.XXXXXX")"
mkdir -p "$out"
if [ ! -s "$out/results.txt" ]; then
  (cd "$repo" && swift build >&2)
  "$repo/scripts/rig/run.sh" --pfs 3 --wire --timeout 2400 --out "$out" Tests/RigTests/Scenarios/migration.sh $fast >&2
fi
python3 - "$out" "$update" "$repo/docs/benchmarks.md" "$repo/README.md" "$qmp" <<'PY'
import json, os, sys, time
out, update, doc, readme, qmp = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4], sys.argv[5]
def kv(path):
    return dict(l.split("=", 1) for l in open(path).read().splitlines() if "=" in l)
r = kv(os.path.join(out, "results.txt"))
q = kv(qmp) if qmp else {}
TOPO = {"i": "(i) network on a third PF", "ii": "(ii) network on the source PF"}
BOND = {"default": "default options", "asa": "all_slaves_active 1"}
DIR = {"ab": "A -> B", "ba": "B -> A"}
WINDOWS = ["incoming", "prepare", "standby", "complete"]

def row(label, name):
    if f"{name}_sent" not in r: return None
    return f"| {label} | {r[name + '_sent']} | {r[name + '_lost']} | {r[name + '_gap_ms']} |"
lines = ["| probes | sent | lost | longest gap (ms) |", "|---|---:|---:|---:|"]
for label, name in [
        ("no switch, through the VF, 10 ms", "baseline_vf_10ms"), ("no switch, through the VF, 1 ms", "baseline_vf_1ms"),
        ("(a) plain unplug, no preparation, 10 ms", "unplug_10ms"), ("(a) plain unplug, no preparation, 1 ms", "unplug_1ms"),
        ("abort on the source after prepare, 10 ms", "abort_10ms"),
        ("after a restart that finished an interrupted complete, 10 ms", "after_crash_10ms")]:
    x = row(label, name)
    if x: lines.append(x)

def combos(suffix):
    for t in ("i", "ii"):
        for b in ("default", "asa"):
            for d in ("ab", "ba"):
                tag = f"{t}_{b}_{d}{suffix}"
                if f"complete_{tag}_sent" in r: yield t, b, d, tag
cyc = []
total = {}
for suffix, label in (("", "10 ms"), ("_1ms", "1 ms")):
    rows = list(combos(suffix))
    if not rows: continue
    cyc += ["", f"The whole cycle, probes every {label}: sent / lost per window, back to back from before "
            "incoming to after complete (incoming and half a second after it, prepare, the standby until "
            "complete, complete and 0.7 s after it); the longest gap is the longest time without a reply "
            "inside one window, its edges included.", "",
            "| topology | guest bond | way | incoming | prepare | standby | complete | whole cycle | longest gap in a window (ms) |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for t, b, d, tag in rows:
        cells = [f"{r.get(f'{w}_{tag}_sent', '?')} / {r.get(f'{w}_{tag}_lost', '?')}" for w in WINDOWS]
        sent = sum(int(r.get(f"{w}_{tag}_sent", 0)) for w in WINDOWS)
        lost = sum(int(r.get(f"{w}_{tag}_lost", 0)) for w in WINDOWS)
        gap = max(float(r.get(f"{w}_{tag}_gap_ms", 0)) for w in WINDOWS)
        total.setdefault(label, [0, 0, 0, 0.0])
        total[label][0] += sent; total[label][1] += lost; total[label][2] += 1
        total[label][3] = max(total[label][3], gap)
        cyc.append(f"| {TOPO[t]} | {BOND[b]} | {DIR[d]} | " + " | ".join(cells) + f" | {sent} / **{lost}** | {gap} |")

steps = ["", "Per-step durations (ms) from the timelines, topology (i), all_slaves_active 1:", "",
         "| call | step | A -> B | B -> A | lever |", "|---|---|---:|---:|---|"]
def timeline(name):
    try: return json.load(open(os.path.join(out, name + ".json")))["timeline"]
    except Exception: return []
for call, src in (("incoming", "show"), ("prepare", "show_source"), ("complete", "show")):
    a = [s for s in timeline(f"{src}_i_asa_ab") if s["operation"] == call]
    b = {s["step"]: s for s in timeline(f"{src}_i_asa_ba") if s["operation"] == call}
    for s in a:
        other = b.get(s["step"], {})
        lever = s.get("lever") or (f"none: {s['detail']}" if s.get("result") == "skipped" else "")
        steps.append(f"| {call} | {s['step']} | {s.get('durationMs') or 0:.1f} | {other.get('durationMs') or 0:.1f} | {lever} |")

# The QMP adapter's rows: from the QMP guest test's results file, when given.
qrows = ["", "<!-- qmp-figures: written by scripts/bench/migration.sh --qmp-results FILE -->"]
if q:
    qrows += ["", "The QMP adapter against a real QEMU guest (no VF on this machine: an emulated NIC is plugged in "
              "the VF's place), probes every 10 ms:", "",
              "| QMP guest | window | sent | lost | longest gap (ms) |", "|---|---|---:|---:|---:|"]
    for mode, label in (("noagent", "without the guest agent"), ("agent", "with the guest agent (bond lever)")):
        for w in ("prepare", "complete"):
            k = f"qmp_{mode}_{w}"
            if f"{k}_sent" in q:
                qrows.append(f"| {label} | {w} | {q[k + '_sent']} | {q[k + '_lost']} | {q.get(k + '_gap_ms', '?')} |")
else:
    qrows += ["", "QMP adapter rows: not in this run (no `--qmp-results` file)."]
qrows.append("<!-- qmp-figures: end -->")

bonds = ("The guest's bond: `mode active-backup miimon 20`, measured with default options "
         "(`all_slaves_active 0`) and with `all_slaves_active 1`.")
text = "\n".join([bonds, ""] + lines + cyc + steps + qrows)
print(text)
if update:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(os.path.join(out, "results.txt"))))
    head = "## Live migration: what the switch costs the guest's traffic"
    section = f"{head}\n\n`scripts/bench/migration.sh`, {stamp} (TCG-emulated VM, 2 vCPUs).\n\n{text}\n"
    body = open(doc).read()
    if head in body:
        start = body.index(head); end = body.find("\n## ", start + 1)
        body = body[:start] + section + ("\n" + body[end + 1:] if end != -1 else "")
    else:
        body = body.rstrip("\n") + "\n\n" + section
    open(doc, "w").write(body)
    # README: one sentence per interval, between its markers.
    parts = []
    for label, (sent, lost, n, gap) in total.items():
        parts.append(f"at {label}, the {n} combinations (both topologies, both guest bonds, both ways) "
                     f"lost {lost} of {sent} probes over the whole cycle, incoming to complete "
                     f"(longest gap in a window {gap} ms)")
    for name, label in (("unplug_10ms", "a plain unplug at 10 ms"), ("unplug_1ms", "a plain unplug at 1 ms")):
        if f"{name}_sent" in r:
            parts.append(f"{label} lost {r[name + '_lost']} of {r[name + '_sent']}")
    sentence = (f"Last run ({stamp}; guest bond `active-backup miimon 20`, default options and "
                f"`all_slaves_active 1`): " + "; ".join(parts) + ".")
    start_mark, end_mark = "<!-- migration-figures:start -->", "<!-- migration-figures:end -->"
    text = open(readme).read()
    if start_mark in text and end_mark in text:
        a = text.index(start_mark) + len(start_mark); b = text.index(end_mark)
        text = text[:a] + "\n" + sentence + "\n" + text[b:]
        open(readme, "w").write(text)
    else:
        print("README.md has no migration-figures markers: not updated", file=sys.stderr)
PY
