package vkernel

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
	"golang.org/x/sys/unix"
)

// posixGuest builds the posix guest (vkernel/guests/src/posix.c) linked with
// the vkposix library by compiler.
func posixGuest(t testing.TB, compiler string) []byte {
	return guest(t, func() ([]byte, error) { return guests.CPosix("posix.c", compiler) })
}

// procWorld is a kernel with the posix guest as entry "posix" that may
// have `processes` children, mounted at / from a directory holding it as
// /posix.wasm and /bin/posix, a directory /sub and an unlisted
// /unlisted.wasm.
type procWorld struct {
	k      *Kernel
	audit  *syncBuffer
	root   string
	mounts []Mount
	self   string
}

func newProcWorld(t *testing.T, compiler string, processes int, opts Options) *procWorld {
	t.Helper()
	wasm := posixGuest(t, compiler)
	f := newFixture(t, entry("posix", wasm, megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}, Processes: processes}))
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "posix.wasm"), wasm, 0o755)
	os.WriteFile(filepath.Join(root, "bin", "posix"), wasm, 0o755)
	unlisted := append(append([]byte(nil), wasm...), 0) // one byte more: another hash
	os.WriteFile(filepath.Join(root, "unlisted.wasm"), unlisted, 0o755)
	if opts.CacheDir == "" {
		// Children load the compiled guest from the AOT cache instead of
		// compiling it again.
		opts.CacheDir = t.TempDir()
	}
	k, audit := f.open(t, opts)
	return &procWorld{k: k, audit: audit, root: root, mounts: []Mount{{Guest: "/", Host: root}}, self: "/posix.wasm"}
}

// run runs the posix guest with args in the world, under a minute.
func (w *procWorld) run(t *testing.T, args ...string) (string, *Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	res, err := w.k.Exec(ctx, Request{Path: filepath.Join(w.root, "posix.wasm"), Args: append([]string{"posix"}, args...),
		Env: []string{"PATH=/nope:/bin"}, Mounts: w.mounts, Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatalf("posix %v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errOut.String())
	}
	if errOut.Len() > 0 {
		t.Logf("posix %v stderr: %s", args, errOut.String())
	}
	return out.String(), res
}

func wantFields(t *testing.T, out string, kv ...string) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		if got := field(out, kv[i]); got != kv[i+1] {
			t.Errorf("%s=%q, want %q; output:\n%s", kv[i], got, kv[i+1], out)
		}
	}
}

var compilers = []string{guests.Clang14, guests.Clang19}

