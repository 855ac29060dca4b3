package hostabi

import (
	"context"
	"net/netip"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// vkSockConnect is vkernel.sock_connect(addr, addr_len, port, fdflags,
// result.fd) -> errno: opens a TCP connection to the IP literal at addr
// (no name lookup) and port. The policy decides which addresses an entry
// may reach (EACCES otherwise, with an audit record). Without NONBLOCK in
// fdflags it waits for the connection; with it, it answers EINPROGRESS with
// the fd already written to result.fd, and the guest polls for fd_write and
// reads the outcome with sock_error, as with POSIX connect. EINVAL for a bad
// address, ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EFAULT.
var vkSockConnect = &hostFunc{
	module: ModuleVkernel, name: "sock_connect",
	params: []string{"addr", "addr_len", "port", "fdflags", "result.fd"}, types: []api.ValueType{i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		text, errno := readString(mod.Memory(), uint32(s[0]), uint32(s[1]))
		if errno != ESUCCESS {
			return errno
		}
		ip, err := netip.ParseAddr(text)
		if err != nil || uint32(s[2]) > 65535 || uint32(s[3])&^fdflagNonblock != 0 {
			return EINVAL
		}
		if _, ok := view(mod.Memory(), uint32(s[4]), 4); !ok {
			return EFAULT
		}
		dst := netip.AddrPortFrom(ip.Unmap(), uint16(s[2]))
		if p.hooks.AllowConnect == nil || !p.hooks.AllowConnect(dst) {
			p.audit("connect", dst.String(), "deny", "address not allowed for this entry")
			return EACCES
		}
		family, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Port: int(dst.Port()), Addr: dst.Addr().As16()})
		if dst.Addr().Is4() {
			family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
		}
		fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return errnoOf(err)
		}
		f := &file{filetype: filetypeSocketStream, hostFD: fd, flags: uint16(s[3]), peer: dst, rights: streamRights}
		err = unix.Connect(fd, sa)
		if err == unix.EINPROGRESS && !f.nonblocking() {
			if errno := p.waitFD(ctx, nil, fd, unix.POLLOUT); errno != ESUCCESS {
				unix.Close(fd)
				return errno
			}
			err = sockError(fd)
		}
		if err != nil && err != unix.EINPROGRESS {
			unix.Close(fd)
			return errnoOf(err)
		}
		newfd, errno := p.fds.insert(f)
		if errno != ESUCCESS {
			unix.Close(fd)
			return errno
		}
		putU32(mod.Memory(), uint32(s[4]), newfd)
		return errnoOf(err)
	},
}

func sockError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return unix.Errno(v)
	}
	return nil
}

// vkSockError is vkernel.sock_error(fd, result.errno) -> errno: the pending
// error of a socket (SO_ERROR), the outcome of a non-blocking connect.
// EBADF, ENOTSOCK, EFAULT.
var vkSockError = &hostFunc{
	module: ModuleVkernel, name: "sock_error",
	params: []string{"fd", "result.errno"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, errno := p.socket(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		return putU32(mod.Memory(), uint32(s[1]), uint32(errnoOf(sockError(f.hostFD))))
	},
}

// vkSockPeerAddr is vkernel.sock_peer_addr(fd, buf, buf_len, result.len,
// result.port) -> errno: the peer's IP address as text and its port, for an
// accepted or connected socket. ENOTCONN when there is no peer, ERANGE when
// buf_len is too small (46 bytes always suffice), EBADF, EFAULT.
var vkSockPeerAddr = &hostFunc{
	module: ModuleVkernel, name: "sock_peer_addr",
	params: []string{"fd", "buf", "buf_len", "result.len", "result.port"}, types: []api.ValueType{i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, errno := p.socket(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		if !f.peer.IsValid() {
			return ENOTCONN
		}
		return putAddr(mod.Memory(), f.peer, s[1:5])
	},
}

// vkSockLocalAddr is vkernel.sock_local_addr(fd, buf, buf_len, result.len,
// result.port) -> errno: the socket's own address, for listeners too, so a
// guest can match the listeners it was handed to its configuration by
// address. ERANGE, EBADF, ENOTSOCK, EFAULT.
var vkSockLocalAddr = &hostFunc{
	module: ModuleVkernel, name: "sock_local_addr",
	params: []string{"fd", "buf", "buf_len", "result.len", "result.port"}, types: []api.ValueType{i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		if f.filetype != filetypeSocketStream || f.hostFD < 0 {
			return ENOTSOCK
		}
		sa, err := unix.Getsockname(f.hostFD)
		if err != nil {
			return errnoOf(err)
		}
		return putAddr(mod.Memory(), addrPort(sa), s[1:5])
	},
}

// putAddr writes an address as text to buf and its length and port to the
// result pointers: args are buf, buf_len, result.len, result.port.
func putAddr(m api.Memory, a netip.AddrPort, args []uint64) Errno {
	text := a.Addr().String()
	if uint32(args[1]) < uint32(len(text)) {
		return ERANGE
	}
	b, ok := view(m, uint32(args[0]), uint32(len(text)))
	if !ok {
		return EFAULT
	}
	copy(b, text)
	if errno := putU32(m, uint32(args[2]), uint32(len(text))); errno != ESUCCESS {
		return errno
	}
	return putU32(m, uint32(args[3]), uint32(a.Port()))
}

// Socket options for vkernel.sock_setopt.
const (
	sockoptNoDelay   = 1
	sockoptKeepAlive = 2
	sockoptSndBuf    = 3
	sockoptRcvBuf    = 4
)

// vkSockSetopt is vkernel.sock_setopt(fd, option, value) -> errno: sets
// TCP_NODELAY (1), SO_KEEPALIVE (2), SO_SNDBUF (3) or SO_RCVBUF (4). EINVAL
// for another option, EBADF, ENOTSOCK.
var vkSockSetopt = &hostFunc{
	module: ModuleVkernel, name: "sock_setopt",
	params: []string{"fd", "option", "value"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		if f.filetype != filetypeSocketStream || f.hostFD < 0 {
			return ENOTSOCK
		}
		v := int(int32(s[2]))
		var err error
		switch uint32(s[1]) {
		case sockoptNoDelay:
			err = unix.SetsockoptInt(f.hostFD, unix.IPPROTO_TCP, unix.TCP_NODELAY, v)
		case sockoptKeepAlive:
			err = unix.SetsockoptInt(f.hostFD, unix.SOL_SOCKET, unix.SO_KEEPALIVE, v)
		case sockoptSndBuf:
			err = unix.SetsockoptInt(f.hostFD, unix.SOL_SOCKET, unix.SO_SNDBUF, v)
		case sockoptRcvBuf:
			err = unix.SetsockoptInt(f.hostFD, unix.SOL_SOCKET, unix.SO_RCVBUF, v)
		default:
			return EINVAL
		}
		return errnoOf(err)
	},
}

func (p *Process) audit(action, detail, decision, reason string) {
	if p.hooks.Audit != nil {
		p.hooks.Audit(action, detail, decision, reason)
	}
}
