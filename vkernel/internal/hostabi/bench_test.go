package hostabi

import (
	"context"
	"errors"
	"testing"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/tetratelabs/wazero"
	"golang.org/x/sys/unix"
)

// hotGuest loops over the host calls a network server makes per request.
// Memory: an iovec {64, 8} at 0, result words at 16, one fd_read
// subscription at 128 (its fd at 144), events at 256, nevents at 320.
const hotGuest = `(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\40\00\00\00\08\00\00\00")
  (data (i32.const 136) "\01")
  (func (export "clock") (param $n i32) (result i32)
    (local $e i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $e (call $clock (i32.const 1) (i64.const 0) (i32.const 16)))
      (br_if $done (local.get $e))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $e))
  ;; rw writes 8 bytes to fd a and reads them back from fd b, n times.
  (func (export "rw") (param $a i32) (param $b i32) (param $n i32) (result i32)
    (local $e i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $e (call $write (local.get $a) (i32.const 0) (i32.const 1) (i32.const 16)))
      (br_if $done (local.get $e))
      (local.set $e (call $read (local.get $b) (i32.const 0) (i32.const 1) (i32.const 16)))
      (br_if $done (local.get $e))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $e))
  ;; sendrecv is rw with sock_send and sock_recv.
  (func (export "sendrecv") (param $a i32) (param $b i32) (param $n i32) (result i32)
    (local $e i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $e (call $send (local.get $a) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 16)))
      (br_if $done (local.get $e))
      (local.set $e (call $recv (local.get $b) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 16) (i32.const 20)))
      (br_if $done (local.get $e))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $e))
  ;; poll waits n times for fd to be readable (it always is).
  (func (export "poll") (param $fd i32) (param $n i32) (result i32)
    (local $e i32)
    (i32.store (i32.const 144) (local.get $fd))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $e (call $poll (i32.const 128) (i32.const 256) (i32.const 1) (i32.const 320)))
      (br_if $done (local.get $e))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $e))
)`

// hotBench runs fn of hotGuest in a process holding both ends of a
// stream socketpair (guest fds a and b); the first pair holds 8 unread
// bytes in b, so b always polls readable. With count, the process counts
// its calls per host function (Config.Counts), and the counts are
// checked.
func hotBench(b *testing.B, fn string, count bool, args func(a, b uint64) []uint64) {
	wasm, err := guests.WAT(hotGuest)
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(b, "cannot build the benchmark guest: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	if err := Instantiate(ctx, r); err != nil {
		b.Fatal(err)
	}
	p, err := NewProcess(Config{Counts: counters(count)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	var fds [2]uint64
	for i, hfd := range pair {
		fd, errno := p.fds.insert(&file{filetype: filetypeSocketStream, hostFD: hfd, rights: streamRights})
		if errno != ESUCCESS {
			b.Fatal(errno)
		}
		fds[i] = uint64(fd)
	}
	if fn == "poll" {
		unix.Write(pair[0], make([]byte, 8))
	}
	ctx = WithProcess(ctx, p)
	mod, err := r.Instantiate(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	f := mod.ExportedFunction(fn)
	b.ReportAllocs()
	b.ResetTimer()
	res, err := f.Call(ctx, args(fds[0], fds[1])...)
	b.StopTimer()
	if err != nil || res[0] != 0 {
		b.Fatalf("%s: %v, errno %v", fn, err, res)
	}
	if counts := p.CallCounts(); count != (counts != nil) {
		b.Fatalf("counting %v, but CallCounts gave %v", count, counts)
	} else if count {
		var sum uint64
		for _, n := range counts {
			sum += n
		}
		if _, calls := p.HostTime(); sum != uint64(calls) {
			b.Fatalf("the counts per function add up to %d, the process made %d calls", sum, calls)
		}
	}
}

// The host calls of a network server's request, each from a guest loop
// (ns/op is per iteration). Kernel time is part of every figure but
// clock's (read through the vDSO).
func BenchmarkClockTimeGet(b *testing.B) {
	hotBench(b, "clock", false, func(_, _ uint64) []uint64 { return []uint64{uint64(b.N)} })
}

func BenchmarkFdWriteRead(b *testing.B) {
	hotBench(b, "rw", false, func(x, y uint64) []uint64 { return []uint64{x, y, uint64(b.N)} })
}

func BenchmarkSockSendRecv(b *testing.B) {
	hotBench(b, "sendrecv", false, func(x, y uint64) []uint64 { return []uint64{x, y, uint64(b.N)} })
}

func BenchmarkPollOneoffReady(b *testing.B) {
	hotBench(b, "poll", false, func(_, y uint64) []uint64 { return []uint64{y, uint64(b.N)} })
}

// The same with the calls counted per host function (the polyfill
// coverage map, Config.CountCalls): the counting's cost per call is the
// difference.
func BenchmarkClockTimeGetCounted(b *testing.B) {
	hotBench(b, "clock", true, func(_, _ uint64) []uint64 { return []uint64{uint64(b.N)} })
}

func BenchmarkFdWriteReadCounted(b *testing.B) {
	hotBench(b, "rw", true, func(x, y uint64) []uint64 { return []uint64{x, y, uint64(b.N)} })
}
