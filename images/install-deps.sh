#!/usr/bin/env bash
# Installs the Debian packages the image recipes need (run as root).
# Usage: images/install-deps.sh [base|python-wasm|python-image|all]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
COMPAT_LOG_TAG=install-deps

base_pkgs="debootstrap docker.io"
wasm_pkgs="clang-14 lld-14 llvm-14 wasi-libc libclang-rt-14-dev-wasm32 wabt autoconf dpkg-dev gcc make tcl patch util-linux"
case "${1:-all}" in
base | python-image) pkgs=$base_pkgs ;;
python-wasm) pkgs=$wasm_pkgs ;;
all) pkgs="$base_pkgs $wasm_pkgs" ;;
*) compat_die "unknown set '$1' (base, python-wasm, python-image or all)" ;;
esac

missing=
for p in $pkgs; do
	# docker may come from another package than docker.io: accept any docker.
	if [ "$p" = docker.io ] && command -v docker >/dev/null 2>&1; then
		continue
	fi
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -z "$missing" ]; then
	compat_log "all present: $pkgs"
	exit 0
fi
[ "$(id -u)" = 0 ] || compat_die "missing packages:$missing; run as root or: apt-get install -y$missing"
compat_log "installing:$missing"
apt-get update -q >/dev/null || compat_die "apt-get update failed"
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null ||
	compat_die "apt-get install$missing failed"
compat_log "installed:$missing"
