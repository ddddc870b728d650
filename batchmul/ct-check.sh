#!/usr/bin/env bash
# Runs tests/constant_time.rs under valgrind's memcheck, which then fails on
# any branch or memory address that depends on the scalar or the points
# (see that file). Installs valgrind from Debian's packages when it is
# missing, and says so loudly when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    echo "batchmul/ct-check.sh: valgrind is not installed: installing it from Debian's packages" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends valgrind >&2 || true
fi
if ! command -v valgrind >/dev/null; then
    echo "!! SKIPPED: valgrind could not be installed: the kernel's constant-time check did NOT run" >&2
    exit 0
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
