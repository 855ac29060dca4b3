// Package hostabi is the vkernel's host surface: the WASI preview1 functions
// guests import from "wasi_snapshot_preview1", implemented on host file
// descriptors, and the "vkernel" module's own calls. ABI.md in the vkernel
// directory documents both.
//
// One file per call family, as in wazero's preview1: args, environ, clock,
// fd, path, poll, proc, random, sched, sock; and vk_* for the vkernel module.
// Every function is bounds-checked against guest memory and answers EFAULT
// rather than touching memory outside it.
package hostabi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	_ "unsafe" // go:linkname

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// Module names guests import from.
const (
	ModulePreview1 = "wasi_snapshot_preview1"
	ModuleVkernel  = "vkernel"
)

// Mount makes a host directory visible to the guest at an absolute guest path.
type Mount struct {
	Guest    string
	Host     string
	ReadOnly bool
}

// Hooks are the decisions the host surface leaves to the vkernel's policy,
// and what only the vkernel can do: start child processes.
type Hooks struct {
	// Audit records a security-relevant decision the ABI made.
	Audit func(action, detail, decision, reason string)
	// AllowConnect reports whether the guest may dial addr, or send a
	// datagram to it. Nil: nothing is allowed.
	AllowConnect func(addr netip.AddrPort) bool
	// AllowBind reports whether the guest may bind a socket to addr (the
	// unspecified address for the wildcard). Nil: loopback only.
	AllowBind func(addr netip.AddrPort) bool
	// Spawn routes the file of a guest's proc_spawn by hash and starts the
	// child process; it returns the child's host pid, or the errno to
	// report. Nil: proc_spawn answers ENOSYS.
	Spawn func(ctx context.Context, req *SpawnRequest) (int, Errno)
	// Fork starts a forked child (proc_fork) and returns its host pid, or
	// the errno. Nil: proc_fork answers ENOSYS.
	Fork func(ctx context.Context, req *ForkRequest) (int, Errno)
	// Reaped tells the vkernel that a child has been waited for, or
	// killed and reaped at Close.
	Reaped func(pid int)
	// Teardown ends a child that has not been waited for when the process
	// closes; nil sends it SIGKILL. Close reaps it afterwards either way.
	Teardown func(pid int)
	// InTree reports whether pid is another live process of the caller's
	// tree of vkernel processes, below its top (a child process, which
	// takes host signals by its guest's dispositions): proc_kill may
	// signal it, as a parent, sibling or grandchild. Nil: none is.
	InTree func(pid int) bool
	// Killed is called when a signal's default action ends the guest,
	// from the goroutine that delivered it. A child host process dies of
	// the real signal there. Without it (or if it returns), the guest
	// ends at its next host call and KilledBy reports the signal.
	Killed func(sig syscall.Signal)
	// Stop applies a stop signal's default action (SIGSTOP, SIGTSTP,
	// SIGTTIN, SIGTTOU) to the host process; nil drops it.
	Stop func(sig syscall.Signal)
	// Disposition tells the vkernel the guest changed how it takes sig
	// (SigDefault, SigIgnore, SigCatch), so that a child host process can
	// leave the signal to the host's default action or catch it.
	Disposition func(sig syscall.Signal, action int)
}

// Config describes a process to create.
type Config struct {
	Args   []string
	Env    []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Mounts []Mount
	// Listeners are handed to the guest as fds after the preopens, in
	// order; the environment gets VKERNEL_LISTEN_FDS="fd=addr,..." naming
	// them.
	Listeners []net.Listener
	Hooks     Hooks
	// Signals makes the guest start with every signal but SIGKILL and
	// SIGSTOP caught, for guests built before proc_sigaction that take
	// the runner's signals with proc_signals after each wait. Otherwise
	// every disposition starts at default.
	Signals bool
	// Dispositions, when not nil, are the starting dispositions by signal
	// number (a forked child's, Process.Dispositions).
	Dispositions []uint8
	// Files, when not nil, are the whole fd table of a child process
	// (InheritedFile), in place of stdio, preopens and listeners; a
	// preopen in it names one of Mounts.
	Files []InheritedFile
	// Cwd is what proc_initial_cwd answers, if HasCwd.
	Cwd    string
	HasCwd bool
	// MaxChildren bounds the children not yet waited for (0: no bound
	// here; the vkernel's hooks may bound them too).
	MaxChildren int
	// Threads, when not nil, lets the process run threads: its module
	// imports a shared memory, and wasi.thread-spawn starts another
	// instance of it (ABI.md, "Threads"). Nil: thread-spawn answers
	// -ENOSYS.
	Threads *Threads
	// Counts, when not nil, are where the process counts its calls of
	// each host function, indexed as Functions lists them (it must have
	// that length): memory of the caller's, which may be a shared mapping
	// of a file that outlives the process (CallCounts). Nil: nothing is
	// counted, at the cost of a nil check per call.
	Counts []uint64
}

