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
	"syscall"
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
	// Some fds live a moment past a request (the reaper's reads of
	// /proc, a teardown's pidfd): what is held for good is what counts.
	got := hostFDs(t, host)
	for i := 0; i < 50 && got > fds; i++ {
		time.Sleep(100 * time.Millisecond)
		got = hostFDs(t, host)
	}
	if got > fds {
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

// TestShareCollectsUnderLoad: a shared host never without a running
// request still collects its garbage, through its pause. Its collector is
// off and it collects only while no request runs (share.go, collect): with
// one request that runs throughout, the heap grows with the others' garbage
// (here a large environment each, which the host decodes from the run spec
// and copies for the guest) until it has grown by sharePauseHeap; then the
// host asks for no more requests (they go to another host), collects as
// soon as the long request ends, and takes requests again.
func TestShareCollectsUnderLoad(t *testing.T) {
	w, host := sharedWorld(t, 4)
	var sh *shareHost
	w.k.pool.mu.Lock()
	for _, h := range w.k.pool.hosts["posix"] {
		if h.pid == host {
			sh = h
		}
	}
	w.k.pool.mu.Unlock()
	if sh == nil {
		t.Fatalf("shared host %d is not in the pool", host)
	}
	state := func() (paused bool, pauses int) {
		w.k.pool.mu.Lock()
		defer w.k.pool.mu.Unlock()
		return sh.paused, sh.pauses
	}
	long, _ := w.startPiped(t, Request{Args: []string{"posix", "sleep", "600000"}})
	if long.Pid() != host {
		t.Fatalf("the long request runs in process %d, not the shared host %d", long.Pid(), host)
	}
	env := []string{"BIG=" + strings.Repeat("x", 16<<20)}
	run := func(what string) int {
		t.Helper()
		p, out := w.startPiped(t, Request{Args: []string{"posix", "echo", "ok"}, Env: env})
		res, err := p.Wait()
		if got := <-out; err != nil || res.ExitCode != 0 || got != "ok\n" {
			t.Fatalf("%s: %+v, %v, output %q", what, res, err, got)
		}
		return p.Pid()
	}
	n := 0
	for deadline := time.Now().Add(3 * time.Minute); ; n++ {
		if _, pauses := state(); pauses > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d requests beside the long one, host %d has not paused", n, host)
		}
		if pid := run("beside the long request"); pid != host {
			// Only a paused host is passed over (its pause may come
			// just before the request).
			if _, pauses := state(); pauses == 0 {
				t.Fatalf("request %d beside the long one ran in process %d, not the shared host %d", n, pid, host)
			}
		}
	}
	t.Logf("host %d paused after %d requests of %d MiB of environment", host, n, len(env[0])>>20)
	for i := 0; i < 2; i++ {
		if pid := run("while the host is paused"); pid == host {
			t.Fatalf("a request went to the paused host %d", host)
		}
	}
	long.Kill()
	if res, err := long.Wait(); err != nil || res.Signal != syscall.SIGKILL {
		t.Fatalf("long request: %+v, %v; want killed", res, err)
	}
	// Its end lets the host collect; then it says it is ready.
	for deadline := time.Now().Add(time.Minute); ; {
		if paused, _ := state(); !paused {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %d still paused a minute after its last request ended", host)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pid := run("after the collection"); pid != host {
		t.Errorf("the request after the collection ran in process %d, not the shared host %d", pid, host)
	}
}
