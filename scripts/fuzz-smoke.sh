#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a short time from its seed
# corpus, as CI does; a crash fails the run and leaves the input under
# fuzz/artifacts/TARGET/. Needs a nightly toolchain (cargo-fuzz, libFuzzer);
# without one it says so loudly and exits 0, since stable builds and tests do
# not depend on it.
#
#   scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]     (default 30)
#
# New inputs the fuzzer finds go to a scratch corpus, not to the checked-in
# seeds. For a long run of one target:
#   cd fuzz && cargo +nightly fuzz run voucher -- -max_total_time=3600
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
# The version CI installs when cargo-fuzz is missing (crates.io).
cargo_fuzz_version=0.13.2

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "!!! FUZZING SKIPPED: no nightly toolchain (rustup toolchain install nightly)."
  echo "!!! The fuzz targets were not run."
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz $cargo_fuzz_version"
  if ! scripts/cargo-install-tool.sh --locked "cargo-fuzz@$cargo_fuzz_version" 2>&1 | tail -n 2; then
    echo "!!! FUZZING SKIPPED: cargo-fuzz could not be installed."
    exit 0
  fi
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd fuzz
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^blindmatch-fuzz$')
# cargo-fuzz picks fuzz/target unless told: honour CARGO_TARGET_DIR (CI keeps
# it in its cache, outside the clone).
target_dir=()
if [ -n "${CARGO_TARGET_DIR:-}" ]; then target_dir=(--target-dir "$CARGO_TARGET_DIR"); fi
# Build once, then run each.
cargo +nightly fuzz build "${target_dir[@]}" 2>&1 | tail -n 3
ran=0
for t in $targets; do
  mkdir -p "$scratch/$t"
  echo "== fuzz $t (${seconds} s)"
  # The first corpus directory receives new inputs; the seeds are read only.
  status=0
  cargo +nightly fuzz run "${target_dir[@]}" "$t" "$scratch/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
    >"$scratch/$t.log" 2>&1 || status=$?
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$scratch/$t.log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$scratch/$t.log"
    echo "fuzz target $t failed: the input is in fuzz/artifacts/$t/"
    exit 1
  fi
  ran=$((ran + 1))
done
echo "fuzz: $ran targets ran ${seconds} s each without a crash"
