package vkernel

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compat-project/compat/vkernel/megabinary"
)

func auditRecords(t *testing.T, log string) []AuditRecord {
	t.Helper()
	var recs []AuditRecord
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var r AuditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestNoExecutableMemory(t *testing.T) {
	f := newFixture(t, entry("vk", cGuest(t, "vkprobe.c"), megabinary.Resources{}))
	k, audit := f.open(t, Options{})
	for _, c := range []struct{ mode, key, want string }{
		{"mmap-exec", "mmap_exec_errno", "63"},     // EPERM
		{"mprotect-wx", "mprotect_wx_errno", "63"}, // EPERM
		{"mmap-rw", "mmap_rw_errno", "0"},
	} {
		out, _ := run(t, k, Request{Path: f.wasm("vk"), Args: []string{"vkprobe", c.mode}})
		if got := field(out, c.key); got != c.want {
			t.Errorf("%s: %s=%q, want %s", c.mode, c.key, got, c.want)
		}
	}
	var denials []string
	for _, r := range auditRecords(t, audit.String()) {
		if r.Decision == "deny" {
			denials = append(denials, r.Action+" "+r.Entry)
		}
	}
	if strings.Join(denials, ",") != "mmap vk,mprotect vk" {
		t.Fatalf("audit denials %v, want the mmap and the mprotect of entry vk", denials)
	}
}

// TestGuestCannotRunItsOwnCode: a guest copies its own module with one bit
// changed and asks the vkernel to run it. The new file's hash is not in the
// manifest, so the spawn is refused (EACCES) and audited; a listed program
// spawned the same way runs.
func TestGuestCannotRunItsOwnCode(t *testing.T) {
	vk := entry("vk", cGuest(t, "vkprobe.c"), megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}, Processes: 4})
	f := newFixture(t, vk, entry("ident", identGuest(t, "spawned-ident"), megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}}))
	root := t.TempDir()
	for _, name := range []string{"vk", "ident"} {
		b, _ := os.ReadFile(f.wasm(name))
		os.WriteFile(filepath.Join(root, name+".wasm"), b, 0o755)
	}
	k, audit := f.open(t, Options{})
	mounts := []Mount{{Guest: "/", Host: root}}

	out, _ := run(t, k, Request{Path: f.wasm("vk"), Args: []string{"vkprobe", "write-exec", "/vk.wasm", "/new.wasm"}, Mounts: mounts})
	if field(out, "spawn_errno") != "2" { // EACCES
		t.Fatalf("spawning a guest-written module: %q, want spawn_errno=2", out)
	}
	written, err := os.ReadFile(filepath.Join(root, "new.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	// The denial names the guest's path, the host file it resolved to, the
	// hash and the entry that asked.
	var found bool
	for _, r := range auditRecords(t, audit.String()) {
		if r.Action == "exec" && r.Decision == "deny" && r.Hash == megabinary.SHA256(written) &&
			r.GuestPath == "/new.wasm" && r.Path == filepath.Join(root, "new.wasm") && r.Parent == "vk" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit denial naming guest path /new.wasm, host path %s, parent vk and the written module's hash; log:\n%s", filepath.Join(root, "new.wasm"), audit.String())
	}

	var stdout bytes.Buffer
	if _, err := k.Exec(context.Background(), Request{Path: f.wasm("vk"), Args: []string{"vkprobe", "spawn", "/ident.wasm"}, Mounts: mounts, Stdout: &stdout}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "spawned-ident\n") || field(stdout.String(), "spawn_errno") != "0" {
		t.Fatalf("spawning a listed program: %q", stdout.String())
	}
}

func TestSpawnNeedsPermission(t *testing.T) {
	f := newFixture(t, entry("vk", cGuest(t, "vkprobe.c"), megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}}))
	k, _ := f.open(t, Options{})
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "x.wasm"), []byte("\x00asm"), 0o755)
	out, _ := run(t, k, Request{Path: f.wasm("vk"), Args: []string{"vkprobe", "spawn", "/x.wasm"}, Mounts: []Mount{{Guest: "/", Host: root}}})
	if field(out, "spawn_errno") != "2" {
		t.Fatalf("spawn without the spawn resource: %q", out)
	}
}

// TestImportsOutsideHostSurfaceRefused: a module that imports a function the
// host surface does not have (such as a way to compile bytes), or a host
// function with the wrong signature, does not load.
func TestImportsOutsideHostSurfaceRefused(t *testing.T) {
	cases := map[string]string{
		"unknown import": `(module (import "vkernel" "compile" (func (param i32 i32) (result i32)))
			(memory (export "memory") 1) (func (export "_start")))`,
		"other module": `(module (import "env" "jit" (func))
			(memory (export "memory") 1) (func (export "_start")))`,
		"wrong signature": `(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))
			(memory (export "memory") 1) (func (export "_start")))`,
		"imported memory": `(module (import "env" "memory" (memory 1)) (func (export "_start")))`,
		"no start":        `(module (memory (export "memory") 1))`,
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			wasm := guest(t, func() ([]byte, error) { return watBytes(text) })
			d := megabinary.SHA256(wasm)
			mf, err := megabinary.Build([]megabinary.Entry{{Name: "bad", Hashes: []string{d}, Module: d}}, map[string][]byte{d: wasm})
			if err != nil {
				t.Fatal(err)
			}
			err = Verify(context.Background(), mf, "")
			if err == nil {
				t.Fatal("module loaded")
			}
			t.Log(err)
		})
	}
}
