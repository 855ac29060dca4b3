# shellcheck shell=bash
# What the WebAssembly recipes (*/build-wasm.sh) share: the cache key and
# lock, the toolchain checks, the work tree with logged steps, the wasi-libc
# sysroot, unpacking Debian sources with our patches, taking turns on heavy
# steps, stripping, the import check and publishing the output. Source after
# lib/common.sh, with $here set to the recipe's directory.
#
# A recipe's output is CACHE/NAME/KEY/ (KEY: 16 hex digits of the recipe's
# hash); it is complete when it holds .done, and its path is the last line
# of the recipe's stdout.

# The lock every heavy step (configure, compile, link) takes, so that builds
# on this two-core machine take turns.
COMPAT_HEAVY_LOCK=${COMPAT_HEAVY_LOCK:-/tmp/compat-heavy-build.lock}

# compat_heavy CMD...: runs CMD niced, holding the heavy-build lock.
compat_heavy() { nice flock "$COMPAT_HEAVY_LOCK" "$@"; }

# compat_wasm_begin NAME "RECIPE FILES" "PINS"
# Computes the key over the recipe files (relative to images/, lib/common.sh
# and lib/wasm.sh always included) and the pins, and sets key, cache,
# outroot, out, jobs and t_start. When the output is complete it prints it
# and exits; otherwise it takes the recipe's lock (waiting for another build
# of the same key) and returns.
compat_wasm_begin() {
	local name=$1 files="$2 lib/common.sh lib/wasm.sh" pins=$3
	images=$(cd "$here/.." && pwd)
	key=$(compat_hash "$images" "$files" "$pins")
	key=${key:0:16}
	cache=$(compat_cache_root)
	outroot=$cache/$name
	out=$outroot/$key
	if [ -f "$out/.done" ]; then
		printf '%s\n' "$out"
		exit 0
	fi
	mkdir -p "$outroot"
	exec 9>"$outroot/.lock-$key"
	if ! flock -n 9; then
		compat_log "another build of $key is running; waiting for it"
		flock 9
	fi
	if [ -f "$out/.done" ]; then
		printf '%s\n' "$out"
		exit 0
	fi
	jobs=${COMPAT_JOBS:-2}
	t_start=$(date +%s)
}

# compat_wasm_need_toolchain: dies naming the Debian package of the first
# missing piece of the clang-14/wasi-libc toolchain.
compat_wasm_need_toolchain() {
	compat_need clang-14 clang-14
	compat_need llvm-ar-14 llvm-14
	compat_need llvm-ranlib-14 llvm-14
	compat_need llvm-strip-14 llvm-14
	compat_need wasm-ld-14 lld-14
	compat_need wasm-objdump wabt
	compat_need dpkg-source dpkg-dev
	compat_need apt-get apt
	compat_need flock util-linux
	compat_need patch patch
	compat_need python3 python3
	[ -f /usr/include/wasm32-wasi/stdio.h ] && [ -f /usr/lib/wasm32-wasi/libc.a ] ||
		compat_die "wasi-libc headers/libraries missing under /usr/include/wasm32-wasi and /usr/lib/wasm32-wasi; install them with: apt-get install -y wasi-libc"
	local rt
	rt=$(clang-14 --target=wasm32-wasi -print-libgcc-file-name)
	[ -f "$rt" ] || compat_die "compiler-rt for wasm32 missing ($rt); install it with: apt-get install -y libclang-rt-14-dev-wasm32"
}

# compat_wasm_work: a fresh work tree ($work, logs in $logs), the sysroot
# with only wasi-libc ($sysroot; clang-14 --target=wasm32-wasi would
# otherwise fall back to the host's glibc headers) and CC_WASI, and a
# private apt configuration for Debian's sources and packages.
compat_wasm_work() {
	work=$outroot/.work-$key
	rm -rf "$work"
	logs=$work/logs
	mkdir -p "$logs"
	compat_log "building $key (work tree $work)"
	sysroot=$work/sysroot
	mkdir -p "$sysroot/include" "$sysroot/lib"
	ln -s /usr/include/wasm32-wasi "$sysroot/include/wasm32-wasi"
	ln -s /usr/lib/wasm32-wasi "$sysroot/lib/wasm32-wasi"
	CC_WASI="clang-14 --target=wasm32-wasi --sysroot=$sysroot"
	aptdir=$(mktemp -d "${TMPDIR:-/tmp}/compat-apt.XXXXXX")
	# shellcheck disable=SC2064 # expand now: the path is fixed
	trap "rm -rf '$aptdir'" EXIT
	compat_private_apt "$aptdir" deb-src deb
}

