package hostabi

import (
	"context"
	"errors"
	"io"
	"strconv"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// fdAdvise is preview1 fd_advise(fd, offset, len, advice) -> errno. Advice is
// accepted and ignored. EBADF for an unknown fd, EINVAL for an unknown advice,
// ENOTCAPABLE without FD_ADVISE.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_advisefd-fd-offset-filesize-len-filesize-advice-advice---errno
var fdAdvise = &hostFunc{
	module: ModulePreview1, name: "fd_advise",
	params: []string{"fd", "offset", "len", "advice"}, types: []api.ValueType{i32, i64, i64, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		if uint32(s[3]) > 5 {
			return EINVAL
		}
		if !f.can(rightFDAdvise) {
			return ENOTCAPABLE
		}
		return ESUCCESS
	},
}

// fdAllocate is preview1 fd_allocate(fd, offset, len) -> errno: reserves
// file space with fallocate. EBADF, EROFS on a read-only mount, ENOSPC,
// ENOTCAPABLE without FD_ALLOCATE.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_allocatefd-fd-offset-filesize-len-filesize---errno
var fdAllocate = &hostFunc{
	module: ModulePreview1, name: "fd_allocate",
	params: []string{"fd", "offset", "len"}, types: []api.ValueType{i32, i64, i64}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f, errno := p.hostFile(uint32(s[0]), rightFDAllocate)
		if errno != ESUCCESS {
			return errno
		}
		if int64(s[1]) < 0 || int64(s[2]) <= 0 {
			return EINVAL
		}
		return errnoOf(unix.Fallocate(f.hostFD, 0, int64(s[1]), int64(s[2])))
	},
}

// fdClose is preview1 fd_close(fd) -> errno. Closing a socket closes the
// host socket, so the peer sees EOF at once (wazero's preview1 only shuts it
// down). EBADF for an unknown fd.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_closefd-fd---errno
var fdClose = &hostFunc{
	module: ModulePreview1, name: "fd_close",
	params: []string{"fd"}, types: []api.ValueType{i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f := p.fds.remove(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		p.forgetEpoll(f.hostFD)
		return errnoOf(f.closeHost())
	},
}

// fdDatasync is preview1 fd_datasync(fd) -> errno. FD_DATASYNC is not
// checked: Linux syncs a read-only file's data, and wasi-libc asks for the
// right only when it opens to write.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_datasyncfd-fd---errno
var fdDatasync = &hostFunc{
	module: ModulePreview1, name: "fd_datasync",
	params: []string{"fd"}, types: []api.ValueType{i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f, errno := p.hostFile(uint32(s[0]), 0)
		if errno != ESUCCESS {
			return errno
		}
		return errnoOf(unix.Fdatasync(f.hostFD))
	},
}

// fdSync is preview1 fd_sync(fd) -> errno. ENOTCAPABLE without FD_SYNC.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_syncfd-fd---errno
var fdSync = &hostFunc{
	module: ModulePreview1, name: "fd_sync",
	params: []string{"fd"}, types: []api.ValueType{i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f, errno := p.hostFile(uint32(s[0]), rightFDSync)
		if errno != ESUCCESS {
			return errno
		}
		return errnoOf(unix.Fsync(f.hostFD))
	},
}

// fdFdstatGet is preview1 fd_fdstat_get(fd, result.stat) -> errno: the file
// type, the flags the guest set, and the fd's rights. EBADF, EFAULT.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_fdstat_getfd-fd---errno-fdstat
var fdFdstatGet = &hostFunc{
	module: ModulePreview1, name: "fd_fdstat_get", untimed: true,
	params: []string{"fd", "result.stat"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		b, ok := view(mod.Memory(), uint32(s[1]), 24)
		if !ok {
			return EFAULT
		}
		clear(b)
		b[0] = f.filetype
		put16(b[2:], f.flags)
		put64(b[8:], f.rights)
		put64(b[16:], f.inheriting)
		return ESUCCESS
	},
}

// fdFdstatSetFlags is preview1 fd_fdstat_set_flags(fd, flags) -> errno.
// NONBLOCK makes reads, writes and accepts on the fd answer EAGAIN instead
// of waiting; APPEND sets O_APPEND on the host file. EBADF, EINVAL for
// unknown flags, ENOTCAPABLE without FD_FDSTAT_SET_FLAGS.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_fdstat_set_flagsfd-fd-flags-fdflags---errno
var fdFdstatSetFlags = &hostFunc{
	module: ModulePreview1, name: "fd_fdstat_set_flags",
	params: []string{"fd", "flags"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		flags := uint32(s[1])
		if flags&^0x1f != 0 {
			return EINVAL
		}
		if !f.can(rightFDFdstatSetFlags) {
			return ENOTCAPABLE
		}
		if f.hostFD >= 0 && f.filetype == filetypeRegularFile && (flags^uint32(f.flags))&fdflagAppend != 0 {
			fl, err := unix.FcntlInt(uintptr(f.hostFD), unix.F_GETFL, 0)
			if err != nil {
				return errnoOf(err)
			}
			if flags&fdflagAppend != 0 {
				fl |= unix.O_APPEND
			} else {
				fl &^= unix.O_APPEND
			}
			if _, err := unix.FcntlInt(uintptr(f.hostFD), unix.F_SETFL, fl); err != nil {
				return errnoOf(err)
			}
		}
		f.flags = uint16(flags)
		return ESUCCESS
	},
}

// fdFdstatSetRights is preview1 fd_fdstat_set_rights(fd, base, inheriting)
// -> errno: drops rights. ENOTCAPABLE when either set holds a right the fd
// does not have (rights are never gained), EBADF.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_fdstat_set_rightsfd-fd-fs_rights_base-rights-fs_rights_inheriting-rights---errno
var fdFdstatSetRights = &hostFunc{
	module: ModulePreview1, name: "fd_fdstat_set_rights",
	params: []string{"fd", "fs_rights_base", "fs_rights_inheriting"}, types: []api.ValueType{i32, i64, i64}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		if s[1]&^f.rights != 0 || s[2]&^f.inheriting != 0 {
			return ENOTCAPABLE
		}
		f.rights, f.inheriting = s[1], s[2]
		return ESUCCESS
	},
}

