package hostabi

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Errno is a WASI preview1 error number, the i32 every host function returns.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#errno
type Errno uint32

// The preview1 errno values the host surface returns.
const (
	ESUCCESS        Errno = 0
	E2BIG           Errno = 1
	EACCES          Errno = 2
	EADDRINUSE      Errno = 3
	EADDRNOTAVAIL   Errno = 4
	EAFNOSUPPORT    Errno = 5
	EAGAIN          Errno = 6
	EALREADY        Errno = 7
	EBADF           Errno = 8
	EBUSY           Errno = 10
	ECHILD          Errno = 12
	ECONNABORTED    Errno = 13
	ECONNREFUSED    Errno = 14
	ECONNRESET      Errno = 15
	EDESTADDRREQ    Errno = 17
	EDOM            Errno = 18
	EEXIST          Errno = 20
	EFAULT          Errno = 21
	EFBIG           Errno = 22
	EHOSTUNREACH    Errno = 23
	EINPROGRESS     Errno = 26
	EINTR           Errno = 27
	EINVAL          Errno = 28
	EIO             Errno = 29
	EISCONN         Errno = 30
	EISDIR          Errno = 31
	ELOOP           Errno = 32
	EMFILE          Errno = 33
	EMLINK          Errno = 34
	EMSGSIZE        Errno = 35
	ENAMETOOLONG    Errno = 37
	ENETDOWN        Errno = 38
	ENETRESET       Errno = 39
	ENETUNREACH     Errno = 40
	ENFILE          Errno = 41
	ENOBUFS         Errno = 42
	ENODEV          Errno = 43
	ENOENT          Errno = 44
	ENOEXEC         Errno = 45
	ENOMEM          Errno = 48
	ENOPROTOOPT     Errno = 50
	ENOSPC          Errno = 51
	ENOSYS          Errno = 52
	ENOTCONN        Errno = 53
	ENOTDIR         Errno = 54
	ENOTEMPTY       Errno = 55
	ENOTSOCK        Errno = 57
	ENOTSUP         Errno = 58
	ENOTTY          Errno = 59
	ENXIO           Errno = 60
	EOVERFLOW       Errno = 61
	EPERM           Errno = 63
	EPIPE           Errno = 64
	EPROTO          Errno = 65
	EPROTONOSUPPORT Errno = 66
	EPROTOTYPE      Errno = 67
	ERANGE          Errno = 68
	EROFS           Errno = 69
	ESPIPE          Errno = 70
	ESRCH           Errno = 71
	ETIMEDOUT       Errno = 73
	ETXTBSY         Errno = 74
	EXDEV           Errno = 75
	ENOTCAPABLE     Errno = 76
)

var fromUnix = map[unix.Errno]Errno{
	unix.E2BIG: E2BIG, unix.EACCES: EACCES, unix.EADDRINUSE: EADDRINUSE, unix.EADDRNOTAVAIL: EADDRNOTAVAIL,
	unix.EAFNOSUPPORT: EAFNOSUPPORT, unix.EAGAIN: EAGAIN, unix.EALREADY: EALREADY, unix.EBADF: EBADF,
	unix.EBUSY: EBUSY, unix.ECHILD: ECHILD, unix.ESRCH: ESRCH, unix.ECONNABORTED: ECONNABORTED, unix.ECONNREFUSED: ECONNREFUSED,
	unix.ECONNRESET: ECONNRESET, unix.EEXIST: EEXIST, unix.EFAULT: EFAULT, unix.EFBIG: EFBIG,
	unix.EHOSTUNREACH: EHOSTUNREACH, unix.EINPROGRESS: EINPROGRESS, unix.EINTR: EINTR, unix.EINVAL: EINVAL,
	unix.EIO: EIO, unix.EISCONN: EISCONN, unix.EISDIR: EISDIR, unix.ELOOP: ELOOP, unix.EMFILE: EMFILE,
	unix.EMLINK: EMLINK, unix.ENAMETOOLONG: ENAMETOOLONG, unix.ENETDOWN: ENETDOWN,
	unix.ENETUNREACH: ENETUNREACH, unix.ENFILE: ENFILE, unix.ENOBUFS: ENOBUFS, unix.ENODEV: ENODEV,
	unix.ENOENT: ENOENT, unix.ENOEXEC: ENOEXEC, unix.ENOMEM: ENOMEM, unix.ENOSPC: ENOSPC,
	unix.ENOSYS: ENOSYS, unix.ENOTCONN: ENOTCONN, unix.ENOTDIR: ENOTDIR, unix.ENOTEMPTY: ENOTEMPTY,
	unix.ENOTSOCK: ENOTSOCK, unix.EOPNOTSUPP: ENOTSUP, unix.ENOTTY: ENOTTY, unix.ENXIO: ENXIO,
	unix.EOVERFLOW: EOVERFLOW, unix.EPERM: EPERM, unix.EPIPE: EPIPE, unix.ERANGE: ERANGE,
	unix.EROFS: EROFS, unix.ESPIPE: ESPIPE, unix.ETIMEDOUT: ETIMEDOUT, unix.ETXTBSY: ETXTBSY,
	unix.EXDEV: EXDEV, unix.EDESTADDRREQ: EDESTADDRREQ, unix.EDOM: EDOM, unix.EMSGSIZE: EMSGSIZE, unix.ENETRESET: ENETRESET,
	unix.ENOPROTOOPT: ENOPROTOOPT, unix.EPROTO: EPROTO, unix.EPROTONOSUPPORT: EPROTONOSUPPORT, unix.EPROTOTYPE: EPROTOTYPE,
}

// errnoOf maps a host error to its preview1 errno. Errors without an errno
// (a failed io.Writer, say) become EIO.
func errnoOf(err error) Errno {
	if err == nil {
		return ESUCCESS
	}
	var e unix.Errno
	if errors.As(err, &e) {
		if w, ok := fromUnix[e]; ok {
			return w
		}
		return EIO
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ENOENT
	case errors.Is(err, fs.ErrExist):
		return EEXIST
	case errors.Is(err, fs.ErrPermission):
		return EPERM
	case errors.Is(err, os.ErrDeadlineExceeded):
		return EAGAIN
	}
	return EIO
}
