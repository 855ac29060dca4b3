package vkernel

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/guests"
)

// start runs the posix guest with Start, its stdout a pipe, and returns
// what it wrote and how it ended.
func (w *procWorld) start(t *testing.T, req Request) (string, *Result) {
	t.Helper()
	p, out := w.startPiped(t, req)
	res, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return <-out, res
}

// startPiped starts the posix guest (req.File defaults to it, opened)
// with its stdout a pipe whose text arrives on the channel at its end.
func (w *procWorld) startPiped(t *testing.T, req Request) (*Process, chan string) {
	t.Helper()
	if req.File == nil {
		f, err := os.Open(filepath.Join(w.root, "posix.wasm"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		req.File = f
	}
	if req.Mounts == nil {
		req.Mounts = w.mounts
	}
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	req.Stdout = pw
	p, err := w.k.Start(context.Background(), req)
	pw.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		r.Close()
		out <- string(b)
	}()
	return p, out
}

// TestStart runs guests in child processes of their own: output straight
// to the fd given, exit status, argv, cwd and pid, and the later starts
// handed to a child started ahead of need.
func TestStart(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 4, Options{})
	out, res := w.start(t, Request{Path: "posix", Args: []string{"posix", "echo", "hello"}})
	if out != "hello\n" || res.ExitCode != 0 || res.Entry != "posix" {
		t.Errorf("echo: out %q, result %+v", out, res)
	}
	if _, res = w.start(t, Request{Args: []string{"posix", "exit", "7"}}); res.ExitCode != 7 {
		t.Errorf("exit 7: result %+v", res)
	}
	if out, _ = w.start(t, Request{Args: []string{"posix", "cwd"}, Cwd: "/sub"}); out != "cwd=/sub\n" {
		t.Errorf("cwd: %q", out)
	}
	p, outc := w.startPiped(t, Request{Args: []string{"posix", "ids"}})
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := field(<-outc, "pid"); got != strconv.Itoa(p.Pid()) {
		t.Errorf("guest pid %s, process %d", got, p.Pid())
	}
	if s := w.k.Stats(); s.WarmRuns == 0 {
		t.Errorf("no start ran in a child started ahead of need: %+v", s)
	}
	if !strings.Contains(w.audit.String(), `"action":"exec","path":"posix"`) {
		t.Errorf("no exec record naming the path given:\n%s", w.audit.String())
	}
}

// TestStartDenied: an unlisted file is refused before anything starts,
// with an audit record; so is a file that cannot be read.
func TestStartDenied(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 0, Options{})
	f, err := os.Open(filepath.Join(w.root, "unlisted.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = w.k.Start(context.Background(), Request{Path: "unlisted", File: f})
	var denied *DeniedError
	if !errors.As(err, &denied) || denied.Hash == "" {
		t.Fatalf("unlisted file: %v, want a denial with its hash", err)
	}
	if !strings.Contains(w.audit.String(), `"decision":"deny","reason":"not in the signed manifest`) {
		t.Errorf("no deny record:\n%s", w.audit.String())
	}
	wo, err := os.OpenFile(filepath.Join(w.root, "posix.wasm"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wo.Close()
	if _, err := w.k.Start(context.Background(), Request{File: wo}); !errors.As(err, &denied) {
		t.Errorf("write-only fd: %v, want a denial", err)
	}
}

// TestStartKillAndSignal: Kill ends a guest that computes without host
// calls; a signal with the default disposition kills the guest as
// natively; a cancelled context kills too.
func TestStartKillAndSignal(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 0, Options{})
	p, _ := w.startPiped(t, Request{Args: []string{"posix", "spin"}})
	time.Sleep(100 * time.Millisecond)
	p.Kill()
	res, err := p.Wait()
	if err != nil || res.ExitCode != 128+uint32(syscall.SIGKILL) {
		t.Errorf("killed spinner: %+v, %v", res, err)
	}
	p, _ = w.startPiped(t, Request{Args: []string{"posix", "sleep", "20000"}})
	time.Sleep(100 * time.Millisecond)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if res, _ := p.Wait(); res.Signal != syscall.SIGTERM {
		t.Errorf("SIGTERM: %+v", res)
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("signal after the end: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f, _ := os.Open(filepath.Join(w.root, "posix.wasm"))
	defer f.Close()
	p, err = w.k.Start(ctx, Request{File: f, Args: []string{"posix", "spin"}, Mounts: w.mounts})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled start still running")
	}
}

// TestStartOnly: a kernel that loads no code of its own routes and starts
// as any other (its children load theirs), denies what is not listed, and
// refuses Exec.
func TestStartOnly(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 0, Options{StartOnly: true})
	if out, res := w.start(t, Request{Args: []string{"posix", "echo", "lean"}}); out != "lean\n" || res.ExitCode != 0 {
		t.Errorf("start: %q, %+v", out, res)
	}
	f, _ := os.Open(filepath.Join(w.root, "unlisted.wasm"))
	defer f.Close()
	var denied *DeniedError
	if _, err := w.k.Start(context.Background(), Request{File: f}); !errors.As(err, &denied) {
		t.Errorf("unlisted: %v, want a denial", err)
	}
	if _, err := w.k.Exec(context.Background(), Request{Path: filepath.Join(w.root, "posix.wasm")}); err == nil || !strings.Contains(err.Error(), "Start only") {
		t.Errorf("Exec in a start-only kernel: %v", err)
	}
}

// TestStartPoolShrinks: after a burst, the children started ahead of need
// beyond what the load needs are ended once idle.
func TestStartPoolShrinks(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 0, Options{StartWarm: 4, StartShare: 1})
	w.k.pool.idle = 300 * time.Millisecond
	ready := func() int {
		w.k.pool.mu.Lock()
		defer w.k.pool.mu.Unlock()
		return len(w.k.pool.ready["posix"]) + w.k.pool.booting["posix"]
	}
	var ps []*Process
	for i := 0; i < 3; i++ {
		p, _ := w.startPiped(t, Request{Args: []string{"posix", "sleep", "400"}})
		ps = append(ps, p)
	}
	for _, p := range ps {
		p.Wait()
	}
	if n := ready(); n < 3 {
		t.Errorf("%d ready after a burst of 3, want at least 3", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ready() > 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := ready(); n != 1 {
		t.Errorf("%d ready once idle, want 1", n)
	}
}
