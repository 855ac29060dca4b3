package vkernel

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/compat-project/compat/vkernel/internal/hostabi"
	"golang.org/x/sys/unix"
)

// childSpecEnv names the environment variable that tells a program it was
// started as a vkernel child process: it holds the number of the inherited
// fd from which the child reads its bootSpec (JSON), bootFD.
const childSpecEnv = "VKERNEL_CHILD_SPEC_FD"

// ChildMain runs this process as a vkernel child process, and exits with
// the child's status, when the process was started as one (the program is
// the ChildCommand of a kernel whose guest spawned or forked); otherwise it
// returns at once. A program that sets Options.ChildCommand to itself
// calls it first thing in main, before flags are parsed or anything else
// starts (a test binary: in TestMain).
//
// The child opens the megabinary the parent names, checks its signature
// with the parent's trusted keys and its digest against the parent's,
// loads only the child's entry, and routes the file it was handed (an
// inherited fd, not a path) by its SHA-256 again, as any exec. Its audit
// records go to the parent's log.
func ChildMain() {
	v, ok := os.LookupEnv(childSpecEnv)
	if !ok {
		return
	}
	os.Unsetenv(childSpecEnv)
	os.Exit(runChild(v))
}

// rawStrings is a []string that JSON carries byte for byte, as base64:
// encoding/json would replace invalid UTF-8 with U+FFFD, and a guest's
// argv, environment and paths may hold any byte but NUL.
type rawStrings []string

// MarshalJSON implements json.Marshaler.
func (s rawStrings) MarshalJSON() ([]byte, error) {
	b := make([][]byte, len(s))
	for i, x := range s {
		b[i] = []byte(x)
	}
	return json.Marshal(b)
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *rawStrings) UnmarshalJSON(data []byte) error {
	var b [][]byte
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	*s = make(rawStrings, len(b))
	for i, x := range b {
		(*s)[i] = string(x)
	}
	return nil
}

// one is s as a rawStrings of one item, or none when s is empty.
func one(s string) rawStrings {
	if s == "" {
		return nil
	}
	return rawStrings{s}
}

// first is the only item of s, or "".
func (s rawStrings) first() string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// childSetup is what an exec in a child process (or a root exec that
// starts children) knows beyond its Request.
type childSetup struct {
	entry        string // a fork's: the parent's entry
	files        []hostabi.InheritedFile
	cwd          string
	hasCwd       bool
	depth        int
	table        *procTable
	dispositions []uint8
	fork         *forkSpec
	// instance is the entry's module, instantiated while the child
	// waited for what to run.
	instance *instance
	// started is called with the running exec's process, so that the
	// child's lifeline can tear it down.
	started func(*hostabi.Process, *procCtl)
	// signals routes the child host process's signals (set up by runChild).
	signals *sigRouter
	// onKilled, in a shared host (share.go), is told when a signal's
	// default action ends the guest: it must stop at its next host call.
	onKilled func(syscall.Signal)
	// filesTaken is set once files have been handed to the guest's
	// process, which closes their host fds (hostabi.NewProcess);
	// instanceUsed once instance has been taken by the exec, which
	// closes it.
	filesTaken, instanceUsed bool
}

// Exit statuses of a child process that did not run its guest.
const (
	exitDeniedInChild = 126
	exitCannotStart   = 127
)

// childGrace is, per level of nesting left below a process, how long a
// child it tears down has to end its own children in order (its lifeline
// closed) before it is killed: a parent always waits longer than its child
// waits for its own, so that a child killed outright is the exception.
const childGrace = 250 * time.Millisecond

// grace is how long a process at depth waits for a child it tears down.
func grace(depth int) time.Duration { return childGrace * time.Duration(maxSpawnDepth-depth) }

// procCtl is an exec's part in the process model: the children it started
// (their lifelines and audit pipes), the tree's process table and depth.
type procCtl struct {
	k      *Kernel
	entry  string
	limit  int // the entry's resources.processes
	req    *Request
	depth  int
	args   []string
	env    []string
	mounts []Mount

	mu sync.Mutex
	// table is the tree's; owned is set when this exec made it (the top
	// of the tree), which closes it.
	table *procTable
	owned bool
	kids  map[int]*childRec
	// warm holds a started child per entry that waits for what to run
	// (warm.go).
	warm    map[string]*child
	started map[string]int // children started, by entry
	// copiers copy children's audit records into the log.
	copiers sync.WaitGroup
	audits  []*os.File
}

