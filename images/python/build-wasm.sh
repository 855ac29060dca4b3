#!/usr/bin/env bash
# Builds python.wasm (wasm32-wasi) and its installed standard library,
# tests included, from Debian bookworm's own python3.11 source package,
# with Debian's clang-19/lld-19/wasi-libc, pymalloc on, thin LTO and PGO
# trained on CPython's own PGO task in the vkernel (pgo.sh; each measured:
# the README's "python.wasm build options"). zlib, bzip2,
# xz-utils (liblzma) and sqlite3 are cross-built from Debian's sources so
# that the zlib, _bz2, _lzma and _sqlite3 modules exist; OpenSSL comes from
# images/openssl (its own cached build, run from here) for _ssl and
# _hashlib. Our patches live
# in patches/<source package>/. Processes, pipes and signals (subprocess,
# os.pipe, os.kill, os.waitpid, os.posix_spawn, signal handlers, alarm)
# come from images/lib/vkposix over the vkernel's process calls
# (vkernel/ABI.md): python.wasm imports from wasi_snapshot_preview1 and
# vkernel, and runs on the vkernel only.
#
# Output (not in git):
#   ${COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compat}/python-wasm/<key>/
#     python.wasm            stripped of DWARF (the name section is kept)
#     lib/python3.11/...     stdlib incl. test/ (prefix /usr: mount lib/ at /usr/lib)
#     build-info.json        versions, toolchain, sizes, modules, wasm imports
#     python.profdata        COMPAT_PY_PGO=yes: the merged training profile
#     .done                  written when everything else is in place
# <key> = first 16 hex digits of sha256 over this recipe's files (names and
# contents) and the pinned versions. If the output exists this is instant.
# The last line of stdout is the output directory.
#
# Env: COMPAT_CACHE, COMPAT_JOBS (default 2), COMPAT_KEEP_WORK=1 (keep the
#      build tree), COMPAT_PY_BUILD_PYTHON (override the build python).
# Build knobs, for measuring variants (each is part of the cache key; the
# defaults are the configuration this recipe ships):
#      COMPAT_PY_LLVM      clang/lld/llvm major version, 14 or 19
#      COMPAT_PY_OPT       optimisation level for CPython's C code (-O2, -O3)
#      COMPAT_PY_PYMALLOC  yes|no: --with-pymalloc (configure's WASI default: no)
#      COMPAT_PY_LTO       no|thin|full: --with-lto
#      COMPAT_PY_WASM_OPT  binaryen wasm-opt flags after linking (default
#                          none: -O3 made the LTO build slower under wazero)
#      COMPAT_PY_CFLAGS    extra C flags for CPython (e.g. -mbulk-memory)
#      COMPAT_PY_PGO       yes|no: profile-guided optimisation (default
#                          no until the suites have run on it: 14% faster,
#                          README). yes builds CPython instrumented (clang -fprofile-generate,
#                          with images/lib/clang-rt-profile), runs the
#                          training below on it in the vkernel, merges the
#                          profiles with llvm-profdata and builds again
#                          with -fprofile-use
#      COMPAT_PY_THREADS   yes|no: threads (default no): --enable-wasm-pthreads
#                          for wasm32-wasi-threads against the sysroot of
#                          images/wasi-libc-threads (built first; its output
#                          key is part of this one), every C source with
#                          -pthread, an imported shared memory, and
#                          OpenSSL with threads (images/openssl/
#                          build-wasm-threads.sh, its key part of this one)
#      COMPAT_PY_PGO_TESTS the training: regrtest modules, space-separated
#                          (default: CPython's own PGO task, the PGO_TESTS
#                          of Lib/test/libregrtest/pgo.py, i.e. what
#                          "-m test --pgo" runs), one interpreter each
# PGO only: COMPAT_BIN, the compat binary that runs the training (default:
#      built from this checkout with go).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
images=$(cd "$here/.." && pwd)
# shellcheck source=../lib/common.sh
. "$images/lib/common.sh"
# shellcheck source=../lib/wasm.sh
. "$images/lib/wasm.sh"
# shellcheck source=versions.env
. "$here/versions.env"
COMPAT_LOG_TAG=python-wasm

