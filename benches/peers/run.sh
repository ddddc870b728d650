#!/usr/bin/env bash
# Makes a virtual environment with OpenMined PSI (from PyPI) under target/ and
# runs the peer timing. Prints one JSON object.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/../../target/peers-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet "openmined.psi==2.0.6" >&2
fi
exec "$venv/bin/python" "$here/openmined_psi.py" "$@"
