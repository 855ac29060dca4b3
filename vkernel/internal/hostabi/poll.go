package hostabi

import (
	"context"
	"unsafe"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// Preview1 event types and flags.
const (
	eventtypeClock   = 0
	eventtypeFDRead  = 1
	eventtypeFDWrite = 2

	subclockAbstime = 1
	eventHangup     = 1

	subscriptionSize = 48
	eventSize        = 32
)

// pollChunk bounds one host wait, so a cancelled exec stops promptly.
const pollChunkNanos = 100_000_000

type subscription struct {
	userdata uint64
	tag      uint8
	fd       uint32
	deadline int64 // CLOCK_MONOTONIC nanoseconds, for clock subscriptions
	hostFD   int   // the socket an fd subscription waits on in epoll, else -1
}

// pollState is poll_oneoff's state in a process: the epoll set and the
// memory each call reuses, so that a call allocates nothing once these
// have grown to the most subscriptions the guest passes. A process with
// threads does not use it: its waits run without the process's lock, two
// threads' at once (pollThreaded).
type pollState struct {
	subs   []subscription
	events []event
	ready  []unix.EpollEvent
	// want holds, by host fd, the epoll events the current call waits for;
	// wanted lists the fds it set.
	want   []uint32
	wanted []int
	// inSet holds, by host fd, the events registered in the epoll set (0:
	// not in it); members lists the fds in it.
	inSet   []uint32
	members []int
}

// addWant adds epoll events to wait for on a host fd.
func (ps *pollState) addWant(fd int, ev uint32) {
	if fd >= len(ps.want) {
		ps.want = append(ps.want, make([]uint32, fd+1-len(ps.want))...)
	}
	if ps.want[fd] == 0 {
		ps.wanted = append(ps.wanted, fd)
	}
	ps.want[fd] |= ev
}

// resetWant forgets the previous call's wanted events.
func (ps *pollState) resetWant() {
	for _, fd := range ps.wanted {
		ps.want[fd] = 0
	}
	ps.wanted = ps.wanted[:0]
}

func (ps *pollState) registered(fd int) uint32 {
	if fd < len(ps.inSet) {
		return ps.inSet[fd]
	}
	return 0
}

func (ps *pollState) setRegistered(fd int, ev uint32) {
	if fd >= len(ps.inSet) {
		ps.inSet = append(ps.inSet, make([]uint32, fd+1-len(ps.inSet))...)
	}
	switch have := ps.inSet[fd]; {
	case have == 0 && ev != 0:
		ps.members = append(ps.members, fd)
	case have != 0 && ev == 0:
		for i, m := range ps.members {
			if m == fd {
				ps.members[i] = ps.members[len(ps.members)-1]
				ps.members = ps.members[:len(ps.members)-1]
				break
			}
		}
	}
	ps.inSet[fd] = ev
}

// pollOneoff is preview1 poll_oneoff(in, out, nsubscriptions,
// result.nevents) -> errno. It waits until a subscription fires and writes
// one event per fired subscription:
//   - fd_read and fd_write on sockets wait on a per-process epoll set, so
//     events come in arrival order (epoll's ready list) and an idle socket
//     is never reported ready;
//   - fd_read and fd_write on files and stdio are always ready, as POSIX
//     poll says of regular files;
//   - clock subscriptions take relative or absolute (ABSTIME) deadlines on
//     the realtime or monotonic clock; with no fd subscription the wait is a
//     clock_nanosleep to the deadline.
//
// A process that takes host signals (vkProcSignals) returns from the wait
// when one arrives: with the events ready by then, or with EINTR when there
// are none, as POSIX poll does.
//
// In a process with threads the wait runs without the process's lock, on
// a ppoll of the fds rather than the epoll set (pollThreaded): fd events
// come in the order of the subscriptions, and a subscription whose fd
// another thread closes meanwhile fires with EBADF.
//
// An unknown fd fires at once with EBADF in its event. EINVAL when
// nsubscriptions is 0 or a clock id is unknown, EFAULT when in or out is
// outside memory. (wazero's preview1 reports every non-stdin fd as always
// ready, answers fd_write subscriptions and absolute clocks with ENOTSUP,
// and sleeps the whole timeout even when an fd was ready.)
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-poll_oneoffin-constpointersubscription-out-pointerevent-nsubscriptions-size---errno-size
var pollOneoff = &hostFunc{
	module: ModulePreview1, name: "poll_oneoff",
	params: []string{"in", "out", "nsubscriptions", "result.nevents"}, types: []api.ValueType{i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		in, out, n, resultN := uint32(s[0]), uint32(s[1]), uint32(s[2]), uint32(s[3])
		if n == 0 {
			return EINVAL
		}
		if n > maxFDs*2 {
			return EINVAL
		}
		m := mod.Memory()
		raw, ok := view(m, in, n*subscriptionSize)
		if !ok {
			return EFAULT
		}
		evbuf, ok := view(m, out, n*eventSize)
		if !ok {
			return EFAULT
		}
		if _, ok := view(m, resultN, 4); !ok {
			return EFAULT
		}
		var subs []subscription
		if p.thr != nil {
			// The wait runs without the process's lock
			// (pollThreaded): the subscriptions are this call's own.
			subs = make([]subscription, n)
		} else {
			ps := &p.polls
			if cap(ps.subs) < int(n) {
				ps.subs = make([]subscription, n)
			}
			subs = ps.subs[:n]
		}
		for i := range subs {
			b := raw[i*subscriptionSize:]
			subs[i] = subscription{userdata: le64(b), tag: b[8], hostFD: -1}
			switch subs[i].tag {
			case eventtypeClock:
				d, errno := p.deadline(le32(b[16:]), le64(b[24:]), le16(b[40:]))
				if errno != ESUCCESS {
					return errno
				}
				subs[i].deadline = d
			case eventtypeFDRead, eventtypeFDWrite:
				subs[i].fd = le32(b[16:])
			default:
				return EINVAL
			}
		}
		events, errno := p.pollSubs(ctx, subs)
		if errno != ESUCCESS {
			return errno
		}
		for i, e := range events {
			b := evbuf[i*eventSize : (i+1)*eventSize]
			clear(b)
			put64(b, e.userdata)
			put16(b[8:], uint16(e.errno))
			b[10] = e.tag
			put64(b[16:], e.nbytes)
			put16(b[24:], e.flags)
		}
		return putU32(m, resultN, uint32(len(events)))
	},
}

type event struct {
	userdata uint64
	errno    Errno
	tag      uint8
	nbytes   uint64
	flags    uint16
}

// deadline turns a clock subscription into an absolute CLOCK_MONOTONIC time.
func (p *Process) deadline(id uint32, timeout uint64, flags uint16) (int64, Errno) {
	now := nanotime()
	switch {
	case flags&subclockAbstime == 0:
		if id > clockThreadCPUTimeID {
			return 0, EINVAL
		}
		if timeout > 1<<62 {
			timeout = 1 << 62
		}
		return now + int64(timeout), ESUCCESS
	case id == clockMonotonic:
		return int64(timeout), ESUCCESS
	case id == clockRealtime:
		real, _ := p.now(clockRealtime)
		return now + (int64(timeout) - real), ESUCCESS
	}
	return 0, EINVAL
}

// pollSubs waits for the subscriptions and returns the events that fired,
// in p's reusable memory (valid until the next call). A process with
// threads waits without its lock, in memory of the call's own
// (pollThreaded).
func (p *Process) pollSubs(ctx context.Context, subs []subscription) ([]event, Errno) {
	if p.thr != nil {
		return p.pollThreaded(ctx, subs)
	}
	ps := &p.polls
	ps.resetWant()
	events := ps.events[:0]
	defer func() { ps.events = events[:0] }()
	deadline := int64(-1)
	for i := range subs {
		sub := &subs[i]
		if sub.tag == eventtypeClock {
			if deadline < 0 || sub.deadline < deadline {
				deadline = sub.deadline
			}
			continue
		}
		f := p.fds.get(sub.fd)
		switch {
		case f == nil:
			events = append(events, event{userdata: sub.userdata, errno: EBADF, tag: sub.tag})
		case !f.pollable():
			events = append(events, event{userdata: sub.userdata, tag: sub.tag})
		case sub.tag == eventtypeFDRead:
			sub.hostFD = f.hostFD
			ps.addWant(f.hostFD, unix.EPOLLIN|unix.EPOLLRDHUP)
		default:
			sub.hostFD = f.hostFD
			ps.addWant(f.hostFD, unix.EPOLLOUT)
		}
	}
	if len(ps.wanted) == 0 {
		if len(events) > 0 {
			// Only files, stdio and bad fds: all fire now, with any clock
			// already due. (epoll_wait with room for no events would be
			// EINVAL.)
			events = clockEvents(subs, nanotime(), events)
			return events, ESUCCESS
		}
		if errno := p.sleepUntil(ctx, deadline); errno != ESUCCESS {
			return nil, errno
		}
		events = clockEvents(subs, nanotime(), events)
		return events, ESUCCESS
	}
	// A caught signal cuts the wait short, whatever the guest waits for.
	ps.addWant(p.sigs.wake, unix.EPOLLIN)
	if errno := p.epollSync(); errno != ESUCCESS {
		return nil, errno
	}
	ready, errno := p.epollWait(ctx, len(ps.wanted), len(events) > 0, deadline)
	if errno != ESUCCESS {
		return nil, errno
	}
	// Events follow epoll's order, which is the order the sockets became
	// ready; each fd's subscriptions follow in the guest's order.
	interrupted := false
	for _, r := range ready {
		fd := int(r.Fd)
		if fd == p.sigs.wake {
			p.sigs.drainWake()
			interrupted = true
			continue
		}
		hup := r.Events&(unix.EPOLLHUP|unix.EPOLLRDHUP) != 0
		for i := range subs {
			sub := &subs[i]
			if sub.hostFD != fd {
				continue
			}
			fired := r.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0
			if sub.tag == eventtypeFDRead {
				fired = fired || r.Events&(unix.EPOLLIN|unix.EPOLLRDHUP) != 0
			} else {
				fired = fired || r.Events&unix.EPOLLOUT != 0
			}
			if !fired {
				continue
			}
			e := event{userdata: sub.userdata, tag: sub.tag}
			if hup {
				e.flags = eventHangup
			}
			events = append(events, e)
		}
	}
	if deadline >= 0 {
		events = clockEvents(subs, nanotime(), events)
	}
	if interrupted && len(events) == 0 {
		return nil, EINTR
	}
	return events, ESUCCESS
}

func clockEvents(subs []subscription, now int64, events []event) []event {
	for _, sub := range subs {
		if sub.tag == eventtypeClock && sub.deadline <= now {
			events = append(events, event{userdata: sub.userdata, tag: eventtypeClock})
		}
	}
	return events
}

// epollSync makes the process's epoll set hold exactly the fds the call
// wants with the events it wants: a fd no longer polled leaves the set, so
// a ready socket nobody asked about can never wake the wait. A server
// polling the same sockets call after call changes nothing here.
func (p *Process) epollSync() Errno {
	ps := &p.polls
	if p.epfd < 0 {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return errnoOf(err)
		}
		p.epfd = fd
	}
	for i := 0; i < len(ps.members); {
		fd := ps.members[i]
		if fd < len(ps.want) && ps.want[fd] != 0 {
			i++
			continue
		}
		unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		ps.setRegistered(fd, 0) // moves the last member to i
	}
	for _, fd := range ps.wanted {
		ev, have := ps.want[fd], ps.registered(fd)
		if have == ev {
			continue
		}
		op := unix.EPOLL_CTL_ADD
		if have != 0 {
			op = unix.EPOLL_CTL_MOD
		}
		if err := unix.EpollCtl(p.epfd, op, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)}); err != nil {
			return errnoOf(err)
		}
		ps.setRegistered(fd, ev)
	}
	return ESUCCESS
}

