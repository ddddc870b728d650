#!/usr/bin/env bash
# Voucher creation and table validation per binding against native Rust, in
# one run on this machine (papers/BENCHMARKS.md, "Bindings"). Run the Python
# and JavaScript tests first (bindings/python/test.sh, bindings/js/test.sh):
# this uses the wheel and the npm package they built.
#
#   bindings/bench.sh [ENTRIES] [VOUCHERS]     (default 1000000 4096)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
entries="${1:-1000000}" vouchers="${2:-4096}"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/bindings/bench"
mkdir -p "$work"
cargo build --quiet --locked --release -p blindmatch-benches --bin blindmatch-bindings-bench \
  --manifest-path "$root/Cargo.toml"
"$target/release/blindmatch-bindings-bench" --entries "$entries" --out "$work/table.bin" \
  --vouchers "$vouchers"
"$target/bindings/python/venv/bin/python" "$here/bench/bench.py" "$work/table.bin" "$vouchers"
cp "$here/bench/bench.mjs" "$target/bindings/js/scratch/"
(cd "$target/bindings/js/scratch" && node bench.mjs "$work/table.bin" "$vouchers")
# The transparency log's client check (SPEC 16.6) in WebAssembly, on the log vectors.
cp "$here/bench/log.mjs" "$target/bindings/js/scratch/"
(cd "$target/bindings/js/scratch" && node log.mjs "$root/protocol/vectors/blindmatch-log.json" 2000)
gz="$(gzip -9 -c "$here/js/web/blindmatch_wasm_bg.wasm" | wc -c)"
echo "{\"binding\": \"wasm\", \"wasm_gzip_bytes\": $gz}"
