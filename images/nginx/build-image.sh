#!/usr/bin/env bash
# Builds the native reference image compat/nginx-reference:<deb version>
# (Debian's nginx and module packages pinned in versions.env, plus
# Test::Nginx) on top of the local base image, building that first if it is
# missing.
#
# Usage: images/nginx/build-image.sh [--force]
# Last line of stdout: the image name.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"
# shellcheck source=versions.env
. "$here/versions.env"
COMPAT_LOG_TAG=nginx-image

force=no
case "${1:-}" in
--force) force=yes ;;
"") ;;
*) compat_die "unknown argument '$1' (usage: $0 [--force])" ;;
esac

compat_need docker docker.io
docker info >/dev/null 2>&1 || compat_die "the Docker engine does not answer ('docker info' failed); start it and retry"

# Docker tags cannot hold '+' or '~'.
tag=$(printf '%s' "$NGINX_DEB_VERSION" | tr '+~:' '__-')
image=${COMPAT_NGINX_REFERENCE_IMAGE:-compat/nginx-reference:$tag}

base=$("$here/../base/build.sh" | tail -n 1)
[ -n "$base" ] || compat_die "images/base/build.sh printed no image name"
testlib=$("$here/fetch-test-nginx.sh" | tail -n 1)
[ -f "$testlib/Test/Nginx/Socket.pm" ] || compat_die "fetch-test-nginx.sh gave no Test::Nginx library ($testlib)"

# The image carries a hash of this recipe and of the base image's id; a
# change of either rebuilds it.
images=$(cd "$here/.." && pwd)
base_id=$(docker image inspect -f '{{.Id}}' "$base")
recipe=$(compat_hash "$images" "nginx/Dockerfile nginx/build-image.sh nginx/versions.env nginx/fetch-test-nginx.sh lib/common.sh" "base=$base_id")
if [ "$force" = no ] && docker image inspect "$image" >/dev/null 2>&1; then
	have=$(docker image inspect -f '{{ index .Config.Labels "compat.recipe" }}' "$image" 2>/dev/null || true)
	if [ "$have" = "$recipe" ]; then
		compat_log "$image already present and up to date (use --force to rebuild)"
		printf '%s\n' "$image"
		exit 0
	fi
	compat_log "$image exists but was built from another recipe (${have:-none}); rebuilding"
fi

start=$(date +%s)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/compat-nginx-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log=$tmp/docker-build.log
mkdir -p "$tmp/context"
cp "$here/Dockerfile" "$tmp/context/Dockerfile"
cp -a "$testlib" "$tmp/context/test-nginx"
old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
compat_log "docker build $image (log: $log)"
if ! docker build \
	--build-arg "BASE_IMAGE=$base" \
	--build-arg "NGINX_DEB_VERSION=$NGINX_DEB_VERSION" \
	--build-arg "NDK_DEB_VERSION=$NDK_DEB_VERSION" \
	--build-arg "ECHO_DEB_VERSION=$ECHO_DEB_VERSION" \
	--build-arg "HEADERS_MORE_DEB_VERSION=$HEADERS_MORE_DEB_VERSION" \
	--build-arg "SET_MISC_DEB_VERSION=$SET_MISC_DEB_VERSION" \
	--label "compat.recipe=$recipe" \
	-t "$image" "$tmp/context" >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	compat_die "docker build of $image failed (log above); if apt could not find a pinned version, the archive has moved on: update images/nginx/versions.env"
fi

docker run --rm "$image" sh -c "dpkg-query -W -f '\${Version}' nginx | grep -qxF '$NGINX_DEB_VERSION'" ||
	compat_die "$image does not hold nginx $NGINX_DEB_VERSION"
docker run --rm "$image" sh -c 'for m in ndk_http ngx_http_echo ngx_http_headers_more_filter ngx_http_set_misc; do test -f /usr/lib/nginx/modules/${m}_module.so || { echo "missing module $m" >&2; exit 1; }; done' ||
	compat_die "$image lacks one of the module .so files"
new_id=$(docker image inspect -f '{{.Id}}' "$image")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
	docker image rm "$old_id" >/dev/null 2>&1 || true
fi
compat_log "built $image (nginx $NGINX_DEB_VERSION) in $(($(date +%s) - start)) s, $(($(docker image inspect -f '{{.Size}}' "$image") / 1000000)) MB"
printf '%s\n' "$image"
