package vkernel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// TestPthreadsLibc runs guests/src/pthreads.c, built with clang-19 for
// wasm32-wasi-threads against the threads-enabled wasi-libc
// (images/wasi-libc-threads), on the vkernel: create/join, mutex,
// condition variable, TLS, errno per thread, malloc from threads, detached
// threads, semaphores, once, thread-specific data, a timed wait, stdio
// from threads, the entry's thread limit, and host calls of one thread
// while another sleeps in poll_oneoff (hostabi releases the process's lock
// around that sleep).
func TestPthreadsLibc(t *testing.T) {
	sysroot, err := guests.ThreadsSysroot()
	if err != nil {
		guest(t, func() ([]byte, error) { return nil, err })
	}
	wasm := guest(t, func() ([]byte, error) { return guests.CThreads("pthreads.c", sysroot, 1024) })
	for _, interruptible := range []bool{false, true} {
		f := newFixture(t, entry("pthreads", wasm, megabinary.Resources{Threads: 4}))
		k, _ := f.open(t, Options{Interruptible: interruptible})
		out, res := run(t, k, Request{Path: f.wasm("pthreads")})
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.Contains(line, " FAIL") {
				t.Errorf("interruptible=%v: %s", interruptible, line)
			}
		}
		if res.ExitCode != 0 || !strings.HasSuffix(out, "done\n") {
			t.Fatalf("interruptible=%v: exit %d, stdout:\n%s", interruptible, res.ExitCode, out)
		}
		for _, name := range []string{"join", "mutex", "cond", "tls", "errno", "malloc", "detached", "once", "specific", "timedwait", "stdio", "limit", "sleeper"} {
			if !strings.Contains(out, "\n"+name+" ok\n") && !strings.HasPrefix(out, name+" ok\n") {
				t.Errorf("interruptible=%v: no %q line in:\n%s", interruptible, name+" ok", out)
			}
		}
	}
}

// TestPthreadsBlocking runs "pthreads blocking" (guests/src/pthreads.c),
// one exec per check: in each a thread is blocked in a host call while
// the main thread makes the host call that ends the wait: a read of an
// empty pipe and the write (pipe_read), sock_accept and the connect
// (accept), poll() on a pipe and the write (poll), proc_wait for a child
// and the close of the child's stdin that ends it (waitpid), and a close
// of the fd a thread is blocked reading, which returns (close_blocked).
// Were the blocked call to hold the process's lock while it waits, the
// main thread's call would wait for ever: the exec's time limit ends such
// a guest, and the check fails.
func TestPthreadsBlocking(t *testing.T) {
	sysroot, err := guests.ThreadsSysroot()
	if err != nil {
		guest(t, func() ([]byte, error) { return nil, err })
	}
	wasm := guest(t, func() ([]byte, error) { return guests.CThreads("pthreads.c", sysroot, 1024) })
	f := newFixture(t, entry("pthreads", wasm, megabinary.Resources{Threads: 4, Processes: 1,
		Mounts: []megabinary.MountRule{{Guest: "/"}}}))
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "pthreads.wasm"), wasm, 0o755); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir() // the child loads the compiled guest from it
	for _, interruptible := range []bool{false, true} {
		k, _ := f.open(t, Options{Interruptible: interruptible, CacheDir: cache})
		for _, check := range []string{"pipe_read", "accept", "poll", "waitpid", "close_blocked"} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			var out, errOut syncBuffer
			start := time.Now()
			res, err := k.Exec(ctx, Request{Path: f.wasm("pthreads"), Args: []string{"pthreads", "blocking", "/pthreads.wasm", check},
				Mounts: []Mount{{Guest: "/", Host: root}}, Stdout: &out, Stderr: &errOut})
			cancel()
			got := out.String()
			if err != nil || res.ExitCode != 0 || got != check+" ok\ndone\n" {
				code := -1
				if res != nil {
					code = int(res.ExitCode)
				}
				t.Errorf("interruptible=%v %s (after %v; a blocked call that held up the others would be stopped by the time limit): exit %d, %v; stdout:\n%sstderr:\n%s",
					interruptible, check, time.Since(start).Round(time.Millisecond), code, err, got, errOut.String())
			}
		}
	}
}
