#!/usr/bin/env bash
# Builds nginx.wasm (wasm32-wasi, for compat's vkernel) from Debian bookworm's
# own nginx source package, with Debian's clang-14/lld-14/wasi-libc. zlib and
# PCRE2 are cross-built from Debian's sources (gzip, rewrite and regex
# locations work), OpenSSL comes from images/openssl (its own cached build,
# run from here: http_ssl, stream_ssl, mail_ssl, HTTP/2's ALPN, set-misc's
# set_hmac_*); the third-party modules whose test suites compat runs
# (ngx_devel_kit, echo, headers-more, set-misc) are compiled in statically
# from Debian's source packages. The file part of images/lib/vkposix
# (libvkposix-fs.a: real stat modes, chmod, umask, the directories above
# the mounts) and its net part (libvkposix-net.a: BSD sockets, getaddrinfo)
# are linked in; the port keeps its own users, processes and signals.
#
# The port: port/ (ngx_wasi.c, ngx_wasi.h, auto/os/wasi: copied into the
# tree) and patches/<source package>/*.patch (applied after Debian's own).
# Configure runs as for a cross build (--crossbuild=wasi) and its test
# programs run as WebAssembly in the vkernel (wasi-cc, wasi-run), so sizeof
# and feature checks answer for the target.
#
# Output (not in git):
#   ${COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compat}/nginx-wasm/<key>/
#     nginx.wasm          stripped of DWARF (the name section is kept)
#     nginx.wasm.debug    the same with DWARF, for symbolised traps
#     tests/<module>/t/   the Test::Nginx suites of echo, headers-more and
#                         set-misc from their Debian sources
#     debian-tests/       nginx's autopkgtests (debian/tests) from its source
#     build-info.json     versions, toolchain, configure arguments, sizes,
#                         sha256, timings, wasm imports, "nginx -V"
#     .done               written when everything else is in place
# <key> = first 16 hex digits of sha256 over this recipe's files (names and
# contents) and the pinned versions. If the output exists this is instant.
# The last line of stdout is the output directory.
#
# Heavy steps (configure, make) take turns with other heavy builds
# (lib/wasm.sh's compat_heavy): the machine's two cores are shared.
#
# Env: COMPAT_CACHE, COMPAT_JOBS (default 2), COMPAT_KEEP_WORK=1 (keep the
#      build tree), COMPAT_GO (default go: builds the compat CLI that runs
#      configure's test programs).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
images=$(cd "$here/.." && pwd)
repo=$(cd "$images/.." && pwd)
# shellcheck source=../lib/common.sh
. "$images/lib/common.sh"
# shellcheck source=../lib/wasm.sh
. "$images/lib/wasm.sh"
# shellcheck source=versions.env
. "$here/versions.env"
COMPAT_LOG_TAG=nginx-wasm

# ---------------------------------------------------------------- cache key
recipe_files="nginx/build-wasm.sh nginx/versions.env nginx/wasi-cc nginx/wasi-run"
for p in "$here"/port/* "$here"/patches/*/*.patch; do
	if [ -e "$p" ]; then recipe_files="$recipe_files nginx/${p#"$here"/}"; fi
done
# vkposix is built here from its sources: they are part of the recipe.
recipe_files="$recipe_files $(cd "$images" && find lib/vkposix/build.sh lib/vkposix/ldflags lib/vkposix/src lib/vkposix/include -type f | LC_ALL=C sort | tr '\n' ' ')"
# The OpenSSL it links (images/openssl): that recipe's files.
# shellcheck source=../openssl/recipe-files.sh
. "$images/openssl/recipe-files.sh"
recipe_files="$recipe_files $(openssl_recipe_files)"
pins="nginx=$NGINX_DEB_VERSION zlib=$ZLIB_DEB_VERSION pcre2=$PCRE2_DEB_VERSION ndk=$NDK_DEB_VERSION echo=$ECHO_DEB_VERSION headers-more=$HEADERS_MORE_DEB_VERSION set-misc=$SET_MISC_DEB_VERSION"
compat_wasm_begin nginx-wasm "$recipe_files" "$pins"

