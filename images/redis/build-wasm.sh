#!/usr/bin/env bash
# Builds redis-server.wasm (wasm32-wasi, for the vkernel) from Debian
# bookworm's own redis source package with Debian's clang-14/lld-14/
# wasi-libc, plus the package's Tcl test suite. Our changes: the patches in
# patches/redis/ and the compatibility layer in compat/ (headers that
# wasi-libc lacks, the vkernel socket calls, the poll_oneoff event loop),
# linked with images/lib/vkposix (processes, pipes, signals: the forks of
# BGSAVE, BGREWRITEAOF and diskless syncs are vkernel.proc_fork). Bundled
# deps: Lua (setjmp/longjmp through the vkernel host module), hiredis,
# hdr_histogram; MALLOC=libc (no jemalloc).
#
# Output (not in git):
#   ${COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compat}/redis-wasm/<key>/
#     redis-server.wasm      stripped of DWARF (the name section is kept)
#     suite/                 runtest and tests/ from the same source
#     build-info.json        versions, toolchain, sizes, timings, wasm imports
#     .done                  written when everything else is in place
# <key> = first 16 hex digits of sha256 over this recipe's files (names and
# contents) and the pinned version. If the output exists this is instant.
# The last line of stdout is the output directory.
#
# Compiles and the link take turns with other heavy builds (lib/wasm.sh's
# COMPAT_HEAVY_LOCK).
#
# Env: COMPAT_CACHE, COMPAT_JOBS (default 2), COMPAT_KEEP_WORK=1 (keep the
#      build tree).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
images=$(cd "$here/.." && pwd)
# shellcheck source=../lib/common.sh
. "$images/lib/common.sh"
# shellcheck source=../lib/wasm.sh
. "$images/lib/wasm.sh"
# shellcheck source=versions.env
. "$here/versions.env"
COMPAT_LOG_TAG=redis-wasm

# ---------------------------------------------------------------- cache key
recipe_files="redis/build-wasm.sh redis/versions.env"
for p in "$here"/patches/*/*.patch "$here"/compat/*.[ch] "$here"/compat/include/*.h "$here"/compat/include/*/*.h; do
	[ -e "$p" ] && recipe_files="$recipe_files redis/${p#"$here"/}"
done
for p in "$images"/lib/vkposix/build.sh "$images"/lib/vkposix/ldflags "$images"/lib/vkposix/src/* \
	"$images"/lib/vkposix/include/*.h "$images"/lib/vkposix/include/*/*.h; do
	[ -e "$p" ] && recipe_files="$recipe_files ${p#"$images"/}"
done
compat_wasm_begin redis-wasm "$recipe_files" "redis=$REDIS_DEB_VERSION"

# ------------------------------------------------------------- tool checks
compat_wasm_need_toolchain
compat_wasm_work
mkdir -p "$work/obj"

