package vkernel

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compat-project/compat/vkernel/guests"
)

// TestHostCallsCounted: a kernel given a host calls directory has each
// exec, its child processes' included, write the calls its guest made;
// the counts are those of the calls the posix guest makes.
func TestHostCallsCounted(t *testing.T) {
	t.Run("option", func(t *testing.T) {
		dir := t.TempDir()
		testHostCalls(t, dir, Options{HostCallsDir: dir})
	})
	t.Run("environment", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv(EnvHostCallsDir, dir)
		testHostCalls(t, dir, Options{})
	})
}

func testHostCalls(t *testing.T, dir string, opts Options) {
	w := newProcWorld(t, guests.Clang14, 8, opts)
	// The parent spawns three children in turn, each exiting at once.
	out, _ := w.run(t, "spawn-seq", w.self, "3")
	wantFields(t, out, "child0", "0", "child1", "0x100", "child2", "0x200")
	files, err := ReadHostCalls(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("%d host calls files, want 4 (the parent and its 3 children): %+v", len(files), files)
	}
	var parent *HostCallsFile
	children := 0
	for i, f := range files {
		if f.Entry != "posix" {
			t.Errorf("file of entry %q, want posix", f.Entry)
		}
		for name := range f.Calls {
			if !slices.Contains(HostFunctions(), name) {
				t.Errorf("counted %q, which is no host function", name)
			}
		}
		// wasi-libc's start-up reads the arguments once.
		if got := f.Calls["wasi_snapshot_preview1.args_get"]; got != 1 {
			t.Errorf("pid %d: args_get called %d times, want 1", f.Pid, got)
		}
		if f.Pid == os.Getpid() {
			parent = &files[i]
		} else {
			children++
			if n := f.Calls["vkernel.proc_spawn"]; n != 0 {
				t.Errorf("child %d: %d spawns counted, it made none", f.Pid, n)
			}
		}
	}
	if parent == nil || children != 3 {
		t.Fatalf("want the parent's file (pid %d) and 3 children's: %+v", os.Getpid(), files)
	}
	if got := parent.Calls["vkernel.proc_spawn"]; got != 3 {
		t.Errorf("parent: %d spawns counted, it made 3", got)
	}
	if got := parent.Calls["vkernel.proc_wait"]; got < 3 {
		t.Errorf("parent: %d waits counted, it waited for 3 children", got)
	}
	// The pipe guest makes two pipes: one with pipe, one with pipe2.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.Remove(filepath.Join(dir, e.Name()))
	}
	out, _ = w.run(t, "pipe")
	wantFields(t, out, "read", "5")
	files, err = ReadHostCalls(dir)
	if err != nil || len(files) != 1 {
		t.Fatalf("after one exec: %d files (%v), want 1", len(files), err)
	}
	if got := files[0].Calls["vkernel.fd_pipe"]; got != 2 {
		t.Errorf("fd_pipe called %d times, the guest made 2 pipes; counts: %v", got, files[0].Calls)
	}
	entries, _ = os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".making-") {
			t.Errorf("%s left behind", e.Name())
		}
	}
}
