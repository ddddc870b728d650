#!/usr/bin/env bash
# Builds the npm package's contents in this directory (what `npm pack`
# ships): the library for wasm32-unknown-unknown (profile dist-wasm) and
# wasm-bindgen's glue, node/ for Node.js and web/ for browsers and bundlers,
# and proto/, the service's .proto for the ready Node client (client/).
# `npm pack` runs it (prepack), so `npm pack` here makes the working package;
# `npm run build` runs it alone.
#
# Needs a Rust toolchain. Installs what is missing, and says so: the wasm32
# target (rustup) and wasm-bindgen-cli at the exact version of the
# wasm-bindgen crate in Cargo.lock (from crates.io, once, into cargo's
# install root: ~/.cargo/bin unless CARGO_INSTALL_ROOT names another).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
die() { echo "bindings/js/build.sh: $*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: the package is built from Rust (install it with rustup, https://rustup.rs)"

# The package's version is the workspace's.
workspace="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml")"
package="$(node -p 'require(process.argv[1]).version' "$here/package.json")"
[ "$workspace" = "$package" ] \
  || die "package.json says version $package, the Cargo workspace $workspace: make them one"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  command -v rustup >/dev/null || die "the wasm32-unknown-unknown target is needed and rustup is not here to add it"
  echo "js: adding the wasm32-unknown-unknown target (rustup target add)" >&2
  rustup target add wasm32-unknown-unknown >&2
fi
want="$(grep -A1 '^name = "wasm-bindgen"$' "$root/Cargo.lock" | sed -n 's/^version = "\(.*\)"/\1/p')"
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$want" ]; then
  echo "js: installing wasm-bindgen-cli $want from crates.io into ${CARGO_INSTALL_ROOT:-$HOME/.cargo}/bin (once; a few minutes)" >&2
  # Not --locked: its lock file names a webpki-roots release this registry
  # mirror did not serve; cargo picks the newest compatible versions instead.
  "$root/scripts/cargo-install-tool.sh" --quiet wasm-bindgen-cli --version "=$want" >&2
  hash -r
  [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" = "$want" ] \
    || die "wasm-bindgen $want was installed but is not the one on PATH: put ${CARGO_INSTALL_ROOT:-$HOME/.cargo}/bin first"
fi

echo "js: building the WebAssembly library (cargo, profile dist-wasm)" >&2
cargo build --quiet --locked --target wasm32-unknown-unknown --profile dist-wasm -p blindmatch-wasm \
  --manifest-path "$root/Cargo.toml"
wasm="$target/wasm32-unknown-unknown/dist-wasm/blindmatch_wasm.wasm"
rm -rf "$here/node" "$here/web"
wasm-bindgen --target nodejs --out-dir "$here/node" "$wasm"
wasm-bindgen --target web --out-dir "$here/web" "$wasm"
# The ready Node client (client/node.mjs) loads the service's messages
# from its own copy of the .proto.
rm -rf "$here/proto" && mkdir -p "$here/proto/blindmatch/v1"
cp "$root/proto/proto/blindmatch/v1/blindmatch.proto" "$here/proto/blindmatch/v1/"
bytes="$(wc -c < "$here/web/blindmatch_wasm_bg.wasm")"
gz="$(gzip -9 -c "$here/web/blindmatch_wasm_bg.wasm" | wc -c)"
echo "js: blindmatch_wasm_bg.wasm $bytes bytes, $gz gzipped (goal: at most 307200)" >&2
