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
# shellcheck source=../lib/image.sh
. "$here/../lib/image.sh"
# shellcheck source=versions.env
. "$here/versions.env"
COMPAT_LOG_TAG=python-image

compat_image_args "$@"

image=${COMPAT_PY_REFERENCE_IMAGE:-$(compat_reference_image python "$PY_DEB_VERSION")}

compat_image_begin python "$image" ""
mkdir -p "$tmp/logs" "$tmp/context/extra-tests"

# Build context: the Dockerfile and the test packages that make install
# leaves out, taken from the pinned source package (cached download).
compat_private_apt "$tmp/apt" deb-src
dsc=$(compat_fetch_source python3.11 "$PY_DEB_VERSION" "$tmp/logs")
if ! dpkg-source -x "$dsc" "$tmp/src" >"$tmp/logs/unpack.log" 2>&1; then
	tail -n 20 "$tmp/logs/unpack.log" >&2
	compat_die "dpkg-source -x $dsc failed"
fi
for t in test_capi test_sqlite3 test_tomllib; do
	[ -d "$tmp/src/Lib/test/$t" ] || compat_die "Lib/test/$t missing in the python3.11 $PY_DEB_VERSION source"
	cp -a "$tmp/src/Lib/test/$t" "$tmp/context/extra-tests/$t"
done
cp "$here/Dockerfile" "$tmp/context/Dockerfile"
compat_image_build "$image" "$recipe" "$tmp/context" "$log" \
	"if apt could not find version $PY_DEB_VERSION, the archive has moved on: update images/python/versions.env" \
	--build-arg "BASE_IMAGE=$base" \
	--build-arg "PY_DEB_VERSION=$PY_DEB_VERSION"

got=$(docker run --rm "$image" python3.11 -c 'import sys; print(sys.version.split()[0])')
docker run --rm "$image" python3.11 -m test -h >/dev/null ||
	compat_die "'python3.11 -m test -h' does not run in $image"
docker run --rm "$image" sh -c "dpkg-query -W -f '\${Version}' libpython3.11-testsuite | grep -qxF '$PY_DEB_VERSION'" ||
	compat_die "$image does not hold libpython3.11-testsuite $PY_DEB_VERSION"
docker run --rm "$image" test -f /usr/lib/python3.11/test/test_tomllib/__init__.py ||
	compat_die "$image lacks test/test_tomllib"
compat_image_drop_replaced "$image"
compat_log "built $image (Python $got, Debian $PY_DEB_VERSION) in $(($(date +%s) - start)) s, $(($(docker image inspect -f '{{.Size}}' "$image") / 1000000)) MB"
printf '%s\n' "$image"