type childRec struct {
	lifeline *os.File // write end; closing it asks the child to end
}

// child is a started child host process that has not been given what to
// run yet.
type child struct {
	pid      int
	lifeline *os.File // write end
	request  *os.File // the parent's end of the request socket
}

// discard kills a child that was never given what to run and reaps it.
func (w *child) discard() {
	w.request.Close()
	w.lifeline.Close()
	_ = unix.Kill(w.pid, unix.SIGKILL)
	var ws unix.WaitStatus
	for {
		if _, err := unix.Wait4(w.pid, &ws, 0, nil); err != unix.EINTR {
			childReaped(w.pid)
			return
		}
	}
}

func (c *procCtl) close() {
	unregisterCtl(c)
	c.mu.Lock()
	for _, rec := range c.kids {
		rec.lifeline.Close()
	}
	c.kids = nil
	warm := c.warm
	c.warm = nil
	c.mu.Unlock()
	for _, w := range warm {
		w.discard()
	}
	c.mu.Lock()
	audits := c.audits
	c.audits = nil
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.copiers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	for _, f := range audits {
		f.Close()
	}
	c.copiers.Wait()
	if c.owned {
		c.table.close()
	}
}

// childPids returns the children started and not yet reaped, warm ones
// included.
func (c *procCtl) childPids() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	pids := make([]int, 0, len(c.kids)+len(c.warm))
	for pid := range c.kids {
		pids = append(pids, pid)
	}
	for _, w := range c.warm {
		pids = append(pids, w.pid)
	}
	return pids
}

// inTree reports whether pid is a live process of this exec's tree below
// its top (in the tree's table): a child process, which takes host signals
// by its guest's dispositions, so proc_kill may signal it. A slot can
// outlive its process (one whose parent was killed outright waits for a
// sweep), so the process must also run this program's own executable, as
// every vkernel child process does: a reused pid is not signalled.
func (c *procCtl) inTree(pid int) bool {
	c.mu.Lock()
	t := c.table
	c.mu.Unlock()
	if t == nil || !t.has(pid) {
		return false
	}
	self, err1 := os.Readlink("/proc/self/exe")
	exe, err2 := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return err1 == nil && err2 == nil && self == exe
}

// tableFor returns the tree's process table, making it at the top.
func (c *procCtl) tableFor() (*procTable, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.table == nil {
		t, err := newProcTable(c.limit)
		if err != nil {
			return nil, err
		}
		c.table, c.owned = t, true
	}
	return c.table, nil
}

// mayStart checks the entry's permission to start processes and the
// nesting depth, auditing a refusal.
func (c *procCtl) mayStart(action, detail string) hostabi.Errno {
	if len(c.k.childCmd) == 0 || c.k.path == "" {
		return hostabi.ENOSYS
	}
	if c.limit <= 0 {
		c.k.audit.write(AuditRecord{Action: action, Entry: c.entry, Detail: detail, Decision: "deny",
			Reason: "this entry may not start processes (resources.processes is 0)"})
		return hostabi.EACCES
	}
	if c.depth+1 >= maxSpawnDepth {
		return hostabi.EAGAIN
	}
	return hostabi.ESUCCESS
}

