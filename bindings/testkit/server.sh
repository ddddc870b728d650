#!/usr/bin/env bash
# A real blindmatch server for the language bindings' tests, one per test
# run, in a scratch directory:
#
#   server.sh start DIR     keys, a list of 5,000+ entries (3 Merkle chunks),
#                           table version 1 and version 2 (built in place),
#                           then `serve --plaintext` on a free loopback port.
#                           Writes DIR/url, DIR/operator.pub, DIR/listed.txt
#                           (`TYPE HEX` of the listed test items),
#                           DIR/listed-v2.txt (listed only in version 2),
#                           DIR/org-{a,b,c}.sign.pub: list organisations'
#                           keys; "Hotline a" and "Hotline b" audited and
#                           co-signed version 1, c did not; DIR/log.policy:
#                           the policy of the server's transparency log,
#                           which holds versions 1 and 2 (no witnesses), and
#                           DIR/log-other.policy: another log's.
#   server.sh publish DIR   swaps to version 2 (SIGHUP): the delta test.
#   server.sh matches DIR N waits until N matches are recorded (at most 20 s,
#                           then 1 s more for any extra) and prints them as
#                           JSON, one per line.
#   server.sh accounts DIR N  waits until N accounts hold candidates (at most
#                           20 s, then 1 s more) and prints them as JSON.
#   server.sh stop DIR      stops the server (SIGTERM, then SIGKILL).
#
# BLINDMATCH_THRESHOLD=T:S builds both versions in threshold mode (SPEC
# Section 14) with threshold T and synthetic bound S.
# BLINDMATCH_BIN names the directory of the release binaries (default
# target/release of this checkout); BLINDMATCH_SERVE_ARGS adds arguments to
# `serve` (the browser test: --grpc-web-origin).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${BLINDMATCH_BIN:-${CARGO_TARGET_DIR:-$here/../../target}/release}"
server="$bin/blindmatch-server"
cmd="${1:?usage: server.sh start|publish|matches|accounts|stop DIR}"
dir="${2:?usage: server.sh $cmd DIR}"

die() { echo "testkit/server.sh: $*" >&2; exit 1; }
[ -x "$server" ] || die "$server is missing: cargo build --release -p blindmatch-server"

case "$cmd" in
start)
  mkdir -p "$dir"
  cd "$dir"
  "$server" keygen --out server.key >/dev/null
  "$server" keygen --signing --out operator.sign >/dev/null
  sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }
  {
    for i in 0 1 2 3 4; do echo "sha256 $(sha "listed-$i")"; done
    echo "md5 $(printf '%s' listed-md5 | md5sum | cut -c1-32)"
  } > listed.txt
  echo "sha256 $(sha listed-in-v2)" > listed-v2.txt
  # Fillers: 4-byte `bytes` items, enough for three Merkle chunks.
  for i in $(seq 1 5000); do printf 'bytes %08x\n' "$i"; done > fillers.txt
  cat listed.txt fillers.txt > list-v1.txt
  threshold=()
  if [ -n "${BLINDMATCH_THRESHOLD:-}" ]; then
    threshold=(--threshold "${BLINDMATCH_THRESHOLD%%:*}" --synthetic-bound "${BLINDMATCH_THRESHOLD##*:}")
  fi
  # Version 2: one filler removed, one item added.
  { cat listed.txt listed-v2.txt; tail -n +2 fillers.txt; } > list-v2.txt
  "$server" build --list list-v1.txt --key server.key --signing-key operator.sign \
    "${threshold[@]}" --out table.bmt >/dev/null
  "$server" build --list list-v2.txt --key server.key --signing-key operator.sign \
    --base table.bmt --out table.v2 >/dev/null
  # The list audit (SPEC Section 15): hotlines a and b, whose lists are the
  # operator's, audit version 1 with the real blindmatch-audit and co-sign
  # it; c never does. Keys in org-{a,b,c}.pub, for the quorum tests.
  [ -x "$bin/blindmatch-audit" ] || die "$bin/blindmatch-audit is missing: cargo build --release -p blindmatch-audit"
  for org in a b c; do "$server" keygen --signing --out "org-$org.sign" >/dev/null; done
  for org in a b; do
    "$server" audit-bundle --table table.bmt --key server.key --list list-v1.txt \
      --out "org-$org.bundle" --public-table table.pub >/dev/null
    "$bin/blindmatch-audit" cosign --table table.pub --bundle "org-$org.bundle" --list list-v1.txt \
      --operator-key operator.sign.pub --signing-key "org-$org.sign" --name "Hotline $org" \
      --out "org-$org.cosig" >/dev/null
  done
  "$server" cosign --table table.bmt --add org-a.cosig org-b.cosig >/dev/null
  # The transparency log (SPEC Section 16): versions 1 and 2 logged (with
  # their co-signatures), no witnesses (quorum none: the log's signature,
  # inclusion and consistency are still checked). log.policy is what the
  # clients pin; log-other.policy pins another log's key.
  "$server" log init --dir log --origin testkit.blindmatch.example/log --key-out log.key >/dev/null
  "$server" log append --dir log --key log.key --table table.bmt >/dev/null
  "$server" log append --dir log --key log.key --table table.v2 >/dev/null
  printf 'log %s\nquorum none\n' "$(cat log.key.pub)" > log.policy
  "$server" log init --dir other-log --origin testkit.blindmatch.example/log --key-out other-log.key >/dev/null
  printf 'log %s\nquorum none\n' "$(cat other-log.key.pub)" > log-other.policy
  RUST_LOG=warn "$server" serve --plaintext --listen 127.0.0.1:0 --table table.bmt \
    --key server.key --data data --operator-key operator.sign.pub --max-batch 64 \
    --log log --log-policy log.policy ${BLINDMATCH_SERVE_ARGS:-} > serve.out 2> serve.err &
  echo $! > pid
  for _ in $(seq 1 200); do
    url="$(grep -o 'http://[0-9.:]*' serve.out | head -1 || true)"
    [ -n "$url" ] && break
    kill -0 "$(cat pid)" 2>/dev/null || die "the server exited: $(cat serve.err)"
    sleep 0.05
  done
  [ -n "$url" ] || die "the server printed no address in 10 s"
  echo "$url" > url
  ;;
publish)
  cd "$dir"
  mv table.v2 table.bmt
  kill -HUP "$(cat pid)"
  ;;
matches)
  want="${3:?usage: server.sh matches DIR N}"
  cd "$dir"
  count() { "$server" matches --data data --json 2>/dev/null | grep -c '"entry"' || true; }
  for _ in $(seq 1 200); do
    [ "$(count)" -ge "$want" ] && break
    sleep 0.1
  done
  sleep 1
  "$server" matches --data data --json
  ;;
stop)
  cd "$dir"
  [ -f pid ] || exit 0
  pid="$(cat pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f pid
  ;;
accounts)
  want="${3:?usage: server.sh accounts DIR N}"
  cd "$dir"
  count() { "$server" matches --data data --accounts --json 2>/dev/null | grep -c '"account_hex"' || true; }
  for _ in $(seq 1 200); do
    [ "$(count)" -ge "$want" ] && break
    sleep 0.1
  done
  sleep 1
  "$server" matches --data data --accounts --json
  ;;
*) die "unknown command $cmd" ;;
esac
