#!/usr/bin/env bash
# compose.yaml as an operator runs it (.ci/run), for real: podman-compose
# (PyPI, in a virtualenv in the CI cache) starts the server's image
# (deploy/container/build.sh) and PostgreSQL; the server creates its schema
# and serves over TLS; the CLI client on the host checks a listed and an
# unlisted item through the published port, `matches` shows exactly the
# listed one, a next version reaches the client after `kill -s HUP`, and
# `down -v` removes it all.
#
# No image can be pulled here, so the database is test-postgres.sh's image
# (Debian's PostgreSQL on an empty base, through BLINDMATCH_POSTGRES_IMAGE),
# not the official postgres:17 that compose.yaml names. Debian's podman 4.3
# does not honour `depends_on: condition: service_healthy` (podman-compose
# says so and starts the server at once): the server exits while the
# database is not up and its restart policy brings it back, which this test
# goes through; and it needs podman.yaml (its comment says why). Exit status 2: podman, podman-compose or PostgreSQL's
# binaries missing and not installable. Needs the host's release binaries.
set -eEuo pipefail
name=compose
# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
pm() { "$root/deploy/container/podman.sh" "$@"; }

# podman-compose 1.6.0 from PyPI, once, in the cache.
deploy_venv podman-compose podman-compose==1.6.0 pyyaml==6.0.3
pm --version >/dev/null || skip "podman is missing"
# Container names on the compose network resolve through aardvark-dns.
if ! [ -x /usr/lib/podman/aardvark-dns ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "compose/test.sh: installing Debian's aardvark-dns (names on compose networks)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq aardvark-dns >/dev/null
fi
if ! command -v openssl >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi
command -v openssl >/dev/null || die "openssl is missing (apt-get install openssl)"

status=0
"$root/deploy/container/build.sh" || status=$?
[ "$status" = 0 ] || exit "$status"
"$here/test-postgres.sh" || status=$?
[ "$status" = 0 ] || exit "$status"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"

work="$target/compose-test"
rm -rf "$work" && mkdir -p "$work/table" "$work/keys" "$work/cache"
cd "$work"
"$bin/blindmatch-server" keygen --out keys/server.key >/dev/null
"$bin/blindmatch-server" keygen --signing --out operator.sign >/dev/null
cp operator.sign.pub table/
# A throwaway CA and the server's certificate from it (rustls takes no
# self-signed CA certificate as a server's).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=compose-test-ca \
  -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout keys/tls.key -out tls.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' > tls.ext
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile tls.ext \
  -out keys/tls.crt 2>/dev/null
chmod 600 keys/tls.key
listed="$(printf 'listed in compose' | sha256sum | cut -c1-64)"
unlisted="$(printf 'not listed' | sha256sum | cut -c1-64)"
{ echo "sha256 $listed"; for i in $(seq 1 1000); do echo "sha256 $(printf 'filler %d' "$i" | sha256sum | cut -c1-64)"; done; } > list.txt
"$bin/blindmatch-server" build --list list.txt --key keys/server.key --signing-key operator.sign --out table/table.bmt >/dev/null
# The password: random, one line, mode 0600, owned by the server's user
# (the official postgres image reads it as root).
printf '%s\n' "$(openssl rand -hex 16)" > db-password
chmod 600 db-password
chown -R 65532:65532 keys table db-password

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
project="blindmatch-test-$$"
# podman.yaml's subnet: one no network here has.
taken="$(pm network ls -q | xargs -r "$root/deploy/container/podman.sh" network inspect \
  --format '{{range .Subnets}}{{.Subnet}} {{end}}' 2>/dev/null || true)"
for _ in $(seq 1 50); do
  BLINDMATCH_SUBNET="10.89.$((100 + RANDOM % 150))"
  grep -q "$BLINDMATCH_SUBNET.0/" <<<"$taken" || break
done
export BLINDMATCH_SUBNET
export BLINDMATCH_POSTGRES_IMAGE=localhost/blindmatch-test-postgres:15
export BLINDMATCH_SERVER_IMAGE="localhost/blindmatch-server:$version"
export BLINDMATCH_TABLE_DIR="$work/table" BLINDMATCH_KEYS_DIR="$work/keys"
export BLINDMATCH_DB_PASSWORD_FILE="$work/db-password" BLINDMATCH_PORT="127.0.0.1:$port"
# podman as it runs here (deploy/container/podman.sh) is the podman it runs.
compose() {
  "$venv/bin/podman-compose" --podman-path "$root/deploy/container/podman.sh" \
    -f "$here/compose.yaml" -f "$here/podman.yaml" -p "$project" "$@"
}
cleanup() { compose down -v -t 5 >/dev/null 2>&1 || true; }
trap cleanup EXIT

compose config >/dev/null 2>compose.err || { cat compose.err >&2; die "podman-compose config refuses compose.yaml"; }
compose up -d >compose.out 2>&1 || { cat compose.out >&2; die "podman-compose up failed"; }
server="${project}_server_1" db="${project}_postgres_1"
# Without systemd podman schedules no health checks: run each as podman
# would, until it passes.
healthy() {
  local name=$1 what=$2
  for _ in $(seq 1 150); do
    if pm healthcheck run "$name" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  pm logs "$name" >&2 || true
  die "$what not healthy in 30 s"
}
healthy "$db" "PostgreSQL"
healthy "$server" "the server"
restarts="$(pm inspect --format '{{.RestartCount}}' "$server")"

out="$("$bin/blindmatch" check --server "https://localhost:$port" --ca ca.crt --operator-key table/operator.sign.pub \
  --cache cache --sha256 "$listed" --sha256 "$unlisted" 2>&1)" || true
