#!/usr/bin/env bash
# The JavaScript binding, as a user gets it: `npm pack` in bindings/js (which
# builds the library for wasm32-unknown-unknown and wasm-bindgen's glue for
# Node and for browsers, installing what is missing: build.sh), the package
# installed into a scratch project with @grpc/grpc-js, then `node --test`
# against a real server: the core, the ready clients (blindmatch/client,
# and blindmatch/web in Node's fetch), and the examples, each copied into a
# second scratch project that has only the package, as a user copies it.
# First the committed generated files (client/gen, REFERENCE.md) are checked
# against what tools/generate.sh makes from the sources.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/bindings/js"

rm -rf "$work" && mkdir -p "$work"
# The package as a user makes it: `npm pack` here (its prepack script,
# build.sh, builds the WebAssembly library and its glue).
(cd "$here" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball="$(ls "$work"/blindmatch-*.tgz)"
listing="$(tar tzf "$tarball")"
for f in node/blindmatch_wasm.js node/blindmatch_wasm_bg.wasm web/blindmatch_wasm.js web/blindmatch_wasm.d.ts \
         web/blindmatch_wasm_bg.wasm client/flow.mjs client/node.mjs client/node.d.ts client/web.mjs client/web.d.ts \
         client/gen/package.json client/gen/blindmatch/v1/blindmatch_pb.js client/gen/blindmatch/v1/blindmatch_pb.d.ts \
         proto/blindmatch/v1/blindmatch.proto REFERENCE.md; do
  grep -qx "package/$f" <<<"$listing" || { echo "js: the package lacks $f" >&2; exit 1; }
done
echo "js: $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"
# After the pack: the reference is made from the core's declarations, which
# build.sh writes.
"$here/tools/generate.sh" --check
echo "js: client/gen and REFERENCE.md are what tools/generate.sh makes"
mkdir -p "$work/scratch"
cp "$here"/tests/*.mjs "$here"/examples/*.mjs "$work/scratch/"
cat > "$work/scratch/package.json" <<JSON
{ "name": "scratch", "private": true, "type": "module",
  "dependencies": { "blindmatch": "file:$tarball", "@grpc/grpc-js": "1.14.7", "@grpc/proto-loader": "0.8.1",
                    "@connectrpc/connect-web": "2.3.0" } }
JSON
(cd "$work/scratch" && npm install --silent --no-audit --no-fund)
# The examples' project: the package alone, the example files copied in.
mkdir -p "$work/examples"
cp "$here"/examples/*.mjs "$work/examples/"
cat > "$work/examples/package.json" <<JSON
{ "name": "examples", "private": true, "type": "module", "dependencies": { "blindmatch": "file:$tarball" } }
JSON
(cd "$work/examples" && npm install --silent --no-audit --no-fund)
cd "$work/scratch"
BLINDMATCH_ROOT="$root" BLINDMATCH_EXAMPLES="$work/examples" node --test --test-reporter=spec ./*.test.mjs
