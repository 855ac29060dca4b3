package vkernel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// Thread guest modes (guests/src/threads.wat).
const (
	threadSum = iota
	threadExit
	threadTrap
	threadLimit
	threadSpin
)

// threadGuest builds threads.wat in a mode; yield puts a host call in the
// main thread's wait loop.
func threadGuest(t testing.TB, mode, threads, iters int, yield bool) []byte {
	t.Helper()
	return guest(t, func() ([]byte, error) {
		src, err := guests.Source("threads.wat")
		if err != nil {
			return nil, err
		}
		text := strings.NewReplacer(
			"(i32.const MODE)", "(i32.const "+strconv.Itoa(mode)+")",
			"(i32.const NTHREADS)", "(i32.const "+strconv.Itoa(threads)+")",
			"(i32.const ITERS)", "(i32.const "+strconv.Itoa(iters)+")",
		).Replace(string(src))
		y := ""
		if yield {
			y = "(drop (call $sched_yield))"
		}
		text = strings.Replace(text, "        YIELD\n", "        "+y+"\n", 1)
		return guests.WATThreads(text)
	})
}

// goroutinesSettle waits until the goroutine count is back to at most
// base, and fails t with the stacks if it is not within 5 s.
func goroutinesSettle(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines left, %d before the exec:\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func threadKernel(t *testing.T, wasm []byte, threads int, interruptible bool) (*Kernel, *fixture, *syncBuffer) {
	t.Helper()
	f := newFixture(t, entry("threads", wasm, megabinary.Resources{Threads: threads}))
	k, audit := f.open(t, Options{Interruptible: interruptible})
	return k, f, audit
}

func TestThreadsSumWithAtomicsAndMutex(t *testing.T) {
	for _, interruptible := range []bool{false, true} {
		k, f, _ := threadKernel(t, threadGuest(t, threadSum, 8, 20000, false), 8, interruptible)
		base := runtime.NumGoroutine()
		out, res := run(t, k, Request{Path: f.wasm("threads")})
		if res.ExitCode != 0 || out != "ok\n" {
			t.Fatalf("interruptible=%v: exit %d, stdout %q; want 0 and ok (10, 11: a sum is wrong; 12: a spawn failed)",
				interruptible, res.ExitCode, out)
		}
		goroutinesSettle(t, base)
	}
}

func TestThreadExitEndsProcess(t *testing.T) {
	// Interruptible: main, woken from its wait, stops at its loop header;
	// otherwise at the host call in its wait loop.
	for _, interruptible := range []bool{true, false} {
		k, f, _ := threadKernel(t, threadGuest(t, threadExit, 2, 1, !interruptible), 4, interruptible)
		base := runtime.NumGoroutine()
		start := time.Now()
		_, res := run(t, k, Request{Path: f.wasm("threads")})
		if res.ExitCode != 3 {
			t.Fatalf("interruptible=%v: exit %d, want 3 (a thread's proc_exit)", interruptible, res.ExitCode)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("interruptible=%v: the exec took %v to end after the thread's exit", interruptible, d)
		}
		goroutinesSettle(t, base)
	}
}

func TestThreadTrapEndsProcess(t *testing.T) {
	k, f, _ := threadKernel(t, threadGuest(t, threadTrap, 1, 1, false), 4, true)
	base := runtime.NumGoroutine()
	var out bytes.Buffer
	_, err := k.Exec(context.Background(), Request{Path: f.wasm("threads"), Stdout: &out, Stderr: &out})
	var trap *TrapError
	if !errors.As(err, &trap) || !strings.Contains(err.Error(), "thread 1") || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("exec: %v; want a TrapError naming thread 1 and the unreachable", err)
	}
	goroutinesSettle(t, base)
}

func TestThreadLimitEAGAIN(t *testing.T) {
	for _, limit := range []int{0, 3} {
		k, f, audit := threadKernel(t, threadGuest(t, threadLimit, 1, 1, false), limit, true)
		base := runtime.NumGoroutine()
		_, res := run(t, k, Request{Path: f.wasm("threads")})
		if int(res.ExitCode) != limit {
			t.Fatalf("resources.threads %d: exit %d; want %d threads spawned, then -EAGAIN (100: another error)", limit, res.ExitCode, limit)
		}
		if a := audit.String(); !strings.Contains(a, `"thread_spawn"`) || !strings.Contains(a, "resources.threads allows "+strconv.Itoa(limit)) {
			t.Errorf("resources.threads %d: no audit record of the refused spawn:\n%s", limit, a)
		}
		// The threads still waited when main exited: the exit ends them.
		goroutinesSettle(t, base)
	}
}