# ------------------------------------------------------------- tool checks
compat_wasm_need_toolchain
compat_need make make
go=${COMPAT_GO:-go}
compat_need "$go" golang-go
compat_wasm_work
deps=$work/deps
mkdir -p "$deps/include" "$deps/lib"

# ------------------------------------------- configure's test-program runner
# The compat CLI from this repository runs each test program in the vkernel
# (wasi-run), signed with a key made for this build.
run_dir=$work/run
mkdir -p "$run_dir"
run_logged "go build compat CLI" "$logs/go-build.log" \
	env -C "$repo" "$go" build -o "$run_dir/compat" ./cmd/compat
run_logged "compat keygen" "$logs/keygen.log" "$run_dir/compat" keygen -out "$run_dir/key"
export WASI_SYSROOT=$sysroot WASI_RUN=$here/wasi-run COMPAT_BIN=$run_dir/compat WASI_RUN_DIR=$run_dir

# ------------------------------------------------- vkposix (files, sockets)
# Only the file part (libvkposix-fs.a, ldflags-fs): stat/lstat/fstat/access
# report and check the host's mode bits (nginx's "if (-x ...)", "-f",
# open_file_cache), chmod and umask are real, open/mkdir apply the mode
# asked for, and mkdir of a directory above the mounts ("/tmp" when
# /tmp/x is mounted) is EEXIST, so ngx_create_full_path (proxy_cache
# levels, dav's create_full_put_path) can make every directory of a path.
# The port's getuid/geteuid (1: never root) win over the library's weak
# ones.
# And the net part (libvkposix-net.a, headers in include-net/, first on the
# include path so configure sees them too): socket, bind, listen, accept,
# connect, sendto/recvfrom, sendmsg/recvmsg, socket options, getaddrinfo,
# with Linux's constants and a sockaddr_un with sun_path. nginx binds its
# UDP and unix-domain listeners itself, the resolver and syslog send UDP,
# proxy_pass reaches unix: upstreams, proxy_bind binds before connect.
# The full include/ is not used: it would bring the process and signal
# layer along, which the port replaces itself (the port defines the two
# signal hooks of vkposix_net.h).
vkposix=$work/vkposix
run_logged "vkposix" "$logs/vkposix.log" compat_heavy "$images/lib/vkposix/build.sh" "$vkposix" clang-14
compat_need_output "vkposix" "$logs/vkposix.log" "$vkposix/libvkposix-fs.a" "$vkposix/ldflags-fs" \
	"$vkposix/libvkposix-net.a" "$vkposix/include-net/sys/socket.h"
vkposix_ld="$vkposix/libvkposix-fs.a $vkposix/libvkposix-net.a $(tr '\n' ' ' <"$vkposix/ldflags-fs")"

# --------------------------------------------------------------------- zlib
t0=$(date +%s)
unpack zlib "$ZLIB_DEB_VERSION" "$work/zlib"
# (Steps joined with &&: set -e does not apply inside a "( ) ||" list.)
(
	cd "$work/zlib" &&
		CC="$CC_WASI" CFLAGS="-O2" AR=llvm-ar-14 RANLIB=llvm-ranlib-14 \
			./configure --static --prefix="$deps" &&
		compat_heavy make -j"$jobs" libz.a &&
		make install
) >"$logs/zlib.log" 2>&1 || fail "zlib cross-build" "$logs/zlib.log"
compat_need_output "zlib cross-build" "$logs/zlib.log" "$deps/lib/libz.a" "$deps/include/zlib.h"

