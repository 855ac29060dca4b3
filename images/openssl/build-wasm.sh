#!/usr/bin/env bash
# Builds OpenSSL's libcrypto and libssl for wasm32-wasi from Debian
# bookworm's own openssl source package (Debian's patches, then ours from
# patches/openssl/), with Debian's clang-14 and wasi-libc: the static
# libraries and headers that python.wasm (_ssl, _hashlib) and nginx.wasm
# (http_ssl, stream_ssl, mail_ssl) link. Their recipes run this one and
# take its output directory (the last line of stdout); its recipe files are
# part of their cache keys.
#
# Configuration (wasm32-wasi.conf is the Configure target): C only (no-asm),
# no threads (wasi-libc 2022-05 has no pthreads), static only, no DSO, no
# engines, no async (no ucontext), no console UI (no termios), no secure
# heap (no mlock), no KTLS/SCTP/AF_ALG. Sockets (BIO_s_socket, which
# SSL_set_fd uses; BIO_s_connect, BIO_lookup) are compiled against the
# socket headers of images/lib/vkposix's net part (include-net: Linux's
# constants, getaddrinfo): a program linking libcrypto links libvkposix.a
# or libvkposix-net.a, whose socket(), connect(), getaddrinfo() ... run
# over the vkernel's socket calls. Randomness is wasi-libc's getentropy()
# over WASI's random_get (patches/openssl/wasi-getentropy.patch). The
# configuration directory is Debian's, /usr/lib/ssl (openssl.cnf, certs/,
# cert.pem in the guest's view).
#
# Output (not in git):
#   ${COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compat}/openssl-wasm/<key>/
#     include/openssl/*.h    the headers (configuration.h for this target)
#     lib/libcrypto.a lib/libssl.a
#     build-info.json        versions, toolchain, Configure arguments,
#                            sizes, timings, the symbols the libraries
#                            leave for the program to define
#     .done                  written when everything else is in place
# <key> = first 16 hex digits of sha256 over this recipe's files (names and
# contents, vkposix's included) and the pinned version. If the output
# exists this is instant. The last line of stdout is the output directory.
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
COMPAT_LOG_TAG=openssl-wasm

# ---------------------------------------------------------------- cache key
# openssl_recipe_files (openssl/recipe-files.sh) is the list the consuming
# recipes add to their own keys.
# shellcheck source=recipe-files.sh
. "$here/recipe-files.sh"
compat_wasm_begin openssl-wasm "$(openssl_recipe_files)" "openssl=$OPENSSL_DEB_VERSION"

# ------------------------------------------------------------- tool checks
compat_wasm_need_toolchain
compat_need make make
compat_need perl perl
compat_need llvm-nm-14 llvm-14
compat_wasm_work

# ---------------------------------------------------- vkposix's net headers
vkposix=$work/vkposix
run_logged "vkposix" "$logs/vkposix.log" compat_heavy "$images/lib/vkposix/build.sh" "$vkposix" clang-14
compat_need_output "vkposix" "$logs/vkposix.log" "$vkposix/include-net/sys/socket.h" "$vkposix/include-net/netdb.h"

# ----------------------------------------------------------------- openssl
unpack openssl "$OPENSSL_DEB_VERSION" "$work/src"
src=$work/src
configure_args=(
	wasm32-wasi
	--config="$here/wasm32-wasi.conf"
	--prefix=/usr
	--openssldir=/usr/lib/ssl
	--libdir=lib
	no-asm
	no-threads
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
# getpid(): wasi-libc declares it only with _WASI_EMULATED_GETPID (vkposix
# or -lwasi-emulated-getpid defines it in the program).
ossl_cflags="-O2 -g -I$vkposix/include-net -D_WASI_EMULATED_GETPID"
t0=$(date +%s)
run_logged "Configure" "$logs/configure.log" compat_heavy env -C "$src" \
	CC="$CC_WASI" CFLAGS="$ossl_cflags" AR=llvm-ar-14 RANLIB=llvm-ranlib-14 \
	perl ./Configure "${configure_args[@]}"
grep -q '^# *define OPENSSL_NO_ASM' "$src/include/openssl/configuration.h" ||
	fail "Configure (configuration.h does not say OPENSSL_NO_ASM)" "$logs/configure.log"
t_configure=$(($(date +%s) - t0))

# The two libraries only: build_libs would build the apps' helper library
# too, which needs signals.
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
# The public headers, the generated ones (in-tree build) included: what
# make install_dev installs.
cp "$src"/include/openssl/*.h "$new/include/openssl/"
cp "$src/libcrypto.a" "$src/libssl.a" "$new/lib/"
# What the libraries leave undefined for the program (wasi-libc and
# vkposix's net part define them): defined minus undefined over both.
llvm-nm-14 --defined-only -j "$new/lib/libcrypto.a" "$new/lib/libssl.a" 2>/dev/null | sort -u >"$work/defined.txt"
llvm-nm-14 --undefined-only -j "$new/lib/libcrypto.a" "$new/lib/libssl.a" 2>/dev/null | sort -u >"$work/undefined.txt"
comm -13 "$work/defined.txt" "$work/undefined.txt" | grep -v ':$' | grep -v '^$' >"$work/needs.txt" || true

# ------------------------------------------------------------ build info
pkgver() { compat_pkgver "$1"; }
t_total=$(($(date +%s) - t_start))
INFO_KEY=$key INFO_OUT=$new INFO_WORK=$work INFO_VERSION=$OPENSSL_DEB_VERSION \
	INFO_UPSTREAM="$(sed -n 's/^# *define OPENSSL_VERSION_TEXT *"\(.*\)"/\1/p' "$new/include/openssl/opensslv.h")" \
	INFO_CLANG=$(pkgver clang-14) INFO_LLD=$(pkgver lld-14) INFO_LLVM=$(pkgver llvm-14) \
	INFO_WASILIBC=$(pkgver wasi-libc) INFO_CFLAGS="$ossl_cflags" \
	INFO_CONFIGURE="$(printf '%s\n' "${configure_args[@]}")" \
	INFO_T_CONFIGURE=$t_configure INFO_T_MAKE=$t_make INFO_T_TOTAL=$t_total \
	python3 -E - <<'PY' || compat_die "writing build-info.json failed"
import json, os
e = os.environ
out = e["INFO_OUT"]; work = e["INFO_WORK"]
with open(os.path.join(work, "needs.txt")) as f:
    needs = sorted(l.strip() for l in f if l.strip())
info = {
    "key": e["INFO_KEY"],
    "source": {"package": "openssl", "version": e["INFO_VERSION"], "distribution": "debian bookworm"},
    "openssl_version": e["INFO_UPSTREAM"],
    "target": "wasm32-wasi",
    "configure_args": [a for a in e["INFO_CONFIGURE"].split("\n") if a and not a.startswith("--config=")],
    "cflags": e["INFO_CFLAGS"].split()[:2] + [f for f in e["INFO_CFLAGS"].split()[2:] if not f.startswith("-I")],
    "toolchain": {
        "clang-14": e["INFO_CLANG"], "lld-14": e["INFO_LLD"], "llvm-14": e["INFO_LLVM"],
        "wasi-libc": e["INFO_WASILIBC"],
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
