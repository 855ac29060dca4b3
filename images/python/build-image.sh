#!/usr/bin/env bash
# Builds the native reference image compat/python-reference:<deb version>
# (Debian's python3.11 + libpython3.11-testsuite, pinned in versions.env)
# on top of the local base image, building that first if it is missing.
#
# Usage: images/python/build-image.sh [--force]
# Last line of stdout: the image name.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"
# shellcheck source=versions.env
. "$here/versions.env"
COMPAT_LOG_TAG=python-image

force=no
case "${1:-}" in
--force) force=yes ;;
"") ;;
*) compat_die "unknown argument '$1' (usage: $0 [--force])" ;;
esac

compat_need docker docker.io
docker info >/dev/null 2>&1 || compat_die "the Docker engine does not answer ('docker info' failed); start it and retry"

# Docker tags cannot hold '+' or '~'.
tag=$(printf '%s' "$PY_DEB_VERSION" | tr '+~:' '__-')
image=${COMPAT_PY_REFERENCE_IMAGE:-compat/python-reference:$tag}

if [ "$force" = no ] && docker image inspect "$image" >/dev/null 2>&1; then
	compat_log "$image already present (use --force to rebuild)"
	printf '%s\n' "$image"
	exit 0
fi

base=$("$here/../base/build.sh" | tail -n 1)
[ -n "$base" ] || compat_die "images/base/build.sh printed no image name"

start=$(date +%s)
log=$(mktemp "${TMPDIR:-/tmp}/compat-python-image.XXXXXX.log")
compat_log "docker build $image (log: $log)"
if ! docker build \
	--build-arg "BASE_IMAGE=$base" \
	--build-arg "PY_DEB_VERSION=$PY_DEB_VERSION" \
	-t "$image" -f "$here/Dockerfile" "$here" >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	compat_die "docker build of $image failed (log above, full log $log); if apt could not find version $PY_DEB_VERSION, the archive has moved on: update images/python/versions.env"
fi

got=$(docker run --rm "$image" python3.11 -c 'import sys; print(sys.version.split()[0])')
docker run --rm "$image" python3.11 -m test -h >/dev/null ||
	compat_die "'python3.11 -m test -h' does not run in $image"
docker run --rm "$image" sh -c "dpkg-query -W -f '\${Version}' libpython3.11-testsuite | grep -qxF '$PY_DEB_VERSION'" ||
	compat_die "$image does not hold libpython3.11-testsuite $PY_DEB_VERSION"
rm -f "$log"
compat_log "built $image (Python $got, Debian $PY_DEB_VERSION) in $(($(date +%s) - start)) s, $(($(docker image inspect -f '{{.Size}}' "$image") / 1000000)) MB"
printf '%s\n' "$image"
