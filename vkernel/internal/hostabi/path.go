package hostabi

import (
	"context"
	"path"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// Every path a guest names is resolved inside its mount: the path is joined
// to the directory fd's mount-relative path and cleaned lexically (".."
// stops at the mount root), then opened with openat2 and RESOLVE_IN_ROOT so
// that symbolic links, absolute ones included, cannot leave the mount
// either.
const resolveInMount = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// Preview1 lookupflags and oflags.
const (
	lookupSymlinkFollow = 1

	oflagCreat     = 1
	oflagDirectory = 2
	oflagExcl      = 4
	oflagTrunc     = 8
)

// JoinInMount joins a guest path to a mount-relative directory path and
// returns the mount-relative result: clean, never absolute, never above the
// mount root ("." for the root itself).
func JoinInMount(dir, name string) string {
	if dir == "." && name != "" && name[0] != '/' {
		// The common case, a name relative to a mount's root: cleaning
		// an already clean name allocates nothing.
		if c := path.Clean(name); c != ".." && !strings.HasPrefix(c, "../") {
			return c
		}
	}
	c := path.Clean("/" + dir + "/" + name)
	if c == "/" {
		return "."
	}
	return c[1:]
}

// target is a guest path resolved to its mount.
type target struct {
	mount *mount
	rel   string
	// dirOnly records a trailing slash, which cleaning drops but POSIX
	// gives meaning: the name must be a directory ("x/" with O_CREAT is
	// EISDIR, a file "f/" is ENOTDIR).
	dirOnly bool
}

// resolve reads the path argument of a path_* call and resolves it against
// the directory fd, which must have the rights in need. Paths are
// capabilities relative to the directory fd, as preview1 has them: an
// absolute path, or one whose ".." components climb above the directory,
// is refused with EPERM (as wasmtime and the WASI test suite have it). The
// one exception is ".." at the root of a mount whose guest path is "/",
// which stays there, as "/.." is "/" in POSIX. EBADF for an unknown fd,
// ENOTDIR when it is not a directory under a mount, ENOTCAPABLE without
// the rights, EFAULT, ENOENT for an empty path.
func (p *Process) resolve(m api.Memory, dirfd, ptr, n uint32, need uint64) (target, Errno) {
	d := p.fds.get(dirfd)
	if d == nil {
		return target{}, EBADF
	}
	if d.filetype != filetypeDirectory || d.mount == nil {
		return target{}, ENOTDIR
	}
	if !d.can(need) {
		return target{}, ENOTCAPABLE
	}
	name, errno := readString(m, ptr, n)
	if errno != ESUCCESS {
		return target{}, errno
	}
	if name == "" {
		return target{}, ENOENT
	}
	if path.IsAbs(name) {
		return target{}, EPERM
	}
	if climbsAbove(name) && !(d.rel == "." && d.mount.guest == "/") {
		return target{}, EPERM
	}
	t := target{mount: d.mount, rel: JoinInMount(d.rel, name)}
	t.dirOnly = strings.HasSuffix(name, "/") && t.rel != "."
	return t, ESUCCESS
}

// climbsAbove reports whether a relative path's ".." components, taken in
// order, ever lead above the directory it starts from.
func climbsAbove(name string) bool {
	depth := 0
	for rest := name; ; {
		c, after, more := strings.Cut(rest, "/")
		switch c {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
		if !more {
			return false
		}
		rest = after
	}
}

// name is the path the kernel resolves: rel, with the trailing slash
// restored.
func (t target) name() string {
	if t.dirOnly {
		return t.rel + "/"
	}
	return t.rel
}

// open opens the target with openat2 beneath its mount root. A mount
// whose guest path is "/" resolves every symbolic link in the kernel
// (RESOLVE_IN_ROOT): an absolute link means the same there as in the
// guest. Elsewhere an absolute link names a guest path, which the mount
// root is not, so the kernel resolves only paths without links
// (RESOLVE_NO_SYMLINKS) and a path with one is walked by resolveLinks.
func (t target) open(flags uint64, mode uint64) (int, error) {
	if t.mount.guest == "/" {
		return openInRoot(t.mount.rootFD, t.name(), flags, mode, resolveInMount)
	}
	fd, err := openInRoot(t.mount.rootFD, t.name(), flags, mode, resolveInMount|unix.RESOLVE_NO_SYMLINKS)
	if err != unix.ELOOP {
		return fd, err
	}
	name, err := t.resolveLinks(flags&unix.O_NOFOLLOW == 0)
	if err != nil {
		return -1, err
	}
	return openInRoot(t.mount.rootFD, name, flags, mode, resolveInMount|unix.RESOLVE_NO_SYMLINKS)
}

// openInRoot is openat2 from a mount root, retried on EINTR and EAGAIN.
func openInRoot(root int, name string, flags, mode, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Mode: mode, Resolve: resolve}
	for {
		fd, err := unix.Openat2(root, name, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// maxLinks bounds the symbolic links one path resolution follows, as
// Linux's MAXSYMLINKS: past it, ELOOP.
const maxLinks = 40

// resolveLinks walks the target's path component by component from the
// mount root and returns the mount-relative path without symbolic links
// that it names, for a mount whose guest path is not "/". A link is read
// and its text put in its place: a relative one from the link's
// directory, an absolute one that lies under the mount's guest path
// ("/m/x" in a mount at /m) from the mount root, since the guest sees the
// mount there. An absolute link to anywhere else names nothing in this
// mount: ENOENT (a link never leads into another mount, whose read-only
// flag this target would not carry). ".." stops at the mount root. A final
// link is followed only when follow is set (or the path ends in a slash).
// The caller opens the result with RESOLVE_NO_SYMLINKS, so a component
// replaced by a link meanwhile fails with ELOOP instead of being followed
// out of the mount.
func (t target) resolveLinks(follow bool) (string, error) {
	rest := splitPath(t.rel)
	var done []string // resolved components, none a link
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		if len(rest) == 0 && !follow && !t.dirOnly {
			done = append(done, c)
			break
		}
		text, isLink, err := readLinkIn(t.mount.rootFD, done, c)
		if err != nil {
			return "", err
		}
		if !isLink {
			done = append(done, c)
			continue
		}
		if links++; links > maxLinks {
			return "", unix.ELOOP
		}
		if path.IsAbs(text) {
			inMount, ok := underGuest(t.mount.guest, path.Clean(text))
			if !ok {
				return "", unix.ENOENT
			}
			done = done[:0]
			text = inMount
		}
		rest = append(splitPath(text), rest...)
	}
	name := "."
	if len(done) > 0 {
		name = strings.Join(done, "/")
	}
	if t.dirOnly {
		name += "/"
	}
	return name, nil
}

// splitPath splits a slash-separated path into its components.
func splitPath(p string) []string {
	return strings.Split(p, "/")
}

// underGuest returns the mount-relative path of a clean absolute guest
// path that lies under the mount's guest path, or false.
func underGuest(guest, p string) (string, bool) {
	if p == guest {
		return ".", true
	}
	if guest == "/" {
		return p[1:], true
	}
	if rest, ok := strings.CutPrefix(p, guest+"/"); ok {
		return rest, true
	}
	return "", false
}

// readLinkIn reads the name c in the mount-relative directory dir (given as
// components without links) and returns its text when it is a symbolic
// link. A missing name is not an error: the walk ends at it, and the open
// that follows answers for it (ENOENT, or creates it).
func readLinkIn(root int, dir []string, c string) (string, bool, error) {
	name := "."
	if len(dir) > 0 {
		name = strings.Join(dir, "/")
	}
	dfd, err := openInRoot(root, name, unix.O_PATH|unix.O_DIRECTORY, 0, resolveInMount|unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return "", false, err
	}
	defer unix.Close(dfd)
	buf := make([]byte, unix.PathMax)
	for {
		n, err := unix.Readlinkat(dfd, c, buf)
		switch err {
		case nil:
			if n == len(buf) {
				return "", false, unix.ENAMETOOLONG
			}
			return string(buf[:n]), true, nil
		case unix.EINTR:
			continue
		case unix.EINVAL, unix.ENOENT:
			return "", false, nil
		}
		return "", false, err
	}
}

// lookup opens the target itself as an O_PATH fd, following a final
// symbolic link only when lookupflags has SYMLINK_FOLLOW.
func (t target) lookup(lookupflags uint32) (int, error) {
	flags := uint64(unix.O_PATH)
	if lookupflags&lookupSymlinkFollow == 0 {
		flags |= unix.O_NOFOLLOW
	}
	return t.open(flags, 0)
}

// parent opens the target's parent directory (O_PATH) and returns it with
// the final name, for the *at calls that act on a name without following it.
func (t target) parent() (int, string, error) {
	dir, base := path.Dir(t.rel), path.Base(t.rel)
	fd, err := target{mount: t.mount, rel: dir}.open(unix.O_PATH|unix.O_DIRECTORY, 0)
	if t.dirOnly {
		base += "/"
	}
	return fd, base, err
}

// isDir reports whether the target is a directory, following a final
// symbolic link only when lookupflags has SYMLINK_FOLLOW.
func (t target) isDir(lookupflags uint32) bool {
	fd, err := t.lookup(lookupflags)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// exists reports whether the final name exists, without following it.
func exists(pfd int, base string) bool {
	var st unix.Stat_t
	return unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// readOnlyRemove is the answer on a read-only mount to removing a name:
// ENOENT when it does not exist (so "remove if present" code works), else
// EROFS. wazero answered EROFS even for missing files.
func readOnlyRemove(pfd int, base string) Errno {
	if !exists(pfd, base) {
		return ENOENT
	}
	return EROFS
}

// readOnlyCreate is the answer on a read-only mount to creating a name.
func readOnlyCreate(pfd int, base string) Errno {
	if exists(pfd, base) {
		return EEXIST
	}
	return EROFS
}

// withParent runs op on the target's parent fd and final name.
func withParent(t target, op func(pfd int, base string) Errno) Errno {
	pfd, base, err := t.parent()
	if err != nil {
		return errnoOf(err)
	}
	defer unix.Close(pfd)
	return op(pfd, base)
}

// pathCreateDirectory is preview1 path_create_directory(fd, path, path_len)
// -> errno: mkdirat, mode 0777 less the umask. EEXIST, ENOENT, EROFS on a
// read-only mount, EBADF, ENOTDIR, EFAULT.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-path_create_directoryfd-fd-path-string---errno
var pathCreateDirectory = &hostFunc{
	module: ModulePreview1, name: "path_create_directory",
	params: []string{"fd", "path", "path_len"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		t, errno := p.resolve(mod.Memory(), uint32(s[0]), uint32(s[1]), uint32(s[2]), rightPathCreateDirectory)
		if errno != ESUCCESS {
			return errno
		}
		return withParent(t, func(pfd int, base string) Errno {
			if t.mount.readOnly {
				return readOnlyCreate(pfd, base)
			}
			return errnoOf(unix.Mkdirat(pfd, base, 0o777))
		})
	},
}

// pathFilestatGet is preview1 path_filestat_get(fd, flags, path, path_len,
// result.buf) -> errno: the attributes of the named file, following a final
// symbolic link when flags has SYMLINK_FOLLOW. ENOENT, ELOOP, EBADF, EFAULT.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-path_filestat_getfd-fd-flags-lookupflags-path-string---errno-filestat
var pathFilestatGet = &hostFunc{
	module: ModulePreview1, name: "path_filestat_get",
	params: []string{"fd", "flags", "path", "path_len", "result.buf"}, types: []api.ValueType{i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		t, errno := p.resolve(mod.Memory(), uint32(s[0]), uint32(s[2]), uint32(s[3]), rightPathFilestatGet)
		if errno != ESUCCESS {
			return errno
		}
		b, ok := view(mod.Memory(), uint32(s[4]), 64)
		if !ok {
			return EFAULT
		}
		fd, err := t.lookup(uint32(s[1]))
		if err != nil {
			return errnoOf(err)
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return errnoOf(err)
		}
		putFilestat(b, &st)
		return ESUCCESS
	},
}

// pathFilestatSetTimes is preview1 path_filestat_set_times(fd, flags, path,
// path_len, atim, mtim, fst_flags) -> errno. EINVAL for contradictory
// fst_flags, EROFS on a read-only mount, ENOENT.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-path_filestat_set_timesfd-fd-flags-lookupflags-path-string-atim-timestamp-mtim-timestamp-fst_flags-fstflags---errno
var pathFilestatSetTimes = &hostFunc{
	module: ModulePreview1, name: "path_filestat_set_times",
	params:  []string{"fd", "flags", "path", "path_len", "atim", "mtim", "fst_flags"},
	types:   []api.ValueType{i32, i32, i32, i32, i64, i64, i32},
	results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		t, errno := p.resolve(mod.Memory(), uint32(s[0]), uint32(s[2]), uint32(s[3]), rightPathFilestatSetTimes)
		if errno != ESUCCESS {
			return errno
		}
		ts, errno := utimes(s[4], s[5], uint32(s[6]))
		if errno != ESUCCESS {
			return errno
		}
		fd, err := t.lookup(uint32(s[1]))
		if err != nil {
			return errnoOf(err)
		}
		defer unix.Close(fd)
		if t.mount.readOnly {
			return EROFS
		}
		// The fd was resolved inside the mount; its /proc link names exactly
		// that inode, so following it cannot escape.
		return errnoOf(unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), ts, 0))
	},
}

// pathLink is preview1 path_link(old_fd, old_flags, old_path, old_path_len,
// new_fd, new_path, new_path_len) -> errno: a hard link. EXDEV across
// mounts, EEXIST, EROFS on a read-only mount.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-path_linkold_fd-fd-old_flags-lookupflags-old_path-string-new_fd-fd-new_path-string---errno
var pathLink = &hostFunc{
	module: ModulePreview1, name: "path_link",
	params:  []string{"old_fd", "old_flags", "old_path", "old_path_len", "new_fd", "new_path", "new_path_len"},
	types:   []api.ValueType{i32, i32, i32, i32, i32, i32, i32},
	results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		old, errno := p.resolve(mod.Memory(), uint32(s[0]), uint32(s[2]), uint32(s[3]), rightPathLinkSource)
		if errno != ESUCCESS {
			return errno
		}
		nt, errno := p.resolve(mod.Memory(), uint32(s[4]), uint32(s[5]), uint32(s[6]), rightPathLinkTarget)
		if errno != ESUCCESS {
			return errno
		}
		if old.mount != nt.mount {
			return EXDEV
		}
		ofd, err := old.lookup(uint32(s[1]))
		if err != nil {
			return errnoOf(err)
		}
		defer unix.Close(ofd)
		return withParent(nt, func(pfd int, base string) Errno {
			if nt.mount.readOnly {
				return readOnlyCreate(pfd, base)
			}
			return errnoOf(unix.Linkat(ofd, "", pfd, base, unix.AT_EMPTY_PATH))
		})
	},
}

// pathOpen is preview1 path_open(fd, dirflags, path, path_len, oflags,
// fs_rights_base, fs_rights_inheriting, fdflags, result.opened_fd) -> errno.
// The access mode comes from the FD_READ and FD_WRITE rights; oflags map to
// O_CREAT, O_DIRECTORY, O_EXCL and O_TRUNC; a final symbolic link is
// followed only with SYMLINK_FOLLOW. The new fd's rights are those asked
// for, less what the directory's inheriting rights do not include and what
// does not apply to the file's type; a directory asked for with write
// rights opens to read. The directory fd needs PATH_OPEN, and
// PATH_CREATE_FILE for CREAT and PATH_FILESTAT_SET_SIZE for TRUNC. On a
// read-only mount, opening to write or create answers ENOENT for a missing
// file and EROFS otherwise. ENOENT, EEXIST, EISDIR, ENOTDIR, ELOOP, EMFILE,
// EBADF, EFAULT, EPERM (absolute path, ".." above the directory),
// ENOTCAPABLE.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-path_openfd-fd-dirflags-lookupflags-path-string-oflags-oflags-fs_rights_base-rights-fs_rights_inheriting-rights-fdflags-fdflags---errno-fd
var pathOpen = &hostFunc{
	module: ModulePreview1, name: "path_open",
	params:  []string{"fd", "dirflags", "path", "path_len", "oflags", "fs_rights_base", "fs_rights_inheriting", "fdflags", "result.opened_fd"},
	types:   []api.ValueType{i32, i32, i32, i32, i32, i64, i64, i32, i32},
	results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		oflags, fdflags := uint32(s[4]), uint32(s[7])
		if oflags&^0xf != 0 || fdflags&^0x1f != 0 {
			return EINVAL
		}
		need := uint64(rightPathOpen)
		if oflags&oflagCreat != 0 {
			need |= rightPathCreateFile
		}
		if oflags&oflagTrunc != 0 {
			need |= rightPathFilestatSetSize
		}
		t, errno := p.resolve(mod.Memory(), uint32(s[0]), uint32(s[2]), uint32(s[3]), need)
		if errno != ESUCCESS {
			return errno
		}
		if _, ok := view(mod.Memory(), uint32(s[8]), 4); !ok {
			return EFAULT
		}
		// The new fd gets the rights asked for that its directory may hand
		// on; those that do not apply to the file's type are dropped below.
		dir := p.fds.get(uint32(s[0]))
		rights, inheriting := s[5]&dir.inheriting, s[6]&dir.inheriting
		var flags uint64
		write := rights&rightFDWrite != 0
		if write && oflags&(oflagCreat|oflagTrunc|oflagDirectory) == 0 && t.isDir(uint32(s[1])) {
			// Write rights do not apply to a directory: open it to read,
			// as preview1 allows ("fewer rights ... if those rights do not
			// apply to the type of file being opened"). Asking for every
			// right fd_fdstat_get reported must not fail with EISDIR.
			oflags |= oflagDirectory
		}
		switch {
		case oflags&oflagDirectory != 0:
			flags = unix.O_RDONLY | unix.O_DIRECTORY
			write = false
		case write && rights&rightFDRead != 0:
			flags = unix.O_RDWR
		case write:
			flags = unix.O_WRONLY
		default:
			flags = unix.O_RDONLY
		}
		if oflags&oflagCreat != 0 {
			flags |= unix.O_CREAT
		}
		if oflags&oflagExcl != 0 {
			flags |= unix.O_EXCL
		}
		if oflags&oflagTrunc != 0 {
			flags |= unix.O_TRUNC
		}
		if uint32(s[1])&lookupSymlinkFollow == 0 {
			flags |= unix.O_NOFOLLOW
		}
		if fdflags&fdflagAppend != 0 {
			flags |= unix.O_APPEND
		}
		if fdflags&(fdflagSync|fdflagRsync) != 0 {
			flags |= unix.O_SYNC
		} else if fdflags&fdflagDsync != 0 {
			flags |= unix.O_DSYNC
		}
		if t.mount.readOnly && (write || oflags&(oflagCreat|oflagTrunc) != 0) {
			fd, err := t.open(unix.O_PATH|flags&unix.O_NOFOLLOW, 0)
			if err != nil {
				if err == unix.ENOENT && oflags&oflagCreat != 0 {
					return EROFS
				}
				return errnoOf(err)
			}
			unix.Close(fd)
			if oflags&oflagExcl != 0 {
				return EEXIST
			}
			return EROFS
		}
		var mode uint64
		if flags&unix.O_CREAT != 0 {
			mode = 0o666 // openat2 refuses a mode without O_CREAT
		}
		var fd int
		var err error
		if p.thr != nil {
			fd, err = p.openUnlocked(t, flags, mode)
		} else {
			fd, err = t.open(flags, mode)
		}
		if err != nil {
			return errnoOf(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return errnoOf(err)
		}
		f := &file{filetype: modeType(st.Mode), hostFD: fd, flags: uint16(fdflags), mount: t.mount}
		f.rights = rights & rightsFor(f.filetype)
		if f.filetype == filetypeDirectory {
			f.rel = t.rel
			f.inheriting = inheriting
		}
		newfd, errno := p.fds.insert(f)
		if errno != ESUCCESS {
			unix.Close(fd)
			return errno
		}
		p.opened = openedFile{call: p.hostCalls, fd: newfd, file: f, st: st}
		return putU32(mod.Memory(), uint32(s[8]), newfd)
	},
}

// openedFile is the attributes path_open read of the file it opened.
type openedFile struct {
	call int64 // the path_open's number among the process's host calls
	fd   uint32
	file *file
	st   unix.Stat_t
}

// openedStat returns the attributes path_open read of the file at fd when
// that path_open was the guest's previous host call, else nil: a guest
// that opens a file and fstats it at once (nginx serving a static file,
// stdio's fopen) gets them without a second fstat. Nothing the guest can
// observe happens between the two calls, so the answer is one the fstat
// could have given: a change by another process in the meantime is then
// indistinguishable from one made just after it.
func (p *Process) openedStat(fd uint32, f *file) *unix.Stat_t {
	if o := &p.opened; o.file == f && o.fd == fd && o.call == p.hostCalls-1 {
		return &o.st
	}
	return nil
}

// pathReadlink is preview1 path_readlink(fd, path, path_len, buf, buf_len,
// result.bufused) -> errno: the link's contents, cut to buf_len. EINVAL when
// the name is not a symbolic link, ENOENT, EFAULT.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-path_readlinkfd-fd-path-string-buf-pointeru8-buf_len-size---errno-size
var pathReadlink = &hostFunc{
	module: ModulePreview1, name: "path_readlink",
	params:  []string{"fd", "path", "path_len", "buf", "buf_len", "result.bufused"},
	types:   []api.ValueType{i32, i32, i32, i32, i32, i32},
	results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		t, errno := p.resolve(mod.Memory(), uint32(s[0]), uint32(s[1]), uint32(s[2]), rightPathReadlink)
		if errno != ESUCCESS {
			return errno
		}
		buf, ok := view(mod.Memory(), uint32(s[3]), uint32(s[4]))
		if !ok {
			return EFAULT
		}
		return withParent(t, func(pfd int, base string) Errno {
			tmp := make([]byte, 4096)
			n, err := unix.Readlinkat(pfd, base, tmp)
			if err != nil {
				return errnoOf(err)
			}
			n = copy(buf, tmp[:n])
			return putU32(mod.Memory(), uint32(s[5]), uint32(n))
		})
	},
}

