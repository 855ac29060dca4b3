package vkernel

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/megabinary"
)

func TestFilesUnderMount(t *testing.T) {
	f := newFixture(t, entry("probe", cGuest(t, "probe.c"), megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}}))
	k, _ := f.open(t, Options{})
	root := t.TempDir()
	out, _ := run(t, k, Request{Path: f.wasm("probe"), Args: []string{"probe", "fs"}, Mounts: []Mount{{Guest: "/", Host: root}}})
	want := map[string]string{
		"create": "1", "write": "11", "stat": "0", "size": "11", "rename": "0", "readdir_b": "1",
		"read": "11", "data": "hello",
		// ".." stops at the mount root; an absolute symlink resolves inside
		// the mount, where /etc/passwd does not exist.
		"dotdot_errno": "44", "symlink_escape_errno": "44",
		"unlink": "0", "rmdir": "0",
	}
	for k, v := range want {
		if got := field(out, k); got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	if !strings.Contains(out, "unlink_missing=-1 errno=44") {
		t.Errorf("unlink of a missing file: %q", out)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("guest left %v behind", entries)
	}
}

// TestReadOnlyMount: writes are refused with EROFS, but removing a file
// that does not exist says ENOENT, so "remove if present" code works.
func TestReadOnlyMount(t *testing.T) {
	f := newFixture(t, entry("probe", cGuest(t, "probe.c"), megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/data", ReadOnly: true}}}))
	k, _ := f.open(t, Options{})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "present.txt"), []byte("kept"), 0o644)
	out, _ := run(t, k, Request{Path: f.wasm("probe"), Args: []string{"probe", "ro", "/data"}, Mounts: []Mount{{Guest: "/data", Host: dir, ReadOnly: true}}})
	for _, want := range []string{"ro_unlink_missing=-1 errno=44", "ro_create=-1 errno=69", "ro_unlink_present=-1 errno=69", "ro_read=4"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in %q", want, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "present.txt")); string(b) != "kept" {
		t.Error("read-only file changed")
	}
}

func TestResourcesBoundRequests(t *testing.T) {
	f := newFixture(t, entry("probe", cGuest(t, "probe.c"), megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/data", ReadOnly: true}}}))
	k, _ := f.open(t, Options{})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	for name, req := range map[string]Request{
		"mount outside the rules":            {Mounts: []Mount{{Guest: "/", Host: t.TempDir()}}},
		"writable mount of a read-only rule": {Mounts: []Mount{{Guest: "/data", Host: t.TempDir()}}},
		"listener beyond the limit":          {Listeners: []net.Listener{l}},
	} {
		req.Path = f.wasm("probe")
		_, err := k.Exec(context.Background(), req)
		var denied *DeniedError
		if !errors.As(err, &denied) {
			t.Errorf("%s: %v, want denied", name, err)
		}
	}
}

func TestTrapAndTimeout(t *testing.T) {
	trap := guest(t, func() ([]byte, error) {
		return watBytes(`(module (memory (export "memory") 1) (func (export "_start") unreachable))`)
	})
	f := newFixture(t, entry("trap", trap, megabinary.Resources{}), entry("probe", cGuest(t, "probe.c"), megabinary.Resources{Listeners: 1}))
	k, _ := f.open(t, Options{})
	_, err := k.Exec(context.Background(), Request{Path: f.wasm("trap")})
	var te *TrapError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("trap: %v", err)
	}

	// A guest blocked in accept stops when the exec's context ends.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = k.Exec(ctx, Request{Path: f.wasm("probe"), Args: []string{"probe", "echo", "3"}, Listeners: []net.Listener{l}})
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung guest: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("hung guest took %v to stop", d)
	}
}

func TestHostPath(t *testing.T) {
	mounts := []Mount{{Guest: "/", Host: "/srv/root"}, {Guest: "/usr/lib", Host: "/cache/lib"}}
	for guest, want := range map[string]string{
		"/bin/python":            "/srv/root/bin/python",
		"/usr/lib/python3.11/os": "/cache/lib/python3.11/os",
		"/usr/libx":              "/srv/root/usr/libx",
		"/usr/lib/../../etc":     "/srv/root/etc",
		"/../../etc/passwd":      "/srv/root/etc/passwd",
	} {
		if got, ok := HostPath(mounts, guest); !ok || got != want {
			t.Errorf("HostPath(%q) = %q, %v; want %q", guest, got, ok, want)
		}
	}
	if _, ok := HostPath(mounts[1:], "/bin/x"); ok {
		t.Error("a path under no mount resolved")
	}
}
