package hostabi

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// pathCall calls a path_* function of the vkernel module on name under the
// mount at dirfd: fn(dirfd, flags, name, len(name), last).
func (s *session) pathCall(fn string, dirfd uint64, flags uint64, name string, last uint64) Errno {
	s.t.Helper()
	s.write(1000, []byte(name))
	errno, err := s.call("vkernel."+fn, dirfd, flags, 1000, uint64(len(name)), last)
	if err != nil {
		s.t.Fatalf("%s %q: %v", fn, name, err)
	}
	return errno
}

// TestFileModes: path_stat and fd_stat report the host file's mode, owner
// and group; path_chmod and fd_chmod change the mode on the host, except
// on a read-only mount; path_access checks the mode bits for the guest's
// identity with no superuser bypass, so it holds when the tests run as
// root too.
func TestFileModes(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(h.root, "f")
	if err := os.WriteFile(file, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(file, 0o640) // past the umask
	os.Mkdir(filepath.Join(h.root, "d"), 0o755)
	os.Symlink("f", filepath.Join(h.root, "link"))
	s := h.open(t, Config{Mounts: []Mount{{Guest: "/", Host: h.root}, {Guest: "/ro", Host: h.root, ReadOnly: true}}})
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())

	mode := func(name string, follow bool) uint32 {
		t.Helper()
		var flags uint64
		if follow {
			flags = lookupSymlinkFollow
		}
		if errno := s.pathCall("path_stat", 3, flags, name, 2000); errno != ESUCCESS {
			t.Fatalf("path_stat %q: errno %d", name, errno)
		}
		return s.u32(2000 + 64)
	}
	if m := mode("f", true); m != unix.S_IFREG|0o640 {
		t.Errorf("path_stat f: mode %o, want %o", m, unix.S_IFREG|0o640)
	}
	if size, u, g := s.u64(2000+32), s.u32(2000+68), s.u32(2000+72); size != 5 || u != uid || g != gid {
		t.Errorf("path_stat f: size %d uid %d gid %d, want 5 %d %d", size, u, g, uid, gid)
	}
	if m := mode("link", false); m&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("path_stat link without follow: mode %o, want a link", m)
	}
	if m := mode("d", true); m != unix.S_IFDIR|0o755 {
		t.Errorf("path_stat d: mode %o", m)
	}

	// chmod through the link (followed), on the host file.
	if errno := s.pathCall("path_chmod", 3, lookupSymlinkFollow, "link", 0o751); errno != ESUCCESS {
		t.Fatalf("path_chmod: errno %d", errno)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o751 {
		t.Errorf("host mode after path_chmod: %v", st.Mode())
	}
	if m := mode("f", true); m&0o7777 != 0o751 {
		t.Errorf("path_stat after chmod: mode %o", m)
	}
	for _, c := range []struct {
		dirfd, flags uint64
		name         string
		mode         uint64
		want         Errno
	}{
		{3, 0, "link", 0o644, ENOTSUP}, // a link's own mode
		{3, 0, "f", 0o10644, EINVAL},   // not a permission bit
		{4, 0, "f", 0o644, EROFS},      // read-only mount
		{4, 0, "missing", 0o644, ENOENT},
		{3, 0, "/f", 0o644, EPERM}, // absolute: not under the fd
		{3, 0, "f", 0o4755, EPERM}, // set-user-ID: the host's user's privileges
		{3, 0, "f", 0o2755, EPERM}, // set-group-ID on a file
		{3, 0, "d", 0o4755, EPERM}, // set-user-ID on a directory too
	} {
		if errno := s.pathCall("path_chmod", c.dirfd, c.flags, c.name, c.mode); errno != c.want {
			t.Errorf("path_chmod(%d, %q, %o): errno %d, want %d", c.dirfd, c.name, c.mode, errno, c.want)
		}
	}
	if st, _ := os.Stat(file); st.Mode() != 0o751 {
		t.Errorf("a refused chmod changed the mode: %v", st.Mode())
	}
	// A directory's set-group-ID bit and sticky bit are allowed.
	if errno := s.pathCall("path_chmod", 3, 0, "d", 0o3775); errno != ESUCCESS {
		t.Errorf("path_chmod d 3775: errno %d", errno)
	}
	if m := mode("d", true); m != unix.S_IFDIR|0o3775 {
		t.Errorf("path_stat d after chmod 3775: mode %o", m)
	}
	os.Chmod(filepath.Join(h.root, "d"), 0o755)

	// fd_stat and fd_chmod on an opened fd, the preopen and stdio.
	name := "f"
	s.write(1000, []byte(name))
	s.must("wasi_snapshot_preview1.path_open", 3, 0, 1000, 1, 0, rightFDRead|rightFDFilestatGet|rightFDFilestatSetTimes, 0, 0, 1100)
	fd := uint64(s.u32(1100))
	s.must("vkernel.fd_chmod", fd, 0o604)
	s.must("vkernel.fd_stat", fd, 2000)
	if m := s.u32(2000 + 64); m != unix.S_IFREG|0o604 {
		t.Errorf("fd_stat after fd_chmod: mode %o", m)
	}
	s.must("vkernel.fd_stat", 3, 2000)
	if m := s.u32(2000 + 64); m&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("fd_stat of the preopen: mode %o", m)
	}
	s.must("vkernel.fd_stat", 1, 2000)
	if m, u := s.u32(2000+64), s.u32(2000+68); m != unix.S_IFCHR|0o666 || u != uid {
		t.Errorf("fd_stat of stdout: mode %o uid %d", m, u)
	}
	if errno, _ := s.call("vkernel.fd_chmod", 4, 0o755); errno != EROFS {
		t.Errorf("fd_chmod of a read-only preopen: errno %d, want EROFS", errno)
	}
	if errno, _ := s.call("vkernel.fd_chmod", 99, 0o755); errno != EBADF {
		t.Errorf("fd_chmod of a closed fd: errno %d, want EBADF", errno)
	}

	// access: the owner's bits (the guest owns what it created).
	os.Chmod(file, 0o600)
	os.WriteFile(filepath.Join(h.root, "none"), nil, 0o644)
	os.Chmod(filepath.Join(h.root, "none"), 0)
	for _, c := range []struct {
		dirfd uint64
		name  string
		amode uint64
		want  Errno
	}{
		{3, "f", accessR | accessW, ESUCCESS},
		{3, "f", accessX, EACCES},
		{3, "f", 0, ESUCCESS},
		{3, "none", accessR, EACCES}, // even for root
		{3, "none", 0, ESUCCESS},
		{3, "d", accessX | accessR | accessW, ESUCCESS},
		{4, "f", accessW, EROFS},
		{4, "f", accessR, ESUCCESS},
		{3, "missing", 0, ENOENT},
		{3, "f", 8, EINVAL},
	} {
		if errno := s.pathCall("path_access", c.dirfd, lookupSymlinkFollow, c.name, c.amode); errno != c.want {
			t.Errorf("path_access(%d, %q, %d): errno %d, want %d", c.dirfd, c.name, c.amode, errno, c.want)
		}
	}

	s.must("vkernel.proc_cred", 2000)
	if u, g := s.u32(2000), s.u32(2004); u != uid || g != gid {
		t.Errorf("proc_cred: %d %d, want %d %d", u, g, uid, gid)
	}
}

