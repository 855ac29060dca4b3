#!/usr/bin/env bash
# Builds the native reference image compat/redis-reference:<deb version>
# (Debian's redis-server and redis-tools, pinned in versions.env) on top of
# the local base image, building that first if it is missing.
#
# Usage: images/redis/build-image.sh [--force]
# Last line of stdout: the image name.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"
# shellcheck source=../lib/image.sh
. "$here/../lib/image.sh"
# shellcheck source=versions.env
. "$here/versions.env"
COMPAT_LOG_TAG=redis-image

compat_image_args "$@"

image=${COMPAT_REDIS_REFERENCE_IMAGE:-$(compat_reference_image redis "$REDIS_DEB_VERSION")}

compat_image_begin redis "$image" ""
mkdir -p "$tmp/context"
cp "$here/Dockerfile" "$tmp/context/Dockerfile"
compat_image_build "$image" "$recipe" "$tmp/context" "$log" \
	"if apt could not find version $REDIS_DEB_VERSION, the archive has moved on: update images/redis/versions.env" \
	--build-arg "BASE_IMAGE=$base" \
	--build-arg "REDIS_DEB_VERSION=$REDIS_DEB_VERSION"

got=$(docker run --rm --entrypoint redis-server "$image" --version)
docker run --rm --entrypoint sh "$image" -c "dpkg-query -W -f '\${Version}' redis-server | grep -qxF '$REDIS_DEB_VERSION'" ||
	compat_die "$image does not hold redis-server $REDIS_DEB_VERSION"
compat_image_drop_replaced "$image"
compat_log "built $image ($got) in $(($(date +%s) - start)) s, $(($(docker image inspect -f '{{.Size}}' "$image") / 1000000)) MB"
printf '%s\n' "$image"
