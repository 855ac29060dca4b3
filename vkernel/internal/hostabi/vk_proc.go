package hostabi

import (
	"context"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// SpawnRequest is a guest's proc_spawn, as the host surface hands it to
// the vkernel (Hooks.Spawn), which routes the file by hash and starts the
// child host process.
type SpawnRequest struct {
	// GuestPath is the absolute path the guest gave; FDPath a
	// /proc/self/fd link to the file it resolved to inside its mount,
	// which is what the vkernel opens and hashes.
	GuestPath, FDPath string
	// Args and Env are the child's argv (argv[0] first) and environment.
	Args, Env []string
	// Cwd is the child's starting directory, if HasCwd.
	Cwd    string
	HasCwd bool
	// Files are the child's fds: the parent's mounts' preopens at their
	// numbers, then what the guest listed. HostFDs are the parent's.
	Files []InheritedFile
	// Open resolves another absolute guest path inside the caller's
	// mounts as GuestPath was (a #! script's interpreter) and returns an
	// O_PATH host fd of it, which the caller closes. Valid only during
	// the Spawn hook.
	Open func(guestPath string) (int, Errno)
}

// openGuest resolves an absolute guest path inside the mounts and opens it
// O_PATH, as proc_spawn opens the file it starts.
func (p *Process) openGuest(name string) (int, Errno) {
	t, errno := p.guestPath(name)
	if errno != ESUCCESS {
		return -1, errno
	}
	fd, err := t.open(unix.O_PATH, 0)
	if err != nil {
		return -1, errnoOf(err)
	}
	return fd, ESUCCESS
}

// MayExecute reports whether the mode bits of st let the guest execute the
// file (the owner's, group's or others' x bit, as path_access checks X_OK;
// there is no superuser).
func MayExecute(st *unix.Stat_t) bool { return permits(st, accessX) }

// ForkRequest is a guest's proc_fork (Hooks.Fork).
type ForkRequest struct {
	// Fn and Arg are what the child passes to vkernel_fork_child.
	Fn, Arg uint32
	// Memory is the guest's linear memory; valid only during the call,
	// in which the guest cannot change it.
	Memory []byte
	// StackPointer is the guest's __stack_pointer.
	StackPointer uint64
	// Files is a copy of the whole fd table, preopens included.
	Files []InheritedFile
	// Dispositions are the guest's signal dispositions, by signal number.
	Dispositions []uint8
	// Cwd is what proc_initial_cwd answers in the parent, if HasCwd.
	Cwd    string
	HasCwd bool
}

// children are the child processes a process started and has not yet
// waited for. Only the guest's goroutine changes the table; the SIGCHLD
// watchers and proc_kill from other processes' views read it.
type children struct {
	mu   sync.Mutex
	live map[int]*child
	// watchers are the goroutines that wait for each child's end to send
	// SIGCHLD; stop ends them.
	watchers sync.WaitGroup
	stop     int // eventfd, readable once the process closes (-1: not yet made)
}

type child struct {
	pid   int
	pidfd int
}

func (c *children) pids() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pids []int
	for pid := range c.live {
		pids = append(pids, pid)
	}
	return pids
}

func (c *children) has(pid int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.live[pid]
	return ok
}

func (c *children) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.live)
}