// pathRemoveDirectory is preview1 path_remove_directory(fd, path, path_len)
// -> errno. ENOTEMPTY, ENOTDIR, ENOENT, EROFS on a read-only mount (ENOENT
// there when the directory does not exist).
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-path_remove_directoryfd-fd-path-string---errno
var pathRemoveDirectory = &hostFunc{
	module: ModulePreview1, name: "path_remove_directory",
	params: []string{"fd", "path", "path_len"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		return p.unlink(mod.Memory(), s, unix.AT_REMOVEDIR, rightPathRemoveDirectory)
	},
}

// pathUnlinkFile is preview1 path_unlink_file(fd, path, path_len) -> errno.
// EISDIR, ENOENT, EROFS on a read-only mount (ENOENT there when the file
// does not exist).
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-path_unlink_filefd-fd-path-string---errno
var pathUnlinkFile = &hostFunc{
	module: ModulePreview1, name: "path_unlink_file",
	params: []string{"fd", "path", "path_len"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		return p.unlink(mod.Memory(), s, 0, rightPathUnlinkFile)
	},
}

func (p *Process) unlink(m api.Memory, s []uint64, flags int, need uint64) Errno {
	t, errno := p.resolve(m, uint32(s[0]), uint32(s[1]), uint32(s[2]), need)
	if errno != ESUCCESS {
		return errno
	}
	return withParent(t, func(pfd int, base string) Errno {
		if t.mount.readOnly {
			return readOnlyRemove(pfd, base)
		}
		return errnoOf(unix.Unlinkat(pfd, base, flags))
	})
}

