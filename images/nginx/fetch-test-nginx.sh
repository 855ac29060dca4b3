#!/usr/bin/env bash
# Fetches OpenResty's Test::Nginx (Debian's libtest-nginx-perl, pure Perl)
# from Debian sid, the only suite that has it: a private sid list is derived
# from the host's Debian entry in /etc/apt (private lists and cache; the
# host's apt state is untouched). The source package is preferred; when the
# archive does not serve it, the binary package of the same version (the
# same .pm files) is unpacked instead.
# With --deps it also installs the Perl modules Test::Nginx needs from the
# host's own Debian release (root only).
#
# Output: ${COMPAT_CACHE:-~/.cache/compat}/test-nginx/<version>/lib
#         (Test/Nginx.pm, Test/Nginx/Socket.pm, ...), printed as the last
#         line of stdout. Instant when present.
#
# Usage: images/nginx/fetch-test-nginx.sh [--deps]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"
# shellcheck source=versions.env
. "$here/versions.env"
COMPAT_LOG_TAG=test-nginx

perl_deps="libtest-base-perl libtest-longstring-perl liblist-moreutils-perl libwww-perl libtext-diff-perl liburi-perl"

if [ "${1:-}" = --deps ]; then
	missing=
	for p in $perl_deps; do
		dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		[ "$(id -u)" = 0 ] || compat_die "missing Perl packages:$missing; run as root or: apt-get install -y$missing"
		compat_log "installing:$missing"
		apt-get update -q >/dev/null || compat_die "apt-get update failed"
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null ||
			compat_die "apt-get install$missing failed"
	fi
fi

ver=$TEST_NGINX_DEB_VERSION
out=$(compat_cache_root)/test-nginx/$ver
if [ -f "$out/.done" ]; then
	printf '%s\n' "$out/lib"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/compat-test-nginx.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/logs"
compat_need dpkg-source dpkg-dev

# One-entry lists for sid, on the host's main Debian archive.
line=$(COMPAT_DIST=sid compat_debian_entries | awk -F '\t' '$2 == "sid" { print; exit }')
[ -n "$line" ] || compat_die "no Debian archive entry in /etc/apt to derive a sid list from"
IFS=$'\t' read -r uri _ _ sb <<<"$line"
opt=
if [ -n "$sb" ] && [ -r "$sb" ]; then opt="[signed-by=$sb] "; fi
apt_sid() { # apt_sid TYPE CMD ARGS...: apt with a private TYPE list for sid
	local type=$1 d=$tmp/apt-$1
	shift
	if [ ! -d "$d" ]; then
		mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
		printf '%s %s%s sid main\n' "$type" "$opt" "$uri" >"$d/sources.list"
		apt-get -o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null \
			-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o Acquire::Languages=none \
			-q update >"$tmp/logs/update-$type.log" 2>&1 ||
			compat_die "apt-get update with a private sid $type list failed: $(tail -n 5 "$tmp/logs/update-$type.log")"
	fi
	"$@" -o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o Acquire::Languages=none \
		-o APT::Sandbox::User=root -q
}

# The source package first. This machine's mirror has answered 404 for its
# pool files while listing it; the binary package (arch all) holds the same
# lib/ files, under usr/share/perl5, so it stands in.
mkdir -p "$tmp/dl"
if (cd "$tmp/dl" && apt_sid deb-src apt-get source --download-only "libtest-nginx-perl=$ver") >"$tmp/logs/source.log" 2>&1 &&
	dpkg-source -x "$tmp"/dl/libtest-nginx-perl_*.dsc "$tmp/src" >>"$tmp/logs/source.log" 2>&1; then
	lib=$tmp/src/lib
	from="source package"
else
	compat_log "apt-get source libtest-nginx-perl=$ver failed ($(grep -m1 -o '404 *Not Found' "$tmp/logs/source.log" || echo see log)); using the binary package of the same version"
	(cd "$tmp/dl" && apt_sid deb apt-get download "libtest-nginx-perl=$ver") >"$tmp/logs/download.log" 2>&1 ||
		compat_die "apt-get download libtest-nginx-perl=$ver failed too: $(tail -n 5 "$tmp/logs/download.log")"
	dpkg-deb -x "$tmp"/dl/libtest-nginx-perl_*.deb "$tmp/deb"
	lib=$tmp/deb/usr/share/perl5
	from="binary package"
fi
[ -f "$lib/Test/Nginx/Socket.pm" ] || compat_die "libtest-nginx-perl $ver ($from) has no Test/Nginx/Socket.pm"
rm -rf "$out.new"
mkdir -p "$out.new"
cp -a "$lib" "$out.new/lib"
printf '%s\n' "$from" >"$out.new/from"
date -u +%Y-%m-%dT%H:%M:%SZ >"$out.new/.done"
rm -rf "$out"
mv "$out.new" "$out"
compat_log "Test::Nginx $ver in $out/lib"
printf '%s\n' "$out/lib"
