package vkernel

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/compat-project/compat/vkernel/guests"
)

// endTestEnv makes this test binary run TestEndChildProcesses's body:
// EndChildProcesses is for a process about to die, so it runs in one of
// its own.
const endTestEnv = "VKERNEL_TEST_END_CHILDREN"

// TestEndChildProcesses: EndChildProcesses ends a guest's children (a
// chain of two, the last computing without host calls, and a warm one)
// and reaps them while the guest runs on; its next spawn answers EAGAIN.
func TestEndChildProcesses(t *testing.T) {
	if os.Getenv(endTestEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEndChildProcesses$", "-test.v")
		cmd.Env = append(os.Environ(), endTestEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestEndChildProcesses") {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	w := newProcWorld(t, guests.Clang14, 8, Options{})
	// Two children of the entry, then a chain: a warm child waits.
	out := &lineWriter{lines: make(chan string, 64)}
	done := make(chan error, 1)
	go func() {
		_, err := w.k.Exec(context.Background(), Request{Path: filepath.Join(w.root, "posix.wasm"),
			Args: []string{"posix", "end-children", w.self}, Mounts: w.mounts, Stdout: out})
		done <- err
	}()
	var pids []int
	for {
		l := nextLine(t, out.lines, done)
		if l == "leaf" {
			break
		}
		if v, ok := strings.CutPrefix(l, "tree_pid="); ok {
			pid, _ := strconv.Atoi(v)
			pids = append(pids, pid)
		}
	}
	if len(pids) != 3 {
		t.Fatalf("tree pids %v: want the guest's and two children's", pids)
	}
	if n := len(childProcesses(t)); n != 2 {
		t.Fatalf("%d child processes, want the chain's first and a warm one", n)
	}
	EndChildProcesses()
	if kids := childProcesses(t); len(kids) > 0 {
		t.Fatalf("processes left after EndChildProcesses: %v", kids)
	}
	for _, pid := range pids[1:] {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("process %d of the chain is left", pid)
		}
	}
	// The guest saw its child end (how depends on who reaped it first and
	// on how far its guest got), and its next spawn is refused.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var rest []string
	for len(out.lines) > 0 {
		rest = append(rest, <-out.lines)
	}
	if len(rest) != 2 || !strings.HasPrefix(rest[0], "chain=") || rest[1] != "spawn_errno=6" {
		t.Errorf("guest wrote %q after EndChildProcesses, want chain=STATUS and spawn_errno=6", rest)
	}
}
