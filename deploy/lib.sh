# Shared by deploy/*/test.sh (sourced after `set -eEuo pipefail`): where
# things are, how a test fails (die: 1) or is skipped (skip: 2, which CI
# reports as SKIPPED), and the Python environment in CI's cache that the
# checks run in. Set `name` (e.g. "helm") before sourcing.
# Only skip() exits 2: any other failure is 1.
trap 'exit 1' ERR
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release"
cache="${BLINDMATCH_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/blindmatch-ci}"
die() { echo "$name/test.sh: $*" >&2; exit 1; }
skip() { echo "$name/test.sh: $*" >&2; exit 2; }
started=$SECONDS
venv="$cache/deploy-tools/venv"

# deploy_venv MODULE PACKAGE...: the cached venv, with PACKAGE... installed
# from PyPI unless MODULE (a Python module, or an executable in the venv's
# bin) is there already.
deploy_venv() {
  local have="$1"; shift
  if [ -x "$venv/bin/$have" ] || { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import $have" 2>/dev/null; }; then
    return 0
  fi
  python3 -m venv "$venv" >/dev/null 2>&1 || skip "python3 -m venv failed"
  "$venv/bin/pip" install -q "$@" || skip "$* could not be installed from PyPI"
}