# ---------------------------------------------------------------- cache key
recipe_files="python/build-wasm.sh python/versions.env python/config.site-extra"
for p in "$here"/patches/*/*.patch; do
	if [ -e "$p" ]; then recipe_files="$recipe_files python/${p#"$here"/}"; fi
done
# vkposix is built here from its sources: they are part of the recipe.
recipe_files="$recipe_files $(cd "$images" && find lib/vkposix/build.sh lib/vkposix/ldflags lib/vkposix/src lib/vkposix/include -type f | LC_ALL=C sort | tr '\n' ' ')"
# The OpenSSL it links (images/openssl): that recipe's files.
# shellcheck source=../openssl/recipe-files.sh
. "$images/openssl/recipe-files.sh"
recipe_files="$recipe_files $(openssl_recipe_files)"
py_llvm=${COMPAT_PY_LLVM:-19}
py_opt=${COMPAT_PY_OPT:--O3}
py_pymalloc=${COMPAT_PY_PYMALLOC:-yes}
py_lto=${COMPAT_PY_LTO:-thin}
py_wasm_opt=${COMPAT_PY_WASM_OPT-}
py_cflags=${COMPAT_PY_CFLAGS-}
py_pgo=${COMPAT_PY_PGO:-no}
py_pgo_tests=${COMPAT_PY_PGO_TESTS-}
py_threads=${COMPAT_PY_THREADS:-no}
py_pins="python3.11=$PY_DEB_VERSION zlib=$ZLIB_DEB_VERSION bzip2=$BZIP2_DEB_VERSION xz-utils=$XZ_DEB_VERSION sqlite3=$SQLITE_DEB_VERSION llvm=$py_llvm opt=$py_opt pymalloc=$py_pymalloc lto=$py_lto wasm-opt=$py_wasm_opt cflags=$py_cflags"
case $py_pgo in
no) ;;
yes)
	# The profile runtime's recipe and the training (the list, or the
	# pinned source's own) are inputs of a PGO build.
	recipe_files="$recipe_files python/pgo.sh $(cd "$images" && find lib/clang-rt-profile -type f | LC_ALL=C sort | tr '\n' ' ')"
	py_pins="$py_pins pgo=$py_pgo pgo-tests=${py_pgo_tests:-libregrtest/pgo.py}"
	;;
*) compat_die "COMPAT_PY_PGO=$py_pgo: no or yes" ;;
esac
case $py_threads in
no) ;;
yes)
	# The threads sysroot is a recipe of its own (cached by content): its
	# output directory's key goes into this key.
	py_threads_out=$("$images/wasi-libc-threads/build-wasm.sh" | tail -n 1)
	[ -f "$py_threads_out/.done" ] || compat_die "images/wasi-libc-threads/build-wasm.sh did not produce a sysroot"
	# OpenSSL with threads (images/openssl/build-wasm-threads.sh, against
	# that sysroot): _ssl and _hashlib refuse one without threads in an
	# interpreter with them. Its output key goes into this key too.
	py_openssl_threads=$("$images/openssl/build-wasm-threads.sh" | tail -n 1)
	[ -f "$py_openssl_threads/.done" ] || compat_die "images/openssl/build-wasm-threads.sh did not produce OpenSSL"
	py_pins="$py_pins threads=yes wasi-libc-threads=$(basename "$py_threads_out") openssl-threads=$(basename "$py_openssl_threads")"
	;;
*) compat_die "COMPAT_PY_THREADS=$py_threads: no or yes" ;;
esac
compat_wasm_begin python-wasm "$recipe_files" "$py_pins"

# ------------------------------------------------------------- tool checks
compat_wasm_need_toolchain
compat_need autoconf autoconf
compat_need autoheader autoconf
compat_need cc gcc
compat_need tclsh tcl
case $py_llvm in
14 | 19) ;;
*) compat_die "COMPAT_PY_LLVM=$py_llvm: 14 or 19" ;;
esac
compat_need "clang-$py_llvm" "clang-$py_llvm"
compat_need "llvm-ar-$py_llvm" "llvm-$py_llvm"
compat_need "llvm-ranlib-$py_llvm" "llvm-$py_llvm"
compat_need "llvm-strip-$py_llvm" "llvm-$py_llvm"
compat_need "wasm-ld-$py_llvm" "lld-$py_llvm"
py_rt=$("clang-$py_llvm" --target=wasm32-wasi -print-libgcc-file-name)
[ -f "$py_rt" ] || compat_die "compiler-rt for wasm32 missing ($py_rt); install it with: apt-get install -y libclang-rt-$py_llvm-dev-wasm32"
if [ -n "$py_wasm_opt" ]; then compat_need wasm-opt binaryen; fi
if [ "$py_pgo" = yes ]; then
	compat_need "llvm-profdata-$py_llvm" "llvm-$py_llvm"
	compat_need timeout coreutils
	compat_need mknod coreutils
	if [ -z "${COMPAT_BIN:-}" ]; then
		compat_need go "Go (the version go.mod names), or set COMPAT_BIN to a compat binary"
	fi
fi
compat_wasm_work
# compat_wasm_work set CC_WASI for clang-14; CPython and its deps use
# clang-$py_llvm with the same sysroot.
CC_WASI="clang-$py_llvm --target=wasm32-wasi --sysroot=$sysroot"
if [ "$py_threads" = yes ]; then
	# Every object (deps, vkposix, CPython) with atomics and bulk memory:
	# wasm-ld links a shared memory only from such objects.
	CC_WASI="clang-$py_llvm --target=wasm32-wasi-threads -pthread --sysroot=$py_threads_out/sysroot"
	# Links (the deps' configure checks too) need the shared memory: clang
	# -pthread alone does not ask wasm-ld for it, and TLS needs it.
	LDFLAGS_WASI="-Wl,--import-memory -Wl,--shared-memory -Wl,--max-memory=1073741824"
else
	LDFLAGS_WASI=
fi
AR_WASI=llvm-ar-$py_llvm
RANLIB_WASI=llvm-ranlib-$py_llvm
apt_update() { compat_private_apt_update "$logs"; }

# ------------------------------------------------------------ build python
# Prefer the host's /usr/bin/python3.11 when it is the pinned revision;
# otherwise unpack the pinned binary packages privately (the host's
# packages are never changed).
if [ -n "${COMPAT_PY_BUILD_PYTHON:-}" ]; then
	build_python=$COMPAT_PY_BUILD_PYTHON
else
	if [ ! -x /usr/bin/python3.11 ]; then
		compat_log "installing python3.11 (needed as the build python)"
		apt-get install -y -q python3.11 >"$logs/apt-install-python.log" 2>&1 ||
			fail "apt-get install python3.11" "$logs/apt-install-python.log"
	fi
	host_ver=$(dpkg-query -W -f '${Version}' python3.11 2>/dev/null || true)
	if [ "$host_ver" = "$PY_DEB_VERSION" ]; then
		build_python=/usr/bin/python3.11
	else
		bp=$cache/build-python/$PY_DEB_VERSION
		if [ ! -f "$bp/.complete" ]; then
			compat_log "host python3.11 is $host_ver, not $PY_DEB_VERSION: unpacking the pinned build python into $bp"
			apt_update
			rm -rf "$bp"
			mkdir -p "$bp/debs"
			(cd "$bp/debs" && apt-get "${COMPAT_APT_OPTS[@]}" -o APT::Sandbox::User=root -q download \
				"python3.11-minimal=$PY_DEB_VERSION" "libpython3.11-minimal=$PY_DEB_VERSION" \
				"libpython3.11-stdlib=$PY_DEB_VERSION") >"$logs/build-python.log" 2>&1 ||
				fail "apt-get download python3.11 $PY_DEB_VERSION binaries" "$logs/build-python.log"
			for deb in "$bp"/debs/*.deb; do
				dpkg-deb -x "$deb" "$bp/root"
			done
			touch "$bp/.complete"
		fi
		build_python=$bp/root/usr/bin/python3.11
	fi
fi
"$build_python" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' >/dev/null 2>&1 ||
	compat_die "build python $build_python does not run as Python 3.11"
build_python_version=$("$build_python" -c 'import sys; print(sys.version.split()[0])')

# ------------------------------------------------------------------ vkposix
vkposix=$work/vkposix
if [ "$py_threads" = yes ]; then
	VKPOSIX_TARGET="--target=wasm32-wasi-threads -pthread --sysroot=$py_threads_out/sysroot" \
		run_logged "vkposix" "$logs/vkposix.log" "$images/lib/vkposix/build.sh" "$vkposix" "clang-$py_llvm"
else
	run_logged "vkposix" "$logs/vkposix.log" "$images/lib/vkposix/build.sh" "$vkposix" "clang-$py_llvm"
fi
compat_need_output "vkposix" "$logs/vkposix.log" "$vkposix/libvkposix.a" "$vkposix/ldflags" "$vkposix/include/vkposix.h"

# --------------------------------------------------------------- deps tree
deps=$work/deps
mkdir -p "$deps/include" "$deps/lib/pkgconfig"

# --------------------------------------------------------------------- zlib
t0=$(date +%s)
unpack zlib "$ZLIB_DEB_VERSION" "$work/zlib"
# Steps are joined with &&: set -e does not apply inside "( ... ) || fail",
# and each step's outputs are checked after it.
(
	cd "$work/zlib" &&
		CC="$CC_WASI" CFLAGS="-O2" LDFLAGS="$LDFLAGS_WASI" AR=$AR_WASI RANLIB=$RANLIB_WASI \
			./configure --static --prefix="$deps" &&
		compat_heavy make -j"$jobs" libz.a &&
		make install
) >"$logs/zlib.log" 2>&1 || fail "zlib cross-build" "$logs/zlib.log"
compat_need_output "zlib cross-build" "$logs/zlib.log" "$deps/lib/libz.a" "$deps/include/zlib.h"

# -------------------------------------------------------------------- bzip2
unpack bzip2 "$BZIP2_DEB_VERSION" "$work/bzip2"
(
	cd "$work/bzip2" || exit 1
	objs=
	for c in blocksort huffman crctable randtable compress decompress bzlib; do
		# shellcheck disable=SC2086
		nice $CC_WASI -O2 -D_FILE_OFFSET_BITS=64 -c "$c.c" -o "$c.o" || exit 1
		objs="$objs $c.o"
	done
	# shellcheck disable=SC2086
	"$AR_WASI" rc libbz2.a $objs &&
		"$RANLIB_WASI" libbz2.a &&
		cp libbz2.a "$deps/lib/" &&
		cp bzlib.h "$deps/include/"
) >"$logs/bzip2.log" 2>&1 || fail "bzip2 cross-build" "$logs/bzip2.log"
compat_need_output "bzip2 cross-build" "$logs/bzip2.log" "$deps/lib/libbz2.a" "$deps/include/bzlib.h"

# ----------------------------------------------------------- xz (liblzma)
unpack xz-utils "$XZ_DEB_VERSION" "$work/xz"
(
	cd "$work/xz" &&
		CC="$CC_WASI" CFLAGS="-O2" LDFLAGS="$LDFLAGS_WASI" AR=$AR_WASI RANLIB=$RANLIB_WASI \
			./configure --host=wasm32-unknown-wasi --prefix="$deps" \
			--disable-shared --enable-static --disable-threads \
			--disable-xz --disable-xzdec --disable-lzmadec --disable-lzmainfo \
			--disable-lzma-links --disable-scripts --disable-doc --disable-nls &&
		compat_heavy make -j"$jobs" -C src/liblzma &&
		make -C src/liblzma install
) >"$logs/xz.log" 2>&1 || fail "xz-utils (liblzma) cross-build" "$logs/xz.log"
compat_need_output "xz-utils (liblzma) cross-build" "$logs/xz.log" "$deps/lib/liblzma.a" "$deps/include/lzma.h"

# ------------------------------------------------------------------ sqlite3
# The amalgamation (sqlite3.c) is generated by a native configure + make
# (tclsh and host cc build the generators), then compiled for wasm32-wasi
# single-threaded, without WAL, mmap or loadable extensions. With threads
# it is thread-safe (SQLITE_THREADSAFE=1, its default: pthread mutexes
# around its global state), as two connections in two of the
# interpreter's threads need.
sqlite_threadsafe=0
if [ "$py_threads" = yes ]; then sqlite_threadsafe=1; fi
unpack sqlite3 "$SQLITE_DEB_VERSION" "$work/sqlite"
(
	mkdir -p "$work/sqlite-amalg" &&
		cd "$work/sqlite-amalg" &&
		"$work/sqlite/configure" --disable-tcl --disable-readline &&
		compat_heavy make sqlite3.c &&
		compat_heavy $CC_WASI -O2 \
		-DSQLITE_THREADSAFE="$sqlite_threadsafe" -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_WAL \
		-DSQLITE_MAX_MMAP_SIZE=0 -DSQLITE_ENABLE_FTS4 -DSQLITE_ENABLE_FTS5 \
		-DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_COLUMN_METADATA \
			-D_WASI_EMULATED_GETPID -c sqlite3.c -o sqlite3.o &&
		"$AR_WASI" rc libsqlite3.a sqlite3.o &&
		"$RANLIB_WASI" libsqlite3.a &&
		cp libsqlite3.a "$deps/lib/" &&
		cp sqlite3.h sqlite3ext.h "$deps/include/"
) >"$logs/sqlite3.log" 2>&1 || fail "sqlite3 cross-build" "$logs/sqlite3.log"
compat_need_output "sqlite3 cross-build" "$logs/sqlite3.log" "$deps/lib/libsqlite3.a" "$deps/include/sqlite3.h"
# ------------------------------------------------------------------ openssl
# Its own recipe and cache (images/openssl, clang-14 objects, which lld-19
# links): built now unless its output exists. With threads, the threads
# build (clang-19, wasm32-wasi-threads), built above for the key.
if [ "$py_threads" = yes ]; then
	openssl=$py_openssl_threads
	: >"$logs/openssl.log"
else
	openssl=$("$images/openssl/build-wasm.sh" 2>"$logs/openssl.log" | tail -n 1) ||
		fail "OpenSSL (images/openssl/build-wasm.sh)" "$logs/openssl.log"
fi
compat_need_output "OpenSSL" "$logs/openssl.log" "$openssl/lib/libssl.a" "$openssl/lib/libcrypto.a" \
	"$openssl/include/openssl/ssl.h" "$openssl/build-info.json"
t_deps=$(($(date +%s) - t0))

# -------------------------------------------------------------- CPython
unpack python3.11 "$PY_DEB_VERSION" "$work/src"
src=$work/src
# The stdlib test packages that the Makefile's install list leaves out.
for t in test_capi test_sqlite3 test_tomllib; do
	[ -d "$src/Lib/test/$t" ] || compat_die "Lib/test/$t not found in the python3.11 source"
done
touch "$src/Modules/Setup.local"
cat "$src/Tools/wasm/config.site-wasm32-wasi" "$here/config.site-extra" >"$work/config.site"

t0=$(date +%s)
run_logged "autoconf" "$logs/autoconf.log" sh -c "cd '$src' && autoconf -f && autoheader -f"

configure_args=(
	--host=wasm32-unknown-wasi
	--build="$("$src/config.guess")"
	--with-build-python="$build_python"
	--prefix=/usr
	--without-ensurepip
	--with-pymalloc="$py_pymalloc"
	# configure turns IPv6 off for WASI unless asked; the vkernel's sockets
	# (vkposix) have AF_INET6, and regrtest's socket tests expect ::1.
	--enable-ipv6
	# _ssl and _hashlib (wasi-openssl-no-threads.patch: OpenSSL without
	# threads, as this interpreter, or with threads for COMPAT_PY_THREADS).
	--with-openssl="$openssl"
)
# configure's own OPT for clang (it adds -DNDEBUG), with the chosen level.
py_configure_env=(OPT="-g -fwrapv $py_opt -Wall")
# vkposix: its headers come before wasi-libc's (they wrap them), its
# library and link flags go into every link, configure's checks included,
# so that pipe, kill, waitpid, posix_spawn, sigaction, alarm and setitimer
# are found. Python/fileutils.c keeps the inheritable flag of fds and
# clears it in close(): --wrap=close, only in the interpreter's own links
# (LDFLAGS_NODIST), where __wrap_close is defined.
py_ldflags=$(tr '\n' ' ' <"$vkposix/ldflags")
py_configure_env+=(CPPFLAGS="-I$vkposix/include" LIBS="$vkposix/libvkposix.a" LDFLAGS_NODIST="-Wl,--wrap=close")
if [ "$py_llvm" -ge 16 ]; then
	# clang 16 made int-conversion an error; wasi-libc's CLOCK_* are
	# pointers that timemodule.c passes as long (a warning in clang-14).
	py_cflags="-Wno-error=int-conversion${py_cflags:+ $py_cflags}"
fi
if [ "$py_lto" != no ]; then
	configure_args+=(--with-lto="$py_lto")
	# configure looks for llvm-ar by name (the host's default llvm may be
	# another version); the LTO back end runs at the C code's level.
	py_configure_env+=(LLVM_AR="$(command -v "$AR_WASI")")
	py_ldflags="$py_ldflags -Wl,--lto-${py_opt#-}"
fi
if [ "$py_threads" = yes ]; then
	# configure's own link checks need the shared memory too (objects with
	# atomics); the patch adds the same flags to LDFLAGS_NODIST.
	configure_args+=(--enable-wasm-pthreads)
	py_ldflags="$py_ldflags -pthread $LDFLAGS_WASI"
fi
py_configure_env+=(LDFLAGS="$py_ldflags")
if [ -n "$py_cflags" ]; then
	py_configure_env+=(CFLAGS="$py_cflags")
fi
run_logged "configure" "$logs/configure.log" env -C "$src" \
	CONFIG_SITE="$work/config.site" \
	CC="$CC_WASI" CPP="$CC_WASI -E" CXX=false \
	AR=$AR_WASI RANLIB=$RANLIB_WASI "${py_configure_env[@]}" \
	PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR="$deps/lib/pkgconfig" \
	ZLIB_CFLAGS="-I$deps/include" ZLIB_LIBS="-L$deps/lib -lz" \
	BZIP2_CFLAGS="-I$deps/include" BZIP2_LIBS="-L$deps/lib -lbz2" \
	LIBLZMA_CFLAGS="-I$deps/include" LIBLZMA_LIBS="-L$deps/lib -llzma" \
	LIBSQLITE3_CFLAGS="-I$deps/include" LIBSQLITE3_LIBS="-L$deps/lib -lsqlite3" \
	nice flock "$COMPAT_HEAVY_LOCK" ./configure "${configure_args[@]}"
t_configure=$(($(date +%s) - t0))

t_pgo_gen=0 t_pgo_train=0
pgo_make_args=()
if [ "$py_pgo" = yes ]; then
	# shellcheck source=pgo.sh
	. "$here/pgo.sh"
	pgo_profile
	pgo_make_args=(CFLAGS_NODIST="-fprofile-use=$pgo_profdata")
fi

t0=$(date +%s)
run_logged "make -j$jobs${pgo_make_args:+ (profile-guided)}" "$logs/make.log" \
	compat_heavy make -C "$src" -j"$jobs" "${pgo_make_args[@]}"
t_make=$(($(date +%s) - t0))
# clang's warnings about the profile (stale or mismatched data: "hash
# mismatch", -Wprofile-instr-*): 0 when the training's build and this one
# compile the same code.
pgo_warnings=$(grep -ciE 'warning: .*(profil|hash mismatch)' "$logs/make.log" || true)

t0=$(date +%s)
stage=$work/stage
run_logged "make install" "$logs/install.log" nice make -C "$src" install DESTDIR="$stage"
t_install=$(($(date +%s) - t0))

# ------------------------------------------------------------- assemble
new=$outroot/.new-$key
rm -rf "$new"
mkdir -p "$new/lib"
[ -f "$src/python.wasm" ] || compat_die "make did not produce $src/python.wasm"
[ -d "$stage/usr/lib/python3.11" ] || compat_die "make install did not produce usr/lib/python3.11"
unstripped_size=$(stat -c %s "$src/python.wasm")
"llvm-strip-$py_llvm" --strip-debug -o "$work/python-stripped.wasm" "$src/python.wasm" ||
	compat_die "llvm-strip-$py_llvm of $src/python.wasm failed"
t_wasm_opt=0
if [ -n "$py_wasm_opt" ]; then
	t0=$(date +%s)
	# -g keeps the name section (traps name functions); the features are
	# read from the module's target_features section.
	# shellcheck disable=SC2086 # flags
	run_logged "wasm-opt $py_wasm_opt" "$logs/wasm-opt.log" compat_heavy \
		wasm-opt $py_wasm_opt -g "$work/python-stripped.wasm" -o "$new/python.wasm"
	t_wasm_opt=$(($(date +%s) - t0))
else
	mv "$work/python-stripped.wasm" "$new/python.wasm"
fi
mv "$stage/usr/lib/python3.11" "$new/lib/python3.11"
if [ "$py_pgo" = yes ]; then
	# The profile the build used (llvm-profdata show reads it).
	cp "$pgo_profdata" "$new/python.profdata"
fi
lib=$new/lib/python3.11
# The static libpython archive is only for embedding; nothing runs it.
rm -f "$lib"/config-3.11-*/*.a
for t in test_capi test_sqlite3 test_tomllib; do
	if [ ! -d "$lib/test/$t" ]; then
		cp -a "$src/Lib/test/$t" "$lib/test/$t"
		for o in 0 1 2; do
			PYTHONHASHSEED=0 "$build_python" -E -m compileall -q -o "$o" \
				-d "/usr/lib/python3.11/test/$t" "$lib/test/$t" >>"$logs/compileall.log" 2>&1 ||
				fail "compileall $t" "$logs/compileall.log"
		done
	fi