// Process is the host-side state of one guest instance: its fd table,
// arguments, environment and accounting. It is used by one goroutine at a
// time: the one running the guest or, in a process with threads
// (Config.Threads), whichever of its threads holds the process's lock,
// which every host call takes and a call that waits lets go of while it
// waits (unlock.go).
type Process struct {
	args, env [][]byte
	fds       fdTable
	mounts    []*mount
	hooks     Hooks
	start     time.Time

	epfd  int
	polls pollState // poll_oneoff's epoll set and reusable memory
	io    ioScratch // the iovec calls' reusable memory

	jumps map[uint32]jumpPoint

	sigs  *signals
	timer itimer
	kids  children
	// cwd is proc_initial_cwd's answer, if hasCwd.
	cwd         string
	hasCwd      bool
	maxChildren int
	// copiers copy the output of stdio shared with children (shareStdio)
	// to its Go writer; stdioEnds are the pipe ends they use, closed at
	// the end.
	copiers   sync.WaitGroup
	stdioEnds []*os.File

	// done is the Done channel of the context WithProcess was given: host
	// calls stop the guest once it is closed (nil: never).
	done <-chan struct{}

	// Accounting, read by HostTime once the guest has ended: hostNanos is
	// the sampled estimate (timeSampling), hostCalls exact.
	hostNanos int64
	hostCalls int64
	// calls counts the calls of each host function, indexed as
	// Functions lists them; nil unless Config.Counts. A plain increment:
	// the process is used by one goroutine at a time.
	calls []uint64
	// sampler picks the calls that are timed (xorshift64).
	sampler uint64
	// lastYield is when the guest's goroutine last yielded (nanotime).
	lastYield int64
	// opened is what the last path_open read of the file it opened.
	opened openedFile

	// thr is the process's threads (Config.Threads); nil without. With
	// threads every host call holds big, so the state above stays one
	// goroutine's at a time; a call that waits (for an fd, a child, a
	// clock, a blocking device) lets go of it while it waits and takes
	// it again before it touches that state (unlock.go; ABI.md,
	// "Threads").
	thr *threadGroup
	big sync.Mutex
	// onMain is whether the host call holding big is the main
	// instance's (a thread's waits leave a caught signal to the main
	// instance's, pollLoop).
	onMain bool
	// readerMu makes the reads of stdin given as a Go reader one at a
	// time: with threads they run without big (readUnlocked), and the
	// copier of shareStdio reads it too.
	readerMu sync.Mutex
}

// yieldNanos is how often a guest's goroutine yields to the Go scheduler
// at a host call. A goroutine that runs on one scheduling tick for 10 ms
// (the runtime's forcePreemptNS) is a long runner to sysmon, which then
// takes its P away at every system call it finds it in, hands the P to
// another thread and stops sleeping between its checks: a guest that never
// yielded (a server looping in poll_oneoff, sock_recv and sock_send) paid a
// futex handoff, thread switches and sysmon wake-ups for every request. A
// yield starts a new tick; it costs a few microseconds (the runtime wakes
// an idle thread to look for work), so it is made only as often as the
// 10 ms need, with room to spare.
const yieldNanos = 5_000_000

