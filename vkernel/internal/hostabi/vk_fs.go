package hostabi

import (
	"context"
	"os"
	"strconv"
	"sync"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// File modes and the guest's identity: preview1's filestat has no
// permission bits, owner or group, and no call changes them. These calls
// add them (ABI.md, *Files: modes and identity*).
//
// The guest's identity is the host process's effective uid and gid and its
// supplementary groups, as an unprivileged user: path_access checks the
// mode bits for that identity and never grants what they refuse, even when
// the vkernel runs as root.

// statExtSize is the size of the record fd_stat and path_stat write.
const statExtSize = 96

// putStatExt writes the extended stat record: preview1's filestat (64
// bytes), then the Linux st_mode (u32 at 64: file type and permission
// bits), st_uid (68), st_gid (72), st_blksize (76), st_blocks (u64 at 80)
// and st_rdev (u64 at 88).
func putStatExt(b []byte, st *unix.Stat_t) {
	putFilestat(b, st)
	put32(b[64:], st.Mode)
	put32(b[68:], st.Uid)
	put32(b[72:], st.Gid)
	put32(b[76:], uint32(st.Blksize))
	put64(b[80:], uint64(st.Blocks))
	put64(b[88:], st.Rdev)
}

// identity is the guest's uid, gid and supplementary groups, read from
// the host process once.
var identity = sync.OnceValues(func() ([2]uint32, []int) {
	groups, _ := os.Getgroups()
	return [2]uint32{uint32(os.Geteuid()), uint32(os.Getegid())}, groups
})

// guestIdentity is the uid and gid the guest runs as.
func guestIdentity() (uint32, uint32) {
	ids, _ := identity()
	return ids[0], ids[1]
}

// inGroup reports whether the guest is a member of gid.
func inGroup(gid uint32) bool {
	ids, groups := identity()
	if gid == ids[1] {
		return true
	}
	for _, g := range groups {
		if uint32(g) == gid {
			return true
		}
	}
	return false
}

// Access modes of path_access, Linux's values.
const (
	accessX = 1
	accessW = 2
	accessR = 4
)

// permits reports whether the mode bits of st grant the guest every access
// in amode: the owner's bits if the guest owns the file, else the group's
// if it is in the file's group, else the others'. There is no superuser.
func permits(st *unix.Stat_t, amode uint32) bool {
	uid, _ := guestIdentity()
	bits := st.Mode & 7
	switch {
	case st.Uid == uid:
		bits = st.Mode >> 6 & 7
	case inGroup(st.Gid):
		bits = st.Mode >> 3 & 7
	}
	return bits&amode == amode
}

// vkFdStat is vkernel.fd_stat(fd, result.buf) -> errno: fd_filestat_get
// with the file's mode, owner and group. Writes the 96-byte record
// putStatExt describes. An fd the host holds no file for (stdio given as
// Go streams) is a character device, mode 0666, owned by the guest. EBADF,
// ENOTCAPABLE without FD_FILESTAT_GET, EFAULT.
var vkFdStat = &hostFunc{
	module: ModuleVkernel, name: "fd_stat",
	params: []string{"fd", "result.buf"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		b, ok := view(mod.Memory(), uint32(s[1]), statExtSize)
		if !ok {
			return EFAULT
		}
		st, errno := p.statOf(uint32(s[0]), f)
		if errno != ESUCCESS {
			return errno
		}
		if st == nil {
			uid, gid := guestIdentity()
			st = &unix.Stat_t{Mode: unix.S_IFCHR | 0o666, Uid: uid, Gid: gid, Blksize: 4096, Nlink: 1}
		}
		putStatExt(b, st)
		return ESUCCESS
	},
}

// vkPathStat is vkernel.path_stat(fd, flags, path, path_len, result.buf)
// -> errno: path_filestat_get with the file's mode, owner and group (the
// record putStatExt describes), following a final symbolic link when flags
// has SYMLINK_FOLLOW. Paths as path_filestat_get: ENOENT, ELOOP, ENOTDIR,
// EPERM, EBADF, ENOTCAPABLE without PATH_FILESTAT_GET, EFAULT.
var vkPathStat = &hostFunc{
	module: ModuleVkernel, name: "path_stat",
	params: []string{"fd", "flags", "path", "path_len", "result.buf"}, types: []api.ValueType{i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		t, errno := p.resolve(mod.Memory(), uint32(s[0]), uint32(s[2]), uint32(s[3]), rightPathFilestatGet)
		if errno != ESUCCESS {
			return errno
		}
		b, ok := view(mod.Memory(), uint32(s[4]), statExtSize)
		if !ok {
			return EFAULT
		}
		st, errno := t.stat(uint32(s[1]))
		if errno != ESUCCESS {
			return errno
		}
		putStatExt(b, &st)
		return ESUCCESS
	},
}

// stat reads the target's attributes, following a final symbolic link when
// lookupflags has SYMLINK_FOLLOW.
func (t target) stat(lookupflags uint32) (unix.Stat_t, Errno) {
	var st unix.Stat_t
	fd, err := t.lookup(lookupflags)
	if err != nil {
		return st, errnoOf(err)
	}
	defer unix.Close(fd)
	return st, errnoOf(unix.Fstat(fd, &st))
}

// chmodFD changes the mode of the file a host fd (O_PATH ones included)
// refers to, through its /proc link, which names exactly that inode. The
// set-user-ID and set-group-ID bits are refused (EPERM) on anything but a
// directory: the file is owned by the host's user, root when the vkernel
// runs as root, and a set-user-ID file the guest wrote would run with that
// user's privileges on the host. A directory's set-group-ID bit only makes
// new names take its group.
func chmodFD(fd int, mode uint32) Errno {
	if mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return errnoOf(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || mode&unix.S_ISUID != 0 {
			return EPERM
		}
	}
	return errnoOf(unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), mode, 0))
}

