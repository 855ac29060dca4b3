#!/usr/bin/env bash
# Builds the native reference image compat/nginx-reference:<deb version>
# (Debian's nginx and module packages pinned in versions.env, plus
# Test::Nginx, plus what nginx's own autopkgtests depend on) on top of the local base image, building that first if it is
# missing.
#
# Usage: images/nginx/build-image.sh [--force]
# Last line of stdout: the image name.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"
# shellcheck source=../lib/image.sh
. "$here/../lib/image.sh"
# shellcheck source=versions.env
. "$here/versions.env"
COMPAT_LOG_TAG=nginx-image

compat_image_args "$@"

image=${COMPAT_NGINX_REFERENCE_IMAGE:-$(compat_reference_image nginx "$NGINX_DEB_VERSION")}

testlib=$("$here/fetch-test-nginx.sh" | tail -n 1)
[ -f "$testlib/Test/Nginx/Socket.pm" ] || compat_die "fetch-test-nginx.sh gave no Test::Nginx library ($testlib)"
compat_image_begin nginx "$image" "nginx/fetch-test-nginx.sh"

# Debian's autopkgtests of this nginx (debian/tests/control of its source)
# run in this image too, so it gets what they depend on: the flavour
# metapackages, every module they list, curl and ssl-cert. Packages built
# from the nginx source require its exact version and are pinned to it;
# the other modules come in their bookworm versions. nginx-dev (abicheck,
# which compares headers with older releases downloaded from the archive)
# is left out: the adapter skips that test.
compat_private_apt "$tmp/apt" deb-src
dsc=$(compat_fetch_source nginx "$NGINX_DEB_VERSION" "$tmp")
tar -xJf "${dsc%.dsc}.debian.tar.xz" -C "$tmp" debian/tests/control ||
	compat_die "no debian/tests/control in ${dsc%.dsc}.debian.tar.xz"
own=" $(sed -n 's/^Binary: //p' "$dsc" | tr -d ',') "
autopkgtest_pkgs=$(awk '
	/^Tests:/ { tests = $2 }
	/^[A-Za-z-]+:/ { dep = 0 }
	/^Depends:/ { dep = 1; sub(/^Depends:/, "") }
	/^$/ { dep = 0 }
	dep && tests != "abicheck" { print }
' "$tmp/debian/tests/control" | tr ',' '\n' | sed -e 's/\[[^]]*\]//g' -e 's/([^)]*)//g' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u |
	while read -r p; do
		case "$p" in
		libnginx-mod-http-ndk | libnginx-mod-http-echo | libnginx-mod-http-headers-more-filter | libnginx-mod-http-set-misc) ;; # pinned below
		*) case "$own" in *" $p "*) printf '%s=%s ' "$p" "$NGINX_DEB_VERSION" ;; *) printf '%s ' "$p" ;; esac ;;
		esac
	done)
[ -n "$autopkgtest_pkgs" ] || compat_die "found no Depends in the nginx source's debian/tests/control"
mkdir -p "$tmp/context"
cp "$here/Dockerfile" "$tmp/context/Dockerfile"
cp -a "$testlib" "$tmp/context/test-nginx"
compat_image_build "$image" "$recipe" "$tmp/context" "$log" \
	"if apt could not find a pinned version, the archive has moved on: update images/nginx/versions.env" \
	--build-arg "BASE_IMAGE=$base" \
	--build-arg "NGINX_DEB_VERSION=$NGINX_DEB_VERSION" \
	--build-arg "NDK_DEB_VERSION=$NDK_DEB_VERSION" \
	--build-arg "ECHO_DEB_VERSION=$ECHO_DEB_VERSION" \
	--build-arg "HEADERS_MORE_DEB_VERSION=$HEADERS_MORE_DEB_VERSION" \
	--build-arg "SET_MISC_DEB_VERSION=$SET_MISC_DEB_VERSION" \
	--build-arg "AUTOPKGTEST_PACKAGES=$autopkgtest_pkgs"

docker run --rm "$image" sh -c "dpkg-query -W -f '\${Version}' nginx | grep -qxF '$NGINX_DEB_VERSION'" ||
	compat_die "$image does not hold nginx $NGINX_DEB_VERSION"
docker run --rm "$image" sh -c 'for m in ndk_http ngx_http_echo ngx_http_headers_more_filter ngx_http_set_misc; do test -f /usr/lib/nginx/modules/${m}_module.so || { echo "missing module $m" >&2; exit 1; }; done' ||
	compat_die "$image lacks one of the module .so files"
compat_image_drop_replaced "$image"
compat_log "built $image (nginx $NGINX_DEB_VERSION) in $(($(date +%s) - start)) s, $(($(docker image inspect -f '{{.Size}}' "$image") / 1000000)) MB"
printf '%s\n' "$image"
