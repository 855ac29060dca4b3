package vkernel

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/megabinary"
)

// lineWriter passes each complete line written to it on lines.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.lines <- strings.TrimSuffix(line, "\n")
	}
}

func nextLine(t *testing.T, lines <-chan string, done <-chan error) string {
	t.Helper()
	select {
	case l := <-lines:
		return l
	case err := <-done:
		t.Fatalf("guest ended (%v) before writing the next line", err)
	case <-time.After(time.Minute):
		t.Fatal("no line from the guest within a minute")
	}
	return ""
}

// TestSignalsInterruptPoll delivers host signals to a guest waiting in
// poll_oneoff with a 30 s timeout: each one ends the wait with EINTR (27)
// and no events, and proc_signals hands over exactly the signals sent.
func TestSignalsInterruptPoll(t *testing.T) {
	f := newFixture(t, entry("vk", cGuest(t, "vkprobe.c"), megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	out := &lineWriter{lines: make(chan string, 16)}
	sigs := make(chan os.Signal, 4)
	done := make(chan error, 1)
	var res *Result
	go func() {
		var err error
		res, err = k.Exec(context.Background(), Request{Path: f.wasm("vk"), Args: []string{"vkprobe", "signals"},
			Stdout: out, Signals: sigs})
		done <- err
	}()
	if l := nextLine(t, out.lines, done); l != "waiting" {
		t.Fatalf("first line %q, want waiting", l)
	}
	sigs <- syscall.SIGUSR1
	if l := nextLine(t, out.lines, done); l != "poll_errno=27 nevents=0 signals_errno=0 set=0x400" {
		t.Fatalf("after SIGUSR1: %q, want EINTR and set 0x400 (bit 10)", l)
	}
	sigs <- syscall.SIGTERM
	if l := nextLine(t, out.lines, done); l != "poll_errno=27 nevents=0 signals_errno=0 set=0x8000" {
		t.Fatalf("after SIGTERM: %q, want EINTR and set 0x8000 (bit 15)", l)
	}
	if err := <-done; err != nil {
		t.Fatalf("exec: %v", err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("exit code %d, want 0 (the guest exits on SIGTERM)", res.ExitCode)
	}
}

// TestSignalsPendingUntilWait sends a signal before the guest waits: it is
// not lost, and the guest's first wait returns at once with it.
func TestSignalsPendingUntilWait(t *testing.T) {
	f := newFixture(t, entry("vk", cGuest(t, "vkprobe.c"), megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := k.Exec(ctx, Request{Path: f.wasm("vk"), Args: []string{"vkprobe", "signals"}, Stdout: &out, Signals: sigs})
	if err != nil {
		t.Fatalf("exec: %v (output %q)", err, out.String())
	}
	if res.ExitCode != 0 || !strings.Contains(out.String(), "set=0x8000") {
		t.Fatalf("exit %d, output %q: want the pending SIGTERM taken at the first wait", res.ExitCode, out.String())
	}
}

// TestSignalsNoneWithoutChannel checks that proc_signals reports an empty
// set, and poll_oneoff sleeps its whole timeout, for a process given no
// signal channel.
func TestSignalsNoneWithoutChannel(t *testing.T) {
	f := newFixture(t, entry("vk", cGuest(t, "vkprobe.c"), megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	out := &lineWriter{lines: make(chan string, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := k.Exec(ctx, Request{Path: f.wasm("vk"), Args: []string{"vkprobe", "signals"}, Stdout: out})
		done <- err
	}()
	nextLine(t, out.lines, done)
	// Nothing can reach the guest: its 30 s wait runs on.
	select {
	case l := <-out.lines:
		t.Fatalf("the wait ended early: %q", l)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	<-done
}
