package hostabi

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// threaded opens two instances of the trampoline guest over one process
// with threads, as thread-spawn makes them: one process (fd table, lock),
// an instance (and here a memory) each. cancel ends the process's
// context, which every wait watches: a test whose call hangs cancels it to
// stop rather than hang.
func (h *harness) threaded(t *testing.T, cfg Config) (a, b *session, cancel func()) {
	t.Helper()
	if cfg.Mounts == nil {
		cfg.Mounts = []Mount{{Guest: "/", Host: h.root}}
	}
	p, err := NewProcess(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// What NewProcess makes of Config.Threads, without the runtime
	// thread-spawn needs: these tests make their instances themselves.
	p.thr = &threadGroup{live: map[uint32]api.Module{}, endCh: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	ctx = WithProcess(ctx, p)
	t.Cleanup(func() { cancel(); p.Close() })
	mk := func() *session {
		mod, err := h.r.InstantiateModule(ctx, h.compiled, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mod.Close(context.Background()) })
		s := &session{t: t, p: p, mod: mod, ctx: ctx, idx: map[string]int{}}
		for i, f := range functions() {
			s.idx[f.module+"."+f.name] = i
		}
		return s
	}
	return mk(), mk(), cancel
}

type callResult struct {
	errno Errno
	err   error
}

// async makes the call on a goroutine of its own, as a thread does.
func (s *session) async(name string, args ...uint64) <-chan callResult {
	i, ok := s.idx[name]
	if !ok {
		s.t.Fatalf("no host function %s", name)
	}
	fn := s.mod.ExportedFunction("t" + itoa(i))
	done := make(chan callResult, 1)
	go func() {
		res, err := fn.Call(s.ctx, args...)
		r := callResult{err: err}
		if len(res) > 0 {
			r.errno = Errno(res[0])
		}
		done <- r
	}()
	return done
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// within waits for a call's result, or fails the test after d.
func within(t *testing.T, what string, c <-chan callResult, d time.Duration) callResult {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(d):
		t.Fatalf("%s: no return within %v", what, d)
	}
	return callResult{}
}

// stillBlocked fails the test if the call returns within d: it is to be
// waiting.
func stillBlocked(t *testing.T, what string, c <-chan callResult, d time.Duration) {
	t.Helper()
	select {
	case r := <-c:
		t.Fatalf("%s returned (errno %d, %v) while it was to wait", what, r.errno, r.err)
	case <-time.After(d):
	}
}

// hostFDOf is the host fd behind a guest fd, read under the process's
// lock.
func hostFDOf(p *Process, fd uint32) int {
	p.big.Lock()
	defer p.big.Unlock()
	if f := p.fds.get(fd); f != nil {
		return f.hostFD
	}
	return -1
}

const callLimit = 10 * time.Second

// TestThreadsReadReleasesLock: a thread blocked reading an empty pipe
// lets the other thread's host calls run, among them the write it waits
// for (with the lock held over the wait, the writer would wait for ever).
func TestThreadsReadReleasesLock(t *testing.T) {
	a, b, _ := newHarness(t).threaded(t, Config{})
	a.must("vkernel.fd_pipe", 100)
	r, w := a.u32(100), a.u32(104)
	read := a.async("wasi_snapshot_preview1.fd_read", uint64(r), a.iovec(500, 600, 16), 1, 300)
	stillBlocked(t, "fd_read of an empty pipe", read, 50*time.Millisecond)
	b.write(400, []byte("hello"))
	if res := within(t, "fd_write of the other thread", b.async("wasi_snapshot_preview1.fd_write", uint64(w), b.iovec(500, 400, 5), 1, 300), callLimit); res.errno != ESUCCESS || res.err != nil {
		t.Fatalf("fd_write: errno %d, %v", res.errno, res.err)
	}
	if res := within(t, "fd_read", read, callLimit); res.errno != ESUCCESS || res.err != nil {
		t.Fatalf("fd_read: errno %d, %v", res.errno, res.err)
	}
	if n := a.u32(300); n != 5 {
		t.Errorf("read %d bytes, want 5", n)
	}
	// The reader's iovec views were its own while it waited: the bytes
	// are in its memory, at its buffer.
	if got, _ := a.mod.Memory().Read(600, 5); string(got) != "hello" {
		t.Errorf("read %q, want hello", got)
	}
}

// TestThreadsPollReleasesLock: poll_oneoff on a pipe without a timeout in
// one thread, a write by the other, the subscription fires.
func TestThreadsPollReleasesLock(t *testing.T) {
	a, b, _ := newHarness(t).threaded(t, Config{})
	a.must("vkernel.fd_pipe", 100)
	r, w := a.u32(100), a.u32(104)
	sub := make([]byte, subscriptionSize)
	put64(sub, 7)
	sub[8] = eventtypeFDRead
	put32(sub[16:], r)
	a.write(1000, sub)
	poll := a.async("wasi_snapshot_preview1.poll_oneoff", 1000, 2000, 1, 300)
	stillBlocked(t, "poll_oneoff on an empty pipe", poll, 50*time.Millisecond)
	b.write(400, []byte("x"))
	if res := within(t, "fd_write of the other thread", b.async("wasi_snapshot_preview1.fd_write", uint64(w), b.iovec(500, 400, 1), 1, 300), callLimit); res.errno != ESUCCESS {
		t.Fatalf("fd_write: errno %d, %v", res.errno, res.err)
	}
	if res := within(t, "poll_oneoff", poll, callLimit); res.errno != ESUCCESS || res.err != nil {
		t.Fatalf("poll_oneoff: errno %d, %v", res.errno, res.err)
	}
	if n, ud, errno, tag := a.u32(300), a.u64(2000), a.u32(2008)&0xffff, a.u32(2010)&0xff; n != 1 || ud != 7 || errno != 0 || tag != eventtypeFDRead {
		t.Errorf("events %d, first: userdata %d errno %d type %d; want one read event, userdata 7", n, ud, errno, tag)
	}
}

// TestThreadsCloseWhileBlocked: another thread closes the fd a thread is
// blocked reading. The close returns at once; the reader returns EBADF;
// the host fd stays open (its number not reused) until the reader is
// done, and is closed then; a poll on a closed fd fires with EBADF.
func TestThreadsCloseWhileBlocked(t *testing.T) {
	a, b, _ := newHarness(t).threaded(t, Config{})
	a.must("vkernel.fd_pipe", 100)
	r := a.u32(100)
	hostR := hostFDOf(a.p, r)
	var st0 unix.Stat_t
	if err := unix.Fstat(hostR, &st0); err != nil {
		t.Fatal(err)
	}
	read := a.async("wasi_snapshot_preview1.fd_read", uint64(r), a.iovec(500, 600, 16), 1, 300)
	stillBlocked(t, "fd_read of an empty pipe", read, 50*time.Millisecond)
	if res := within(t, "fd_close of the fd another thread reads", b.async("wasi_snapshot_preview1.fd_close", uint64(r)), callLimit); res.errno != ESUCCESS {
		t.Fatalf("fd_close: errno %d, %v", res.errno, res.err)
	}
	// Until the reader lets go, the host fd is the pipe's still.
	a.p.big.Lock()
	var st unix.Stat_t
	if err := unix.Fstat(hostR, &st); err == nil && st.Ino != st0.Ino {
		t.Errorf("host fd %d was reused while a thread waited on it", hostR)
	}
	a.p.big.Unlock()
	if res := within(t, "fd_read after the close", read, callLimit); res.errno != EBADF || res.err != nil {
		t.Errorf("fd_read of a closed fd: errno %d, %v; want EBADF", res.errno, res.err)
	}
	a.p.big.Lock()
	if err := unix.Fstat(hostR, &st); err == nil && st.Ino == st0.Ino {
		t.Errorf("host fd %d still open after the reader returned", hostR)
	}
	a.p.big.Unlock()

	// poll_oneoff: a subscription on an fd closed while it waits fires
	// with EBADF.
	a.must("vkernel.fd_pipe", 100)
	r = a.u32(100)
	sub := make([]byte, subscriptionSize)
	put64(sub, 9)
	sub[8] = eventtypeFDRead
	put32(sub[16:], r)
	a.write(1000, sub)
	poll := a.async("wasi_snapshot_preview1.poll_oneoff", 1000, 2000, 1, 300)
	stillBlocked(t, "poll_oneoff on an empty pipe", poll, 50*time.Millisecond)
	if res := within(t, "fd_close", b.async("wasi_snapshot_preview1.fd_close", uint64(r)), callLimit); res.errno != ESUCCESS {
		t.Fatalf("fd_close: errno %d, %v", res.errno, res.err)
	}
	if res := within(t, "poll_oneoff after the close", poll, callLimit); res.errno != ESUCCESS || res.err != nil {
		t.Fatalf("poll_oneoff: errno %d, %v", res.errno, res.err)
	}
	if n, ud, errno := a.u32(300), a.u64(2000), a.u32(2008)&0xffff; n != 1 || ud != 9 || Errno(errno) != EBADF {
		t.Errorf("events %d, first: userdata %d errno %d; want one event, userdata 9, EBADF", n, ud, errno)
	}
}

// TestThreadsAcceptReleasesLock: a thread blocked in sock_accept lets the
// other thread's host calls run, and takes the connection when it comes.
func TestThreadsAcceptReleasesLock(t *testing.T) {
	h := newHarness(t)
	a, b, _ := h.threaded(t, Config{Listeners: []net.Listener{h.listener}})
	const listenFD = 4 // after stdio and the mount
	accept := a.async("wasi_snapshot_preview1.sock_accept", listenFD, 0, 300)
	stillBlocked(t, "sock_accept without a client", accept, 50*time.Millisecond)
	if res := within(t, "fd_pipe of the other thread", b.async("vkernel.fd_pipe", 100), callLimit); res.errno != ESUCCESS {
		t.Fatalf("fd_pipe: errno %d, %v", res.errno, res.err)
	}
	c, err := net.Dial("tcp", h.listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if res := within(t, "sock_accept", accept, callLimit); res.errno != ESUCCESS || res.err != nil {
		t.Fatalf("sock_accept: errno %d, %v", res.errno, res.err)
	}
	if fd := a.u32(300); fd < 5 {
		t.Errorf("accepted fd %d", fd)
	}
}

// TestThreadsSignalInterruptsOne: two threads blocked reading pipes; a
// caught signal interrupts one of them (EINTR), as natively a signal goes
// to one thread; the other waits on and reads what comes.
func TestThreadsSignalInterruptsOne(t *testing.T) {
	a, b, _ := newHarness(t).threaded(t, Config{})
	a.must("vkernel.proc_sigaction", uint64(unix.SIGUSR1), SigCatch)
	a.must("vkernel.fd_pipe", 100)
	a.must("vkernel.fd_pipe", 108)
	r1, r2 := a.u32(100), a.u32(108)
	w1, w2 := hostFDOf(a.p, a.u32(104)), hostFDOf(a.p, a.u32(112))
	ra := a.async("wasi_snapshot_preview1.fd_read", uint64(r1), a.iovec(500, 600, 16), 1, 300)
	rb := b.async("wasi_snapshot_preview1.fd_read", uint64(r2), b.iovec(500, 600, 16), 1, 300)
	stillBlocked(t, "fd_read a", ra, 50*time.Millisecond)
	stillBlocked(t, "fd_read b", rb, 0)
	a.p.Signal(unix.SIGUSR1)
	var first callResult
	var other <-chan callResult
	var otherW int
	select {
	case first = <-ra:
		other, otherW = rb, w2
	case first = <-rb:
		other, otherW = ra, w1
	case <-time.After(callLimit):
		t.Fatal("no read returned for the signal")
	}
	if first.errno != EINTR || first.err != nil {
		t.Fatalf("interrupted read: errno %d, %v; want EINTR", first.errno, first.err)
	}
	stillBlocked(t, "the other read", other, 200*time.Millisecond)
	unix.Write(otherW, []byte("abc"))
	if res := within(t, "the other read", other, callLimit); res.errno != ESUCCESS || res.err != nil {
		t.Fatalf("the other read: errno %d, %v", res.errno, res.err)
	}
}

// TestThreadsWaitEndsWithProcess: a thread blocked reading returns when
// the process's context ends, and its call stops the guest.
func TestThreadsWaitEndsWithProcess(t *testing.T) {
	a, _, cancel := newHarness(t).threaded(t, Config{})
	a.must("vkernel.fd_pipe", 100)
	read := a.async("wasi_snapshot_preview1.fd_read", uint64(a.u32(100)), a.iovec(500, 600, 16), 1, 300)
	stillBlocked(t, "fd_read of an empty pipe", read, 50*time.Millisecond)
	cancel()
	if res := within(t, "fd_read after the end", read, callLimit); res.err == nil {
		t.Errorf("fd_read: errno %d and no error; want the guest stopped", res.errno)
	}
}

// TestThreadsProcWaitReleasesLock: a thread blocked in proc_wait for a
// child lets the other thread's host calls run; the child (cat, reading
// a pipe) ends when the test closes its input, and the wait reaps it.
func TestThreadsProcWaitReleasesLock(t *testing.T) {
	a, b, _ := newHarness(t).threaded(t, Config{})
	in, out, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	defer out.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	pid, err := syscall.ForkExec("/bin/cat", []string{"cat"}, &syscall.ProcAttr{Files: []uintptr{in.Fd(), devnull.Fd(), devnull.Fd()}})
	if err != nil {
		testenv.Missing(t, "cannot start /bin/cat: %v", err)
	}
	in.Close()
	a.p.big.Lock()
	a.p.addChild(pid)
	a.p.big.Unlock()
	wait := a.async("vkernel.proc_wait", uint64(pid), 0, 300, 304)
	stillBlocked(t, "proc_wait for a running child", wait, 50*time.Millisecond)
	if res := within(t, "fd_pipe of the other thread", b.async("vkernel.fd_pipe", 100), callLimit); res.errno != ESUCCESS {
		t.Fatalf("fd_pipe: errno %d, %v", res.errno, res.err)
	}
	stillBlocked(t, "proc_wait for a running child", wait, 0)
	out.Close() // cat reads its end and exits 0
	if res := within(t, "proc_wait", wait, callLimit); res.errno != ESUCCESS || res.err != nil {
		t.Fatalf("proc_wait: errno %d, %v", res.errno, res.err)
	}
	if got, status := a.u32(300), a.u32(304); got != uint32(pid) || status != 0 {
		t.Errorf("proc_wait: pid %d status %#x; want %d, 0", got, status, pid)
	}
}

// TestThreadsFIFOReleasesLock: opening a FIFO (which waits for a writer)
// and reading it (a read that blocks in the host kernel: the FIFO is not
// non-blocking) each let the other thread's host calls run.
func TestThreadsFIFOReleasesLock(t *testing.T) {
	h := newHarness(t)
	fifo := filepath.Join(h.root, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	a, b, _ := h.threaded(t, Config{})
	a.write(1000, []byte("fifo"))
	open := a.async("wasi_snapshot_preview1.path_open", 3, 0, 1000, 4, 0, rightFDRead, 0, 0, 1100)
	stillBlocked(t, "path_open of a FIFO without a writer", open, 50*time.Millisecond)
	if res := within(t, "fd_pipe of the other thread", b.async("vkernel.fd_pipe", 100), callLimit); res.errno != ESUCCESS {
		t.Fatalf("fd_pipe: errno %d, %v", res.errno, res.err)
	}
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if res := within(t, "path_open", open, callLimit); res.errno != ESUCCESS || res.err != nil {
		t.Fatalf("path_open: errno %d, %v", res.errno, res.err)
	}
	fd := a.u32(1100)
	read := a.async("wasi_snapshot_preview1.fd_read", uint64(fd), a.iovec(500, 600, 16), 1, 300)
	stillBlocked(t, "fd_read of an empty FIFO", read, 50*time.Millisecond)
	if res := within(t, "fd_pipe of the other thread", b.async("vkernel.fd_pipe", 100), callLimit); res.errno != ESUCCESS {
		t.Fatalf("fd_pipe: errno %d, %v", res.errno, res.err)
	}
	w.Write([]byte("data"))
	if res := within(t, "fd_read", read, callLimit); res.errno != ESUCCESS || res.err != nil {
		t.Fatalf("fd_read: errno %d, %v", res.errno, res.err)
	}
	if got, _ := a.mod.Memory().Read(600, a.u32(300)); string(got) != "data" {
		t.Errorf("read %q, want data", got)
	}
}

// TestThreadsStdinReaderReleasesLock: a read of stdin given as a Go
// reader, which waits for input, lets the other thread's host calls run.
func TestThreadsStdinReaderReleasesLock(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	a, b, _ := newHarness(t).threaded(t, Config{Stdin: pr})
	read := a.async("wasi_snapshot_preview1.fd_read", 0, a.iovec(500, 600, 16), 1, 300)
	stillBlocked(t, "fd_read of stdin without input", read, 50*time.Millisecond)
	if res := within(t, "fd_pipe of the other thread", b.async("vkernel.fd_pipe", 100), callLimit); res.errno != ESUCCESS {
		t.Fatalf("fd_pipe: errno %d, %v", res.errno, res.err)
	}
	go pw.Write([]byte("line\n"))
	if res := within(t, "fd_read", read, callLimit); res.errno != ESUCCESS || res.err != nil {
		t.Fatalf("fd_read: errno %d, %v", res.errno, res.err)
	}
	if got, _ := a.mod.Memory().Read(600, a.u32(300)); string(got) != "line\n" {
		t.Errorf("read %q, want %q", got, "line\n")
	}
}

// TestThreadsSignalGoesToMain: with the main instance and another thread
// both blocked, each caught signal interrupts the main instance's call,
// as Linux gives a process's signal to its main thread first; the other
// thread waits on.
func TestThreadsSignalGoesToMain(t *testing.T) {
	main, other, _ := newHarness(t).threaded(t, Config{})
	main.p.thr.main = main.mod
	main.must("vkernel.proc_sigaction", uint64(unix.SIGUSR1), SigCatch)
	main.must("vkernel.fd_pipe", 100)
	main.must("vkernel.fd_pipe", 108)
	r1, r2, w2 := main.u32(100), main.u32(108), hostFDOf(main.p, main.u32(112))
	ro := other.async("wasi_snapshot_preview1.fd_read", uint64(r2), other.iovec(500, 600, 16), 1, 300)
	for i := 0; i < 3; i++ {
		rm := main.async("wasi_snapshot_preview1.fd_read", uint64(r1), main.iovec(500, 600, 16), 1, 300)
		stillBlocked(t, "the main instance's fd_read", rm, 50*time.Millisecond)
		main.p.Signal(unix.SIGUSR1)
		if res := within(t, "the main instance's fd_read", rm, callLimit); res.errno != EINTR || res.err != nil {
			t.Fatalf("signal %d: the main instance's read: errno %d, %v; want EINTR", i, res.errno, res.err)
		}
		stillBlocked(t, "the other thread's fd_read", ro, 30*time.Millisecond)
	}
	// With the main instance not waiting, the other thread takes it.
	main.p.Signal(unix.SIGUSR1)
	if res := within(t, "the other thread's fd_read", ro, callLimit); res.errno != EINTR || res.err != nil {
		t.Fatalf("the other thread's read, the main instance not waiting: errno %d, %v; want EINTR", res.errno, res.err)
	}
	unix.Write(w2, []byte("x"))
	ro = other.async("wasi_snapshot_preview1.fd_read", uint64(r2), other.iovec(500, 600, 16), 1, 300)
	if res := within(t, "the other thread's fd_read", ro, callLimit); res.errno != ESUCCESS || res.err != nil {
		t.Fatalf("the other thread's read: errno %d, %v", res.errno, res.err)
	}
}
