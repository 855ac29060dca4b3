package vkernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/compat-project/compat/vkernel/internal/hostabi"
	"golang.org/x/sys/unix"
)

// Shared hosts. A child process that Start starts (with
// Options.StartShare above 1) loads its entry's code once and runs
// several requests at once, each in an instance of its own over that one
// copy of the code (one compiled module, an instance per request, never
// an instance shared by two requests), and keeps taking requests as they
// end: the pool rarely needs a new process, and the code is loaded once
// per host instead of once per request.
//
// What is the request's own is what a process per request gave it: its
// fd table (the fds it was handed, its preopens), argv, environment, cwd
// and mounts, its signal dispositions and pending signals, its child
// processes and their process table, its host call counts file, its exit
// status; a trap ends its instance only. What the requests of one host
// share: the host's pid (every guest's getpid), its audit pipe (records
// are whole lines), and the Go runtime, whose stop-the-world phases wait
// for every running guest's next host call.
//
// Stopping. A request's guest is stopped through the vkernel's signal
// delivery: a signal the client sends (Process.Signal) reaches the guest
// by its disposition; one whose default action ends it, or Process.Kill,
// cancels the instance, which stops at its next host call (a blocking
// one returns at once). Guests run without wazero's per-loop checks, so
// one computing without host calls cannot be stopped there: when it has
// not ended shareStopGrace after it was told to, the host reports the
// request ended by the signal, stops taking requests (draining) and ends
// the request's child processes; the parent kills the host once its
// other requests are done, or after Options.StartDrain at most, with
// them. The host's Go runtime never waits for the stuck guest meanwhile:
// it collects garbage only while no request runs (collect).
//
// Protocol. The host's request socket carries, parent to host, a runSpec
// per request (childproto.go) with the request's control socket among its
// fds (runSpec.ControlFD), and host to parent single bytes: shareReady
// once the code is loaded (and after a pause), sharePause when it wants
// no more requests until it has collected its garbage. A control socket (SOCK_SEQPACKET) carries, parent
// to host, shareSignal messages, and the parent's shutdown for writing
// (Kill); host to parent, the request's shareResult, once.

// StartShareDefault is how many requests a child process of Start runs at
// once when Options.StartShare is 0.
const StartShareDefault = 8

// StartDrainDefault is Options.StartDrain's default.
const StartDrainDefault = 30 * time.Second

// shareStopGrace is how long a shared host's guest that has been told to
// stop may take to reach its next host call before the host drains.
const shareStopGrace = time.Second

// shareReady is the byte a shared host sends on its request socket once
// it has loaded its entry's code.
const shareReady = 'r'

// shareSignal is a control message to a shared host: a signal for the
// request's guest.
type shareSignal struct {
	Signal int `json:"signal"`
}

// shareResult is how a shared host's request ended.
type shareResult struct {
	// Code is the exit status (when Signal is 0).
	Code uint32 `json:"code"`
	// Signal is the signal that ended the guest: a default action, the
	// kill of a stuck guest (with Draining), or SIGABRT for a trap
	// (Trap says which).
	Signal int    `json:"signal,omitempty"`
	Trap   string `json:"trap,omitempty"`
	// Draining: the guest did not stop when told; the host takes no
	// more requests.
	Draining bool `json:"draining,omitempty"`
}

// ---- the host's side ----

// sharedHost is a shared host process's state.
type sharedHost struct {
	k    *Kernel
	boot *bootSpec
	// preWant asks prepareLoop for an instance made ahead, pre.
	preWant chan struct{}

	mu       sync.Mutex
	pre      *instance
	reqs     map[*hostReq]struct{}
	running  int // requests not yet ended or reported stuck
	draining bool
	idle     *sync.Cond

	// gcLock, heapAfterGC and paused: see collect.
	gcLock      sync.RWMutex
	heapAfterGC atomic.Uint64
	paused      atomic.Bool
}

