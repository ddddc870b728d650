#!/usr/bin/env bash
# Runs tests/constant_time.rs under valgrind's memcheck, which then fails on
# any branch or memory address that depends on the scalar or the points
# (see that file). Needs valgrind; says so loudly when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    echo "batchmul/ct-check.sh: valgrind NOT FOUND: the constant-time check did NOT run" >&2
    exit 1
fi
bin=$(cargo test --release --locked -p blindmatch-batchmul --test constant_time --no-run \
    --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "constant_time" and m.get("executable"):
        print(m["executable"])')
valgrind --quiet --error-exitcode=1 --track-origins=yes "$bin" --test-threads=1
echo "batchmul/ct-check.sh: memcheck found no secret-dependent branch or address"