// timeSampling is the share of the calls that enter the host kernel that
// are timed, one in timeSampling, picked at random: reading the clock
// before and after every call cost nginx serving a static file 1.6% of
// its CPU. The time of the others is estimated from the sample
// (Process.HostTime); every call is counted.
const timeSampling = 8

// NewProcess creates a process: fds 0-2 are stdio, the mounts follow as
// preopened directories, then the listeners. It takes its own duplicates of
// the listeners' sockets; the caller still owns the listeners. The host fds
// of cfg.Files are the process's from the call on: Close closes them, or
// NewProcess does when it fails.
func NewProcess(cfg Config) (_ *Process, err error) {
	defer func() {
		if err != nil && cfg.Files != nil && !filesHandled(err) {
			closeFiles(cfg.Files)
		}
	}()
	p := &Process{hooks: cfg.Hooks, start: time.Now(), epfd: -1, sampler: uint64(time.Now().UnixNano()) | 1,
		cwd: cfg.Cwd, hasCwd: cfg.HasCwd, maxChildren: cfg.MaxChildren}
	p.kids.stop = -1
	if cfg.Threads != nil {
		if cfg.Threads.Runtime == nil || cfg.Threads.Module == nil || cfg.Threads.Memory == nil {
			return nil, errors.New("threads: runtime, module and shared memory are all needed")
		}
		p.thr = &threadGroup{cfg: *cfg.Threads, live: map[uint32]api.Module{}, endCh: make(chan struct{})}
	}
	if cfg.Counts != nil {
		if len(cfg.Counts) != len(functions()) {
			return nil, fmt.Errorf("%d call counters for %d host functions", len(cfg.Counts), len(functions()))
		}
		p.calls = cfg.Counts
	}
	s, err := newSignals(cfg.Signals)
	if err != nil {
		return nil, fmt.Errorf("signal queue: %w", err)
	}
	p.sigs = s
	for sig, d := range cfg.Dispositions {
		if sig > 0 && sig <= maxSignal && d <= SigCatch {
			p.sigs.disp[sig].Store(uint32(d))
		}
	}
	for _, a := range cfg.Args {
		p.args = append(p.args, []byte(a))
	}
	for _, e := range cfg.Env {
		p.env = append(p.env, []byte(e))
	}
	if cfg.Files != nil {
		if err := p.adoptAll(cfg); err != nil {
			return nil, adoptError{err}
		}
		return p, nil
	}
	stdin := cfg.Stdin
	if stdin == nil {
		stdin = eofReader{}
	}
	p.fds.files = []*file{
		{filetype: filetypeCharDevice, hostFD: -1, reader: stdin, rights: stdioRights},
		{filetype: filetypeCharDevice, hostFD: -1, writer: orDiscard(cfg.Stdout), rights: stdioRights},
		{filetype: filetypeCharDevice, hostFD: -1, writer: orDiscard(cfg.Stderr), rights: stdioRights},
	}
	for _, m := range cfg.Mounts {
		if err := p.addMount(m); err != nil {
			p.Close()
			return nil, err
		}
	}
	var listenFDs []string
	for i, l := range cfg.Listeners {
		fd, err := p.addListener(l)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("listener %d (%s): %w", i, l.Addr(), err)
		}
		listenFDs = append(listenFDs, fmt.Sprintf("%d=%s", fd, l.Addr()))
	}
	if len(listenFDs) > 0 {
		p.env = append(p.env, []byte("VKERNEL_LISTEN_FDS="+strings.Join(listenFDs, ",")))
	}
	return p, nil
}

// adoptAll builds a child's fd table from cfg.Files: the mounts are opened
// (their preopens placed where the files say), every other file is a host
// fd the process now owns. On error the process is closed.
func (p *Process) adoptAll(cfg Config) error {
	for _, m := range cfg.Mounts {
		mt, err := openMount(m)
		if err != nil {
			closeFiles(cfg.Files)
			p.Close()
			return err
		}
		p.mounts = append(p.mounts, mt)
	}
	for i, in := range cfg.Files {
		if err := p.adopt(in); err != nil {
			// The files not yet adopted are closed here, the others by
			// Close.
			closeFiles(cfg.Files[i:])
			p.Close()
			return fmt.Errorf("inherited %w", err)
		}
	}
	return nil
}

