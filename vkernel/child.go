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
// fd from which the child reads its childSpec (JSON).
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

// childSpec is what a parent tells a child host process, through an
// inherited memfd. Fd numbers are the child host process's own.
type childSpec struct {
	ParentPid   int      `json:"parent_pid"`
	Command     []string `json:"command"`
	Megabinary  string   `json:"megabinary"`
	Digest      string   `json:"digest"`
	TrustedKeys [][]byte `json:"trusted_keys"`
	CacheDir    string   `json:"cache_dir,omitempty"`
	Policy      Policy   `json:"policy"`
	Entry       string   `json:"entry"`
	Depth       int      `json:"depth"`
	AuditFD     int      `json:"audit_fd"`
	LifelineFD  int      `json:"lifeline_fd"`
	TableFD     int      `json:"table_fd"`
	TableSlots  int      `json:"table_slots"`

	// A spawn: the file to run, and what the audit log says of it.
	ExecFD    int    `json:"exec_fd,omitempty"`
	GuestPath string `json:"guest_path,omitempty"`
	HostPath  string `json:"host_path,omitempty"`
	Parent    string `json:"parent,omitempty"`

	Args   rawStrings              `json:"args"`
	Env    rawStrings              `json:"env"`
	Mounts []Mount                 `json:"mounts"`
	Files  []hostabi.InheritedFile `json:"files"`
	Cwd    rawStrings              `json:"cwd,omitempty"` // none or one
	HasCwd bool                    `json:"has_cwd,omitempty"`

	// A fork: the parent's memory (a memfd) and where to start.
	Fork         *forkSpec `json:"fork,omitempty"`
	Dispositions []uint8   `json:"dispositions,omitempty"`
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

type forkSpec struct {
	Fn           uint32 `json:"fn"`
	Arg          uint32 `json:"arg"`
	MemoryFD     int    `json:"memory_fd"`
	MemorySize   uint64 `json:"memory_size"`
	StackPointer uint64 `json:"stack_pointer"`
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
	// started is called with the running exec's process, so that the
	// child's lifeline can tear it down.
	started func(*hostabi.Process, *procCtl)
	// signals routes the child host process's signals (set up by runChild).
	signals *sigRouter
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
	// copiers copy children's audit records into the log.
	copiers sync.WaitGroup
	audits  []*os.File
}

type childRec struct {
	lifeline *os.File // write end; closing it asks the child to end
}

func (c *procCtl) close() {
	c.mu.Lock()
	for _, rec := range c.kids {
		rec.lifeline.Close()
	}
	c.kids = nil
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
	req := &Request{Path: hr.FDPath, Args: hr.Args, Env: hr.Env, Mounts: c.mounts,
		origin: &spawnOrigin{guestPath: hr.GuestPath, hostPath: hostPath, parent: c.entry}}
	r, hash, fd, err := c.k.resolveFD(req)
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
	spec := &childSpec{Entry: r.entry.Name, GuestPath: hr.GuestPath, HostPath: hostPath, Parent: c.entry,
		Args: hr.Args, Env: hr.Env, Mounts: c.mounts, Files: hr.Files, Cwd: one(hr.Cwd), HasCwd: hr.HasCwd}
	pid, errno := c.start(spec, fd)
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
	spec := &childSpec{Entry: c.entry, Args: c.args, Env: c.env, Mounts: c.mounts, Files: hr.Files,
		Cwd: one(hr.Cwd), HasCwd: hr.HasCwd, Dispositions: hr.Dispositions,
		Fork: &forkSpec{Fn: hr.Fn, Arg: hr.Arg, MemorySize: uint64(len(hr.Memory)), StackPointer: hr.StackPointer}}
	pid, errno := c.start(spec, mem)
	rec := AuditRecord{Action: "fork", Entry: c.entry, Pid: pid, Decision: "allow"}
	if errno != hostabi.ESUCCESS {
		rec.Decision, rec.Reason = "deny", "the child process did not start"
	}
	c.k.audit.write(rec)
	return pid, errno
}

// start starts the child host process: its spec, lifeline and audit pipe,
// the file to run (or the memory to fork from) as extra, and the
// inherited files.
func (c *procCtl) start(spec *childSpec, extra int) (int, hostabi.Errno) {
	table, err := c.tableFor()
	if err != nil {
		return 0, hostabi.ENOMEM
	}
	slot, ok := table.reserve(os.Getpid())
	if !ok {
		return 0, hostabi.EAGAIN
	}
	pid, err := c.startProcess(spec, extra, table)
	if err != nil {
		table.unreserve(slot)
		fmt.Fprintf(os.Stderr, "vkernel: starting a child process for %s: %v\n", spec.Entry, err)
		return 0, hostabi.EAGAIN
	}
	table.assign(slot, pid)
	return pid, hostabi.ESUCCESS
}

func (c *procCtl) startProcess(spec *childSpec, extra int, table *procTable) (int, error) {
	k := c.k
	spec.ParentPid = os.Getpid()
	spec.Command = k.childCmd
	spec.Megabinary, spec.Digest = k.path, k.Digest()
	for _, key := range k.trusted {
		spec.TrustedKeys = append(spec.TrustedKeys, key)
	}
	spec.CacheDir, spec.Policy, spec.Depth = k.cacheRoot, k.policy, c.depth+1
	spec.TableSlots = table.size()

	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	auditR, auditW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer auditW.Close()
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		auditR.Close()
		return 0, err
	}
	defer lifeR.Close()
	// Host fds of the child: 0-2 are the host process's own (its Go
	// runtime reports on 2), then the spec, the pipes, the table, extra,
	// and the guest's files.
	files := []uintptr{devnull.Fd(), devnull.Fd(), os.Stderr.Fd(), 0, auditW.Fd(), lifeR.Fd(), uintptr(table.fd), uintptr(extra)}
	spec.AuditFD, spec.LifelineFD, spec.TableFD = 4, 5, 6
	if spec.Fork != nil {
		spec.Fork.MemoryFD = 7
	} else {
		spec.ExecFD = 7
	}
	inherited := make([]hostabi.InheritedFile, len(spec.Files))
	for i, f := range spec.Files {
		if f.HostFD >= 0 {
			files = append(files, uintptr(f.HostFD))
			f.HostFD = len(files) - 1
		}
		inherited[i] = f
	}
	spec.Files = inherited
	js, err := json.Marshal(spec)
	if err != nil {
		auditR.Close()
		lifeW.Close()
		return 0, err
	}
	specFD, err := memfdWith("vkernel-child-spec", js)
	if err != nil {
		auditR.Close()
		lifeW.Close()
		return 0, err
	}
	defer unix.Close(specFD)
	files[3] = uintptr(specFD)
	env := append(os.Environ(), childSpecEnv+"=3")
	pid, err := syscall.ForkExec(k.childCmd[0], k.childCmd, &syscall.ProcAttr{
		Env: env, Files: files,
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		auditR.Close()
		lifeW.Close()
		return 0, err
	}
	c.mu.Lock()
	if c.kids == nil {
		c.kids = map[int]*childRec{}
	}
	c.kids[pid] = &childRec{lifeline: lifeW}
	c.audits = append(c.audits, auditR)
	c.mu.Unlock()
	c.copiers.Add(1)
	go func() {
		defer c.copiers.Done()
		c.copyAudit(auditR)
	}()
	return pid, nil
}

// copyAudit writes the audit records a child sends into this kernel's log.
func (c *procCtl) copyAudit(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		c.k.audit.writeLine(sc.Bytes())
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
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
		off += n
	}
	return fd, nil
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
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 3 {
		return fail("%s=%q: want an inherited fd number", childSpecEnv, fdText)
	}
	specFile := os.NewFile(uintptr(fd), "child-spec")
	js, err := io.ReadAll(specFile)
	specFile.Close()
	if err != nil {
		return fail("reading the spec: %v", err)
	}
	var spec childSpec
	if err := json.Unmarshal(js, &spec); err != nil {
		return fail("spec: %v", err)
	}
	// A guest that dies of SIGABRT or SIGSEGV leaves no core of the Go
	// process behind.
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	router := newSigRouter(spec.Dispositions)
	table, err := mapProcTable(spec.TableFD, spec.TableSlots)
	if err != nil {
		return fail("%v", err)
	}
	audit := os.NewFile(uintptr(spec.AuditFD), "audit")
	var keys []ed25519.PublicKey
	for _, k := range spec.TrustedKeys {
		keys = append(keys, ed25519.PublicKey(k))
	}
	ctx := context.Background()
	k, err := Open(ctx, spec.Megabinary, Options{TrustedKeys: keys, CacheDir: spec.CacheDir, Policy: spec.Policy,
		Audit: audit, Entries: []string{spec.Entry}, ChildCommand: spec.Command})
	if err != nil {
		return fail("%v", err)
	}
	if k.Digest() != spec.Digest {
		return fail("megabinary %s has digest %s, the parent's is %s", spec.Megabinary, k.Digest(), spec.Digest)
	}
	k.audit.pid = os.Getpid()
	setup := &childSetup{entry: spec.Entry, files: spec.Files, cwd: spec.Cwd.first(), hasCwd: spec.HasCwd, depth: spec.Depth, table: table,
		dispositions: spec.Dispositions, fork: spec.Fork, signals: router}
	lifeline := os.NewFile(uintptr(spec.LifelineFD), "lifeline")
	// Orphans of a child that had to be killed outright come here, to be
	// reaped before this process ends (nothing else in it starts
	// processes).
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	setup.started = func(p *hostabi.Process, ctl *procCtl) {
		router.attach(p)
		go func() {
			// The parent closes the lifeline (or dies): end the children
			// in order, reap them and any orphan, then this process.
			_, _ = io.Copy(io.Discard, lifeline)
			for _, pid := range p.Children() {
				ctl.teardown(pid)
			}
			var ws unix.WaitStatus
			for {
				if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil && err != unix.EINTR {
					break
				}
			}
			os.Exit(128 + int(unix.SIGKILL))
		}()
		// A garbage collection under way when the guest starts computing
		// without host calls would wait for it, and hold up every other
		// goroutine of this process, the lifeline's and the signals'
		// included: finish one now, while the guest has not started.
		runtime.GC()
	}
	req := Request{Args: spec.Args, Env: spec.Env, Mounts: spec.Mounts, child: setup}
	if spec.Fork == nil {
		req.Path = "/proc/self/fd/" + strconv.Itoa(spec.ExecFD)
		req.origin = &spawnOrigin{guestPath: spec.GuestPath, hostPath: spec.HostPath, parent: spec.Parent}
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