// TestPosix runs the vkposix library's calls on real child processes, with
// the library built by both compilers the recipes use.
func TestPosix(t *testing.T) {
	for _, cc := range compilers {
		t.Run(cc, func(t *testing.T) {
			w := newProcWorld(t, cc, 8, Options{})
			self := w.self
			t.Run("pipe", func(t *testing.T) {
				out, _ := w.run(t, "pipe")
				wantFields(t, out, "read", "5", "got", "hello", "nonblock_read", "-1", "errno", "6", "eof_read", "0")
			})
			t.Run("dup", func(t *testing.T) {
				out, _ := w.run(t, "dup", self)
				wantFields(t, out, "dup_next", "1", "f_dupfd", "20", "f_dupfd_cloexec", "30", "dup2", "40", "dup3", "41",
					"dup_closed", "-1", "dup_closed_errno", "8", "dup3_same", "-1", "dup3_same_errno", "28",
					"read_via_dup2", "5", "got", "xxxxx", "child", "exited", "child_via_copy", "child-wrote")
			})
			t.Run("spawn-mask", func(t *testing.T) {
				out, _ := w.run(t, "spawn-mask", self)
				// Two children survive SIGUSR1 (the mask asked for, then the
				// parent's inherited); the third, unmasked, dies of it. None
				// sees the variable that carried the mask.
				wantFields(t, out, "setsigmask", "exited", "inherited", "exited", "unmasked", "signaled", "sig", "10")
				if got := strings.Count(out, "blocked=1 env=unset\n"); got != 2 {
					t.Errorf("output %q: want two children with SIGUSR1 blocked and no mask variable, got %d", out, got)
				}
				if got := strings.Count(out, "blocked=0 env=unset\n"); got != 1 || strings.Count(out, "alive=1") != 2 {
					t.Errorf("output %q: want one unmasked child, killed before alive=1", out)
				}
			})
			t.Run("spawn-umask", func(t *testing.T) {
				// A spawned child has its parent's umask, applied to what it
				// creates; a variable of the carrier's name the caller passes
				// does not set it, and no child sees the variable.
				out, _ := w.run(t, "spawn-umask", self)
				wantFields(t, out, "u027", "exited", "u022", "exited", "passed", "exited")
				want := "umask=27 env=unset\nmkdir_mode=750\nu027=exited code=0\n" +
					"umask=22 env=unset\nmkdir_mode=755\nu022=exited code=0\n" +
					"umask=22 env=unset\nmkdir_mode=755\npassed=exited code=0\n"
				if out != want {
					t.Errorf("output:\n%s\nwant:\n%s", out, want)
				}
			})
			t.Run("sendfile", func(t *testing.T) {
				out, _ := w.run(t, "sendfile")
				wantFields(t, out, "offset_sent", "6", "offset_after", "10", "in_pos", "0", "nooff_sent", "6",
					"nooff_in_pos", "16", "eof_sent", "0", "out", "456789abcdef", "to_pipe", "3", "pipe_got", "012",
					"from_pipe", "-1", "from_pipe_errno", "28", "from_pipe_off", "-1", "from_pipe_off_errno", "70", "bad_fd", "-1", "bad_fd_errno", "8")
			})
			t.Run("copy", func(t *testing.T) {
				out, _ := w.run(t, "copy")
				// out: "\0" then "23456" at 1, then "89" at its own offset 0;
				// splice writes "abcd" at 2.
				wantFields(t, out, "cfr", "5", "cfr_oi", "7", "cfr_oo", "6", "cfr_in_pos", "10",
					"cfr_nooff", "2", "cfr_out_pos", "2", "cfr_out", "893456",
					"cfr_flags", "-1", "cfr_flags_errno", "28", "cfr_pipe", "-1", "cfr_pipe_errno", "28",
					"splice_in", "6", "splice_si", "9", "splice_got", "345678",
					"splice_out", "4", "splice_so", "6", "splice_file", "89abcd",
					"splice_files", "-1", "splice_files_errno", "28", "splice_pipe_off", "-1", "splice_pipe_off_errno", "70")
			})
			t.Run("eintr-race", func(t *testing.T) {
				// test_file_eintr's pattern: a signal sent while the child
				// reads must run its handler, never kill it.
				out, _ := w.run(t, "eintr-loop", self, "20")
				wantFields(t, out, "runs", "20", "killed", "0")
			})
			t.Run("capture", func(t *testing.T) {
				out, _ := w.run(t, "capture", self, "echo", "from-child")
				if !strings.Contains(out, "captured=[from-child\n]") {
					t.Errorf("output %q: want the child's stdout captured through the pipe", out)
				}
				wantFields(t, out, "child", "exited", "code", "0")
			})
			t.Run("raw-bytes", func(t *testing.T) {
				// Not UTF-8: argv and the environment are bytes.
				out, _ := w.run(t, "capture", self, "echo", "a\xff\xfeb")
				if !strings.Contains(out, "captured=[a\xff\xfeb\n]") {
					t.Errorf("output %q: want the child's argv byte for byte", out)
				}
			})
			t.Run("exit-status", func(t *testing.T) {
				out, _ := w.run(t, "status", self, "exit", "3")
				wantFields(t, out, "child", "exited", "code", "3")
			})
			t.Run("env", func(t *testing.T) {
				out, _ := w.run(t, "spawn-env", self)
				wantFields(t, out, "env", "from-parent", "child", "exited")
			})
			t.Run("cwd", func(t *testing.T) {
				out, _ := w.run(t, "spawn-cwd", self, "/sub")
				wantFields(t, out, "cwd", "/sub")
			})
			t.Run("spawnp", func(t *testing.T) {
				out, _ := w.run(t, "spawnp", "posix", "echo", "via-path")
				if !strings.Contains(out, "via-path\n") {
					t.Errorf("output %q: want the program found through PATH to run", out)
				}
				wantFields(t, out, "child", "exited", "code", "0")
			})
			t.Run("ids", func(t *testing.T) {
				out, _ := w.run(t, "ids-child", self)
				parent := field(out, "parent_pid")
				if parent != strconv.Itoa(os.Getpid()) {
					t.Errorf("an in-process guest's pid %s, want this process's %d", parent, os.Getpid())
				}
				if field(out, "ppid") != parent || field(out, "pid") == parent || field(out, "pid") == "" {
					t.Errorf("child pid %s ppid %s, parent %s: want the child's own host pid and the parent's", field(out, "pid"), field(out, "ppid"), parent)
				}
			})
			t.Run("kill", func(t *testing.T) {
				out, _ := w.run(t, "kill-child", self, "15", "sleep")
				wantFields(t, out, "child", "signaled", "sig", "15", "kill_after_wait", "-1", "kill_outside", "-1")
				if !strings.Contains(out, "kill_after_wait=-1 errno=71") || !strings.Contains(out, "kill_outside=-1 errno=71") {
					t.Errorf("output %q: want ESRCH (71) for a reaped child and for a process outside the tree", out)
				}
				// A child computing without host calls dies at once of a
				// signal it leaves at the default action.
				out, _ = w.run(t, "kill-child", self, "15", "spin")
				wantFields(t, out, "child", "signaled", "sig", "15")
				out, _ = w.run(t, "kill-child", self, "9", "spin")
				wantFields(t, out, "child", "signaled", "sig", "9")
			})
			t.Run("kill-in-tree", func(t *testing.T) {
				// A child process signals its parent, itself a child
				// process: the parent's handler runs.
				out, _ := w.run(t, "status", self, "kill-parent", self)
				wantFields(t, out, "kill_parent", "0", "signaller", "exited", "parent_hits", "1", "child", "exited")
				// The top of the tree is not a child process: it is
				// outside what a guest may signal.
				out, _ = w.run(t, "status", self, "signal-parent")
				wantFields(t, out, "kill_parent", "-1", "errno", "71")
			})
			t.Run("wnohang", func(t *testing.T) {
				out, _ := w.run(t, "wnohang", self)
				wantFields(t, out, "early", "0", "child", "exited", "none_left", "-1")
				if !strings.Contains(out, "none_left=-1 errno=12") {
					t.Errorf("output %q: want ECHILD (12) with no child left", out)
				}
			})
			t.Run("raise", func(t *testing.T) {
				out, _ := w.run(t, "raise")
				wantFields(t, out, "handled", "1", "ignored_alive", "1")
			})
			t.Run("mask", func(t *testing.T) {
				out, res := w.run(t, "mask")
				wantFields(t, out, "blocked_hits", "0", "pending", "1", "unblocked_hits", "1", "default_blocked_alive", "1")
				if strings.Contains(out, "not reached") || res.Signal != syscall.SIGUSR2 || res.ExitCode != 128+12 {
					t.Errorf("signal %v exit %d, output %q: want killed by SIGUSR2 once it is unblocked", res.Signal, res.ExitCode, out)
				}
			})
			t.Run("alarm", func(t *testing.T) {
				out, _ := w.run(t, "alarm")
				wantFields(t, out, "pause", "-1", "errno", "27", "hits", "1")
				out, res := w.run(t, "alarm-default")
				if res.Signal != syscall.SIGALRM || strings.Contains(out, "not reached") {
					t.Errorf("signal %v, output %q: want killed by SIGALRM", res.Signal, out)
				}
			})
			t.Run("itimer", func(t *testing.T) {
				out, _ := w.run(t, "itimer")
				wantFields(t, out, "value_s", "5", "interval_us", "500000", "old_interval_us", "500000", "disarmed", "1", "alarm_left", "30")
			})
			t.Run("eintr", func(t *testing.T) {
				out, _ := w.run(t, "eintr", self)
				wantFields(t, out, "read", "-1", "errno", "27", "hits_pos", "1")
				out, _ = w.run(t, "restart", self)
				wantFields(t, out, "read", "1", "got", "x", "hits_pos", "1")
			})
			t.Run("sigpipe", func(t *testing.T) {
				out, res := w.run(t, "sigpipe")
				if res.Signal != syscall.SIGPIPE || strings.Contains(out, "write=") {
					t.Errorf("signal %v, output %q: want killed by SIGPIPE", res.Signal, out)
				}
				out, _ = w.run(t, "sigpipe-ignored")
				wantFields(t, out, "write", "-1", "errno", "64")
			})
			t.Run("sigchld", func(t *testing.T) {
				out, _ := w.run(t, "sigchld", self)
				if n, _ := strconv.Atoi(field(out, "sigchld_hits")); n < 1 {
					t.Errorf("output %q: want the SIGCHLD handler run", out)
				}
			})
			t.Run("poll", func(t *testing.T) {
				out, _ := w.run(t, "poll", self)
				wantFields(t, out, "early", "0", "poll", "1", "revents_in", "1", "got", "y", "hangup", "1")
			})
			t.Run("fork", func(t *testing.T) {
				out, _ := w.run(t, "fork")
				if !strings.Contains(out, "from_child=[value=2 arg=stack-arg own_pid=1 parent=1 ctors=1]") {
					t.Errorf("output %q: want the child to see memory as at the call (value 2, the stack argument), its own pid and the parent's, and no constructor run again", out)
				}
				wantFields(t, out, "parent_value", "3", "child", "exited", "code", "7")
				out, _ = w.run(t, "fork-heap", "16")
				if sum := field(out, "parent_sum"); sum == "" || field(out, "child_sum") != sum {
					t.Errorf("output %q: want the child to read the 16 MiB heap as the parent wrote it", out)
				}
			})
		})
	}
}

