#!/usr/bin/env bash
# Regenerates the binding sources this repository commits, from the
# library as built now:
#   bindings/swift/Sources/Blindmatch/Blindmatch.swift      (uniffi)
#   bindings/swift/Sources/BlindmatchFFI/BlindmatchFFI.h     (uniffi)
#   bindings/swift/Sources/BlindmatchFFI/module.modulemap    (uniffi)
#   bindings/swift/REFERENCE.md                               (swift/reference.py)
#
#   generate.sh           rewrite them
#   generate.sh --check   fail, naming each file, if any differs (CI: a
#                         change to the interface without regenerating)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
check="${1:-}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$here/uniffi/generate.sh" swift "$out/swift"
mkdir -p "$out/tree/swift/Sources/Blindmatch" "$out/tree/swift/Sources/BlindmatchFFI"
cp "$out/swift/Blindmatch.swift" "$out/tree/swift/Sources/Blindmatch/"
cp "$out/swift/BlindmatchFFI.h" "$out/tree/swift/Sources/BlindmatchFFI/"
cp "$out/swift/BlindmatchFFI.modulemap" "$out/tree/swift/Sources/BlindmatchFFI/module.modulemap"

status=0
for f in swift/Sources/Blindmatch/Blindmatch.swift swift/Sources/BlindmatchFFI/BlindmatchFFI.h \
         swift/Sources/BlindmatchFFI/module.modulemap; do
  if [ "$check" = "--check" ]; then
    if ! cmp -s "$out/tree/$f" "$here/$f"; then
      echo "generated: bindings/$f is not what the interface generates now: run bindings/generate.sh" >&2
      status=1
    fi
  else
    mkdir -p "$(dirname "$here/$f")"
    cp "$out/tree/$f" "$here/$f"
  fi
done
[ "$check" = "--check" ] && [ $status -eq 0 ] && echo "generated: swift sources match the interface"
# The Swift reference page is generated from those sources, and the example
# checked against them (no Swift compiler here: names and labels only).
if [ "$check" = "--check" ]; then
  python3 "$here/swift/reference.py" --check || status=1
  python3 "$here/swift/check-example.py" || status=1
else
  python3 "$here/swift/reference.py"
fi
exit $status