// add records a child the vkernel started and watches for its end, to
// send the process SIGCHLD.
func (p *Process) addChild(pid int) {
	c := &p.kids
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		pidfd = -1 // the child is still waited for by pid; no SIGCHLD
	}
	c.mu.Lock()
	if c.live == nil {
		c.live = map[int]*child{}
	}
	c.live[pid] = &child{pid: pid, pidfd: pidfd}
	if c.stop < 0 {
		c.stop, _ = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	}
	stop := c.stop
	c.mu.Unlock()
	if pidfd < 0 || stop < 0 {
		return
	}
	// The watcher polls its own duplicate: the table's pidfd may be
	// closed by proc_wait while it waits.
	watch, err := unix.FcntlInt(uintptr(pidfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return
	}
	c.watchers.Add(1)
	go func() {
		defer c.watchers.Done()
		defer unix.Close(watch)
		fds := []unix.PollFd{{Fd: int32(watch), Events: unix.POLLIN}, {Fd: int32(stop), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil || fds[1].Revents != 0 {
				return
			}
			if fds[0].Revents != 0 {
				p.Signal(unix.SIGCHLD)
				return
			}
		}
	}()
}

// reap waits for the child without blocking and, if it has ended, removes
// it and returns its Linux wait status.
func (p *Process) reap(pid int) (uint32, bool) {
	var ws unix.WaitStatus
	for {
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// ECHILD: someone else reaped it (not ours to know how it
			// ended); report it as killed.
			p.forgetChild(pid)
			return uint32(unix.SIGKILL), true
		}
		if got != pid {
			return 0, false
		}
		p.forgetChild(pid)
		return uint32(ws), true
	}
}

func (p *Process) forgetChild(pid int) {
	c := &p.kids
	c.mu.Lock()
	ch := c.live[pid]
	delete(c.live, pid)
	c.mu.Unlock()
	if ch != nil && ch.pidfd >= 0 {
		unix.Close(ch.pidfd)
	}
	if p.hooks.Reaped != nil {
		p.hooks.Reaped(pid)
	}
}

// closeChildren kills every child not yet waited for and reaps it, and
// stops the watchers.
func (p *Process) closeChildren() {
	c := &p.kids
	// All at once: each may take a grace to end its own children.
	var ended sync.WaitGroup
	for _, pid := range c.pids() {
		ended.Add(1)
		go func() {
			defer ended.Done()
			if p.hooks.Teardown != nil {
				p.hooks.Teardown(pid)
			} else {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
			var ws unix.WaitStatus
			for {
				if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
					break
				}
			}
		}()
	}
	ended.Wait()
	for _, pid := range c.pids() {
		p.forgetChild(pid)
	}
	c.mu.Lock()
	stop := c.stop
	c.mu.Unlock()
	if stop >= 0 {
		var one [8]byte
		one[0] = 1
		_, _ = unix.Write(stop, one[:])
		c.watchers.Wait()
		unix.Close(stop)
		c.mu.Lock()
		c.stop = -1
		c.mu.Unlock()
	}
}

// Children returns the pids of the children the process has not waited
// for.
func (p *Process) Children() []int { return p.kids.pids() }

// procWaitNohang is proc_wait's WNOHANG option.
const procWaitNohang = 1

// vkProcWait is vkernel.proc_wait(pid, options, result.pid, result.status)
// -> errno: waits for a child to end and reaps it. pid -1 is any child, a
// positive pid that child. options bit 0 (WNOHANG) returns at once, with
// result.pid 0 when no child has ended. result.status is a Linux wait
// status (exit code << 8, or the terminating signal in the low 7 bits).
// ECHILD when there is no such child, EINTR when a caught signal arrives
// while waiting, EINVAL for unknown options or pid 0 or below -1, EFAULT.
var vkProcWait = &hostFunc{
	module: ModuleVkernel, name: "proc_wait",
	params: []string{"pid", "options", "result.pid", "result.status"}, types: []api.ValueType{i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		pid, options := int32(s[0]), uint32(s[1])
		if options&^procWaitNohang != 0 || pid == 0 || pid < -1 {
			return EINVAL
		}
		m := mod.Memory()
		if _, ok := view(m, uint32(s[2]), 4); !ok {
			return EFAULT
		}
		if _, ok := view(m, uint32(s[3]), 4); !ok {
			return EFAULT
		}
		for {
			var candidates []int
			if pid > 0 {
				if p.kids.has(int(pid)) {
					candidates = []int{int(pid)}
				}
			} else {
				candidates = p.kids.pids()
			}
			if len(candidates) == 0 {
				return ECHILD
			}
			for _, c := range candidates {
				if status, ok := p.reap(c); ok {
					putU32(m, uint32(s[3]), status)
					return putU32(m, uint32(s[2]), uint32(c))
				}
			}
			if options&procWaitNohang != 0 {
				putU32(m, uint32(s[3]), 0)
				return putU32(m, uint32(s[2]), 0)
			}
			if errno := p.waitChildren(ctx, candidates); errno != ESUCCESS {
				return errno
			}
		}
	},
}

