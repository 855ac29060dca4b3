package hostabi

import (
	"testing"
)

// TestFdPipe: a pipe's ends carry bytes, report filetype unknown with
// their rights, poll as a socket does (ready only with data, hangup once
// the writer is gone), and a NONBLOCK read of an empty pipe is EAGAIN.
func TestFdPipe(t *testing.T) {
	s := newHarness(t).open(t, Config{})
	s.must("vkernel.fd_pipe", 100)
	r, w := s.u32(100), s.u32(104)
	if r == w || r < 3 {
		t.Fatalf("pipe fds %d, %d", r, w)
	}
	// fdstat: type unknown (0), read end without FD_WRITE, write end with.
	s.must("wasi_snapshot_preview1.fd_fdstat_get", uint64(r), 200)
	if typ, rights := s.u32(200)&0xff, s.u64(208); typ != filetypeUnknown || rights&rightFDRead == 0 || rights&rightFDWrite != 0 {
		t.Errorf("read end: type %d rights %#x", typ, rights)
	}
	s.must("wasi_snapshot_preview1.fd_fdstat_get", uint64(w), 200)
	if rights := s.u64(208); rights&rightFDWrite == 0 || rights&rightFDRead != 0 {
		t.Errorf("write end: rights %#x", rights)
	}

	// A read subscription with a 0 timeout clock: only the clock fires
	// while the pipe is empty.
	poll := func() []uint64 {
		sub := make([]byte, 2*subscriptionSize)
		put64(sub, 1)
		sub[8] = eventtypeFDRead
		put32(sub[16:], r)
		put64(sub[subscriptionSize:], 2)
		sub[subscriptionSize+8] = eventtypeClock
		put32(sub[subscriptionSize+16:], clockMonotonic)
		put64(sub[subscriptionSize+24:], 0)
		s.write(1000, sub)
		s.must("wasi_snapshot_preview1.poll_oneoff", 1000, 2000, 2, 300)
		var fired []uint64
		for i := uint32(0); i < s.u32(300); i++ {
			fired = append(fired, s.u64(2000+i*eventSize))
		}
		return fired
	}
	if got := poll(); len(got) != 1 || got[0] != 2 {
		t.Errorf("empty pipe: events %v, want the clock alone", got)
	}
	s.write(400, []byte("hello"))
	s.must("wasi_snapshot_preview1.fd_write", uint64(w), s.iovec(500, 400, 5), 1, 300)
	if got := poll(); len(got) < 1 || got[0] != 1 {
		t.Errorf("pipe with data: events %v, want the read subscription", got)
	}
	s.must("wasi_snapshot_preview1.fd_read", uint64(r), s.iovec(500, 600, 16), 1, 300)
	if n := s.u32(300); n != 5 {
		t.Errorf("read %d bytes, want 5", n)
	}
	s.must("wasi_snapshot_preview1.fd_fdstat_set_flags", uint64(r), fdflagNonblock)
	if errno, _ := s.call("wasi_snapshot_preview1.fd_read", uint64(r), s.iovec(500, 600, 16), 1, 300); errno != EAGAIN {
		t.Errorf("NONBLOCK read of an empty pipe: errno %d, want EAGAIN", errno)
	}
	s.must("wasi_snapshot_preview1.fd_close", uint64(w))
	if got := poll(); len(got) < 1 || got[0] != 1 {
		t.Errorf("pipe without writer: events %v, want the read subscription (hangup)", got)
	}
	s.must("wasi_snapshot_preview1.fd_read", uint64(r), s.iovec(500, 600, 16), 1, 300)
	if n := s.u32(300); n != 0 {
		t.Errorf("read after the writer closed: %d bytes, want 0 (EOF)", n)
	}
}

// TestFdPipeSigpipe: writing to a pipe without reader is EPIPE, and sends
// SIGPIPE: caught, it is pending; by default it ends the guest.
func TestFdPipeSigpipe(t *testing.T) {
	h := newHarness(t)
	s := h.open(t, Config{})
	s.must("vkernel.proc_sigaction", 13, SigCatch)
	s.must("vkernel.fd_pipe", 100)
	s.must("wasi_snapshot_preview1.fd_close", uint64(s.u32(100)))
	if errno, _ := s.call("wasi_snapshot_preview1.fd_write", uint64(s.u32(104)), s.iovec(500, 400, 1), 1, 300); errno != EPIPE {
		t.Errorf("write without reader: errno %d, want EPIPE", errno)
	}
	s.must("vkernel.proc_signals", 200)
	if set := s.u64(200); set != 1<<13 {
		t.Errorf("pending %#x, want SIGPIPE (bit 13)", set)
	}

	s = h.open(t, Config{})
	s.must("vkernel.fd_pipe", 100)
	s.must("wasi_snapshot_preview1.fd_close", uint64(s.u32(100)))
	_, err := s.call("wasi_snapshot_preview1.fd_write", uint64(s.u32(104)), s.iovec(500, 400, 1), 1, 300)
	if err == nil || s.p.KilledBy() != 13 {
		t.Errorf("write without reader, SIGPIPE at its default: %v, killed by %d; want the guest ended by SIGPIPE", err, s.p.KilledBy())
	}
}
