package vkernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/compat-project/compat/vkernel/internal/hostabi"
	"golang.org/x/sys/unix"
)

// Start runs a request in a vkernel child process of its own, the top of
// a new process tree, and returns once that process has been handed the
// request: the guest then runs concurrently with the caller, which waits
// for it with Process.Wait. It is Exec for a long-lived program that runs
// requests for others (compat serve): a guest that computes without host
// calls holds up nothing of the caller's (Go cannot preempt native wasm
// code, so an in-process guest would stall the caller's garbage
// collections), host signals reach it by its own dispositions, and
// Process.Kill ends it and its children wherever it is.
//
// The file is routed by hash here under the kernel's policy, with an
// audit record, exactly as Exec routes it (a *DeniedError when refused;
// nothing starts), and again in the child, which opens and verifies the
// megabinary itself and is handed the descriptor that was hashed, never a
// path. Stdin, Stdout and Stderr must each be nil (/dev/null) or an
// *os.File, whose descriptor the guest uses directly: nothing is copied
// through the caller. Listeners and Signals are not supported; send
// signals with Process.Signal. When ctx ends, the process is killed as by
// Process.Kill.
//
// A child process loads its entry's code before it is given a request;
// Start takes one started ahead of need when there is one (see
// Options.StartWarm) and otherwise starts one and waits for its load.
// Start needs a kernel opened from a file with a ChildCommand.
func (k *Kernel) Start(ctx context.Context, req Request) (*Process, error) {
	if len(k.childCmd) == 0 || k.path == "" {
		return nil, errors.New("start: the kernel has no child command (Options.ChildCommand) or was not opened from a file")
	}
	if len(req.Listeners) > 0 || req.Signals != nil {
		return nil, errors.New("start: Listeners and Signals are not supported; use Process.Signal")
	}
	var stdio [3]*os.File
	for i, s := range []any{req.Stdin, req.Stdout, req.Stderr} {
		switch f := s.(type) {
		case nil:
		case *os.File:
			stdio[i] = f
		default:
			return nil, fmt.Errorf("start: stdio fd %d is a %T; want an *os.File or nil", i, s)
		}
	}
	if req.Path == "" {
		req.Path = "(file descriptor)"
	}
	start := time.Now()
	r, hash, fd, err := k.resolveFD(&req)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if d := k.checkResources(r, &req); d != nil {
		k.audit.write(req.record(hash, r.entry.Name, "deny", d.Reason))
		d.Hash = hash
		return nil, d
	}
	// What the child is handed: the file, then its stdio.
	fds := []int{fd}
	files := make([]hostabi.InheritedFile, 3)
	var devnull *os.File
	for i, f := range stdio {
		if f == nil {
			if devnull == nil {
				if devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					return nil, err
				}
				defer devnull.Close()
			}
			f = devnull
		}
		fds = append(fds, int(f.Fd()))
		files[i] = hostabi.StdioFile(uint32(i), len(fds)-1)
	}
	// The mounts' preopens at 3..., as a top-level exec has them.
	for i, m := range req.Mounts {
		files = append(files, hostabi.PreopenFile(uint32(3+i), i, m.Guest))
	}
	args := req.Args
	if len(args) == 0 {
		args = []string{req.Path}
	}
	spec := &runSpec{ExecFD: 0, HostPath: req.Path, Args: args, Env: req.Env, Mounts: req.Mounts,
		Files: files, Cwd: one(req.Cwd), HasCwd: req.Cwd != "", Known: knownFor(fd, hash)}
	entry := r.entry.Name
	k.pool.begin(entry)
	if k.pool.share > 1 {
		return k.startOnShared(ctx, &req, r, hash, spec, fds, start)
	}
	w, warm, err := k.pool.send(k, r, spec, fds)
	rec := req.record(hash, entry, "allow", "")
	if err != nil {
		k.pool.end(entry)
		rec.Decision, rec.Reason = "deny", "the child process did not start: "+err.Error()
		k.audit.write(rec)
		return nil, fmt.Errorf("start %s: the child process did not start: %w", req.shownPath(), err)
	}
	rec.Pid = w.host.pid
	k.audit.write(rec)
	if warm {
		k.warmRuns.Add(1)
	} else {
		k.coldStarts.Add(1)
	}
	p := &Process{k: k, entry: entry, hash: hash, pid: w.host.pid, pidfd: w.pidfd, lifeline: w.host.lifeline,
		auditR: w.auditR, copied: w.copied, start: start, done: make(chan struct{})}
	go p.reap()
	go k.pool.refill(k, r)
	p.watchContext(ctx)
	return p, nil
}