// runSharedHost is a shared host's life, from runChild once the
// megabinary is open: it returns the exit status once its parent has
// closed the request socket and every request has ended, or dies when
// the lifeline is closed.
func runSharedHost(ctx context.Context, k *Kernel, boot *bootSpec) int {
	h := &sharedHost{k: k, boot: boot, preWant: make(chan struct{}, 1), reqs: map[*hostReq]struct{}{}}
	h.idle = sync.NewCond(&h.mu)
	// A guest computing without host calls holds its thread and P: the
	// host's own goroutines (control, lifeline) need Ps of their own.
	if runtime.GOMAXPROCS(0) < boot.Share+2 {
		runtime.GOMAXPROCS(boot.Share + 2)
	}
	// One instance made ahead, and made again as requests take it.
	if in, err := k.prepare(ctx, boot.Entry); err == nil {
		h.pre = in
		go h.prepareLoop(ctx)
	}
	// The load's garbage goes now; no collection runs by itself after.
	runtime.GC()
	h.heapAfterGC.Store(heapBytes())
	debug.SetGCPercent(-1)
	// Its requests' orphans are re-parented to it (orphans.go).
	go reapOrphansOnSIGCHLD()
	h.tell(shareReady)
	lifeline := os.NewFile(lifelineFD, "lifeline")
	go func() {
		// The parent closes the lifeline (or dies): every request's
		// children are ended in order, reaped, then this process.
		_, _ = io.Copy(io.Discard, lifeline)
		h.mu.Lock()
		var ctls []*procCtl
		for r := range h.reqs {
			if c := r.ctl(); c != nil {
				ctls = append(ctls, c)
			}
		}
		h.mu.Unlock()
		endAll(ctls)
		os.Exit(128 + int(unix.SIGKILL))
	}()
	for {
		spec, fds, err := receiveRun(requestFD)
		if err == errNoRun {
			break
		}
		if err != nil {
			// The parent writes whole specs: a message that is not one
			// leaves the socket's state unknown. Nothing more is taken,
			// and the parent's next send fails (EPIPE): it gives this
			// process no more requests.
			fmt.Fprintf(os.Stderr, "vkernel shared host %d: %v\n", os.Getpid(), err)
			_ = unix.Shutdown(requestFD, unix.SHUT_RD)
			break
		}
		h.start(ctx, spec, fds)
	}
	h.mu.Lock()
	for h.running > 0 {
		h.idle.Wait()
	}
	h.mu.Unlock()
	return 0
}

// prepareLoop makes an instance ahead for the next request each time
// one is taken.
func (h *sharedHost) prepareLoop(ctx context.Context) {
	for range h.preWant {
		in, err := h.k.prepare(ctx, h.boot.Entry)
		if err != nil {
			return
		}
		h.mu.Lock()
		if h.pre == nil {
			h.pre, in = in, nil
		}
		h.mu.Unlock()
		if in != nil {
			in.close()
		}
	}
}

// takeInstance returns the instance made ahead, or nil, and has the next
// one made.
func (h *sharedHost) takeInstance() *instance {
	h.mu.Lock()
	in := h.pre
	h.pre = nil
	h.mu.Unlock()
	select {
	case h.preWant <- struct{}{}:
	default:
	}
	return in
}

// Garbage collection in a shared host. A collection stops the world,
// which waits for every running guest's next host call: with one that
// computes without host calls, every request of the host would wait, and
// with a stuck one the host would hang. So the collector is off, and a
// shared host collects only while no request runs (gcLock: each request
// holds it for reading through its Exec, a collection for writing,
// taken only when free). When its heap has grown by sharePauseHeap and
// requests keep it busy, it asks its parent for no more requests
// (sharePause) until it has collected (shareReady again). A try follows
// each request's end, so a stream of short requests that overlap still
// leaves it moments with none running; the pause is for a request that
// runs throughout (TestShareCollectsUnderLoad), whose end the collection
// then waits for, the host taking no requests meanwhile.
const (
	shareCollectHeap = 32 << 20
	sharePauseHeap   = 256 << 20
	sharePause       = 'p'
)

