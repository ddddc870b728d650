#!/usr/bin/env bash
# Every language binding's tests (.ci/run calls this): Python (wheel + pytest
# against a real server), Kotlin/JVM (Maven + JUnit against a real server),
# JavaScript (WebAssembly, npm package, node --test against a real server), a
# real browser (Chromium via Playwright, gRPC-Web), C
# (cc + the vectors), and the check that the committed Swift sources are what
# the interface generates. A language whose toolchain is missing is skipped
# and named, loudly, with the reason; the last line totals what ran.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
cargo build --quiet --locked --release -p blindmatch-server --manifest-path "$root/Cargo.toml" || exit 1

passed=0 failed=0 skipped=()
run() { # name, count-regex, command...
  local name="$1" pattern="$2" started=$SECONDS; shift 2
  echo "-- $name"
  local out rc
  out="$(mktemp)"
  "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  local n
  n="$(grep -oE "$pattern" "$out" | tail -1 | grep -oE '[0-9]+' | tail -1 || true)"
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + ${n:-1}))
    echo "bindings: $name: ${n:-1} passed ($((SECONDS - started)) s)"
  else
    failed=$((failed + 1))
    echo "bindings: $name: FAILED (exit $rc, $((SECONDS - started)) s)"
  fi
  rm -f "$out"
}
skip() { skipped+=("$1: $2"); echo "!! SKIPPED bindings: $1: $2" >&2; }

if python3 -c 'import venv, ensurepip' 2>/dev/null; then
  run python '[0-9]+ passed' "$here/python/test.sh"
else
  skip python "python3 with venv and ensurepip is needed (Debian: apt-get install python3-venv)"
fi
if command -v mvn >/dev/null && command -v java >/dev/null; then
  run kotlin '[0-9]+ tests passed' "$here/kotlin/test.sh"
else
  skip kotlin "Maven and a JDK 17 are needed (mvn, java not found)"
fi
if command -v node >/dev/null && command -v npm >/dev/null; then
  run js 'pass [0-9]+' "$here/js/test.sh"
  run browser 'pass [0-9]+' "$here/js/browser/test.sh"
else
  skip js "Node.js 20 and npm are needed (node, npm not found)"
fi
if command -v cc >/dev/null; then
  run c 'all checks passed' "$here/c/test.sh"
else
  skip c "a C compiler is needed (cc not found)"
fi
run readme-snippets '[0-9]+ checked' python3 "$root/scripts/check-snippets.py"
run swift-generated 'match the interface' "$here/generate.sh" --check

for s in "${skipped[@]}"; do echo "!! SKIPPED bindings: $s" >&2; done
echo "bindings: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