// TestSpawnDenied: an unlisted file is refused in the parent (EACCES),
// with an audit record naming the guest path and the asking entry.
func TestSpawnDenied(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 8, Options{})
	out, _ := w.run(t, "deny", "/unlisted.wasm")
	wantFields(t, out, "spawn_errno", "2")
	var found bool
	for _, r := range auditRecords(t, w.audit.String()) {
		if r.Action == "exec" && r.Decision == "deny" && r.GuestPath == "/unlisted.wasm" && r.Parent == "posix" &&
			r.Path == filepath.Join(w.root, "unlisted.wasm") && r.Hash != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit denial of /unlisted.wasm by posix; log:\n%s", w.audit.String())
	}
}

// TestChildAuditReachesParent: a child's own exec decision, made in its
// host process, is in the parent's log with the child's pid, as is the
// grandchild's.
func TestChildAuditReachesParent(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 8, Options{})
	out, _ := w.run(t, "status", w.self, "status", w.self, "exit", "0")
	wantFields(t, out, "child", "exited", "code", "0")
	pids := map[int]bool{}
	for _, r := range auditRecords(t, w.audit.String()) {
		if r.Action == "exec" && r.Decision == "allow" && r.GuestPath == "/posix.wasm" && r.Pid != 0 && r.Pid != os.Getpid() {
			pids[r.Pid] = true
		}
	}
	// Each spawn is recorded by the parent (naming the child's pid) and
	// by the child itself: two children, two pids.
	if len(pids) != 2 {
		t.Fatalf("exec records of %d child pids, want 2 (child and grandchild); log:\n%s", len(pids), w.audit.String())
	}
}

