#!/usr/bin/env bash
# The JavaScript binding, as a user gets it: the library built for
# wasm32-unknown-unknown, wasm-bindgen's glue for Node and for browsers, an
# npm package (`npm pack`) installed into a scratch project with @grpc/grpc-js,
# then `node --test` against a real server. Installs what is missing: the
# wasm32 target (rustup) and wasm-bindgen-cli at the exact version of the
# wasm-bindgen crate in Cargo.lock (crates.io; cached in ~/.cargo/bin).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/bindings/js"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
want="$(grep -A1 '^name = "wasm-bindgen"$' "$root/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')"
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$want" ]; then
  echo "js: installing wasm-bindgen-cli $want (crates.io)"
  # Not --locked: its lock file names a webpki-roots release this registry
  # mirror did not serve; cargo picks the newest compatible versions instead.
  "$root/scripts/cargo-install-tool.sh" --quiet wasm-bindgen-cli --version "=$want"
fi

cargo build --quiet --locked --target wasm32-unknown-unknown --profile dist-wasm -p blindmatch-wasm \
  --manifest-path "$root/Cargo.toml"
wasm="$target/wasm32-unknown-unknown/dist-wasm/blindmatch_wasm.wasm"
rm -rf "$work" && mkdir -p "$work/package"
wasm-bindgen --target nodejs --out-dir "$work/package/node" "$wasm"
wasm-bindgen --target web --out-dir "$work/package/web" "$wasm"
cp "$here/package.json" "$here/README.md" "$work/package/"
size="$(gzip -9 -c "$work/package/web/blindmatch_wasm_bg.wasm" | wc -c)"
echo "js: blindmatch_wasm_bg.wasm $(wc -c < "$work/package/web/blindmatch_wasm_bg.wasm") bytes, $size gzipped (goal: at most 307200)"

(cd "$work/package" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball="$(ls "$work"/blindmatch-*.tgz)"
mkdir -p "$work/scratch"
cp "$here"/tests/*.mjs "$here/examples/check.mjs" "$work/scratch/"
cat > "$work/scratch/package.json" <<JSON
{ "name": "scratch", "private": true, "type": "module",
  "dependencies": { "blindmatch": "file:$tarball", "@grpc/grpc-js": "1.14.7", "@grpc/proto-loader": "0.8.1" } }
JSON
(cd "$work/scratch" && npm install --silent --no-audit --no-fund)
cd "$work/scratch"
BLINDMATCH_ROOT="$root" node --test --test-reporter=spec ./*.test.mjs