// waitChildren blocks until one of the children may have ended, a caught
// signal arrives (EINTR) or ctx ends (EINTR), in slices so that ctx is
// seen promptly. In a process with threads it waits without the
// process's lock, on duplicates of the pidfds (another thread's proc_wait
// may reap a child and close its pidfd meanwhile).
func (p *Process) waitChildren(ctx context.Context, pids []int) Errno {
	fds := []unix.PollFd{{Fd: int32(p.sigs.wake), Events: unix.POLLIN}}
	p.kids.mu.Lock()
	for _, pid := range pids {
		if c := p.kids.live[pid]; c != nil && c.pidfd >= 0 {
			fd := c.pidfd
			if p.thr != nil {
				dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
				if err != nil {
					continue // looked at by polling, as without a pidfd
				}
				fd = dup
			}
			fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		}
	}
	p.kids.mu.Unlock()
	wait := 100
	if len(fds) < len(pids)+1 {
		wait = 10 // a child without a pidfd is looked at by polling
	}
	if p.thr != nil {
		defer func() {
			for _, fd := range fds[1:] {
				unix.Close(int(fd.Fd))
			}
		}()
		deadline := int64(noDeadline)
		if wait < 100 {
			deadline = nanotime() + int64(wait)*1_000_000
		}
		r, errno := p.pollUnlocked(ctx, fds, nil, deadline)
		if errno == ESUCCESS && r.signal {
			return EINTR
		}
		return errno
	}
	for {
		if ctx.Err() != nil {
			return EINTR
		}
		n, err := unix.Poll(fds, wait)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return errnoOf(err)
		}
		if fds[0].Revents != 0 {
			p.sigs.drainWake()
			return EINTR
		}
		if n > 0 || wait < 100 {
			return ESUCCESS
		}
	}
}

// vkProcID is vkernel.proc_id(result.pid, result.ppid) -> errno: the pid
// of the host process running the guest and of its parent. EFAULT.
var vkProcID = &hostFunc{
	module: ModuleVkernel, name: "proc_id", untimed: true,
	params: []string{"result.pid", "result.ppid"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, _ *Process, mod api.Module, s []uint64) Errno {
		if _, ok := view(mod.Memory(), uint32(s[1]), 4); !ok {
			return EFAULT
		}
		if errno := putU32(mod.Memory(), uint32(s[0]), uint32(unix.Getpid())); errno != ESUCCESS {
			return errno
		}
		return putU32(mod.Memory(), uint32(s[1]), uint32(unix.Getppid()))
	},
}

// vkProcInitialCwd is vkernel.proc_initial_cwd(buf, buf_len, result.len)
// -> errno: the starting directory the parent asked for in proc_spawn,
// without a NUL, and its length. ENOENT when there is none; ERANGE when
// buf_len is short (result.len still says how long it is); EFAULT.
var vkProcInitialCwd = &hostFunc{
	module: ModuleVkernel, name: "proc_initial_cwd", untimed: true,
	params: []string{"buf", "buf_len", "result.len"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		if !p.hasCwd {
			return ENOENT
		}
		if errno := putU32(mod.Memory(), uint32(s[2]), uint32(len(p.cwd))); errno != ESUCCESS {
			return errno
		}
		if uint32(s[1]) < uint32(len(p.cwd)) {
			return ERANGE
		}
		b, ok := view(mod.Memory(), uint32(s[0]), uint32(len(p.cwd)))
		if !ok {
			return EFAULT
		}
		copy(b, p.cwd)
		return ESUCCESS
	},
}

