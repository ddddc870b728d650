#!/bin/sh
# TEST ONLY (test-postgres.Containerfile): on an empty data directory, what
# the official postgres image's entrypoint does with its variables: initdb
# with POSTGRES_USER as the superuser and the password from
# POSTGRES_PASSWORD_FILE (scram-sha-256 over TCP), then POSTGRES_DB; then
# the server on every address.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$POSTGRES_PASSWORD_FILE" \
    --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C --no-sync >/dev/null
  printf 'local all all trust\nhost all all all scram-sha-256\n' > "$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" \
    | postgres --single -j -D "$PGDATA" postgres >/dev/null
  echo "test-postgres: initialised $PGDATA, database $POSTGRES_DB owned by $POSTGRES_USER"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /tmp