// forgetEpoll drops a host fd that is about to close from the epoll set.
func (p *Process) forgetEpoll(fd int) {
	if fd >= 0 && p.polls.registered(fd) != 0 {
		unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		p.polls.setRegistered(fd, 0)
	}
}

// epollWait waits for up to max events until the deadline (-1: none); with
// immediate set it only collects what is ready now. The events are in p's
// reusable memory. A wait that cannot block is a raw system call: the Go
// scheduler need not know of it.
func (p *Process) epollWait(ctx context.Context, max int, immediate bool, deadline int64) ([]unix.EpollEvent, Errno) {
	ps := &p.polls
	if cap(ps.ready) < max {
		ps.ready = make([]unix.EpollEvent, max)
	}
	evs := ps.ready[:max]
	for {
		if ctx.Err() != nil {
			return nil, EINTR
		}
		wait := int64(pollChunkNanos)
		if immediate {
			wait = 0
		} else if deadline >= 0 {
			if left := deadline - nanotime(); left < wait {
				wait = max64(left, 0)
			}
		}
		var n int
		var err error
		if wait == 0 {
			n, err = result(rawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0))
		} else {
			// Round up to whole milliseconds so a wait never ends early.
			n, err = unix.EpollWait(p.epfd, evs, int((wait+999_999)/1_000_000))
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, errnoOf(err)
		}
		if n > 0 || wait == 0 || (deadline >= 0 && nanotime() >= deadline) {
			return evs[:n], ESUCCESS
		}
	}
}

