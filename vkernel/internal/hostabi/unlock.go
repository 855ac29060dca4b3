package hostabi

import (
	"context"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Waiting without the process's lock.
//
// In a process with threads every host call holds the process's lock
// (goFunc), so that the fd table, the scratch memory, the epoll set and
// the counters are one goroutine's at a time. A call that waits lets go of
// it while it waits, or a thread blocked reading a pipe would stop the
// thread that is to write to it from making any host call at all (ABI.md,
// "Threads"). The waits that do:
//   - for a host fd to be ready: reads, writes, sock_accept, sock_recv,
//     sock_send, the vkernel socket calls and a blocking connect
//     (waitFDUntil);
//   - poll_oneoff on fds (pollThreaded) and on clocks only (sleepUntil);
//   - proc_wait for a child's end (waitChildren);
//   - a read or write of a device or FIFO that blocks in the host kernel
//     (unlockedIO), and a read of stdin given as a Go reader
//     (readUnlocked);
//   - path_open's open (of a FIFO, which waits for the other end) and
//     sched_yield.
//
// What a wait needs is taken under the lock: the host fds of the files it
// waits on, which it pins (file.waits: a close by another thread then
// leaves the host fd open until the wait is done, so that its number is
// never reused under it), duplicates of the children's pidfds, deadlines,
// and the iovec views the call holds (the process's scratch is left to
// the other threads' calls). The wait itself touches nothing else: a ppoll
// of those fds and of the signal wake-up, in slices of pollChunkNanos, after
// each of which it looks whether the process is ending (EINTR: the
// context, another thread's proc_exit or trap, a kill) and whether one of
// its files was closed (EBADF). A caught signal interrupts one wait, the
// main instance's first (pollUnlocked). The wait takes the lock again
// before the call goes on, and releases the pins.

// unlockedFor runs wait without the process's lock, in a process with
// threads, with pinned's host fds kept open for it. The iovec views the
// calling host call resolved stay its own: the process's scratch starts
// afresh for the next call.
func (p *Process) unlockedFor(pinned []*file, wait func()) {
	for _, f := range pinned {
		f.waits++
	}
	p.io.bufs, p.io.iovs = nil, nil
	onMain := p.onMain
	p.big.Unlock()
	defer func() {
		p.big.Lock()
		p.onMain = onMain
		for _, f := range pinned {
			f.release()
		}
	}()
	wait()
}

// release ends one wait on f, under the process's lock: the last one on a
// file the guest closed meanwhile closes the host fd.
func (f *file) release() {
	f.waits--
	if f.waits == 0 && f.isClosed() && f.hostFD >= 0 {
		fd := f.hostFD
		f.hostFD = -1
		unix.Close(fd)
	}
}

// isClosed reports whether the guest closed f while a thread waited on it.
// It may be called without the process's lock.
func (f *file) isClosed() bool { return atomic.LoadInt32(&f.closed) != 0 }

// ending reports whether the process is ending, so a wait must return: its
// context ended (the exec's, which endThreads cancels too), a thread ended
// it (proc_exit, a trap) or a signal killed it. The caller's host call
// then stops the guest (stopIfDone).
func (p *Process) ending(ctx context.Context) bool {
	return ctx.Err() != nil || p.thr.ended.Load() || p.sigs.killedBy.Load() != 0
}

// unlockedWait is how a wait without the lock ended.
type unlockedWait struct {
	ready  bool // one of the fds has events
	signal bool // this wait took the signal wake-up
	closed bool // another thread closed one of the pinned files
}

// pollUnlocked waits without the process's lock until one of fds[1:] has
// events, or until the deadline (nanotime; noDeadline for none; one
// already past polls once). fds[0] must be the signal wake-up: a caught
// signal ends the wait when this wait takes it. Each arrival interrupts
// one call, as natively a process's signal goes to one thread: the main
// instance's wait when there is one (Linux, too, picks the main thread
// first, and CPython runs its handlers there), else whichever thread's
// wait takes it first. The wait also ends when a pinned file is closed by
// another thread, and with EINTR when the process is ending. The revents
// of fds are the last poll's.
func (p *Process) pollUnlocked(ctx context.Context, fds []unix.PollFd, pinned []*file, deadline int64) (r unlockedWait, errno Errno) {
	onMain := p.onMain
	p.unlockedFor(pinned, func() {
		if onMain {
			p.thr.mainWaits.Add(1)
			defer p.thr.mainWaits.Add(-1)
		}
		r, errno = p.pollLoop(ctx, fds, pinned, deadline, onMain)
	})
	return r, errno
}

// deferNanos is how long a thread's wait leaves the signal wake-up to the
// main instance's wait before it looks again (pollLoop).
const deferNanos = 10_000_000

// pollLoop is pollUnlocked's wait, which runs without the lock; onMain:
// it is the main instance's.
func (p *Process) pollLoop(ctx context.Context, fds []unix.PollFd, pinned []*file, deadline int64, onMain bool) (unlockedWait, Errno) {
	var r unlockedWait
	wake := fds[0].Events
	deferred := false // the wake-up is the main instance's wait's to take
	for first := true; ; first = false {
		if p.ending(ctx) {
			return r, EINTR
		}
		for _, f := range pinned {
			if f.isClosed() {
				r.closed = true
				return r, ESUCCESS
			}
		}
		wait := int64(pollChunkNanos)
		if deadline != noDeadline {
			left := deadline - nanotime()
			if left <= 0 && !first {
				return r, ESUCCESS
			}
			wait = min(wait, max64(left, 0))
		}
		if deferred {
			// Not the wake-up for a while: the main instance's wait
			// takes it, or has left, and this one takes it after.
			fds[0].Events = 0
			wait = min(wait, deferNanos)
		}
		ts := unix.NsecToTimespec(wait)
		n, err := unix.Ppoll(fds, &ts, nil)
		fds[0].Events, deferred = wake, false
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return r, errnoOf(err)
		}
		if n == 0 {
			continue
		}
		if ev := fds[0].Revents; ev != 0 {
			if ev&(unix.POLLNVAL|unix.POLLERR) != 0 {
				// The wake-up is gone: the process is closing.
				return r, EINTR
			}
			if !onMain && p.thr.mainWaits.Load() > 0 {
				deferred = true
			} else {
				r.signal = p.sigs.takeWake()
			}
		}
		for _, fd := range fds[1:] {
			if fd.Revents != 0 {
				r.ready = true
				break
			}
		}
		if r.signal || r.ready {
			return r, ESUCCESS
		}
	}
}

