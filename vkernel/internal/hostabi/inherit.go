package hostabi

import (
	"fmt"
	"io"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// InheritedFile is one fd a child process gets from its parent: the same
// host open file description (a child host process receives HostFD as
// one of its own host fds) and the guest-visible state of the parent's fd.
// It is what a child's Config.Files lists, and travels as JSON between the
// two host processes.
type InheritedFile struct {
	// FD is the fd number the child's guest sees.
	FD uint32 `json:"fd"`
	// HostFD is the host fd: the parent's when handed to the vkernel's
	// Spawn or Fork hook, the child host process's own in Config.Files.
	HostFD int `json:"host_fd"`
	// Filetype, Flags, Rights and Inheriting are the preview1 fdstat.
	Filetype   uint8  `json:"filetype"`
	Flags      uint16 `json:"flags,omitempty"`
	Rights     uint64 `json:"rights"`
	Inheriting uint64 `json:"inheriting,omitempty"`
	// Pipe marks a pipe (fd_pipe, or stdio made into one); Listener a
	// listening socket; Peer an accepted or connected socket's peer.
	Pipe     bool   `json:"pipe,omitempty"`
	Listener bool   `json:"listener,omitempty"`
	Peer     string `json:"peer,omitempty"`
	// Local and PeerPath are a unix socket's guest paths (sock_bind,
	// sock_connect_to).
	Local    string `json:"local,omitempty"`
	PeerPath string `json:"peer_path,omitempty"`
	// Mount is the index in Config.Mounts of the mount a directory lies
	// in (-1: none), Rel the directory's path under the mount root, and
	// Preopen its guest path when it is a preopen (fork copies them).
	Mount   int    `json:"mount"`
	Rel     string `json:"rel,omitempty"`
	Preopen string `json:"preopen,omitempty"`
}

// inheritable describes the guest's fd for a child: the same open file
// description and fd state. Stdio backed by a Go reader or writer is first
// made a host pipe that the process and its children share (shareStdio).
func (p *Process) inheritable(fd uint32) (InheritedFile, Errno) {
	f := p.fds.get(fd)
	if f == nil {
		return InheritedFile{}, EBADF
	}
	if f.hostFD < 0 && (f.reader != nil || f.writer != nil) {
		if err := p.shareStdio(f); err != nil {
			return InheritedFile{}, EIO
		}
	}
	in := InheritedFile{FD: fd, HostFD: f.hostFD, Filetype: f.filetype, Flags: f.flags, Rights: f.rights,
		Inheriting: f.inheriting, Pipe: f.pipe, Listener: f.listener, Mount: -1, Rel: f.rel, Preopen: f.preopen,
		Local: f.local, PeerPath: f.peerPath}
	if f.peer.IsValid() {
		in.Peer = f.peer.String()
	}
	if f.mount != nil {
		for i, m := range p.mounts {
			if m == f.mount {
				in.Mount = i
			}
		}
		if f.hostFD < 0 {
			// A mount's root: the child opens it from its own mount.
			in.HostFD = -1
		}
	}
	return in, ESUCCESS
}

// adopt makes an inherited file the guest's fd in.FD. The file's HostFD is
// now the process's to close.
func (p *Process) adopt(in InheritedFile) error {
	f := &file{filetype: in.Filetype, hostFD: in.HostFD, flags: in.Flags, rights: in.Rights, inheriting: in.Inheriting,
		pipe: in.Pipe, listener: in.Listener, rel: in.Rel, preopen: in.Preopen, local: in.Local, peerPath: in.PeerPath}
	if in.Peer != "" {
		f.peer, _ = netip.ParseAddrPort(in.Peer)
	}
	if in.Mount >= 0 {
		if in.Mount >= len(p.mounts) {
			return fmt.Errorf("fd %d: mount %d of %d", in.FD, in.Mount, len(p.mounts))
		}
		f.mount = p.mounts[in.Mount]
	}
	if f.hostFD < 0 && f.mount == nil {
		return fmt.Errorf("fd %d: no host fd", in.FD)
	}
	if in.FD >= maxFDs {
		return fmt.Errorf("fd %d: above the fd limit", in.FD)
	}
	for uint32(len(p.fds.files)) <= in.FD {
		p.fds.files = append(p.fds.files, nil)
	}
	if p.fds.files[in.FD] != nil {
		return fmt.Errorf("fd %d given twice", in.FD)
	}
	p.fds.files[in.FD] = f
	return nil
}

// shareStdio turns a stdio fd backed by a Go reader or writer into a host
// pipe, so that a child can share it: the guest's fd becomes the pipe's
// end, and a goroutine copies between the pipe and the reader or writer.
// An *os.File is shared as it is (a duplicate of its fd). Close waits for
// the copier of an output until every holder of the pipe has closed it
// (or a while, then stops it); an input's copier ends when its reader
// does.
func (p *Process) shareStdio(f *file) error {
	if of, ok := stdioFile(f); ok {
		fd, err := unix.FcntlInt(of.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f.hostFD, f.reader, f.writer = fd, nil, nil
		return nil
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return err
	}
	// Non-blocking ends are in Go's poller: Close stops a copier blocked
	// on its end.
	if src := f.reader; src != nil {
		w := os.NewFile(uintptr(fds[1]), "stdin-pipe")
		f.hostFD, f.reader, f.pipe = fds[0], nil, true
		p.stdioEnds = append(p.stdioEnds, w)
		go func() {
			// After a read another thread may still be making
			// (readUnlocked).
			p.readerMu.Lock()
			defer p.readerMu.Unlock()
			_, _ = io.Copy(w, src)
		}()
		return nil
	}
	dst := f.writer
	r := os.NewFile(uintptr(fds[0]), "stdout-pipe")
	f.hostFD, f.writer, f.pipe = fds[1], nil, true
	p.stdioEnds = append(p.stdioEnds, r)
	p.copiers.Add(1)
	go func() {
		defer p.copiers.Done()
		_, _ = io.Copy(dst, r)
	}()
	return nil
}

// stdioFile returns the *os.File behind a stdio fd, if it is one.
func stdioFile(f *file) (*os.File, bool) {
	if f.reader != nil {
		of, ok := f.reader.(*os.File)
		return of, ok
	}
	of, ok := f.writer.(*os.File)
	return of, ok
}

// StdioFile describes a host fd handed to a child process as its guest's
// stdio fd fd (0, 1 or 2): a character device with stdio's rights, as the
// stdio of an exec run in-process. The child owns hostFD once adopted.
func StdioFile(fd uint32, hostFD int) InheritedFile {
	return InheritedFile{FD: fd, HostFD: hostFD, Filetype: filetypeCharDevice, Rights: stdioRights, Mount: -1}
}

// PreopenFile describes the preopened directory of mount number mount
// (an index in Config.Mounts), at guest path guest, as the guest's fd
// fd: what a top-level exec gives each mount, for a child process whose
// fd table is built from Config.Files.
func PreopenFile(fd uint32, mount int, guest string) InheritedFile {
	return InheritedFile{FD: fd, HostFD: -1, Filetype: filetypeDirectory, Rights: dirRights,
		Inheriting: dirRights | fileRights, Mount: mount, Rel: ".", Preopen: guest}
}
