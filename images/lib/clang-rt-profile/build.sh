#!/usr/bin/env bash
# build.sh [LLVM_MAJOR]: builds LLVM's profile runtime (compiler-rt's
# lib/profile: libclang_rt.profile) for wasm32-wasi with clang-LLVM_MAJOR
# (default 19) against Debian's wasi-libc, from the Debian source package
# of that very clang (llvm-toolchain-N at the installed clang-N's source
# version: the raw profile format is the compiler's and llvm-profdata's).
# Debian's libclang-rt-N-dev-wasm32 ships only the builtins; without this
# library a -fprofile-generate / -fprofile-instr-generate link fails.
# Our patches (patches/*.patch, each with a header saying why) make the
# file writer build on wasi-libc and fix LLVM 19's "other platform"
# registration file, which wasm32 uses.
#
# Output (not in git), cached by this recipe's content and the versions:
#   ${COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compat}/clang-rt-profile-wasm32/<key>/
#     libclang_rt.profile-wasm32.a
#     build-info.json        source and toolchain versions
#     .done
# The last line of stdout is the output directory.
#
# Using it: compile with -fprofile-generate (or -fprofile-instr-generate),
# link the archive after the objects (clang's wasm driver does not add it)
# together with -lwasi-emulated-getpid (or another getpid), and give each
# process its own file: LLVM_PROFILE_FILE=/dir/name-%p.profraw. Merging
# into an existing file (%m) and the continuous mode (%c) are unsupported.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
images=$(cd "$here/../.." && pwd)
# shellcheck source=../common.sh
. "$images/lib/common.sh"
COMPAT_LOG_TAG=clang-rt-profile

llvm=${1:-19}
case $llvm in
'' | *[!0-9]*) compat_die "LLVM_MAJOR '$llvm': want a number such as 19" ;;
esac
compat_need "clang-$llvm" "clang-$llvm"
compat_need "llvm-ar-$llvm" "llvm-$llvm"
compat_need "wasm-ld-$llvm" "lld-$llvm"
compat_need dpkg-query dpkg
compat_need apt-get apt
compat_need flock util-linux
compat_need patch patch
[ -f /usr/include/wasm32-wasi/stdio.h ] && [ -f /usr/lib/wasm32-wasi/libc.a ] ||
	compat_die "wasi-libc headers/libraries missing under /usr/include/wasm32-wasi and /usr/lib/wasm32-wasi; install them with: apt-get install -y wasi-libc"
src_ver=$(dpkg-query -W -f '${source:Version}' "clang-$llvm" 2>/dev/null) ||
	compat_die "clang-$llvm is not an installed Debian package; install it with: apt-get install -y clang-$llvm"
src_pkg=$(dpkg-query -W -f '${source:Package}' "clang-$llvm")
wasi_ver=$(dpkg-query -W -f '${Version}' wasi-libc 2>/dev/null || echo unknown)

