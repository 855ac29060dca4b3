package vkernel

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// wantLines fails the test for each line missing from out.
func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("missing line %q in output:\n%s", l, out)
		}
	}
}

// TestPosixFiles runs the fsmode guest (vkernel/guests/src/fsmode.c),
// linked with vkposix by both compilers, on a mount shown at its own host
// path, as the NGINX suite's temporary directories are: file modes through
// stat, chmod, access, umask and open/mkdir modes; the directories above
// the mount; absolute links inside it.
func TestPosixFiles(t *testing.T) {
	for _, cc := range compilers {
		t.Run(cc, func(t *testing.T) {
			wasm := guest(t, func() ([]byte, error) { return guests.CPosix("fsmode.c", cc) })
			f := newFixture(t, entry("fsmode", wasm, megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}}))
			k, _ := f.open(t, Options{})
			exec := func(t *testing.T, mounts []Mount, args ...string) string {
				t.Helper()
				out, res := run(t, k, Request{Path: f.wasm("fsmode"), Args: append([]string{"fsmode"}, args...), Mounts: mounts})
				if res.ExitCode != 0 {
					t.Fatalf("fsmode %v: exit %d, output:\n%s", args, res.ExitCode, out)
				}
				return out
			}
			at := func(dir string) []Mount { return []Mount{{Guest: dir, Host: dir}} }

			t.Run("modes", func(t *testing.T) {
				dir := t.TempDir()
				out := exec(t, at(dir), "modes", dir)
				wantLines(t, out,
					"create=0", "created_mode=100600", "fstat_mode=100600 uid_match=1",
					"fchmod=0", "fchmod_mode=100640", "x_before=-1 errno=2",
					"chmod=0", "chmod_mode=100755", "x_after=0", "rw=0",
					// No superuser bypass, even when the tests run as root.
					"chmod0=0", "r_none=-1 errno=2", "f_none=0",
					"fchmodat=0", "fchmodat_mode=100644",
					"umask_old=22", "open_creat=0", "open_creat_mode=100640",
					"chmod_g=0", "reopen_mode=100600", "mkdir=0", "mkdir_mode=40750",
					"creat_dir=-1 errno=31", "rdwr_dir=-1 errno=31", "wronly_dir=-1 errno=31", "rdonly_dir=0",
					"symlink=0", "lstat_link=120777", "lchmod=-1 errno=58",
					"uid="+strconv.Itoa(os.Geteuid())+" gid="+strconv.Itoa(os.Getegid()),
					"chown_self=0", "chown_nochange=0", "chown_other=-1 errno=63", "chown_missing=-1 errno=44")
				for name, want := range map[string]os.FileMode{"f": 0o644, "g": 0o600, "d": 0o750 | os.ModeDir} {
					if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode() != want {
						t.Errorf("host %s: %v %v, want mode %v", name, st.Mode(), err, want)
					}
				}
			})
			t.Run("read-only", func(t *testing.T) {
				dir := t.TempDir()
				os.WriteFile(filepath.Join(dir, "present"), nil, 0o644)
				os.Chmod(filepath.Join(dir, "present"), 0o644)
				out := exec(t, []Mount{{Guest: dir, Host: dir, ReadOnly: true}}, "ro", dir)
				wantLines(t, out, "ro_chmod=-1 errno=69", "ro_w=-1 errno=69", "ro_r=0", "ro_mode=100644")
			})
			t.Run("above", func(t *testing.T) {
				dir := t.TempDir()
				out := exec(t, at(dir), "above", dir)
				wantLines(t, out,
					"full_path=0", "created=40700",
					"parent_mode=40555", "root_mode=40555",
					"mkdir_parent=-1 errno=20", "mkdir_root=-1 errno=20",
					"parent_rx=0", "parent_w=-1 errno=69",
					"missing=-1 errno=44", "mkdir_missing=-1 errno=69", "chmod_parent=-1 errno=69",
					"fstatat_parent=0", "chdir=0", "dotdot_mode=40555", "mkdir_dotdot=-1 errno=20",
					"dotdot_back=40700", "open_back=0", "abs_back=40700", "chdir_back=0", "cwd_clean=1",
					"outside=-1 errno=76")
				if st, err := os.Stat(filepath.Join(dir, "cache", "a")); err != nil || !st.IsDir() {
					t.Errorf("cache/a not made on the host: %v", err)
				}
			})
			t.Run("realpath", func(t *testing.T) {
				dir := t.TempDir()
				out := exec(t, at(dir), "realpath", dir)
				wantLines(t, out, "rel=/d/f", "abs=/d/f", "dots=/d/f", "loop=-1 errno=32", "missing=-1 errno=44",
					"notdir=-1 errno=54", "relative=/d/f", "caller_buf=1")
			})
			t.Run("links", func(t *testing.T) {
				dir := t.TempDir()
				out := exec(t, at(dir), "links", dir)
				wantLines(t, out, "symlink=0", "open_link=0", "through_link=B",
					"readlink_len="+strconv.Itoa(len(dir+"/b")), "readlink_same=1",
					"symlink_escape=0", "open_escape=-1 errno=44")
				if text, err := os.Readlink(filepath.Join(dir, "a")); err != nil || text != filepath.Join(dir, "b") {
					t.Errorf("host link %q %v, want the guest path as written", text, err)
				}
			})
			t.Run("fdwalk", func(t *testing.T) {
				// CPython's os.fwalk and shutil.rmtree (python.wasm is
				// configured with fdopendir) list and remove through fds.
				dir := t.TempDir()
				out := exec(t, at(dir), "fdwalk", dir)
				wantLines(t, out, "open_top=0", "fdopendir=0", "top=f,sub", "again=f,sub",
					"fstat_top_after_closedir=0", "fstatat_sub=0", "sub_is_dir=1", "openat_sub=0", "same_file=1",
					"sub=g", "fdopendir_file=-1 errno=54", "unlinkat_g=0", "unlinkat_sub=0", "unlinkat_f=0",
					"empty=", "rmdir_top=0")
				if _, err := os.Stat(filepath.Join(dir, "walk")); !os.IsNotExist(err) {
					t.Errorf("walk still on the host: %v", err)
				}
			})
		})
	}
}
