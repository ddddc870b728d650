#!/usr/bin/env bash
# `cargo install ARGS...` for the tools CI needs (cargo-deny, cargo-fuzz,
# wasm-bindgen-cli), compiled at opt-level 1 without LTO and with 16 codegen
# units: on 2 cores that takes about half the time of their release
# profiles, and these tools spend seconds, not minutes, on our inputs.
# Only the tool's build is affected; the environment of the caller is not.
# Installed into ~/.cargo/bin, where a later run finds it.
set -euo pipefail
CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
CARGO_PROFILE_RELEASE_LTO=off \
CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
CARGO_PROFILE_RELEASE_DEBUG=false \
CARGO_PROFILE_RELEASE_STRIP=debuginfo \
  exec cargo install "$@"
