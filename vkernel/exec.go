package vkernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/compat-project/compat/vkernel/internal/hashcache"
	"github.com/compat-project/compat/vkernel/internal/hostabi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// Mount makes a host directory visible to a guest at an absolute guest path.
type Mount struct {
	Guest    string
	Host     string
	ReadOnly bool
}

// HostPath maps an absolute guest path to the host path it names under the
// mount with the longest matching guest prefix, as the guest would resolve
// it (".." stops at the mount root). It reports false when no mount holds
// the path.
func HostPath(mounts []Mount, guest string) (string, bool) {
	if !path.IsAbs(guest) {
		return "", false
	}
	guest = path.Clean(guest)
	var best *Mount
	for i := range mounts {
		m := &mounts[i]
		if (m.Guest == "/" || guest == m.Guest || strings.HasPrefix(guest, m.Guest+"/")) && (best == nil || len(m.Guest) > len(best.Guest)) {
			best = m
		}
	}
	if best == nil {
		return "", false
	}
	return path.Join(best.Host, hostabi.JoinInMount(".", strings.TrimPrefix(guest, best.Guest))), true
}

// Request is one exec.
type Request struct {
	// Path is the file to run. Its SHA-256, read from the opened file,
	// selects the entry.
	Path string
	// File, when not nil, is the file to run, already open: it is hashed
	// from this descriptor (never reopened by a path), and Path only
	// names it in errors and the audit log. The policy path+hash checks
	// the path the descriptor's file has on the host. It must be open
	// for reading; Exec and Start do not close it.
	File *os.File
	// Args is argv, argv[0] first; empty means just Path. The entry's own
	// args go after argv[0].
	Args []string
	// Env holds KEY=VALUE pairs, after the entry's own.
	Env []string
	// Stdin, Stdout and Stderr are the guest's fds 0-2; nil means empty
	// input and discarded output.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Mounts become the guest's preopened directories (fds 3...), within
	// what the entry's resources allow.
	Mounts []Mount
	// Peer, when not empty, names who asked for the exec in its audit
	// records (AuditRecord.Peer): a service running requests for other
	// processes sets it.
	Peer string
	// Cwd, when not empty, is the guest path the guest starts in: what
	// vkernel.proc_initial_cwd answers, which the C layer changes to at
	// start (ABI.md).
	Cwd string
	// Listeners are handed to the guest as fds after the mounts; their
	// numbers and addresses are in VKERNEL_LISTEN_FDS ("fd=addr,...").
	Listeners []net.Listener
	// Signals, if not nil, carries host signals to the guest for as long
	// as it runs: each one is pending until the guest next waits in
	// poll_oneoff, which it interrupts, and the guest takes them with
	// vkernel.proc_signals (vkernel/ABI.md). Signals that are not a
	// syscall.Signal are ignored. Exec never closes the channel.
	Signals <-chan os.Signal

	// origin is set for an exec a guest asked for with proc_spawn.
	origin *spawnOrigin
	// scripts makes resolveFD answer a *scriptError, unaudited, for an
	// unlisted #! script instead of denying it (a guest's spawn).
	scripts bool
	// child is set for the exec of a child process (ChildMain).
	child *childSetup
	// capture, when set, is called with the instance and its process
	// once the start function has returned, before the instance is
	// closed (AddSnapshot). The exec never starts from a snapshot.
	capture func(api.Module, *hostabi.Process) error
}

// spawnOrigin is what the audit log records of an exec a guest asked for:
// Path opens the file the guest's path resolved to (a /proc/self/fd link),
// which names nothing a reader can use, so the records say instead the
// guest's path, the host file it resolved to and the asking entry.
type spawnOrigin struct {
	guestPath, hostPath, parent string
	// interpreters are the guest paths of the #! interpreters the exec of
	// guestPath went through, in order: the last is the program hostPath
	// names.
	interpreters []string
}