// fdFilestatGet is preview1 fd_filestat_get(fd, result.buf) -> errno: the
// host file's attributes. EBADF, EFAULT, ENOTCAPABLE without
// FD_FILESTAT_GET.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_filestat_getfd-fd---errno-filestat
var fdFilestatGet = &hostFunc{
	module: ModulePreview1, name: "fd_filestat_get",
	params: []string{"fd", "result.buf"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		b, ok := view(mod.Memory(), uint32(s[1]), 64)
		if !ok {
			return EFAULT
		}
		st, errno := p.statOf(uint32(s[0]), f)
		if errno != ESUCCESS {
			return errno
		}
		if st == nil {
			clear(b)
			b[16] = f.filetype
			return ESUCCESS
		}
		putFilestat(b, st)
		return ESUCCESS
	},
}

// statOf is the host's stat of the guest's fd, for the calls that report
// it: the one path_open kept, else an fstat. nil, ESUCCESS for an fd the
// host holds no file for (stdio given as Go streams). ENOTCAPABLE without
// FD_FILESTAT_GET.
func (p *Process) statOf(fdnum uint32, f *file) (*unix.Stat_t, Errno) {
	if !f.can(rightFDFilestatGet) {
		return nil, ENOTCAPABLE
	}
	fd := f.statFD()
	if fd < 0 {
		return nil, ESUCCESS
	}
	if st := p.openedStat(fdnum, f); st != nil {
		return st, ESUCCESS
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, errnoOf(err)
	}
	return &st, ESUCCESS
}

