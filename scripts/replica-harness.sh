#!/usr/bin/env bash
# The long replica fault run: three real blindmatch-server replicas on one
# PostgreSQL store, clients spread over them, random replicas SIGKILLed and
# restarted, PostgreSQL stopped and started (fast and immediate shutdowns,
# every third round), a key rotation rolled out halfway; then the match
# records are checked against what was acknowledged (none lost, none twice,
# no batch stored in part, nothing pending).
#
#   scripts/replica-harness.sh [ROUNDS [CLIENTS [SEED]]]     (defaults: 30 4 random)
#
# Uses $BLINDMATCH_TEST_POSTGRES if set (PostgreSQL restarts need it to be a
# cluster of scripts/pg-test-cluster.sh); otherwise starts that cluster and
# stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export BLINDMATCH_REPLICA_ROUNDS="${1:-30}"
export BLINDMATCH_REPLICA_CLIENTS="${2:-4}"
if [ -n "${3:-}" ]; then export BLINDMATCH_REPLICA_SEED="$3"; fi
if [ -z "${BLINDMATCH_TEST_POSTGRES:-}" ]; then
    eval "$(scripts/pg-test-cluster.sh start)"
    trap 'scripts/pg-test-cluster.sh stop' EXIT
fi
cargo test --release -p blindmatch-server --test replicas -- --nocapture
