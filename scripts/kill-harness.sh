#!/usr/bin/env bash
# The long fault run: the real blindmatch-server binary, SIGKILLed at random
# moments while several clients submit, restarted on the same data directory,
# ROUNDS times; then the match records are checked against what was
# acknowledged (none lost, none twice, no batch stored in part); then the same
# for threshold mode, per account (every crossing recorded once, none below t).
#
#   scripts/kill-harness.sh [ROUNDS [CLIENTS [SEED]]]     (defaults: 200 4 random)
#
# The run prints its seed; passing it again replays the same choices (the
# kill moments still depend on timing). Several runs in a row:
#   for i in $(seq 5); do scripts/kill-harness.sh || break; done
set -euo pipefail
cd "$(dirname "$0")/.."
export BLINDMATCH_KILL_ROUNDS="${1:-200}"
export BLINDMATCH_KILL_CLIENTS="${2:-4}"
if [ -n "${3:-}" ]; then export BLINDMATCH_KILL_SEED="$3"; fi
cargo test --release -p blindmatch-server --test e2e \
    sigkill_loses_no_acknowledged_match_and_records_none_twice -- --nocapture
# Threshold mode: every crossing recorded, once, none below t.
exec cargo test --release -p blindmatch-server --test threshold \
    sigkill_threshold_mode_records_every_crossing_once -- --nocapture