// adoptError is adoptAll's failure, which has closed the files already.
type adoptError struct{ error }

func (e adoptError) Unwrap() error { return e.error }

func filesHandled(err error) bool {
	_, ok := err.(adoptError)
	return ok
}

// closeFiles closes the host fds of inherited files.
func closeFiles(files []InheritedFile) {
	for _, f := range files {
		if f.HostFD >= 0 {
			unix.Close(f.HostFD)
		}
	}
}

func openMount(m Mount) (*mount, error) {
	if !path.IsAbs(m.Guest) || path.Clean(m.Guest) != m.Guest {
		return nil, fmt.Errorf("mount %s: guest path must be absolute and clean", m.Guest)
	}
	fd, err := unix.Open(m.Host, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("mount %s at %s: %w", m.Host, m.Guest, err)
	}
	return &mount{guest: m.Guest, host: m.Host, rootFD: fd, readOnly: m.ReadOnly}, nil
}

func (p *Process) addMount(m Mount) error {
	mt, err := openMount(m)
	if err != nil {
		return err
	}
	p.mounts = append(p.mounts, mt)
	_, errno := p.fds.insert(&file{filetype: filetypeDirectory, hostFD: -1, mount: mt, rel: ".", preopen: m.Guest,
		rights: dirRights, inheriting: dirRights | fileRights})
	if errno != ESUCCESS {
		return fmt.Errorf("mount %s: fd table full", m.Guest)
	}
	return nil
}

func (p *Process) addListener(l net.Listener) (uint32, error) {
	sc, ok := l.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return 0, fmt.Errorf("%T has no socket to hand over", l)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	fd, err := dupSocket(raw)
	if err != nil {
		return 0, err
	}
	guestFD, errno := p.fds.insert(&file{filetype: filetypeSocketStream, hostFD: fd, listener: true, rights: streamRights})
	if errno != ESUCCESS {
		unix.Close(fd)
		return 0, errors.New("fd table full")
	}
	return guestFD, nil
}

