#!/usr/bin/env bash
# The Python binding, as a user gets it: the wheel built by pip (the
# package's PEP 517 backend, maturin), installed with pip into a fresh
# virtual environment, then pytest against a real server. Needs the release
# server binary (cargo build --release -p blindmatch-server) and PyPI for
# maturin and the pinned test requirements.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
work="${CARGO_TARGET_DIR:-$root/target}/bindings/python"
rm -rf "$work/venv" "$work/wheels"
mkdir -p "$work"
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-test.txt"
# The wheel as a user builds it: pip and the package's PEP 517 backend
# (maturin, with its build requirements from PyPI in an isolated
# environment). The profile is pyproject.toml's (dist) unless
# BLINDMATCH_BINDINGS_PROFILE names another (.ci/run: release, the build the
# rest of CI made).
profile="${BLINDMATCH_BINDINGS_PROFILE:-dist}"
MATURIN_PEP517_ARGS="--profile $profile --locked" \
  "$py" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$work/wheels" "$here"
wheel="$(ls "$work"/wheels/blindmatch-*.whl)"
echo "python: built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"
"$py" -m pip install --quiet --disable-pip-version-check "$wheel"
# From a directory outside the source tree: `import blindmatch` is the
# installed package.
cd "$work" && "$py" -m pytest -q -p no:cacheprovider --rootdir "$here" "$here/tests"
# The reference page is what the installed package says of itself.
"$py" "$here/reference.py" --check
