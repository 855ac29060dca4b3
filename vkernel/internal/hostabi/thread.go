package hostabi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// ModuleWasi is the module of the wasi-threads proposal's one function,
// thread-spawn.
const ModuleWasi = "wasi"

// ThreadStartExport is the export a thread starts in (wasi-threads):
// wasi_thread_start(tid i32, start_arg i32).
const ThreadStartExport = "wasi_thread_start"

// maxTID bounds thread ids: wasi-threads gives positive ids below 2^29
// (wasi-libc keeps the high bits of a mutex's owner word for itself).
const maxTID = 1<<29 - 1

// Threads lets a process run threads (ABI.md, "Threads"): the guest's
// module imports a shared memory, and each thread is another instance of
// the same compiled module over it, started in wasi_thread_start.
type Threads struct {
	// Runtime is the runtime the guest's module was compiled in.
	Runtime wazero.Runtime
	// Module is the guest's compiled module, instantiated once per thread.
	Module wazero.CompiledModule
	// Memory is the module that exports the process's shared memory as
	// "memory": every instance imports it as env.memory.
	Memory api.Module
	// Max bounds the threads alive at once besides the main one; a spawn
	// past it answers -EAGAIN and is audited.
	Max int
}

// threadGroup is a process's threads: the main instance and those
// thread-spawn started. The process ends once, for all of them (end).
type threadGroup struct {
	cfg Threads
	// ctx is what the threads run under: the process's, with the import
	// resolver that gives them the shared memory (StartThreads).
	ctx context.Context
	// cancel ends ctx: blocking host calls of every thread return.
	cancel func()

	mu   sync.Mutex
	last uint32                // the last tid given
	live map[uint32]api.Module // running threads (nil while instantiating)
	main api.Module
	wg   sync.WaitGroup // the threads' goroutines

	// mainWaits counts the main instance's waits that watch the signal
	// wake-up (pollLoop): while one does, it takes each caught signal.
	mainWaits atomic.Int32

	endOnce sync.Once
	ended   atomic.Bool
	endCh   chan struct{}
	code    uint32 // the process's exit status, once ended
	err     error  // the trap that ended it, if one did
}

// threadSpawn is wasi-threads' thread-spawn(start_arg) -> tid: starts a
// thread, another instance of the guest's module over the same shared
// memory, which calls wasi_thread_start(tid, start_arg). It answers the
// new thread's id (1 to 2^29-1), or a negative errno: -EAGAIN past the
// entry's resources.threads (audited) or when the instance cannot be made,
// -ENOSYS in a process without a shared memory.
// See https://github.com/WebAssembly/wasi-threads
var threadSpawn = &hostFunc{
	module: ModuleWasi, name: "thread-spawn",
	params: []string{"start_arg"}, types: []api.ValueType{i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		return Errno(uint32(p.spawnThread(uint32(s[0]))))
	},
}

// negErrno is a thread-spawn failure: the errno negated, as an i32.
func negErrno(e Errno) int32 { return -int32(e) }

func (p *Process) spawnThread(arg uint32) int32 {
	g := p.thr
	if g == nil || g.ctx == nil {
		return negErrno(ENOSYS)
	}
	g.mu.Lock()
	if g.ended.Load() {
		g.mu.Unlock()
		return negErrno(EAGAIN)
	}
	if len(g.live) >= g.cfg.Max {
		g.mu.Unlock()
		p.audit("thread_spawn", fmt.Sprintf("%d threads running", len(g.live)), "deny",
			fmt.Sprintf("resources.threads allows %d", g.cfg.Max))
		return negErrno(EAGAIN)
	}
	tid := g.last
	for {
		tid = tid%maxTID + 1
		if _, used := g.live[tid]; !used {
			break
		}
	}
	g.last = tid
	g.live[tid] = nil
	g.wg.Add(1)
	g.mu.Unlock()
	// The module's start section (LLVM's __wasm_init_memory) runs again
	// here; it finds the shared memory initialised and leaves it.
	mod, err := g.cfg.Runtime.InstantiateModule(g.ctx, g.cfg.Module,
		wazero.NewModuleConfig().WithName("").WithStartFunctions())
	g.mu.Lock()
	if err != nil || g.ended.Load() {
		delete(g.live, tid)
		g.mu.Unlock()
		g.wg.Done()
		if mod != nil {
			mod.Close(context.Background())
		}
		if err != nil {
			p.audit("thread_spawn", fmt.Sprintf("tid %d", tid), "deny", "instantiating: "+err.Error())
		}
		return negErrno(EAGAIN)
	}
	g.live[tid] = mod
	g.mu.Unlock()
	go p.runThread(mod, tid, arg)
	return int32(tid)
}

// runThread runs one thread to its end. A thread that returns ends alone;
// one that calls proc_exit or traps ends the process.
func (p *Process) runThread(mod api.Module, tid, arg uint32) {
	g := p.thr
	defer g.wg.Done()
	defer func() {
		g.mu.Lock()
		delete(g.live, tid)
		g.mu.Unlock()
		mod.Close(context.Background())
	}()
	_, err := mod.ExportedFunction(ThreadStartExport).Call(g.ctx, uint64(tid), uint64(arg))
	if err == nil || g.ended.Load() {
		return
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeContextCanceled, sys.ExitCodeDeadlineExceeded:
			// The exec's context ended: the exec ends the process.
			return
		}
		p.endThreads(exit.ExitCode(), nil)
		return
	}
	p.endThreads(134, fmt.Errorf("thread %d: %w", tid, err))
}