// vkFdChmod is vkernel.fd_chmod(fd, mode) -> errno: fchmod. mode is the
// permission bits, set-user-ID, set-group-ID and sticky (07777). EINVAL for
// other bits, EROFS on a read-only mount, EPERM when the host refuses (the
// file is not the guest's) and for set-user-ID, or set-group-ID on
// anything but a directory (chmodFD), EBADF (also for stdio given as Go streams),
// ENOTCAPABLE without FD_FILESTAT_SET_TIMES, the right to change a file's
// attributes.
var vkFdChmod = &hostFunc{
	module: ModuleVkernel, name: "fd_chmod",
	params: []string{"fd", "mode"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		f := p.fds.get(uint32(s[0]))
		if f == nil {
			return EBADF
		}
		mode := uint32(s[1])
		if mode&^0o7777 != 0 {
			return EINVAL
		}
		if !f.can(rightFDFilestatSetTimes) {
			return ENOTCAPABLE
		}
		fd := f.statFD()
		if fd < 0 {
			return EBADF
		}
		if f.mount != nil && f.mount.readOnly {
			return EROFS
		}
		return chmodFD(fd, mode)
	},
}

// vkPathChmod is vkernel.path_chmod(fd, flags, path, path_len, mode) ->
// errno: fchmodat. A final symbolic link is followed when flags has
// SYMLINK_FOLLOW; without it, a link answers ENOTSUP (Linux cannot change
// a link's mode). mode as fd_chmod: EINVAL for other bits. EROFS on a
// read-only mount (ENOENT there too for a missing name), EPERM, ENOENT,
// ELOOP, EBADF, EFAULT, ENOTCAPABLE without PATH_FILESTAT_SET_TIMES.
var vkPathChmod = &hostFunc{
	module: ModuleVkernel, name: "path_chmod",
	params: []string{"fd", "flags", "path", "path_len", "mode"}, types: []api.ValueType{i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		t, errno := p.resolve(mod.Memory(), uint32(s[0]), uint32(s[2]), uint32(s[3]), rightPathFilestatSetTimes)
		if errno != ESUCCESS {
			return errno
		}
		mode := uint32(s[4])
		if mode&^0o7777 != 0 {
			return EINVAL
		}
		fd, err := t.lookup(uint32(s[1]))
		if err != nil {
			return errnoOf(err)
		}
		defer unix.Close(fd)
		if t.mount.readOnly {
			return EROFS
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return errnoOf(err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return ENOTSUP
		}
		return chmodFD(fd, mode)
	},
}

// vkPathAccess is vkernel.path_access(fd, flags, path, path_len, amode) ->
// errno: faccessat for the guest's identity. amode: 0 (F_OK: the file
// exists) or any of 4 (R_OK), 2 (W_OK), 1 (X_OK), checked against the
// file's mode bits for the owner if the guest owns it, else its group if
// the guest is a member, else others; no identity bypasses them (Linux's
// root gets X_OK from any x bit, the guest does not get it from none).
// W_OK on a read-only mount: EROFS. A final symbolic link is followed when
// flags has SYMLINK_FOLLOW. Only the file's own mode is checked, not search
// permission on the directories above it. EACCES, EINVAL for other amode
// bits, ENOENT, ELOOP, ENOTDIR, EPERM, EBADF, EFAULT, ENOTCAPABLE without
// PATH_FILESTAT_GET.
var vkPathAccess = &hostFunc{
	module: ModuleVkernel, name: "path_access",
	params: []string{"fd", "flags", "path", "path_len", "amode"}, types: []api.ValueType{i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		t, errno := p.resolve(mod.Memory(), uint32(s[0]), uint32(s[2]), uint32(s[3]), rightPathFilestatGet)
		if errno != ESUCCESS {
			return errno
		}
		amode := uint32(s[4])
		if amode&^(accessR|accessW|accessX) != 0 {
			return EINVAL
		}
		st, errno := t.stat(uint32(s[1]))
		if errno != ESUCCESS {
			return errno
		}
		if amode&accessW != 0 && t.mount.readOnly {
			return EROFS
		}
		if !permits(&st, amode) {
			return EACCES
		}
		return ESUCCESS
	},
}

// vkProcCred is vkernel.proc_cred(result.ids) -> errno: the guest's uid
// and gid, two u32 (getuid, geteuid, getgid, getegid answer them). EFAULT.
var vkProcCred = &hostFunc{
	module: ModuleVkernel, name: "proc_cred",
	params: []string{"result.ids"}, types: []api.ValueType{i32}, results: []api.ValueType{i32},
	untimed: true,
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		b, ok := view(mod.Memory(), uint32(s[0]), 8)
		if !ok {
			return EFAULT
		}
		uid, gid := guestIdentity()
		put32(b, uid)
		put32(b[4:], gid)
		return ESUCCESS
	},
}
