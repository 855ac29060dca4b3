#!/usr/bin/env bash
# build.sh [LLVM_MAJOR]: builds a wasm32-wasi-threads sysroot (headers,
# crt1 files, libc.a and the emulation libraries) from Debian's wasi-libc
# source with clang-LLVM_MAJOR (default 19) and THREAD_MODEL=posix: every
# object compiled with -pthread (atomics, bulk memory, real thread-local
# storage), so that programs link with --shared-memory and run as
# wasi-threads guests of the vkernel (vkernel/ABI.md, "Threads").
#
# The source is the wasi-libc source package of the version pinned below
# (WASI_LIBC_VERSION; default: the installed wasi-libc's, bookworm's
# 0.0~git20220510). What that version gives: a libc whose every object
# allows shared memory (dlmalloc with its locks, errno per thread) and
# musl's pthread.h types; what it lacks: pthread_create and musl's thread
# sources (wasi-libc gained them in 2023), so a program brings its own
# thread start (wasi.thread-spawn and wasi_thread_start; the vkernel's
# test guest threads.c does) and must not use stdio from two threads at
# once. The newer sources with pthreads (trixie's 0.0~git20241209, built
# by Debian with clang-19 too) are listed by trixie's and sid's deb-src
# indexes but were not served by the archive here (404); pin one with
# WASI_LIBC_VERSION and WASI_LIBC_SUITE=trixie where it is.
#
# compiler-rt: clang-19 links libclang_rt.builtins-wasm32.a from
# libclang-rt-19-dev-wasm32 (lib/wasi) for --target=wasm32-wasi-threads
# too; its objects allow shared memory (the link check below uses it).
#
# Output (not in git), cached by this recipe's content and the versions:
#   ${COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compat}/wasi-libc-threads/<key>/
#     sysroot/include/wasm32-wasi-threads/  sysroot/lib/wasm32-wasi-threads/
#     build-info.json        source and toolchain versions
#     .done
# The last line of stdout is the output directory.
#
# Using it: clang-19 --target=wasm32-wasi-threads -pthread
#   --sysroot=OUT/sysroot ... -Wl,--import-memory,--shared-memory,--max-memory=BYTES
#   -Wl,--export=wasi_thread_start
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
images=$(cd "$here/../.." && pwd)
# shellcheck source=../common.sh
. "$images/lib/common.sh"
COMPAT_LOG_TAG=wasi-libc-threads

llvm=${1:-19}
case $llvm in
'' | *[!0-9]*) compat_die "LLVM_MAJOR '$llvm': want a number such as 19" ;;
esac
compat_need "clang-$llvm" "clang-$llvm"
compat_need "llvm-ar-$llvm" "llvm-$llvm"
compat_need "llvm-nm-$llvm" "llvm-$llvm"
compat_need "wasm-ld-$llvm" "lld-$llvm"
compat_need dpkg-query dpkg
compat_need dpkg-source dpkg-dev
compat_need apt-get apt
compat_need flock util-linux
compat_need make make
compat_need wasm-objdump wabt
rt=/usr/lib/llvm-$llvm/lib/clang/$llvm/lib/wasi/libclang_rt.builtins-wasm32.a
[ -f "$rt" ] || compat_die "compiler-rt builtins for wasm32 missing ($rt); install them with: apt-get install -y libclang-rt-$llvm-dev-wasm32"
src_ver=${WASI_LIBC_VERSION:-$(dpkg-query -W -f '${source:Version}' wasi-libc 2>/dev/null || true)}
[ -n "$src_ver" ] || compat_die "no wasi-libc version: install wasi-libc (apt-get install -y wasi-libc) or set WASI_LIBC_VERSION"
suite=${WASI_LIBC_SUITE:-$COMPAT_DIST}
case $suite in
'' | *[!a-z]*) compat_die "WASI_LIBC_SUITE '$suite': want a Debian codename such as bookworm or trixie" ;;
esac

# ---------------------------------------------------------------- cache key
files="lib/wasi-libc-threads/build.sh lib/common.sh"
key=$(compat_hash "$images" "$files" "wasi-libc=$src_ver suite=$suite clang-$llvm=$(dpkg-query -W -f '${Version}' "clang-$llvm" 2>/dev/null || echo unknown)")
key=${key:0:16}
outroot=$(compat_cache_root)/wasi-libc-threads
out=$outroot/$key
if [ -f "$out/.done" ]; then
	printf '%s\n' "$out"
	exit 0
fi
mkdir -p "$outroot"
exec 9>"$outroot/.lock-$key"
flock 9
if [ -f "$out/.done" ]; then
	printf '%s\n' "$out"
	exit 0
fi

work=$outroot/.work-$key
rm -rf "$work"
logs=$work/logs
mkdir -p "$logs"
fail() {
	tail -n 40 "$2" >&2 || true
	compat_die "$1 failed; full log: $2 (work tree kept in $work)"
}
compat_log "building $key from wasi-libc $src_ver ($suite) with clang-$llvm (work tree $work)"
aptdir=$(mktemp -d "${TMPDIR:-/tmp}/compat-apt.XXXXXX")
# shellcheck disable=SC2064 # expand now: the path is fixed
trap "rm -rf '$aptdir'" EXIT
COMPAT_DIST=$suite compat_private_apt "$aptdir" deb-src
if [ "$suite" != bookworm ]; then
	# Only the release itself: a testing or unstable suite's -updates
	# and -security entries may not exist.
	grep -E "[[:space:]]$suite[[:space:]]" "$aptdir/sources.list.deb-src" >"$aptdir/sources.list" ||
		compat_die "no deb-src entry for $suite could be derived from /etc/apt"