# fail STEP LOGFILE: dies with the log's tail, keeping the work tree.
fail() {
	tail -n 40 "$2" >&2 || true
	compat_die "$1 failed; full log: $2 (work tree kept in $work)"
}

# run_logged STEP LOGFILE CMD...: runs CMD with its output in LOGFILE.
run_logged() {
	local step=$1 log=$2
	shift 2
	compat_log "$step"
	"$@" >"$log" 2>&1 || fail "$step" "$log"
}

# compat_need_output STEP LOGFILE FILE...: fails STEP unless every FILE
# exists and is not empty. Steps run as "( ... ) >log || fail" lose set -e
# inside the parentheses, so each one checks what it should have made.
compat_need_output() {
	local step=$1 log=$2 f
	shift 2
	for f in "$@"; do
		[ -s "$f" ] || fail "$step (did not produce $f)" "$log"
	done
}

# unpack PKG VERSION DEST: Debian's source (with Debian's patches), then
# ours from the recipe's patches/PKG/.
unpack() {
	local dsc p
	dsc=$(compat_fetch_source "$1" "$2" "$logs")
	run_logged "unpack $1 $2" "$logs/unpack-$1.log" dpkg-source -x "$dsc" "$3"
	for p in "$here/patches/$1"/*.patch; do
		[ -e "$p" ] || continue
		run_logged "patch $1: $(basename "$p")" "$logs/patch-$1-$(basename "$p").log" \
			patch -d "$3" -p1 -N -i "$p"
	done
}

# compat_wasm_strip IN OUT: OUT is IN without DWARF (the name section is
# kept, so traps still name functions).
compat_wasm_strip() {
	llvm-strip-14 --strip-debug -o "$2" "$1" || compat_die "llvm-strip-14 of $1 failed"
}

# compat_wasm_imports WASM MODULES LIST: checks that WASM imports only
# functions, and only from the space-separated host MODULES
# (wasi_snapshot_preview1, vkernel: see vkernel/ABI.md), and writes one
# "MODULE NAME" line per import, sorted, to LIST.
compat_wasm_imports() {
	local wasm=$1 modules=$2 list=$3 re bad
	wasm-objdump -x -j Import "$wasm" >"$logs/imports.txt" 2>&1 ||
		fail "wasm-objdump on $(basename "$wasm")" "$logs/imports.txt"
	re="^ - func\[[0-9]+\] .* <- ($(printf '%s' "$modules" | tr ' ' '|'))\."
	bad=$(grep -E '^ - ' "$logs/imports.txt" | grep -vE "$re" || true)
	[ -z "$bad" ] || compat_die "$(basename "$wasm") imports something outside $modules: $bad"
	sed -n 's/^ - func\[[0-9]*\] sig=[0-9]* <[^>]*> <- \([a-z_0-9]*\)\.\(.*\)$/\1 \2/p' "$logs/imports.txt" |
		sort -u >"$list"
	[ -s "$list" ] || compat_die "could not read the import list of $wasm (see $logs/imports.txt)"
}

# compat_wasm_publish NEW: marks the assembled output NEW complete, moves it
# to $out, drops the work tree (unless COMPAT_KEEP_WORK=1) and prints $out.
compat_wasm_publish() {
	local new=$1
	[ -s "$new/build-info.json" ] || compat_die "internal: $new has no build-info.json"
	date -u +%Y-%m-%dT%H:%M:%SZ >"$new/.done"
	rm -rf "$out"
	mv "$new" "$out"
	if [ "${COMPAT_KEEP_WORK:-0}" != 1 ]; then
		rm -rf "$work"
	fi
	printf '%s\n' "$out"
}

# compat_pkgver PKG: the installed version of a Debian package, or unknown.
compat_pkgver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo unknown; }