// fdFilestatSetSize is preview1 fd_filestat_set_size(fd, size) -> errno:
// ftruncate. EBADF, EINVAL, EROFS on a read-only mount, ENOTCAPABLE without
// FD_FILESTAT_SET_SIZE (a file opened without the write right).
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_filestat_set_sizefd-fd-size-filesize---errno
var fdFilestatSetSize = &hostFunc{
	module: ModulePreview1, name: "fd_filestat_set_size",
	params: []string{"fd", "size"}, types: []api.ValueType{i32, i64}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f, errno := p.hostFile(uint32(s[0]), rightFDFilestatSetSize)
		if errno != ESUCCESS {
			return errno
		}
		if int64(s[1]) < 0 {
			return EINVAL
		}
		return errnoOf(unix.Ftruncate(f.hostFD, int64(s[1])))
	},
}

// fdFilestatSetTimes is preview1 fd_filestat_set_times(fd, atim, mtim,
// fst_flags) -> errno: futimens, honouring ATIM_NOW and MTIM_NOW. EBADF,
// EINVAL for contradictory flags, ENOTCAPABLE without FD_FILESTAT_SET_TIMES.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_filestat_set_timesfd-fd-atim-timestamp-mtim-timestamp-fst_flags-fstflags---errno
var fdFilestatSetTimes = &hostFunc{
	module: ModulePreview1, name: "fd_filestat_set_times",
	params: []string{"fd", "atim", "mtim", "fst_flags"}, types: []api.ValueType{i32, i64, i64, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		ts, errno := utimes(s[1], s[2], uint32(s[3]))
		if errno != ESUCCESS {
			return errno
		}
		if !f.can(rightFDFilestatSetTimes) {
			return ENOTCAPABLE
		}
		if f.mount != nil && f.mount.readOnly {
			return EROFS
		}
		fd := f.statFD()
		if fd < 0 {
			return EBADF
		}
		return errnoOf(unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), ts, 0))
	},
}

// fdPread is preview1 fd_pread(fd, iovs, iovs_len, offset, result.nread) ->
// errno: one preadv into the iovecs. EBADF, EFAULT, ESPIPE on a socket,
// ENOTCAPABLE without FD_READ.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_preadfd-fd-iovs-iovec_array-offset-filesize---errno-size
var fdPread = &hostFunc{
	module: ModulePreview1, name: "fd_pread",
	params: []string{"fd", "iovs", "iovs_len", "offset", "result.nread"}, types: []api.ValueType{i32, i32, i32, i64, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, errno := p.hostFile(uint32(s[0]), rightFDRead)
		if errno != ESUCCESS {
			return errno
		}
		return p.ioCall(mod, s[1], s[2], s[4], func(bufs [][]byte) (int, Errno) {
			if p.thr != nil && f.mayBlock() {
				n, err := p.unlockedIO(f, func(sc *ioScratch, fd int) (int, error) { return sc.filePreadv(fd, bufs, int64(s[3])) })
				return n, errnoOf(err)
			}
			n, err := p.io.filePreadv(f.hostFD, bufs, int64(s[3]))
			return n, errnoOf(err)
		})
	},
}

// fdPwrite is preview1 fd_pwrite(fd, iovs, iovs_len, offset,
// result.nwritten) -> errno: one pwritev. EBADF, EFAULT, ESPIPE,
// ENOTCAPABLE without FD_WRITE.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_pwritefd-fd-iovs-ciovec_array-offset-filesize---errno-size
var fdPwrite = &hostFunc{
	module: ModulePreview1, name: "fd_pwrite",
	params: []string{"fd", "iovs", "iovs_len", "offset", "result.nwritten"}, types: []api.ValueType{i32, i32, i32, i64, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f, errno := p.hostFile(uint32(s[0]), rightFDWrite)
		if errno != ESUCCESS {
			return errno
		}
		return p.ioCall(mod, s[1], s[2], s[4], func(bufs [][]byte) (int, Errno) {
			if p.thr != nil && f.mayBlock() {
				n, err := p.unlockedIO(f, func(sc *ioScratch, fd int) (int, error) { return sc.filePwritev(fd, bufs, int64(s[3])) })
				return n, errnoOf(err)
			}
			n, err := p.io.filePwritev(f.hostFD, bufs, int64(s[3]))
			return n, errnoOf(err)
		})
	},
}