# -------------------------------------------------------------------- pcre2
# 8-bit library only, no JIT (no executable memory in the vkernel).
unpack pcre2 "$PCRE2_DEB_VERSION" "$work/pcre2"
(
	cd "$work/pcre2" &&
		CC="$CC_WASI" CFLAGS="-O2" AR=llvm-ar-14 RANLIB=llvm-ranlib-14 \
			compat_heavy ./configure --host=wasm32-unknown-wasi --prefix="$deps" \
			--disable-shared --enable-static --disable-jit --disable-pcre2grep-jit \
			--enable-pcre2-8 --disable-pcre2-16 --disable-pcre2-32 \
			--disable-pcre2grep-libz --disable-pcre2grep-libbz2 --disable-pcre2grep-callout \
			--disable-pcre2test-libedit --disable-pcre2test-libreadline &&
		compat_heavy make -j"$jobs" libpcre2-8.la &&
		make install-libLTLIBRARIES install-nodist_includeHEADERS install-includeHEADERS
) >"$logs/pcre2.log" 2>&1 || fail "pcre2 cross-build" "$logs/pcre2.log"
compat_need_output "pcre2 cross-build" "$logs/pcre2.log" "$deps/lib/libpcre2-8.a" "$deps/include/pcre2.h"

# ------------------------------------------------------------------ openssl
# Its own recipe and cache (images/openssl): built now unless its output
# exists. Compiled against vkposix's net headers, as nginx is: its socket
# BIO (SSL_set_fd) calls vkposix's socket functions.
openssl=$("$images/openssl/build-wasm.sh" 2>"$logs/openssl.log" | tail -n 1) ||
	fail "OpenSSL (images/openssl/build-wasm.sh)" "$logs/openssl.log"
compat_need_output "OpenSSL" "$logs/openssl.log" "$openssl/lib/libssl.a" "$openssl/lib/libcrypto.a" \
	"$openssl/include/openssl/ssl.h" "$openssl/build-info.json"
t_deps=$(($(date +%s) - t0))

# ------------------------------------------------------------------ modules
mods=$work/modules
mkdir -p "$mods"
unpack libnginx-mod-http-ndk "$NDK_DEB_VERSION" "$mods/ndk"
unpack libnginx-mod-http-echo "$ECHO_DEB_VERSION" "$mods/echo"
unpack libnginx-mod-http-headers-more-filter "$HEADERS_MORE_DEB_VERSION" "$mods/headers-more"
unpack libnginx-mod-http-set-misc "$SET_MISC_DEB_VERSION" "$mods/set-misc"

# -------------------------------------------------------------------- nginx
unpack nginx "$NGINX_DEB_VERSION" "$work/src"
src=$work/src
cp "$here/port/ngx_wasi.c" "$here/port/ngx_wasi.h" "$src/src/os/unix/"
cp "$here/port/auto-os-wasi" "$src/auto/os/wasi"

