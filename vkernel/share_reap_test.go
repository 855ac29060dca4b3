package vkernel

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// procChildren returns the processes whose parent is pid, with their
// states (R, S, Z...), read from /proc.
func procChildren(t *testing.T, pid int) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	kids := map[int]string{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
			kids[n] = f[0]
		}
	}
	return kids
}

// hostFDs counts the open fds of process pid.
func hostFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// childless waits (30 s at most) until process pid has no child process
// left, zombies included, and returns what is left when it gives up.
func childless(t *testing.T, pid int) map[int]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		kids := procChildren(t, pid)
		if len(kids) == 0 || time.Now().After(deadline) {
			return kids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestShareReapsOrphans: a request whose guest exits without waiting for
// the children it started (a sleeper; a chain of two whose last process
// sleeps or computes without host calls) leaves nothing behind in its
// shared host, which goes on taking requests: each unwaited child is
// ended as at the end of a process of its own, and every host process of
// its tree is reaped, however deep, while the host lives on. The host's
// fds come back to what they were.
func TestShareReapsOrphans(t *testing.T) {
	w, host := sharedWorld(t, 4)
	if kids := childless(t, host); len(kids) != 0 {
		t.Fatalf("shared host %d has child processes before the test: %v", host, kids)
	}
	fds, goroutines := hostFDs(t, host), runtime.NumGoroutine()
	// A grandchild whose parent is killed outright is re-parented to the
	// host (its subreaper) and dies of its parent-death signal.
	killMiddle(t, w, host)
	if kids := childless(t, host); len(kids) != 0 {
		t.Fatalf("shared host %d keeps child processes (pid: state) after a child of a request was killed outright: %v", host, kids)
	}
	orphans := [][]string{
		{"sleep", "60000"},
		{"tree", w.self, "1"},
		{"tree", w.self, "1", "spin"},
		{"tree", w.self, "2"},
	}
	for round := 0; round < 2; round++ {
		for _, o := range orphans {
			args := append([]string{"posix", "orphan", w.self}, o...)
			p, out := w.startPiped(t, Request{Args: args})
			res, err := p.Wait()
			if err != nil || res.ExitCode != 0 || res.Signal != 0 {
				t.Fatalf("%v: %+v, %v", args, res, err)
			}
			if got := <-out; field(got, "orphan") == "" {
				t.Errorf("%v: output %q, want orphan=PID", args, got)
			}

			if p.Pid() != host {
				t.Fatalf("%v ran in process %d, not the shared host %d", args, p.Pid(), host)
			}
		}
	}
	// More requests on the same host, which must still answer.
	for i := 0; i < 4; i++ {
		p, out := w.startPiped(t, Request{Args: []string{"posix", "echo", "after" + strconv.Itoa(i)}})
		if res, err := p.Wait(); err != nil || res.ExitCode != 0 || <-out != "after"+strconv.Itoa(i)+"\n" || p.Pid() != host {
			t.Fatalf("request %d after the orphans: %+v, %v in process %d (host %d)", i, res, err, p.Pid(), host)
		}
	}
	if kids := childless(t, host); len(kids) != 0 {
		t.Errorf("shared host %d keeps child processes (pid: state) after its requests ended: %v", host, kids)
	}
	if got := hostFDs(t, host); got > fds {
		t.Errorf("shared host %d holds %d fds after the requests, %d before", host, got, fds)
	}
	// This process's side of the requests (reapers, audit copiers) ends
	// just after them.
	for i := 0; i < 50 && runtime.NumGoroutine() > goroutines; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > goroutines {
		t.Errorf("%d goroutines after the requests, %d before", got, goroutines)
	}
}

// killMiddle runs a request whose guest waits for a chain of two (tree
// SELF 1) and kills the chain's first process outright (SIGKILL, from
// here) once the last one runs: the last one is left an orphan.
func killMiddle(t *testing.T, w *procWorld, host int) {
	t.Helper()
	f, err := os.Open(filepath.Join(w.root, "posix.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := w.k.Start(context.Background(), Request{File: f, Args: []string{"posix", "status", w.self, "tree", w.self, "1"}, Mounts: w.mounts, Stdout: pw})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid() != host {
		t.Fatalf("request in process %d, not the shared host %d", p.Pid(), host)
	}
	lines := bufio.NewScanner(r)
	var pids []int
	var rest []string
	for lines.Scan() {
		l := lines.Text()
		if v, ok := strings.CutPrefix(l, "tree_pid="); ok {
			pid, _ := strconv.Atoi(v)
			pids = append(pids, pid)
			continue
		}
		if l == "leaf" {
			break
		}
		rest = append(rest, l)
	}
	if len(pids) != 2 {
		t.Fatalf("tree pids %v (other output %q): want the chain's two", pids, rest)
	}
	if err := unix.Kill(pids[0], unix.SIGKILL); err != nil {
		t.Fatalf("killing the chain's first process %d: %v", pids[0], err)
	}
	res, err := p.Wait()
	b, _ := io.ReadAll(r)
	if out := string(b); err != nil || res.ExitCode != 0 || !strings.Contains(out, "child=signaled sig=9") {
		t.Fatalf("request: %+v, %v, output %q; want its child killed by SIGKILL", res, err, out)
	}
}
