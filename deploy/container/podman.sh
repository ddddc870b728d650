#!/usr/bin/env bash
# podman as it runs on these machines: as root, with runc and cgroupfs, and
# the containers.conf beside this script (no default ulimits). Installs
# Debian's podman and runc first if they are missing and apt-get can (root).
#
#   deploy/container/podman.sh ARGS...     podman ARGS... with those settings
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "podman.sh: installing Debian's podman and runc" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null
  fi
fi
command -v podman >/dev/null || { echo "podman.sh: podman is missing (apt-get install podman runc)" >&2; exit 2; }
export CONTAINERS_CONF="$here/containers.conf"
exec podman --runtime runc --cgroup-manager cgroupfs "$@"