// waitFDUnlocked is waitFDUntil in a process with threads: the same wait
// without the process's lock, f (the file fd belongs to; nil for a socket
// not yet in the fd table) pinned. EBADF when another thread closed f
// meanwhile.
func (p *Process) waitFDUnlocked(ctx context.Context, f *file, fd int, events int16, deadline int64) Errno {
	if deadline != noDeadline && deadline <= nanotime() {
		return EAGAIN
	}
	fds := []unix.PollFd{{Fd: int32(p.sigs.wake), Events: unix.POLLIN}, {Fd: int32(fd), Events: events}}
	var pinned []*file
	if f != nil {
		pinned = []*file{f}
	}
	r, errno := p.pollUnlocked(ctx, fds, pinned, deadline)
	switch {
	case errno != ESUCCESS:
		return errno
	case r.closed || (f != nil && f.isClosed()):
		return EBADF
	case r.signal:
		return EINTR
	case r.ready:
		return ESUCCESS
	}
	return EAGAIN
}

// pollThreaded is pollSubs in a process with threads. The wait runs
// without the process's lock, on a ppoll of the subscriptions' host fds
// (the process's epoll set would be shared by the threads' waits), so the
// fd events come in the order of the subscriptions rather than in epoll's
// order of arrival. subs are the call's own memory, as are the events.
// A subscription whose fd another thread closed during the wait fires
// with EBADF.
func (p *Process) pollThreaded(ctx context.Context, subs []subscription) ([]event, Errno) {
	var events []event
	fds := []unix.PollFd{{Fd: int32(p.sigs.wake), Events: unix.POLLIN}}
	var pinned []*file // pinned[i] is polled as fds[i+1]
	deadline := int64(noDeadline)
	for i := range subs {
		sub := &subs[i]
		if sub.tag == eventtypeClock {
			if deadline == noDeadline || sub.deadline < deadline {
				deadline = sub.deadline
			}
			continue
		}
		f := p.fds.get(sub.fd)
		switch {
		case f == nil:
			events = append(events, event{userdata: sub.userdata, errno: EBADF, tag: sub.tag})
			continue
		case !f.pollable():
			events = append(events, event{userdata: sub.userdata, tag: sub.tag})
			continue
		}
		k := 0
		for j, g := range pinned {
			if g == f {
				k = j + 1
				break
			}
		}
		if k == 0 {
			pinned = append(pinned, f)
			fds = append(fds, unix.PollFd{Fd: int32(f.hostFD)})
			k = len(fds) - 1
		}
		if sub.tag == eventtypeFDRead {
			fds[k].Events |= unix.POLLIN | unix.POLLRDHUP
		} else {
			fds[k].Events |= unix.POLLOUT
		}
		sub.hostFD = k // here: the index of its fd in fds
	}
	if len(pinned) == 0 {
		if len(events) > 0 {
			return clockEvents(subs, nanotime(), events), ESUCCESS
		}
		if errno := p.sleepUntil(ctx, deadline); errno != ESUCCESS {
			return nil, errno
		}
		return clockEvents(subs, nanotime(), events), ESUCCESS
	}
	until := deadline
	if len(events) > 0 {
		until = nanotime() // only what is ready now
	}
	r, errno := p.pollUnlocked(ctx, fds, pinned, until)
	if errno != ESUCCESS {
		return nil, errno
	}
	for i := range subs {
		sub := &subs[i]
		if sub.tag == eventtypeClock || sub.hostFD < 0 {
			continue
		}
		if pinned[sub.hostFD-1].isClosed() {
			events = append(events, event{userdata: sub.userdata, errno: EBADF, tag: sub.tag})
			continue
		}
		rev := fds[sub.hostFD].Revents
		fired := rev&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0
		if sub.tag == eventtypeFDRead {
			fired = fired || rev&(unix.POLLIN|unix.POLLRDHUP) != 0
		} else {
			fired = fired || rev&unix.POLLOUT != 0
		}
		if !fired {
			continue
		}
		e := event{userdata: sub.userdata, tag: sub.tag}
		if rev&(unix.POLLHUP|unix.POLLRDHUP) != 0 {
			e.flags = eventHangup
		}
		events = append(events, e)
	}
	if deadline != noDeadline {
		events = clockEvents(subs, nanotime(), events)
	}
	if r.signal && len(events) == 0 {
		return nil, EINTR
	}
	return events, ESUCCESS
}