// spawn is the Spawn hook: the file is routed by hash here, in the parent,
// and again in the child.
func (c *procCtl) spawn(ctx context.Context, hr *hostabi.SpawnRequest) (int, hostabi.Errno) {
	if errno := c.mayStart("spawn", hr.GuestPath); errno != hostabi.ESUCCESS {
		return 0, errno
	}
	hostPath, err := os.Readlink(hr.FDPath)
	if err != nil {
		hostPath = hr.FDPath
	}
	origin := &spawnOrigin{guestPath: hr.GuestPath, hostPath: hostPath, parent: c.entry}
	req := &Request{Path: hr.FDPath, Args: hr.Args, Env: hr.Env, Mounts: c.mounts, origin: origin, scripts: hr.Open != nil}
	r, hash, fd, err := c.k.resolveFD(req)
	// An unlisted #! script runs its interpreter, routed by hash in its
	// turn (ABI.md, "Processes").
	current := hr.GuestPath
	for nested := 0; ; nested++ {
		var se *scriptError
		if !errors.As(err, &se) {
			break
		}
		if reason, errno := scriptDenial(se); errno != hostabi.ESUCCESS {
			c.k.audit.write(req.record(se.hash, "", "deny", reason))
			return 0, errno
		}
		if nested == maxScripts {
			c.k.audit.write(req.record(se.hash, "", "deny", tooDeep()))
			return 0, hostabi.ELOOP
		}
		cwd := "/"
		if hr.HasCwd {
			cwd = hr.Cwd
		}
		next := interpret(se, current, req.Args, cwd)
		origin.interpreters = append(origin.interpreters, next.path)
		ifd, errno := hr.Open(next.path)
		if errno != hostabi.ESUCCESS {
			origin.hostPath = ""
			why := fmt.Sprintf("cannot open the #! interpreter %s (preview1 errno %d)", next.path, errno)
			if errno == hostabi.ENOENT || errno == hostabi.ENOTDIR {
				why = "no such #! interpreter: " + next.path
			}
			c.k.audit.write(req.record("", "", "deny", why))
			return 0, errno
		}
		fdPath := "/proc/self/fd/" + strconv.Itoa(ifd)
		if origin.hostPath, err = os.Readlink(fdPath); err != nil {
			origin.hostPath = fdPath
		}
		req.Path, req.Args = fdPath, next.args
		r, hash, fd, err = c.k.resolveFD(req)
		unix.Close(ifd)
		current = next.path
	}
	var denied *DeniedError
	switch {
	case errors.As(err, &denied):
		return 0, hostabi.EACCES
	case errors.Is(err, os.ErrNotExist):
		return 0, hostabi.ENOENT
	case err != nil:
		return 0, hostabi.EIO
	}
	defer unix.Close(fd)
	d := c.k.checkResources(r, req)
	listeners := 0
	for _, f := range hr.Files {
		if f.Listener {
			listeners++
		}
	}
	if d == nil && listeners > r.entry.Resources.Listeners {
		d = &DeniedError{Reason: fmt.Sprintf("entry %q may be given %d listener(s), the spawn hands it %d", r.entry.Name, r.entry.Resources.Listeners, listeners)}
	}
	if d != nil {
		c.k.audit.write(req.record(hash, r.entry.Name, "deny", d.Reason))
		return 0, hostabi.EACCES
	}
	spec := &runSpec{GuestPath: hr.GuestPath, HostPath: origin.hostPath, Parent: c.entry, Interpreters: origin.interpreters,
		Args: req.Args, Env: hr.Env, Mounts: c.mounts, Cwd: one(hr.Cwd), HasCwd: hr.HasCwd, Known: knownFor(fd, hash)}
	pid, errno := c.start(r.entry.Name, spec, fd, hr.Files)
	rec := req.record(hash, r.entry.Name, "allow", "")
	rec.Pid = pid
	if errno != hostabi.ESUCCESS {
		rec.Decision, rec.Reason = "deny", "the child process did not start"
	}
	c.k.audit.write(rec)
	return pid, errno
}

// fork is the Fork hook.
func (c *procCtl) fork(ctx context.Context, hr *hostabi.ForkRequest) (int, hostabi.Errno) {
	if errno := c.mayStart("fork", ""); errno != hostabi.ESUCCESS {
		return 0, errno
	}
	mem, err := snapshotMemory(hr.Memory)
	if err != nil {
		return 0, hostabi.ENOMEM
	}
	defer unix.Close(mem)
	spec := &runSpec{Args: c.args, Env: c.env, Mounts: c.mounts,
		Cwd: one(hr.Cwd), HasCwd: hr.HasCwd, Dispositions: hr.Dispositions,
		Fork: &forkSpec{Fn: hr.Fn, Arg: hr.Arg, MemorySize: uint64(len(hr.Memory)), StackPointer: hr.StackPointer}}
	pid, errno := c.start(c.entry, spec, mem, hr.Files)
	rec := AuditRecord{Action: "fork", Entry: c.entry, Pid: pid, Decision: "allow"}
	if errno != hostabi.ESUCCESS {
		rec.Decision, rec.Reason = "deny", "the child process did not start"
	}
	c.k.audit.write(rec)
	return pid, errno
}