fi
dsc=$(compat_fetch_source wasi-libc "$src_ver" "$logs")
src=$work/src
dpkg-source -x "$dsc" "$src" >"$logs/unpack.log" 2>&1 || fail "unpacking $(basename "$dsc")" "$logs/unpack.log"
[ -f "$src/Makefile" ] || compat_die "$(basename "$dsc") has no Makefile at its top"

# ----------------------------------------------------------------- compile
# The triple is the Makefile's, set on the command line: the sysroot's
# directories are named after it, where clang --target=wasm32-wasi-threads
# looks. -Wno-error: newer clangs warn where the source's clang did not
# (the Makefile adds -Werror after EXTRA_CFLAGS, so it is dropped there).
sed -i 's/-Wall -Wextra -Werror/-Wall -Wextra/' "$src/Makefile"
sysroot=$work/sysroot
triple=wasm32-wasi-threads
mk=(make -C "$src" -j"${COMPAT_JOBS:-2}" "CC=clang-$llvm" "AR=llvm-ar-$llvm" "NM=llvm-nm-$llvm"
	THREAD_MODEL=posix "TARGET_TRIPLE=$triple" "MULTIARCH_TRIPLE=$triple"
	"SYSROOT=$sysroot" "OBJDIR=$work/obj" "EXTRA_CFLAGS=-O2 -DNDEBUG -fno-stack-protector")
compat_log "make startup_files libc (THREAD_MODEL=posix)"
nice "${mk[@]}" startup_files libc >"$logs/make.log" 2>&1 || fail "make startup_files libc" "$logs/make.log"
lib=$sysroot/lib/$triple
for a in libc.a crt1-command.o libwasi-emulated-signal.a libwasi-emulated-mman.a \
	libwasi-emulated-process-clocks.a libwasi-emulated-getpid.a libc-printscan-long-double.a; do
	[ -s "$lib/$a" ] || fail "make (did not produce $lib/$a)" "$logs/make.log"
done
[ -f "$sysroot/include/pthread.h" ] || fail "make (no pthread.h in the headers)" "$logs/make.log"
# The Makefile's own "finish" makes these empty archives (-lm, -lpthread
# ...); its symbol check expects the single-threaded target's lists.
for name in m rt pthread crypt util xnet resolv dl; do
	"llvm-ar-$llvm" crs "$lib/lib$name.a"
done

# ------------------------------------------------------------- link check
# A program with a thread-local variable, atomics, malloc and long double
# arithmetic (compiler-rt) links with a shared memory, imports it as
# env.memory, and keeps its data segments passive (initialised once, by
# __wasm_init_memory).
cat >"$work/check.c" <<'EOF'
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
static _Thread_local int mine;
static atomic_int n;
__attribute__((export_name("wasi_thread_start"))) void start(int tid, int arg) { (void)tid; (void)arg; }
int main(int argc, char **argv) {
	long double x = argc;
	char *p = malloc(16);
	mine = argc;
	atomic_fetch_add(&n, mine);
	printf("%s %d %Lf %p\n", argv[0], atomic_load(&n), x * 3, (void *)p);
	return 0;
}
EOF
"clang-$llvm" --target=$triple -pthread --sysroot="$sysroot" -O2 "$work/check.c" -o "$work/check.wasm" \
	-Wl,--import-memory,--shared-memory,--max-memory=67108864 -lc-printscan-long-double \
	>"$logs/link-check.log" 2>&1 || fail "linking a threaded program" "$logs/link-check.log"
wasm-objdump -x "$work/check.wasm" >"$logs/check-objdump.txt" 2>&1 || fail "wasm-objdump of the check program" "$logs/check-objdump.txt"
grep -qE '^ - memory\[0\] .* shared <- env\.memory' "$logs/check-objdump.txt" ||
	fail "the check program does not import a shared env.memory" "$logs/check-objdump.txt"
if grep -qE '^ - segment\[[0-9]+\] memory=0' "$logs/check-objdump.txt"; then
	fail "the check program has active data segments (want passive ones)" "$logs/check-objdump.txt"
fi

new=$outroot/.new-$key
rm -rf "$new"
mkdir -p "$new"
cp -a "$sysroot" "$new/sysroot"
cat >"$new/build-info.json" <<EOF
{
  "key": "$key",
  "source": {"package": "wasi-libc", "version": "$src_ver", "suite": "$suite"},
  "toolchain": {"clang-$llvm": "$(dpkg-query -W -f '${Version}' "clang-$llvm")"},
  "target": "$triple",
  "thread_model": "posix",
  "sysroot": "sysroot"
}
EOF
date -u +%Y-%m-%dT%H:%M:%SZ >"$new/.done"
rm -rf "$out"
mv "$new" "$out"
if [ "${COMPAT_KEEP_WORK:-0}" != 1 ]; then
	rm -rf "$work"
fi
compat_log "done: $out/sysroot"
printf '%s\n' "$out"