// TestProcessLimit: spawning or forking in a loop stops at the entry's
// processes with EAGAIN; the children are torn down with the exec.
func TestProcessLimit(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 3, Options{})
	out, _ := w.run(t, "spawn-loop", w.self)
	wantFields(t, out, "spawned", "3", "errno", "6")
	out, _ = w.run(t, "fork-loop")
	wantFields(t, out, "forked", "3", "errno", "6")
	var forks int
	for _, r := range auditRecords(t, w.audit.String()) {
		if r.Action == "fork" && r.Decision == "allow" && r.Pid != 0 {
			forks++
		}
	}
	if forks != 3 {
		t.Errorf("%d fork records, want 3", forks)
	}
}

// TestNoProcesses: an entry whose resources allow no processes is refused
// (EACCES) with an audit record; a kernel without a child command answers
// ENOSYS.
func TestNoProcesses(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 0, Options{})
	out, _ := w.run(t, "status", w.self, "exit", "0")
	wantFields(t, out, "spawn_errno", "2")
	if !strings.Contains(w.audit.String(), `"action":"spawn"`) {
		t.Errorf("no spawn denial in the audit log:\n%s", w.audit.String())
	}
	w = newProcWorld(t, guests.Clang14, 8, Options{ChildCommand: []string{}})
	out, _ = w.run(t, "status", w.self, "exit", "0")
	wantFields(t, out, "spawn_errno", "52")
}