// vkProcSpawn is vkernel.proc_spawn(path, path_len, argv, argv_len, env,
// env_len, cwd, cwd_len, fds, nfds, result.pid) -> errno: starts the
// program at the absolute guest path in a new vkernel process and writes
// its pid; the child runs concurrently. argv and env are NUL-terminated
// strings one after another (argv[0] first). cwd (cwd_len 0: none) is the
// child's starting directory (proc_initial_cwd). fds holds nfds pairs of
// u32 {child_fd, parent_fd}: the child gets exactly these, the same open
// file descriptions, plus its mounts' preopens at the parent's numbers.
//
// The file is routed by its SHA-256 like any exec: one the guest wrote
// itself is not in the signed manifest and is refused with EACCES (and an
// audit record), so a guest cannot run code of its own making. An unlisted
// #! script runs its interpreter, which must be listed (the vkernel's
// Spawn hook; ABI.md, "Processes"). EACCES also when the entry may not
// start processes; ENOENT, ENOEXEC, ELOOP; EAGAIN at
// the process limit or nesting depth; EBADF for a parent_fd that is not
// open or a child_fd that is a preopen's or above the fd limit; ENOSYS
// when the vkernel cannot start child processes; EINVAL for a relative
// path, an empty argv or a string without its NUL; EFAULT.
var vkProcSpawn = &hostFunc{
	module: ModuleVkernel, name: "proc_spawn",
	params: []string{"path", "path_len", "argv", "argv_len", "env", "env_len", "cwd", "cwd_len", "fds", "nfds", "result.pid"},
	types:  []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		m := mod.Memory()
		name, errno := readString(m, uint32(s[0]), uint32(s[1]))
		if errno != ESUCCESS {
			return errno
		}
		args, errno := readStrings(m, uint32(s[2]), uint32(s[3]))
		if errno != ESUCCESS {
			return errno
		}
		env, errno := readStrings(m, uint32(s[4]), uint32(s[5]))
		if errno != ESUCCESS {
			return errno
		}
		req := &SpawnRequest{GuestPath: name, Args: args, Env: env}
		if uint32(s[7]) > 0 {
			if req.Cwd, errno = readString(m, uint32(s[6]), uint32(s[7])); errno != ESUCCESS {
				return errno
			}
			req.HasCwd = true
		}
		nfds := uint32(s[9])
		if nfds > maxFDs {
			return EINVAL
		}
		pairs, ok := view(m, uint32(s[8]), nfds*8)
		if !ok {
			return EFAULT
		}
		if _, ok := view(m, uint32(s[10]), 4); !ok {
			return EFAULT
		}
		if len(args) == 0 || !path.IsAbs(name) {
			return EINVAL
		}
		if p.hooks.Spawn == nil {
			return ENOSYS
		}
		req.Files = p.preopens()
		taken := map[uint32]bool{}
		for _, f := range req.Files {
			taken[f.FD] = true
		}
		for i := uint32(0); i < nfds; i++ {
			childFD, parentFD := le32(pairs[i*8:]), le32(pairs[i*8+4:])
			if taken[childFD] || childFD >= maxFDs {
				return EBADF
			}
			in, errno := p.inheritable(parentFD)
			if errno != ESUCCESS {
				return errno
			}
			in.FD, in.Preopen = childFD, ""
			taken[childFD] = true
			req.Files = append(req.Files, in)
		}
		fd, errno := p.openGuest(name)
		if errno != ESUCCESS {
			return errno
		}
		defer unix.Close(fd)
		req.Open = p.openGuest
		// The fd was resolved inside the mount; the vkernel opens and
		// hashes that same inode through its /proc link.
		req.FDPath = "/proc/self/fd/" + strconv.Itoa(fd)
		if limit := p.maxChildren; limit > 0 && p.kids.count() >= limit {
			return EAGAIN
		}
		pid, errno := p.hooks.Spawn(ctx, req)
		if errno != ESUCCESS {
			return errno
		}
		p.addChild(pid)
		return putU32(m, uint32(s[10]), uint32(pid))
	},
}

