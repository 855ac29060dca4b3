package hostabi

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestFdDup: fd_dup takes the lowest free fd at or above min and shares
// the open file description (a write through the copy moves the
// original's offset); fd_dup2 replaces an open fd, leaves the source open,
// refuses a preopen's number; both answer EBADF for a closed source.
func TestFdDup(t *testing.T) {
	h := newHarness(t)
	s := h.open(t, Config{})
	name := "dupped"
	s.write(1000, []byte(name))
	s.must("wasi_snapshot_preview1.path_open", 3, 0, 1000, uint64(len(name)), oflagCreat,
		rightFDRead|rightFDWrite|rightFDSeek|rightFDTell, 0, 0, 2000)
	f := s.u32(2000)

	s.must("vkernel.fd_dup", uint64(f), 0, 100)
	d := s.u32(100)
	if d == f || d != f+1 {
		t.Errorf("fd_dup(%d, 0) = %d, want the lowest free fd %d", f, d, f+1)
	}
	s.write(400, []byte("abc"))
	s.must("wasi_snapshot_preview1.fd_write", uint64(d), s.iovec(500, 400, 3), 1, 300)
	s.must("wasi_snapshot_preview1.fd_tell", uint64(f), 300)
	if off := s.u64(300); off != 3 {
		t.Errorf("offset of the original after writing 3 bytes through the copy: %d, want 3 (shared)", off)
	}
	s.must("vkernel.fd_dup", uint64(f), 100, 100)
	if got := s.u32(100); got != 100 {
		t.Errorf("fd_dup(%d, 100) = %d, want 100", f, got)
	}
	if errno, _ := s.call("vkernel.fd_dup", 77, 0, 100); errno != EBADF {
		t.Errorf("fd_dup of a closed fd: errno %d, want EBADF", errno)
	}
	if errno, _ := s.call("vkernel.fd_dup", uint64(f), maxFDs, 100); errno != EINVAL {
		t.Errorf("fd_dup with min %d: errno %d, want EINVAL", maxFDs, errno)
	}

	// fd_dup2 onto the open copy d: d now names a pipe's write end, and
	// the file's offset did not move (the old d was closed, not written).
	s.must("vkernel.fd_pipe", 600)
	r, w := s.u32(600), s.u32(604)
	s.must("vkernel.fd_dup2", uint64(w), uint64(d))
	s.write(400, []byte("xy"))
	s.must("wasi_snapshot_preview1.fd_write", uint64(d), s.iovec(500, 400, 2), 1, 300)
	s.must("wasi_snapshot_preview1.fd_read", uint64(r), s.iovec(500, 700, 16), 1, 300)
	if n := s.u32(300); n != 2 {
		t.Errorf("read %d bytes written through the dup2 copy, want 2", n)
	}
	s.must("wasi_snapshot_preview1.fd_tell", uint64(f), 300)
	if off := s.u64(300); off != 3 {
		t.Errorf("file offset %d after dup2 replaced its copy, want 3", off)
	}
	// The source stays open; onto itself is a no-op; onto a free number
	// works (fd_renumber's EBADF case).
	s.must("wasi_snapshot_preview1.fd_write", uint64(w), s.iovec(500, 400, 1), 1, 300)
	s.must("vkernel.fd_dup2", uint64(w), uint64(w))
	s.must("vkernel.fd_dup2", uint64(w), 50)
	for fd, errno := range map[[2]uint64]Errno{{77, 51}: EBADF, {uint64(w), maxFDs}: EBADF, {uint64(w), 3}: EBADF} {
		if got, _ := s.call("vkernel.fd_dup2", fd[0], fd[1]); got != errno {
			t.Errorf("fd_dup2(%d, %d): errno %d, want %d", fd[0], fd[1], got, errno)
		}
	}
	// The pipe has a writer as long as one copy is open.
	for _, fd := range []uint32{w, d} {
		s.must("wasi_snapshot_preview1.fd_close", uint64(fd))
	}
	s.must("wasi_snapshot_preview1.fd_fdstat_set_flags", uint64(r), fdflagNonblock)
	s.must("wasi_snapshot_preview1.fd_read", uint64(r), s.iovec(500, 700, 16), 1, 300)
	if errno, _ := s.call("wasi_snapshot_preview1.fd_read", uint64(r), s.iovec(500, 700, 16), 1, 300); errno != EAGAIN {
		t.Errorf("read with fd 50 still writing: errno %d, want EAGAIN", errno)
	}
	s.must("wasi_snapshot_preview1.fd_close", 50)
	s.must("wasi_snapshot_preview1.fd_read", uint64(r), s.iovec(500, 700, 16), 1, 300)
	if n := s.u32(300); n != 0 {
		t.Errorf("read after every writer closed: %d bytes, want 0 (EOF)", n)
	}
	if b, _ := os.ReadFile(filepath.Join(h.root, name)); string(b) != "abc" {
		t.Errorf("file holds %q, want abc", b)
	}
}

// TestFdDupStdio: a copy of stdout backed by a Go writer writes to the
// same writer.
func TestFdDupStdio(t *testing.T) {
	var out bytes.Buffer
	s := newHarness(t).open(t, Config{Stdout: &out})
	s.must("vkernel.fd_dup", 1, 10, 100)
	s.write(400, []byte("via copy\n"))
	s.must("wasi_snapshot_preview1.fd_write", uint64(s.u32(100)), s.iovec(500, 400, 9), 1, 300)
	s.write(400, []byte("via one\n"))
	s.must("wasi_snapshot_preview1.fd_write", 1, s.iovec(500, 400, 8), 1, 300)
	s.must("wasi_snapshot_preview1.fd_close", uint64(s.u32(100)))
	s.p.Close()
	if got := out.String(); got != "via copy\nvia one\n" {
		t.Errorf("stdout %q, want both writes in order", got)
	}
}