// record returns an exec audit record for the request.
func (req *Request) record(hash, entry, decision, reason string) AuditRecord {
	r := AuditRecord{Action: "exec", Path: req.Path, Hash: hash, Entry: entry, Decision: decision, Reason: reason, Peer: req.Peer}
	if o := req.origin; o != nil {
		r.Path, r.GuestPath, r.Parent, r.Interpreters = o.hostPath, o.guestPath, o.parent, o.interpreters
	}
	return r
}

// shownPath is the path errors name: the host file for a spawn.
func (req *Request) shownPath() string {
	if req.origin != nil {
		return req.origin.hostPath
	}
	return req.Path
}

// Result describes a finished exec.
type Result struct {
	// Entry is the manifest entry that ran.
	Entry string
	// Hash is the SHA-256 the file routed by.
	Hash string
	// ExitCode is the guest's exit status (0 when _start returned), or
	// 128 plus the signal that killed it.
	ExitCode uint32
	// Signal is the signal whose default action ended the guest (sent by
	// itself, its itimer, a pipe without reader, or the runner's
	// Request.Signals), or 0. See ABI.md, "Signals".
	Signal syscall.Signal
	// Duration is the time from the exec call to the guest's end.
	Duration time.Duration
	// HostTime is the time the guest spent in host calls, HostCalls their
	// number; the rest of Duration after start-up was guest code.
	HostTime  time.Duration
	HostCalls int64
	// Snapshot is set when the guest started from its entry's snapshot
	// (ABI.md, "Snapshots").
	Snapshot bool
}

// DeniedError reports an exec the policy refused. Nothing ran.
type DeniedError struct {
	Path   string `json:"path"`
	Hash   string `json:"hash,omitempty"` // empty when the file could not be hashed
	Reason string `json:"reason"`
}

