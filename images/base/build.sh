#!/usr/bin/env bash
# Builds the local Debian base image (default compat/bookworm-base:latest)
# with debootstrap, slimmed the way Debian's official "slim" images are.
# Nothing is pulled from a container registry; the Debian mirror is read
# from the host's /etc/apt at run time.
#
# Usage: images/base/build.sh [--force]
# Env:   COMPAT_BASE_IMAGE (default compat/bookworm-base:latest)
#        COMPAT_DIST       (default bookworm)
# Last line of stdout: the image name.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"
COMPAT_LOG_TAG=base

image=${COMPAT_BASE_IMAGE:-compat/${COMPAT_DIST}-base:latest}
force=no
case "${1:-}" in
--force) force=yes ;;
"") ;;
*) compat_die "unknown argument '$1' (usage: $0 [--force])" ;;
esac

compat_need docker docker.io
docker info >/dev/null 2>&1 || compat_die "the Docker engine does not answer ('docker info' failed); start it and retry"

# The image carries a hash of this recipe; a changed recipe rebuilds it.
images=$(cd "$here/.." && pwd)
recipe=$(compat_hash "$images" "base/build.sh lib/common.sh" "dist=$COMPAT_DIST")
if [ "$force" = no ] && docker image inspect "$image" >/dev/null 2>&1; then
	have=$(docker image inspect -f '{{ index .Config.Labels "compat.recipe" }}' "$image" 2>/dev/null || true)
	if [ "$have" = "$recipe" ]; then
		compat_log "$image already present and up to date (use --force to rebuild)"
		printf '%s\n' "$image"
		exit 0
	fi
	compat_log "$image exists but was built from another recipe (${have:-none}); rebuilding"
fi

[ "$(id -u)" = 0 ] || compat_die "debootstrap needs root; run this as root"
compat_need debootstrap debootstrap

mirror=$(compat_debian_mirror)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/compat-base.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
rootfs=$tmp/rootfs
start=$(date +%s)

compat_log "debootstrap --variant=minbase $COMPAT_DIST (mirror taken from /etc/apt)"
if ! nice debootstrap --variant=minbase "$COMPAT_DIST" "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
	tail -n 30 "$tmp/debootstrap.log" >&2
	[ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
	compat_die "debootstrap failed (log above); check that the Debian mirror in /etc/apt is reachable"
fi

# --- slim it down ----------------------------------------------------------
aptconf=$rootfs/etc/apt/apt.conf.d
mkdir -p "$aptconf" "$rootfs/etc/dpkg/dpkg.cfg.d"

cat >"$aptconf/docker-clean" <<'CONF'
// Drop downloaded .deb files and apt's binary caches after every dpkg run:
// in an image each layer would keep them for nothing.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
cat >"$aptconf/docker-no-languages" <<'CONF'
// Do not fetch translated package descriptions.
Acquire::Languages "none";
CONF
cat >"$aptconf/docker-gzip-indexes" <<'CONF'
// Keep package lists compressed on disk.
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
CONF
cat >"$aptconf/docker-no-recommends" <<'CONF'
// Install only hard dependencies.
APT::Install-Recommends "false";
APT::Install-Suggests "false";
CONF
cat >"$aptconf/docker-autoremove-suggests" <<'CONF'
// Let autoremove drop packages that are only suggested.
Apt::AutoRemove::SuggestsImportant "false";
CONF
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" <<'CONF'
# Images are rebuilt rather than repaired: skip fsync during unpacking.
force-unsafe-io
CONF
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-excludes" <<'CONF'
# Leave documentation, manuals and translations out of the image
# (copyright files stay).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CONF
# Remove what debootstrap already unpacked under those paths.
find "$rootfs/usr/share/doc" -mindepth 1 \( -type f -o -type l \) ! -name copyright -delete 2>/dev/null || true
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
for d in man groff info lintian linda; do
	rm -rf "${rootfs:?}/usr/share/$d"/*
done
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true

# apt sources of the image: the host's Debian entries, re-targeted at DIST.
rm -f "$rootfs/etc/apt/sources.list"
compat_write_sources_list deb "$rootfs/etc/apt/sources.list.d/debian.list"

# No caches, logs or host identity in the image.
rm -rf "${rootfs:?}"/var/lib/apt/lists/* "${rootfs:?}"/var/cache/apt/*.bin \
	"${rootfs:?}"/var/cache/apt/archives/*.deb "${rootfs:?}"/var/cache/apt/archives/partial/* \
	"${rootfs:?}"/var/log/bootstrap.log "${rootfs:?}"/tmp/* "${rootfs:?}"/var/tmp/* \
	"${rootfs:?}"/debootstrap
mkdir -p "$rootfs/var/lib/apt/lists/partial"
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"

old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
compat_log "docker import -> $image"
if ! tar --numeric-owner -C "$rootfs" -c . |
	docker import \
		-c 'CMD ["bash"]' \
		-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		-c 'ENV LANG=C.UTF-8' \
		-c "LABEL compat.recipe=$recipe" \
		-m "debootstrap --variant=minbase $COMPAT_DIST, slimmed (images/base/build.sh)" \
		- "$image" >/dev/null; then
	compat_die "docker import of the root file system failed"
fi

# Sanity check: apt works inside and the sources are there.
docker run --rm "$image" sh -c 'test -s /etc/apt/sources.list.d/debian.list && apt-get --version >/dev/null' ||
	compat_die "the new image $image does not run 'apt-get --version'"

size=$(docker image inspect -f '{{.Size}}' "$image")
# Drop the image this one replaced, if nothing else uses it.
new_id=$(docker image inspect -f '{{.Id}}' "$image")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
	docker image rm "$old_id" >/dev/null 2>&1 || true
fi
compat_log "built $image in $(($(date +%s) - start)) s, $((size / 1000000)) MB"
printf '%s\n' "$image"