done
[ -f "$lib/os.py" ] && [ -f "$lib/test/regrtest.py" ] ||
	compat_die "installed stdlib looks incomplete (os.py or test/regrtest.py missing in $lib)"

# ---------------------------------------------------------- wasm imports
if [ "$py_threads" = yes ]; then
	# Threads (vkernel/ABI.md "Threads"): wasi.thread-spawn and the one
	# memory import the ABI allows, env.memory, shared. The check below
	# takes functions only: it runs on a copy without that line.
	wasm-objdump -x -j Import "$new/python.wasm" >"$logs/imports-threads.txt" 2>&1 ||
		fail "wasm-objdump on python.wasm" "$logs/imports-threads.txt"
	grep -qE '^ - memory\[0\] .* shared <- env\.memory$' "$logs/imports-threads.txt" ||
		compat_die "python.wasm (threads) does not import a shared env.memory (see $logs/imports-threads.txt)"
	compat_wasm_imports_threads() {
		local real
		real=$(command -v wasm-objdump)
		# shellcheck disable=SC2317 # called through compat_wasm_imports
		wasm-objdump() { "$real" "$@" | grep -vE '^ - memory\[0\] .* shared <- env\.memory$'; }
		compat_wasm_imports "$new/python.wasm" "wasi_snapshot_preview1 vkernel wasi" "$work/imports.list"
		unset -f wasm-objdump
	}
	compat_wasm_imports_threads
