package hostabi

import (
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestProcSigaction: dispositions decide what a signal does: caught ones
// are pending and cut a wait short with EINTR, ignored ones vanish,
// default ones end the guest (or are dropped where the default ignores);
// SIGKILL and SIGSTOP take the default only.
func TestProcSigaction(t *testing.T) {
	h := newHarness(t)
	s := h.open(t, Config{})
	for _, c := range []struct {
		sig, action uint64
		want        Errno
	}{
		{10, SigCatch, ESUCCESS}, {12, SigIgnore, ESUCCESS}, {9, SigCatch, EINVAL}, {19, SigIgnore, EINVAL},
		{9, SigDefault, ESUCCESS}, {0, SigCatch, EINVAL}, {65, SigCatch, EINVAL}, {10, 3, EINVAL},
	} {
		if errno, _ := s.call("vkernel.proc_sigaction", c.sig, c.action); errno != c.want {
			t.Errorf("proc_sigaction(%d, %d): errno %d, want %d", c.sig, c.action, errno, c.want)
		}
	}
	pid := uint64(unix.Getpid())
	s.must("vkernel.proc_kill", pid, 12) // ignored
	s.must("vkernel.proc_kill", pid, 17) // SIGCHLD: the default ignores it
	s.must("vkernel.proc_kill", pid, 10) // caught
	// A clock-only wait of 30 s returns at once with EINTR.
	sub := make([]byte, subscriptionSize)
	sub[8] = eventtypeClock
	put32(sub[16:], clockMonotonic)
	put64(sub[24:], uint64(30*time.Second))
	s.write(1000, sub)
	start := time.Now()
	if errno, _ := s.call("wasi_snapshot_preview1.poll_oneoff", 1000, 2000, 1, 300); errno != EINTR || time.Since(start) > 10*time.Second {
		t.Errorf("wait with a caught signal pending: errno %d after %v, want EINTR at once", errno, time.Since(start))
	}
	s.must("vkernel.proc_signals", 200)
	if set := s.u64(200); set != 1<<10 {
		t.Errorf("pending %#x, want SIGUSR1 alone", set)
	}
	// The default action of SIGTERM ends the guest at this very call.
	if _, err := s.call("vkernel.proc_kill", pid, 15); err == nil || s.p.KilledBy() != syscall.SIGTERM {
		t.Errorf("SIGTERM at its default: %v, killed by %v", err, s.p.KilledBy())
	}
}

// TestProcKillOutsideTree: a guest can signal itself and its children,
// nothing else.
func TestProcKillOutsideTree(t *testing.T) {
	s := newHarness(t).open(t, Config{})
	for _, pid := range []int64{1, int64(unix.Getppid()), -1, -2} {
		if errno, _ := s.call("vkernel.proc_kill", uint64(uint32(int32(pid))), 0); errno != ESRCH {
			t.Errorf("proc_kill(%d, 0): errno %d, want ESRCH", pid, errno)
		}
	}
	if errno, _ := s.call("vkernel.proc_kill", uint64(unix.Getpid()), 0); errno != ESUCCESS {
		t.Errorf("proc_kill(own pid, 0): errno %d", errno)
	}
	if errno, _ := s.call("vkernel.proc_kill", uint64(unix.Getpid()), 65); errno != EINVAL {
		t.Errorf("proc_kill(own pid, 65): errno %d, want EINVAL", errno)
	}
}

// TestRunnerSignalsCaught: a process made with Config.Signals (the
// runner's channel) starts with every signal caught but SIGKILL and
// SIGSTOP, as guests built before proc_sigaction expect.
func TestRunnerSignalsCaught(t *testing.T) {
	s := newHarness(t).open(t, Config{Signals: true})
	s.p.Signal(syscall.SIGTERM)
	s.p.Signal(syscall.SIGHUP)
	s.must("vkernel.proc_signals", 200)
	if set := s.u64(200); set != 1<<15|1<<1 {
		t.Errorf("pending %#x, want SIGTERM and SIGHUP", set)
	}
	if d := s.p.Dispositions(); d[9] != SigDefault || d[15] != SigCatch {
		t.Errorf("dispositions %v", d)
	}
}
