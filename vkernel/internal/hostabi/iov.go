package hostabi

import (
	"syscall"
	"unsafe"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// ioScratch is the memory the iovec calls (fd_read, fd_write, fd_pread,
// fd_pwrite, sock_recv, sock_send) reuse from call to call: once it has
// grown to the most iovecs a guest passes, none of them allocates. A
// process's host calls run one at a time (with threads, under the
// process's lock), so one scratch per process is enough; what it holds is
// valid until the next call. A call that waits without the lock takes the
// views it holds with it (unlockedFor) and uses a scratch of its own for a
// system call it makes unlocked (unlockedIO).
type ioScratch struct {
	bufs [][]byte     // the guest's iovecs as views of its memory
	iovs []unix.Iovec // the same, as the host's struct iovec
	msg  unix.Msghdr
}

// iovecs resolves an array of n preview1 iovecs (buf u32, len u32) at off
// into views of guest memory, leaving out empty ones. EINVAL for more than
// maxIovecs, EFAULT when an iovec or its buffer lies outside memory.
func (p *Process) iovecs(m api.Memory, off, n uint32) ([][]byte, Errno) {
	if n > maxIovecs {
		return nil, EINVAL
	}
	raw, ok := view(m, off, n*8)
	if !ok {
		return nil, EFAULT
	}
	bufs := p.io.bufs[:0]
	for i := uint32(0); i < n; i++ {
		ptr := le32(raw[i*8:])
		size := le32(raw[i*8+4:])
		b, ok := view(m, ptr, size)
		if !ok {
			return nil, EFAULT
		}
		if size > 0 {
			bufs = append(bufs, b)
		}
	}
	p.io.bufs = bufs
	return bufs, ESUCCESS
}

// hostIovecs returns bufs as the host's iovec array, in p's scratch.
func (p *Process) hostIovecs(bufs [][]byte) []unix.Iovec { return p.io.hostIovecs(bufs) }

// hostIovecs returns bufs as the host's iovec array, in s.
func (s *ioScratch) hostIovecs(bufs [][]byte) []unix.Iovec {
	iovs := s.iovs[:0]
	for _, b := range bufs {
		iov := unix.Iovec{Base: &b[0]}
		iov.SetLen(len(b))
		iovs = append(iovs, iov)
	}
	s.iovs = iovs
	return iovs
}

// iovPtr is the address of an iovec array, 0 for an empty one.
func iovPtr(iovs []unix.Iovec) uintptr {
	if len(iovs) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&iovs[0]))
}

// result turns a raw system call's return into (count, error).
func result(r uintptr, e syscall.Errno) (int, error) {
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// The vector system calls on host fds. Those on sockets never block (the
// vkernel's sockets are all O_NONBLOCK: a guest's blocking socket waits in
// retry), so they are made raw, without telling the Go scheduler: no
// entersyscall/exitsyscall pair, no P handed off to another thread. Those
// on files may wait for a disk, and tell it.
//
// One buffer, the common case (Redis reads and writes with read and
// write, NGINX receives with recv and reads files with pread), moves with
// the plain call a native program makes (read, write, sendto, recvfrom,
// pread64, pwrite64): the vector calls have the kernel import an iovec
// array, and a msghdr for sendmsg and recvmsg, from guest-side memory,
// which cost 0.7 µs per read-write pair on this VM.

// bufPtr is the address of a buffer that is not empty (iovecs drops
// empty ones).
func bufPtr(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

// sockReadv is readv(2) on a non-blocking socket.
func (p *Process) sockReadv(fd int, bufs [][]byte) (int, error) {
	if len(bufs) == 1 {
		return result(rawSyscall(unix.SYS_READ, uintptr(fd), bufPtr(bufs[0]), uintptr(len(bufs[0]))))
	}
	iovs := p.hostIovecs(bufs)
	return result(rawSyscall(unix.SYS_READV, uintptr(fd), iovPtr(iovs), uintptr(len(iovs))))
}

// sockSendmsg is sendmsg(2) of bufs on a non-blocking socket.
func (p *Process) sockSendmsg(fd int, bufs [][]byte, flags int) (int, error) {
	if len(bufs) == 1 {
		return result(rawSyscall6(unix.SYS_SENDTO, uintptr(fd), bufPtr(bufs[0]), uintptr(len(bufs[0])), uintptr(flags), 0))
	}
	return p.sockMsg(unix.SYS_SENDMSG, fd, bufs, flags)
}

// sockRecvmsg is recvmsg(2) into bufs on a non-blocking socket.
func (p *Process) sockRecvmsg(fd int, bufs [][]byte, flags int) (int, error) {
	if len(bufs) == 1 {
		return result(rawSyscall6(unix.SYS_RECVFROM, uintptr(fd), bufPtr(bufs[0]), uintptr(len(bufs[0])), uintptr(flags), 0))
	}
	return p.sockMsg(unix.SYS_RECVMSG, fd, bufs, flags)
}

func (p *Process) sockMsg(trap uintptr, fd int, bufs [][]byte, flags int) (int, error) {
	iovs := p.hostIovecs(bufs)
	msg := &p.io.msg
	*msg = unix.Msghdr{}
	if len(iovs) > 0 {
		msg.Iov = &iovs[0]
		msg.SetIovlen(len(iovs))
	}
	return result(rawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(msg)), uintptr(flags)))
}

