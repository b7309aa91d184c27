#!/usr/bin/env python3
"""Checks a Prometheus text exposition (sriovd's /metrics answer) on stdin.

The text is parsed whole by prometheus_client's own parser
(prometheus_client.parser.text_string_to_metric_families), which raises on
anything malformed, and the families are checked against the Prometheus
naming conventions:
  - every family has a # HELP line with text, and a # TYPE line;
  - no family is listed twice (a second HELP or TYPE line for one name);
  - counters end in _total, and nothing else does;
  - units are base units written as the suffix: _seconds, _bytes (before
    _total on a counter; histograms' _bucket/_sum/_count come after it),
    never _milliseconds, _ms, _kilobytes, _percent and the like.

Prints one JSON object: {"problems": [...], "families": {name: {"type",
"help", "samples": [[name, labels, value], ...]}}} (counters under their
exposed name, with _total). Exit status: 0 conventional, 1 problems found,
2 the text does not parse or prometheus_client is missing.

    curl -s http://127.0.0.1:9477/metrics | scripts/metrics-conventions.py
    scripts/metrics-conventions.py FILE
"""
import json
import math
import re
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("metrics-conventions: prometheus_client is not installed (scripts/install-deps.sh)", file=sys.stderr)
    sys.exit(2)

BASE_UNITS = ("seconds", "bytes")
# Words that are units other than the base ones; as whole words of a name.
OTHER_UNITS = {
    "milliseconds", "microseconds", "nanoseconds", "ms", "us", "ns", "minutes", "hours", "days",
    "kilobytes", "megabytes", "gigabytes", "kb", "mb", "gb", "kib", "mib", "gib", "bits", "percent",
}


def check(text):
    problems = []
    help_lines, type_lines = {}, {}
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split(" ", 3)
        if line.startswith("# HELP "):
            name = parts[2]
            if name in help_lines:
                problems.append(f"{name}: a second # HELP line (line {number}): the family is listed twice")
            help_lines[name] = parts[3] if len(parts) > 3 else ""
        elif line.startswith("# TYPE "):
            name = parts[2]
            if name in type_lines:
                problems.append(f"{name}: a second # TYPE line (line {number}): the family is listed twice")
            type_lines[name] = parts[3] if len(parts) > 3 else ""

    families = {}
    for family in text_string_to_metric_families(text):
        # The parser names a counter without its _total; the text shows it
        # as its # TYPE line does.
        exposed = family.name
        if family.type == "counter" and family.name + "_total" in type_lines:
            exposed = family.name + "_total"
        if exposed in families:
            problems.append(f"{exposed}: the family is listed twice")
        families[exposed] = {
            "type": family.type,
            "help": family.documentation,
            "samples": [[s.name, s.labels, s.value if math.isfinite(s.value) else str(s.value)] for s in family.samples],
        }

    for name, family in sorted(families.items()):
        if not help_lines.get(name, "").strip():
            problems.append(f"{name}: no # HELP text")
        if name not in type_lines or family["type"] in ("unknown", "untyped"):
            problems.append(f"{name}: no # TYPE line")
        if family["type"] == "counter":
            if not name.endswith("_total"):
                problems.append(f"{name}: a counter whose name does not end in _total")
        elif name.endswith("_total"):
            problems.append(f"{name}: a {family['type']} whose name ends in _total (only counters do)")
        stem = name[: -len("_total")] if name.endswith("_total") else name
        words = stem.split("_")
        for word in words:
            if word in OTHER_UNITS:
                problems.append(f"{name}: '{word}' is not a base unit (use seconds or bytes)")
        for unit in BASE_UNITS:
            if unit in words[:-1]:
                problems.append(f"{name}: the unit '{unit}' is not the suffix")
        if not re.fullmatch(r"[a-z_:][a-z0-9_:]*", name):
            problems.append(f"{name}: not a lower-case snake_case name")
    return problems, families


def main():
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    try:
        problems, families = check(text)
    except Exception as error:  # the parser's word for malformed text
        print(f"metrics-conventions: the text does not parse: {error!r}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps({"problems": problems, "families": families}, sort_keys=True))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