# Paths as Debian's nginx has them, so configurations written for the
# reference work unchanged. Modules: those of Debian's nginx (debian/rules:
# built in there or as libnginx-mod-* dynamic modules) that need no
# library wasm32 lacks, all built in statically, plus the degradation
# module (no library either). The SSL modules link images/openssl's
# libssl and libcrypto (OpenSSL without threads, as nginx.wasm). Left out,
# and why:
#   --with-threads: wasi-libc 2022-05 has no pthreads (no wasm32-wasi-threads);
#   --with-pcre-jit: no executable memory in the vkernel (PCRE2 interprets);
#   --with-http_perl_module: embeds libperl, which is not cross-built;
#   --with-http_xslt_module: libxml2 and libxslt, not cross-built yet;
#   --with-http_image_filter_module: libgd (and libpng, libjpeg...);
#   --with-http_geoip_module, --with-stream_geoip_module: libGeoIP;
#   --with-compat: only pads structures for dynamic modules built apart,
#       and nginx.wasm loads none (every module is built in).
# Stream and mail TCP listeners are handed over like http ones; UDP
# ("listen ... udp") and unix-domain listeners nginx binds itself.
configure_args=(
	--crossbuild=wasi
	--with-cc="$here/wasi-cc"
	--with-cc-opt="-O2 -g -I$vkposix/include-net -I$deps/include -I$openssl/include"
	--with-ld-opt="-L$deps/lib -L$openssl/lib -Wl,-z,stack-size=1048576 $vkposix_ld"
	--prefix=/usr/share/nginx
	--conf-path=/etc/nginx/nginx.conf
	--http-log-path=/var/log/nginx/access.log
	--error-log-path=stderr
	--lock-path=/var/lock/nginx.lock
	--pid-path=/run/nginx.pid
	--modules-path=/usr/lib/nginx/modules
	--http-client-body-temp-path=/var/lib/nginx/body
	--http-fastcgi-temp-path=/var/lib/nginx/fastcgi
	--http-proxy-temp-path=/var/lib/nginx/proxy
	--http-scgi-temp-path=/var/lib/nginx/scgi
	--http-uwsgi-temp-path=/var/lib/nginx/uwsgi
	--with-debug
	--with-pcre
	--without-select_module
	--with-http_ssl_module
	--with-http_stub_status_module
	--with-http_realip_module
	--with-http_auth_request_module
	--with-http_dav_module
	--with-http_slice_module
	--with-http_addition_module
	--with-http_gunzip_module
	--with-http_gzip_static_module
	--with-http_sub_module
	--with-http_v2_module
	--with-http_flv_module
	--with-http_mp4_module
	--with-http_random_index_module
	--with-http_secure_link_module
	--with-http_degradation_module
	--with-mail
	--with-mail_ssl_module
	--with-stream
	--with-stream_ssl_module
	--with-stream_realip_module
	--with-stream_ssl_preread_module
	--add-module="$mods/ndk"
	--add-module="$mods/echo"
	--add-module="$mods/headers-more"
	--add-module="$mods/set-misc"
)
t0=$(date +%s)
run_logged "configure" "$logs/configure.log" \
	compat_heavy env -C "$src" ./configure "${configure_args[@]}"
t_configure=$(($(date +%s) - t0))
grep -q '^#define NGX_WASI  1' "$src/objs/ngx_auto_headers.h" ||
	compat_die "configure did not take the wasi OS case (no NGX_WASI in objs/ngx_auto_headers.h)"
grep -q '^#define NGX_OPENSSL  1' "$src/objs/ngx_auto_config.h" ||
	fail "configure (it did not find OpenSSL: no NGX_OPENSSL in objs/ngx_auto_config.h)" "$logs/configure.log"

t0=$(date +%s)
run_logged "make -j$jobs" "$logs/make.log" \
	compat_heavy make -C "$src" -j"$jobs"
t_make=$(($(date +%s) - t0))
[ -f "$src/objs/nginx" ] || compat_die "make did not produce $src/objs/nginx"

# ------------------------------------------------------------- assemble
new=$outroot/.new-$key
rm -rf "$new"
mkdir -p "$new"
cp "$src/objs/nginx" "$new/nginx.wasm.debug"
# The modules' Test::Nginx suites (t/*.t and their data), from the same
# sources: the adapter runs them against both targets.
for m in echo headers-more set-misc; do
	[ -d "$mods/$m/t" ] || compat_die "module source $m has no t/ directory"
	mkdir -p "$new/tests/$m"
	cp -a "$mods/$m/t" "$new/tests/$m/t"
done
# Debian's autopkgtests of nginx (debian/tests: control and the scripts),
# which the adapter runs in containers against both targets.
[ -f "$src/debian/tests/control" ] || compat_die "the nginx source has no debian/tests/control"
cp -a "$src/debian/tests" "$new/debian-tests"
compat_wasm_strip "$src/objs/nginx" "$new/nginx.wasm"

# It must import only the vkernel's host surface.
compat_wasm_imports "$new/nginx.wasm" "wasi_snapshot_preview1 vkernel" "$work/imports.list"

# It must run: "nginx -V" in the vkernel.
"$here/wasi-run" "$new/nginx.wasm" -V >"$work/nginx-V.txt" 2>&1 ||
	fail "nginx -V in the vkernel" "$work/nginx-V.txt"
