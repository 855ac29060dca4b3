package hostabi

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStdioAndPreopenFiles: a process whose fd table is built from
// StdioFile and PreopenFile (a child run for a service) has what a
// top-level exec has: stdio at 0-2 with stdio's rights on the host fds
// given, and each mount's preopen at 3... with its guest path.
func TestStdioAndPreopenFiles(t *testing.T) {
	top, err := NewProcess(Config{Mounts: []Mount{{Guest: "/", Host: t.TempDir()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	var files []InheritedFile
	for i := 0; i < 3; i++ {
		fd, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, StdioFile(uint32(i), fd))
	}
	dir := t.TempDir()
	files = append(files, PreopenFile(3, 0, "/"), PreopenFile(4, 1, "/data"))
	p, err := NewProcess(Config{Mounts: []Mount{{Guest: "/", Host: dir}, {Guest: "/data", Host: dir, ReadOnly: true}}, Files: files})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for fd := uint32(0); fd < 3; fd++ {
		got, want := p.fds.get(fd), top.fds.get(fd)
		if got == nil || got.hostFD < 0 || got.filetype != want.filetype || got.rights != want.rights {
			t.Errorf("fd %d: %+v, want a host fd like the top-level %+v", fd, got, want)
		}
	}
	want := top.fds.get(3)
	for fd, guest := range map[uint32]string{3: "/", 4: "/data"} {
		got := p.fds.get(fd)
		if got == nil || got.preopen != guest || got.mount == nil || got.filetype != want.filetype || got.rights != want.rights || got.inheriting != want.inheriting {
			t.Errorf("fd %d: %+v, want the preopen of %s like the top-level %+v", fd, got, guest, want)
		}
	}
	if p.fds.get(4).mount != p.mounts[1] {
		t.Error("fd 4 is not the second mount's preopen")
	}
}