// fdPrestatGet is preview1 fd_prestat_get(fd, result.prestat) -> errno. Only
// the mounts are preopens; every other fd, sockets included, answers EBADF,
// which is where wasi-libc stops scanning (wazero answers a preopened socket
// as a directory named "", which wasi-libc then prefers over "/").
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_prestat_getfd-fd---errno-prestat
var fdPrestatGet = &hostFunc{
	module: ModulePreview1, name: "fd_prestat_get", untimed: true,
	params: []string{"fd", "result.prestat"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil || f.preopen == "" {
			return EBADF
		}
		b, ok := view(mod.Memory(), uint32(s[1]), 8)
		if !ok {
			return EFAULT
		}
		clear(b)
		put32(b[4:], uint32(len(f.preopen)))
		return ESUCCESS
	},
}

// fdPrestatDirName is preview1 fd_prestat_dir_name(fd, path, path_len) ->
// errno: the preopen's guest path. EBADF when fd is not a preopen,
// ENAMETOOLONG when path_len is too small.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_prestat_dir_namefd-fd-path-pointeru8-path_len-size---errno
var fdPrestatDirName = &hostFunc{
	module: ModulePreview1, name: "fd_prestat_dir_name", untimed: true,
	params: []string{"fd", "path", "path_len"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil || f.preopen == "" {
			return EBADF
		}
		if uint32(s[2]) < uint32(len(f.preopen)) {
			return ENAMETOOLONG
		}
		b, ok := view(mod.Memory(), uint32(s[1]), uint32(len(f.preopen)))
		if !ok {
			return EFAULT
		}
		copy(b, f.preopen)
		return ESUCCESS
	},
}

// fdRead is preview1 fd_read(fd, iovs, iovs_len, result.nread) -> errno. On
// a host fd it is one readv, so the count always covers every byte moved
// (wazero's loses the first iovecs' bytes when a later one hits EAGAIN). A
// blocking fd waits for data; a NONBLOCK one answers EAGAIN. EBADF, EFAULT,
// EISDIR, ENOTCAPABLE without FD_READ.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_readfd-fd-iovs-iovec_array---errno-size
var fdRead = &hostFunc{
	module: ModulePreview1, name: "fd_read",
	params: []string{"fd", "iovs", "iovs_len", "result.nread"}, types: []api.ValueType{i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		if f.filetype != filetypeDirectory && !f.can(rightFDRead) {
			return ENOTCAPABLE
		}
		return p.ioCall(mod, s[1], s[2], s[3], func(bufs [][]byte) (int, Errno) { return p.read(ctx, f, bufs) })
	},
}

func (p *Process) read(ctx context.Context, f *file, bufs [][]byte) (int, Errno) {
	switch {
	case f.filetype == filetypeDirectory:
		return 0, EISDIR
	case f.listener:
		return 0, ENOTCONN
	case f.reader != nil:
		if p.thr != nil {
			return p.readUnlocked(f, bufs)
		}
		return readFrom(f.reader, bufs)
	case f.hostFD < 0:
		return 0, EBADF
	}
	if f.isSocket() || f.pipe {
		// sockReadv is read(2)/readv(2) without telling the scheduler:
		// these fds never block.
		return p.retry(ctx, f, unix.POLLIN, func() (int, error) { return p.sockReadv(f.hostFD, bufs) })
	}
	if p.thr != nil && f.mayBlock() {
		return p.retry(ctx, f, unix.POLLIN, func() (int, error) {
			return p.unlockedIO(f, func(s *ioScratch, fd int) (int, error) { return s.fileReadv(fd, bufs) })
		})
	}
	return p.retry(ctx, f, unix.POLLIN, func() (int, error) { return p.io.fileReadv(f.hostFD, bufs) })
}

// readFrom reads a Go reader (stdin) into bufs: until one is not filled.
func readFrom(r io.Reader, bufs [][]byte) (int, Errno) {
	n := 0
	for _, b := range bufs {
		m, err := r.Read(b)
		n += m
		if err != nil && !errors.Is(err, io.EOF) && n == 0 {
			return 0, EIO
		}
		if m < len(b) || err != nil {
			break
		}
	}
	return n, ESUCCESS
}