// heapBytes is the Go heap's size in use.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// collect collects when the heap has grown enough since the last time
// and no request runs; otherwise, once it has grown too far, it pauses
// the host's intake until it can.
func (h *sharedHost) collect() {
	grown := heapBytes() - min(heapBytes(), h.heapAfterGC.Load())
	if grown < shareCollectHeap {
		return
	}
	if !h.gcLock.TryLock() {
		if grown >= sharePauseHeap && !h.paused.Swap(true) {
			h.tell(sharePause)
		}
		return
	}
	runtime.GC()
	h.heapAfterGC.Store(heapBytes())
	h.gcLock.Unlock()
	if h.paused.Swap(false) {
		h.tell(shareReady)
	}
}

// tell sends the parent a byte on the request socket.
func (h *sharedHost) tell(b byte) {
	for {
		_, err := unix.SendmsgN(requestFD, []byte{b}, nil, nil, unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			return
		}
	}
}

// hostReq is one request a shared host runs.
type hostReq struct {
	h       *sharedHost
	control int // the request's control socket

	mu       sync.Mutex
	proc     *hostabi.Process
	pctl     *procCtl
	queued   []syscall.Signal
	killSig  syscall.Signal // set when told to stop
	ended    bool           // Exec returned
	reported bool           // the result was sent
	watched  chan struct{}  // closed when watch returns
}

func (r *hostReq) ctl() *procCtl {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pctl
}

// start runs a request in a goroutine of its own.
func (h *sharedHost) start(ctx context.Context, spec *runSpec, fds []int) {
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if spec.ControlFD == nil || *spec.ControlFD < 0 || *spec.ControlFD >= len(fds) {
		// Nowhere to answer: the parent learns of it when this process
		// ends.
		fmt.Fprintf(os.Stderr, "vkernel shared host %d: a run spec without its control socket\n", os.Getpid())
		closeAll()
		_ = unix.Shutdown(requestFD, unix.SHUT_RD)
		return
	}
	refuse := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "vkernel shared host %d: run spec: %s\n", os.Getpid(), fmt.Sprintf(format, a...))
		if b, err := json.Marshal(shareResult{Code: exitCannotStart}); err == nil {
			_ = unix.Sendmsg(fds[*spec.ControlFD], b, nil, nil, unix.MSG_NOSIGNAL)
		}
		closeAll()
	}
	if spec.Fork != nil || spec.ExecFD < 0 || spec.ExecFD >= len(fds) || spec.ExecFD == *spec.ControlFD {
		refuse("no file to run")
		return
	}
	r := &hostReq{h: h, control: fds[*spec.ControlFD], watched: make(chan struct{})}
	// The fds the guest's files take are closed with its process; the
	// rest when the request ends.
	taken := map[int]bool{*spec.ControlFD: true}
	files := make([]hostabi.InheritedFile, len(spec.Files))
	for i, f := range spec.Files {
		if f.HostFD >= 0 {
			if f.HostFD >= len(fds) || taken[f.HostFD] {
				refuse("file %d names fd %d of %d", f.FD, f.HostFD, len(fds))
				return
			}
			taken[f.HostFD] = true
			f.HostFD = fds[f.HostFD]
		}
		files[i] = f
	}
	var rest []int
	for i, fd := range fds {
		if !taken[i] {
			rest = append(rest, fd)
		}
	}
	setup := &childSetup{entry: h.boot.Entry, files: files, cwd: spec.Cwd.first(), hasCwd: spec.HasCwd, depth: h.boot.Depth,
		dispositions: spec.Dispositions, instance: h.takeInstance(), onKilled: r.stopping}
	setup.started = r.attach
	execFD := fds[spec.ExecFD]
	req := Request{Args: spec.Args, Env: spec.Env, Mounts: spec.Mounts, child: setup,
		Path:   "/proc/self/fd/" + strconv.Itoa(execFD),
		origin: &spawnOrigin{guestPath: spec.GuestPath, hostPath: spec.HostPath, parent: spec.Parent, interpreters: spec.Interpreters}}
	h.k.seedHash(execFD, spec.Known)
	h.mu.Lock()
	h.reqs[r] = struct{}{}
	h.running++
	h.mu.Unlock()
	go r.watch()
	go func() {
		h.gcLock.RLock()
		res, err := h.k.Exec(ctx, req)
		h.gcLock.RUnlock()
		if !setup.filesTaken {
			for _, f := range files {
				if f.HostFD >= 0 {
					unix.Close(f.HostFD)
				}
			}
		}
		if setup.instance != nil && !setup.instanceUsed {
			setup.instance.close()
		}
		for _, fd := range rest {
			unix.Close(fd)
		}
		r.finish(res, err)
	}()
}