grep -q '^nginx version: nginx/' "$work/nginx-V.txt" ||
	fail "nginx -V in the vkernel (no version line)" "$work/nginx-V.txt"

# ------------------------------------------------------------ build info
pkgver() { compat_pkgver "$1"; }
t_total=$(($(date +%s) - t_start))
INFO_KEY=$key INFO_OUT=$new INFO_WORK=$work INFO_PINS=$pins INFO_OPENSSL_DIR=$openssl \
	INFO_REFERENCE_IMAGE=$(compat_reference_image nginx "$NGINX_DEB_VERSION") \
	INFO_CLANG=$(pkgver clang-14) INFO_LLD=$(pkgver lld-14) INFO_LLVM=$(pkgver llvm-14) \
	INFO_WASILIBC=$(pkgver wasi-libc) INFO_RT=$(pkgver libclang-rt-14-dev-wasm32) \
	INFO_WABT=$(pkgver wabt) INFO_GO="$("$go" version)" \
	INFO_CONFIGURE="$(printf '%s\n' "${configure_args[@]}")" \
	INFO_T_DEPS=$t_deps INFO_T_CONFIGURE=$t_configure INFO_T_MAKE=$t_make INFO_T_TOTAL=$t_total \
	python3 -E - <<'PY' || compat_die "writing build-info.json failed"
import hashlib, json, os
e = os.environ
out = e["INFO_OUT"]; work = e["INFO_WORK"]
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
pins = dict(kv.split("=", 1) for kv in e["INFO_PINS"].split())
with open(os.path.join(e["INFO_OPENSSL_DIR"], "build-info.json")) as f:
    openssl_info = json.load(f)
pins["openssl"] = openssl_info["source"]["version"]
imports = {}
with open(os.path.join(work, "imports.list")) as f:
    for line in f:
        mod, _, name = line.strip().partition(" ")
        if name:
            imports.setdefault(mod, []).append(name)
with open(os.path.join(work, "nginx-V.txt")) as f:
    version = f.read().splitlines()
info = {
    "key": e["INFO_KEY"],
    "source": {"package": "nginx", "version": pins.pop("nginx"), "distribution": "debian bookworm"},
    "deps": pins,
    "reference_image": e["INFO_REFERENCE_IMAGE"],
    "target": "wasm32-wasi (compat vkernel)",
    "configure_args": [a for a in e["INFO_CONFIGURE"].split("\n") if a],
    "nginx_V": version,
    "openssl": {"build": e["INFO_OPENSSL_DIR"], "key": openssl_info["key"],
                "version": openssl_info["openssl_version"]},
    "toolchain": {
        "clang-14": e["INFO_CLANG"], "lld-14": e["INFO_LLD"], "llvm-14": e["INFO_LLVM"],
        "wasi-libc": e["INFO_WASILIBC"], "libclang-rt-14-dev-wasm32": e["INFO_RT"],
        "wabt": e["INFO_WABT"], "go": e["INFO_GO"],
    },
    "sizes": {
        "nginx.wasm": os.path.getsize(os.path.join(out, "nginx.wasm")),
        "nginx.wasm.debug": os.path.getsize(os.path.join(out, "nginx.wasm.debug")),
    },
    "sha256": {
        "nginx.wasm": sha(os.path.join(out, "nginx.wasm")),
        "nginx.wasm.debug": sha(os.path.join(out, "nginx.wasm.debug")),
    },
    "timings_s": {
        "deps": int(e["INFO_T_DEPS"]), "configure": int(e["INFO_T_CONFIGURE"]),
        "make": int(e["INFO_T_MAKE"]), "total": int(e["INFO_T_TOTAL"]),
    },
    "wasm_imports": imports,
}
with open(os.path.join(out, "build-info.json"), "w") as f:
    json.dump(info, f, indent=2)
    f.write("\n")
PY

compat_log "done in ${t_total} s: nginx.wasm $(($(stat -c %s "$new/nginx.wasm") / 1000)) kB"
compat_wasm_publish "$new"