// start gives a child host process of entry what to run: a warm one if
// there is one, else one started now. extra is the file to run (or the
// memory to fork from); files are the guest's fds, with the parent's host
// fds. A child of the entry is then started ahead of the next request.
func (c *procCtl) start(entry string, spec *runSpec, extra int, files []hostabi.InheritedFile) (int, hostabi.Errno) {
	table, err := c.tableFor()
	if err != nil {
		return 0, hostabi.ENOMEM
	}
	slot, ok := table.reserve(os.Getpid())
	if !ok {
		return 0, hostabi.EAGAIN
	}
	// The fds that go with the spec: extra first, then the files'.
	fds := []int{extra}
	spec.Files = make([]hostabi.InheritedFile, len(files))
	for i, f := range files {
		if f.HostFD >= 0 {
			fds = append(fds, f.HostFD)
			f.HostFD = len(fds) - 1
		}
		spec.Files[i] = f
	}
	if spec.Fork != nil {
		spec.ExecFD, spec.Fork.MemoryFD = -1, 0
	}
	pid, err := c.run(entry, spec, fds, table)
	if err != nil {
		table.unreserve(slot)
		fmt.Fprintf(os.Stderr, "vkernel: starting a child process for %s: %v\n", entry, err)
		return 0, hostabi.EAGAIN
	}
	table.assign(slot, pid)
	c.prewarm(entry, table)
	return pid, hostabi.ESUCCESS
}

// run sends spec to a warm child of entry, or to one started now when
// there is none or the warm one has died. The child is one of c.kids from
// then on.
func (c *procCtl) run(entry string, spec *runSpec, fds []int, table *procTable) (int, error) {
	if w := c.takeWarm(entry); w != nil {
		if err := sendRun(int(w.request.Fd()), spec, fds); err == nil {
			// The child has what it needs; it reads nothing more.
			w.request.Close()
			c.k.warmRuns.Add(1)
			return w.pid, nil
		}
		c.forget(w)
	}
	w, err := c.boot(entry, table, false)
	if err != nil {
		return 0, err
	}
	if err := sendRun(int(w.request.Fd()), spec, fds); err != nil {
		c.forget(w)
		return 0, err
	}
	w.request.Close()
	c.k.coldStarts.Add(1)
	return w.pid, nil
}

// forget discards a child that could not be given what to run.
func (c *procCtl) forget(w *child) {
	c.mu.Lock()
	delete(c.kids, w.pid)
	c.mu.Unlock()
	w.discard()
}

// boot starts a child host process of entry: it opens the megabinary,
// loads the entry's code and waits for what to run. The child is one of
// c.kids, or the entry's warm child when warm is set.
func (c *procCtl) boot(entry string, table *procTable, warm bool) (*child, error) {
	w, auditR, err := c.k.startHost(entry, c.depth+1, table, 0)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.audits = append(c.audits, auditR)
	if warm {
		if c.warm == nil {
			c.warm = map[string]*child{}
		}
		c.warm[entry] = w
	} else {
		if c.kids == nil {
			c.kids = map[int]*childRec{}
		}
		c.kids[w.pid] = &childRec{lifeline: w.lifeline}
	}
	c.mu.Unlock()
	c.copiers.Add(1)
	go func() {
		defer c.copiers.Done()
		c.k.copyAudit(auditR)
	}()
	return w, nil
}

// startHost starts a child host process of entry at depth in the tree
// whose process table is table: it opens the megabinary, loads the
// entry's code and waits on its request socket for what to run (with
// share above 1, a shared host: share.go). The caller copies the child's
// audit records from auditR (copyAudit) and closes it.
func (k *Kernel) startHost(entry string, depth int, table *procTable, share int) (w *child, auditR *os.File, err error) {
	spec := bootSpec{ParentPid: os.Getpid(), Command: k.childCmd, Megabinary: k.path, Digest: k.Digest(),
		CacheDir: k.cacheRoot, Policy: k.policy, Entry: entry, Depth: depth, TableSlots: table.size(),
		HostCallsDir: k.hostCallsDir, NoSnapshot: k.noSnapshot, Share: share}
	for _, key := range k.trusted {
		spec.TrustedKeys = append(spec.TrustedKeys, key)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, err
	}
	specFD, err := memfdWith("vkernel-child-spec", js)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(specFD)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, err
	}
	defer devnull.Close()
	auditR, auditW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer auditW.Close()
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		auditR.Close()
		return nil, nil, err
	}
	defer lifeR.Close()
	socks, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		auditR.Close()
		lifeW.Close()
		return nil, nil, err
	}
	defer unix.Close(socks[1])
	request := os.NewFile(uintptr(socks[0]), "vkernel-request")
	fail := func(err error) (*child, *os.File, error) {
		auditR.Close()
		lifeW.Close()
		request.Close()
		return nil, nil, err
	}
	// The fds at bootFD, auditFD, lifelineFD, tableFD and requestFD.
	files := []uintptr{devnull.Fd(), devnull.Fd(), os.Stderr.Fd(), uintptr(specFD), auditW.Fd(), lifeR.Fd(), uintptr(table.fd), uintptr(socks[1])}
	env := append(os.Environ(), childSpecEnv+"="+strconv.Itoa(bootFD))
	// EndChildProcesses sees every child that starts before it begins,
	// and none starts after.
	live.RLock()
	defer live.RUnlock()
	if live.ending {
		return fail(errors.New("the process is ending its child processes"))
	}
	childStarting()
	pid, err := syscall.ForkExec(k.childCmd[0], k.childCmd, &syscall.ProcAttr{
		Env: env, Files: files,
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		childStarted(0)
		return fail(err)
	}
	childStarted(pid)
	return &child{pid: pid, lifeline: lifeW, request: request}, auditR, nil
}

