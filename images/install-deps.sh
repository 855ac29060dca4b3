#!/usr/bin/env bash
# Installs the Debian packages that compat's recipes and tests need (root).
# `make run` and `make test` call it through the Makefile's deps stamp, so a
# fresh Debian 12 machine with Go and Docker needs nothing else.
#
# Usage: images/install-deps.sh [--check] [SET...]
#   SET: base, wasm, test, nginx-test, runner, all (default all; runner is
#        not in all: it is what images/runner installs)
#   --check  install nothing: list what is missing and exit 1 if anything is
#
# Every package is named here and nowhere else; `make deps` reruns this
# script when it or the host's dpkg state changes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"
COMPAT_LOG_TAG=install-deps

# base: the local base image (debootstrap + docker import).
base_pkgs="debootstrap"
# wasm: the WebAssembly builds (images/*/build-wasm.sh) and the test guests;
# python.wasm is built with the -19 toolchain (faster code), the others with -14;
# OpenSSL's Configure is Perl.
wasm_pkgs="clang-14 lld-14 llvm-14 wasi-libc libclang-rt-14-dev-wasm32 wabt binaryen
  clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32
  autoconf dpkg-dev gcc make tcl patch util-linux python3 xz-utils perl"
# test: what the Go tests and the quick profile run on the host: the JUnit
# schema check, Debian's own python3.11 with its regrtest, redis-server for
# the differential check, ps for runtest; the native servers and load
# generators of compat bench redis and nginx (redis-benchmark is in
# redis-tools); chromium renders report.html headless in its test; the
# openssl command makes the certificates of the TLS tests.
test_pkgs="libxml2-utils python3.11 libpython3.11-testsuite redis-server redis-tools procps perl
  nginx-light wrk chromium openssl"
# nginx-test: Test::Nginx's Perl dependencies (Test::Nginx itself comes from
# images/nginx/fetch-test-nginx.sh).
nginx_test_pkgs="libtest-base-perl libtest-longstring-perl liblist-moreutils-perl libwww-perl
  libtext-diff-perl liburi-perl"

# runner: the host side of compat run in the runner image (images/runner):
# Tcl for Redis' runtest, Perl and Test::Nginx's modules for the NGINX
# harnesses, ps, the JUnit schema check; the reference runs in containers of
# the host's Docker, so no docker package.
runner_pkgs="tcl perl procps libxml2-utils ca-certificates $nginx_test_pkgs"

check=no
if [ "${1:-}" = --check ]; then
	check=yes
	shift
fi
[ $# -gt 0 ] || set -- all
pkgs=
for set in "$@"; do
	case $set in
	base) pkgs="$pkgs $base_pkgs" ;;
	wasm) pkgs="$pkgs $wasm_pkgs" ;;
	test) pkgs="$pkgs $test_pkgs" ;;
	nginx-test) pkgs="$pkgs $nginx_test_pkgs" ;;
	runner) pkgs="$pkgs $runner_pkgs" ;;
	all) pkgs="$pkgs $base_pkgs $wasm_pkgs $test_pkgs $nginx_test_pkgs" ;;
	*) compat_die "unknown set '$set' (base, wasm, test, nginx-test, runner or all)" ;;
	esac
done

missing=
for p in $pkgs; do
	case " $missing " in *" $p "*) continue ;; esac
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
# Docker is started before a session and may come from another package than
# docker.io: any docker client that answers will do. The runner image talks
# to the host's Docker through its socket and needs no client.
case " $* " in
*" runner "*) ;;
*) command -v docker >/dev/null 2>&1 || missing="$missing docker.io" ;;
esac

if [ -z "$missing" ]; then
	compat_log "all present"
	exit 0
fi
if [ "$check" = yes ]; then
	compat_log "missing:$missing"
	exit 1
fi
[ "$(id -u)" = 0 ] || compat_die "missing packages:$missing; run as root or: apt-get install -y$missing"
compat_log "installing:$missing"
apt-get update -q >/dev/null || compat_die "apt-get update failed; check /etc/apt and that the Debian archive answers"
# redis-server and nginx-light are wanted as programs, not as services:
# Debian's maintainer scripts would start them on ports 6379 and 80. A
# policy-rc.d that answers 101 ("action forbidden", invoke-rc.d(8)) keeps
# them stopped; one the host already has is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# compat images/install-deps.sh: no service starts while it installs\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null ||
	compat_die "apt-get install$missing failed"
# Check again: apt-get can succeed and still leave a package out.
still=
for p in $missing; do
	[ "$p" = docker.io ] && continue
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || still="$still $p"
done
[ -z "$still" ] || compat_die "still missing after apt-get install:$still"
compat_log "installed:$missing"