// pathRename is preview1 path_rename(fd, old_path, old_path_len, new_fd,
// new_path, new_path_len) -> errno. EXDEV across mounts, ENOENT, EROFS on a
// read-only mount.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-path_renamefd-fd-old_path-string-new_fd-fd-new_path-string---errno
var pathRename = &hostFunc{
	module: ModulePreview1, name: "path_rename",
	params:  []string{"fd", "old_path", "old_path_len", "new_fd", "new_path", "new_path_len"},
	types:   []api.ValueType{i32, i32, i32, i32, i32, i32},
	results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		old, errno := p.resolve(mod.Memory(), uint32(s[0]), uint32(s[1]), uint32(s[2]), rightPathRenameSource)
		if errno != ESUCCESS {
			return errno
		}
		nt, errno := p.resolve(mod.Memory(), uint32(s[3]), uint32(s[4]), uint32(s[5]), rightPathRenameTarget)
		if errno != ESUCCESS {
			return errno
		}
		if old.mount != nt.mount {
			return EXDEV
		}
		return withParent(old, func(opfd int, obase string) Errno {
			if old.mount.readOnly {
				return readOnlyRemove(opfd, obase)
			}
			return withParent(nt, func(npfd int, nbase string) Errno {
				return errnoOf(unix.Renameat(opfd, obase, npfd, nbase))
			})
		})
	},
}

// pathSymlink is preview1 path_symlink(old_path, old_path_len, fd, new_path,
// new_path_len) -> errno: a symbolic link holding old_path. Its target is
// resolved inside the mount when followed. EEXIST, EROFS.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-path_symlinkold_path-string-fd-fd-new_path-string---errno
var pathSymlink = &hostFunc{
	module: ModulePreview1, name: "path_symlink",
	params:  []string{"old_path", "old_path_len", "fd", "new_path", "new_path_len"},
	types:   []api.ValueType{i32, i32, i32, i32, i32},
	results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		link, errno := readString(mod.Memory(), uint32(s[0]), uint32(s[1]))
		if errno != ESUCCESS {
			return errno
		}
		t, errno := p.resolve(mod.Memory(), uint32(s[2]), uint32(s[3]), uint32(s[4]), rightPathSymlink)
		if errno != ESUCCESS {
			return errno
		}
		return withParent(t, func(pfd int, base string) Errno {
			if t.mount.readOnly {
				return readOnlyCreate(pfd, base)
			}
			return errnoOf(unix.Symlinkat(link, pfd, base))
		})
	},
}
