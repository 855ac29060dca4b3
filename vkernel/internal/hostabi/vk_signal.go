package hostabi

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"syscall"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// signals is a process's queue of host signals for the guest. The host
// side (Signal) may run on any goroutine; the guest side (poll_oneoff,
// proc_signals) runs on the guest's.
//
// A signal does not interrupt guest code: like a signal that arrives while
// a native process runs, it is pending until the guest next waits. Then
// poll_oneoff returns at once with EINTR (or with the events that were
// ready), and the guest takes the pending set with proc_signals and runs
// its handlers, as a native libc runs them on return from the system call.
type signals struct {
	pending atomic.Uint64 // bit n: signal n is pending
	// wake is an eventfd the poll set always holds: a Signal makes it
	// readable, and poll_oneoff drains it when it returns because of it,
	// so that each Signal interrupts one wait, even for a guest that never
	// takes its signals.
	wake int
}

func newSignals() (*signals, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return &signals{wake: fd}, nil
}

// Signal makes sig pending for the guest and interrupts its current or
// next wait. It is safe to call from any goroutine until Close. Signals the
// guest cannot be told of (0, or above 63) are ignored, as are calls on a
// process created without Config.Signals.
func (p *Process) Signal(sig syscall.Signal) {
	if p.sigs == nil || sig <= 0 || sig > 63 {
		return
	}
	p.sigs.pending.Or(1 << uint(sig))
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(p.sigs.wake, one[:])
}

// drainWake clears the wake-up eventfd after poll_oneoff saw it readable.
func (s *signals) drainWake() {
	var buf [8]byte
	_, _ = unix.Read(s.wake, buf[:])
}

func (s *signals) close() {
	if s != nil && s.wake >= 0 {
		unix.Close(s.wake)
		s.wake = -1
	}
}

// vkProcSignals is vkernel.proc_signals(result.set) -> errno: writes the
// set of signals delivered since the last call as a little-endian u64 at
// result.set (bit n set: signal n, numbered as on Linux: 1 SIGHUP, 2
// SIGINT, 3 SIGQUIT, 10 SIGUSR1, 12 SIGUSR2, 15 SIGTERM), and clears it. A
// guest calls it when poll_oneoff returns (EINTR tells it a signal cut a
// wait short) and runs its handlers for the set. The set is always empty
// for a process the host delivers no signals to. EFAULT when result.set is
// outside memory.
var vkProcSignals = &hostFunc{
	module: ModuleVkernel, name: "proc_signals", untimed: true,
	params: []string{"result.set"}, types: []api.ValueType{i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		var set uint64
		if p.sigs != nil {
			set = p.sigs.pending.Swap(0)
		}
		if errno := putU64(mod.Memory(), uint32(s[0]), set); errno != ESUCCESS {
			if p.sigs != nil && set != 0 {
				p.sigs.pending.Or(set) // not delivered: keep it pending
			}
			return errno
		}
		return ESUCCESS
	},
}
