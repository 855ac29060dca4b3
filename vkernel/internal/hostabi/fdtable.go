package hostabi

import (
	"io"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Preview1 file types.
const (
	filetypeUnknown      = 0
	filetypeBlockDevice  = 1
	filetypeCharDevice   = 2
	filetypeDirectory    = 3
	filetypeRegularFile  = 4
	filetypeSocketDgram  = 5
	filetypeSocketStream = 6
	filetypeSymlink      = 7
)

// Preview1 fd flags.
const (
	fdflagAppend   = 1
	fdflagDsync    = 2
	fdflagNonblock = 4
	fdflagRsync    = 8
	fdflagSync     = 16
)

// allRights is reported for every fd: the vkernel enforces access with its
// mounts and policy, not with preview1's deprecated rights bits.
const allRights = 0x1fffffff

// mount is a host directory the guest sees at a guest path.
type mount struct {
	guest    string
	host     string
	rootFD   int // O_PATH directory fd all lookups resolve beneath
	readOnly bool
}

// file is one entry of a process's fd table.
type file struct {
	filetype uint8
	hostFD   int       // -1 when the fd is backed by a Go reader or writer
	reader   io.Reader // stdin when it is not a host fd
	writer   io.Writer // stdout, stderr
	flags    uint16    // preview1 fdflags as the guest last set them

	mount   *mount
	rel     string // directory's path relative to the mount root, "." for the root
	preopen string // guest path answered by fd_prestat_get, for preopens only

	dirents []dirent // fd_readdir's listing, taken at cookie 0

	listener bool
	peer     netip.AddrPort // accepted and connected sockets
}

func (f *file) nonblocking() bool { return f.flags&fdflagNonblock != 0 }

// fdTable maps guest fds to files. Freed numbers are reused lowest first,
// as POSIX requires of open.
type fdTable struct {
	files []*file
}

func (t *fdTable) get(fd uint32) *file {
	if int64(fd) >= int64(len(t.files)) {
		return nil
	}
	return t.files[fd]
}

func (t *fdTable) insert(f *file) (uint32, Errno) {
	for i, g := range t.files {
		if g == nil {
			t.files[i] = f
			return uint32(i), ESUCCESS
		}
	}
	if len(t.files) >= maxFDs {
		return 0, EMFILE
	}
	t.files = append(t.files, f)
	return uint32(len(t.files) - 1), ESUCCESS
}

func (t *fdTable) remove(fd uint32) *file {
	f := t.get(fd)
	if f != nil {
		t.files[fd] = nil
	}
	return f
}

// maxFDs bounds a process's fd table, like RLIMIT_NOFILE.
const maxFDs = 4096

// closeHost closes the file's host fd, if it has one.
func (f *file) closeHost() error {
	if f.hostFD < 0 {
		return nil
	}
	fd := f.hostFD
	f.hostFD = -1
	return unix.Close(fd)
}