// startOnShared is Start's end with shared hosts (share.go).
func (k *Kernel) startOnShared(ctx context.Context, req *Request, r *route, hash string, spec *runSpec, fds []int, start time.Time) (*Process, error) {
	entry := r.entry.Name
	h, control, warm, err := k.startShared(r, spec, fds)
	rec := req.record(hash, entry, "allow", "")
	if err != nil {
		k.pool.end(entry)
		rec.Decision, rec.Reason = "deny", "the child process did not start: "+err.Error()
		k.audit.write(rec)
		return nil, fmt.Errorf("start %s: the child process did not start: %w", req.shownPath(), err)
	}
	rec.Pid = h.pid
	k.audit.write(rec)
	if warm {
		k.warmRuns.Add(1)
	} else {
		k.coldStarts.Add(1)
	}
	p := &Process{k: k, entry: entry, hash: hash, pid: h.pid, pidfd: -1, host: h, control: control, start: start, done: make(chan struct{})}
	go p.reapShared()
	go k.pool.refillShared(k, r)
	p.watchContext(ctx)
	return p, nil
}

// watchContext kills the process when ctx ends first.
func (p *Process) watchContext(ctx context.Context) {
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				p.Kill()
			case <-p.done:
			}
		}()
	}
}

// Process is a vkernel process that Kernel.Start started: a guest in a
// child host process of its own, or in an instance of its own in a shared
// host (Options.StartShare; share.go).
type Process struct {
	k           *Kernel
	entry, hash string
	pid         int
	pidfd       int
	lifeline    *os.File
	auditR      *os.File
	copied      chan struct{}
	start       time.Time
	// host and control, for a request a shared host runs: the host and
	// the request's control socket (nil once the request has ended).
	host    *shareHost
	control *os.File

	done     chan struct{}
	mu       sync.Mutex
	ws       unix.WaitStatus
	werr     error
	duration time.Duration
	killing  bool
}

// Pid is the host process's pid: the guest's pid (shared by the guests
// of one shared host).
func (p *Process) Pid() int { return p.pid }

// Entry is the manifest entry the process runs.
func (p *Process) Entry() string { return p.entry }

// Signal sends sig to the process (its guest takes it by its disposition:
// ABI.md, "Signals"). A process that has ended is not signalled (the pid
// is never reused for it: the signal goes through a pidfd), and
// os.ErrProcessDone is returned.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.host != nil {
		return p.signalShared(sig)
	}
	// Under the lock: reap closes the pidfd, whose number could then
	// name another process's.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd < 0 {
		return os.ErrProcessDone
	}
	err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	if err == unix.ESRCH {
		return os.ErrProcessDone
	}
	return err
}

// Kill ends the process and the processes it started: its lifeline is
// closed, on which it ends its children in order and exits; after a grace
// it is killed outright. It returns at once; Wait reports the end.
func (p *Process) Kill() {
	p.mu.Lock()
	if p.killing {
		p.mu.Unlock()
		return
	}
	p.killing = true
	p.mu.Unlock()
	if p.host != nil {
		p.killShared()
		return
	}
	p.lifeline.Close()
	go func() {
		select {
		case <-p.done:
		case <-time.After(grace(0)):
			_ = p.Signal(unix.SIGKILL)
		}
	}()
}

// Wait waits for the process to end and returns how: the guest's exit
// status, or Result.Signal and an ExitCode of 128 plus it when a signal
// ended it (a guest that trapped dies of SIGABRT, ABI.md "Processes"). A
// child whose own routing denied the file exits 126, one that could not
// start 127.
func (p *Process) Wait() (*Result, error) {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr != nil {
		return nil, p.werr
	}
	res := &Result{Entry: p.entry, Hash: p.hash, Duration: p.duration}
	switch {
	case p.ws.Exited():
		res.ExitCode = uint32(p.ws.ExitStatus())
	case p.ws.Signaled():
		res.Signal = p.ws.Signal()
		res.ExitCode = 128 + uint32(res.Signal)
	}
	return res, nil
}