// fdWrite is preview1 fd_write(fd, iovs, iovs_len, result.nwritten) -> errno:
// one writev on a host fd, so a short write reports exactly what was
// written. EBADF, EFAULT, EPIPE, EAGAIN on a NONBLOCK socket, ENOTCAPABLE
// without FD_WRITE.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_writefd-fd-iovs-ciovec_array---errno-size
var fdWrite = &hostFunc{
	module: ModulePreview1, name: "fd_write",
	params: []string{"fd", "iovs", "iovs_len", "result.nwritten"}, types: []api.ValueType{i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		if f.filetype != filetypeDirectory && !f.can(rightFDWrite) {
			return ENOTCAPABLE
		}
		return p.ioCall(mod, s[1], s[2], s[3], func(bufs [][]byte) (int, Errno) { return p.write(ctx, f, bufs) })
	},
}

func (p *Process) write(ctx context.Context, f *file, bufs [][]byte) (int, Errno) {
	switch {
	case f.filetype == filetypeDirectory:
		return 0, EISDIR
	case f.listener:
		return 0, ENOTCONN
	case f.writer != nil:
		n := 0
		for _, b := range bufs {
			m, err := f.writer.Write(b)
			n += m
			if err != nil {
				if n > 0 {
					return n, ESUCCESS
				}
				return 0, errnoOf(err)
			}
		}
		return n, ESUCCESS
	case f.hostFD < 0:
		return 0, EBADF
	}
	if f.isSocket() {
		return p.retry(ctx, f, unix.POLLOUT, func() (int, error) {
			return p.sockSendmsg(f.hostFD, bufs, unix.MSG_NOSIGNAL)
		})
	}
	if f.pipe {
		n, errno := p.retry(ctx, f, unix.POLLOUT, func() (int, error) { return p.pipeWritev(f.hostFD, bufs) })
		if errno == EPIPE {
			// As a native write to a pipe without reader: SIGPIPE, which
			// terminates by default, and EPIPE for a guest that lives on.
			p.Signal(unix.SIGPIPE)
		}
		return n, errno
	}
	if p.thr != nil && f.mayBlock() {
		return p.retry(ctx, f, unix.POLLOUT, func() (int, error) {
			return p.unlockedIO(f, func(s *ioScratch, fd int) (int, error) { return s.fileWritev(fd, bufs) })
		})
	}
	return p.retry(ctx, f, unix.POLLOUT, func() (int, error) { return p.io.fileWritev(f.hostFD, bufs) })
}

// ioCall is the frame the iovec calls share: the guest's iovec array
// (iovs, iovsLen) and where the count goes (result); op moves the bytes,
// and its count is written back.
func (p *Process) ioCall(mod api.Module, iovs, iovsLen, result uint64, op func([][]byte) (int, Errno)) Errno {
	bufs, errno := p.iovecs(mod.Memory(), uint32(iovs), uint32(iovsLen))
	if errno != ESUCCESS {
		return errno
	}
	n, errno := op(bufs)
	if errno != ESUCCESS {
		return errno
	}
	return putU32(mod.Memory(), uint32(result), uint32(n))
}

// retry runs a non-blocking host operation, waiting for readiness while it
// answers EAGAIN on a fd the guest has not made non-blocking. A caught
// signal ends the wait with EINTR; a socket's SO_RCVTIMEO (reads, accept)
// or SO_SNDTIMEO (writes) ends it with EAGAIN, as natively.
func (p *Process) retry(ctx context.Context, f *file, events int16, op func() (int, error)) (int, Errno) {
	return p.waitLoop(ctx, f, false, events, op)
}

