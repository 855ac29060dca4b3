package hostabi

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// Signal dispositions, as vkernel.proc_sigaction takes them.
const (
	SigDefault = 0
	SigIgnore  = 1
	SigCatch   = 2
)

// maxSignal is the highest signal number (Linux has 64).
const maxSignal = 64

// signals is a process's signal state: the guest's disposition of each
// signal, the caught signals pending for proc_signals, and the wake-up that
// interrupts blocking host calls. The host side (deliver) may run on any
// goroutine; the guest side (the host calls) on the guest's.
//
// A signal never interrupts guest code: like a signal that arrives while a
// native process runs, a caught one is pending until the guest next blocks
// in a host call, which then returns EINTR at once, and the guest takes
// the pending set with proc_signals and runs its handlers, as a native libc
// runs them on return from the system call.
type signals struct {
	disp    [maxSignal + 1]atomic.Uint32
	pending atomic.Uint64 // bit n: signal n is pending

	// mu guards wake against Close: deliver writes to it from other
	// goroutines (timers, the runner's channel, a child's watcher).
	mu     sync.RWMutex
	closed bool
	// wake is an eventfd each caught signal makes readable. Blocking host
	// calls wait on it too and drain it when it ends their wait, so that
	// each arrival interrupts one call, whether or not the guest takes
	// the signal.
	wake int

	// killedBy is the signal whose default action ended the guest (0:
	// none).
	killedBy atomic.Int32
}

func newSignals(caught bool) (*signals, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	s := &signals{wake: fd}
	if caught {
		for sig := 1; sig <= maxSignal; sig++ {
			if sig != int(unix.SIGKILL) && sig != int(unix.SIGSTOP) {
				s.disp[sig].Store(SigCatch)
			}
		}
	}
	return s, nil
}

// wakeUp makes the current or next blocking host call return.
func (s *signals) wakeUp() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(s.wake, one[:])
}

// drainWake clears the wake-up after a wait saw it readable.
func (s *signals) drainWake() {
	var buf [8]byte
	_, _ = unix.Read(s.wake, buf[:])
}

// takeWake clears the wake-up and reports whether this call did: of the
// threads' waits that see it readable at once, one takes it.
func (s *signals) takeWake() bool {
	var buf [8]byte
	n, err := unix.Read(s.wake, buf[:])
	return err == nil && n == len(buf)
}

func (s *signals) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		unix.Close(s.wake)
	}
}

// Default actions of the signals whose default is not to terminate.
func defaultIgnored(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGCHLD, unix.SIGURG, unix.SIGWINCH, unix.SIGCONT:
		return true
	}
	return false
}

func defaultStops(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		return true
	}
	return false
}

// Signal delivers sig to the process as its disposition says: a caught
// signal becomes pending and interrupts the guest's current or next
// blocking host call; an ignored one is dropped; otherwise the default
// action applies (Hooks.Killed for one that terminates). It is safe to call
// from any goroutine, also after Close (it then does nothing). Signals
// outside 1-64 are ignored.
func (p *Process) Signal(sig syscall.Signal) {
	if sig <= 0 || sig > maxSignal {
		return
	}
	s := p.sigs
	if sig != unix.SIGKILL && sig != unix.SIGSTOP {
		switch s.disp[sig].Load() {
		case SigCatch:
			s.pending.Or(1 << uint(sig))
			s.wakeUp()
			return
		case SigIgnore:
			return
		}
	}
	switch {
	case defaultIgnored(sig):
	case defaultStops(sig):
		if p.hooks.Stop != nil {
			p.hooks.Stop(sig)
		}
	default:
		p.kill(sig)
	}
}

// kill ends the guest as killed by sig: at once when Hooks.Killed can
// (a child host process dies of the real signal), otherwise at its next
// host call, which the wake-up hurries along.
func (p *Process) kill(sig syscall.Signal) {
	p.sigs.killedBy.CompareAndSwap(0, int32(sig))
	if p.thr != nil {
		// Every thread ends with it, waiting on the shared memory too.
		p.endThreads(128+uint32(sig), nil)
	}
	if p.hooks.Killed != nil {
		p.hooks.Killed(sig)
	}
	p.sigs.wakeUp()
}

