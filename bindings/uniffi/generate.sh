#!/usr/bin/env bash
# uniffi's sources for one language, from the library as built now:
#   bindings/uniffi/generate.sh LANGUAGE OUT_DIR     (kotlin, swift, python)
# Builds the library (profile dist: target/dist/libblindmatch_uniffi.so) and
# the generator at the same uniffi version (same profile), then generates
# into OUT_DIR.
# BLINDMATCH_BINDINGS_PROFILE picks another profile (.ci/run: release).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
language="${1:?usage: generate.sh LANGUAGE OUT_DIR}"
out="${2:?usage: generate.sh LANGUAGE OUT_DIR}"
profile="${BLINDMATCH_BINDINGS_PROFILE:-dist}"
cargo build --quiet --profile "$profile" -p blindmatch-uniffi --manifest-path "$root/Cargo.toml"
# The generator in the library's profile: with CI's release, the build the
# rest of CI made already.
cargo build --quiet --profile "$profile" -p blindmatch-uniffi-bindgen --manifest-path "$root/Cargo.toml"
target="${CARGO_TARGET_DIR:-$root/target}"
"$target/$profile/blindmatch-uniffi-bindgen" generate --no-format \
  --library "$target/$profile/libblindmatch_uniffi.so" --language "$language" --out-dir "$out" >/dev/null