// attach is the request's childSetup.started: its process exists, and
// the signals that came first are delivered.
func (r *hostReq) attach(p *hostabi.Process, c *procCtl) {
	r.mu.Lock()
	r.proc, r.pctl = p, c
	queued := r.queued
	r.queued = nil
	r.mu.Unlock()
	for _, sig := range queued {
		p.Signal(sig)
	}
}

// signal delivers a signal to the request's guest, or queues it until
// the guest's process exists.
func (r *hostReq) signal(sig syscall.Signal) {
	r.mu.Lock()
	p := r.proc
	if p == nil {
		r.queued = append(r.queued, sig)
	}
	r.mu.Unlock()
	if p != nil {
		p.Signal(sig)
	}
}

// watch reads the request's control socket: signals, and the parent's
// shutdown, which kills the guest. It returns at the end of the socket
// (the parent's shutdown, or report's).
func (r *hostReq) watch() {
	defer close(r.watched)
	buf := make([]byte, 256)
	for {
		n, _, err := unix.Recvfrom(r.control, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			r.mu.Lock()
			done := r.reported
			r.mu.Unlock()
			if !done {
				r.signal(unix.SIGKILL)
			}
			return
		}
		var m shareSignal
		if json.Unmarshal(buf[:n], &m) == nil && m.Signal > 0 && m.Signal <= 64 {
			r.signal(syscall.Signal(m.Signal))
		}
	}
}

// stopping is the request's childSetup.onKilled: its guest must stop at
// its next host call. If it has not ended after shareStopGrace, the host
// drains.
func (r *hostReq) stopping(sig syscall.Signal) {
	r.mu.Lock()
	first := r.killSig == 0 && !r.ended
	if first {
		r.killSig = sig
	}
	r.mu.Unlock()
	if !first {
		return
	}
	time.AfterFunc(shareStopGrace, r.stuck)
}

// stuck drains the host when the request's guest has not ended: its
// request is reported ended by the signal it was told to stop with, its
// children are ended, and no request is taken after it.
func (r *hostReq) stuck() {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	sig, c := r.killSig, r.pctl
	r.mu.Unlock()
	h := r.h
	h.mu.Lock()
	h.draining = true
	h.mu.Unlock()
	fmt.Fprintf(os.Stderr, "vkernel shared host %d: a guest told to stop (signal %d) made no host call within %v: it is reported ended, the host drains\n",
		os.Getpid(), int(sig), shareStopGrace)
	if c != nil {
		for _, pid := range c.childPids() {
			c.teardown(pid)
		}
	}
	if r.report(shareResult{Signal: int(sig), Draining: true}) {
		h.ended()
	}
}

// finish reports the request's end, as a child process of its own would
// have ended.
func (r *hostReq) finish(res *Result, err error) {
	r.mu.Lock()
	r.ended = true
	r.mu.Unlock()
	h := r.h
	var m shareResult
	var denied *DeniedError
	var trap *TrapError
	switch {
	case errors.As(err, &denied):
		m.Code = exitDeniedInChild
	case errors.As(err, &trap):
		fmt.Fprintf(os.Stderr, "vkernel shared host %d: %v\n", os.Getpid(), err)
		m.Signal, m.Trap = int(unix.SIGABRT), err.Error()
	case err != nil:
		fmt.Fprintf(os.Stderr, "vkernel shared host %d: %v\n", os.Getpid(), err)
		m.Code = exitCannotStart
	case res.Signal != 0:
		m.Signal = int(res.Signal)
	default:
		m.Code = res.ExitCode & 0xff
	}
	reported := r.report(m)
	h.mu.Lock()
	delete(h.reqs, r)
	h.mu.Unlock()
	if reported {
		h.ended()
	}
	h.collect()
}

