#!/usr/bin/env bash
# The container image as an operator runs it (.ci/run): built by build.sh,
# then a server in the container (read-only root filesystem, uid 65532, the
# table and the key mounted read-only, /data a volume) and the CLI client
# on the host: a listed and an unlisted item checked, `matches` in the
# container shows exactly the listed one, the image's health check passes.
# Needs the host's release binaries (cargo build --release) for the keys,
# the table and the client.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release"
pm() { "$here/podman.sh" "$@"; }
die() { echo "container/test.sh: $*" >&2; exit 1; }

"$here/build.sh"
work="$target/container-test"
rm -rf "$work" && mkdir -p "$work/table" "$work/keys" "$work/data" "$work/cache"
cd "$work"
"$bin/blindmatch-server" keygen --out keys/server.key >/dev/null
"$bin/blindmatch-server" keygen --signing --out operator.sign >/dev/null
cp operator.sign.pub table/
listed="$(printf 'listed in the container' | sha256sum | cut -c1-64)"
unlisted="$(printf 'not listed' | sha256sum | cut -c1-64)"
{ echo "sha256 $listed"; for i in $(seq 1 1000); do echo "sha256 $(printf 'filler %d' "$i" | sha256sum | cut -c1-64)"; done; } > list.txt
"$bin/blindmatch-server" build --list list.txt --key keys/server.key --signing-key operator.sign --out table/table.bmt >/dev/null
# The image's user owns what it writes and reads its key and its table file
# (both mode 0600: the table file holds the private index).
chown -R 65532:65532 keys table data

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
name="blindmatch-test-$$"
cleanup() { pm rm -f -t 5 "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
# The image's defaults (gRPC on 50051, published to the host's loopback;
# the admin listener inside the container only), plaintext for the test (an
# operator gives TLS files).
pm run -d --name "$name" --read-only -p "127.0.0.1:$port:50051" \
  -v "$work/table:/table:ro" -v "$work/keys:/keys:ro" -v "$work/data:/data" \
  -e BLINDMATCH_PLAINTEXT=true \
  blindmatch-server:latest >/dev/null 2>run.err \
  || { cat run.err >&2; die "podman run failed"; }
# Without systemd podman cannot schedule the image's health check (it says
# so in run.err); `podman healthcheck run` runs it once, below.
ready=0
for _ in $(seq 1 100); do
  if pm exec "$name" /usr/local/bin/blindmatch-server health >/dev/null 2>&1; then
    ready=1 && break
  fi
  [ "$(pm inspect --format '{{.State.Running}}' "$name")" = true ] || { pm logs "$name" >&2; die "the server exited"; }
  sleep 0.2
done
[ "$ready" = 1 ] || { pm logs "$name" >&2; die "not ready in 20 s"; }
# The image's own HEALTHCHECK (docker format keeps it), as podman runs it.
pm healthcheck run "$name" || die "the image's health check fails on a ready server"

# Who runs it, and on what: uid 65532, a root filesystem nothing can
# write (the server needs none: everything it writes is under /data).
[ "$(pm exec "$name" /usr/local/bin/blindmatch-server --version >/dev/null && pm top "$name" user | tail -1 | tr -d ' ')" = blindmatch ] \
  || die "the server does not run as the blindmatch user"
[ "$(pm inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$name")" = true ] || die "the root filesystem is writable"

out="$("$bin/blindmatch" check --server "http://127.0.0.1:$port" --operator-key operator.sign.pub --cache cache \
  --sha256 "$listed" --sha256 "$unlisted" 2>&1)"
grep -q "^2 vouchers submitted and acknowledged$" <<<"$out" || die "the client's check: $out"
matches=""
for _ in $(seq 1 100); do
  matches="$(pm exec "$name" /usr/local/bin/blindmatch-server matches --data /data --json)"
  grep -q '"item_hex"' <<<"$matches" && break
  sleep 0.2
done
sleep 1 # anything more would show now
matches="$(pm exec "$name" /usr/local/bin/blindmatch-server matches --data /data --json)"
[ "$(grep -c '"item_hex"' <<<"$matches")" = 1 ] || die "expected exactly one match: $matches"
grep -q "\"item_hex\": \"$listed\"" <<<"$matches" || die "the match is not the listed item: $matches"
size="$(pm image inspect --format '{{.Size}}' blindmatch-server:latest)"
echo "container: the server in blindmatch-server:latest ($((size / 1024)) KiB, uid 65532, read-only root) matched exactly the listed item of two checked from the host"