func TestThreadsStoppedByTimeout(t *testing.T) {
	k, f, _ := threadKernel(t, threadGuest(t, threadSpin, 3, 1, false), 4, true)
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := k.Exec(ctx, Request{Path: f.wasm("threads")})
	if err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("exec: %v; want stopped by the deadline", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the exec took %v to stop", d)
	}
	goroutinesSettle(t, base)
}

func TestThreadsKilledBySignal(t *testing.T) {
	// Neither the spinning threads nor the waiting main thread make a
	// host call: SIGKILL ends them all the same. (An exec given Signals
	// starts with the others caught, for proc_signals.)
	k, f, _ := threadKernel(t, threadGuest(t, threadSpin, 3, 1, false), 4, true)
	base := runtime.NumGoroutine()
	sigs := make(chan os.Signal, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		sigs <- syscall.SIGKILL
	}()
	start := time.Now()
	res, err := k.Exec(context.Background(), Request{Path: f.wasm("threads"), Signals: sigs})
	if err != nil || res.Signal != syscall.SIGKILL || res.ExitCode != 137 {
		t.Fatalf("exec: %v, %+v; want killed by SIGKILL, status 137", err, res)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the exec took %v to end after SIGKILL", d)
	}
	goroutinesSettle(t, base)
}

// TestThreadsWithAOTCache: two threaded modules with the same memory
// limits load, run, and load again from the AOT cache, together and the
// second alone (their memory module's code is sealed once, to its own
// digest, not to the module loaded first).
func TestThreadsWithAOTCache(t *testing.T) {
	f := newFixture(t,
		entry("a", threadGuest(t, threadSum, 2, 100, false), megabinary.Resources{Threads: 2}),
		entry("b", threadGuest(t, threadSum, 3, 100, false), megabinary.Resources{Threads: 3}))
	cache := t.TempDir()
	for round := 0; round < 2; round++ {
		k, _ := f.open(t, Options{CacheDir: cache})
		for _, name := range []string{"a", "b"} {
			if out, res := run(t, k, Request{Path: f.wasm(name)}); res.ExitCode != 0 || out != "ok\n" {
				t.Fatalf("round %d, %s: exit %d, stdout %q", round, name, res.ExitCode, out)
			}
		}
		if st := k.Stats(); round == 1 && (st.AOTLoaded == 0 || st.AOTCompiled != 0) {
			t.Errorf("second load: %d modules from the AOT cache, %d compiled; want all from the cache", st.AOTLoaded, st.AOTCompiled)
		}
	}
	// b alone: its memory module's code was sealed when a's was.
	k, _ := f.open(t, Options{CacheDir: cache, Entries: []string{"b"}})
	if out, res := run(t, k, Request{Path: f.wasm("b")}); res.ExitCode != 0 || out != "ok\n" {
		t.Fatalf("b alone: exit %d, stdout %q", res.ExitCode, out)
	}
}

func TestThreadImportsChecked(t *testing.T) {
	src := func(mem string, spawn, start bool) string {
		s := "(module "
		if spawn {
			s += `(import "wasi" "thread-spawn" (func (param i32) (result i32))) `
		}
		s += mem + ` (func (export "_start"))`
		if start {
			s += ` (func (export "wasi_thread_start") (param i32 i32))`
		}
		return s + ")"
	}
	for _, c := range []struct {
		name, text, want string
	}{
		{"not shared", src(`(import "env" "memory" (memory 1 2))`, false, false), "not shared"},
		{"other name", src(`(import "env" "mem" (memory 1 2 shared))`, true, true), "imported as env.memory"},
		{"spawn without shared memory", src(`(memory 1)`, true, false), "without a shared memory"},
		{"no thread start", src(`(import "env" "memory" (memory 1 2 shared))`, true, false), "exports no wasi_thread_start"},
	} {
		wasm := guest(t, func() ([]byte, error) { return guests.WATThreads(c.text) })
		f := newFixture(t, entry("x", wasm, megabinary.Resources{Threads: 1}))
		err := func() error {
			k, err := Open(context.Background(), f.mb, Options{TrustedKeys: []ed25519.PublicKey{f.pub}})
			if err == nil {
				k.Close(context.Background())
			}
			return err
		}()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Open: %v; want an error saying %q", c.name, err, c.want)
		}
	}
}