// ended counts a request off the running ones.
func (h *sharedHost) ended() {
	h.mu.Lock()
	h.running--
	h.idle.Broadcast()
	h.mu.Unlock()
}

// report sends the request's result, once, and closes its control
// socket; it reports whether this call sent it.
func (r *hostReq) report(m shareResult) bool {
	r.mu.Lock()
	if r.reported {
		r.mu.Unlock()
		return false
	}
	r.reported = true
	r.mu.Unlock()
	if b, err := json.Marshal(m); err == nil {
		for {
			err := unix.Sendmsg(r.control, b, nil, nil, unix.MSG_NOSIGNAL)
			if err != unix.EINTR {
				break
			}
		}
	}
	// watch sees the end of the socket and returns; then it is closed.
	_ = unix.Shutdown(r.control, unix.SHUT_RDWR)
	<-r.watched
	unix.Close(r.control)
	return true
}

// ---- the parent's side ----

// shareHost is a shared host process as its parent's pool holds it.
type shareHost struct {
	entry    string
	pid      int
	lifeline *os.File
	request  *os.File
	sendMu   sync.Mutex // one runSpec at a time on request
	// sendClosed, under sendMu: request is shut down (the host has
	// ended); heard is closed when its reader has returned.
	sendClosed bool
	heard      chan struct{}
	copied     chan struct{}
	exited     chan struct{}
	ws         unix.WaitStatus

	// Under the pool's lock.
	pidfd     int
	ready     bool
	paused    bool
	running   int
	draining  bool
	closing   bool
	idleSince time.Time
	// pauses counts the host's sharePause messages: each is followed
	// by a collection before it takes requests again (collect).
	pauses int
}

// kill kills the host process outright (its pidfd: never another
// process).
func (h *shareHost) kill(s *startPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.pidfd >= 0 {
		_ = unix.PidfdSendSignal(h.pidfd, unix.SIGKILL, nil, 0)
	}
}

