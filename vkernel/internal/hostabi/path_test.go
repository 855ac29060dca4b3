package hostabi

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/tetratelabs/wazero"
)

// openStatGuest opens "f" in the mount at fd 3 (open), fstats an fd into
// memory at 64 (stat) and reads the clock (tick: any other host call).
const openStatGuest = `(module
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $stat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "f")
  (func (export "open") (result i32)
    (drop (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 16)))
    (i32.load (i32.const 16)))
  (func (export "stat") (param $fd i32) (result i32)
    (call $stat (local.get $fd) (i32.const 64)))
  (func (export "tick") (result i32)
    (call $clock (i32.const 1) (i64.const 0) (i32.const 32)))
)`

// fd_filestat_get right after the path_open of the same fd answers with
// what path_open read (no second fstat); after any other host call it
// reads the file again.
func TestFilestatAfterOpen(t *testing.T) {
	wasm, err := guests.WAT(openStatGuest)
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "cannot build the guest: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	if err := Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	p, err := NewProcess(Config{Mounts: []Mount{{Guest: "/", Host: dir}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx = WithProcess(ctx, p)
	mod, err := r.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	call := func(fn string, args ...uint64) uint64 {
		t.Helper()
		res, err := mod.ExportedFunction(fn).Call(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	size := func(fd uint64) uint64 {
		t.Helper()
		if errno := call("stat", fd); errno != 0 {
			t.Fatalf("fd_filestat_get: errno %d", errno)
		}
		b, _ := mod.Memory().Read(64, 64)
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if ino := binary.LittleEndian.Uint64(b[8:]); ino != st.Sys().(*syscall.Stat_t).Ino {
			t.Fatalf("inode %d, want %d", ino, st.Sys().(*syscall.Stat_t).Ino)
		}
		return binary.LittleEndian.Uint64(b[32:])
	}
	fd := call("open")
	if got := size(fd); got != 5 {
		t.Fatalf("size right after open: %d, want 5", got)
	}
	fd = call("open")
	if errno := call("tick"); errno != 0 {
		t.Fatalf("clock_time_get: errno %d", errno)
	}
	if err := os.WriteFile(name, []byte("1234567890"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := size(fd); got != 10 {
		t.Fatalf("size after another host call and a write: %d, want 10", got)
	}
}