// copyAudit writes the audit records a child sends into this kernel's log.
func (k *Kernel) copyAudit(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k.audit.writeLine(sc.Bytes())
	}
}

// reaped is the Reaped hook: the child's slot and lifeline are freed.
func (c *procCtl) reaped(pid int) {
	c.mu.Lock()
	rec := c.kids[pid]
	delete(c.kids, pid)
	table := c.table
	c.mu.Unlock()
	if rec != nil {
		rec.lifeline.Close()
	}
	if table != nil {
		table.release(pid)
	}
	childReaped(pid)
}

// teardown is the Teardown hook: the child's lifeline is closed, which
// asks it to end its own children in order and exit; after childGrace it
// is killed.
func (c *procCtl) teardown(pid int) {
	c.mu.Lock()
	rec := c.kids[pid]
	c.mu.Unlock()
	if rec != nil {
		rec.lifeline.Close()
		if exited(pid, grace(c.depth)) {
			return
		}
	}
	_ = unix.Kill(pid, unix.SIGKILL)
}

// exited waits up to d for the child pid to end (it stays a zombie until
// reaped).
func exited(pid int, d time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left/time.Millisecond)+1)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}

// memfdWith returns a memfd holding b, at offset 0.
func memfdWith(name string, b []byte) (int, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return -1, err
	}
	if err := pwriteAll(fd, b, 0); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// pwriteAll writes all of b to fd at offset at, retrying short writes and
// EINTR.
func pwriteAll(fd int, b []byte, at int64) error {
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], at+int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		off += n
	}
	return nil
}

// snapshotMemory copies a guest's linear memory into a memfd: the child
// maps it copy-on-write, so the parent's later writes are never seen.
func snapshotMemory(mem []byte) (int, error) { return memfdWith("vkernel-fork-memory", mem) }

