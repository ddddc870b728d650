#!/usr/bin/env bash
# The Python binding, as a user gets it: the wheel built with maturin,
# installed with pip into a fresh virtual environment, then pytest against a
# real server. Needs the release server binary (cargo build --release -p
# blindmatch-server) and PyPI for the pinned test requirements.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
work="${CARGO_TARGET_DIR:-$root/target}/bindings/python"
rm -rf "$work/venv" "$work/wheels"
mkdir -p "$work"
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-test.txt"
# maturin runs uniffi-bindgen from this workspace (bindings/uniffi-bindgen),
# the same uniffi version as the library.
# The profile is pyproject.toml's (dist) unless BLINDMATCH_BINDINGS_PROFILE
# names another (.ci/run: release).
(cd "$here" && "$work/venv/bin/maturin" build --quiet --profile "${BLINDMATCH_BINDINGS_PROFILE:-dist}" --out "$work/wheels")
wheel="$(ls "$work"/wheels/blindmatch-*.whl)"
echo "python: built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"
"$py" -m pip install --quiet --disable-pip-version-check "$wheel"
cd "$work" && "$py" -m pytest -q -p no:cacheprovider --rootdir "$here" "$here/tests"
