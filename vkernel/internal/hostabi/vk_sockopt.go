package hostabi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// Socket option levels (Linux values).
const (
	solSocket   = 1
	solIP       = 0
	solTCP      = 6
	solIPv6     = 41
	optLingerSz = 8
)

// optKind says how an allowed option's value is passed.
type optKind uint8

const (
	optInt      optKind = iota // an int, read and written
	optReadOnly                // an int, only read
	optErrno                   // SO_ERROR: read, translated to a preview1 errno, and cleared
	optLinger                  // struct linger {int l_onoff; int l_linger;}
	optTimeval                 // struct timeval {int64 tv_sec; int64 tv_usec;}: wasm32's
)

// optTimevalSz is the size of wasm32 wasi-libc's struct timeval.
const optTimevalSz = 16

type optKey struct{ level, name uint32 }

// sockOpts are the options guests may get and set, Linux's numbers: those
// real programs use. The ABI's numbers are Linux's generic ones, which the
// unix constants of the hosts the vkernel runs on (amd64, arm64) equal. Anything else (SO_BINDTODEVICE, IP_TRANSPARENT, ...)
// is ENOPROTOOPT, so a guest cannot reach host settings beyond its socket's
// own behaviour.
var sockOpts = map[optKey]optKind{
	{solSocket, unix.SO_REUSEADDR}:  optInt,
	{solSocket, unix.SO_TYPE}:       optReadOnly,
	{solSocket, unix.SO_ERROR}:      optErrno,
	{solSocket, unix.SO_BROADCAST}:  optInt,
	{solSocket, unix.SO_SNDBUF}:     optInt,
	{solSocket, unix.SO_RCVBUF}:     optInt,
	{solSocket, unix.SO_KEEPALIVE}:  optInt,
	{solSocket, unix.SO_OOBINLINE}:  optInt,
	{solSocket, unix.SO_LINGER}:     optLinger,
	{solSocket, unix.SO_REUSEPORT}:  optInt,
	{solSocket, unix.SO_RCVLOWAT}:   optInt,
	{solSocket, unix.SO_SNDLOWAT}:   optReadOnly,
	{solSocket, unix.SO_ACCEPTCONN}: optReadOnly,
	{solSocket, unix.SO_PROTOCOL}:   optReadOnly,
	{solSocket, unix.SO_DOMAIN}:     optReadOnly,
	{solSocket, unix.SO_RCVTIMEO}:   optTimeval,
	{solSocket, unix.SO_SNDTIMEO}:   optTimeval,

	{solTCP, unix.TCP_NODELAY}:      optInt,
	{solTCP, unix.TCP_CORK}:         optInt,
	{solTCP, unix.TCP_KEEPIDLE}:     optInt,
	{solTCP, unix.TCP_KEEPINTVL}:    optInt,
	{solTCP, unix.TCP_KEEPCNT}:      optInt,
	{solTCP, unix.TCP_DEFER_ACCEPT}: optInt,
	{solTCP, unix.TCP_QUICKACK}:     optInt,
	{solTCP, unix.TCP_USER_TIMEOUT}: optInt,
	{solTCP, unix.TCP_FASTOPEN}:     optInt,

	{solIP, unix.IP_TOS}: optInt,
	{solIP, unix.IP_TTL}: optInt,

	{solIPv6, unix.IPV6_V6ONLY}:       optInt,
	{solIPv6, unix.IPV6_UNICAST_HOPS}: optInt,
	{solIPv6, unix.IPV6_TCLASS}:       optInt,
}