// Done is closed when the process has ended and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// reap waits for the process, and frees what it held.
func (p *Process) reap() {
	var ws unix.WaitStatus
	var err error
	for {
		_, err = unix.Wait4(p.pid, &ws, 0, nil)
		if err != unix.EINTR {
			break
		}
	}
	childReaped(p.pid)
	p.mu.Lock()
	p.ws, p.duration = ws, time.Since(p.start)
	if err != nil {
		p.werr = fmt.Errorf("waiting for vkernel process %d: %w", p.pid, err)
	}
	unix.Close(p.pidfd)
	p.pidfd = -1
	p.mu.Unlock()
	p.lifeline.Close()
	// The child's audit records are all in the log before Wait returns
	// (its own children may hold the pipe a little longer).
	select {
	case <-p.copied:
	case <-time.After(time.Second):
	}
	p.k.pool.end(p.entry)
	close(p.done)
}

// StartWarmDefault is how many child processes per entry Start keeps
// started ahead of need at most when Options.StartWarm is 0.
const StartWarmDefault = 1

// startPool holds the child processes Start keeps started ahead of need:
// per entry, one more than the entry has running (its load), up to the
// kernel's bound. Each runs one request and ends; none is ever given two.
type startPool struct {
	mu      sync.Mutex
	max     int
	ready   map[string][]*startHost
	booting map[string]int
	running map[string]int
	closed  bool
	// idle is how long a ready child beyond what the load needs is kept
	// (0: startIdle); trimming is set while a trim is scheduled.
	idle     time.Duration
	trimming bool

	// Shared hosts (share.go): requests each runs at once (1: none, a
	// process per request), the drain bound, the hosts by entry, and
	// one count per host until it has been reaped.
	share   int
	drain   time.Duration
	hosts   map[string][]*shareHost
	hostsWG sync.WaitGroup
}

// startIdle is how long Start keeps a ready child that the load no longer
// needs (after a burst) before ending it: each holds its entry's code.
const startIdle = 30 * time.Second

// startHost is a child host process started for Start, not yet given a
// request, with what its parent holds of it.
type startHost struct {
	since  time.Time // ready since
	host   *child
	pidfd  int
	auditR *os.File
	copied chan struct{}
}

func (h *startHost) discard() {
	h.host.discard()
	unix.Close(h.pidfd)
	<-h.copied
}

func (s *startPool) begin(entry string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = map[string]int{}
	}
	s.running[entry]++
}

func (s *startPool) end(entry string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running[entry]--
}

// take returns a ready child of entry, or nil.
func (s *startPool) take(entry string) *startHost {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs := s.ready[entry]
	if len(hs) == 0 {
		return nil
	}
	h := hs[len(hs)-1]
	s.ready[entry] = hs[:len(hs)-1]
	return h
}

// send hands spec to a ready child of the entry, or to one started now
// when none is ready or the ready one has died, and reports which.
func (s *startPool) send(k *Kernel, r *route, spec *runSpec, fds []int) (*startHost, bool, error) {
	if h := s.take(r.entry.Name); h != nil {
		if err := sendRun(int(h.host.request.Fd()), spec, fds); err == nil {
			h.host.request.Close()
			return h, true, nil
		}
		h.discard()
	}
	h, err := k.bootStartHost(r)
	if err != nil {
		return nil, false, err
	}
	if err := sendRun(int(h.host.request.Fd()), spec, fds); err != nil {
		h.discard()
		return nil, false, err
	}
	h.host.request.Close()
	return h, false, nil
}

// refill starts children of the entry until one more than it has running
// are ready or starting, up to the bound.
func (s *startPool) refill(k *Kernel, r *route) {
	entry := r.entry.Name
	need := func() bool { return len(s.ready[entry])+s.booting[entry] < min(s.running[entry]+1, s.max) }
	boot := func() (*startHost, error) { return k.bootStartHost(r) }
	keep := func(h *startHost) func() {
		if s.closed {
			return h.discard
		}
		if s.ready == nil {
			s.ready = map[string][]*startHost{}
		}
		h.since = time.Now()
		s.ready[entry] = append(s.ready[entry], h)
		k.warmStarts.Add(1)
		s.scheduleTrim()
		return nil
	}
	for bootAhead(s, entry, need, boot, keep) {
	}
}