// dupSocket takes a non-blocking close-on-exec duplicate of a Go socket.
func dupSocket(c syscall.RawConn) (int, error) {
	var fd int
	var dupErr error
	if err := c.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, dupErr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// Close ends the process: its children not yet waited for are ended and
// reaped (Hooks.Teardown), its timer stopped, and every host fd it holds
// released. Output the guest or its children wrote to stdio shared with
// them is copied to the Go writers before Close returns (waiting at most
// stdioDrain for children's children that still hold it).
func (p *Process) Close() error {
	p.closeChildren()
	p.timer.close()
	for i, f := range p.fds.files {
		if f != nil {
			f.closeHost()
			p.fds.files[i] = nil
		}
	}
	for _, m := range p.mounts {
		unix.Close(m.rootFD)
	}
	p.mounts = nil
	if p.epfd >= 0 {
		unix.Close(p.epfd)
		p.epfd = -1
	}
	if len(p.stdioEnds) > 0 {
		drained := make(chan struct{})
		go func() { p.copiers.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(stdioDrain):
		}
		for _, f := range p.stdioEnds {
			f.Close()
		}
		p.copiers.Wait()
		p.stdioEnds = nil
	}
	p.sigs.close()
	return nil
}

// stdioDrain bounds how long Close waits for shared stdio to be closed by
// every process that holds it (killed children's children die of the
// parent-death signal just after).
const stdioDrain = 5 * time.Second

// HostTime returns the time spent in host calls and how many were made,
// once the guest has ended. The time is an estimate: one in timeSampling
// of the calls that enter the host kernel, picked at random, is timed, and
// the others are taken to last as long on average; calls that never enter
// it (the clocks, arguments, environment, fd_fdstat_get, prestats,
// proc_signals) are not timed at all, reading the clock would cost more
// than they do. The count is exact.
func (p *Process) HostTime() (time.Duration, int64) {
	return time.Duration(p.hostNanos), p.hostCalls
}

// CallCounts returns how many times the guest called each host function,
// indexed as Functions lists them, once the guest has ended; nil when the
// process was not counting (Config.Counts).
func (p *Process) CallCounts() []uint64 {
	if p.calls == nil {
		return nil
	}
	return append([]uint64(nil), p.calls...)
}

// Function names one host function of the ABI.
type Function struct {
	// Module is the module it is imported from: ModulePreview1 or
	// ModuleVkernel.
	Module string
	// Name is its export name, such as "fd_write".
	Name string
}

// Functions lists every host function Instantiate defines, in the order
// Process.CallCounts counts them: the ABI's whole surface, read from the
// definitions themselves.
func Functions() []Function {
	fs := functions()
	out := make([]Function, len(fs))
	for i, f := range fs {
		out[i] = Function{Module: f.module, Name: f.name}
	}
	return out
}

type processKey struct{}

// WithProcess returns a context that host functions called under it act on p.
// It also enables wazero's snapshotter, which setjmp needs.
// Host calls under it stop the guest once ctx ends.
func WithProcess(ctx context.Context, p *Process) context.Context {
	p.done = ctx.Done()
	return experimental.WithSnapshotter(context.WithValue(ctx, processKey{}, p))
}

func processFrom(ctx context.Context) *Process {
	p, _ := ctx.Value(processKey{}).(*Process)
	return p
}

// hostFunc is one host function of the ABI.
type hostFunc struct {
	module  string
	name    string
	params  []string // parameter names, documentation only
	types   []api.ValueType
	results []api.ValueType
	call    func(ctx context.Context, p *Process, mod api.Module, stack []uint64) Errno
	// untimed marks a call that never enters the host kernel: it is
	// counted, not timed (Process.HostTime).
	untimed bool
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// functions lists the whole host surface.
func functions() []*hostFunc {
	return []*hostFunc{
		argsGet, argsSizesGet, environGet, environSizesGet,
		clockResGet, clockTimeGet,
		fdAdvise, fdAllocate, fdClose, fdDatasync, fdFdstatGet, fdFdstatSetFlags, fdFdstatSetRights,
		fdFilestatGet, fdFilestatSetSize, fdFilestatSetTimes, fdPread, fdPrestatGet, fdPrestatDirName,
		fdPwrite, fdRead, fdReaddir, fdRenumber, fdSeek, fdSync, fdTell, fdWrite,
		pathCreateDirectory, pathFilestatGet, pathFilestatSetTimes, pathLink, pathOpen, pathReadlink,
		pathRemoveDirectory, pathRename, pathSymlink, pathUnlinkFile,
		pollOneoff, procExit, procRaise, schedYield, randomGet,
		sockAccept, sockRecv, sockSend, sockShutdown,
		vkSockConnect, vkSockError, vkSockPeerAddr, vkSockLocalAddr, vkSockSetopt,
		vkSockOpen, vkSockPair, vkSockBind, vkSockListen, vkSockConnectTo, vkSockGetsockname, vkSockGetpeername,
		vkSockSendto, vkSockRecvfrom, vkSockGetsockopt, vkSockSetsockopt,
		vkSetjmp, vkLongjmp, vkMemMap, vkMemProtect, vkProcSpawn, vkProcSignals,
		vkFdPipe, vkProcInitialCwd, vkProcWait, vkProcKill, vkProcSigaction, vkProcID, vkProcSetitimer, vkProcFork,
		vkFdStat, vkPathStat, vkFdChmod, vkPathChmod, vkPathAccess, vkProcCred,
		vkFdDup, vkFdDup2,
		threadSpawn,
	}
}

// Instantiate defines the host modules in r. It must be called once per
// runtime, before any guest is instantiated.
func Instantiate(ctx context.Context, r wazero.Runtime) error {
	builders := map[string]wazero.HostModuleBuilder{}
	for i, f := range functions() {
		b := builders[f.module]
		if b == nil {
			b = r.NewHostModuleBuilder(f.module)
			builders[f.module] = b
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(f.goFunc(i), f.types, f.results).
			WithParameterNames(f.params...).
			Export(f.name)
	}
	for _, name := range []string{ModulePreview1, ModuleVkernel, ModuleWasi} {
		if _, err := builders[name].Instantiate(ctx); err != nil {
			return fmt.Errorf("instantiate host module %s: %w", name, err)
		}
	}
	return nil
}

// goFunc is f as wazero calls it; index is f's place in functions(), where
// the process counts its calls.
func (f *hostFunc) goFunc(index int) api.GoModuleFunc {
	call, hasResult, untimed := f.call, len(f.results) > 0, f.untimed
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		p := processFrom(ctx)
		if p == nil {
			if hasResult {
				stack[0] = uint64(ENOSYS)
			}
			return
		}
		if p.thr != nil {
			// Threads share the process: one host call at a time,
			// but for the waits, which let go of the lock
			// (unlock.go).
			p.big.Lock()
			defer p.big.Unlock()
			p.onMain = mod == p.thr.main
		}
		p.stopIfDone(ctx, mod)
		p.hostCalls++
		if p.calls != nil {
			p.calls[index]++
		}
		if untimed {
			errno := call(ctx, p, mod, stack)
			if hasResult {
				stack[0] = uint64(errno)
			}
			return
		}
		if !p.sample() {
			errno := call(ctx, p, mod, stack)
			if hasResult {
				stack[0] = uint64(errno)
			}
			p.stopIfDone(ctx, mod)
			return
		}
		start := nanotime()
		errno := call(ctx, p, mod, stack)
		if hasResult {
			stack[0] = uint64(errno)
		}
		end := nanotime()
		p.hostNanos += (end - start) * timeSampling
		// The yield is checked at the timed calls: a guest calling the
		// host often enough to matter to sysmon comes here every few
		// microseconds.
		if end-p.lastYield > yieldNanos {
			p.lastYield = end
			runtime.Gosched()
		}
		// A blocking call returns early when ctx ends; the guest must not
		// go on with what it takes for an ordinary EINTR or timeout.
		p.stopIfDone(ctx, mod)
	}
}

// sample reports whether to time this call: true one time in
// timeSampling, at random.
func (p *Process) sample() bool {
	x := p.sampler
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	p.sampler = x
	return (x>>32)%timeSampling == 0
}

// stopIfDone ends the instance when the exec's ctx has ended: every host
// call is a point where a guest whose ctx ended stops, so a runtime
// without wazero's per-loop termination checks still stops any guest that
// calls the host (vkernel.Options.Interruptible). The exit codes are
// wazero's for a closed context, which the exec reports as "stopped". The
// check is a non-blocking receive on the context's Done channel, taken
// once (WithProcess): no lock, no walk up the context chain.
func (p *Process) stopIfDone(ctx context.Context, mod api.Module) {
	if sig := p.sigs.killedBy.Load(); sig != 0 {
		// Killed by a signal's default action: the exit status a shell
		// shows for it; the exec reports the signal (KilledBy).
		code := uint32(128 + sig)
		_ = mod.CloseWithExitCode(ctx, code)
		panic(sys.NewExitError(code))
	}
	if p.thr != nil && p.thr.ended.Load() {
		// Another thread ended the process (proc_exit, a trap).
		code := p.thr.code
		_ = mod.CloseWithExitCode(ctx, code)
		panic(sys.NewExitError(code))
	}
	if p.done == nil {
		return
	}
	select {
	case <-p.done:
	default:
		return
	}
	code := sys.ExitCodeContextCanceled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = sys.ExitCodeDeadlineExceeded
	}
	_ = mod.CloseWithExitCode(ctx, code)
	panic(sys.NewExitError(code))
}

// Signature returns the parameter and result types of a host function, or
// false when the host surface has no such function.
func Signature(module, name string) (params, results []api.ValueType, ok bool) {
	for _, f := range functions() {
		if f.module == module && f.name == name {
			return f.types, f.results, true
		}
	}
	return nil, nil, false
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// nanotime is CLOCK_MONOTONIC in nanoseconds, read as the Go runtime
// reads it: through the vDSO, without entering the kernel
// (unix.ClockGettime is a real system call, which cost Redis under load
// half its host time). Its zero is shared with native programs, so exec
// latency can be measured across the two.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64
