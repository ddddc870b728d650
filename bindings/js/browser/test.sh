#!/usr/bin/env bash
# The browser check: the page built (bundled by esbuild with the npm package
# of bindings/js, whose browser client "blindmatch/web" brings Connect and
# the service's stubs), real servers with gRPC-Web on, and Debian's
# Chromium driven by Playwright.
# Run bindings/js/test.sh first (it builds the package). Chromium comes from
# Debian's packages: installed here when missing and apt-get can (root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
work="${CARGO_TARGET_DIR:-$root/target}/bindings/js"
chromium="${BLINDMATCH_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "browser: installing Debian's chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
[ -x "$chromium" ] || { echo "browser: $chromium is missing (apt-get install chromium)" >&2; exit 2; }
tarball="$(ls "$work"/blindmatch-*.tgz)"
rm -rf "$work/browser" && mkdir -p "$work/browser"
cp -r "$here/package.json" "$here/index.html" "$here/src" "$here/browser.test.mjs" \
  "$here/../tests/server.mjs" "$work/browser/"
cd "$work/browser"
npm install --silent --no-audit --no-fund
npm install --silent --no-audit --no-fund --no-save "blindmatch@file:$tarball"
mkdir -p dist
npx esbuild src/app.js --bundle --format=esm --target=es2022 --log-level=warning --outfile=dist/app.js
cp index.html dist/
cp node_modules/blindmatch/web/blindmatch_wasm_bg.wasm dist/
BLINDMATCH_ROOT="$root" BLINDMATCH_PAGE="$work/browser/dist" BLINDMATCH_SCREENSHOT="$work/browser.png" \
  BLINDMATCH_CHROMIUM="$chromium" node --test --test-reporter=spec browser.test.mjs
echo "browser: screenshot $work/browser.png"
