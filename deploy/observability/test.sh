#!/usr/bin/env bash
# The dashboard and the alert rules (.ci/run): a server started from the
# release binary (as deploy/systemd/test.sh does) is given traffic that
# makes every metric it has show (a match, a refusal, a reload to a
# threshold-mode version, an account's upload, a webhook whose receiver
# does not listen: failed attempts and a backlog) and scraped, and
# check.py requires every metric the dashboard and the rules query to be
# one it exports, every metric it exports to be on the dashboard, and every
# refusal kind they select to be one the server counts; then promtool
# (built once from the Go module proxy into the CI cache) checks the rules
# and runs their unit tests (prometheus-alerts.test.yaml). Without promtool
# that part is SKIPPED, loudly, and the rest still runs; no Grafana
# dashboard linter can be had here (grafana/dashboard-linter is not on the
# Go module proxy). Exit status 2: PyYAML cannot be had. Needs the release
# binaries and curl.
set -eEuo pipefail
name=observability
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"

PROMTOOL=github.com/prometheus/prometheus/cmd/promtool@v0.316.0
promtool="$cache/deploy-tools/promtool-v0.316.0/promtool"
if [ ! -x "$promtool" ] && [ ! -e "$promtool.failed" ] && command -v go >/dev/null; then
  echo "observability/test.sh: building $PROMTOOL (once, into the CI cache)" >&2
  # A failed build is remembered: it is not tried again at every run.
  # remove_all_sd leaves out Prometheus's service discovery (cloud SDKs,
  # Kubernetes' client), which promtool's rule checks do not use: half the
  # build (about 4 CPU minutes instead of 10 here).
  GOBIN="$(dirname "$promtool")" GOFLAGS=-mod=mod go install -tags remove_all_sd -ldflags "-s -w" "$PROMTOOL" >&2 \
    || { mkdir -p "$(dirname "$promtool")" && touch "$promtool.failed"; }
fi
deploy_venv yaml pyyaml==6.0.3

work="$target/observability-test"
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$bin/blindmatch-server" keygen --out server.key >/dev/null
"$bin/blindmatch-server" keygen --signing --out operator.sign >/dev/null
listed="$(printf 'entry 1' | sha256sum | cut -c1-64)"
for i in $(seq 1 100); do echo "sha256 $(printf 'entry %d' "$i" | sha256sum | cut -c1-64)"; done > list.txt
"$bin/blindmatch-server" build --list list.txt --key server.key --signing-key operator.sign --out table.bmt >/dev/null
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)" && admin="$(free_port)" && hook="$(free_port)"
# The webhook's receiver is a port where nothing listens: each attempt fails
# at once (kind unreachable) and the match waits, the backlog.
(umask 077; printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)" > webhook.secret)
"$bin/blindmatch-server" serve --table table.bmt --key server.key --data data --plaintext \
  --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
  --webhook "http://127.0.0.1:$hook/hook" --webhook-secret-file webhook.secret > serve.out 2> serve.err &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
ready=0
for _ in $(seq 1 100); do
  if "$bin/blindmatch-server" health --admin-listen "127.0.0.1:$admin" >/dev/null 2>&1; then ready=1 && break; fi
  kill -0 "$pid" 2>/dev/null || die "the server exited: $(cat serve.err)"
  sleep 0.1
done
[ "$ready" = 1 ] || die "not ready in 10 s: $(cat serve.err)"
scrape() {
  python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' \
    "http://127.0.0.1:$admin/metrics"
}
# A family shows in a scrape once it has a sample: traffic that gives every
# one of them some. Submissions, vouchers, a match, latency:
client=(--server "http://127.0.0.1:$port" --operator-key operator.sign.pub --cache cache)
"$bin/blindmatch" check "${client[@]}" --sha256 "$listed" --sha256 "$(printf x | sha256sum | cut -c1-64)" >/dev/null
# A refusal (errors_total): an empty Submit, for no table served, over
# plain HTTP/2 as gRPC frames it.
printf '\0\0\0\0\0' | curl -s -o /dev/null --http2-prior-knowledge -H 'content-type: application/grpc' \
  -H 'te: trailers' --data-binary @- "http://127.0.0.1:$port/blindmatch.v1.VoucherService/Submit"
# The next version, in threshold mode, at SIGHUP: the replaced one is in its
# grace period; an account's upload: candidates, an examination.
"$bin/blindmatch-server" build --list list.txt --key server.key --signing-key operator.sign --base table.bmt \
  --out table.next --threshold 2 --synthetic-bound 2 >/dev/null
mv table.next table.bmt && kill -HUP "$pid"
for _ in $(seq 1 100); do scrape | grep -q '^blindmatch_table_version 2$' && break; sleep 0.1; done
"$bin/blindmatch" account new --out alice.account --id alice --synthetic-rate 0.1 >/dev/null
"$bin/blindmatch" check "${client[@]}" --account alice.account --sha256 "$listed" >/dev/null
for _ in $(seq 1 100); do scrape | grep -q '^blindmatch_examinations_total' && break; sleep 0.1; done
# The match, posted and refused (the deliverer asks the store every second).
webhook_shows() {
  scrape > metrics.txt
  grep -q '^blindmatch_webhook_failed_attempts_total{kind="unreachable"} [1-9]' metrics.txt \
    && grep -q '^blindmatch_webhook_backlog [1-9]' metrics.txt \
    && grep -q '^blindmatch_webhook_deliverer 1$' metrics.txt
}
shown=0
for _ in $(seq 1 100); do webhook_shows && shown=1 && break; sleep 0.1; done
[ "$shown" = 1 ] || die "no failed webhook attempt, backlog or deliverer in 10 s: $(grep '^blindmatch_webhook' metrics.txt; cat serve.err)"
kill -TERM "$pid" && wait "$pid" || die "the server did not stop cleanly: $(cat serve.err)"
trap - EXIT

"$venv/bin/python" "$here/check.py" metrics.txt "$root/server/src" || die "the dashboard or the rules are wrong (above)"

if [ -x "$promtool" ]; then
  "$promtool" check rules "$here/prometheus-alerts.yaml" || die "promtool check rules failed"
  (cd "$here" && "$promtool" test rules prometheus-alerts.test.yaml) || die "promtool test rules failed"
  promtool_said="promtool check rules and test rules passed"
else
  echo "!! SKIPPED: promtool could not be built ($PROMTOOL): the rules were parsed and checked by check.py only"
  promtool_said="promtool SKIPPED"
fi
echo "observability: the dashboard and the rules query only metrics a running server exports; $promtool_said; $((SECONDS - started)) s"