# ---------------------------------------------------------------- cache key
files="lib/clang-rt-profile/build.sh lib/common.sh"
for p in "$here"/patches/*.patch; do
	if [ -e "$p" ]; then files="$files lib/clang-rt-profile/patches/$(basename "$p")"; fi
done
key=$(compat_hash "$images" "$files" "$src_pkg=$src_ver wasi-libc=$wasi_ver")
key=${key:0:16}
outroot=$(compat_cache_root)/clang-rt-profile-wasm32
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
mkdir -p "$logs" "$work/sysroot/include" "$work/sysroot/lib"
fail() {
	tail -n 40 "$2" >&2 || true
	compat_die "$1 failed; full log: $2 (work tree kept in $work)"
}
compat_log "building $key from $src_pkg $src_ver (work tree $work)"
# A sysroot of wasi-libc alone: clang would otherwise fall back to the
# host's glibc headers.
ln -s /usr/include/wasm32-wasi "$work/sysroot/include/wasm32-wasi"
ln -s /usr/lib/wasm32-wasi "$work/sysroot/lib/wasm32-wasi"
aptdir=$(mktemp -d "${TMPDIR:-/tmp}/compat-apt.XXXXXX")
# shellcheck disable=SC2064 # expand now: the path is fixed
trap "rm -rf '$aptdir'" EXIT
compat_private_apt "$aptdir" deb-src
dsc=$(compat_fetch_source "$src_pkg" "$src_ver" "$logs")

# ------------------------------------------------------------------ unpack
# Only compiler-rt's profile sources, not the whole of LLVM (the orig
# tarball is 160 MB of xz): Debian's own patches are checked first, and
# none may touch them (were one to, this recipe must apply it).
srcdir=$(dirname "$dsc")
orig=$(find "$srcdir" -maxdepth 1 -name "${src_pkg}_*.orig.tar.*" | head -n 1)
deb=$(find "$srcdir" -maxdepth 1 -name "${src_pkg}_*.debian.tar.*" | head -n 1)
[ -f "$orig" ] && [ -f "$deb" ] || compat_die "$srcdir lacks the orig or debian tarball of $src_pkg $src_ver"
mkdir -p "$work/debian"
tar -xf "$deb" -C "$work/debian" >"$logs/unpack-debian.log" 2>&1 || fail "unpacking $(basename "$deb")" "$logs/unpack-debian.log"
touching=$(grep -lE '^(\+\+\+|---) [^ ]*compiler-rt/(lib|include)/profile/' -r "$work/debian/debian/patches" || true)
[ -z "$touching" ] || compat_die "Debian patches touch compiler-rt's profile runtime and this recipe does not apply them: $touching"
nice tar -xf "$orig" -C "$work" --wildcards '*/compiler-rt/lib/profile/*' '*/compiler-rt/include/profile/*' \
	>"$logs/unpack-orig.log" 2>&1 || fail "unpacking compiler-rt/lib/profile from $(basename "$orig")" "$logs/unpack-orig.log"
top=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name "${src_pkg}*" | head -n 1)
[ -f "$top/compiler-rt/lib/profile/InstrProfiling.c" ] || compat_die "$(basename "$orig") has no compiler-rt/lib/profile/InstrProfiling.c"
for p in "$here"/patches/*.patch; do
	[ -e "$p" ] || continue
	patch -d "$top" -p1 -N -i "$p" >"$logs/patch-$(basename "$p").log" 2>&1 ||
		fail "patch $(basename "$p")" "$logs/patch-$(basename "$p").log"
done

# ----------------------------------------------------------------- compile
# The file writer and the registration of the "other" platforms (wasm32
# has no linker-made section bounds); no gcov (GCDAProfiling.c), no other
# platform's file. COMPILER_RT_HAS_UNAME: wasi-libc has uname (%h).
prof=$top/compiler-rt/lib/profile
cc=(nice "clang-$llvm" --target=wasm32-wasi --sysroot="$work/sysroot" -O2 -Wall
	-D_WASI_EMULATED_GETPID -DCOMPILER_RT_HAS_UNAME=1
	-I"$top/compiler-rt/include" -I"$top/compiler-rt/lib")
objs=()
for c in InstrProfiling InstrProfilingBuffer InstrProfilingFile InstrProfilingInternal \
	InstrProfilingMerge InstrProfilingMergeFile InstrProfilingNameVar InstrProfilingPlatformOther \
	InstrProfilingUtil InstrProfilingValue InstrProfilingVersionVar InstrProfilingWriter; do
	"${cc[@]}" -c "$prof/$c.c" -o "$work/$c.o" >>"$logs/compile.log" 2>&1 || fail "compiling $c.c" "$logs/compile.log"
	objs+=("$work/$c.o")
done
# The registration of the at-exit writer is a C++ static initializer; it
# uses no C++ library.
"${cc[@]}" -x c++ -fno-exceptions -fno-rtti -c "$prof/InstrProfilingRuntime.cpp" -o "$work/InstrProfilingRuntime.o" \
	>>"$logs/compile.log" 2>&1 || fail "compiling InstrProfilingRuntime.cpp" "$logs/compile.log"
objs+=("$work/InstrProfilingRuntime.o")
new=$outroot/.new-$key
rm -rf "$new"
mkdir -p "$new"
"llvm-ar-$llvm" rcs "$new/libclang_rt.profile-wasm32.a" "${objs[@]}" >"$logs/ar.log" 2>&1 ||
	fail "llvm-ar-$llvm" "$logs/ar.log"

# A link check: an instrumented program links against the archive (wasm-ld
# reports every undefined symbol), in both instrumentation modes.
printf 'static int f(int x) { return x + 1; }\nint main(int c, char **v) { (void)v; return f(c) == 0; }\n' >"$work/check.c"
for mode in -fprofile-generate -fprofile-instr-generate; do
	"${cc[@]}" "$mode" "$work/check.c" "$new/libclang_rt.profile-wasm32.a" -lwasi-emulated-getpid \
		-o "$work/check.wasm" >"$logs/link-check.log" 2>&1 || fail "linking an instrumented program ($mode)" "$logs/link-check.log"
done

cat >"$new/build-info.json" <<EOF
{
  "key": "$key",
  "source": {"package": "$src_pkg", "version": "$src_ver", "files": "compiler-rt/lib/profile, compiler-rt/include/profile"},
  "toolchain": {"clang-$llvm": "$(dpkg-query -W -f '${Version}' "clang-$llvm")", "wasi-libc": "$wasi_ver"},
  "target": "wasm32-wasi",
  "archive": "libclang_rt.profile-wasm32.a"
}
EOF
date -u +%Y-%m-%dT%H:%M:%SZ >"$new/.done"
rm -rf "$out"
mv "$new" "$out"
if [ "${COMPAT_KEEP_WORK:-0}" != 1 ]; then
	rm -rf "$work"
fi
compat_log "done: $out/libclang_rt.profile-wasm32.a"
printf '%s\n' "$out"