// StartThreads readies a process made with Config.Threads: ctx is what
// its threads run under (the process's context, with the import resolver
// that gives the shared memory), cancel ends it (the process's end calls
// it, so that blocking host calls return), main is the main instance.
// Without Config.Threads it does nothing.
func (p *Process) StartThreads(ctx context.Context, cancel func(), main api.Module) {
	if p.thr == nil {
		return
	}
	p.thr.ctx, p.thr.cancel, p.thr.main = ctx, cancel, main
}

// Ended is closed once a thread has ended the process (proc_exit, a trap)
// or EndThreads has; nil for a process without threads.
func (p *Process) Ended() <-chan struct{} {
	if p.thr == nil {
		return nil
	}
	return p.thr.endCh
}

// ThreadExit returns how the process's threads ended it: its exit status
// and, when a thread trapped, the trap. ok is false while no thread has
// ended it (the main instance's own end is the exec's).
func (p *Process) ThreadExit() (code uint32, trap error, ok bool) {
	if p.thr == nil || !p.thr.ended.Load() {
		return 0, nil, false
	}
	return p.thr.code, p.thr.err, true
}

// endThreads ends the process with status code (and trap, when a thread
// trapped): every instance is closed, the waiters on the shared memory are
// woken so that they reach a point where they stop, and Ended is closed.
// The first call decides; later ones do nothing.
func (p *Process) endThreads(code uint32, trap error) {
	g := p.thr
	g.endOnce.Do(func() {
		g.code, g.err = code, trap
		g.ended.Store(true)
		close(g.endCh)
		g.mu.Lock()
		mods := make([]api.Module, 0, len(g.live)+1)
		if g.main != nil {
			mods = append(mods, g.main)
		}
		for _, m := range g.live {
			if m != nil {
				mods = append(mods, m)
			}
		}
		g.mu.Unlock()
		for _, m := range mods {
			_ = m.CloseWithExitCode(context.Background(), code)
		}
		if g.cancel != nil {
			g.cancel()
		}
		wakeAll(g.cfg.Memory)
	})
}

// threadDrain bounds how long EndThreads waits for the threads to stop.
const threadDrain = 2 * time.Second

// EndThreads ends a process's threads as it ends with status code, and
// waits for them, and for main to be closed (the main instance's end;
// nil: not waited for), to stop: a thread stops at its next host
// call, or in an Interruptible kernel at its next function entry or loop
// header (the waiters on the shared memory are woken until then). It
// reports whether every thread stopped within threadDrain; one computing
// without host calls in a kernel that is not Interruptible runs on (as a
// single-threaded guest would), and the shared memory stays with it.
func (p *Process) EndThreads(code uint32, main <-chan struct{}) bool {
	g := p.thr
	if g == nil {
		return true
	}
	p.endThreads(code, nil)
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		if main != nil {
			<-main
		}
		close(done)
	}()
	deadline := time.NewTimer(threadDrain)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return true
		case <-deadline.C:
			return false
		case <-tick.C:
			// A woken waiter whose futex word is unchanged waits again
			// before its loop header is reached: wake it again.
			wakeAll(g.cfg.Memory)
		}
	}
}

// ThreadsRunning returns how many threads thread-spawn started are still
// running.
func (p *Process) ThreadsRunning() int {
	if p.thr == nil {
		return 0
	}
	p.thr.mu.Lock()
	defer p.thr.mu.Unlock()
	return len(p.thr.live)
}

// notifier is wazero's shared memory's memory.atomic.notify.
type notifier interface {
	Notify(offset uint32, count uint32) uint32
}

// wakeAll wakes every thread waiting (memory.atomic.wait32/64) on the
// shared memory exported by mem. wazero keeps its waiters by address in
// an unexported sync.Map of its memory instance; when that is found, only
// the addresses waited on are notified, otherwise every aligned address
// of the memory is.
func wakeAll(mem api.Module) {
	if mem == nil {
		return
	}
	m := mem.ExportedMemory("memory")
	n, ok := m.(notifier)
	if !ok {
		return
	}
	if w := waitersOf(m); w != nil {
		w.Range(func(k, _ any) bool {
			if off, ok := k.(uint32); ok {
				n.Notify(off, math.MaxUint32)
			}
			return true
		})
		return
	}
	for off := uint32(0); off+4 <= m.Size() && off+4 > off; off += 4 {
		n.Notify(off, math.MaxUint32)
	}
}

// waitersOf returns wazero's map of waiters of a memory instance (field
// "waiters", a sync.Map keyed by address), or nil when the instance has
// no such field (another wazero version: TestWakeAllFindsWaiters says).
func waitersOf(m api.Memory) *sync.Map {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("waiters")
	if !f.IsValid() || f.Type() != reflect.TypeOf(sync.Map{}) {
		return nil
	}
	return (*sync.Map)(unsafe.Pointer(f.UnsafeAddr()))
}