// bootShareHost starts a shared host of r's entry, and the goroutines
// that follow it: its audit records, its readiness, its end.
func (k *Kernel) bootShareHost(r *route) (*shareHost, error) {
	// The host's requests make their own tables; this one is not used.
	table, err := newProcTable(1)
	if err != nil {
		return nil, err
	}
	defer table.close()
	w, auditR, err := k.startHost(r.entry.Name, 0, table, k.pool.share)
	if err != nil {
		return nil, err
	}
	pidfd, err := unix.PidfdOpen(w.pid, 0)
	if err != nil {
		auditR.Close()
		w.discard()
		return nil, fmt.Errorf("pidfd of child %d: %w", w.pid, err)
	}
	h := &shareHost{entry: r.entry.Name, pid: w.pid, pidfd: pidfd, lifeline: w.lifeline, request: w.request,
		copied: make(chan struct{}), exited: make(chan struct{}), heard: make(chan struct{}), idleSince: time.Now()}
	go func() {
		defer close(h.copied)
		defer auditR.Close()
		k.copyAudit(auditR)
	}()
	fd := int(h.request.Fd())
	go func() {
		defer close(h.heard)
		b := make([]byte, 16)
		for {
			n, _, err := unix.Recvfrom(fd, b, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n == 0 {
				return
			}
			k.pool.mu.Lock()
			switch b[0] {
			case shareReady:
				h.ready, h.paused = true, false
			case sharePause:
				h.paused = true
				h.pauses++
			}
			k.pool.mu.Unlock()
		}
	}()
	go k.pool.reapHost(h)
	return h, nil
}

// reapHost waits for the host's end and forgets it.
func (s *startPool) reapHost(h *shareHost) {
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(h.pid, &ws, 0, nil); err != unix.EINTR {
			break
		}
	}
	childReaped(h.pid)
	s.mu.Lock()
	h.ws = ws
	unix.Close(h.pidfd)
	h.pidfd = -1
	hs := s.hosts[h.entry]
	for i, x := range hs {
		if x == h {
			s.hosts[h.entry] = append(hs[:i:i], hs[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	h.lifeline.Close()
	// The socket is shut down, which ends its reader, before it is
	// closed: no one uses its number after.
	h.sendMu.Lock()
	h.sendClosed = true
	_ = unix.Shutdown(int(h.request.Fd()), unix.SHUT_RDWR)
	h.sendMu.Unlock()
	<-h.heard
	h.request.Close()
	select {
	case <-h.copied:
	case <-time.After(time.Second):
	}
	close(h.exited)
	s.hostsWG.Done()
}

// assign picks the host of r's entry a request goes to: a ready one with
// room (the busiest, so that the others can go idle), else one still
// loading with room, else a new one. The host counts the request running.
func (s *startPool) assign(k *Kernel, r *route) (*shareHost, error) {
	entry := r.entry.Name
	s.mu.Lock()
	var best *shareHost
	for _, h := range s.hosts[entry] {
		if h.draining || h.closing || h.paused || h.running >= s.share {
			continue
		}
		if best == nil || (h.ready && !best.ready) || (h.ready == best.ready && h.running > best.running) {
			best = h
		}
	}
	if best != nil {
		best.running++
		s.mu.Unlock()
		return best, nil
	}
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("the kernel is closed")
	}
	s.mu.Unlock()
	h, err := k.bootShareHost(r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.add(h)
	h.running++
	s.mu.Unlock()
	return h, nil
}

// add puts a started host in the pool. s.mu is held.
func (s *startPool) add(h *shareHost) {
	if s.hosts == nil {
		s.hosts = map[string][]*shareHost{}
	}
	s.hosts[h.entry] = append(s.hosts[h.entry], h)
	s.hostsWG.Add(1)
	s.scheduleTrim()
}

// release counts a request of h off; a draining host with nothing left
// running is killed, a closing one ended.
func (s *startPool) release(h *shareHost) {
	s.mu.Lock()
	h.running--
	if h.running == 0 {
		h.idleSince = time.Now()
	}
	kill := h.draining && h.running == 0
	end := h.closing && h.running == 0
	s.mu.Unlock()
	if kill {
		h.kill(s)
	}
	if end {
		h.lifeline.Close()
	}
}

// drainHost stops giving h requests, and kills it once its requests are
// done or after the drain bound.
func (s *startPool) drainHost(h *shareHost) {
	s.mu.Lock()
	first := !h.draining
	h.draining = true
	s.mu.Unlock()
	if first {
		go func() {
			select {
			case <-h.exited:
			case <-time.After(s.drain):
				h.kill(s)
			}
		}()
	}
}

// refillShared starts a host of r's entry ahead of need when none of its
// hosts has room for another request and none is starting.
func (s *startPool) refillShared(k *Kernel, r *route) {
	entry := r.entry.Name
	need := func() bool {
		room := 0
		for _, h := range s.hosts[entry] {
			if !h.draining && !h.closing && !h.paused {
				room += s.share - h.running
			}
		}
		return room == 0 && s.booting[entry] == 0
	}
	boot := func() (*shareHost, error) { return k.bootShareHost(r) }
	keep := func(h *shareHost) func() {
		// In the pool even when it was closed meanwhile: reapHost
		// counts it off once it has ended, as the lifeline's close
		// asks.
		s.add(h)
		k.warmStarts.Add(1)
		if s.closed {
			return func() { h.lifeline.Close() }
		}
		return nil
	}
	bootAhead(s, entry, need, boot, keep)
}

// trimShared ends the hosts of each entry that have run nothing for idle,
// but one per entry. It reports whether hosts are left. s.mu is held.
func (s *startPool) trimShared(idle time.Duration) (drop []*shareHost, left int) {
	for _, hs := range s.hosts {
		kept := 0
		for _, h := range hs {
			if h.running == 0 && !h.closing && kept > 0 && time.Since(h.idleSince) >= idle {
				h.closing = true
				drop = append(drop, h)
				continue
			}
			if !h.closing {
				kept++
			}
			left++
		}
	}
	return drop, left
}

// startShared is Start's handing of a request to a shared host.
func (k *Kernel) startShared(r *route, spec *runSpec, fds []int) (*shareHost, *os.File, bool, error) {
	for attempt := 0; ; attempt++ {
		h, err := k.pool.assign(k, r)
		if err != nil {
			return nil, nil, false, err
		}
		k.pool.mu.Lock()
		warm := h.ready
		k.pool.mu.Unlock()
		socks, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			k.pool.release(h)
			return nil, nil, false, err
		}
		cfd := len(fds)
		spec.ControlFD = &cfd
		h.sendMu.Lock()
		if h.sendClosed {
			err = fmt.Errorf("instance process %d has ended", h.pid)
		} else {
			err = sendRun(int(h.request.Fd()), spec, append(fds[:len(fds):len(fds)], socks[1]))
		}
		h.sendMu.Unlock()
		unix.Close(socks[1])
		if err == nil {
			return h, os.NewFile(uintptr(socks[0]), "vkernel-control"), warm, nil
		}
		unix.Close(socks[0])
		// The host is gone or broken: no more requests for it.
		k.pool.drainHost(h)
		k.pool.release(h)
		if attempt > 0 {
			return nil, nil, false, err
		}
	}
}

// reapShared waits for the end of a request a shared host runs.
func (p *Process) reapShared() {
	res := shareResult{}
	got := false
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(int(p.control.Fd()), buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err == nil && n > 0 && json.Unmarshal(buf[:n], &res) == nil {
			got = true
		}
		break
	}
	if res.Draining {
		p.k.pool.drainHost(p.host)
	}
	if !got {
		// The host ended without a word: the request ended with it.
		<-p.host.exited
	}
	p.mu.Lock()
	p.duration = time.Since(p.start)
	switch {
	case got && res.Signal != 0:
		p.ws = unix.WaitStatus(res.Signal & 0x7f)
	case got:
		p.ws = unix.WaitStatus((res.Code & 0xff) << 8)
	case p.host.ws.Signaled() || p.host.ws.Exited() && p.host.ws.ExitStatus() != 0:
		p.ws = p.host.ws
	default:
		p.werr = fmt.Errorf("vkernel shared host %d ended without running the request", p.host.pid)
	}
	p.control.Close()
	p.control = nil
	p.mu.Unlock()
	p.k.pool.release(p.host)
	p.k.pool.end(p.entry)
	close(p.done)
}

// signalShared sends sig to the request's guest through its host.
func (p *Process) signalShared(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.control == nil {
		return os.ErrProcessDone
	}
	b, _ := json.Marshal(shareSignal{Signal: int(sig)})
	for {
		err := unix.Sendmsg(int(p.control.Fd()), b, nil, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		switch err {
		case unix.EINTR:
			continue
		case unix.EPIPE, unix.ECONNRESET:
			return os.ErrProcessDone
		}
		return err
	}
}

// killShared asks the host to end the request's guest (the control
// socket's end for writing); a host that does not answer within the
// drain bound is killed.
func (p *Process) killShared() {
	p.mu.Lock()
	if p.control != nil {
		_ = unix.Shutdown(int(p.control.Fd()), unix.SHUT_WR)
	}
	p.mu.Unlock()
	go func() {
		select {
		case <-p.done:
		case <-time.After(shareStopGrace + p.k.pool.drain):
			p.host.kill(&p.k.pool)
		}
	}()
}