else
	compat_wasm_imports "$new/python.wasm" "wasi_snapshot_preview1 vkernel" "$work/imports.list"
fi

# ------------------------------------------------------------ build info
pkgver() { compat_pkgver "$1"; }
grep -E '^MODULE_[A-Z0-9_]+_STATE=' "$src/Makefile" >"$work/modules.txt" || true
# What configure decided about the allocator and the eval loop's dispatch.
grep -E '^(#define|/\* #undef) (WITH_PYMALLOC|USE_COMPUTED_GOTOS|HAVE_COMPUTED_GOTOS)\b' \
	"$src/pyconfig.h" >"$work/pyconfig.txt" || true
t_total=$(($(date +%s) - t_start))
INFO_KEY=$key INFO_OUT=$new INFO_WORK=$work INFO_REFERENCE_IMAGE=$(compat_reference_image python "$PY_DEB_VERSION") \
	INFO_PY=$PY_DEB_VERSION INFO_ZLIB=$ZLIB_DEB_VERSION INFO_BZIP2=$BZIP2_DEB_VERSION \
	INFO_XZ=$XZ_DEB_VERSION INFO_SQLITE=$SQLITE_DEB_VERSION INFO_OPENSSL_DIR=$openssl \
	INFO_LLVM_MAJOR=$py_llvm INFO_CLANG=$(pkgver "clang-$py_llvm") INFO_LLD=$(pkgver "lld-$py_llvm") \
	INFO_LLVM=$(pkgver "llvm-$py_llvm") INFO_RT=$(pkgver "libclang-rt-$py_llvm-dev-wasm32") \
	INFO_WASILIBC=$(pkgver wasi-libc) INFO_BINARYEN=$(pkgver binaryen) \
	INFO_OPT=$py_opt INFO_PYMALLOC=$py_pymalloc INFO_LTO=$py_lto INFO_WASM_OPT=$py_wasm_opt \
	INFO_CFLAGS=$py_cflags INFO_T_WASM_OPT=$t_wasm_opt INFO_PGO=$py_pgo INFO_THREADS=$py_threads INFO_PGO_JSON=${pgo_info-} INFO_PGO_WARNINGS=$pgo_warnings \
	INFO_WABT=$(pkgver wabt) INFO_AUTOCONF=$(pkgver autoconf) \
	INFO_BUILD_PY=$build_python INFO_BUILD_PY_VER=$build_python_version \
	INFO_PYVER=$(sed -n 's/^#define PY_VERSION[[:space:]]*"\(.*\)"/\1/p' "$src/Include/patchlevel.h") \
	INFO_UNSTRIPPED=$unstripped_size INFO_CONFIGURE="${configure_args[*]}" \
	INFO_T_DEPS=$t_deps INFO_T_CONFIGURE=$t_configure INFO_T_MAKE=$t_make \
	INFO_T_INSTALL=$t_install INFO_T_TOTAL=$t_total \
	"$build_python" -E - <<'PY' || compat_die "writing build-info.json failed"
