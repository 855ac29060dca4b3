package hostabi

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// statPath calls path_filestat_get on name under the mount at fd 3 and
// returns the errno, the file type and the inode.
func (s *session) statPath(name string, follow bool) (Errno, uint8, uint64) {
	s.t.Helper()
	s.write(1000, []byte(name))
	var flags uint64
	if follow {
		flags = lookupSymlinkFollow
	}
	errno, err := s.call("wasi_snapshot_preview1.path_filestat_get", 3, flags, 1000, uint64(len(name)), 2000)
	if err != nil {
		s.t.Fatalf("path_filestat_get %q: %v", name, err)
	}
	if errno != ESUCCESS {
		return errno, 0, 0
	}
	b, _ := s.mod.Memory().Read(2000, 64)
	return errno, b[16], le64(b[8:])
}

func inode(t *testing.T, name string) uint64 {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// TestAbsoluteLinksInMount: a mount is shown at its guest path, so an
// absolute link whose text lies under that path leads to the place it
// names inside the mount; every other absolute link, every "..", every
// loop stays inside the mount or fails, and never reaches the host file.
func TestAbsoluteLinksInMount(t *testing.T) {
	h := newHarness(t)
	root, other := t.TempDir(), t.TempDir()
	const guest = "/guest/m"
	mk := func(name, data string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(name, text string) {
		t.Helper()
		if err := os.Symlink(text, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	mk("b", "B")
	mk("dir/f", "F")
	mk("etc/passwd", "inside") // what an escaping link must find instead of the host's
	os.WriteFile(filepath.Join(other, "x"), []byte("X"), 0o644)
	link("abs", guest+"/b")
	link("absdir", guest+"/dir")
	link("rel", "b")
	link("toroot", guest)
	link("chain", guest+"/absdir/../rel") // ".." from the link's target directory
	link("etc-abs", "/etc/passwd")
	link("hostpath", root+"/b") // the host path is not the guest's
	link("up", "../../../../../etc/passwd")
	link("abs-up", guest+"/../../etc/passwd")
	link("other", "/other/x")
	link("loop1", "loop2")
	link("loop2", guest+"/loop1")
	link("self", guest+"/self")
	link("dangling", guest+"/dir/new")
	// A chain of 40 links (n39 to n0, then b) resolves; one more is
	// ELOOP, as on Linux.
	for i := 1; i <= 40; i++ {
		link("n"+strconv.Itoa(i), guest+"/n"+strconv.Itoa(i-1))
	}
	link("n0", "b")

	s := h.open(t, Config{Mounts: []Mount{{Guest: guest, Host: root}, {Guest: "/other", Host: other}}})
	want := map[string]struct {
		errno Errno
		ino   string // host file whose inode the guest must see
	}{
		"abs":         {ESUCCESS, "b"},
		"absdir/f":    {ESUCCESS, "dir/f"},
		"rel":         {ESUCCESS, "b"},
		"toroot/b":    {ESUCCESS, "b"},
		"toroot":      {ESUCCESS, "."},
		"chain":       {ESUCCESS, "b"},
		"up":          {ESUCCESS, "etc/passwd"},
		"etc-abs":     {ENOENT, ""},
		"hostpath":    {ENOENT, ""},
		"abs-up":      {ENOENT, ""},
		"other":       {ENOENT, ""},
		"loop1":       {ELOOP, ""},
		"self/x":      {ELOOP, ""},
		"dangling":    {ENOENT, ""},
		"n39":         {ESUCCESS, "b"},
		"n40":         {ELOOP, ""},
		"dir/../abs":  {ESUCCESS, "b"},
		"absdir/../b": {ESUCCESS, "b"}, // ".." after a link is lexical in preview1 paths
	}
	for name, w := range want {
		errno, _, ino := s.statPath(name, true)
		if errno != w.errno {
			t.Errorf("stat %q: errno %d, want %d", name, errno, w.errno)
			continue
		}
		if w.ino != "" && ino != inode(t, filepath.Join(root, w.ino)) {
			t.Errorf("stat %q: inode %d, want that of %s", name, ino, w.ino)
		}
	}
	// Not following: the link itself.
	if errno, typ, ino := s.statPath("abs", false); errno != ESUCCESS || typ != filetypeSymlink {
		t.Errorf("lstat abs: errno %d type %d, want the link", errno, typ)
	} else if st, _ := os.Lstat(filepath.Join(root, "abs")); ino != st.Sys().(*syscall.Stat_t).Ino {
		t.Errorf("lstat abs: inode %d, want the link's", ino)
	}

	// readlink gives the link's text as written.
	name := "abs"
	s.write(1000, []byte(name))
	s.must("wasi_snapshot_preview1.path_readlink", 3, 1000, uint64(len(name)), 3000, 256, 2000)
	if got, _ := s.mod.Memory().Read(3000, s.u32(2000)); string(got) != guest+"/b" {
		t.Errorf("readlink abs: %q, want %q", got, guest+"/b")
	}

	// Creating through a dangling absolute link creates its target in the
	// mount.
	name = "dangling"
	s.write(1000, []byte(name))
	s.must("wasi_snapshot_preview1.path_open", 3, lookupSymlinkFollow, 1000, uint64(len(name)), oflagCreat,
		rightFDRead|rightFDWrite, 0, 0, 2000)
	if _, err := os.Stat(filepath.Join(root, "dir", "new")); err != nil {
		t.Errorf("create through %s: %v", name, err)
	}
	// A directory reached through an absolute link holds the new name.
	name = "absdir/made"
	s.write(1000, []byte(name))
	s.must("wasi_snapshot_preview1.path_create_directory", 3, 1000, uint64(len(name)))
	if st, err := os.Stat(filepath.Join(root, "dir", "made")); err != nil || !st.IsDir() {
		t.Errorf("mkdir through absdir: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "guest")); err == nil {
		t.Error("the guest path was created inside the mount")
	}
}

// TestLinksInRootMount: at a mount whose guest path is "/", absolute links
// resolve inside the mount (RESOLVE_IN_ROOT), as before.
func TestLinksInRootMount(t *testing.T) {
	h := newHarness(t)
	os.WriteFile(filepath.Join(h.root, "b"), []byte("B"), 0o644)
	os.Symlink("/b", filepath.Join(h.root, "abs"))
	os.Symlink("/etc/passwd", filepath.Join(h.root, "escape"))
	s := h.open(t, Config{})
	if errno, _, ino := s.statPath("abs", true); errno != ESUCCESS || ino != inode(t, filepath.Join(h.root, "b")) {
		t.Errorf("stat abs: errno %d inode %d", errno, ino)
	}
	if errno, _, _ := s.statPath("escape", true); errno != ENOENT {
		t.Errorf("stat escape: errno %d, want ENOENT", errno)
	}
}

// TestWalkedPathRefusesSwappedLink: a path walked past its links is opened
// with RESOLVE_NO_SYMLINKS, so a directory replaced by a link between the
// walk and the open (another process racing the guest) fails with ELOOP
// instead of leading out of the mount.
func TestWalkedPathRefusesSwappedLink(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "dir"), 0o755)
	os.WriteFile(filepath.Join(root, "dir", "f"), []byte("in"), 0o644)
	os.WriteFile(filepath.Join(outside, "f"), []byte("out"), 0o644)
	os.Symlink("/m/dir", filepath.Join(root, "link"))
	m, err := openMount(Mount{Guest: "/m", Host: root})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(m.rootFD)
	tg := target{mount: m, rel: "link/f"}
	name, err := tg.resolveLinks(true)
	if err != nil || name != "dir/f" {
		t.Fatalf("resolveLinks: %q %v, want dir/f", name, err)
	}
	// The race: dir becomes a link to a directory outside the mount.
	os.RemoveAll(filepath.Join(root, "dir"))
	if err := os.Symlink(outside, filepath.Join(root, "dir")); err != nil {
		t.Fatal(err)
	}
	fd, err := openInRoot(m.rootFD, name, unix.O_RDONLY, 0, resolveInMount|unix.RESOLVE_NO_SYMLINKS)
	if err == nil {
		unix.Close(fd)
		t.Fatal("the walked path was opened through a link swapped in after the walk")
	}
	if err != unix.ELOOP {
		t.Errorf("open after the swap: %v, want ELOOP", err)
	}
	// And the whole lookup, walked again, finds nothing outside.
	if fd, err := tg.open(unix.O_RDONLY, 0); err == nil {
		b := make([]byte, 8)
		n, _ := unix.Read(fd, b)
		unix.Close(fd)
		t.Errorf("open through the swapped link read %q", b[:n])
	}
}

// FuzzLinkStaysInMount: whatever two links in a mount at /m hold and
// whatever path is looked up through them, what opens lies inside the
// mount.
func FuzzLinkStaysInMount(f *testing.F) {
	for _, seed := range [][3]string{
		{"/m/dir", "../../..", "l1/f"},
		{"/etc", "/m/l1", "l2/passwd"},
		{"/m/../..", "/m/l2/..", "l1/l2/x"},
		{"..", "/m/l1/../../", "l2/dir/../../f"},
		{"/m", "/m/m/m", "l2/../l1/dir/f"},
		{"l2", "l1", "l1"},
		{"/", "//m///dir/", "l2/f/"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, link1, link2, lookup string) {
		if strings.ContainsRune(link1+link2+lookup, 0) || link1 == "" || link2 == "" {
			return
		}
		base := t.TempDir()
		root := filepath.Join(base, "m")
		os.MkdirAll(filepath.Join(root, "dir"), 0o755)
		os.WriteFile(filepath.Join(root, "dir", "f"), nil, 0o644)
		os.WriteFile(filepath.Join(base, "secret"), nil, 0o644)
		os.Symlink(link1, filepath.Join(root, "l1"))
		os.Symlink(link2, filepath.Join(root, "l2"))
		m, err := openMount(Mount{Guest: "/m", Host: root})
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(m.rootFD)
		rel := JoinInMount(".", lookup)
		for _, flags := range []uint64{unix.O_PATH, unix.O_PATH | unix.O_NOFOLLOW} {
			fd, err := target{mount: m, rel: rel}.open(flags, 0)
			if err != nil {
				continue
			}
			got, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			unix.Close(fd)
			if err != nil {
				t.Fatal(err)
			}
			if got != root && !strings.HasPrefix(got, root+"/") {
				t.Fatalf("links %q, %q, lookup %q opened %s, outside the mount %s", link1, link2, lookup, got, root)
			}
		}
	})
}
