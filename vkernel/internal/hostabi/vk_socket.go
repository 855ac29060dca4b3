package hostabi

import (
	"context"
	"fmt"
	"net/netip"
	"path"
	"unsafe"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// The POSIX socket family of the vkernel module: sockets a guest creates
// itself (sock_open, sock_pair), binds, listens on, connects and sends
// datagrams with, in the unix, inet and inet6 domains. Constants are
// Linux's: address families, socket types, MSG_* flags, socket option
// levels and names, so that the C layer passes the program's values
// through. Errors are preview1 errnos. Addresses travel in the vkaddr
// format (ABI.md, "Sockets"):
//
//	inet, inet6 (24 bytes): u16 family, u16 port, u32 scope id,
//	                        16 address bytes (inet: the first 4)
//	unix (4 + n bytes):     u16 family, u16 n, n path bytes (n ≤ 108)
//
// What a guest may bind to and reach is the policy's (Hooks.AllowBind,
// Hooks.AllowConnect): a refusal is EACCES with an audit record. A unix
// socket's path is a guest path, resolved inside the guest's mounts as the
// path_* calls resolve theirs; the host binds and connects through the
// O_PATH fd of the resolved directory or socket, so the host path's length
// and whatever lies outside the mount never matter.

// Address families, socket types and protocols (Linux values).
const (
	afUnspec = 0
	afUnix   = 1
	afInet   = 2
	afInet6  = 10

	sockStream = 1
	sockDgram  = 2

	ipprotoTCP = 6
	ipprotoUDP = 17
)

// MSG_* flags of sock_sendto and sock_recvfrom (Linux values).
const (
	msgOOB      = 0x1
	msgPeek     = 0x2
	msgTrunc    = 0x20
	msgDontwait = 0x40
	msgEOR      = 0x80
	msgWaitall  = 0x100
	msgNosignal = 0x4000
	msgMore     = 0x8000
)

// vkaddr sizes.
const (
	vkaddrInetLen = 24
	vkaddrMax     = 4 + sunPathMax
	sunPathMax    = 108
)

// sockAddr is a decoded vkaddr.
type sockAddr struct {
	family int
	ap     netip.AddrPort // inet, inet6
	scope  uint32
	path   string // unix: a guest path
}

// readSockAddr decodes the vkaddr of n bytes at ptr. EINVAL for a short or
// malformed one, EAFNOSUPPORT for an unknown family, EFAULT.
func readSockAddr(m api.Memory, ptr, n uint32) (sockAddr, Errno) {
	if n < 4 || n > 1024 {
		return sockAddr{}, EINVAL
	}
	b, ok := view(m, ptr, n)
	if !ok {
		return sockAddr{}, EFAULT
	}
	a := sockAddr{family: int(le16(b))}
	switch a.family {
	case afInet:
		if n < vkaddrInetLen {
			return sockAddr{}, EINVAL
		}
		a.ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[8:12])), le16(b[2:]))
	case afInet6:
		if n < vkaddrInetLen {
			return sockAddr{}, EINVAL
		}
		a.scope = le32(b[4:])
		a.ap = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), le16(b[2:]))
	case afUnspec:
		// connect's "dissolve the association" (datagram sockets).
	case afUnix:
		l := uint32(le16(b[2:]))
		if l > sunPathMax || 4+l > n {
			return sockAddr{}, EINVAL
		}
		a.path = string(b[4 : 4+l])
	default:
		return sockAddr{}, EAFNOSUPPORT
	}
	return a, ESUCCESS
}

// encodeSockAddr is a's vkaddr.
func encodeSockAddr(a sockAddr) []byte {
	if a.family == afUnix {
		b := make([]byte, 4+len(a.path))
		put16(b, afUnix)
		put16(b[2:], uint16(len(a.path)))
		copy(b[4:], a.path)
		return b
	}
	b := make([]byte, vkaddrInetLen)
	put16(b, uint16(a.family))
	put16(b[2:], a.ap.Port())
	put32(b[4:], a.scope)
	if a.family == afInet {
		v4 := a.ap.Addr().As4()
		copy(b[8:], v4[:])
	} else {
		v6 := a.ap.Addr().As16()
		copy(b[8:], v6[:])
	}
	return b
}

