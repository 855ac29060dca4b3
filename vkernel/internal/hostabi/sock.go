package hostabi

import (
	"context"
	"net/netip"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// Preview1 socket flags.
const (
	riflagRecvPeek    = 1
	riflagRecvWaitall = 2
	sdflagRD          = 1
	sdflagWR          = 2
)

// sockAccept is preview1 sock_accept(fd, flags, result.fd) -> errno: accepts
// a connection on a listener the runner handed over. The new fd takes the
// given fdflags (NONBLOCK). A blocking listener waits; a NONBLOCK one
// answers EAGAIN. The peer's address is kept for vkernel.sock_peer_addr
// (preview1 has no way to return it). EBADF, ENOTSOCK, EINVAL for a socket
// that is not listening, EFAULT.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md
var sockAccept = &hostFunc{
	module: ModulePreview1, name: "sock_accept",
	params: []string{"fd", "flags", "result.fd"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		l := p.fds.get(uint32(s[0]))
		if l == nil {
			return EBADF
		}
		if l.filetype != filetypeSocketStream || l.hostFD < 0 {
			return ENOTSOCK
		}
		if !l.listener {
			return EINVAL
		}
		flags := uint32(s[1])
		if flags&^fdflagNonblock != 0 {
			return EINVAL
		}
		if _, ok := view(mod.Memory(), uint32(s[2]), 4); !ok {
			return EFAULT
		}
		var peer unix.Sockaddr
		nfd, errno := p.retry(ctx, l, unix.POLLIN, func() (int, error) {
			fd, sa, err := unix.Accept4(l.hostFD, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			peer = sa
			return fd, err
		})
		if errno != ESUCCESS {
			return errno
		}
		f := &file{filetype: filetypeSocketStream, hostFD: nfd, flags: uint16(flags), peer: addrPort(peer), rights: streamRights,
			local: l.local}
		fd, errno := p.fds.insert(f)
		if errno != ESUCCESS {
			unix.Close(nfd)
			return errno
		}
		return putU32(mod.Memory(), uint32(s[2]), fd)
	},
}

// sockRecv is preview1 sock_recv(fd, ri_data, ri_data_len, ri_flags,
// result.ro_datalen, result.ro_flags) -> errno: one recvmsg into all the
// iovecs, so no received byte is ever dropped; RECV_PEEK and RECV_WAITALL
// are honoured. A blocking socket waits for data; a NONBLOCK one answers
// EAGAIN. 0 bytes means the peer closed. EBADF, ENOTSOCK, EFAULT,
// ECONNRESET.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-sock_recvfd-fd-ri_data-iovec_array-ri_flags-riflags---errno-size-roflags
var sockRecv = &hostFunc{
	module: ModulePreview1, name: "sock_recv",
	params:  []string{"fd", "ri_data", "ri_data_len", "ri_flags", "result.ro_datalen", "result.ro_flags"},
	types:   []api.ValueType{i32, i32, i32, i32, i32, i32},
	results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, errno := p.socket(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		riflags := uint32(s[3])
		if riflags&^(riflagRecvPeek|riflagRecvWaitall) != 0 {
			return EINVAL
		}
		bufs, errno := p.iovecs(mod.Memory(), uint32(s[1]), uint32(s[2]))
		if errno != ESUCCESS {
			return errno
		}
		var flags int
		if riflags&riflagRecvPeek != 0 {
			flags |= unix.MSG_PEEK
		}
		want := 0
		for _, b := range bufs {
			want += len(b)
		}
		total := 0
		for {
			n, errno := p.retry(ctx, f, unix.POLLIN, func() (int, error) {
				return p.sockRecvmsg(f.hostFD, bufs, flags)
			})
			if errno != ESUCCESS {
				if total > 0 {
					break
				}
				return errno
			}
			total += n
			if riflags&riflagRecvWaitall == 0 || n == 0 || total >= want || flags&unix.MSG_PEEK != 0 {
				break
			}
			bufs = advance(bufs, n)
		}
		if errno := putU32(mod.Memory(), uint32(s[4]), uint32(total)); errno != ESUCCESS {
			return errno
		}
		// roflags is a u16: writing 4 bytes would clobber the guest's stack.
		if !mod.Memory().WriteUint16Le(uint32(s[5]), 0) {
			return EFAULT
		}
		return ESUCCESS
	},
}

// advance drops the first n bytes from a list of buffers.
func advance(bufs [][]byte, n int) [][]byte {
	for n > 0 && len(bufs) > 0 {
		if n < len(bufs[0]) {
			bufs[0] = bufs[0][n:]
			return bufs
		}
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	return bufs
}

// sockSend is preview1 sock_send(fd, si_data, si_data_len, si_flags,
// result.so_datalen) -> errno: one sendmsg (MSG_NOSIGNAL) of all the
// iovecs; the count is exactly what the host accepted. EBADF, ENOTSOCK,
// EPIPE, EAGAIN on a NONBLOCK socket, EFAULT.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-sock_sendfd-fd-si_data-ciovec_array-si_flags-siflags---errno-size
var sockSend = &hostFunc{
	module: ModulePreview1, name: "sock_send",
	params:  []string{"fd", "si_data", "si_data_len", "si_flags", "result.so_datalen"},
	types:   []api.ValueType{i32, i32, i32, i32, i32},
	results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, errno := p.socket(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		if uint32(s[3]) != 0 {
			return EINVAL
		}
		return p.ioCall(mod, s[1], s[2], s[4], func(bufs [][]byte) (int, Errno) { return p.write(ctx, f, bufs) })
	},
}

// sockShutdown is preview1 sock_shutdown(fd, how) -> errno: shuts down the
// read side (RD), the write side (WR) or both. EBADF, ENOTSOCK, EINVAL,
// ENOTCONN.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-sock_shutdownfd-fd-how-sdflags---errno
var sockShutdown = &hostFunc{
	module: ModulePreview1, name: "sock_shutdown",
	params: []string{"fd", "how"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f, errno := p.socket(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		var how int
		switch uint32(s[1]) {
		case sdflagRD:
			how = unix.SHUT_RD
		case sdflagWR:
			how = unix.SHUT_WR
		case sdflagRD | sdflagWR:
			how = unix.SHUT_RDWR
		default:
			return EINVAL
		}
		return errnoOf(unix.Shutdown(f.hostFD, how))
	},
}

// socket returns the connected (non-listening) socket at fd, stream or
// dgram.
func (p *Process) socket(fd uint32) (*file, Errno) {
	f := p.fds.get(fd)
	if f == nil {
		return nil, EBADF
	}
	if !f.isSocket() {
		return nil, ENOTSOCK
	}
	if f.listener {
		return nil, ENOTCONN
	}
	return f, ESUCCESS
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}
