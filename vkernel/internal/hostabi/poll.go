package hostabi

import (
	"context"

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
		subs := make([]subscription, n)
		for i := range subs {
			b := raw[i*subscriptionSize:]
			subs[i] = subscription{userdata: le64(b), tag: b[8]}
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
		events, errno := p.poll(ctx, subs)
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

func (p *Process) poll(ctx context.Context, subs []subscription) ([]event, Errno) {
	var events []event
	deadline := int64(-1)
	want := map[int]uint32{} // host fd -> epoll events wanted
	for _, sub := range subs {
		switch sub.tag {
		case eventtypeClock:
			if deadline < 0 || sub.deadline < deadline {
				deadline = sub.deadline
			}
			continue
		}
		f := p.fds.get(sub.fd)
		switch {
		case f == nil:
			events = append(events, event{userdata: sub.userdata, errno: EBADF, tag: sub.tag})
		case f.hostFD < 0 || f.filetype != filetypeSocketStream:
			events = append(events, event{userdata: sub.userdata, tag: sub.tag})
		case sub.tag == eventtypeFDRead:
			want[f.hostFD] |= unix.EPOLLIN | unix.EPOLLRDHUP
		default:
			want[f.hostFD] |= unix.EPOLLOUT
		}
	}
	if p.sigs != nil {
		// A host signal cuts the wait short, whatever the guest waits for.
		want[p.sigs.wake] |= unix.EPOLLIN
	}
	if len(want) == 0 {
		if len(events) > 0 {
			// Only files, stdio and bad fds: all fire now, with any clock
			// already due. (epoll_wait with room for no events would be
			// EINVAL.)
			return clockEvents(subs, nanotime(), events), ESUCCESS
		}
		if errno := sleepUntil(ctx, deadline); errno != ESUCCESS {
			return nil, errno
		}
		return clockEvents(subs, nanotime(), nil), ESUCCESS
	}
	if errno := p.epollSync(want); errno != ESUCCESS {
		return nil, errno
	}
	ready, errno := p.epollWait(ctx, len(want), len(events) > 0, deadline)
	if errno != ESUCCESS {
		return nil, errno
	}
	// Events follow epoll's order, which is the order the sockets became
	// ready; each fd's subscriptions follow in the guest's order.
	interrupted := false
	for _, r := range ready {
		fd := int(r.Fd)
		if p.sigs != nil && fd == p.sigs.wake {
			p.sigs.drainWake()
			interrupted = true
			continue
		}
		for _, sub := range subs {
			if sub.tag == eventtypeClock {
				continue
			}
			f := p.fds.get(sub.fd)
			if f == nil || f.hostFD != fd {
				continue
			}
			hup := r.Events&(unix.EPOLLHUP|unix.EPOLLRDHUP) != 0
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

// epollSync makes the process's epoll set hold exactly the wanted fds with
// the wanted events. A fd no longer polled leaves the set, so a ready
// socket nobody asked about can never wake the wait.
func (p *Process) epollSync(want map[int]uint32) Errno {
	if p.epfd < 0 {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return errnoOf(err)
		}
		p.epfd = fd
	}
	for fd := range p.epollSet {
		if _, ok := want[fd]; !ok {
			unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
			delete(p.epollSet, fd)
		}
	}
	for fd, ev := range want {
		have, ok := p.epollSet[fd]
		if ok && have == ev {
			continue
		}
		op := unix.EPOLL_CTL_ADD
		if ok {
			op = unix.EPOLL_CTL_MOD
		}
		if err := unix.EpollCtl(p.epfd, op, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)}); err != nil {
			return errnoOf(err)
		}
		p.epollSet[fd] = ev
	}
	return ESUCCESS
}

// forgetEpoll drops a host fd that is about to close from the epoll set.
func (p *Process) forgetEpoll(fd int) {
	if _, ok := p.epollSet[fd]; ok {
		unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		delete(p.epollSet, fd)
	}
}

// epollWait waits for up to max events until the deadline (-1: none); with
// immediate set it only collects what is ready now.
func (p *Process) epollWait(ctx context.Context, max int, immediate bool, deadline int64) ([]unix.EpollEvent, Errno) {
	evs := make([]unix.EpollEvent, max)
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
		// Round up to whole milliseconds so a wait never ends early.
		n, err := unix.EpollWait(p.epfd, evs, int((wait+999_999)/1_000_000))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, errnoOf(err)
		}
		if n > 0 || immediate || (deadline >= 0 && nanotime() >= deadline) {
			return evs[:n], ESUCCESS
		}
	}
}

// sleepUntil waits on CLOCK_MONOTONIC until deadline, in chunks so that
// ctx can end it. A deadline of -1 with nothing to wait for returns at once.
func sleepUntil(ctx context.Context, deadline int64) Errno {
	if deadline < 0 {
		return EINVAL
	}
	for {
		if ctx.Err() != nil {
			return EINTR
		}
		now := nanotime()
		if now >= deadline {
			return ESUCCESS
		}
		until := min(deadline, now+pollChunkNanos)
		ts := unix.NsecToTimespec(until)
		if err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil); err != nil && err != unix.EINTR {
			return errnoOf(err)
		}
	}
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