// vkSockGetsockopt is vkernel.sock_getsockopt(fd, level, name, buf,
// buf_len, result.len) -> errno: getsockopt(2) with Linux's levels, names
// and value layouts (an int: 4 bytes little-endian; SO_LINGER: two ints;
// SO_RCVTIMEO and SO_SNDTIMEO: wasm32's struct timeval, two int64s, which
// bound the host's waits of blocking calls: EAGAIN after them, EINPROGRESS
// for a connect).
// The value is cut to buf_len; its full length goes to result.len.
// SO_ERROR answers a preview1 errno (and clears the error, as natively);
// SO_TYPE, SO_DOMAIN and SO_PROTOCOL Linux's numbers. Allowed: SO_REUSEADDR,
// SO_REUSEPORT, SO_TYPE, SO_ERROR, SO_BROADCAST, SO_SNDBUF, SO_RCVBUF,
// SO_KEEPALIVE, SO_OOBINLINE, SO_LINGER, SO_RCVLOWAT, SO_SNDLOWAT,
// SO_ACCEPTCONN, SO_PROTOCOL, SO_DOMAIN, SO_RCVTIMEO, SO_SNDTIMEO; TCP_NODELAY, TCP_CORK,
// TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_DEFER_ACCEPT, TCP_QUICKACK,
// TCP_USER_TIMEOUT, TCP_FASTOPEN; IP_TOS, IP_TTL; IPV6_V6ONLY,
// IPV6_UNICAST_HOPS, IPV6_TCLASS. Others ENOPROTOOPT; an option of another
// protocol than the socket's as the host answers (ENOPROTOOPT,
// EOPNOTSUPP). EBADF, ENOTSOCK, EFAULT.
// See https://man7.org/linux/man-pages/man2/getsockopt.2.html
var vkSockGetsockopt = &hostFunc{
	module: ModuleVkernel, name: "sock_getsockopt",
	params: []string{"fd", "level", "name", "buf", "buf_len", "result.len"}, types: []api.ValueType{i32, i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, errno := p.anySocket(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		kind, ok := sockOpts[optKey{uint32(s[1]), uint32(s[2])}]
		if !ok {
			return ENOPROTOOPT
		}
		level, name := int(uint32(s[1])), int(uint32(s[2]))
		var val [optTimevalSz]byte
		size := 4
		switch kind {
		case optTimeval:
			tv, err := unix.GetsockoptTimeval(f.hostFD, level, name)
			if err != nil {
				return errnoOf(err)
			}
			put64(val[:], uint64(tv.Sec))
			put64(val[8:], uint64(tv.Usec))
			size = optTimevalSz
		case optLinger:
			l, err := unix.GetsockoptLinger(f.hostFD, level, name)
			if err != nil {
				return errnoOf(err)
			}
			put32(val[:], uint32(l.Onoff))
			put32(val[4:], uint32(l.Linger))
			size = optLingerSz
		case optErrno:
			v, err := unix.GetsockoptInt(f.hostFD, level, name)
			if err != nil {
				return errnoOf(err)
			}
			if v != 0 {
				v = int(errnoOf(unix.Errno(v)))
			}
			put32(val[:], uint32(v))
		default:
			v, err := unix.GetsockoptInt(f.hostFD, level, name)
			if err != nil {
				return errnoOf(err)
			}
			put32(val[:], uint32(int32(v)))
		}
		n := uint32(size)
		if uint32(s[4]) < n {
			n = uint32(s[4])
		}
		b, ok := view(mod.Memory(), uint32(s[3]), n)
		if !ok {
			return EFAULT
		}
		copy(b, val[:n])
		return putU32(mod.Memory(), uint32(s[5]), uint32(size))
	},
}

// vkSockSetsockopt is vkernel.sock_setsockopt(fd, level, name, buf,
// buf_len) -> errno: setsockopt(2) of the options sock_getsockopt lists,
// with the same layouts. Read-only ones (SO_TYPE, SO_ERROR, ...) and
// unknown ones are ENOPROTOOPT; a value shorter than its layout EINVAL; a
// negative or denormal timeval EDOM, as Linux.
// EBADF, ENOTSOCK, EFAULT.
// See https://man7.org/linux/man-pages/man2/setsockopt.2.html
var vkSockSetsockopt = &hostFunc{
	module: ModuleVkernel, name: "sock_setsockopt",
	params: []string{"fd", "level", "name", "buf", "buf_len"}, types: []api.ValueType{i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, errno := p.anySocket(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		kind, ok := sockOpts[optKey{uint32(s[1]), uint32(s[2])}]
		if !ok || kind == optReadOnly || kind == optErrno {
			return ENOPROTOOPT
		}
		level, name := int(uint32(s[1])), int(uint32(s[2]))
		size := uint32(4)
		switch kind {
		case optLinger:
			size = optLingerSz
		case optTimeval:
			size = optTimevalSz
		}
		if uint32(s[4]) < size {
			return EINVAL
		}
		b, ok := view(mod.Memory(), uint32(s[3]), size)
		if !ok {
			return EFAULT
		}
		if kind == optTimeval {
			tv := unix.Timeval{Sec: int64(le64(b)), Usec: int64(le64(b[8:]))}
			if tv.Sec < 0 || tv.Usec < 0 || tv.Usec >= 1_000_000 {
				return EDOM
			}
			return errnoOf(unix.SetsockoptTimeval(f.hostFD, level, name, &tv))
		}
		if kind == optLinger {
			return errnoOf(unix.SetsockoptLinger(f.hostFD, level, name,
				&unix.Linger{Onoff: int32(le32(b)), Linger: int32(le32(b[4:]))}))
		}
		return errnoOf(unix.SetsockoptInt(f.hostFD, level, name, int(int32(le32(b)))))
	},
}