// bootAhead starts a child process of entry ahead of need: the part that
// refill (a process per request) and refillShared (shared hosts) share.
// Under s.mu, when the pool is not closed and need says one is wanted, the
// entry counts one booting while boot starts it (without s.mu, which the
// start would hold for its whole load); then, under s.mu again, keep takes
// the process started and returns what is to be done with it once s.mu is
// released (nil: nothing). It reports whether one was started.
func bootAhead[H any](s *startPool, entry string, need func() bool, boot func() (H, error), keep func(H) func()) bool {
	s.mu.Lock()
	if s.closed || !need() {
		s.mu.Unlock()
		return false
	}
	if s.booting == nil {
		s.booting = map[string]int{}
	}
	s.booting[entry]++
	s.mu.Unlock()
	h, err := boot()
	s.mu.Lock()
	s.booting[entry]--
	if err != nil {
		s.mu.Unlock()
		return false
	}
	after := keep(h)
	s.mu.Unlock()
	if after != nil {
		after()
	}
	return true
}

// scheduleTrim makes sure a trim runs once the idle time has passed.
// s.mu is held.
func (s *startPool) scheduleTrim() {
	if s.trimming {
		return
	}
	s.trimming = true
	idle := s.idle
	if idle <= 0 {
		idle = startIdle
	}
	time.AfterFunc(idle, func() { s.trim(idle) })
}

// trim ends the ready children beyond one more than each entry has
// running that have waited longer than idle (the oldest first): the pool
// shrinks back after a burst. It runs again while any are ready.
func (s *startPool) trim(idle time.Duration) {
	s.mu.Lock()
	s.trimming = false
	var drop []*startHost
	left := 0
	for entry, hs := range s.ready {
		extra := len(hs) - min(s.running[entry]+1, s.max)
		// hs is oldest first: take from the front.
		for extra > 0 && len(hs) > 0 && time.Since(hs[0].since) >= idle {
			drop, hs, extra = append(drop, hs[0]), hs[1:], extra-1
		}
		s.ready[entry] = hs
		left += len(hs)
	}
	dropShared, leftShared := s.trimShared(idle)
	left += leftShared
	if left > 0 && !s.closed {
		s.scheduleTrim()
	}
	s.mu.Unlock()
	for _, h := range drop {
		h.discard()
	}
	for _, h := range dropShared {
		h.lifeline.Close()
	}
}

// close discards the ready children and ends the shared hosts that run
// nothing (the others end with their last request); no more are started.
// It waits a little for the hosts it ended.
func (s *startPool) close() {
	s.mu.Lock()
	s.closed = true
	ready := s.ready
	s.ready = nil
	var idle []*shareHost
	for _, hs := range s.hosts {
		for _, h := range hs {
			if !h.closing {
				h.closing = true
				if h.running == 0 {
					idle = append(idle, h)
				}
			}
		}
	}
	s.mu.Unlock()
	for _, hs := range ready {
		for _, h := range hs {
			h.discard()
		}
	}
	for _, h := range idle {
		h.lifeline.Close()
	}
	for _, h := range idle {
		select {
		case <-h.exited:
		case <-time.After(grace(0)):
			h.kill(s)
			<-h.exited
		}
	}
}

// Prewarm starts, for each named entry, a child process for Start ahead
// of the first request (Options.StartWarm bounds how many are kept). It
// returns at once; the children load their code meanwhile.
func (k *Kernel) Prewarm(entries ...string) error {
	for _, e := range entries {
		var r *route
		for _, x := range k.routes {
			if x.entry.Name == e && x.startable {
				r = x
			}
		}
		if r == nil {
			return fmt.Errorf("prewarm: entry %q is not loaded", e)
		}
		if k.pool.share > 1 {
			go k.pool.refillShared(k, r)
		} else {
			go k.pool.refill(k, r)
		}
	}
	return nil
}

// bootStartHost starts a child host process of r's entry for Start: the
// top of a new tree, whose process table has one slot per process the
// entry may start.
func (k *Kernel) bootStartHost(r *route) (*startHost, error) {
	table, err := newProcTable(max(1, r.entry.Resources.Processes))
	if err != nil {
		return nil, err
	}
	// The child maps the table; this process has no use for it.
	defer table.close()
	w, auditR, err := k.startHost(r.entry.Name, 0, table, 0)
	if err != nil {
		return nil, err
	}
	pidfd, err := unix.PidfdOpen(w.pid, 0)
	if err != nil {
		auditR.Close()
		w.discard()
		return nil, fmt.Errorf("pidfd of child %d: %w", w.pid, err)
	}
	h := &startHost{host: w, pidfd: pidfd, auditR: auditR, copied: make(chan struct{})}
	go func() {
		defer close(h.copied)
		defer auditR.Close()
		k.copyAudit(auditR)
	}()
	return h, nil
}