// waitLoop is retry, where dontwait makes this one call non-blocking
// (MSG_DONTWAIT).
func (p *Process) waitLoop(ctx context.Context, f *file, dontwait bool, events int16, op func() (int, error)) (int, Errno) {
	deadline := int64(noDeadline - 1) // not read yet
	for {
		n, err := op()
		switch {
		case err == nil:
			return n, ESUCCESS
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN && !f.nonblocking() && !dontwait:
			if deadline == noDeadline-1 {
				deadline = sockDeadline(f, events)
			}
			if errno := p.waitFDUntil(ctx, f, f.hostFD, events, deadline); errno != ESUCCESS {
				return 0, errno
			}
			continue
		}
		return 0, errnoOf(err)
	}
}

// noDeadline is waitFDUntil's deadline for a wait without one.
const noDeadline = -1

// sockDeadline is when a socket's wait for events ends by its timeout
// option (SO_RCVTIMEO for reading, SO_SNDTIMEO for writing), in nanotime,
// or noDeadline. The timeouts live on the host socket (sock_setsockopt),
// so they are shared by every process holding it, as natively; the host
// socket itself never blocks, so they have no other effect there.
func sockDeadline(f *file, events int16) int64 {
	if !f.isSocket() {
		return noDeadline
	}
	opt := unix.SO_SNDTIMEO
	if events&unix.POLLIN != 0 {
		opt = unix.SO_RCVTIMEO
	}
	tv, err := unix.GetsockoptTimeval(f.hostFD, unix.SOL_SOCKET, opt)
	if err != nil || (tv.Sec == 0 && tv.Usec == 0) {
		return noDeadline
	}
	return nanotime() + tv.Nano()
}

// waitFD blocks until fd, the host fd of f (nil for a socket not in the
// fd table yet), is ready for events, a caught signal arrives (EINTR) or
// ctx ends (EINTR), checking ctx often enough that a cancelled exec stops
// promptly. In a process with threads it waits without the process's
// lock (waitFDUnlocked), and answers EBADF when another thread closes f
// meanwhile.
func (p *Process) waitFD(ctx context.Context, f *file, fd int, events int16) Errno {
	return p.waitFDUntil(ctx, f, fd, events, noDeadline)
}

// waitFDUntil is waitFD with a deadline (nanotime; noDeadline for none),
// after which it answers EAGAIN.
func (p *Process) waitFDUntil(ctx context.Context, f *file, fd int, events int16, deadline int64) Errno {
	if p.thr != nil {
		return p.waitFDUnlocked(ctx, f, fd, events, deadline)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}, {Fd: int32(p.sigs.wake), Events: unix.POLLIN}}
	for {
		if ctx.Err() != nil {
			return EINTR
		}
		ms := 100
		if deadline != noDeadline {
			left := deadline - nanotime()
			if left <= 0 {
				return EAGAIN
			}
			if left < 100_000_000 {
				ms = int((left + 999_999) / 1_000_000)
			}
		}
		n, err := unix.Poll(pfd, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return errnoOf(err)
		}
		if pfd[1].Revents != 0 {
			p.sigs.drainWake()
			return EINTR
		}
		if n > 0 {
			return ESUCCESS
		}
	}
}

// fdReaddir is preview1 fd_readdir(fd, buf, buf_len, cookie,
// result.bufused) -> errno: directory entries from cookie on, each a 24-byte
// dirent and its name; the last may be cut short, and bufused == buf_len
// tells the caller to ask again with a larger buffer. Cookie 0 rereads the
// directory. EBADF, ENOTDIR, EFAULT, ENOTCAPABLE without FD_READDIR.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_readdirfd-fd-buf-pointeru8-buf_len-size-cookie-dircookie---errno-size
var fdReaddir = &hostFunc{
	module: ModulePreview1, name: "fd_readdir",
	params: []string{"fd", "buf", "buf_len", "cookie", "result.bufused"}, types: []api.ValueType{i32, i32, i32, i64, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		if f.filetype != filetypeDirectory || f.mount == nil {
			return ENOTDIR
		}
		if !f.can(rightFDReaddir) {
			return ENOTCAPABLE
		}
		buf, ok := view(mod.Memory(), uint32(s[1]), uint32(s[2]))
		if !ok {
			return EFAULT
		}
		cookie := s[3]
		if cookie == 0 || f.dirents == nil {
			ents, errno := f.readDir()
			if errno != ESUCCESS {
				return errno
			}
			f.dirents = ents
		}
		if cookie > uint64(len(f.dirents)) {
			return EINVAL
		}
		used := 0
		for i := int(cookie); i < len(f.dirents) && used < len(buf); i++ {
			used += f.dirents[i].encode(buf[used:], uint64(i+1))
		}
		return putU32(mod.Memory(), uint32(s[4]), uint32(used))
	},
}

