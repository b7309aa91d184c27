#!/usr/bin/env bash
# Checks a live sriovd against docs/openapi.yaml and fuzzes its API with
# schemathesis (scripts/api_fuzz.py does the work; see its docstring).
#
# sriovd runs from .build/debug (override with SRIOVD_BIN=path) on a fake
# sysfs tree in a temporary folder, on its own Unix socket and state folder,
# in a private network namespace when `unshare --net` works (root): no real
# device, interface or system file is touched. Schemathesis reaches the
# socket through a forwarder on 127.0.0.1 (an ephemeral port).
#
# Bounded: about 30 s on 2 cores, at most API_FUZZ_TIMEOUT (default 150) s.
# Options are passed on to api_fuzz.py: --max-examples N (per operation and
# phase, default 25), --seed N, --timeout S, --keep (keep logs and reports).
# Needs python3 with schemathesis (scripts/install-deps.sh installs it).
# Exit status: 0 conformant, 1 problems found (listed), 2 cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=""
for candidate in python3 /usr/local/bin/python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import schemathesis, yaml' 2>/dev/null; then
    python="$candidate"
    break
  fi
done
if [ -z "$python" ]; then
  echo "api-fuzz: no python3 with schemathesis and PyYAML (pip install schemathesis; scripts/install-deps.sh)" >&2
  exit 2
fi

sriovd="${SRIOVD_BIN:-.build/debug/sriovd}"
if [ ! -x "$sriovd" ]; then
  echo "api-fuzz: $sriovd is not built (swift build)" >&2
  exit 2
fi

exec "$python" scripts/api_fuzz.py --sriovd "$sriovd" "$@"