func (e *DeniedError) Error() string {
	if e.Hash == "" {
		return fmt.Sprintf("exec %s: denied: %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("exec %s: denied: sha256 %s: %s", e.Path, e.Hash, e.Reason)
}

// TrapError reports a guest that ended abnormally: a WebAssembly trap, a
// host call that failed fatally, or a cancelled context.
type TrapError struct {
	Entry string
	Err   error
}

func (e *TrapError) Error() string { return fmt.Sprintf("guest %s: %v", e.Entry, e.Err) }
func (e *TrapError) Unwrap() error { return e.Err }

// RacyWindow is how old a file's last change must be, when hashing starts,
// before its digest is cached. A change within the same timestamp tick can
// leave size, mtime and ctime unchanged (Linux stamps files with a coarse
// clock; some filesystems keep whole seconds), so a digest of a file that
// changed that recently could be stale under an identical key.
const RacyWindow = 2 * time.Second

// maxSpawnDepth bounds the nesting of vkernel processes: a process this
// deep below the top may not start children.
const maxSpawnDepth = 8

// Exec runs the entry that the file at req.Path routes to and waits for it
// to finish. It returns a *DeniedError when the policy refuses the exec
// (unknown hash, path not pinned, resources not allowed), a *TrapError when
// the guest ends abnormally, and otherwise the guest's exit status in the
// Result. Every decision is written to the audit log.
func (k *Kernel) Exec(ctx context.Context, req Request) (*Result, error) {
	if k.startOnly {
		return nil, errors.New("exec: this kernel runs requests with Start only (Options.StartOnly)")
	}
	start := time.Now()
	var r *route
	var hash string
	var snap *snapRoute
	if req.child != nil && req.child.fork != nil {
		// A forked child runs its parent's entry; the parent audited it.
		r = k.entryRoute(req.child.entry)
		if r == nil {
			return nil, fmt.Errorf("fork: entry %q is not loaded", req.child.entry)
		}
	} else {
		var err error
		if r, hash, err = k.resolve(&req); err != nil {
			return nil, err
		}
		if err := k.checkResources(r, &req); err != nil {
			k.audit.write(req.record(hash, r.entry.Name, "deny", err.Reason))
			err.Hash = hash
			return nil, err
		}
		if req.capture == nil {
			args, env := k.argsEnv(r, &req)
			snap = k.snapshotFor(r, &req, args, env)
		}
		rec := req.record(hash, r.entry.Name, "allow", "")
		rec.Snapshot = snap != nil
		k.audit.write(rec)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ctl := k.newProcCtl(r, &req)
	defer ctl.close()
	pcfg := k.processConfig(r, &req, ctl, cancel)
	if k.hostCallsDir != "" {
		// The counts live in a file of the host calls directory, mapped
		// shared: they are there however the process ends, killed too.
		// The coverage map is a report's, not the guest's: a file that
		// cannot be made is said on stderr, and the guest runs
		// uncounted. A directory that is gone belongs to a unit that
		// has ended (a straggler of it is starting): nothing to say.
		hc, herr := mapHostCalls(k.hostCallsDir, r.entry.Name)
		switch {
		case herr == nil:
			defer hc.close()
			pcfg.Counts = hc.counts
		case !errors.Is(herr, fs.ErrNotExist):
			fmt.Fprintf(os.Stderr, "vkernel: host call counts of %s: %v\n", r.entry.Name, herr)
		}
	}
	var tp *threadedProcess
	if r.threads != nil {
		var terr error
		if tp, pcfg.Threads, terr = k.newThreadedProcess(ctx, r); terr != nil {
			return nil, fmt.Errorf("exec %s: %w", req.shownPath(), terr)
		}
	}
	if req.child != nil && pcfg.Files != nil {
		// NewProcess adopts the files' host fds, or closes them.
		req.child.filesTaken = true
	}
	proc, perr := hostabi.NewProcess(pcfg)
	if perr != nil {
		if tp != nil {
			tp.close()
		}
		return nil, fmt.Errorf("exec %s: %w", req.shownPath(), perr)
	}
	defer proc.Close()
	if req.child != nil && req.child.started != nil {
		req.child.started(proc, ctl)
	}
	if req.Signals != nil {
		done := make(chan struct{})
		forwarded := make(chan struct{})
		go func() {
			defer close(forwarded)
			for {
				select {
				case <-done:
					return
				case sig := <-req.Signals:
					if s, ok := sig.(syscall.Signal); ok {
						proc.Signal(s)
					}
				}
			}
		}()
		// Before proc.Close: the forwarder delivers to the process.
		defer func() { close(done); <-forwarded }()
	}
	res := &Result{Entry: r.entry.Name, Hash: hash, Snapshot: snap != nil}
	pctx := hostabi.WithProcess(ctx, proc)
	var code uint32
	var err error
	var pre *instance
	if req.child != nil && req.child.instance != nil && req.child.instance.route == r {
		pre = req.child.instance
		req.child.instanceUsed = true
	}
	switch {
	case tp != nil:
		code, err = k.runThreaded(pctx, r, proc, tp)
	case req.child != nil && req.child.fork != nil:
		code, err = k.runFork(pctx, r, req.child.fork, pre)
	default:
		var after func(api.Module) error
		if req.capture != nil {
			after = func(mod api.Module) error { return req.capture(mod, proc) }
		}
		code, err = k.run(pctx, r, snap, pre, after)
	}
	res.ExitCode = code
	if sig := proc.KilledBy(); sig != 0 {
		res.ExitCode, res.Signal, err = 128+uint32(sig), sig, nil
	}
	res.Duration = time.Since(start)
	res.HostTime, res.HostCalls = proc.HostTime()
	if err != nil {
		return res, &TrapError{Entry: r.entry.Name, Err: err}
	}
	return res, nil
}

// entryRoute returns the loaded route of the named entry, or nil.
func (k *Kernel) entryRoute(name string) *route {
	for _, r := range k.routes {
		if r.entry.Name == name && (r.module != nil || r.lazy) {
			return r
		}
	}
	return nil
}

// run runs the entry's start function, or with snap the snapshot's, in
// pre when it is an instance of that module, or else in a new one. after,
// when set, is called with the instance once the function has returned.
func (k *Kernel) run(ctx context.Context, r *route, snap *snapRoute, pre *instance, after func(api.Module) error) (uint32, error) {
	module, export := r.module, r.entry.StartExport()
	if snap != nil {
		module, export = snap.module, snap.meta.Export
	} else if r.lazy {
		var err error
		if module, err = k.ownModule(ctx, r); err != nil {
			return 0, err
		}
	}
	if pre != nil && pre.module != module {
		// Made ahead for the other kind of start.
		pre.close()
		pre = nil
	}
	if pre == nil && snap != nil && snap.image != nil {
		// The module has no data of its own: its memory is the image.
		var err error
		if pre, err = k.instantiate(ctx, r, module); err != nil {
			return exitStatus(ctx, err)
		}
	}
	var mod api.Module
	if pre != nil {
		mod = pre.mod
		defer pre.close()
	} else {
		cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
		var err error
		if mod, err = k.runtime.InstantiateModule(ctx, module, cfg); err != nil {
			return exitStatus(ctx, err)
		}
		defer mod.Close(context.Background())
	}
	settle()
	_, err := mod.ExportedFunction(export).Call(ctx)
	if err == nil && after != nil {
		return 0, after(mod)
	}
	return exitStatus(ctx, err)
}

// instance is an entry's module instantiated ahead of the exec that runs
// it: a child process does that before it knows what it will run.
type instance struct {
	route  *route
	module wazero.CompiledModule // what mod is an instance of
	mod    api.Module
	mem    *forkMemory
}

// prepare instantiates the entry's module ahead of its exec: its
// snapshot's, when it has one this kernel uses (most execs of such an
// entry start from it), else its own. Its linear memory is a forkMemory,
// outside the Go heap, over which a fork maps its parent's memory.
// Instantiating calls no guest code: the module's start section, if any,
// is not run (it never is, see run).
func (k *Kernel) prepare(ctx context.Context, entry string) (*instance, error) {
	r := k.entryRoute(entry)
	if r == nil {
		return nil, fmt.Errorf("entry %q is not loaded", entry)
	}
	if r.threads != nil {
		// Its instances import the process's shared memory, made by
		// the exec (runThreaded).
		return nil, fmt.Errorf("entry %q has threads: instantiated by its exec", entry)
	}
	if r.snap != nil {
		return k.instantiate(ctx, r, r.snap.module)
	}
	module, err := k.ownModule(ctx, r)
	if err != nil {
		return nil, err
	}
	return k.instantiate(ctx, r, module)
}

// instantiate makes an instance of module, r's or its snapshot's, over a
// forkMemory.
func (k *Kernel) instantiate(ctx context.Context, r *route, module wazero.CompiledModule) (*instance, error) {
	mem := &forkMemory{}
	if r.snap != nil && module == r.snap.module {
		mem.image = r.snap.image
	}
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
	mod, err := k.runtime.InstantiateModule(experimental.WithMemoryAllocator(ctx, mem), module, cfg)
	if err != nil {
		mem.Free()
		return nil, err
	}
	return &instance{route: r, module: module, mod: mod, mem: mem}, nil
}

func (in *instance) close() {
	in.mod.Close(context.Background())
	in.mem.Free()
}

// settleGC is set in a process whose Go code must keep running while its
// guest computes without host calls (a child process's lifeline and
// signals, EndOnSignals' handler): see settle.
var settleGC atomic.Bool

// settle makes sure, in a process that needs it (settleGC), that no
// garbage collection is under way when a guest starts: one that is would
// wait for the guest to stop the world (Go cannot preempt native wasm
// code) and hold up every other goroutine of the process meanwhile, when
// the guest computes without host calls. Loading and instantiating a
// module allocate enough to start one; after a collection, the guest's
// host calls allocate too little to start another soon.
func settle() {
	if settleGC.Load() && !gcIdle() {
		runtime.GC()
	}
}

// gcIdle reports whether no collection can be under way: the runtime
// starts one when the heap has grown from what the last one left (live)
// at least 70% of the way to its goal, and the heap is short of half-way.
// A collection forced by time (every two minutes at most) is not seen.
func gcIdle() bool {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() != metrics.KindUint64 {
			return false
		}
	}
	objects, live, goal := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()
	return goal > live && objects < live+(goal-live)/2
}

func exitStatus(ctx context.Context, err error) (uint32, error) {
	if err == nil {
		return 0, nil
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch code := exit.ExitCode(); code {
		case sys.ExitCodeContextCanceled, sys.ExitCodeDeadlineExceeded:
			return 0, fmt.Errorf("stopped: %w", context.Cause(ctx))
		default:
			return code, nil
		}
	}
	return 0, err
}

// newProcCtl makes the exec's part in the process model.
func (k *Kernel) newProcCtl(r *route, req *Request) *procCtl {
	c := &procCtl{k: k, entry: r.entry.Name, limit: r.entry.Resources.Processes, req: req, mounts: req.Mounts}
	c.args, c.env = k.argsEnv(r, req)
	if ch := req.child; ch != nil {
		c.depth, c.table = ch.depth, ch.table
		if c.table != nil && c.limit > 0 {
			c.limit = min(c.limit, c.table.size())
		}
	}
	if len(k.childCmd) > 0 {
		registerCtl(c)
	}
	return c
}

// argsEnv are the guest's argv and environment: the request's, with the
// entry's args after argv[0] and its env before the request's.
func (k *Kernel) argsEnv(r *route, req *Request) ([]string, []string) {
	if ch := req.child; ch != nil && ch.fork != nil {
		return req.Args, req.Env // already merged in the parent
	}
	argv := req.Args
	if len(argv) == 0 {
		argv = []string{req.Path}
	}
	args := append([]string{argv[0]}, r.entry.Args...)
	args = append(args, argv[1:]...)
	return args, mergeEnv(r.entry.Env, req.Env)
}

func (k *Kernel) processConfig(r *route, req *Request, ctl *procCtl, cancel context.CancelCauseFunc) hostabi.Config {
	cfg := hostabi.Config{
		Args: ctl.args, Env: ctl.env,
		Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr,
		Listeners:   req.Listeners,
		Signals:     req.Signals != nil,
		MaxChildren: r.entry.Resources.Processes,
		Hooks: hostabi.Hooks{
			Audit: func(action, detail, decision, reason string) {
				k.audit.write(AuditRecord{Action: action, Entry: r.entry.Name, Detail: detail, Decision: decision, Reason: reason})
			},
			AllowConnect: func(a netip.AddrPort) bool { return allowed(r.connect, a) },
			AllowBind:    func(a netip.AddrPort) bool { return allowed(r.bind, a) },
			Reaped:       ctl.reaped,
			Teardown:     ctl.teardown,
			InTree:       ctl.inTree,
			// An in-process guest killed by a signal stops at its next
			// host call, or at once in an Interruptible kernel.
			Killed: func(sig syscall.Signal) { cancel(fmt.Errorf("killed by signal %d (%v)", int(sig), sig)) },
		},
	}
	for _, m := range req.Mounts {
		cfg.Mounts = append(cfg.Mounts, hostabi.Mount(m))
	}
	if req.Cwd != "" {
		cfg.Cwd, cfg.HasCwd = req.Cwd, true
	}
	if len(k.childCmd) > 0 && k.path != "" {
		cfg.Hooks.Spawn, cfg.Hooks.Fork = ctl.spawn, ctl.fork
	}
	if ch := req.child; ch != nil {
		cfg.Files = ch.files
		if cfg.Files == nil {
			cfg.Files = []hostabi.InheritedFile{}
		}
		cfg.Cwd, cfg.HasCwd = ch.cwd, ch.hasCwd
		cfg.Dispositions = ch.dispositions
		if rt := ch.signals; rt != nil {
			cfg.Hooks.Killed = dieOf
			cfg.Hooks.Stop = func(syscall.Signal) { _ = unix.Kill(os.Getpid(), unix.SIGSTOP) }
			cfg.Hooks.Disposition = rt.set
		}
		if told := ch.onKilled; told != nil {
			// A shared host's guest stops at its next host call; the host
			// watches that it does.
			stop := cfg.Hooks.Killed
			cfg.Hooks.Killed = func(sig syscall.Signal) { stop(sig); told(sig) }
		}
	}
	return cfg
}

// checkResources holds a request to what its entry's resources allow.
func (k *Kernel) checkResources(r *route, req *Request) *DeniedError {
	res := r.entry.Resources
	if len(req.Listeners) > res.Listeners {
		return &DeniedError{Path: req.shownPath(), Reason: fmt.Sprintf("entry %q may be given %d listener(s), the request has %d", r.entry.Name, res.Listeners, len(req.Listeners))}
	}
	for i := range req.Mounts {
		m := &req.Mounts[i]
		rule := -1
		for j, mr := range res.Mounts {
			if m.Guest == mr.Guest || mr.Guest == "/" || strings.HasPrefix(m.Guest, mr.Guest+"/") {
				if rule < 0 || len(mr.Guest) > len(res.Mounts[rule].Guest) {
					rule = j
				}
			}
		}
		if rule < 0 {
			return &DeniedError{Path: req.shownPath(), Reason: fmt.Sprintf("entry %q may not mount %s", r.entry.Name, m.Guest)}
		}
		if why := k.protected.exposedBy(m.Host); why != "" {
			return &DeniedError{Path: req.shownPath(), Reason: fmt.Sprintf("mount of %s at %s refused: %s", m.Host, m.Guest, why)}
		}
		if res.Mounts[rule].ReadOnly && !m.ReadOnly {
			return &DeniedError{Path: req.shownPath(), Reason: fmt.Sprintf("entry %q may mount %s read-only only", r.entry.Name, m.Guest)}
		}
	}
	return nil
}

// resolve opens the file, hashes it from the opened descriptor and routes
// the hash under the policy. Denials are audited here.
func (k *Kernel) resolve(req *Request) (*route, string, error) {
	r, hash, fd, err := k.resolveFD(req)
	if err == nil {
		unix.Close(fd)
	}
	return r, hash, err
}

// resolveFD is resolve that also returns the opened file, which the caller
// closes: a child process is handed exactly what was hashed.
func (k *Kernel) resolveFD(req *Request) (_ *route, _ string, _ int, err error) {
	name := req.Path
	deny := func(hash, reason string) (*route, string, int, error) {
		k.audit.write(req.record(hash, "", "deny", reason))
		return nil, hash, -1, &DeniedError{Path: req.shownPath(), Hash: hash, Reason: reason}
	}
	var fd int
	if req.File != nil {
		// The caller's descriptor, duplicated: what is hashed is what runs.
		fd, err = unix.FcntlInt(req.File.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return deny("", "cannot use the file descriptor given: "+err.Error())
		}
	} else {
		// O_NONBLOCK: opening a FIFO must not wait for a writer.
		fd, err = unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	}
	if err != nil {
		err = &os.PathError{Op: "exec", Path: name, Err: err}
		if errors.Is(err, os.ErrNotExist) {
			k.audit.write(req.record("", "", "deny", "no such file"))
			return nil, "", -1, err
		}
		return deny("", "cannot open: "+err.(*os.PathError).Err.Error())
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	hash, reason := k.hashFD(fd)
	if reason != "" {
		return deny(hash, reason)
	}
	r, ok := k.routes[hash]
	if !ok {
		if req.scripts {
			if se, ok := asScript(fd, hash); ok {
				return nil, hash, -1, se
			}
		}
		return deny(hash, "not in the signed manifest: "+describe(fd))
	}
	if !r.startable {
		return deny(hash, fmt.Sprintf("entry %q is in the signed manifest but not loaded by this kernel (Options.Entries)", r.entry.Name))
	}
	if k.policy == PolicyPathHash {
		real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if err != nil {
			return deny(hash, "cannot resolve the opened file's path: "+err.Error())
		}
		if !r.paths[path.Clean(real)] {
			return deny(hash, fmt.Sprintf("policy path+hash: entry %q is not pinned to %s", r.entry.Name, real))
		}
	}
	return r, hash, fd, nil
}

// hashFD returns the SHA-256 of the open file. Only a file whose content
// can no longer change (see frozen) is remembered by its identity; every
// other file is read and hashed on every exec. An identity key alone cannot
// vouch for content: a write through a shared writable mapping whose page
// is already dirty changes neither size, mtime nor ctime (Linux stamps the
// times on the first write fault after writeback), so a cached digest could
// name bytes the file no longer holds. A reason is returned when the file
// may not be executed at all.
func (k *Kernel) hashFD(fd int) (string, string) {
	for attempt := 0; attempt < 3; attempt++ {
		var before unix.Statx_t
		if err := statx(fd, &before); err != nil {
			return "", "cannot stat: " + err.Error()
		}
		if reason := notRegular(uint32(before.Mode)); reason != "" {
			return "", reason
		}
		key := hashcache.KeyOfStatx(&before)
		cacheable := frozen(fd, &before) != ""
		if cacheable {
			if d, ok := k.hashes.Get(key); ok {
				k.hashHits.Add(1)
				return d, ""
			}
		}
		k.hashMisses.Add(1)
		started := time.Now()
		h := sha256.New()
		buf := hashBuffers.Get().(*[]byte)
		_, err := io.CopyBuffer(h, io.NewSectionReader(fdReader(fd), 0, 1<<62), *buf)
		hashBuffers.Put(buf)
		if err != nil {
			return "", "cannot read: " + err.Error()
		}
		digest := hex.EncodeToString(h.Sum(nil))
		var after unix.Statx_t
		if err := statx(fd, &after); err != nil {
			return "", "cannot stat: " + err.Error()
		}
		if hashcache.KeyOfStatx(&after) != key {
			continue // changed while being read: hash it again
		}
		if cacheable && settled(time.Unix(after.Ctime.Sec, int64(after.Ctime.Nsec)), started) {
			k.hashes.Put(key, digest)
		}
		return digest, ""
	}
	return "", "the file kept changing while it was being hashed"
}

// knownFor returns the digest of the open file for a child process to
// take without hashing again, when the file qualifies for the hash cache:
// its content can no longer change (frozen) and its last change is older
// than RacyWindow. The child checks the same before it takes it
// (seedHash). Nil otherwise.
func knownFor(fd int, hash string) *knownDigest {
	var st unix.Statx_t
	if statx(fd, &st) != nil || frozen(fd, &st) == "" || !settled(time.Unix(st.Ctime.Sec, int64(st.Ctime.Nsec)), time.Now()) {
		return nil
	}
	return &knownDigest{Hash: hash, Key: hashcache.KeyOfStatx(&st)}
}

// seedHash puts the parent's digest of the open file into the hash cache
// when the file is, here and now, what the parent hashed (the same
// identity) and still qualifies for the cache: a frozen file whose
// identity is unchanged has the content it had.
func (k *Kernel) seedHash(fd int, d *knownDigest) {
	var st unix.Statx_t
	if d == nil || statx(fd, &st) != nil || frozen(fd, &st) == "" || hashcache.KeyOfStatx(&st) != d.Key ||
		!settled(time.Unix(st.Ctime.Sec, int64(st.Ctime.Nsec)), time.Now()) {
		return
	}
	k.hashes.Put(d.Key, d.Hash)
}

// hashBuffers holds read buffers for hashing: 1 MiB reads take a
// python.wasm-sized file in a few system calls.
var hashBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func statx(fd int, st *unix.Statx_t) error {
	return unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_STATX_SYNC_AS_STAT, unix.STATX_BASIC_STATS, st)
}

// frozen names why the open file's content can no longer change, or
// returns "" when it still can. Two states qualify, each enforced by the
// kernel on a filesystem where that was checked:
//   - fs-verity (ext4, f2fs, btrfs): the file is read-only for good, and
//     enabling it fails while any writer, shared writable mappings
//     included, holds the file open;
//   - the immutable attribute on ext4, which flushes the file and
//     write-protects its mappings when set, so a later write through an
//     existing mapping faults. (tmpfs does not: a write through a mapping
//     made before chattr +i still lands, so it is not trusted there.)
//
// Clearing the immutable attribute changes the ctime, so the identity key
// changes before the content can. A read-only mount is not enough: the
// same filesystem may be writable through another mount, and a FUSE
// server answers reads as it likes.
func frozen(fd int, st *unix.Statx_t) string {
	attrs := st.Attributes & st.Attributes_mask
	if attrs&(unix.STATX_ATTR_VERITY|unix.STATX_ATTR_IMMUTABLE) == 0 {
		return ""
	}
	var fs unix.Statfs_t
	if unix.Fstatfs(fd, &fs) != nil {
		return ""
	}
	switch {
	case attrs&unix.STATX_ATTR_VERITY != 0 && (fs.Type == unix.EXT4_SUPER_MAGIC || fs.Type == unix.F2FS_SUPER_MAGIC || fs.Type == unix.BTRFS_SUPER_MAGIC):
		return "fs-verity"
	case attrs&unix.STATX_ATTR_IMMUTABLE != 0 && fs.Type == unix.EXT4_SUPER_MAGIC:
		return "immutable"
	}
	return ""
}

// settled reports whether a file last changed at changed can be cached
// under its identity key by a hash that started at started: the change must
// be older than RacyWindow, so that no later change can share its
// timestamps.
func settled(changed, started time.Time) bool {
	return changed.Before(started.Add(-RacyWindow))
}

// fdReader reads a file descriptor at offsets, without moving its offset.
type fdReader int

func (r fdReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := unix.Pread(int(r), p, off)
	if err != nil {
		return 0, err
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

func notRegular(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return ""
	case unix.S_IFDIR:
		return "is a directory, not a regular file"
	case unix.S_IFIFO:
		return "is a FIFO, not a regular file"
	case unix.S_IFSOCK:
		return "is a socket, not a regular file"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "is a device, not a regular file"
	}
	return "is not a regular file"
}

// describe names what kind of file an unlisted one looks like, so a denial
// says more than "unknown hash".
func describe(fd int) string {
	head := make([]byte, 4)
	n, _ := unix.Pread(fd, head, 0)
	head = head[:max(n, 0)]
	switch {
	case len(head) == 0:
		return "empty file"
	case bytes.HasPrefix(head, []byte("#!")):
		return "a #! script; only a guest's spawn runs one, through its listed interpreter"
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return "a native ELF executable; only code AOT-compiled into the signed megabinary runs"
	case bytes.HasPrefix(head, []byte("\x00asm")):
		return "a WebAssembly module that is not in the signed megabinary; unlisted modules are never compiled"
	}
	return "unknown content"
}

// mergeEnv returns base with over's variables added, replacing base's
// variables of the same name.
func mergeEnv(base, over []string) []string {
	names := map[string]bool{}
	for _, kv := range over {
		name, _, _ := strings.Cut(kv, "=")
		names[name] = true
	}
	var env []string
	for _, kv := range base {
		if name, _, _ := strings.Cut(kv, "="); !names[name] {
			env = append(env, kv)
		}
	}
	return append(env, over...)
}
