#!/bin/bash
# build.sh OUT [CC]: builds the vkposix library for wasm32-wasi with CC
# (clang-14 by default; clang-19 works the same) against Debian's
# wasi-libc, into OUT: libvkposix.a, include/ (to put first on the include
# path) and ldflags (every flag a program linking it needs: ldflags here
# and src/*.ldflags). Also the file part alone, for a port that takes
# nothing else: libvkposix-fs.a and ldflags-fs; and the net part (sockets
# and names) for a port that keeps its own signal layer: libvkposix-net.a
# and include-net/, which needs no link flags. See README.md.
set -euo pipefail
out=${1:?usage: build.sh OUT [CC]}
cc=${2:-clang-14}
here=$(cd "$(dirname "$0")" && pwd)
ver=${cc#clang-}
# VKPOSIX_TARGET: the target and sysroot flags instead of wasm32-wasi and
# Debian's wasi-libc (python.wasm with threads: wasm32-wasi-threads -pthread
# and images/wasi-libc-threads' sysroot).
target=${VKPOSIX_TARGET:---target=wasm32-wasi --sysroot=$out/sysroot}
ar=llvm-ar-$ver
command -v "$cc" >/dev/null || { echo "vkposix: $cc not found; install it with: apt-get install -y $cc lld-$ver" >&2; exit 1; }
command -v "$ar" >/dev/null || { echo "vkposix: $ar not found; install it with: apt-get install -y llvm-$ver" >&2; exit 1; }
[ -f /usr/include/wasm32-wasi/stdio.h ] || { echo "vkposix: wasi-libc missing; install it with: apt-get install -y wasi-libc" >&2; exit 1; }
mkdir -p "$out/obj" "$out/sysroot/include" "$out/sysroot/lib"
# shellcheck disable=SC2086 # $target is a list of flags
# A sysroot of wasi-libc alone: clang would otherwise fall back to the
# host's glibc headers.
ln -sfn /usr/include/wasm32-wasi "$out/sysroot/include/wasm32-wasi"
ln -sfn /usr/lib/wasm32-wasi "$out/sysroot/lib/wasm32-wasi"
rm -rf "$out/include"
cp -r "$here/include" "$out/include"
objs=()
for src in "$here"/src/*.c; do
	case $src in */net_signals.c) continue ;; esac
	obj=$out/obj/$(basename "${src%.c}").o
	"$cc" $target -O2 -Wall -Werror -I"$out/include" -c "$src" -o "$obj"
	objs+=("$obj")
done
# The net part's weak signal hooks (src/net_signals.c) stay out of
# libvkposix.a, where signal.c defines them.
"$cc" $target -O2 -Wall -Werror -I"$out/include" -c "$here/src/net_signals.c" -o "$out/obj/net_signals.o"
rm -f "$out/libvkposix.a" "$out/libvkposix-fs.a" "$out/libvkposix-net.a"
"$ar" rcs "$out/libvkposix.a" "${objs[@]}"
"$ar" rcs "$out/libvkposix-fs.a" "$out/obj/fsmode.o" "$out/obj/chmod.o" "$out/obj/ids.o"
"$ar" rcs "$out/libvkposix-net.a" "$out/obj/socket.o" "$out/obj/netdb.o" "$out/obj/net_signals.o"
# The socket headers alone, with Linux's constants, for the net part: no
# signal.h or unistd.h of the process layer.
rm -rf "$out/include-net"
mkdir -p "$out/include-net/sys" "$out/include-net/netinet" "$out/include-net/arpa"
for h in sys/socket.h netinet/in.h arpa/inet.h netdb.h vkposix_net.h \
	__struct_sockaddr_in.h __struct_sockaddr_un.h __struct_sockaddr_storage.h; do
	cp "$here/include/$h" "$out/include-net/$h"
done
cat "$here/ldflags" "$here"/src/*.ldflags >"$out/ldflags"
cp "$here/src/fs.ldflags" "$out/ldflags-fs"
