package vkernel

import (
	"strings"
	"testing"

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
