#!/usr/bin/env bash
# Builds OpenSSL's libcrypto and libssl with threads for wasm32-wasi-threads:
# the OpenSSL that python.wasm with threads (images/python/build-wasm.sh,
# COMPAT_PY_THREADS=yes) links for _ssl and _hashlib, which refuse an
# OpenSSL without threads in an interpreter with them
# (patches/python3.11/wasi-openssl-no-threads.patch there).
#
# The same source, Debian patches, our patches (patches/openssl/) and
# Configure options as build-wasm.sh, except: the target is
# wasm32-wasi-threads (wasm32-wasi-threads.conf, which inherits
# wasm32-wasi.conf's target), threads are on with OpenSSL's pthreads scheme,
# and the compiler is clang-19 --target=wasm32-wasi-threads -pthread against
# images/wasi-libc-threads' sysroot (built first; its output key is part of
# this key), every object with atomics and bulk memory as a shared memory
# needs. That sysroot has what crypto/threads_pthread.c of 3.0 uses
# (pthread_rwlock_*, pthread_once, pthread_key_* for thread-locals,
# pthread_self/equal, ERRORCHECK mutexes; its fork handlers are a no-op in
# 3.0, so no pthread_atfork) and the __atomic builtins are wasm atomics.
#
# A recipe of its own rather than a switch in build-wasm.sh: that one's
# files are the key of the default OpenSSL and part of python's and
# nginx's keys, which stay as they are until threads become python's
# default (then the two merge).
#
# Output (not in git):
#   ${COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compat}/openssl-wasm-threads/<key>/
#     include/openssl/*.h    the headers (configuration.h for this target)
#     lib/libcrypto.a lib/libssl.a
#     build-info.json        as build-wasm.sh's, with "threads": "pthreads",
#                            the target and the sysroot it was built against
#     .done                  written when everything else is in place
# <key> = first 16 hex digits of sha256 over the OpenSSL recipe's files
# (openssl_recipe_files), this file, wasm32-wasi-threads.conf, the pinned
# version and the wasi-libc-threads output key. The last line of stdout is
# the output directory.
#
# Env: COMPAT_CACHE, COMPAT_JOBS (default 2), COMPAT_KEEP_WORK=1 (keep the
#      build tree), COMPAT_HEAVY_LOCK (lib/wasm.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
images=$(cd "$here/.." && pwd)
# shellcheck source=../lib/common.sh
. "$images/lib/common.sh"
# shellcheck source=../lib/wasm.sh
. "$images/lib/wasm.sh"
# shellcheck source=versions.env
. "$here/versions.env"
COMPAT_LOG_TAG=openssl-wasm-threads
llvm=19

# ---------------------------------------------------------------- cache key
# shellcheck source=recipe-files.sh
. "$here/recipe-files.sh"
# The threads sysroot is a recipe of its own (cached by content).
threads_out=$("$images/wasi-libc-threads/build-wasm.sh" | tail -n 1)
[ -f "$threads_out/.done" ] || compat_die "images/wasi-libc-threads/build-wasm.sh did not produce a sysroot"
compat_wasm_begin openssl-wasm-threads \
	"$(openssl_recipe_files) openssl/build-wasm-threads.sh openssl/wasm32-wasi-threads.conf" \
	"openssl=$OPENSSL_DEB_VERSION llvm=$llvm wasi-libc-threads=$(basename "$threads_out")"

# ------------------------------------------------------------- tool checks
compat_need dpkg-source dpkg-dev
compat_need apt-get apt
compat_need flock util-linux
compat_need patch patch
compat_need python3 python3
compat_need make make
compat_need perl perl
compat_need "clang-$llvm" "clang-$llvm"
compat_need "llvm-ar-$llvm" "llvm-$llvm"
compat_need "llvm-ranlib-$llvm" "llvm-$llvm"
compat_need "llvm-nm-$llvm" "llvm-$llvm"
compat_wasm_work
target="--target=wasm32-wasi-threads -pthread --sysroot=$threads_out/sysroot"
cc="clang-$llvm $target"

# ---------------------------------------------------- vkposix's net headers
# Only its headers are used here; built for the same target all the same.
vkposix=$work/vkposix
VKPOSIX_TARGET=$target run_logged "vkposix" "$logs/vkposix.log" compat_heavy \
	"$images/lib/vkposix/build.sh" "$vkposix" "clang-$llvm"
compat_need_output "vkposix" "$logs/vkposix.log" "$vkposix/include-net/sys/socket.h" "$vkposix/include-net/netdb.h"

# ----------------------------------------------------------------- openssl
unpack openssl "$OPENSSL_DEB_VERSION" "$work/src"
src=$work/src
# build-wasm.sh's options with threads instead of no-threads.
configure_args=(
	wasm32-wasi-threads
	--config="$here/wasm32-wasi.conf"
	--config="$here/wasm32-wasi-threads.conf"
	--prefix=/usr
	--openssldir=/usr/lib/ssl
	--libdir=lib
	no-asm
	threads
	no-shared
	no-dso
	no-engine
	no-afalgeng
	no-devcryptoeng
	no-async
	no-ui-console
	no-secure-memory
	no-ktls
	no-sctp
	no-tests
)
ossl_cflags="-O2 -g -I$vkposix/include-net -D_WASI_EMULATED_GETPID"
t0=$(date +%s)
run_logged "Configure" "$logs/configure.log" compat_heavy env -C "$src" \
	CC="$cc" CFLAGS="$ossl_cflags" AR="llvm-ar-$llvm" RANLIB="llvm-ranlib-$llvm" \
	perl ./Configure "${configure_args[@]}"
grep -q '^# *define OPENSSL_NO_ASM' "$src/include/openssl/configuration.h" ||
	fail "Configure (configuration.h does not say OPENSSL_NO_ASM)" "$logs/configure.log"
