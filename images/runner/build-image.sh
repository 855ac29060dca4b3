#!/usr/bin/env bash
# Builds the runner image compat/runner:<recipe hash> (see Dockerfile): the
# one image a CI job needs, with the host's Docker socket for the reference
# containers. It holds compat built from this checkout, the wasm builds of
# this checkout's recipes and Test::Nginx (make runner-image builds them),
# and is rebuilt when any of them, the recipe or the base image changes.
#
# Usage: images/runner/build-image.sh [--force]
#   DEPS_SETS="runner wasm" adds the wasm toolchains;
#   COMPAT_RUNNER_PYTHON_BUILD, _REDIS_BUILD, _NGINX_BUILD pin build directories.
# Last line of stdout: the image name.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"
# shellcheck source=../lib/image.sh
. "$here/../lib/image.sh"
COMPAT_LOG_TAG=runner-image

compat_image_args "$@"
compat_need go golang-go
sets=${DEPS_SETS:-runner}
cache=$(compat_cache_root)
repo=$(cd "$here/../.." && pwd)

base=$("$here/../base/build.sh" | tail -n 1)
[ -n "$base" ] || compat_die "images/base/build.sh printed no image name"

start=$(date +%s)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/compat-runner-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ctx=$tmp/context
mkdir -p "$ctx/cache" "$ctx/images/lib"

# compat, static: the image has no Go.
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$ctx/compat" ./cmd/compat) ||
	compat_die "go build ./cmd/compat failed"

# The builds of this checkout's recipes: each build-wasm.sh prints its
# output at once when it is in the cache (make runner-image builds them
# first). Not the newest in the cache, which another checkout may have
# built with host calls this compat lacks. COMPAT_RUNNER_<NAME>_BUILD
# (PYTHON, REDIS, NGINX) names a build directory instead.
for b in python redis nginx; do
	var=COMPAT_RUNNER_${b^^}_BUILD
	dir=${!var:-}
	if [ -z "$dir" ]; then
		dir=$("$here/../$b/build-wasm.sh" | tail -n 1)
	fi
	[ -f "$dir/.done" ] || compat_die "$dir is not a complete $b-wasm build (no .done)"
	mkdir -p "$ctx/cache/$b-wasm"
	cp -a "$dir" "$ctx/cache/$b-wasm/"
done
tn=$("$here/../nginx/fetch-test-nginx.sh" | tail -n 1)
[ -f "$tn/Test/Nginx.pm" ] || compat_die "no Test::Nginx in $tn (images/nginx/fetch-test-nginx.sh)"
mkdir -p "$ctx/cache/test-nginx"
cp -a "$(dirname "$tn")" "$ctx/cache/test-nginx/"

cp "$here/../install-deps.sh" "$ctx/images/"
cp "$here/../lib/common.sh" "$ctx/images/lib/"
cp "$here/Dockerfile" "$ctx/Dockerfile"

# The tag is a hash of everything that went in: the recipe, the base image,
# compat and the builds.
base_id=$(docker image inspect -f '{{.Id}}' "$base")
content=$(cd "$ctx" && find . -type f ! -name Dockerfile -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
recipe=$(compat_hash "$(cd "$here/.." && pwd)" "runner/Dockerfile runner/build-image.sh install-deps.sh lib/common.sh lib/image.sh" "base=$base_id content=$content sets=$sets")
image=${COMPAT_RUNNER_IMAGE:-compat/runner:${recipe:0:16}}
if compat_image_current "$image" "$recipe"; then
	printf '%s\n' "$image"
	exit 0
fi
compat_image_build "$image" "$recipe" "$ctx" "$tmp/docker-build.log" \
	"see the log for the step that failed" \
	--build-arg "BASE_IMAGE=$base" \
	--build-arg "DEPS_SETS=$sets" \
	--build-arg "RUNNER_IMAGE=$image"

docker run --rm "$image" compat help >/dev/null || compat_die "'compat help' does not run in $image"
# The vkernel works in the image: the megabinary is built, signed and
# loaded from the image's builds and one Python module runs in it.
if ! docker run --rm "$image" sh -c 'compat run -suite python -target vkernel -modules test_bool -quiet -out /tmp/out -baselines /nonexistent && grep -q "^| vkernel | [1-9]" /tmp/out/summary.md' >"$tmp/smoke.log" 2>&1; then
	tail -n 30 "$tmp/smoke.log" >&2
	compat_die "compat run of test_bool on the vkernel failed in $image (log above)"
fi
docker run --rm "$image" sh -c 'test "$COMPAT_RUNNER_IMAGE" = '"'$image'" || compat_die "$image does not know its own name"
compat_image_drop_replaced "$image"
compat_log "built $image in $(($(date +%s) - start)) s, $(($(docker image inspect -f '{{.Size}}' "$image") / 1000000)) MB"
printf '%s\n' "$image"
