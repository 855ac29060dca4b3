package hostabi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// dup returns a new entry for the guest's fd: the same host open file
// description (offset, status flags and all, as dup shares them) and the
// fd's guest-visible state. Stdio backed by a Go reader or writer is first
// made a host pipe the duplicates share (shareStdio). A preopen's copy is
// an ordinary directory fd: fd_prestat_get answers only for the preopen.
func (p *Process) dup(fd uint32) (*file, Errno) {
	f := p.fds.get(fd)
	if f == nil {
		return nil, EBADF
	}
	if f.hostFD < 0 && (f.reader != nil || f.writer != nil) {
		if err := p.shareStdio(f); err != nil {
			return nil, EIO
		}
	}
	g := *f
	g.preopen, g.dirents = "", nil
	g.waits, g.closed = 0, 0 // f's waits are on f, not on the copy
	if f.hostFD >= 0 {
		h, err := unix.FcntlInt(uintptr(f.hostFD), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, errnoOf(err)
		}
		g.hostFD = h
	}
	return &g, ESUCCESS
}

// vkFdDup is vkernel.fd_dup(fd, min, result.fd) -> errno: fcntl's F_DUPFD.
// Writes the lowest free fd at or above min, which now names the same open
// file description as fd (shared offset and status flags) with fd's rights.
// EBADF when fd is not open, EINVAL when min is at or above the fd table's
// size (4096), EMFILE when no fd from min up is free, EFAULT.
var vkFdDup = &hostFunc{
	module: ModuleVkernel, name: "fd_dup",
	params: []string{"fd", "min", "result.fd"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		min := uint32(s[1])
		if _, ok := view(mod.Memory(), uint32(s[2]), 4); !ok {
			return EFAULT
		}
		if p.fds.get(uint32(s[0])) == nil {
			return EBADF
		}
		if min >= maxFDs {
			return EINVAL
		}
		to := min
		for to < maxFDs && p.fds.get(to) != nil {
			to++
		}
		if to >= maxFDs {
			return EMFILE
		}
		g, errno := p.dup(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		p.fds.put(to, g)
		return putU32(mod.Memory(), uint32(s[2]), to)
	},
}

// vkFdDup2 is vkernel.fd_dup2(fd, to) -> errno: dup2. Makes to name the
// same open file description as fd, with fd's rights; an fd open at to is
// closed first (atomically: to is never free in between). fd == to is a
// no-op when fd is open. Unlike preview1's fd_renumber, fd stays open and
// to need not be. EBADF when fd is not open or to is at or above the fd
// table's size (4096), or to is a preopen's number (a preopen's fd cannot
// be replaced: its mount stays where the guest's libc found it).
var vkFdDup2 = &hostFunc{
	module: ModuleVkernel, name: "fd_dup2",
	params: []string{"fd", "to"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		from, to := uint32(s[0]), uint32(s[1])
		if p.fds.get(from) == nil || to >= maxFDs {
			return EBADF
		}
		if from == to {
			return ESUCCESS
		}
		old := p.fds.get(to)
		if old != nil && old.preopen != "" {
			return EBADF
		}
		g, errno := p.dup(from)
		if errno != ESUCCESS {
			return errno
		}
		if old != nil {
			p.forgetEpoll(old.hostFD)
			old.closeHost()
		}
		p.fds.put(to, g)
		return ESUCCESS
	},
}