// mayBlock reports whether a system call on f's host fd may wait in the
// host kernel for long: f is not a regular file, a directory or a block
// device (a terminal, another character device, a FIFO a path opened).
// Sockets and pipes the vkernel made are non-blocking and wait in retry.
func (f *file) mayBlock() bool {
	switch f.filetype {
	case filetypeRegularFile, filetypeDirectory, filetypeBlockDevice:
		return false
	}
	return true
}

// unlockedIO runs op, a system call on f's host fd that may block in the
// host kernel (mayBlock: the vkernel cannot make it non-blocking, the open
// file description may be another process's too), without the process's
// lock in a process with threads, f pinned and with a scratch of its own.
// A close of the fd by another thread does not cut it short: the host fd
// is closed when it returns, with what it returned.
func (p *Process) unlockedIO(f *file, op func(s *ioScratch, fd int) (int, error)) (n int, err error) {
	fd := f.hostFD
	p.unlockedFor([]*file{f}, func() { n, err = op(&ioScratch{}, fd) })
	return n, err
}

// readUnlocked reads stdin given as a Go reader without the process's
// lock, in a process with threads: the reader may wait for input for
// ever. The reads of the reader are one at a time (readerMu), also with
// the copier that takes over when stdin becomes a pipe (shareStdio).
func (p *Process) readUnlocked(f *file, bufs [][]byte) (n int, errno Errno) {
	r := f.reader
	p.unlockedFor(nil, func() {
		p.readerMu.Lock()
		defer p.readerMu.Unlock()
		n, errno = readFrom(r, bufs)
	})
	return n, errno
}

// openUnlocked is path_open's open in a process with threads, without the
// process's lock: opening a FIFO waits for its other end. The open reads
// nothing of the process but the mount, which lives as long as it.
func (p *Process) openUnlocked(t target, flags, mode uint64) (fd int, err error) {
	p.unlocked(func() { fd, err = t.open(flags, mode) })
	return fd, err
}

// sleepUnlocked is sleepUntil in a process with threads: the same sleep
// without the process's lock, a signal taken as pollUnlocked says.
func (p *Process) sleepUnlocked(ctx context.Context, deadline int64) Errno {
	if nanotime() >= deadline {
		return ESUCCESS
	}
	fds := []unix.PollFd{{Fd: int32(p.sigs.wake), Events: unix.POLLIN}}
	r, errno := p.pollUnlocked(ctx, fds, nil, deadline)
	switch {
	case errno != ESUCCESS:
		return errno
	case r.signal && nanotime() >= deadline:
		// Due as well: the clock fires, and the signal interrupts the
		// next call.
		p.sigs.wakeUp()
	case r.signal:
		return EINTR
	}
	return ESUCCESS
}