import hashlib, json, os
e = os.environ
out = e["INFO_OUT"]; work = e["INFO_WORK"]
wasm = os.path.join(out, "python.wasm")
h = hashlib.sha256()
with open(wasm, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
lib_bytes = lib_files = 0
for root, dirs, files in os.walk(os.path.join(out, "lib")):
    for name in files:
        lib_files += 1
        lib_bytes += os.lstat(os.path.join(root, name)).st_size
modules = {}
with open(os.path.join(work, "modules.txt")) as f:
    for line in f:
        k, _, v = line.strip().partition("=")
        modules[k[len("MODULE_"):-len("_STATE")].lower()] = v
imports = {}
with open(os.path.join(work, "imports.list")) as f:
    for l in f:
        if l.strip():
            module, name = l.split()
            imports.setdefault(module, []).append(name)
with open(os.path.join(e["INFO_OPENSSL_DIR"], "build-info.json")) as f:
    openssl_info = json.load(f)
pyconfig = {}
with open(os.path.join(work, "pyconfig.txt")) as f:
    for line in f:
        w = line.split()
        if w[0] == "#define":
            pyconfig[w[1]] = w[2] if len(w) > 2 else "1"
        else:
            pyconfig[w[2]] = None
info = {
    "key": e["INFO_KEY"],
    "source": {"package": "python3.11", "version": e["INFO_PY"], "distribution": "debian bookworm"},
    "deps": {"zlib": e["INFO_ZLIB"], "bzip2": e["INFO_BZIP2"], "xz-utils": e["INFO_XZ"], "sqlite3": e["INFO_SQLITE"],
             "openssl": openssl_info["source"]["version"]},
    "openssl": {"build": e["INFO_OPENSSL_DIR"], "key": openssl_info["key"],
                "version": openssl_info["openssl_version"],
                "threads": openssl_info.get("threads", "none")},
    "python_version": e["INFO_PYVER"],
    "reference_image": e["INFO_REFERENCE_IMAGE"],
    "target": "wasm32-unknown-wasi",
    "prefix": "/usr",
    "stdlib_dir": "lib/python3.11",
    "mount_hint": "mount <out>/lib at /usr/lib (or set PYTHONHOME=/usr with lib/ there)",
    "configure_args": e["INFO_CONFIGURE"].split(),
    "pyconfig": pyconfig,
    "build_options": {
        "opt": e["INFO_OPT"], "pymalloc": e["INFO_PYMALLOC"], "lto": e["INFO_LTO"],
        "wasm_opt": e["INFO_WASM_OPT"], "extra_cflags": e["INFO_CFLAGS"],
        "pgo": e["INFO_PGO"], "threads": e["INFO_THREADS"],
    },
    "toolchain": {
        "clang-" + e["INFO_LLVM_MAJOR"]: e["INFO_CLANG"],
        "lld-" + e["INFO_LLVM_MAJOR"]: e["INFO_LLD"],
        "llvm-" + e["INFO_LLVM_MAJOR"]: e["INFO_LLVM"],
        "libclang-rt-" + e["INFO_LLVM_MAJOR"] + "-dev-wasm32": e["INFO_RT"],
        "wasi-libc": e["INFO_WASILIBC"], "binaryen": e["INFO_BINARYEN"],
        "wabt": e["INFO_WABT"], "autoconf": e["INFO_AUTOCONF"],
        "build_python": {"path": e["INFO_BUILD_PY"], "version": e["INFO_BUILD_PY_VER"]},
    },
    "sizes": {
        "python.wasm": os.path.getsize(wasm),
        "python.wasm_unstripped": int(e["INFO_UNSTRIPPED"]),
        "lib_bytes": lib_bytes, "lib_files": lib_files,
    },
    "sha256": {"python.wasm": h.hexdigest()},
    "timings_s": {
        "deps": int(e["INFO_T_DEPS"]), "configure": int(e["INFO_T_CONFIGURE"]),
        "make": int(e["INFO_T_MAKE"]), "install": int(e["INFO_T_INSTALL"]),
        "wasm_opt": int(e["INFO_T_WASM_OPT"]),
        "total": int(e["INFO_T_TOTAL"]),
    },
    "wasm_imports": imports,
    "modules": modules,
}
if e["INFO_PGO_JSON"]:
    with open(e["INFO_PGO_JSON"]) as f:
        info["pgo"] = json.load(f)
    info["pgo"]["profile_use_warnings"] = int(e["INFO_PGO_WARNINGS"])
    info["timings_s"]["pgo_instrumented_build"] = info["pgo"]["timings_s"]["instrumented_build"]
    info["timings_s"]["pgo_training"] = info["pgo"]["timings_s"]["training"]
with open(os.path.join(out, "build-info.json"), "w") as f:
    json.dump(info, f, indent=2, sort_keys=False)
    f.write("\n")
PY

compat_log "done in ${t_total} s: python.wasm $(($(stat -c %s "$new/python.wasm") / 1000)) kB (unstripped $((unstripped_size / 1000)) kB)"
compat_wasm_publish "$new"