grep -q "^2 vouchers submitted and acknowledged$" <<<"$out" || die "the client's check: $out"
store=(--store postgres://blindmatch@postgres:5432/blindmatch --store-password-file /run/secrets/db-password)
matches=""
for _ in $(seq 1 100); do
  matches="$(pm exec "$server" /usr/local/bin/blindmatch-server matches "${store[@]}" --json)"
  grep -q '"item_hex"' <<<"$matches" && break
  sleep 0.2
done
sleep 1 # anything more would show now
matches="$(pm exec "$server" /usr/local/bin/blindmatch-server matches "${store[@]}" --json)"
[ "$(grep -c '"item_hex"' <<<"$matches")" = 1 ] || die "expected exactly one match: $matches"
grep -q "\"item_hex\": \"$listed\"" <<<"$matches" || die "the match is not the listed item: $matches"

# The next version, as compose.yaml's comment says: replace the file, SIGHUP.
"$bin/blindmatch-server" build --list list.txt --key keys/server.key --signing-key operator.sign \
  --base table/table.bmt --out table/table.next >/dev/null
chown 65532:65532 table/table.next && mv table/table.next table/table.bmt
compose kill -s HUP server >/dev/null 2>&1 || die "podman-compose kill -s HUP server failed"
fetched=""
for _ in $(seq 1 50); do
  fetched="$("$bin/blindmatch" fetch --server "https://localhost:$port" --ca ca.crt \
    --operator-key table/operator.sign.pub --cache cache 2>&1)" || true
  grep -q "table version 2 " <<<"$fetched" && break
  sleep 0.2
done
grep -q "table version 2 .*verified: updated from version 1" <<<"$fetched" || die "version 2 after SIGHUP: $fetched"

compose down -v -t 10 >compose.out 2>&1 || { cat compose.out >&2; die "podman-compose down failed"; }
trap - EXIT
pm container exists "$server" && die "down left the server's container"
size="$(pm image inspect --format '{{.Size}}' "$BLINDMATCH_POSTGRES_IMAGE")"
echo "compose: podman-compose ran compose.yaml for real (server over TLS on PostgreSQL, the test image $((size / 1048576)) MiB; the server restarted $restarts time(s) waiting for the database): exactly the listed item of two matched, version 2 served after SIGHUP, down -v; $((SECONDS - started)) s"
