package vkernel

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
	"golang.org/x/sys/unix"
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

// childMemoryEnv marks the process TestThreadedChildMemory runs itself in.
const childMemoryEnv = "VKERNEL_TEST_THREADED_CHILD_MEMORY"

// TestThreadedChildMemory: a process of a guest whose shared memory may
// grow to 1 GiB (python.wasm's maximum) commits only what the guest
// touches, at the top and in a spawned child process. The shared memory is
// a reservation outside the Go heap (sharedRegion): made in the Go heap,
// the whole maximum was one object, which the runtime zeroed when it
// reused freed pages, as in every child process (loading the megabinary
// frees a lot before the exec): each child of the threaded python took
// 1.1 GB and seconds to start. The exec runs in a process of its own,
// whose only children are the vkernel's, so that their peak resident size
// is this process's RUSAGE_CHILDREN maximum.
func TestThreadedChildMemory(t *testing.T) {
	sysroot, err := guests.ThreadsSysroot()
	if err != nil {
		guest(t, func() ([]byte, error) { return nil, err })
	}
	const maxPages = 16384 // 1 GiB
	wasm := guest(t, func() ([]byte, error) { return guests.CThreads("pthreads.c", sysroot, maxPages) })
	if os.Getenv(childMemoryEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestThreadedChildMemory$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), childMemoryEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestThreadedChildMemory") {
			t.Fatalf("the test in a process of its own: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "peak resident size:") {
				t.Log(strings.TrimSpace(line))
			}
		}
		return
	}
	f := newFixture(t, entry("pthreads", wasm, megabinary.Resources{Threads: 4, Processes: 1,
		Mounts: []megabinary.MountRule{{Guest: "/"}}}))
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "pthreads.wasm"), wasm, 0o755); err != nil {
		t.Fatal(err)
	}
	k, _ := f.open(t, Options{CacheDir: t.TempDir()})
	allocs := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	before := allocs()
	// The check spawns "pthreads child", which reads its stdin to its end
	// and exits 7, and waits for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut syncBuffer
	res, err := k.Exec(ctx, Request{Path: f.wasm("pthreads"), Args: []string{"pthreads", "blocking", "/pthreads.wasm", "waitpid"},
		Mounts: []Mount{{Guest: "/", Host: root}}, Stdout: &out, Stderr: &errOut})
	if err != nil || res.ExitCode != 0 || out.String() != "waitpid ok\ndone\n" {
		t.Fatalf("exec: %v, %+v; stdout:\n%sstderr:\n%s", err, res, out.String(), errOut.String())
	}
	const limit = maxPages * 65536 / 4
	if n := allocs() - before; n >= limit {
		t.Errorf("the exec allocated %d MiB in the Go heap; want under %d MiB (the shared memory belongs outside it)", n>>20, limit>>20)
	}
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &ru); err != nil {
		t.Fatal(err)
	}
	if ru.Maxrss == 0 {
		t.Fatal("no child process was reaped")
	}
	if peak := ru.Maxrss << 10; peak >= limit {
		t.Errorf("a child process's peak resident size was %d MiB; want under %d MiB (its shared memory's maximum is %d MiB)", peak>>20, limit>>20, maxPages>>4)
	}
	t.Logf("children's peak resident size: %d MiB", ru.Maxrss>>10)
}
