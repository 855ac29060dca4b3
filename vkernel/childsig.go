package vkernel

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/compat-project/compat/vkernel/internal/hostabi"
	"golang.org/x/sys/unix"
)

// sigRouter carries a child host process's host signals to its guest.
//
// A signal whose guest disposition is default and whose default action
// terminates is left to the host (SIG_DFL), so the process dies of it at
// once, even while the guest computes without calling the host, and its
// parent's wait sees the real signal. Every other signal keeps the Go
// runtime's handler and arrives through os/signal, to be delivered by the
// guest's disposition (hostabi.Process.Signal). The signals the Go runtime
// itself relies on (SIGSEGV and the other synchronous ones, SIGPIPE for
// writes to closed pipes, SIGURG for preemption, SIGPROF, SIGCHLD) are
// never left to the host.
type sigRouter struct {
	mu     sync.Mutex
	goAct  [65]kernelSigaction // the Go runtime's handlers, as found at start
	proc   *hostabi.Process
	queued []syscall.Signal // arrived before the guest's process existed
}

// kernelSigaction is the kernel's struct sigaction on linux/amd64 and
// arm64.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// stealPending takes one pending instance of sig off the process's
// signal queue without delivering it (rt_sigtimedwait with a zero
// timeout, which dequeues whatever the calling thread's mask) and reports
// whether there was one.
func stealPending(sig syscall.Signal) bool {
	set := uint64(1) << (uint(sig) - 1)
	var zero unix.Timespec
	r, _, e := unix.RawSyscall6(unix.SYS_RT_SIGTIMEDWAIT, uintptr(unsafe.Pointer(&set)), 0, uintptr(unsafe.Pointer(&zero)), 8, 0, 0)
	return e == 0 && int(r) == int(sig)
}

func rtSigaction(sig syscall.Signal, act, old *kernelSigaction) error {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// hostDefaultable reports whether sig's default action may be left to the
// host: it terminates, and the Go runtime does not need the signal.
func hostDefaultable(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGABRT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM,
		unix.SIGTERM, unix.SIGSTKFLT, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGVTALRM, unix.SIGIO, unix.SIGPWR, unix.SIGSYS:
		return true
	}
	// Real-time signals above the two glibc reserves (and the Go runtime
	// never uses).
	return sig >= 34 && sig <= 64
}

// newSigRouter takes over the process's signals for the guest, with the
// given starting dispositions (nil: all default).
func newSigRouter(dispositions []uint8) *sigRouter {
	r := &sigRouter{}
	ch := make(chan os.Signal, 64)
	var notified []os.Signal
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		switch sig {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGURG, unix.SIGCHLD, unix.SIGPROF:
			continue
		}
		notified = append(notified, sig)
	}
	signal.Notify(ch, notified...)
	for sig := syscall.Signal(1); sig <= 64; sig++ {
		_ = rtSigaction(sig, nil, &r.goAct[sig])
		d := hostabi.SigDefault
		if int(sig) < len(dispositions) {
			d = int(dispositions[sig])
		}
		r.set(sig, d)
	}
	go func() {
		for s := range ch {
			r.deliver(s.(syscall.Signal))
		}
	}()
	return r
}

// set applies a guest disposition at the host level.
func (r *sigRouter) set(sig syscall.Signal, action int) {
	if !hostDefaultable(sig) {
		return
	}
	if action == hostabi.SigDefault {
		// An instance sent before the guest's change but not yet taken
		// by a thread of this process would otherwise meet SIG_DFL and
		// kill it, where a native process would have run its handler
		// first: take such instances off the process's queue now (they
		// arrived while caught or ignored, and are dropped, as deliver
		// drops those os/signal has yet to hand over).
		for stealPending(sig) {
		}
		_ = rtSigaction(sig, &kernelSigaction{}, nil)
		return
	}
	act := r.goAct[sig]
	_ = rtSigaction(sig, &act, nil)
}

// deliver gives the guest a signal the Go runtime caught. A signal the
// host can leave to its default action reaches os/signal only while the
// guest catches or ignores it (set leaves it SIG_DFL otherwise), but it is
// delivered here a moment later, from another goroutine: if the guest has
// since set it back to default, it arrived while still caught or ignored,
// and a native process would have run its handler (or dropped it) before
// the change. It is dropped rather than made to kill the process (Python
// resets SIGINT to default as it exits; test_file_eintr's last SIGINT then
// killed a reader that had handled every other).
func (r *sigRouter) deliver(sig syscall.Signal) {
	r.mu.Lock()
	p := r.proc
	if p == nil {
		r.queued = append(r.queued, sig)
	}
	r.mu.Unlock()
	if p == nil {
		return
	}
	if hostDefaultable(sig) && int(sig) < len(p.Dispositions()) && p.Dispositions()[sig] == hostabi.SigDefault {
		return
	}
	p.Signal(sig)
}

// attach starts delivering to the guest's process, the signals that came
// before it first.
func (r *sigRouter) attach(p *hostabi.Process) {
	r.mu.Lock()
	r.proc = p
	queued := r.queued
	r.queued = nil
	r.mu.Unlock()
	for _, sig := range queued {
		p.Signal(sig)
	}
}

// dieOf ends the process as killed by sig: the host's default action,
// which for these signals terminates (without a core: runChild set
// RLIMIT_CORE to 0). A stop signal stops the process and dieOf returns
// once it is continued.
func dieOf(sig syscall.Signal) {
	signal.Reset(sig)
	_ = rtSigaction(sig, &kernelSigaction{}, nil)
	var set unix.Sigset_t
	set.Val[(sig-1)/64] |= 1 << ((uint(sig) - 1) % 64)
	_ = unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
	_ = unix.Kill(os.Getpid(), sig)
	if sig == unix.SIGSTOP || sig == unix.SIGTSTP || sig == unix.SIGTTIN || sig == unix.SIGTTOU {
		return
	}
	// The signal is delivered to some thread of the process at once; a
	// process still alive after this did not die of it.
	time.Sleep(time.Second)
	os.Exit(128 + int(sig))
}