// hostSockAddr converts a host address to its sockAddr; unix paths are
// left empty (the caller knows the guest path, if any).
func hostSockAddr(sa unix.Sockaddr) sockAddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return sockAddr{family: afInet, ap: netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))}
	case *unix.SockaddrInet6:
		return sockAddr{family: afInet6, ap: netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)), scope: a.ZoneId}
	}
	return sockAddr{family: afUnix}
}

// inetSockaddr is the host address for an inet or inet6 sockAddr.
func (a sockAddr) inetSockaddr() unix.Sockaddr {
	if a.family == afInet {
		return &unix.SockaddrInet4{Port: int(a.ap.Port()), Addr: a.ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(a.ap.Port()), Addr: a.ap.Addr().As16(), ZoneId: a.scope}
}

// putSockAddr writes a's vkaddr to buf (cut to bufLen, as getsockname cuts
// it) and its full length to resultLen.
func putSockAddr(m api.Memory, a sockAddr, buf, bufLen, resultLen uint32) Errno {
	enc := encodeSockAddr(a)
	n := uint32(len(enc))
	if bufLen < n {
		n = bufLen
	}
	b, ok := view(m, buf, n)
	if !ok {
		return EFAULT
	}
	copy(b, enc)
	return putU32(m, resultLen, uint32(len(enc)))
}

// anySocket returns the socket at fd, listening or not, stream or dgram.
// dataCall is what sock_sendto and sock_recvfrom check first, from their
// shared leading parameters (fd, iovs, iovs_len, flags): the socket (not a
// listener: ENOTCONN), the flags within allowed (else ENOTSUP) and the
// iovecs as slices of the guest's memory.
func (p *Process) dataCall(mod api.Module, s []uint64, allowed int) (*file, int, [][]byte, Errno) {
	f, errno := p.anySocket(uint32(s[0]))
	if errno != ESUCCESS {
		return nil, 0, nil, errno
	}
	if f.listener {
		return nil, 0, nil, ENOTCONN
	}
	flags := int(uint32(s[3]))
	if flags&^allowed != 0 {
		return nil, 0, nil, ENOTSUP
	}
	bufs, errno := p.iovecs(mod.Memory(), uint32(s[1]), uint32(s[2]))
	return f, flags, bufs, errno
}

func (p *Process) anySocket(fd uint32) (*file, Errno) {
	f := p.fds.get(fd)
	if f == nil {
		return nil, EBADF
	}
	if !f.isSocket() {
		return nil, ENOTSOCK
	}
	return f, ESUCCESS
}

// allowBind applies the policy to a local address; nil hook: loopback only.
func (p *Process) allowBind(ap netip.AddrPort) bool {
	if p.hooks.AllowBind == nil {
		return ap.Addr().Unmap().IsLoopback()
	}
	return p.hooks.AllowBind(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// allowConnect applies the policy to a destination.
func (p *Process) allowConnect(ap netip.AddrPort) bool {
	return p.hooks.AllowConnect != nil && p.hooks.AllowConnect(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// unixTarget resolves a unix socket's guest path inside the mounts: an
// absolute path (the C layer makes relative ones absolute), never leaving
// the mount it falls in. A path outside every mount, or an abstract one
// (leading NUL), is EACCES with an audit record; an empty one EINVAL.
func (p *Process) unixTarget(action, name string) (target, Errno) {
	if name == "" {
		return target{}, EINVAL
	}
	if name[0] == 0 {
		p.audit(action, fmt.Sprintf("unix:@%q", name[1:]), "deny", "abstract unix sockets are outside every mount")
		return target{}, EACCES
	}
	if !path.IsAbs(name) {
		return target{}, EINVAL
	}
	t, errno := p.guestPath(name)
	if errno == ENOENT {
		p.audit(action, "unix:"+name, "deny", "unix socket path outside the mounts")
		return target{}, EACCES
	}
	return t, errno
}

// unixBind binds fd to the guest path: the directory is opened inside the
// mount (openat2, RESOLVE_IN_ROOT) and the socket bound through
// /proc/self/fd/<dir>/<name>, so that neither the host path's length nor a
// symbolic link can take it outside. A read-only mount is EROFS.
func unixBind(fd int, t target) Errno {
	if t.mount.readOnly {
		return EROFS
	}
	pfd, base, err := t.parent()
	if err != nil {
		return errnoOf(err)
	}
	defer unix.Close(pfd)
	host := fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)
	if len(host) >= sunPathMax {
		return ENAMETOOLONG
	}
	return errnoOf(unix.Bind(fd, &unix.SockaddrUnix{Name: host}))
}

// unixPeer opens the socket file at the guest path inside its mount
// (following symbolic links inside it only) and calls op with the host
// address naming it: /proc/self/fd/<O_PATH fd of the socket>.
func unixPeer(t target, op func(sa unix.Sockaddr) error) Errno {
	pfd, err := t.lookup(lookupSymlinkFollow)
	if err != nil {
		return errnoOf(err)
	}
	defer unix.Close(pfd)
	return errnoOf(op(&unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d", pfd)}))
}

// vkSockOpen is vkernel.sock_open(domain, type, protocol, fdflags,
// result.fd) -> errno: socket(2). domain 1 (unix), 2 (inet) or 10
// (inet6); type 1 (stream) or 2 (dgram); protocol 0, or 6 (TCP) for an
// inet stream, 17 (UDP) for an inet dgram; fdflags NONBLOCK or 0. The host
// socket is non-blocking and close-on-exec; the guest fd blocks unless
// NONBLOCK. EAFNOSUPPORT, EPROTOTYPE (another type: no raw sockets),
// EPROTONOSUPPORT, EINVAL (fdflags), EMFILE, EFAULT.
// See https://man7.org/linux/man-pages/man2/socket.2.html
var vkSockOpen = &hostFunc{
	module: ModuleVkernel, name: "sock_open",
	params: []string{"domain", "type", "protocol", "fdflags", "result.fd"}, types: []api.ValueType{i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		domain, typ, proto, flags := uint32(s[0]), uint32(s[1]), uint32(s[2]), uint32(s[3])
		if domain != afUnix && domain != afInet && domain != afInet6 {
			return EAFNOSUPPORT
		}
		if typ != sockStream && typ != sockDgram {
			return EPROTOTYPE
		}
		switch {
		case proto == 0:
		case domain != afUnix && typ == sockStream && proto == ipprotoTCP:
		case domain != afUnix && typ == sockDgram && proto == ipprotoUDP:
		default:
			return EPROTONOSUPPORT
		}
		if flags&^fdflagNonblock != 0 {
			return EINVAL
		}
		if _, ok := view(mod.Memory(), uint32(s[4]), 4); !ok {
			return EFAULT
		}
		fd, err := unix.Socket(int(domain), int(typ)|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return errnoOf(err)
		}
		newfd, errno := p.fds.insert(newSocketFile(fd, int(typ), uint16(flags)))
		if errno != ESUCCESS {
			unix.Close(fd)
			return errno
		}
		return putU32(mod.Memory(), uint32(s[4]), newfd)
	},
}

func newSocketFile(fd, typ int, flags uint16) *file {
	ft := uint8(filetypeSocketStream)
	if typ == sockDgram {
		ft = filetypeSocketDgram
	}
	return &file{filetype: ft, hostFD: fd, flags: flags, rights: streamRights}
}

// vkSockPair is vkernel.sock_pair(domain, type, fdflags, result.fds) ->
// errno: socketpair(2) of two connected unix sockets, stream or dgram;
// writes the two fds (two u32). EOPNOTSUPP (ENOTSUP) for inet domains, as
// Linux; EAFNOSUPPORT, EPROTOTYPE, EINVAL, EMFILE, EFAULT.
// See https://man7.org/linux/man-pages/man2/socketpair.2.html
var vkSockPair = &hostFunc{
	module: ModuleVkernel, name: "sock_pair",
	params: []string{"domain", "type", "fdflags", "result.fds"}, types: []api.ValueType{i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		domain, typ, flags := uint32(s[0]), uint32(s[1]), uint32(s[2])
		switch {
		case domain == afInet || domain == afInet6:
			return ENOTSUP
		case domain != afUnix:
			return EAFNOSUPPORT
		case typ != sockStream && typ != sockDgram:
			return EPROTOTYPE
		case flags&^fdflagNonblock != 0:
			return EINVAL
		}
		if _, ok := view(mod.Memory(), uint32(s[3]), 8); !ok {
			return EFAULT
		}
		fds, err := unix.Socketpair(unix.AF_UNIX, int(typ)|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return errnoOf(err)
		}
		a, errno := p.fds.insert(newSocketFile(fds[0], int(typ), uint16(flags)))
		if errno != ESUCCESS {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return errno
		}
		b, errno := p.fds.insert(newSocketFile(fds[1], int(typ), uint16(flags)))
		if errno != ESUCCESS {
			p.fds.remove(a).closeHost()
			unix.Close(fds[1])
			return errno
		}
		putU32(mod.Memory(), uint32(s[3]), a)
		return putU32(mod.Memory(), uint32(s[3])+4, b)
	},
}

// vkSockBind is vkernel.sock_bind(fd, addr, addr_len) -> errno: bind(2)
// to the vkaddr at addr. An inet address must be allowed by the policy
// (loopback by default; the wildcard address counts as itself, so it needs
// the entry's resources.bind): EACCES and an audit record otherwise. A
// unix path is a guest path inside a mount (EACCES and an audit record
// outside every mount; EROFS on a read-only one; EADDRINUSE when the name
// exists). EBADF, ENOTSOCK, EINVAL (already bound, bad address),
// EAFNOSUPPORT (another family than the socket's), EADDRNOTAVAIL, EFAULT.
// See https://man7.org/linux/man-pages/man2/bind.2.html
var vkSockBind = &hostFunc{
	module: ModuleVkernel, name: "sock_bind",
	params: []string{"fd", "addr", "addr_len"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, errno := p.anySocket(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		a, errno := readSockAddr(mod.Memory(), uint32(s[1]), uint32(s[2]))
		if errno != ESUCCESS {
			return errno
		}
		if a.family == afUnspec {
			return EAFNOSUPPORT
		}
		if a.family == afUnix {
			t, errno := p.unixTarget("bind", a.path)
			if errno != ESUCCESS {
				return errno
			}
			if errno := unixBind(f.hostFD, t); errno != ESUCCESS {
				return errno
			}
			f.local = a.path
			return ESUCCESS
		}
		if !p.allowBind(a.ap) {
			p.audit("bind", a.ap.String(), "deny", "address not allowed for this entry")
			return EACCES
		}
		return errnoOf(unix.Bind(f.hostFD, a.inetSockaddr()))
	},
}

// bindLoopback binds an inet socket that has no address yet to the
// loopback address of its family, port 0, before it listens or talks to
// a loopback peer: left to the host, it would be bound to the wildcard
// address (every interface) instead. v4mapped picks ::ffff:127.0.0.1 for
// an inet6 socket. A socket already bound, or not inet, is left alone.
func bindLoopback(fd int, v4mapped bool) error {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		if a.Port != 0 {
			return nil
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	case *unix.SockaddrInet6:
		if a.Port != 0 {
			return nil
		}
		addr := netip.IPv6Loopback().As16()
		if v4mapped {
			addr = netip.AddrFrom4([4]byte{127, 0, 0, 1}).As16()
			addr[10], addr[11] = 0xff, 0xff
		}
		return unix.Bind(fd, &unix.SockaddrInet6{Addr: addr})
	}
	return nil
}

// vkSockListen is vkernel.sock_listen(fd, backlog) -> errno: listen(2);
// the fd is a listener for sock_accept from then on. An inet socket not yet
// bound is first bound to the loopback address of its family (port 0),
// unless the policy allows the wildcard address: natively it would listen
// on every interface. EBADF, ENOTSOCK, EOPNOTSUPP (ENOTSUP) for a dgram
// socket, EADDRINUSE.
// See https://man7.org/linux/man-pages/man2/listen.2.html
var vkSockListen = &hostFunc{
	module: ModuleVkernel, name: "sock_listen",
	params: []string{"fd", "backlog"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f, errno := p.anySocket(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		if f.filetype != filetypeSocketStream {
			return ENOTSUP
		}
		if sa, err := unix.Getsockname(f.hostFD); err == nil {
			wildcard := netip.IPv4Unspecified()
			if _, v6 := sa.(*unix.SockaddrInet6); v6 {
				wildcard = netip.IPv6Unspecified()
			}
			if !p.allowBind(netip.AddrPortFrom(wildcard, 0)) {
				if err := bindLoopback(f.hostFD, false); err != nil {
					return errnoOf(err)
				}
			}
		}
		if err := unix.Listen(f.hostFD, int(int32(s[1]))); err != nil {
			return errnoOf(err)
		}
		f.listener = true
		return ESUCCESS
	},
}

// vkSockConnectTo is vkernel.sock_connect_to(fd, addr, addr_len) -> errno:
// connect(2) of a socket from sock_open to the vkaddr at addr. An inet
// destination must be allowed by the policy (loopback by default), else
// EACCES and an audit record; a unix path is a guest path inside a mount,
// resolved as sock_bind's. A blocking fd waits for a stream connection to
// complete; a NONBLOCK one answers EINPROGRESS, and the guest polls for
// fd_write and reads the outcome with sock_getsockopt(SO_ERROR) or
// sock_error. A dgram socket just records its peer; family 0 (AF_UNSPEC)
// dissolves that association. EBADF, ENOTSOCK,
// EISCONN, EALREADY, ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EAFNOSUPPORT,
// EINVAL, EINTR, ENOENT (no such unix socket), EFAULT.
// See https://man7.org/linux/man-pages/man2/connect.2.html
var vkSockConnectTo = &hostFunc{
	module: ModuleVkernel, name: "sock_connect_to",
	params: []string{"fd", "addr", "addr_len"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, errno := p.anySocket(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		a, errno := readSockAddr(mod.Memory(), uint32(s[1]), uint32(s[2]))
		if errno != ESUCCESS {
			return errno
		}
		var err error
		if a.family == afUnspec {
			// AF_UNSPEC dissolves a datagram socket's association.
			raw := unix.RawSockaddr{Family: unix.AF_UNSPEC}
			_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(f.hostFD), uintptr(unsafe.Pointer(&raw)), unsafe.Sizeof(raw))
			if e != 0 {
				return errnoOf(e)
			}
			f.peer, f.peerPath = netip.AddrPort{}, ""
			return ESUCCESS
		}
		if a.family == afUnix {
			t, errno := p.unixTarget("connect", a.path)
			if errno != ESUCCESS {
				return errno
			}
			for {
				errno = unixPeer(t, func(sa unix.Sockaddr) error { return unix.Connect(f.hostFD, sa) })
				// A unix listener whose backlog is full answers EAGAIN
				// to a non-blocking connect; a blocking one waits.
				if errno != EAGAIN || f.nonblocking() {
					break
				}
				if errno = p.waitFD(ctx, f, f.hostFD, unix.POLLOUT); errno != ESUCCESS {
					return errno
				}
			}
			if errno == ESUCCESS {
				f.peerPath = a.path
			}
			return errno
		}
		if !p.allowConnect(a.ap) {
			p.audit("connect", a.ap.String(), "deny", "address not allowed for this entry")
			return EACCES
		}
		if a.ap.Addr().Unmap().IsLoopback() && f.filetype == filetypeSocketDgram {
			if err := bindLoopback(f.hostFD, a.ap.Addr().Is4In6()); err != nil {
				return errnoOf(err)
			}
		}
		err = unix.Connect(f.hostFD, a.inetSockaddr())
		if err == unix.EINPROGRESS && !f.nonblocking() {
			// SO_SNDTIMEO bounds a blocking connect: EINPROGRESS after it.
			if errno := p.waitFDUntil(ctx, f, f.hostFD, unix.POLLOUT, sockDeadline(f, unix.POLLOUT)); errno != ESUCCESS {
				if errno == EAGAIN {
					return EINPROGRESS
				}
				return errno
			}
			err = sockError(f.hostFD)
		}
		if err == nil {
			f.peer = netip.AddrPortFrom(a.ap.Addr().Unmap(), a.ap.Port())
		}
		return errnoOf(err)
	},
}

// vkSockGetsockname is vkernel.sock_getsockname(fd, buf, buf_len,
// result.len) -> errno: getsockname(2) as a vkaddr, cut to buf_len (the
// full length is written to result.len). A unix socket answers the guest
// path it was bound to (a listener's accepted sockets too), or an empty
// path. EBADF, ENOTSOCK, EFAULT.
// See https://man7.org/linux/man-pages/man2/getsockname.2.html
var vkSockGetsockname = &hostFunc{
	module: ModuleVkernel, name: "sock_getsockname",
	params: []string{"fd", "buf", "buf_len", "result.len"}, types: []api.ValueType{i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: sockName(unix.Getsockname, func(f *file) string { return f.local }),
}

// vkSockGetpeername is vkernel.sock_getpeername(fd, buf, buf_len,
// result.len) -> errno: getpeername(2) as a vkaddr, as sock_getsockname.
// A unix socket answers the guest path it connected to, or an empty path
// (an accepted socket's peer is unnamed). ENOTCONN, EBADF, ENOTSOCK,
// EFAULT.
// See https://man7.org/linux/man-pages/man2/getpeername.2.html
var vkSockGetpeername = &hostFunc{
	module: ModuleVkernel, name: "sock_getpeername",
	params: []string{"fd", "buf", "buf_len", "result.len"}, types: []api.ValueType{i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: sockName(unix.Getpeername, func(f *file) string { return f.peerPath }),
}

// sockName is sock_getsockname and sock_getpeername: the address get
// answers for the socket's host fd, as a vkaddr; a unix socket's path is
// the guest path unixPath keeps for it (the host's is not the guest's).
func sockName(get func(int) (unix.Sockaddr, error), unixPath func(*file) string) func(context.Context, *Process, api.Module, []uint64) Errno {
	return func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, errno := p.anySocket(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		sa, err := get(f.hostFD)
		if err != nil {
			return errnoOf(err)
		}
		a := hostSockAddr(sa)
		if a.family == afUnix {
			a.path = unixPath(f)
		}
		return putSockAddr(mod.Memory(), a, uint32(s[1]), uint32(s[2]), uint32(s[3]))
	}
}

// sendFlags are the MSG_* flags sock_sendto takes.
const sendFlags = msgDontwait | msgNosignal | msgMore | msgEOR

// vkSockSendto is vkernel.sock_sendto(fd, iovs, iovs_len, flags, addr,
// addr_len, result.n) -> errno: sendmsg(2) of the iovecs, to the vkaddr at
// addr (addr_len 0: none, the connected peer). flags (Linux values):
// MSG_DONTWAIT (0x40: this call does not wait), MSG_NOSIGNAL (0x4000: no
// SIGPIPE with EPIPE; without it a broken stream raises SIGPIPE as
// natively), MSG_MORE (0x8000), MSG_EOR (0x80); others ENOTSUP. The
// destination is checked as sock_connect_to's (EACCES and an audit record
// when the policy refuses). EBADF, ENOTSOCK, EDESTADDRREQ, EMSGSIZE,
// EAGAIN, EPIPE, ECONNREFUSED, EISCONN, EINTR, EFAULT.
// See https://man7.org/linux/man-pages/man2/sendmsg.2.html
var vkSockSendto = &hostFunc{
	module: ModuleVkernel, name: "sock_sendto",
	params:  []string{"fd", "iovs", "iovs_len", "flags", "addr", "addr_len", "result.n"},
	types:   []api.ValueType{i32, i32, i32, i32, i32, i32, i32},
	results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, flags, bufs, errno := p.dataCall(mod, s, sendFlags)
		if errno != ESUCCESS {
			return errno
		}
		if _, ok := view(mod.Memory(), uint32(s[6]), 4); !ok {
			return EFAULT
		}
		var to unix.Sockaddr
		var pathFD = -1
		if uint32(s[5]) != 0 {
			a, errno := readSockAddr(mod.Memory(), uint32(s[4]), uint32(s[5]))
			if errno != ESUCCESS {
				return errno
			}
			if a.family == afUnspec {
				return EAFNOSUPPORT
			}
			if a.family == afUnix {
				t, errno := p.unixTarget("sendto", a.path)
				if errno != ESUCCESS {
					return errno
				}
				fd, err := t.lookup(lookupSymlinkFollow)
				if err != nil {
					return errnoOf(err)
				}
				pathFD = fd
				to = &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d", fd)}
			} else {
				if !p.allowConnect(a.ap) {
					p.audit("sendto", a.ap.String(), "deny", "address not allowed for this entry")
					return EACCES
				}
				if a.ap.Addr().Unmap().IsLoopback() && f.filetype == filetypeSocketDgram {
					if err := bindLoopback(f.hostFD, a.ap.Addr().Is4In6()); err != nil {
						return errnoOf(err)
					}
				}
				to = a.inetSockaddr()
			}
		}
		if pathFD >= 0 {
			defer unix.Close(pathFD)
		}
		hostFlags := flags&(msgMore|msgEOR) | unix.MSG_NOSIGNAL
		n, errno := p.waitLoop(ctx, f, flags&msgDontwait != 0, unix.POLLOUT, func() (int, error) {
			return unix.SendmsgBuffers(f.hostFD, bufs, nil, to, hostFlags)
		})
		if errno == EPIPE && flags&msgNosignal == 0 {
			p.Signal(unix.SIGPIPE)
		}
		if errno != ESUCCESS {
			return errno
		}
		return putU32(mod.Memory(), uint32(s[6]), uint32(n))
	},
}

// recvFlags are the MSG_* flags sock_recvfrom takes.
const recvFlags = msgPeek | msgTrunc | msgDontwait | msgWaitall

// vkSockRecvfrom is vkernel.sock_recvfrom(fd, iovs, iovs_len, flags,
// addr_buf, addr_buf_len, result.n, result.addr_len, result.flags) ->
// errno: recvmsg(2) into the iovecs. flags (Linux values): MSG_PEEK (0x2),
// MSG_TRUNC (0x20: a datagram's real length is returned even when longer
// than the buffers), MSG_DONTWAIT (0x40), MSG_WAITALL (0x100, streams);
// others ENOTSUP. The sender's vkaddr is written to addr_buf (cut to
// addr_buf_len; 0 writes none of it) and its full length to
// result.addr_len: 0 when there is none (a stream socket), a unix sender's
// path is empty (the host name of its socket is not a guest path).
// result.flags gets MSG_TRUNC when a datagram was cut. 0 bytes on a stream
// is the peer's end. EBADF, ENOTSOCK, ENOTCONN, EAGAIN, ECONNREFUSED,
// EINTR, EFAULT.
// See https://man7.org/linux/man-pages/man2/recvmsg.2.html
var vkSockRecvfrom = &hostFunc{
	module: ModuleVkernel, name: "sock_recvfrom",
	params:  []string{"fd", "iovs", "iovs_len", "flags", "addr_buf", "addr_buf_len", "result.n", "result.addr_len", "result.flags"},
	types:   []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32, i32},
	results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, flags, bufs, errno := p.dataCall(mod, s, recvFlags)
		if errno != ESUCCESS {
			return errno
		}
		m := mod.Memory()
		for _, r := range []uint32{uint32(s[6]), uint32(s[7]), uint32(s[8])} {
			if _, ok := view(m, r, 4); !ok {
				return EFAULT
			}
		}
		want := 0
		for _, b := range bufs {
			want += len(b)
		}
		hostFlags := flags & (msgPeek | msgTrunc)
		total, outFlags := 0, 0
		var from unix.Sockaddr
		for {
			n, errno := p.waitLoop(ctx, f, flags&msgDontwait != 0, unix.POLLIN, func() (int, error) {
				n, _, rf, sa, err := unix.RecvmsgBuffers(f.hostFD, bufs, nil, hostFlags)
				if err == nil {
					outFlags, from = rf, sa
				}
				return n, err
			})
			if errno != ESUCCESS {
				if total > 0 {
					break
				}
				return errno
			}
			total += n
			if flags&msgWaitall == 0 || f.filetype != filetypeSocketStream || n == 0 || total >= want || flags&msgPeek != 0 {
				break
			}
			bufs = advance(bufs, n)
		}
		addrLen := uint32(0)
		if from != nil {
			a := hostSockAddr(from)
			if errno := putSockAddr(m, a, uint32(s[4]), uint32(s[5]), uint32(s[7])); errno != ESUCCESS {
				return errno
			}
			addrLen = uint32(len(encodeSockAddr(a)))
		}
		putU32(m, uint32(s[7]), addrLen)
		putU32(m, uint32(s[6]), uint32(total))
		return putU32(m, uint32(s[8]), uint32(outFlags&msgTrunc))
	},
}