// runChild is the child host process's life: it returns its exit status,
// or dies of a signal.
func runChild(fdText string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "vkernel child: "+format+"\n", args...)
		return exitCannotStart
	}
	if fdText != strconv.Itoa(bootFD) {
		return fail("%s=%q: want %d", childSpecEnv, fdText, bootFD)
	}
	js, err := io.ReadAll(io.NewSectionReader(fdReader(bootFD), 0, 1<<30))
	unix.Close(bootFD)
	if err != nil {
		return fail("reading the boot spec: %v", err)
	}
	var boot bootSpec
	if err := json.Unmarshal(js, &boot); err != nil {
		return fail("boot spec: %v", err)
	}
	// A guest that dies of SIGABRT or SIGSEGV leaves no core of the Go
	// process behind.
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	var router *sigRouter
	var table *procTable
	if boot.Share > 1 {
		// Each request of a shared host has a process table of its own,
		// made when its guest first starts a child; host signals are the
		// host's, not a guest's.
		unix.Close(tableFD)
	} else {
		router = newSigRouter(nil)
		if table, err = mapProcTable(tableFD, boot.TableSlots); err != nil {
			return fail("%v", err)
		}
	}
	audit := os.NewFile(auditFD, "audit")
	var keys []ed25519.PublicKey
	for _, k := range boot.TrustedKeys {
		keys = append(keys, ed25519.PublicKey(k))
	}
	ctx := context.Background()
	k, err := Open(ctx, boot.Megabinary, Options{TrustedKeys: keys, CacheDir: boot.CacheDir, Policy: boot.Policy,
		Audit: audit, Entries: []string{boot.Entry}, ChildCommand: boot.Command, HostCallsDir: boot.HostCallsDir,
		NoSnapshot: boot.NoSnapshot})
	if err != nil {
		return fail("%v", err)
	}
	if k.Digest() != boot.Digest {
		return fail("megabinary %s has digest %s, the parent's is %s", boot.Megabinary, k.Digest(), boot.Digest)
	}
	k.audit.pid = os.Getpid()
	// Orphans of a child that had to be killed outright come here, to be
	// reaped before this process ends (nothing else in it starts
	// processes).
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	if boot.Share > 1 {
		return runSharedHost(ctx, k, &boot)
	}
	// The lifeline's and the signals' goroutines must not be held up by
	// a guest computing without host calls.
	settleGC.Store(true)
	// The instance too is made ahead, and the load's garbage goes, while
	// nothing waits for this process.
	pre, err := k.prepare(ctx, boot.Entry)
	if err != nil {
		pre = nil // the exec instantiates it, and reports the error
	}
	runtime.GC()

	spec, fds, err := awaitRun()
	if err == errNoRun {
		return 0 // a warm child the parent did not need
	}
	if err != nil {
		return fail("%v", err)
	}
	for sig := syscall.Signal(1); int(sig) < len(spec.Dispositions); sig++ {
		router.set(sig, int(spec.Dispositions[sig]))
	}
	files := make([]hostabi.InheritedFile, len(spec.Files))
	for i, f := range spec.Files {
		if f.HostFD >= 0 {
			if f.HostFD >= len(fds) {
				return fail("run spec: file %d names fd %d of %d", f.FD, f.HostFD, len(fds))
			}
			f.HostFD = fds[f.HostFD]
		}
		files[i] = f
	}
	setup := &childSetup{entry: boot.Entry, files: files, cwd: spec.Cwd.first(), hasCwd: spec.HasCwd, depth: boot.Depth, table: table,
		dispositions: spec.Dispositions, fork: spec.Fork, signals: router, instance: pre}
	lifeline := os.NewFile(lifelineFD, "lifeline")
	setup.started = func(p *hostabi.Process, ctl *procCtl) {
		router.attach(p)
		go func() {
			// The parent closes the lifeline (or dies): end the children
			// in order (warm ones too), reap them and any orphan, then
			// this process.
			_, _ = io.Copy(io.Discard, lifeline)
			endAll([]*procCtl{ctl})
			os.Exit(128 + int(unix.SIGKILL))
		}()
	}
	req := Request{Args: spec.Args, Env: spec.Env, Mounts: spec.Mounts, child: setup}
	if spec.Fork == nil {
		if spec.ExecFD < 0 || spec.ExecFD >= len(fds) {
			return fail("run spec: exec fd %d of %d", spec.ExecFD, len(fds))
		}
		req.Path = "/proc/self/fd/" + strconv.Itoa(fds[spec.ExecFD])
		k.seedHash(fds[spec.ExecFD], spec.Known)
		req.origin = &spawnOrigin{guestPath: spec.GuestPath, hostPath: spec.HostPath, parent: spec.Parent, interpreters: spec.Interpreters}
	} else {
		if spec.Fork.MemoryFD < 0 || spec.Fork.MemoryFD >= len(fds) {
			return fail("run spec: memory fd %d of %d", spec.Fork.MemoryFD, len(fds))
		}
		spec.Fork.MemoryFD = fds[spec.Fork.MemoryFD]
	}
	res, err := k.Exec(ctx, req)
	var denied *DeniedError
	var trap *TrapError
	switch {
	case errors.As(err, &denied):
		return exitDeniedInChild
	case errors.As(err, &trap):
		fmt.Fprintf(os.Stderr, "vkernel child %d: %v\n", os.Getpid(), err)
		dieOf(unix.SIGABRT)
	case err != nil:
		return fail("%v", err)
	case res.Signal != 0:
		dieOf(res.Signal)
	}
	return int(res.ExitCode & 0xff)
}

// awaitRun waits for the runSpec, or for the parent to close the lifeline
// or the request socket (errNoRun) before sending one.
func awaitRun() (*runSpec, []int, error) {
	fds := []unix.PollFd{{Fd: requestFD, Events: unix.POLLIN}, {Fd: lifelineFD, Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("waiting for the run spec: %w", err)
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			break
		}
		if fds[0].Revents != 0 || fds[1].Revents != 0 {
			return nil, nil, errNoRun
		}
	}
	spec, got, err := receiveRun(requestFD)
	unix.Close(requestFD)
	return spec, got, err
}