// KilledBy returns the signal whose default action ended the guest, or 0.
func (p *Process) KilledBy() syscall.Signal { return syscall.Signal(p.sigs.killedBy.Load()) }

// Dispositions returns the guest's disposition of each signal, indexed by
// signal number, to hand on to a forked child (Config.Dispositions).
func (p *Process) Dispositions() []uint8 {
	d := make([]uint8, maxSignal+1)
	for i := range d {
		d[i] = uint8(p.sigs.disp[i].Load())
	}
	return d
}

// vkProcSignals is vkernel.proc_signals(result.set) -> errno: writes the
// set of caught signals delivered since the last call as a little-endian
// u64 at result.set (bit n set: signal n, numbered as on Linux: 1 SIGHUP,
// 2 SIGINT, 3 SIGQUIT, 10 SIGUSR1, 12 SIGUSR2, 14 SIGALRM, 15 SIGTERM, 17
// SIGCHLD), and clears it. A guest calls it when a blocking call answers
// EINTR and runs its handlers for the set. EFAULT when result.set is
// outside memory (the set then stays pending).
var vkProcSignals = &hostFunc{
	module: ModuleVkernel, name: "proc_signals", untimed: true,
	params: []string{"result.set"}, types: []api.ValueType{i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		set := p.sigs.pending.Swap(0)
		if errno := putU64(mod.Memory(), uint32(s[0]), set); errno != ESUCCESS {
			p.sigs.pending.Or(set) // not delivered: keep it pending
			return errno
		}
		return ESUCCESS
	},
}

// vkProcSigaction is vkernel.proc_sigaction(sig, action) -> errno: sets the
// guest's disposition of sig: 0 default, 1 ignore, 2 caught (the guest runs
// a handler when proc_signals reports it). EINVAL for a signal outside
// 1-64, an unknown action, or SIGKILL and SIGSTOP with an action other
// than default.
var vkProcSigaction = &hostFunc{
	module: ModuleVkernel, name: "proc_sigaction", untimed: true,
	params: []string{"sig", "action"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		sig, action := int32(s[0]), uint32(s[1])
		if sig <= 0 || sig > maxSignal || action > SigCatch {
			return EINVAL
		}
		if (sig == int32(unix.SIGKILL) || sig == int32(unix.SIGSTOP)) && action != SigDefault {
			return EINVAL
		}
		p.sigs.disp[sig].Store(action)
		if action != SigCatch {
			// A signal no longer caught is not reported later.
			p.sigs.pending.And(^(uint64(1) << uint(sig)))
		}
		if p.hooks.Disposition != nil {
			p.hooks.Disposition(syscall.Signal(sig), int(action))
		}
		return ESUCCESS
	},
}

// vkProcKill is vkernel.proc_kill(pid, sig) -> errno: sends sig (1-64; 0
// checks only that pid may be signalled). pid is the caller's own pid: to
// itself; a child not yet waited for, or another process of the caller's
// tree below its top (Hooks.InTree: its parent, siblings, grandchildren),
// or -pid: the host signal to its host process; 0 or -own pid: to the
// caller and each of its children. Any other pid: ESRCH, since a guest may
// signal nothing outside its own tree. EINVAL for a bad signal.
var vkProcKill = &hostFunc{
	module: ModuleVkernel, name: "proc_kill",
	params: []string{"pid", "sig"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		pid, sig := int32(s[0]), int32(s[1])
		if sig < 0 || sig > maxSignal {
			return EINVAL
		}
		self := int32(unix.Getpid())
		switch {
		case pid == self:
			p.Signal(syscall.Signal(sig))
			return ESUCCESS
		case pid == 0 || pid == -self:
			for _, c := range p.kids.pids() {
				if sig != 0 {
					_ = unix.Kill(c, syscall.Signal(sig))
				}
			}
			p.Signal(syscall.Signal(sig))
			return ESUCCESS
		}
		if pid < 0 && pid != -1<<31 {
			pid = -pid
		}
		if !p.kids.has(int(pid)) && (p.hooks.InTree == nil || !p.hooks.InTree(int(pid))) {
			return ESRCH
		}
		return errnoOf(unix.Kill(int(pid), syscall.Signal(sig)))
	},
}
