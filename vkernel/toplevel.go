package vkernel

import (
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// live is every exec of this process that may have child processes, so
// that EndChildProcesses can find them all. ending is set once
// EndChildProcesses has begun: no child starts after it.
var live struct {
	sync.RWMutex
	ctls   map[*procCtl]struct{}
	ending bool
}

func registerCtl(c *procCtl) {
	live.Lock()
	defer live.Unlock()
	if live.ctls == nil {
		live.ctls = map[*procCtl]struct{}{}
	}
	live.ctls[c] = struct{}{}
}

func unregisterCtl(c *procCtl) {
	live.Lock()
	defer live.Unlock()
	delete(live.ctls, c)
}

// EndChildProcesses ends every vkernel child process that the kernels of
// this process have started and not yet reaped, as the end of their
// parent's Exec would, and reaps them: each is asked to end its own
// children in order (its lifeline is closed), is killed if it has not
// ended after a grace, and is reaped. No child starts after the call
// begins (proc_spawn and proc_fork answer EAGAIN). It returns when all
// are reaped; the guests of this process's Execs go on running.
//
// A program that must die of a signal as natively, without leaving its
// guests' processes behind, calls it before it dies (EndOnSignals).
func EndChildProcesses() {
	live.Lock()
	live.ending = true
	ctls := make([]*procCtl, 0, len(live.ctls))
	for c := range live.ctls {
		ctls = append(ctls, c)
	}
	live.Unlock()
	var ended sync.WaitGroup
	for _, c := range ctls {
		for _, pid := range c.childPids() {
			ended.Add(1)
			go func() {
				defer ended.Done()
				c.teardown(pid)
				var ws unix.WaitStatus
				for {
					if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
						childReaped(pid)
						break
					}
				}
			}()
		}
	}
	ended.Wait()
}

// saResetHand is the kernel's SA_RESETHAND: the handler runs once, and the
// disposition is back to the default when it does.
const saResetHand = 0x80000000

// terminating are the signals EndOnSignals handles: those a user or a
// runner ends a program with.
var terminating = []syscall.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP}

// catching is EndOnSignals' state. The signals are caught (armed) only
// while there is something to do before dying: a before function, or a
// child process to end and reap. Otherwise they keep the host's default
// action, which ends the process at once even while its guest computes
// without host calls (see EndOnSignals).
var catching struct {
	sync.Mutex
	on    bool              // EndOnSignals is in force
	keep  bool              // armed for as long as it is (a before function)
	kids  map[int]struct{}  // child processes started and not yet reaped
	armed bool              // the signals are delivered to ch
	ch    chan os.Signal    // where the handler goroutine takes them
	old   []kernelSigaction // the handling found when armed
}

// arm catches the terminating signals, each once. catching is locked.
func arm() {
	if catching.armed {
		return
	}
	catching.armed = true
	catching.old = make([]kernelSigaction, len(terminating))
	for i, s := range terminating {
		_ = rtSigaction(s, nil, &catching.old[i])
	}
	sigs := make([]os.Signal, len(terminating))
	for i, s := range terminating {
		sigs[i] = s
	}
	signal.Notify(catching.ch, sigs...)
	for _, s := range terminating {
		var act kernelSigaction
		if rtSigaction(s, nil, &act) == nil && act.handler > 1 {
			act.flags |= saResetHand
			_ = rtSigaction(s, &act, nil)
		}
	}
}

// disarm gives the terminating signals back the handling arm found.
// catching is locked.
func disarm() {
	if !catching.armed {
		return
	}
	catching.armed = false
	signal.Stop(catching.ch)
	for i, s := range terminating {
		_ = rtSigaction(s, &catching.old[i], nil)
	}
}

// childStarting is called before a child process is started: from then on
// a terminating signal ends and reaps it before the process dies.
func childStarting() {
	catching.Lock()
	defer catching.Unlock()
	if catching.on {
		arm()
	}
}

// childStarted records a started child process; pid 0 records a start
// that failed.
func childStarted(pid int) {
	catching.Lock()
	defer catching.Unlock()
	if pid > 0 {
		if catching.kids == nil {
			catching.kids = map[int]struct{}{}
		}
		catching.kids[pid] = struct{}{}
	}
	disarmIfIdle()
}

// childReaped forgets a child process that has been reaped. A pid it
// does not know (reaped and forgotten already) changes nothing.
func childReaped(pid int) {
	catching.Lock()
	defer catching.Unlock()
	delete(catching.kids, pid)
	disarmIfIdle()
}

// disarmIfIdle disarms when there is nothing left to do before dying.
// catching is locked.
func disarmIfIdle() {
	if len(catching.kids) == 0 && !catching.keep {
		disarm()
	}
}

// EndOnSignals makes SIGINT, SIGTERM and SIGHUP end this process as they
// end a native program that does not catch them (killed by the signal, as
// its parent's wait sees), but only after before (when not nil) has run
// and EndChildProcesses has ended and reaped every vkernel child process,
// so that none is left to the host's init, which on some hosts never
// reaps. compat exec calls it.
//
// The handling is Go code, which a guest computing without host calls
// can hold up: Go cannot preempt native wasm code, so a garbage
// collection that has to stop the world waits for the guest's next host
// call, and so does every goroutine. So the signals are caught only while
// there is work to do before dying: always when before is given, else
// only while the process has child processes (from just before the first
// starts until the last is reaped). A guest without children keeps the
// default action, which the kernel carries out at once. When caught, each
// signal is caught once: a second one of the same kind finds the default
// action and kills the process at once (its children then die of their
// parent-death signal). To make that the exception, a garbage collection
// is finished right before each guest of the process starts, and
// GOMAXPROCS is raised to 2, so that a guest computing on the only P
// cannot hold up the handler.
//
// stop ends the handling and restores the signals' previous handling;
// called while a signal is being handled, it does not return.
func EndOnSignals(before func()) (stop func()) {
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	settleGC.Store(true)
	ch := make(chan os.Signal, 1)
	catching.Lock()
	catching.on, catching.keep, catching.ch = true, before != nil, ch
	if catching.keep || len(catching.kids) > 0 {
		arm()
	}
	catching.Unlock()
	done := make(chan struct{})
	dying := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			close(dying)
			if before != nil {
				before()
			}
			EndChildProcesses()
			dieOf(s.(syscall.Signal))
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			select {
			case <-dying:
				// The process dies of the signal, not of what its caller
				// does next (exits with the guest's status).
				select {}
			default:
			}
			catching.Lock()
			disarm()
			catching.on, catching.keep = false, false
			catching.Unlock()
		})
	}
}