type dirent struct {
	ino      uint64
	filetype uint8
	name     string
}

// encode writes the dirent and its name into b, cut short if b is.
func (d dirent) encode(b []byte, next uint64) int {
	var hdr [24]byte
	put64(hdr[0:], next)
	put64(hdr[8:], d.ino)
	put32(hdr[16:], uint32(len(d.name)))
	hdr[20] = d.filetype
	n := copy(b, hdr[:])
	return n + copy(b[n:], d.name)
}

// readDir lists the directory with getdents64 on a fresh descriptor, so
// the guest's own offset is never disturbed.
func (f *file) readDir() ([]dirent, Errno) {
	fd, err := unix.Openat(f.dirFD(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errnoOf(err)
	}
	defer unix.Close(fd)
	var ents []dirent
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, errnoOf(err)
		}
		if n <= 0 {
			return ents, ESUCCESS
		}
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(le16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return nil, EIO
			}
			name := b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			ents = append(ents, dirent{ino: le64(b), filetype: direntType(b[18]), name: string(name)})
			b = b[reclen:]
		}
	}
}

func direntType(t uint8) uint8 {
	switch t {
	case unix.DT_BLK:
		return filetypeBlockDevice
	case unix.DT_CHR:
		return filetypeCharDevice
	case unix.DT_DIR:
		return filetypeDirectory
	case unix.DT_REG:
		return filetypeRegularFile
	case unix.DT_LNK:
		return filetypeSymlink
	case unix.DT_SOCK:
		return filetypeSocketStream
	}
	return filetypeUnknown
}

// fdRenumber is preview1 fd_renumber(fd, to) -> errno: atomically replaces
// the open fd to with fd, which is closed. EBADF when either is not open:
// unlike dup2, renumbering onto a free number is an error, since preview1
// hands out fd numbers only through calls that open.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_renumberfd-fd-to-fd---errno
var fdRenumber = &hostFunc{
	module: ModulePreview1, name: "fd_renumber",
	params: []string{"fd", "to"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		from, to := uint32(s[0]), uint32(s[1])
		f, old := p.fds.get(from), p.fds.get(to)
		if f == nil || old == nil {
			return EBADF
		}
		if from == to {
			return ESUCCESS
		}
		p.forgetEpoll(old.hostFD)
		old.closeHost()
		p.fds.files[to] = f
		p.fds.files[from] = nil
		return ESUCCESS
	},
}

// fdSeek is preview1 fd_seek(fd, offset, whence, result.newoffset) -> errno.
// EBADF, also on a directory (it has no offset a guest can use; fd_readdir
// takes cookies), EINVAL for an unknown whence, ESPIPE on sockets and
// stdio, ENOTCAPABLE without FD_SEEK (FD_TELL is enough to ask for the
// offset: offset 0 from CUR).
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_seekfd-fd-offset-filedelta-whence-whence---errno-filesize
var fdSeek = &hostFunc{
	module: ModulePreview1, name: "fd_seek",
	params: []string{"fd", "offset", "whence", "result.newoffset"}, types: []api.ValueType{i32, i64, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		if uint32(s[2]) > 2 {
			return EINVAL
		}
		if f.filetype == filetypeDirectory {
			return EBADF
		}
		if f.hostFD < 0 || f.isSocket() {
			return ESPIPE
		}
		need := uint64(rightFDSeek)
		if s[1] == 0 && s[2] == 1 {
			need = rightFDTell
		}
		if !f.can(need) && !f.can(rightFDSeek) {
			return ENOTCAPABLE
		}
		off, err := unix.Seek(f.hostFD, int64(s[1]), int(s[2]))
		if err != nil {
			return errnoOf(err)
		}
		return putU64(mod.Memory(), uint32(s[3]), uint64(off))
	},
}