// sleepUntil waits on CLOCK_MONOTONIC until deadline, in chunks so that
// ctx can end it; a caught signal ends it with EINTR (ppoll keeps the
// nanoseconds a clock-only wait asks for). A deadline of -1 with nothing
// to wait for returns at once. In a process with threads it sleeps
// without the process's lock (sleepUnlocked).
func (p *Process) sleepUntil(ctx context.Context, deadline int64) Errno {
	if deadline < 0 {
		return EINVAL
	}
	if p.thr != nil {
		return p.sleepUnlocked(ctx, deadline)
	}
	pfd := []unix.PollFd{{Fd: int32(p.sigs.wake), Events: unix.POLLIN}}
	for {
		if ctx.Err() != nil {
			return EINTR
		}
		now := nanotime()
		if now >= deadline {
			return ESUCCESS
		}
		ts := unix.NsecToTimespec(min(deadline-now, pollChunkNanos))
		var n int
		var err error
		p.unlocked(func() { n, err = unix.Ppoll(pfd, &ts, nil) })
		if err != nil && err != unix.EINTR {
			return errnoOf(err)
		}
		if n > 0 {
			if nanotime() >= deadline {
				return ESUCCESS // due as well: the clock fires, the signal waits for the next call
			}
			p.sigs.drainWake()
			return EINTR
		}
	}
}

// unlocked runs wait, a blocking wait that touches none of the process's
// state, without the process's lock in a process with threads, so that a
// thread sleeping in a host call does not hold up the other threads' host
// calls (ABI.md, "Threads"). Without threads it just runs wait.
func (p *Process) unlocked(wait func()) {
	if p.thr == nil {
		wait()
		return
	}
	p.big.Unlock()
	defer p.big.Lock()
	wait()
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
