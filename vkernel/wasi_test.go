package vkernel

import (
	"bytes"
	"context"
	"testing"

	"github.com/compat-project/compat/vkernel/megabinary"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// runWASI runs the wasi.c guest in one mode with a fresh writable directory
// preopened as "/" (fd 3), on the vkernel and on plain wazero 1.12.
func runWASI(t *testing.T, mode string) (vk, wz string) {
	t.Helper()
	wasm := cGuest(t, "wasi.c")
	f := newFixture(t, entry("wasi", wasm, megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}}))
	k, _ := f.open(t, Options{})
	vk, _ = run(t, k, Request{Path: f.wasm("wasi"), Args: []string{"wasi", mode}, Mounts: []Mount{{Guest: "/", Host: t.TempDir()}}})

	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	var out bytes.Buffer
	cfg := wazero.NewModuleConfig().WithArgs("wasi", mode).WithStdout(&out).WithStderr(&out).
		WithFSConfig(wazero.NewFSConfig().WithDirMount(t.TempDir(), "/")).WithSysNanotime().WithSysNanosleep()
	if _, err := r.InstantiateWithConfig(ctx, wasm, cfg); err != nil {
		t.Logf("plain wazero: %v", err)
	}
	return vk, out.String()
}

// wasiCase is one probe value: what the vkernel must answer and what
// plain wazero 1.12 answers (ABI.md's table states both).
type wasiCase struct{ vk, wazero string }

// same is a value both answer alike.
func same(v string) wasiCase { return wasiCase{v, v} }

// TestWASIPreview1 runs the wasi.c probes on the vkernel and on plain
// wazero 1.12. The vkernel must answer as preview1 says (or as ABI.md
// documents); wazero's answers are checked too, so that ABI.md's "wazero"
// column stays true. Errno values: 8 EBADF, 28 EINVAL, 31 EISDIR, 52
// ENOSYS, 63 EPERM, 76 ENOTCAPABLE.
func TestWASIPreview1(t *testing.T) {
	for mode, want := range map[string]map[string]wasiCase{
		// A clock plus only stdio or regular-file subscriptions: the fds
		// fire at once (the vkernel answered EINVAL: epoll_wait with room
		// for no events); the 5 s clock is not due, so it does not fire
		// (had the call waited for it, it would have; wazero reports it
		// fired at once).
		"poll": {
			"poll_errno": same("0"), "poll_nevents": {"3", "4"}, "poll_fired": {"e", "f"},
			"poll_stdio_errno": same("0"), "poll_stdio_nevents": {"2", "3"},
		},
		// path_open(".") with the rights fd_fdstat_get reported, and with
		// every right: rights that do not apply to a directory are dropped
		// (the vkernel answered EISDIR, as wazero still does for all rights).
		"open-dot": {
			"fdstat_errno": same("0"), "open_dot_errno": same("0"), "open_dot_filetype": same("3"),
			"open_dot_write_right": same("0"), "open_dot_seek_right": same("0"), "open_dot_readdir_right": same("1"),
			"open_dot_all_errno": {"0", "31"},
		},
		// Paths are relative to the directory fd: absolute paths and ".."
		// above it are EPERM (the vkernel took both relative to the mount
		// root). At the root of a "/" mount, ".." stays there as in POSIX.
		"paths": {
			"abs_errno": same("63"), "sub_errno": same("0"), "sub_dotdot_errno": same("63"),
			"sub_dotdot_nested_errno": same("63"), "sub_dotdot_inside_errno": same("0"),
			"root_dotdot_inside_errno": same("0"), "root_dotdot_errno": {"0", "63"},
			"sub_stat_dotdot_errno": same("63"),
		},
		// fd_seek and fd_tell on a directory are EBADF (the vkernel
		// answered 0, wazero EISDIR); fd_renumber onto a closed number is
		// EBADF, not dup2 (the vkernel and wazero both moved the fd).
		"fds": {
			"dir_errno": same("0"), "dir_seek_errno": {"8", "31"}, "dir_tell_errno": {"8", "31"},
			"renumber_closed_errno": {"8", "0"}, "renumber_open_errno": same("0"), "renumber_from_closed": {"8", "0"},
		},
		// Rights are tracked: an fd opened with FD_READ and FD_SEEK cannot
		// write or truncate, can drop rights and not regain them, and
		// O_TRUNC needs PATH_FILESTAT_SET_SIZE on the directory.
		"rights": {
			"open_errno": same("0"), "write_errno": {"76", "8"}, "truncate_errno": {"76", "28"},
			"read_errno": same("0"), "rights": {"6", "8e001ff"}, "drop_errno": {"0", "52"},
			"read_dropped_errno": {"76", "0"}, "regain_errno": {"76", "52"},
			"trunc_without_right_errno": {"76", "0"}, "size_after": {"3", "0"},
		},
		// Tracking rights must not make stdio look like a terminal:
		// wasi-libc's isatty takes a character device without FD_SEEK and
		// FD_TELL for one.
		"isatty": {"isatty0": same("0"), "isatty1": same("0"), "isatty2": same("0")},
	} {
		t.Run(mode, func(t *testing.T) {
			vk, wz := runWASI(t, mode)
			for key, c := range want {
				if got := field(vk, key); got != c.vk {
					t.Errorf("vkernel: %s=%q, want %q\n%s", key, got, c.vk, vk)
				}
				if got := field(wz, key); got != c.wazero {
					t.Errorf("plain wazero: %s=%q, ABI.md says %q (update the table)\n%s", key, got, c.wazero, wz)
				}
			}
		})
	}
}
