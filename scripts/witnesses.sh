#!/usr/bin/env bash
# Two real transparency-log witnesses for the tests and the demo (SPEC
# Section 16): torchwood's litewitness and transparency-dev's omniwitness,
# two independent implementations of c2sp.org/tlog-witness, built from the Go
# module proxy at pinned versions. Nothing here plays a witness itself.
#
#   scripts/witnesses.sh install          build them into $BIN (once)
#   scripts/witnesses.sh bin              print $BIN if both are there, else fail
#   scripts/witnesses.sh start DIR ORIGIN LOG_VKEY
#       start both for the log ORIGIN with key LOG_VKEY, state in DIR; writes
#       DIR/witnesses.policy, the policy lines `witness NAME VKEY URL` for each
#   scripts/witnesses.sh stop DIR         stop the witnesses started in DIR
#   scripts/witnesses.sh kill DIR NAME    stop one of them (lite or omni)
#
# $BIN is $BLINDMATCH_WITNESS_BIN, else the CI cache's witnesses/bin.
set -euo pipefail

LITEWITNESS=filippo.io/torchwood/cmd/litewitness@v0.9.0
WITNESSCTL=filippo.io/torchwood/cmd/witnessctl@v0.9.0
# transparency-dev/witness publishes no tagged versions: this is its commit
# of 2026-07-20, as the Go module proxy serves it.
OMNI_VERSION=v0.0.0-20260720115447-2e1c6971d19e
OMNIWITNESS=github.com/transparency-dev/witness/cmd/omniwitness@$OMNI_VERSION
GENERATE_KEYS=github.com/transparency-dev/witness/cmd/generate_keys@$OMNI_VERSION

cache="${BLINDMATCH_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/blindmatch-ci}"
BIN="${BLINDMATCH_WITNESS_BIN:-$cache/witnesses/bin}"
tools=(litewitness witnessctl omniwitness generate_keys)

have_all() {
  for t in "${tools[@]}"; do [ -x "$BIN/$t" ] || return 1; done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until URL answers HTTP at all (any status), or fails naming LOG.
wait_http() {
  local url=$1 log=$2
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "witness at $url did not start; its log:" >&2
  tail -n 20 "$log" >&2
  return 1
}

case "${1:-}" in
install)
  if have_all; then
    echo "witnesses: already in $BIN"
    exit 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "!! witnesses: no Go toolchain: cannot build litewitness and omniwitness" >&2
    exit 1
  fi
  mkdir -p "$BIN"
  for m in "$LITEWITNESS" "$WITNESSCTL" "$OMNIWITNESS" "$GENERATE_KEYS"; do
    GOBIN="$BIN" GOFLAGS=-mod=mod go install "$m"
  done
  echo "witnesses: built ${tools[*]} into $BIN"
  ;;
bin)
  have_all && echo "$BIN"
  ;;
start)
  dir=$2 origin=$3 vkey=$4
  have_all || { echo "witnesses not built: run scripts/witnesses.sh install" >&2; exit 1; }
  command -v ssh-agent >/dev/null || { echo "litewitness needs ssh-agent (Debian: openssh-client)" >&2; exit 1; }
  mkdir -p "$dir/lite" "$dir/omni"
  : > "$dir/pids"

  # litewitness: its key in a dedicated ssh-agent, the log in its database.
  ssh-keygen -q -t ed25519 -N '' -C lite -f "$dir/lite/key"
  ssh-agent -a "$dir/lite/agent.sock" -s > "$dir/lite/agent.env"
  # shellcheck disable=SC1091
  agent_pid=$(. "$dir/lite/agent.env" >/dev/null; echo "$SSH_AGENT_PID")
  echo "agent $agent_pid" >> "$dir/pids"
  SSH_AUTH_SOCK="$dir/lite/agent.sock" ssh-add -q "$dir/lite/key"
  fp=$(ssh-keygen -lf "$dir/lite/key.pub" | awk '{ print $2 }')
  "$BIN/witnessctl" add-log -db "$dir/lite/db" -origin "$origin" 2>/dev/null
  "$BIN/witnessctl" add-key -db "$dir/lite/db" -origin "$origin" -key "$vkey" 2>/dev/null
  lite_port=$(free_port)
  "$BIN/litewitness" -name lite.witness.test -key "$fp" -ssh-agent "$dir/lite/agent.sock" \
    -db "$dir/lite/db" -listen "127.0.0.1:$lite_port" > "$dir/lite/log" 2>&1 &
  echo "lite $!" >> "$dir/pids"
  wait_http "http://127.0.0.1:$lite_port/" "$dir/lite/log"
  lite_vkey=$(grep -o 'vkey=[^ ]*' "$dir/lite/log" | head -n 1 | cut -d= -f2-)

  # omniwitness: a note key from its own generator, the log as an extra log.
  "$BIN/generate_keys" --origin omni.witness.test --out_priv "$dir/omni/priv" --out_pub "$dir/omni/pub" 2>/dev/null
  printf 'Logs:\n  - Origin: "%s"\n    PublicKey: "%s"\n' "$origin" "$vkey" > "$dir/omni/logs.yaml"
  omni_port=$(free_port)
  "$BIN/omniwitness" --private_key_path "$dir/omni/priv" --db_file "$dir/omni/db" \
    --additional_logs "$dir/omni/logs.yaml" --listen "127.0.0.1:$omni_port" --metrics_listen "" \
    > "$dir/omni/log" 2>&1 &
  echo "omni $!" >> "$dir/pids"
  wait_http "http://127.0.0.1:$omni_port/" "$dir/omni/log"

  {
    echo "witness lite $lite_vkey http://127.0.0.1:$lite_port"
    echo "witness omni $(cat "$dir/omni/pub") http://127.0.0.1:$omni_port"
  } > "$dir/witnesses.policy"
  cat "$dir/witnesses.policy"
  ;;
stop)
  dir=$2
  [ -f "$dir/pids" ] || exit 0
  while read -r _ pid; do kill "$pid" 2>/dev/null || true; done < "$dir/pids"
  rm -f "$dir/pids"
  ;;
kill)
  dir=$2 name=$3
  awk -v n="$name" '$1 == n { print $2 }' "$dir/pids" | xargs -r kill
  ;;
*)
  sed -n '2,16p' "$0" >&2
  exit 2
  ;;
esac