// pipeWritev is write(2)/writev(2) on a non-blocking pipe.
func (p *Process) pipeWritev(fd int, bufs [][]byte) (int, error) {
	if len(bufs) == 1 {
		return result(rawSyscall(unix.SYS_WRITE, uintptr(fd), bufPtr(bufs[0]), uintptr(len(bufs[0]))))
	}
	iovs := p.hostIovecs(bufs)
	return result(rawSyscall(unix.SYS_WRITEV, uintptr(fd), iovPtr(iovs), uintptr(len(iovs))))
}

// fileReadv is readv(2) on a host fd that may block.
func (s *ioScratch) fileReadv(fd int, bufs [][]byte) (int, error) {
	if len(bufs) == 1 {
		return result(blockingSyscall(unix.SYS_READ, uintptr(fd), bufPtr(bufs[0]), uintptr(len(bufs[0])), 0, 0))
	}
	iovs := s.hostIovecs(bufs)
	return result(blockingSyscall(unix.SYS_READV, uintptr(fd), iovPtr(iovs), uintptr(len(iovs)), 0, 0))
}

// fileWritev is writev(2) on a host fd that may block.
func (s *ioScratch) fileWritev(fd int, bufs [][]byte) (int, error) {
	if len(bufs) == 1 {
		return result(blockingSyscall(unix.SYS_WRITE, uintptr(fd), bufPtr(bufs[0]), uintptr(len(bufs[0])), 0, 0))
	}
	iovs := s.hostIovecs(bufs)
	return result(blockingSyscall(unix.SYS_WRITEV, uintptr(fd), iovPtr(iovs), uintptr(len(iovs)), 0, 0))
}

// filePreadv is preadv(2) at off on a host fd that may block.
func (s *ioScratch) filePreadv(fd int, bufs [][]byte, off int64) (int, error) {
	if len(bufs) == 1 {
		return result(blockingSyscall(unix.SYS_PREAD64, uintptr(fd), bufPtr(bufs[0]), uintptr(len(bufs[0])), uintptr(off), 0))
	}
	iovs := s.hostIovecs(bufs)
	// The offset is split in two longs; on a 64-bit host the high one is 0.
	return result(blockingSyscall(unix.SYS_PREADV, uintptr(fd), iovPtr(iovs), uintptr(len(iovs)), uintptr(off), 0))
}

// filePwritev is pwritev(2) at off on a host fd that may block.
func (s *ioScratch) filePwritev(fd int, bufs [][]byte, off int64) (int, error) {
	if len(bufs) == 1 {
		return result(blockingSyscall(unix.SYS_PWRITE64, uintptr(fd), bufPtr(bufs[0]), uintptr(len(bufs[0])), uintptr(off), 0))
	}
	iovs := s.hostIovecs(bufs)
	return result(blockingSyscall(unix.SYS_PWRITEV, uintptr(fd), iovPtr(iovs), uintptr(len(iovs)), uintptr(off), 0))
}

func rawSyscall(trap, a1, a2, a3 uintptr) (uintptr, syscall.Errno) {
	r, _, e := syscall.RawSyscall(trap, a1, a2, a3)
	return r, e
}

func blockingSyscall(trap, a1, a2, a3, a4, a5 uintptr) (uintptr, syscall.Errno) {
	r, _, e := syscall.Syscall6(trap, a1, a2, a3, a4, a5, 0)
	return r, e
}

func rawSyscall6(trap, a1, a2, a3, a4, a5 uintptr) (uintptr, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(trap, a1, a2, a3, a4, a5, 0)
	return r, e
}