// TestProcTeardown: a tree of processes (a chain of three below the
// guest) is gone when the exec's context ends (cancelled, or its deadline)
// or the guest exits: no host process, zombies included, no host fd and
// no goroutine outlives the exec. The last process may be computing
// without host calls.
func TestProcTeardown(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 8, Options{})
	// A first exec warms up what stays (the AOT cache, pools).
	w.run(t, "status", w.self, "exit", "0")
	for _, c := range []struct {
		name, leaf string
		end        func(cancel context.CancelFunc)
		want       error
	}{
		{"cancel", "sleep", func(cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"cancel-spinning", "spin", func(cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"deadline", "spin", func(context.CancelFunc) {}, context.DeadlineExceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			fds, goroutines := openFDs(t), runtime.NumGoroutine()
			out := &lineWriter{lines: make(chan string, 64)}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := w.k.Exec(ctx, Request{Path: filepath.Join(w.root, "posix.wasm"), Args: []string{"posix", "tree", w.self, "3", c.leaf},
					Mounts: w.mounts, Stdout: out})
				done <- err
			}()
			var pids []int
			for {
				l := nextLine(t, out.lines, done)
				if l == "leaf" {
					break
				}
				if v, ok := strings.CutPrefix(l, "tree_pid="); ok {
					pid, _ := strconv.Atoi(v)
					pids = append(pids, pid)
				}
			}
			if len(pids) != 4 || pids[0] != os.Getpid() {
				t.Fatalf("tree pids %v: want this process and three children", pids)
			}
			c.end(cancel)
			select {
			case err := <-done:
				if !errors.Is(err, c.want) {
					t.Fatalf("exec ended with %v, want stopped by %v", err, c.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the exec did not end within 30 s of its context")
			}
			for _, pid := range pids[1:] {
				if err := unix.Kill(pid, 0); err != unix.ESRCH {
					t.Errorf("child process %d outlived the exec (kill 0: %v)", pid, err)
				}
			}
			// Goroutines end just after their work (timers, copiers);
			// give them a moment.
			var nowFDs, nowG int
			for i := 0; i < 50; i++ {
				nowFDs, nowG = openFDs(t), runtime.NumGoroutine()
				if nowFDs <= fds && nowG <= goroutines {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if nowFDs > fds {
				t.Errorf("%d host fds open after the exec, %d before", nowFDs, fds)
			}
			if nowG > goroutines {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines after the exec, %d before:\n%s", nowG, goroutines, buf[:runtime.Stack(buf, true)])
			}
		})
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestWarmChildren: from an exec's second child of an entry on, a warm
// child of the entry waits, started ahead; spawns and forks that follow
// run in it, each in a process of its own, and the last warm child, never
// used, ends with the exec: no process of it is left.
func TestWarmChildren(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 4, Options{})
	const n = 5
	before := w.k.Stats()
	out, _ := w.run(t, "spawn-seq", w.self, strconv.Itoa(n))
	for i := 0; i < n; i++ {
		wantFields(t, out, "child"+strconv.Itoa(i), waitStatus(i))
	}
	after := w.k.Stats()
	if cold, warm, ran := after.ChildStarts-before.ChildStarts, after.WarmStarts-before.WarmStarts, after.WarmRuns-before.WarmRuns; cold != 2 || warm != n-1 || ran != n-2 {
		t.Errorf("%d spawns: %d started on request, %d warm, %d run by a warm one; want 2, %d, %d", n, cold, warm, ran, n-1, n-2)
	}
	if kids := childProcesses(t); len(kids) > 0 {
		t.Errorf("processes left after the exec: %v", kids)
	}
	before = after
	out, _ = w.run(t, "fork-seq", strconv.Itoa(n))
	for i := 0; i < n; i++ {
		wantFields(t, out, "child"+strconv.Itoa(i), waitStatus(i))
	}
	after = w.k.Stats()
	if ran := after.WarmRuns - before.WarmRuns; ran != n-2 {
		t.Errorf("%d forks: %d run by a warm child, want %d", n, ran, n-2)
	}
	if kids := childProcesses(t); len(kids) > 0 {
		t.Errorf("processes left after the exec: %v", kids)
	}
	// Every spawn and fork ran in a process of its own, in the audit log
	// by its pid.
	pids := map[int]bool{}
	for _, r := range auditRecords(t, w.audit.String()) {
		if r.Pid != 0 && r.Decision == "allow" && (r.Action == "fork" || r.Parent != "") {
			pids[r.Pid] = true
		}
	}
	if len(pids) != 2*n {
		t.Errorf("%d child pids in the audit records, want %d", len(pids), 2*n)
	}
}

// waitStatus is printf's %#x of the wait status of an exit with code.
func waitStatus(code int) string {
	if code == 0 {
		return "0"
	}
	return "0x" + strconv.FormatInt(int64(code)<<8, 16)
}

// childProcesses lists this process's child processes, zombies included.
func childProcesses(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			kids = append(kids, pid)
		}
	}
	return kids
}
