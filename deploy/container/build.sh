#!/usr/bin/env bash
# Builds the server's container image, blindmatch-server:VERSION (the
# workspace's version) and :latest, with Debian's podman (podman.sh):
#   1. the server as a static binary: the x86_64-unknown-linux-musl target
#      (added with rustup if missing; musl-gcc from Debian's musl-tools for
#      the C of SQLite and ring, installed if missing and apt-get can), the
#      dist profile;
#   2. the context staged in $CARGO_TARGET_DIR/container: the binary, an
#      /etc with the one user (blindmatch, uid 65532) and an empty /data;
#   3. `podman build` of deploy/container/Containerfile (docker format, so
#      that the HEALTHCHECK is kept).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
triple=x86_64-unknown-linux-musl
die() { echo "container/build.sh: $*" >&2; exit 2; }

if ! rustup target list --installed | grep -qx "$triple"; then
  echo "container/build.sh: adding the $triple target (rustup)" >&2
  rustup target add "$triple" >/dev/null
fi
if ! command -v musl-gcc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "container/build.sh: installing Debian's musl-tools (musl-gcc)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null
  fi
fi
command -v musl-gcc >/dev/null || die "musl-gcc is missing (apt-get install musl-tools)"

CC_x86_64_unknown_linux_musl=musl-gcc cargo build --quiet --locked --profile dist --target "$triple" \
  -p blindmatch-server --manifest-path "$root/Cargo.toml"
binary="$target/$triple/dist/blindmatch-server"
file "$binary" 2>/dev/null | grep -Eq "statically linked|static-pie linked" || [ ! -x /usr/bin/file ] \
  || die "$binary is not statically linked"

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
stage="$target/container"
rm -rf "$stage" && mkdir -p "$stage/rootfs/etc" "$stage/data"
cp "$binary" "$stage/blindmatch-server"
cp "$here/Containerfile" "$stage/"
echo "blindmatch:x:65532:65532:blindmatch:/data:/nonexistent" > "$stage/rootfs/etc/passwd"
echo "blindmatch:x:65532:" > "$stage/rootfs/etc/group"
"$here/podman.sh" build --quiet --format docker -f "$stage/Containerfile" \
  -t "blindmatch-server:$version" -t blindmatch-server:latest "$stage" >/dev/null
size="$("$here/podman.sh" image inspect --format '{{.Size}}' "blindmatch-server:$version")"
echo "container/build.sh: blindmatch-server:$version, $((size / 1024)) KiB (binary $(( $(stat -c %s "$binary") / 1024 )) KiB)"
