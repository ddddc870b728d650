#!/usr/bin/env bash
# TEST ONLY: builds blindmatch-test-postgres:15 for deploy/compose/test.sh
# (test-postgres.Containerfile): Debian's PostgreSQL 15 binaries (installed
# by scripts/pg-test-cluster.sh's way if missing), every shared library
# they and dash (initdb runs its children through /bin/sh) load, the share
# directory and the UTC zone, staged in $CARGO_TARGET_DIR/test-postgres
# (rootfs/, owned by root; state/, the data directory and /tmp, by the
# image's user).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
pm() { "$root/deploy/container/podman.sh" "$@"; }
die() { echo "compose/test-postgres.sh: $*" >&2; exit 2; }
image=blindmatch-test-postgres:15

pgbin=/usr/lib/postgresql/15/bin
if [ ! -x "$pgbin/postgres" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "compose/test-postgres.sh: installing Debian's postgresql" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
fi
[ -x "$pgbin/postgres" ] || die "Debian's PostgreSQL 15 is missing (apt-get install postgresql)"

stage="$target/test-postgres"
rm -rf "$stage" && mkdir -p "$stage/rootfs"
rootfs="$stage/rootfs"
files=(
  "$pgbin/postgres" "$pgbin/initdb" "$pgbin/pg_isready"
  /usr/lib/postgresql/15/lib/plpgsql.so /usr/lib/postgresql/15/lib/dict_snowball.so
  "$(readlink -f /bin/sh)"
)
cp --parents "${files[@]}" "$rootfs/"
if [ ! -e "$rootfs/bin/sh" ]; then
  mkdir -p "$rootfs/bin" && ln -s "$(readlink -f /bin/sh)" "$rootfs/bin/sh"
fi
# Every library the binaries load, and the loader, at their paths.
for lib in $(ldd "${files[@]}" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | sort -u); do
  cp --parents -L "$lib" "$rootfs/"
done
cp -r --parents /usr/share/postgresql/15 "$rootfs/"
cp --parents -L /usr/share/zoneinfo/UTC /usr/share/zoneinfo/Etc/UTC /usr/share/zoneinfo/GMT "$rootfs/"
mkdir -p "$rootfs/etc" "$stage/state/tmp" "$stage/state/var/lib/postgresql/data"
echo "postgres:x:65532:65532:postgres:/var/lib/postgresql:/bin/sh" > "$rootfs/etc/passwd"
echo "postgres:x:65532:" > "$rootfs/etc/group"
cp "$here/test-postgres-entrypoint.sh" "$rootfs/docker-entrypoint.sh"
chmod 1777 "$stage/state/tmp" && chmod 700 "$stage/state/var/lib/postgresql/data"
cp "$here/test-postgres.Containerfile" "$stage/Containerfile"
pm build --quiet --format docker -f "$stage/Containerfile" -t "$image" "$stage" >/dev/null
size="$(pm image inspect --format '{{.Size}}' "$image")"
echo "compose/test-postgres.sh: $image, $((size / 1024 / 1024)) MiB (test only)"
