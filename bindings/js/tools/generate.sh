#!/usr/bin/env bash
# Regenerates the committed files of bindings/js that are made by tools:
#   client/gen/   the Connect stubs of client/web.mjs, from the repository's
#                 proto/proto/blindmatch/v1/blindmatch.proto (buf and
#                 protoc-gen-es from this directory's node_modules);
#   REFERENCE.md  the reference, from the package's type declarations
#                 (client/*.d.ts and web/blindmatch_wasm.d.ts, which build.sh
#                 makes: run it first) by TypeDoc with typedoc-plugin-markdown,
#                 one page per module, put on one page by reference.mjs.
# With --check it writes them to a scratch directory instead, compares, and
# fails naming each file that differs (bindings/js/test.sh runs this).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
js="$(cd "$here/.." && pwd)"
root="$(cd "$js/../.." && pwd)"
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: generate.sh [--check]" >&2; exit 2 ;;
esac
[ -f "$js/web/blindmatch_wasm.d.ts" ] || { echo "tools/generate.sh: $js/web/blindmatch_wasm.d.ts is missing: run bindings/js/build.sh first" >&2; exit 1; }

cd "$here"
npm install --silent --no-audit --no-fund
out="$js"
if [ "$check" = 1 ]; then out="$(mktemp -d)"; trap 'rm -rf "$out" "$here/.stage" "$here/.out"' EXIT; fi

# The Connect stubs.
rm -rf "$out/client/gen"
npx buf generate "$root/proto/proto" --template buf.gen.yaml -o "$out"
# Node reads them as ES modules (the package's other .js files are CommonJS).
echo '{ "type": "module" }' > "$out/client/gen/package.json"

# The reference: the declarations staged here (so that their imports
# resolve from this directory's node_modules), the core's with a module
# comment (wasm-bindgen writes none).
rm -rf .stage .out && mkdir -p .stage/client .stage/web
cp "$js"/client/*.d.ts .stage/client/
{
  printf '/**\n * The core in WebAssembly ("blindmatch"): what the ready clients drive, for an\n * app with its own transport. In a browser call `init()` (the default export)\n * first; in Node it is ready on import.\n *\n * @module blindmatch\n */\n'
  cat "$js/web/blindmatch_wasm.d.ts"
} > .stage/web/blindmatch_wasm.d.ts
npx typedoc --logLevel Warn --treatWarningsAsErrors --out .out
node reference.mjs .out "$out/REFERENCE.md"
rm -rf .stage .out

if [ "$check" = 1 ]; then
  stale=0
  for f in client/gen/package.json client/gen/blindmatch/v1/blindmatch_pb.js client/gen/blindmatch/v1/blindmatch_pb.d.ts REFERENCE.md; do
    if ! cmp -s "$out/$f" "$js/$f"; then
      echo "js: bindings/js/$f is not what bindings/js/tools/generate.sh makes: run it and commit the result" >&2
      stale=1
    fi
  done
  [ -z "$(cd "$out/client/gen" && find . -type f | sort | diff - <(cd "$js/client/gen" && find . -type f | sort))" ] \
    || { echo "js: bindings/js/client/gen holds other files than generate.sh makes" >&2; stale=1; }
  exit "$stale"
fi
echo "tools/generate.sh: wrote client/gen and REFERENCE.md"
