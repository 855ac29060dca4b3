package hostabi

import (
	"io"
	"net/netip"
	"sync/atomic"

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

// Preview1 rights: what each fd lets the guest do. A path_open'd fd gets
// the rights asked for, less those its directory may not hand on
// (fs_rights_inheriting) and those that do not apply to the file's type;
// fd_fdstat_set_rights can only drop rights. Calls check the rights they
// need and answer ENOTCAPABLE without them (see ABI.md for the calls whose
// rights are not checked).
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-rights-flagsu64
const (
	rightFDDatasync           = 1 << 0
	rightFDRead               = 1 << 1
	rightFDSeek               = 1 << 2
	rightFDFdstatSetFlags     = 1 << 3
	rightFDSync               = 1 << 4
	rightFDTell               = 1 << 5
	rightFDWrite              = 1 << 6
	rightFDAdvise             = 1 << 7
	rightFDAllocate           = 1 << 8
	rightPathCreateDirectory  = 1 << 9
	rightPathCreateFile       = 1 << 10
	rightPathLinkSource       = 1 << 11
	rightPathLinkTarget       = 1 << 12
	rightPathOpen             = 1 << 13
	rightFDReaddir            = 1 << 14
	rightPathReadlink         = 1 << 15
	rightPathRenameSource     = 1 << 16
	rightPathRenameTarget     = 1 << 17
	rightPathFilestatGet      = 1 << 18
	rightPathFilestatSetSize  = 1 << 19
	rightPathFilestatSetTimes = 1 << 20
	rightFDFilestatGet        = 1 << 21
	rightFDFilestatSetSize    = 1 << 22
	rightFDFilestatSetTimes   = 1 << 23
	rightPathSymlink          = 1 << 24
	rightPathRemoveDirectory  = 1 << 25
	rightPathUnlinkFile       = 1 << 26
	rightPollFDReadwrite      = 1 << 27
	rightSockShutdown         = 1 << 28

	// dirRights apply to directories.
	dirRights = rightFDFdstatSetFlags | rightFDSync | rightFDDatasync | rightFDAdvise |
		rightPathCreateDirectory | rightPathCreateFile | rightPathLinkSource | rightPathLinkTarget |
		rightPathOpen | rightFDReaddir | rightPathReadlink | rightPathRenameSource | rightPathRenameTarget |
		rightPathFilestatGet | rightPathFilestatSetSize | rightPathFilestatSetTimes |
		rightFDFilestatGet | rightFDFilestatSetTimes | rightPathSymlink | rightPathRemoveDirectory | rightPathUnlinkFile
	// fileRights apply to regular files and devices.
	fileRights = rightFDDatasync | rightFDRead | rightFDSeek | rightFDFdstatSetFlags | rightFDSync |
		rightFDTell | rightFDWrite | rightFDAdvise | rightFDAllocate |
		rightFDFilestatGet | rightFDFilestatSetSize | rightFDFilestatSetTimes | rightPollFDReadwrite
	// streamRights apply to sockets.
	streamRights = rightFDRead | rightFDWrite | rightFDFdstatSetFlags | rightFDFilestatGet | rightPollFDReadwrite | rightSockShutdown
	// stdioRights are the stdio fds'. They include FD_SEEK and FD_TELL
	// (fd_seek still answers ESPIPE) because wasi-libc's isatty takes a
	// character device without them for a terminal, and the vkernel's
	// stdio are never terminals: without them Python would go interactive
	// and line-buffer its output.
	stdioRights = streamRights | rightFDSeek | rightFDTell
)

// rightsFor returns the rights that apply to a file type.
func rightsFor(filetype uint8) uint64 {
	switch filetype {
	case filetypeDirectory:
		return dirRights
	case filetypeSocketStream, filetypeSocketDgram:
		return streamRights
	}
	return fileRights
}

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

	// rights and inheriting are the fd's preview1 rights (fs_rights_base
	// and fs_rights_inheriting).
	rights, inheriting uint64

	mount   *mount
	rel     string // directory's path relative to the mount root, "." for the root
	preopen string // guest path answered by fd_prestat_get, for preopens only

	dirents []dirent // fd_readdir's listing, taken at cookie 0

	listener bool
	peer     netip.AddrPort // accepted and connected sockets
	// local and peerPath are a unix socket's guest paths: the one it was
	// bound to (or its listener's), the one it connected to.
	local, peerPath string

	// pipe marks a host pipe: fd_pipe's ends, and stdio shared with a
	// child. It is polled and read like a socket, written with write.
	pipe bool

	// waits counts the host calls of a process with threads that use the
	// host fd while they wait without the process's lock (unlock.go);
	// guarded by that lock. closed is set, atomically since those waits
	// read it unlocked, when the guest closed the fd meanwhile: the host
	// fd stays open until the last of them is done (release), so that its
	// number is never reused under a wait.
	waits  int32
	closed int32
}

// pollable reports whether poll_oneoff waits for the fd in epoll; other
// fds (files, stdio backed by Go readers and writers) are always ready.
func (f *file) pollable() bool {
	return f.hostFD >= 0 && (f.isSocket() || f.pipe)
}

// isSocket reports whether f is a host socket, stream or dgram.
func (f *file) isSocket() bool {
	return f.hostFD >= 0 && (f.filetype == filetypeSocketStream || f.filetype == filetypeSocketDgram)
}

func (f *file) nonblocking() bool { return f.flags&fdflagNonblock != 0 }

// can reports whether the fd has every right in need.
func (f *file) can(need uint64) bool { return f.rights&need == need }

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

// put places f at fd, which must be below maxFDs, growing the table as
// needed; whatever was there is dropped (the caller closes it).
func (t *fdTable) put(fd uint32, f *file) {
	for uint32(len(t.files)) <= fd {
		t.files = append(t.files, nil)
	}
	t.files[fd] = f
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

// closeHost closes the file's host fd, if it has one. While threads wait
// on it without the process's lock, it only marks the file closed: the
// last of them closes the host fd (release), and each answers EBADF.
func (f *file) closeHost() error {
	if f.hostFD < 0 {
		return nil
	}
	if f.waits > 0 {
		atomic.StoreInt32(&f.closed, 1)
		return nil
	}
	fd := f.hostFD
	f.hostFD = -1
	return unix.Close(fd)
}