// TestPermitsByClass: the owner's, group's and others' bits each apply to
// their class alone.
func TestPermitsByClass(t *testing.T) {
	uid, gid := guestIdentity()
	for _, c := range []struct {
		st    unix.Stat_t
		amode uint32
		want  bool
	}{
		{unix.Stat_t{Mode: 0o700, Uid: uid, Gid: gid + 1}, accessR | accessW | accessX, true},
		{unix.Stat_t{Mode: 0o077, Uid: uid, Gid: gid}, accessR, false}, // the owner's bits alone count for the owner
		{unix.Stat_t{Mode: 0o070, Uid: uid + 1, Gid: gid}, accessR, true},
		{unix.Stat_t{Mode: 0o707, Uid: uid + 1, Gid: gid}, accessR, false}, // a member gets the group's bits
		{unix.Stat_t{Mode: 0o005, Uid: uid + 1, Gid: 0xfffffff0}, accessR | accessX, true},
		{unix.Stat_t{Mode: 0o005, Uid: uid + 1, Gid: 0xfffffff0}, accessW, false},
	} {
		if got := permits(&c.st, c.amode); got != c.want {
			t.Errorf("permits(mode %o uid %d gid %d, %d) = %v, want %v", c.st.Mode, c.st.Uid, c.st.Gid, c.amode, got, c.want)
		}
	}
}
