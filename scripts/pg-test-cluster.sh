#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: its own data directory, port
# and socket directory, trust authentication on 127.0.0.1 only, stopped and
# deleted with `stop`. Installs PostgreSQL from Debian's packages if missing.
#
#   scripts/pg-test-cluster.sh start     # prints: export BLINDMATCH_TEST_POSTGRES=postgres://...
#   scripts/pg-test-cluster.sh restart fast|immediate
#   scripts/pg-test-cluster.sh stop
#
# The port is $BLINDMATCH_PG_PORT (default 55432); everything lives in
# ${TMPDIR:-/tmp}/blindmatch-pg-PORT. Run the PostgreSQL tests locally with:
#
#   eval "$(scripts/pg-test-cluster.sh start)" && cargo test --release -p blindmatch-server; scripts/pg-test-cluster.sh stop
set -euo pipefail
port="${BLINDMATCH_PG_PORT:-55432}"
root="${TMPDIR:-/tmp}/blindmatch-pg-$port"
data="$root/data"
log="$root/postgres.log"
say() { echo "pg-test-cluster: $*" >&2; }

bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
        return 1
    fi
    echo "$d"
}

install() {
    if bindir >/dev/null; then return 0; fi
    say "PostgreSQL is not installed: installing it from Debian's packages"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    # The package may also create and start a default cluster on 5432; ours
    # has its own port, directory and socket and does not use it.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >&2
    bindir >/dev/null || { say "PostgreSQL did not install"; exit 1; }
}

# initdb and postgres refuse to run as root: as root, run them as `postgres`.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

ctl() { as_owner "$(bindir)/pg_ctl" -D "$data" -l "$log" "$@"; }

# The server options: our port, socket and address; pg_stat_statements when
# the package has it (blindmatch-store-bench counts statements with it).
options() {
    local o="-p $port -k $root/socket -c listen_addresses=127.0.0.1 -c max_connections=200"
    if [ -f "$("$(bindir)/pg_config" --pkglibdir)/pg_stat_statements.so" ]; then
        o="$o -c shared_preload_libraries=pg_stat_statements"
    fi
    echo "$o"
}

url() { echo "postgres://postgres@127.0.0.1:$port/postgres"; }

wait_ready() {
    for _ in $(seq 100); do
        if "$(bindir)/pg_isready" -q -h 127.0.0.1 -p "$port"; then return 0; fi
        sleep 0.1
    done
    say "PostgreSQL did not come up on port $port; its log:"
    tail -20 "$log" >&2 || true
    exit 1
}

case "${1:-}" in
start)
    install
    if [ -f "$data/postmaster.pid" ] && ctl status >/dev/null 2>&1; then
        say "already running on port $port"
    else
        rm -rf "$root"
        mkdir -p "$root/socket"
        [ "$(id -u)" -ne 0 ] || chown -R postgres "$root"
        as_owner "$(bindir)/initdb" -D "$data" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
        cat >"$data/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 trust
EOF
        # fsync stays on: the fault harness restarts this cluster with
        # immediate shutdowns and must see what a real one keeps.
        ctl -w -o "$(options)" start >/dev/null
    fi
    wait_ready
    say "running on port $port ($data)"
    echo "export BLINDMATCH_TEST_POSTGRES=$(url)"
    ;;
restart)
    mode="${2:-fast}"
    ctl -m "$mode" -w stop >/dev/null || true
    ctl -w -o "$(options)" start >/dev/null
    wait_ready
    ;;
stop-only)
    # Stopped, not deleted (the fault harness's outage).
    ctl -m "${2:-fast}" -w stop >/dev/null
    ;;
start-only)
    ctl -w -o "$(options)" start >/dev/null
    wait_ready
    ;;
stop)
    if bindir >/dev/null && [ -d "$data" ]; then
        ctl -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$root"
    say "stopped and removed"
    ;;
url)
    url
    ;;
*)
    echo "usage: $0 start | restart fast|immediate | stop-only [mode] | start-only | stop | url" >&2
    exit 2
    ;;
esac
