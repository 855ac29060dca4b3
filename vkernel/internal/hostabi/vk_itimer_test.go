package hostabi

import (
	"testing"
	"time"
)

// TestProcSetitimer: the timer reports what was left and the interval,
// disarms with 0, leaves itself with a negative value (getitimer), and
// sends SIGALRM, which a caught disposition keeps pending.
func TestProcSetitimer(t *testing.T) {
	s := newHarness(t).open(t, Config{})
	s.must("vkernel.proc_setitimer", uint64(10*time.Second), uint64(time.Second), 100)
	if left, iv := s.u64(100), s.u64(108); left != 0 || iv != 0 {
		t.Errorf("first arming: old %d/%d, want 0/0", left, iv)
	}
	s.must("vkernel.proc_setitimer", uint64(1<<63|1), 0, 100) // negative: read only
	if left, iv := time.Duration(s.u64(100)), time.Duration(s.u64(108)); left <= 0 || left > 10*time.Second || iv != time.Second {
		t.Errorf("getitimer: %v left, interval %v", left, iv)
	}
	s.must("vkernel.proc_setitimer", 0, 0, 100)
	s.must("vkernel.proc_setitimer", uint64(1<<63|1), 0, 100)
	if left := s.u64(100); left != 0 {
		t.Errorf("disarmed timer: %d left", left)
	}
	if errno, _ := s.call("vkernel.proc_setitimer", 1, uint64(1<<63|1), 100); errno != EINVAL {
		t.Errorf("negative interval: errno %d, want EINVAL", errno)
	}
	s.must("vkernel.proc_sigaction", 14, SigCatch)
	s.must("vkernel.proc_setitimer", uint64(time.Millisecond), 0, 100)
	// A long wait ends with EINTR when the alarm comes.
	sub := make([]byte, subscriptionSize)
	sub[8] = eventtypeClock
	put32(sub[16:], clockMonotonic)
	put64(sub[24:], uint64(30*time.Second))
	s.write(1000, sub)
	if errno, _ := s.call("wasi_snapshot_preview1.poll_oneoff", 1000, 2000, 1, 300); errno != EINTR {
		t.Errorf("wait with the alarm due: errno %d, want EINTR", errno)
	}
	s.must("vkernel.proc_signals", 200)
	if set := s.u64(200); set != 1<<14 {
		t.Errorf("pending %#x, want SIGALRM", set)
	}
}
