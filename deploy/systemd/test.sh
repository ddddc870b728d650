#!/usr/bin/env bash
# The systemd unit and the configuration beside it, as a host runs them
# (.ci/run): `systemd-analyze verify` must have nothing to say about the
# unit (it warns, and exits 0, for an unknown directive: any output fails
# here), and serve.toml, with its paths moved into a scratch directory and
# its ports to free ones, must start a server that becomes ready and drains
# at SIGTERM. Needs the release binaries (cargo build --release) and
# openssl for a TLS certificate.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release"
die() { echo "systemd/test.sh: $*" >&2; exit 1; }
work="$target/systemd-test"
rm -rf "$work" && mkdir -p "$work"

if command -v systemd-analyze >/dev/null; then
  sed "s|/usr/local/bin/blindmatch-server|$bin/blindmatch-server|" "$here/blindmatch-server.service" \
    > "$work/blindmatch-server.service"
  said="$(systemd-analyze verify "$work/blindmatch-server.service" 2>&1)" || die "systemd-analyze verify: $said"
  [ -z "$said" ] || die "systemd-analyze verify: $said"
  echo "systemd: the unit verifies"
else
  echo "!! SKIPPED: systemd-analyze is not installed: the unit was not verified"
fi

if ! command -v openssl >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "systemd/test.sh: installing Debian's openssl (a throwaway TLS certificate)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi
command -v openssl >/dev/null || die "openssl is missing (apt-get install openssl)"

# serve.toml with its files under $work, and free ports.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)" && admin="$(free_port)"
sed -e "s|/srv/blindmatch|$work/srv|g; s|/etc/blindmatch|$work/etc|g; s|/var/lib/blindmatch|$work/data|g" \
    -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|; s|^admin-listen = \"[^\"]*\"|admin-listen = \"127.0.0.1:$admin\"|" \
    "$here/serve.toml" > "$work/serve.toml"
mkdir -p "$work/srv" "$work/etc/tls" "$work/data"
cd "$work"
"$bin/blindmatch-server" keygen --out srv/server.key >/dev/null
"$bin/blindmatch-server" keygen --signing --out etc/operator.sign >/dev/null
for i in $(seq 1 100); do echo "sha256 $(printf 'entry %d' "$i" | sha256sum | cut -c1-64)"; done > list.txt
"$bin/blindmatch-server" build --list list.txt --key srv/server.key --signing-key etc/operator.sign \
  --out srv/table.bmt >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout etc/tls/server.key -out etc/tls/server.crt 2>/dev/null
chmod 600 etc/tls/server.key
"$bin/blindmatch-server" serve --config serve.toml > serve.out 2> serve.err &
pid=$!
ready=0
for _ in $(seq 1 100); do
  if "$bin/blindmatch-server" health --admin-listen "127.0.0.1:$admin" >/dev/null 2>&1; then ready=1 && break; fi
  kill -0 "$pid" 2>/dev/null || die "the server exited: $(cat serve.err)"
  sleep 0.1
done
[ "$ready" = 1 ] || { kill "$pid"; die "not ready in 10 s: $(cat serve.err)"; }
kill -TERM "$pid"
status=0 && wait "$pid" || status=$?
[ "$status" = 0 ] || die "the server exited $status at SIGTERM: $(cat serve.err)"
echo "systemd: serve.toml started a server (TLS, the admin listener) that became ready and drained at SIGTERM"
