#!/usr/bin/env bash
# Builds a wasm32-wasi-threads sysroot: Debian bookworm's wasi-libc source
# (2022-05, from before wasi-libc had threads) with THREAD_MODEL=posix and
# our patches (patches/wasi-libc/, each with a header saying why): musl's
# pthread objects over memory.atomic.wait32/notify, pthread_create over the
# wasi-threads "thread-spawn" import, thread-local errno and TLS, locks in
# malloc and stdio. Compiled with clang-19 --target=wasm32-wasi-threads
# -pthread (atomics, bulk memory). Programs link it with
#   clang-19 --target=wasm32-wasi-threads -pthread --sysroot=<out>/sysroot
#     -Wl,--import-memory,--shared-memory,--max-memory=N
# as the vkernel's Threads ABI wants (vkernel/ABI.md).
#
# Output (not in git):
#   ${COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compat}/wasi-libc-threads/<key>/
#     sysroot/include/...                  headers
#     sysroot/lib/wasm32-wasi-threads/     libc.a, crt1*.o, libwasi-emulated-*.a
#     build-info.json                      versions, toolchain, timings
#     .done                                written when everything else is in place
# <key> = first 16 hex digits of sha256 over this recipe's files and pins.
# The last line of stdout is the output directory.
#
# Env: COMPAT_CACHE, COMPAT_JOBS (default 2), COMPAT_KEEP_WORK=1,
#      COMPAT_HEAVY_LOCK (the heavy-build lock, lib/wasm.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
images=$(cd "$here/.." && pwd)
# shellcheck source=../lib/common.sh
. "$images/lib/common.sh"
# shellcheck source=../lib/wasm.sh
. "$images/lib/wasm.sh"
# shellcheck source=versions.env
. "$here/versions.env"
COMPAT_LOG_TAG=wasi-libc-threads

recipe_files="wasi-libc-threads/build-wasm.sh wasi-libc-threads/versions.env"
for p in "$here"/patches/*/*.patch; do
	if [ -e "$p" ]; then recipe_files="$recipe_files wasi-libc-threads/${p#"$here"/}"; fi
done
llvm=19
compat_wasm_begin wasi-libc-threads "$recipe_files" "wasi-libc=$WASILIBC_DEB_VERSION llvm=$llvm"

compat_need dpkg-source dpkg-dev
compat_need apt-get apt
compat_need flock util-linux
compat_need patch patch
compat_need python3 python3
compat_need make make
compat_need "clang-$llvm" "clang-$llvm"
compat_need "llvm-ar-$llvm" "llvm-$llvm"
compat_need "llvm-nm-$llvm" "llvm-$llvm"
compat_wasm_work

t0=$(date +%s)
unpack wasi-libc "$WASILIBC_DEB_VERSION" "$work/src"
new=$outroot/.new-$key
rm -rf "$new"
mkdir -p "$new"
# Debian's own flags (debian/rules): no stack protector; -O2 -DNDEBUG as the
# Makefile's default.
run_logged "make THREAD_MODEL=posix (clang-$llvm)" "$logs/make.log" \
	compat_heavy make -C "$work/src" -j"$jobs" THREAD_MODEL=posix \
	CC="clang-$llvm" AR="llvm-ar-$llvm" NM="llvm-nm-$llvm" \
	EXTRA_CFLAGS="-O2 -DNDEBUG -fno-stack-protector" \
	SYSROOT="$new/sysroot" OBJDIR="$work/build" finish
compat_need_output "make" "$logs/make.log" "$new/sysroot/lib/wasm32-wasi-threads/libc.a" \
	"$new/sysroot/include/pthread.h" "$new/sysroot/lib/wasm32-wasi-threads/crt1-command.o"
# The thread entry point and the spawn import are in libc.a.
"llvm-nm-$llvm" "$new/sysroot/lib/wasm32-wasi-threads/libc.a" 2>/dev/null >"$logs/nm.txt"
grep -q ' T wasi_thread_start$' "$logs/nm.txt" || compat_die "libc.a defines no wasi_thread_start (see $logs/nm.txt)"
grep -q ' U __imported_wasi_thread_spawn$' "$logs/nm.txt" || compat_die "libc.a does not import thread-spawn (see $logs/nm.txt)"
t_make=$(($(date +%s) - t0))

INFO_KEY=$key INFO_VER=$WASILIBC_DEB_VERSION INFO_CLANG=$(compat_pkgver "clang-$llvm") \
	INFO_T_MAKE=$t_make INFO_PATCHES="$(cd "$here/patches/wasi-libc" && ls ./*.patch | tr '\n' ' ')" \
	INFO_OUT=$new python3 - <<'PY' || compat_die "writing build-info.json failed"
import json, os
e = os.environ
info = {
    "key": e["INFO_KEY"],
    "source": {"package": "wasi-libc", "version": e["INFO_VER"], "distribution": "debian bookworm"},
    "target": "wasm32-wasi-threads",
    "thread_model": "posix",
    "patches": [p[2:] for p in e["INFO_PATCHES"].split()],
    "toolchain": {"clang-19": e["INFO_CLANG"]},
    "sysroot": "sysroot",
    "timings_s": {"make": int(e["INFO_T_MAKE"])},
}
with open(os.path.join(e["INFO_OUT"], "build-info.json"), "w") as f:
    json.dump(info, f, indent=2)
    f.write("\n")
PY
compat_log "done in $t_make s"
compat_wasm_publish "$new"