// preopens lists the mounts' preopens at their fd numbers, for a spawned
// child (which gets its mounts where its parent has them).
func (p *Process) preopens() []InheritedFile {
	var files []InheritedFile
	for fd, f := range p.fds.files {
		if f != nil && f.preopen != "" {
			in, errno := p.inheritable(uint32(fd))
			if errno == ESUCCESS {
				files = append(files, in)
			}
		}
	}
	return files
}

// vkProcFork is vkernel.proc_fork(fn, arg, result.pid) -> errno: starts a
// child vkernel process running a new instance of the caller's module
// whose memory is a copy of the caller's at the call, whose
// __stack_pointer is the caller's and whose fd table is a copy of the
// caller's (the same open file descriptions), and which calls the guest's
// export vkernel_fork_child(fn, arg) instead of _start. Writes the child's
// pid. The copy is taken before the call returns, so the caller's later
// writes are never seen by the child. Errors as proc_spawn's; ENOSYS also
// when the module does not export vkernel_fork_child and a mutable
// __stack_pointer.
var vkProcFork = &hostFunc{
	module: ModuleVkernel, name: "proc_fork",
	params: []string{"fn", "arg", "result.pid"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		m := mod.Memory()
		if _, ok := view(m, uint32(s[2]), 4); !ok {
			return EFAULT
		}
		sp, ok := mod.ExportedGlobal("__stack_pointer").(api.MutableGlobal)
		if !ok || mod.ExportedFunction(ForkChildExport) == nil || p.hooks.Fork == nil || p.thr != nil {
			// A process with a shared memory is not forked (ABI.md,
			// "Threads").
			return ENOSYS
		}
		if limit := p.maxChildren; limit > 0 && p.kids.count() >= limit {
			return EAGAIN
		}
		mem, _ := m.Read(0, m.Size())
		req := &ForkRequest{Fn: uint32(s[0]), Arg: uint32(s[1]), Memory: mem, StackPointer: sp.Get(),
			Dispositions: p.Dispositions(), Cwd: p.cwd, HasCwd: p.hasCwd}
		for fd, f := range p.fds.files {
			if f == nil {
				continue
			}
			in, errno := p.inheritable(uint32(fd))
			if errno != ESUCCESS {
				return errno
			}
			req.Files = append(req.Files, in)
		}
		pid, errno := p.hooks.Fork(ctx, req)
		if errno != ESUCCESS {
			return errno
		}
		p.addChild(pid)
		return putU32(m, uint32(s[2]), uint32(pid))
	},
}

// ForkChildExport is the export a forked child calls instead of _start.
const ForkChildExport = "vkernel_fork_child"

// readStrings reads n bytes of NUL-terminated strings. EINVAL when the
// last one lacks its NUL.
func readStrings(m api.Memory, off, n uint32) ([]string, Errno) {
	if n == 0 {
		return nil, ESUCCESS
	}
	if n > 1<<24 {
		return nil, E2BIG
	}
	b, ok := view(m, off, n)
	if !ok {
		return nil, EFAULT
	}
	if b[len(b)-1] != 0 {
		return nil, EINVAL
	}
	return strings.Split(string(b[:len(b)-1]), "\x00"), ESUCCESS
}

// guestPath resolves an absolute guest path to the mount with the longest
// matching guest prefix.
func (p *Process) guestPath(name string) (target, Errno) {
	if !path.IsAbs(name) {
		return target{}, EINVAL
	}
	name = path.Clean(name)
	var best *mount
	for _, m := range p.mounts {
		if (m.guest == "/" || name == m.guest || strings.HasPrefix(name, m.guest+"/")) && (best == nil || len(m.guest) > len(best.guest)) {
			best = m
		}
	}
	if best == nil {
		return target{}, ENOENT
	}
	return target{mount: best, rel: JoinInMount(".", strings.TrimPrefix(name, best.guest))}, ESUCCESS
}
