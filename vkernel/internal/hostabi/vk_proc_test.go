package hostabi

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestProcIDAndCwd: pids are the host's; the initial directory is there
// only when given.
func TestProcIDAndCwd(t *testing.T) {
	h := newHarness(t)
	s := h.open(t, Config{})
	s.must("vkernel.proc_id", 100, 104)
	if pid, ppid := s.u32(100), s.u32(104); int(pid) != unix.Getpid() || int(ppid) != unix.Getppid() {
		t.Errorf("proc_id %d %d, want %d %d", pid, ppid, unix.Getpid(), unix.Getppid())
	}
	if errno, _ := s.call("vkernel.proc_initial_cwd", 200, 64, 100); errno != ENOENT {
		t.Errorf("no initial cwd: errno %d, want ENOENT", errno)
	}
	s = h.open(t, Config{Cwd: "/some/dir", HasCwd: true})
	if errno, _ := s.call("vkernel.proc_initial_cwd", 200, 4, 100); errno != ERANGE || s.u32(100) != 9 {
		t.Errorf("short buffer: errno %d len %d, want ERANGE and 9", errno, s.u32(100))
	}
	s.must("vkernel.proc_initial_cwd", 200, 64, 100)
	if b, _ := s.mod.Memory().Read(200, s.u32(100)); string(b) != "/some/dir" {
		t.Errorf("initial cwd %q", b)
	}
}

// TestProcSpawnWait: proc_spawn hands the hook the routed request (fds
// mapped, preopens kept at their numbers), and proc_wait reaps the child
// with its Linux wait status; without a hook spawn is ENOSYS.
func TestProcSpawnWait(t *testing.T) {
	h := newHarness(t)
	s := h.open(t, Config{})
	s.write(100, []byte("/bin/x\x00"))
	s.write(200, []byte("x\x00arg\x00"))
	if errno, _ := s.call("vkernel.proc_spawn", 100, 6, 200, 6, 0, 0, 0, 0, 0, 0, 300); errno != ENOSYS {
		t.Errorf("spawn without a hook: errno %d, want ENOSYS", errno)
	}
	if errno, _ := s.call("vkernel.proc_wait", uint64(1<<32-1), 0, 300, 304); errno != ECHILD {
		t.Errorf("wait with no child: errno %d, want ECHILD", errno)
	}

	var got *SpawnRequest
	var cmd *exec.Cmd
	s = h.open(t, Config{Hooks: Hooks{Spawn: func(_ context.Context, req *SpawnRequest) (int, Errno) {
		got = req
		// A host process standing in for the child: it exits 3.
		cmd = exec.Command("sh", "-c", "exit 3")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd.Process.Pid, ESUCCESS
	}}})
	os.MkdirAll(filepath.Join(h.root, "bin"), 0o755)
	os.WriteFile(filepath.Join(h.root, "bin", "x"), []byte("x"), 0o755)
	s.write(100, []byte("/bin/x\x00"))
	s.write(200, []byte("x\x00arg\x00"))
	// fd 1 of the child is the parent's fd 1; fd 3 is the preopen.
	s.write(400, []byte{1, 0, 0, 0, 1, 0, 0, 0})
	s.write(500, []byte("/sub"))
	s.must("vkernel.proc_spawn", 100, 6, 200, 6, 0, 0, 500, 4, 400, 1, 300)
	pid := s.u32(300)
	if got == nil || got.GuestPath != "/bin/x" || len(got.Args) != 2 || got.Args[1] != "arg" || got.Cwd != "/sub" || !got.HasCwd {
		t.Fatalf("spawn request %+v", got)
	}
	if len(got.Files) != 2 || got.Files[0].FD != 3 || got.Files[0].Preopen != "/" || got.Files[1].FD != 1 || got.Files[1].HostFD < 0 {
		t.Errorf("files %+v: want the preopen at 3 and fd 1 made a host pipe", got.Files)
	}
	// A preopen's number is not the child's to choose.
	s.write(400, []byte{3, 0, 0, 0, 1, 0, 0, 0})
	if errno, _ := s.call("vkernel.proc_spawn", 100, 6, 200, 6, 0, 0, 0, 0, 400, 1, 300); errno != EBADF {
		t.Errorf("child fd on a preopen: errno %d, want EBADF", errno)
	}
	s.write(700, []byte("/bin/missing"))
	if errno, _ := s.call("vkernel.proc_spawn", 700, 12, 200, 6, 0, 0, 0, 0, 0, 0, 300); errno != ENOENT {
		t.Errorf("spawn of a missing file: errno %d, want ENOENT", errno)
	}
	s.must("vkernel.proc_wait", uint64(pid), 0, 600, 604)
	if rpid, status := s.u32(600), s.u32(604); rpid != pid || status != 3<<8 {
		t.Errorf("wait: pid %d status %#x, want %d and exit 3 (%#x)", rpid, status, pid, 3<<8)
	}
	if errno, _ := s.call("vkernel.proc_wait", uint64(pid), 0, 600, 604); errno != ECHILD {
		t.Errorf("second wait: errno %d, want ECHILD", errno)
	}
	if errno, _ := s.call("vkernel.proc_kill", uint64(pid), 0); errno != ESRCH {
		t.Errorf("kill of a reaped child: errno %d, want ESRCH", errno)
	}
	if errno, _ := s.call("vkernel.proc_wait", uint64(pid), 2, 600, 604); errno != EINVAL {
		t.Errorf("unknown option: errno %d, want EINVAL", errno)
	}
}

// TestProcForkNeedsExports: a module without vkernel_fork_child (the
// trampoline guest) cannot fork.
func TestProcForkNeedsExports(t *testing.T) {
	s := newHarness(t).open(t, Config{Hooks: Hooks{Fork: func(context.Context, *ForkRequest) (int, Errno) {
		t.Fatal("fork hook called")
		return 0, ESUCCESS
	}}})
	if errno, _ := s.call("vkernel.proc_fork", 1, 2, 100); errno != ENOSYS {
		t.Errorf("fork without the exports: errno %d, want ENOSYS", errno)
	}
}