// fdTell is preview1 fd_tell(fd, result.offset) -> errno. EBADF (a
// directory too), ESPIPE on sockets and stdio, ENOTCAPABLE without FD_TELL.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-fd_tellfd-fd---errno-filesize
var fdTell = &hostFunc{
	module: ModulePreview1, name: "fd_tell",
	params: []string{"fd", "result.offset"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		if f.filetype == filetypeDirectory {
			return EBADF
		}
		if f.hostFD < 0 || f.isSocket() {
			return ESPIPE
		}
		if !f.can(rightFDTell) {
			return ENOTCAPABLE
		}
		off, err := unix.Seek(f.hostFD, 0, 1)
		if err != nil {
			return errnoOf(err)
		}
		return putU64(mod.Memory(), uint32(s[1]), uint64(off))
	},
}

// hostFile returns the open regular file or directory at fd, or EBADF; or
// ENOTCAPABLE when the fd lacks a right in need.
func (p *Process) hostFile(fd uint32, need uint64) (*file, Errno) {
	f := p.fds.get(fd)
	if f == nil || f.hostFD < 0 {
		return nil, EBADF
	}
	if !f.can(need) {
		return nil, ENOTCAPABLE
	}
	return f, ESUCCESS
}

// statFD is the host fd to fstat for f: its own, or its mount's root.
func (f *file) statFD() int {
	if f.hostFD >= 0 {
		return f.hostFD
	}
	if f.mount != nil && f.rel == "." {
		return f.mount.rootFD
	}
	return -1
}

// dirFD is the host fd of a directory file, for *at calls.
func (f *file) dirFD() int { return f.statFD() }

func putFilestat(b []byte, st *unix.Stat_t) {
	clear(b)
	put64(b[0:], st.Dev)
	put64(b[8:], st.Ino)
	b[16] = modeType(st.Mode)
	put64(b[24:], uint64(st.Nlink))
	put64(b[32:], uint64(st.Size))
	put64(b[40:], uint64(st.Atim.Nano()))
	put64(b[48:], uint64(st.Mtim.Nano()))
	put64(b[56:], uint64(st.Ctim.Nano()))
}

func modeType(mode uint32) uint8 {
	switch mode & unix.S_IFMT {
	case unix.S_IFBLK:
		return filetypeBlockDevice
	case unix.S_IFCHR:
		return filetypeCharDevice
	case unix.S_IFDIR:
		return filetypeDirectory
	case unix.S_IFREG:
		return filetypeRegularFile
	case unix.S_IFLNK:
		return filetypeSymlink
	case unix.S_IFSOCK:
		return filetypeSocketStream
	}
	return filetypeUnknown
}

// Preview1 fstflags.
const (
	fstAtim    = 1
	fstAtimNow = 2
	fstMtim    = 4
	fstMtimNow = 8
)

// utimes turns preview1 times and fstflags into utimensat's timespecs.
func utimes(atim, mtim uint64, flags uint32) ([]unix.Timespec, Errno) {
	if flags&^0xf != 0 || flags&(fstAtim|fstAtimNow) == fstAtim|fstAtimNow || flags&(fstMtim|fstMtimNow) == fstMtim|fstMtimNow {
		return nil, EINVAL
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	switch {
	case flags&fstAtimNow != 0:
		ts[0] = unix.Timespec{Nsec: unix.UTIME_NOW}
	case flags&fstAtim != 0:
		ts[0] = unix.NsecToTimespec(int64(atim))
	}
	switch {
	case flags&fstMtimNow != 0:
		ts[1] = unix.Timespec{Nsec: unix.UTIME_NOW}
	case flags&fstMtim != 0:
		ts[1] = unix.NsecToTimespec(int64(mtim))
	}
	return ts, ESUCCESS
}