# Threads on: configuration.h must not say OPENSSL_NO_THREADS, and the
# pthreads scheme must be the one compiled.
if grep -q '^# *define OPENSSL_NO_THREADS' "$src/include/openssl/configuration.h"; then
	fail "Configure (configuration.h says OPENSSL_NO_THREADS)" "$logs/configure.log"
fi
grep -q 'thread_scheme.*pthreads' "$src/configdata.pm" ||
	fail "Configure (thread scheme is not pthreads in configdata.pm)" "$logs/configure.log"
t_configure=$(($(date +%s) - t0))

t0=$(date +%s)
run_logged "make build_generated" "$logs/make-generated.log" compat_heavy make -C "$src" build_generated
run_logged "make -j$jobs libcrypto.a libssl.a" "$logs/make.log" compat_heavy make -C "$src" -j"$jobs" libcrypto.a libssl.a
t_make=$(($(date +%s) - t0))
compat_need_output "make" "$logs/make.log" "$src/libcrypto.a" "$src/libssl.a" \
	"$src/include/openssl/configuration.h" "$src/include/openssl/opensslv.h"

# ------------------------------------------------------------- assemble
new=$outroot/.new-$key
rm -rf "$new"
mkdir -p "$new/lib" "$new/include/openssl"
cp "$src"/include/openssl/*.h "$new/include/openssl/"
cp "$src/libcrypto.a" "$src/libssl.a" "$new/lib/"
"llvm-nm-$llvm" --defined-only -j "$new/lib/libcrypto.a" "$new/lib/libssl.a" 2>/dev/null | sort -u >"$work/defined.txt"
"llvm-nm-$llvm" --undefined-only -j "$new/lib/libcrypto.a" "$new/lib/libssl.a" 2>/dev/null | sort -u >"$work/undefined.txt"
comm -13 "$work/defined.txt" "$work/undefined.txt" | grep -v ':$' | grep -v '^$' >"$work/needs.txt" || true
# What the libraries leave to the program must be in the threads sysroot's
# libc (or vkposix's net part): a pthread function the sysroot lacks would
# otherwise only show when python.wasm links.
"llvm-nm-$llvm" --defined-only -j "$threads_out/sysroot/lib/wasm32-wasi-threads/libc.a" 2>/dev/null |
	grep -v ':$' | sort -u >"$work/libc-defined.txt"
missing=$({ grep '^pthread_' "$work/needs.txt" || true; } | comm -23 - "$work/libc-defined.txt" | tr '\n' ' ')
[ -z "$missing" ] || compat_die "libcrypto/libssl need pthread functions the wasi-libc-threads sysroot lacks: $missing"

# ------------------------------------------------------------ build info
t_total=$(($(date +%s) - t_start))
INFO_KEY=$key INFO_OUT=$new INFO_WORK=$work INFO_VERSION=$OPENSSL_DEB_VERSION \
	INFO_UPSTREAM="$(sed -n 's/^# *define OPENSSL_VERSION_TEXT *"\(.*\)"/\1/p' "$new/include/openssl/opensslv.h")" \
	INFO_CLANG=$(compat_pkgver "clang-$llvm") INFO_LLVM=$(compat_pkgver "llvm-$llvm") \
	INFO_THREADS_SYSROOT=$threads_out INFO_CFLAGS="$ossl_cflags" \
	INFO_CONFIGURE="$(printf '%s\n' "${configure_args[@]}")" \
	INFO_T_CONFIGURE=$t_configure INFO_T_MAKE=$t_make INFO_T_TOTAL=$t_total \
	python3 -E - <<'PY' || compat_die "writing build-info.json failed"
import json, os
e = os.environ
out = e["INFO_OUT"]; work = e["INFO_WORK"]
with open(os.path.join(work, "needs.txt")) as f:
    needs = sorted(l.strip() for l in f if l.strip())
with open(os.path.join(e["INFO_THREADS_SYSROOT"], "build-info.json")) as f:
    sysroot_info = json.load(f)
info = {
    "key": e["INFO_KEY"],
    "source": {"package": "openssl", "version": e["INFO_VERSION"], "distribution": "debian bookworm"},
    "openssl_version": e["INFO_UPSTREAM"],
    "target": "wasm32-wasi-threads",
    "threads": "pthreads",
    "configure_args": [a for a in e["INFO_CONFIGURE"].split("\n") if a and not a.startswith("--config=")],
    "cflags": e["INFO_CFLAGS"].split()[:2] + [f for f in e["INFO_CFLAGS"].split()[2:] if not f.startswith("-I")],
    "toolchain": {
        "clang-19": e["INFO_CLANG"], "llvm-19": e["INFO_LLVM"],
        "wasi-libc-threads": {"build": e["INFO_THREADS_SYSROOT"], "key": sysroot_info["key"],
                              "source": sysroot_info["source"]["version"]},
    },
    "sizes": {n: os.path.getsize(os.path.join(out, "lib", n)) for n in ("libcrypto.a", "libssl.a")},
    "timings_s": {
        "configure": int(e["INFO_T_CONFIGURE"]), "make": int(e["INFO_T_MAKE"]),
        "total": int(e["INFO_T_TOTAL"]),
    },
    "undefined_symbols": needs,
}
with open(os.path.join(out, "build-info.json"), "w") as f:
    json.dump(info, f, indent=2)
    f.write("\n")
PY

compat_log "done in ${t_total} s: libcrypto.a $(($(stat -c %s "$new/lib/libcrypto.a") / 1000)) kB, libssl.a $(($(stat -c %s "$new/lib/libssl.a") / 1000)) kB"
compat_wasm_publish "$new"