# ------------------------------------------------------------- source
dsc=$(compat_fetch_source redis "$REDIS_DEB_VERSION" "$logs")
src=$work/src
run_logged "unpack redis $REDIS_DEB_VERSION" "$logs/unpack.log" dpkg-source -x "$dsc" "$src"
for p in "$here"/patches/redis/*.patch; do
	run_logged "patch: $(basename "$p")" "$logs/patch-$(basename "$p").log" patch -d "$src" -p1 -N -i "$p"
done
cp "$here/compat/ae_wasi.c" "$src/src/ae_wasi.c"
redis_version=$(sed -n 's/^#define REDIS_VERSION "\(.*\)"/\1/p' "$src/src/version.h")
[ -n "$redis_version" ] || compat_die "no REDIS_VERSION in $src/src/version.h"
# release.h is normally generated from git; this build has no git.
cat >"$src/src/release.h" <<EOF
#define REDIS_GIT_SHA1 "00000000"
#define REDIS_GIT_DIRTY "0"
#define REDIS_BUILD_ID "compat-wasm-$key"
EOF

# ------------------------------------------------------------------ compile

# vkposix first: its headers wrap wasi-libc's (signal.h, unistd.h, ...).
vkposix=$work/vkposix
run_logged "build vkposix" "$logs/vkposix.log" compat_heavy "$images/lib/vkposix/build.sh" "$vkposix" clang-14
mapfile -t vkposix_ldflags <"$vkposix/ldflags"

compat=$here/compat
wasi_defs=(-D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_MMAN -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_GETPID)
cc=(clang-14 --target=wasm32-wasi "--sysroot=$sysroot" -O2 "${wasi_defs[@]}" "-I$vkposix/include" "-I$compat/include")
cc_redis=("${cc[@]}" -include "$compat/redis_wasi.h")

# Each line of $work/compile.list: OUTPUT<TAB>DIR<TAB>SOURCE<TAB>EXTRA FLAGS.
# Compiled in parallel; the first failure stops the build with its log.
list=$work/compile.list
: >"$list"
add() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$list"; }
server_objs=$(sed -n 's/^REDIS_SERVER_OBJ=//p' "$src/src/Makefile")
[ -n "$server_objs" ] || compat_die "REDIS_SERVER_OBJ not found in $src/src/Makefile"
for o in $server_objs; do
	add "server-$o" "$src/src" "${o%.o}.c" "-std=gnu11 -DREDIS_STATIC= -I../deps/hiredis -I../deps/lua/src -I../deps/hdr_histogram"
done
# liblua as Redis' deps/Makefile builds it (without the lua/luac programs).
for f in lapi lcode ldebug ldo ldump lfunc lgc llex lmem lobject lopcodes lparser lstate lstring \
	ltable ltm lundump lvm lzio strbuf fpconv lauxlib lbaselib ldblib liolib lmathlib loslib \
	ltablib lstrlib loadlib linit lua_cjson lua_struct lua_cmsgpack lua_bit; do
	add "lua-$f.o" "$src/deps/lua/src" "$f.c" "-DLUA_ANSI -DENABLE_CJSON_GLOBAL -DREDIS_STATIC= -DLUA_USE_MKSTEMP"
done
for f in alloc async hiredis net read sds sockcompat; do
	add "hiredis-$f.o" "$src/deps/hiredis" "$f.c" ""
done
add "hdr_histogram.o" "$src/deps/hdr_histogram" "hdr_histogram.c" "-DHDR_MALLOC_INCLUDE=\"hdr_redis_malloc.h\""

# One compile per list line, by a generated script so that xargs can run
# them in parallel; a failed compile names itself in logs/failed.list.
{
	echo '#!/usr/bin/env bash'
	echo '# compile-one.sh "OUTPUT<TAB>DIR<TAB>SOURCE<TAB>FLAGS"'
	echo 'IFS=$'"'"'\t'"'"' read -r o d s f <<<"$1"'
	echo 'IFS=" " read -r -a flags <<<"$f"'
	echo "cc=($(printf '%q ' "${cc_redis[@]}") -Wall -W -Wno-missing-field-initializers)"
	echo "obj=$(printf '%q' "$work/obj") logs=$(printf '%q' "$logs")"
	echo 'if ! (cd "$d" && nice "${cc[@]}" "${flags[@]}" -c "$s" -o "$obj/$o") >"$logs/cc-$o.log" 2>&1; then'
	echo '	echo "$o" >>"$logs/failed.list"'
	echo '	exit 1'
	echo 'fi'
} >"$work/compile-one.sh"
chmod +x "$work/compile-one.sh"
t0=$(date +%s)
compat_log "compile $(wc -l <"$list") files with $jobs jobs (waiting for $COMPAT_HEAVY_LOCK)"
if ! flock "$COMPAT_HEAVY_LOCK" xargs -P "$jobs" -n 1 -d '\n' -a "$list" "$work/compile-one.sh"; then
	first=$(head -n 1 "$logs/failed.list" 2>/dev/null || echo unknown)
	fail "compiling ($(wc -l <"$logs/failed.list" 2>/dev/null || echo ?) files failed, first $first)" "$logs/cc-$first.log"
fi
run_logged "compile compat/redis_wasi.c" "$logs/cc-redis_wasi.log" \
	"${cc[@]}" -Wall -W "-I$compat" -c "$compat/redis_wasi.c" -o "$work/obj/compat-redis_wasi.o"
t_compile=$(($(date +%s) - t0))

# --------------------------------------------------------------------- link
# 8 MB of stack (Redis' deep recursion in Lua and sorting); __stack_pointer
# exported for vkernel.setjmp/longjmp and proc_fork (vkposix's ldflags).
# vkposix replaces wasi-libc's emulated signal and getpid libraries.
t0=$(date +%s)
run_logged "link redis-server.wasm" "$logs/link.log" flock "$COMPAT_HEAVY_LOCK" nice "${cc[@]}" \
	-o "$work/redis-server.wasm" "$work"/obj/*.o "$vkposix/libvkposix.a" \
	-Wl,-z,stack-size=8388608 "${vkposix_ldflags[@]}" \
	-lwasi-emulated-mman -lwasi-emulated-process-clocks -lc-printscan-long-double -lm
t_link=$(($(date +%s) - t0))

# ------------------------------------------------------------- assemble
new=$outroot/.new-$key
rm -rf "$new"
mkdir -p "$new/suite"
unstripped_size=$(stat -c %s "$work/redis-server.wasm")
compat_wasm_strip "$work/redis-server.wasm" "$new/redis-server.wasm"
cp -a "$src/runtest" "$src/tests" "$new/suite/"
# The suite looks for these relative to its root (helpers, default config).
mkdir -p "$new/suite/src"
cp "$src/redis.conf" "$new/suite/" 2>/dev/null || true
[ -f "$new/suite/tests/test_helper.tcl" ] || compat_die "tests/test_helper.tcl missing in the redis source"

# ---------------------------------------------------------- wasm imports
# Only WASI preview1 and the vkernel host module (vkernel/ABI.md).
compat_wasm_imports "$new/redis-server.wasm" "wasi_snapshot_preview1 vkernel" "$work/imports.list"

# ------------------------------------------------------------ build info
pkgver() { compat_pkgver "$1"; }
t_total=$(($(date +%s) - t_start))
INFO_KEY=$key INFO_OUT=$new INFO_WORK=$work INFO_DEB=$REDIS_DEB_VERSION INFO_REFERENCE_IMAGE=$(compat_reference_image redis "$REDIS_DEB_VERSION") INFO_VERSION=$redis_version \
	INFO_CLANG=$(pkgver clang-14) INFO_LLD=$(pkgver lld-14) INFO_LLVM=$(pkgver llvm-14) \
	INFO_WASILIBC=$(pkgver wasi-libc) INFO_RT=$(pkgver libclang-rt-14-dev-wasm32) INFO_WABT=$(pkgver wabt) \
	INFO_UNSTRIPPED=$unstripped_size INFO_PATCHES="$(cd "$here/patches/redis" && echo *.patch)" \
	INFO_T_COMPILE=$t_compile INFO_T_LINK=$t_link INFO_T_TOTAL=$t_total \
	python3 -E - <<'PY' || compat_die "writing build-info.json failed"
import hashlib, json, os
e = os.environ
out = e["INFO_OUT"]
wasm = os.path.join(out, "redis-server.wasm")
with open(wasm, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
imports = {}
with open(os.path.join(e["INFO_WORK"], "imports.list")) as f:
    for line in f:
        mod, _, name = line.strip().partition(" ")
        imports.setdefault(mod, []).append(name)
info = {
    "key": e["INFO_KEY"],
    "source": {"package": "redis", "version": e["INFO_DEB"], "distribution": "debian bookworm"},
    "redis_version": e["INFO_VERSION"],
    "reference_image": e["INFO_REFERENCE_IMAGE"],
    "target": "wasm32-unknown-wasi",
    "malloc": "libc",
    "patches": e["INFO_PATCHES"].split(),
    "link": ["-z stack-size=8388608", "libvkposix.a and its ldflags (--export=__stack_pointer)", "-lc-printscan-long-double"],
    "toolchain": {
        "clang-14": e["INFO_CLANG"], "lld-14": e["INFO_LLD"], "llvm-14": e["INFO_LLVM"],
        "wasi-libc": e["INFO_WASILIBC"], "libclang-rt-14-dev-wasm32": e["INFO_RT"], "wabt": e["INFO_WABT"],
    },
    "sizes": {"redis-server.wasm": os.path.getsize(wasm), "redis-server.wasm_unstripped": int(e["INFO_UNSTRIPPED"])},
    "sha256": {"redis-server.wasm": digest},
    "timings_s": {"compile": int(e["INFO_T_COMPILE"]), "link": int(e["INFO_T_LINK"]), "total": int(e["INFO_T_TOTAL"])},
    "wasm_imports": imports,
    "suite": "suite/ (runtest, tests/)",
}
with open(os.path.join(out, "build-info.json"), "w") as f:
    json.dump(info, f, indent=2)
    f.write("\n")
PY

compat_log "done in ${t_total} s: redis-server.wasm $(($(stat -c %s "$new/redis-server.wasm") / 1000)) kB (unstripped $((unstripped_size / 1000)) kB)"
compat_wasm_publish "$new"
