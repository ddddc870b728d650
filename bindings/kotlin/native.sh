#!/usr/bin/env bash
# What `mvn package` runs first (exec-maven-plugin, phase generate-sources):
#
#   native.sh OUT PROFILE VERSION SKIP_TESTS
#
# builds the native library in the Cargo profile PROFILE and writes
#   OUT/generated/                      uniffi's Kotlin for it
#   OUT/native/PREFIX/libblindmatch_uniffi.so (.dylib on macOS)
# where PREFIX is JNA's resource prefix for this machine (linux-x86-64, ...),
# so that the jar carries the library where JNA looks on the classpath.
# Unless SKIP_TESTS is true it also builds the release server and audit tool
# that the tests start (bindings/testkit/server.sh). VERSION is the pom's,
# which must be the Cargo workspace's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:?usage: native.sh OUT PROFILE VERSION SKIP_TESTS}"
profile="${2:?usage: native.sh OUT PROFILE VERSION SKIP_TESTS}"
version="${3:?usage: native.sh OUT PROFILE VERSION SKIP_TESTS}"
skip_tests="${4:-false}"
die() { echo "bindings/kotlin/native.sh: $*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: the native library is built from Rust (install it with rustup, https://rustup.rs)"
workspace="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml")"
[ "$workspace" = "$version" ] || die "pom.xml says version $version, the Cargo workspace $workspace: make them one"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) prefix=linux-x86-64 lib=libblindmatch_uniffi.so ;;
  Linux-aarch64) prefix=linux-aarch64 lib=libblindmatch_uniffi.so ;;
  Darwin-arm64) prefix=darwin-aarch64 lib=libblindmatch_uniffi.dylib ;;
  Darwin-x86_64) prefix=darwin-x86-64 lib=libblindmatch_uniffi.dylib ;;
  *) die "no JNA resource prefix known for $(uname -s) $(uname -m)" ;;
esac

rm -rf "$out" && mkdir -p "$out/generated" "$out/native/$prefix"
echo "kotlin: building the native library and uniffi's Kotlin (cargo, profile $profile)"
BLINDMATCH_BINDINGS_PROFILE="$profile" "$here/../uniffi/generate.sh" kotlin "$out/generated"
target="${CARGO_TARGET_DIR:-$root/target}"
cp "$target/$profile/$lib" "$out/native/$prefix/"
if [ "$skip_tests" != true ]; then
  echo "kotlin: building the server and audit tool the tests start (cargo, release)"
  cargo build --quiet --locked --release -p blindmatch-server -p blindmatch-audit --manifest-path "$root/Cargo.toml"
fi
