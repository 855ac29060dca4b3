package vkernel

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/guests"
	"golang.org/x/sys/unix"
)

// sharedWorld is a procWorld whose Start runs requests in shared hosts,
// with one host started and ready, so that the requests a test starts
// next go to it.
func sharedWorld(t *testing.T, share int) (*procWorld, int) {
	t.Helper()
	w := newProcWorld(t, guests.Clang14, 2, Options{StartShare: share})
	p, out := w.startPiped(t, Request{Args: []string{"posix", "echo", "first"}})
	if res, err := p.Wait(); err != nil || res.ExitCode != 0 || <-out != "first\n" {
		t.Fatalf("first request: %+v, %v", res, err)
	}
	return w, p.Pid()
}

// hostGone waits (a minute at most) for the host process pid to end.
func hostGone(pid int) bool {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if err := unix.Kill(pid, 0); err == unix.ESRCH {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// TestShareConcurrent: requests running at once in one shared host each
// have their own argv, environment, cwd, output and exit status.
func TestShareConcurrent(t *testing.T) {
	const n = 8
	w, host := sharedWorld(t, n)
	type want struct {
		out  string
		code uint32
	}
	var ps []*Process
	var outs []chan string
	var wants []want
	for i := 0; i < n; i++ {
		req := Request{}
		switch i % 4 {
		case 0:
			req.Args = []string{"posix", "write-later", "300", fmt.Sprintf("w%d", i)}
			wants = append(wants, want{fmt.Sprintf("w%d", i), 0})
		case 1:
			req.Args, req.Env = []string{"posix", "env", "X"}, []string{fmt.Sprintf("X=v%d", i)}
			wants = append(wants, want{fmt.Sprintf("env=v%d\n", i), 0})
		case 2:
			req.Args, req.Cwd = []string{"posix", "cwd"}, "/sub"
			wants = append(wants, want{"cwd=/sub\n", 0})
		case 3:
			req.Args = []string{"posix", "exit", strconv.Itoa(i)}
			wants = append(wants, want{"", uint32(i)})
		}
		p, out := w.startPiped(t, req)
		ps, outs = append(ps, p), append(outs, out)
	}
	for i, p := range ps {
		res, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if got := <-outs[i]; got != wants[i].out || res.ExitCode != wants[i].code || res.Signal != 0 {
			t.Errorf("request %d: out %q, %+v; want %q, status %d", i, got, res, wants[i].out, wants[i].code)
		}
		if p.Pid() != host {
			t.Errorf("request %d ran in process %d, not the shared host %d", i, p.Pid(), host)
		}
	}
	if s := w.k.Stats(); s.WarmRuns < n {
		t.Errorf("%d requests ran in a host that was ready, want %d: %+v", s.WarmRuns, n, s)
	}
}

// TestShareTrap: a guest that traps ends as killed by SIGABRT, as in a
// process of its own; a request running beside it in the same host
// completes, and the host goes on taking requests.
func TestShareTrap(t *testing.T) {
	w, host := sharedWorld(t, 4)
	alive, aliveOut := w.startPiped(t, Request{Args: []string{"posix", "write-later", "500", "alive"}})
	trap, _ := w.startPiped(t, Request{Args: []string{"posix", "trap"}})
	if alive.Pid() != host || trap.Pid() != host {
		t.Fatalf("requests in processes %d and %d, not the shared host %d", alive.Pid(), trap.Pid(), host)
	}
	res, err := trap.Wait()
	if err != nil || res.Signal != syscall.SIGABRT || res.ExitCode != 128+uint32(syscall.SIGABRT) {
		t.Errorf("trap: %+v, %v; want SIGABRT", res, err)
	}
	res, err = alive.Wait()
	if out := <-aliveOut; err != nil || out != "alive" || res.ExitCode != 0 {
		t.Errorf("beside the trap: out %q, %+v, %v", out, res, err)
	}
	p, out := w.startPiped(t, Request{Args: []string{"posix", "echo", "after"}})
	if res, err := p.Wait(); err != nil || <-out != "after\n" || res.ExitCode != 0 || p.Pid() != host {
		t.Errorf("after the trap: %+v, %v, in process %d (host %d)", res, err, p.Pid(), host)
	}
}

// TestShareSignals: a signal reaches only its own request's guest.
func TestShareSignals(t *testing.T) {
	w, host := sharedWorld(t, 4)
	victim, _ := w.startPiped(t, Request{Args: []string{"posix", "sleep", "60000"}})
	other, otherOut := w.startPiped(t, Request{Args: []string{"posix", "write-later", "800", "other"}})
	if victim.Pid() != host || other.Pid() != host {
		t.Fatalf("requests in processes %d and %d, not the shared host %d", victim.Pid(), other.Pid(), host)
	}
	if err := victim.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if res, err := victim.Wait(); err != nil || res.Signal != syscall.SIGTERM {
		t.Errorf("SIGTERM: %+v, %v", res, err)
	}
	if res, err := other.Wait(); err != nil || <-otherOut != "other" || res.ExitCode != 0 {
		t.Errorf("beside the signalled guest: %+v, %v", res, err)
	}
	if err := victim.Signal(syscall.SIGTERM); err != os.ErrProcessDone {
		t.Errorf("signal after the end: %v", err)
	}
}

// TestShareStuckGuestDrains: a guest computing without host calls that is
// killed is reported killed; its host takes no more requests, lets the
// request beside it complete, and then ends; the next request goes to
// another host.
func TestShareStuckGuestDrains(t *testing.T) {
	w, host := sharedWorld(t, 4)
	short, shortOut := w.startPiped(t, Request{Args: []string{"posix", "write-later", "2500", "done"}})
	spin := w.spinning(t)
	if short.Pid() != host || spin.Pid() != host {
		t.Fatalf("requests in processes %d and %d, not the shared host %d", short.Pid(), spin.Pid(), host)
	}
	spin.Kill()
	res, err := spin.Wait()
	if err != nil || res.Signal != syscall.SIGKILL || res.ExitCode != 128+uint32(syscall.SIGKILL) {
		t.Errorf("killed spinner: %+v, %v", res, err)
	}
	next, nextOut := w.startPiped(t, Request{Args: []string{"posix", "echo", "elsewhere"}})
	if res, err := next.Wait(); err != nil || <-nextOut != "elsewhere\n" || res.ExitCode != 0 {
		t.Errorf("request after the drain began: %+v, %v", res, err)
	}
	if next.Pid() == host {
		t.Errorf("a request went to the draining host %d", host)
	}
	res, err = short.Wait()
	if out := <-shortOut; err != nil || out != "done" || res.ExitCode != 0 {
		t.Errorf("beside the stuck guest: out %q, %+v, %v", out, res, err)
	}
	if !hostGone(host) {
		t.Errorf("draining host %d still runs after its other request ended", host)
	}
}

// spinning starts a guest that computes without host calls and returns
// once it does.
func (w *procWorld) spinning(t *testing.T) *Process {
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
	p, err := w.k.Start(context.Background(), Request{File: f, Args: []string{"posix", "spin", "spinning"}, Mounts: w.mounts, Stdout: pw})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if line != "spinning\n" {
		t.Fatalf("spinner: %q, %v", line, err)
	}
	// The line is out when its write is, not when the guest has left the
	// host call (where a stop would still find it): it is computing once
	// its process has used 300 ms more CPU time.
	cpu := func() int {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, _ := strconv.Atoi(f[11])
		s, _ := strconv.Atoi(f[12])
		return u + s // clock ticks, 100 per second
	}
	for start := cpu(); cpu() < start+30; {
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

// TestShareSnapshot: instances started from a snapshot at once in one
// shared host each start from the captured memory (mapped copy-on-write
// from one image): a write of one is seen by no other.
func TestShareSnapshot(t *testing.T) {
	w, err := newSnapWorld(t, snapSpec)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := w.f.open(t, Options{StartShare: 4, CacheDir: t.TempDir()})
	if r := k.entryRoute("snap"); r == nil || r.snap == nil || r.snap.image == nil || r.snap.image.size == 0 {
		t.Fatalf("the snapshot's memory is not kept as an image")
	}
	start := func() (*Process, chan string) {
		r, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		req := w.request("-c", "code")
		req.Stdout = pw
		p, err := k.Start(context.Background(), req)
		pw.Close()
		if err != nil {
			t.Fatal(err)
		}
		out := make(chan string, 1)
		go func() { b, _ := io.ReadAll(r); r.Close(); out <- string(b) }()
		return p, out
	}
	first, firstOut := start()
	if res, err := first.Wait(); err != nil || res.ExitCode != 0 {
		t.Fatalf("first: %+v, %v: %s", res, err, <-firstOut)
	}
	var ps []*Process
	var outs []chan string
	for i := 0; i < 4; i++ {
		p, out := start()
		ps, outs = append(ps, p), append(outs, out)
	}
	for i, p := range ps {
		res, err := p.Wait()
		out := <-outs[i]
		if err != nil || res.ExitCode != 0 || field(out, "start") != "snapshot" || field(out, "counter") != "42" {
			t.Errorf("instance %d: %+v, %v, output %q; want a snapshot start with counter=42", i, res, err, out)
		}
		if p.Pid() != first.Pid() {
			t.Errorf("instance %d in process %d, not the shared host %d", i, p.Pid(), first.Pid())
		}
	}
}

// TestShareDrainBound: a draining host whose other request outlasts
// Options.StartDrain is killed with it, which ends as killed.
func TestShareDrainBound(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 2, Options{StartShare: 4, StartDrain: 500 * time.Millisecond})
	long, _ := w.startPiped(t, Request{Args: []string{"posix", "sleep", "60000"}})
	spin := w.spinning(t)
	if long.Pid() != spin.Pid() {
		t.Fatalf("requests in processes %d and %d, not one shared host", long.Pid(), spin.Pid())
	}
	spin.Kill()
	if res, err := spin.Wait(); err != nil || res.Signal != syscall.SIGKILL {
		t.Errorf("killed spinner: %+v, %v", res, err)
	}
	if res, err := long.Wait(); err != nil || res.Signal != syscall.SIGKILL {
		t.Errorf("request beside it, past the drain bound: %+v, %v; want killed", res, err)
	}
	if !hostGone(long.Pid()) {
		t.Errorf("host %d still runs past the drain bound", long.Pid())
	}
}
