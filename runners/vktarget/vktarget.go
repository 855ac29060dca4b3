// Package vktarget is the runners.Target that runs programs in the vkernel:
// each process is an exec routed by the SHA-256 of the program's file
// through a signed megabinary.
//
// Each process runs in a compat exec process of its own, opened on the same
// signed megabinary as the caller's kernel. Guest code then runs at the
// engine's full speed (the kernel needs no per-loop termination checks,
// vkernel.Options.Interruptible) and a unit that times out or a run that is
// interrupted is still stopped at once, wherever its guest is: by ending
// that process and the guest's child processes with it (its process
// group). No process of a unit, nor its zombie, outlives Run: New makes
// the calling process a child subreaper, which reaps the orphans of a
// killed unit (group.go). The command a report names is the one that ran.
package vktarget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/vkernel"
)

// Options configure a Target.
type Options struct {
	// Name names the target in reports; default "vkernel".
	Name string
	// Kernel is the caller's kernel, opened from Megabinary: the target
	// reports its digests, and its load left the AOT code in Cache for
	// the processes to read. It stays the caller's: Close leaves it open.
	Kernel *vkernel.Kernel
	// Mounts are every process's preopened directories.
	Mounts []runners.Mount
	// Programs maps a program name or guest path, as Process.Args[0]
	// gives it, to the host file the exec hashes. Other absolute guest
	// paths are mapped through Mounts.
	Programs map[string]string
	// Env holds "KEY=value" entries for every process.
	Env []string
	// Properties are added to the target's properties.
	Properties map[string]string
	// Megabinary and PublicKey are the files Kernel was opened from: the
	// compat exec processes open them again.
	Megabinary, PublicKey string
	// Exec is the command that runs compat exec, such as
	// {"/usr/bin/compat", "exec"}.
	Exec []string
	// Cache is the cache root holding the AOT code (compat exec -cache);
	// empty, compat exec's default.
	Cache string
	// Entries, when not empty, are the only manifest entries the
	// processes load (compat exec -entry): the programs' own. A process
	// then pays for loading its program's code only.
	Entries []string
}

// ExecResult is what compat exec writes to its -result-fd as it ends: how
// the exec ended, which its exit status alone cannot tell (a guest may
// exit 125 or 126 itself). Exactly one field is set.
type ExecResult struct {
	// Exit is the guest's exit status when it ran to its end.
	Exit *int `json:"exit,omitempty"`
	// Trap says how the guest ended abnormally: a trap, or stopped.
	Trap string `json:"trap,omitempty"`
	// Denied is the vkernel's refusal of the exec.
	Denied *vkernel.DeniedError `json:"denied,omitempty"`
	// Error says why compat exec could not run the guest at all.
	Error string `json:"error,omitempty"`
}

// Target runs processes in one vkernel. It is safe for concurrent use.
type Target struct {
	opts   Options
	mounts []vkernel.Mount
	mu     sync.Mutex
	closed bool
}

// New returns a Target over opts.Kernel. It makes the calling process a
// child subreaper (Linux's PR_SET_CHILD_SUBREAPER) for good: orphans of
// its descendants become its children, and Run reaps those of its units.
func New(opts Options) (*Target, error) {
	switch {
	case opts.Kernel == nil:
		return nil, errors.New("vkernel target: no kernel")
	case len(opts.Exec) == 0:
		return nil, errors.New("vkernel target: no compat exec command to run processes with")
	case opts.Megabinary == "" || opts.PublicKey == "":
		return nil, errors.New("vkernel target: no megabinary or public key file for compat exec")
	}
	if opts.Name == "" {
		opts.Name = "vkernel"
	}
	if err := becomeSubreaper(); err != nil {
		return nil, err
	}
	t := &Target{opts: opts}
	for _, m := range opts.Mounts {
		t.mounts = append(t.mounts, vkernel.Mount{Guest: m.Guest, Host: m.Host, ReadOnly: m.ReadOnly})
	}
	return t, nil
}

// Name implements runners.Target.
func (t *Target) Name() string { return t.opts.Name }

// Properties implements runners.Target: the megabinary digest, the module
// digest of each program's entry, and the wazero version.
func (t *Target) Properties() map[string]string {
	props := map[string]string{
		compat.PropMegabinaryDigest:             t.opts.Kernel.Digest(),
		compat.PropVersionPrefix + "wazero":     vkernel.WazeroVersion(),
		compat.PropVersionPrefix + "megabinary": fmt.Sprint(t.opts.Kernel.Manifest().Format),
	}
	var modules []string
	for _, e := range t.opts.Kernel.Manifest().Entries {
		modules = append(modules, e.Name+"="+e.Module)
	}
	if len(modules) == 1 {
		props[compat.PropModuleDigest] = strings.TrimPrefix(modules[0], t.opts.Kernel.Manifest().Entries[0].Name+"=")
	} else {
		props[compat.PropModuleDigest] = strings.Join(modules, ",")
	}
	for k, v := range t.opts.Properties {
		props[k] = v
	}
	return props
}

// Run implements runners.Target. A trap is an Exit with Crash set; a denied
// exec, a program that cannot be found and an ended ctx are errors.
func (t *Target) Run(ctx context.Context, p runners.Process) (runners.Exit, error) {
	return t.run(ctx, p, nil)
}

// Serve implements runners.Server: it listens on n ports of 127.0.0.1
// chosen by the host and hands the sockets to the guest as listeners
// (VKERNEL_LISTEN_FDS; the entry's resources must allow n). The guest sees
// the host sockets themselves, so its ports are the host's. The sockets are
// closed when the program ends.
func (t *Target) Serve(ctx context.Context, n int, start func(ports []int) runners.Process) (*runners.Service, error) {
	var (
		files []*os.File
		ports []int
		addrs []string
	)
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("vkernel target: listener %d of %d: %w", i+1, n, err)
		}
		// The process inherits a duplicate; this one is closed at once,
		// so the port is the guest's alone.
		f, err := l.(*net.TCPListener).File()
		l.Close()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("vkernel target: listener %d of %d: %w", i+1, n, err)
		}
		files = append(files, f)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		addrs = append(addrs, l.Addr().String())
	}
	p := start(ports)
	if len(p.Args) == 0 {
		closeAll()
		return nil, errors.New("vkernel target: serve: no program")
	}
	return runners.StartService(ctx, addrs, func(ctx context.Context) (runners.Exit, error) {
		defer closeAll()
		return t.run(ctx, p, files)
	}), nil
}

// run runs p in a compat exec process, handing it listeners (inherited
// listening sockets) and reading how the exec ended from -result-fd.
func (t *Target) run(ctx context.Context, p runners.Process, listeners []*os.File) (runners.Exit, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return runners.Exit{}, errors.New("vkernel target: closed")
	}
	if len(p.Args) == 0 {
		return runners.Exit{}, errors.New("vkernel target: no program")
	}
	if p.Dir != "" && p.Dir != "/" {
		return runners.Exit{}, fmt.Errorf("vkernel target: working directory %s: guests start in /; leave Dir empty", p.Dir)
	}
	args, err := t.execArgs(p)
	if err != nil {
		return runners.Exit{}, err
	}
	resultR, resultW, err := os.Pipe()
	if err != nil {
		return runners.Exit{}, fmt.Errorf("vkernel target: result pipe: %w", err)
	}
	defer resultR.Close()
	// Inherited files are numbered from 3 in ExtraFiles' order.
	files := append([]*os.File{resultW}, listeners...)
	plumbing := []string{"-result-fd", "3"}
	for i := range listeners {
		plumbing = append(plumbing, "-listen-fd", strconv.Itoa(4+i))
	}
	// The flags go before the program, whose arguments follow it.
	n := len(args) - len(p.Args)
	full := append(append(append([]string(nil), args[:n]...), plumbing...), args[n:]...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.Stdin, p.Stdout, p.Stderr
	cmd.ExtraFiles = files
	// The unit's host calls directory, if any: compat exec's kernel and
	// its child processes write their counts there.
	if runners.HostCallsDir(ctx) != "" {
		cmd.Env = runners.HostCallsEnv(ctx, os.Environ())
	}
	// A process whose caller died does not run on: the kernel kills it
	// (the run was ended with SIGKILL, or crashed). It leads a process
	// group that its whole tree of vkernel processes joins (group.go).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	// Output copied from pipes is complete soon after the process ends;
	// do not wait on a descendant that kept them open.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		resultW.Close()
		return runners.Exit{}, fmt.Errorf("vkernel target: starting compat exec: %w", err)
	}
	resultW.Close()
	result := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(resultR, 1<<20))
		result <- b
	}()
	// The process tree ends when ctx does: killed, wherever its guests
	// are.
	pgid := cmd.Process.Pid
	stop := context.AfterFunc(ctx, func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	waitErr := cmd.Wait()
	stop()
	// However compat exec ended, nothing of its tree outlives it.
	groupErr := endGroup(pgid)
	if ctx.Err() != nil {
		return runners.Exit{}, fmt.Errorf("vkernel target: %s: %w", p.Args[0], ctx.Err())
	}
	if groupErr != nil {
		return runners.Exit{}, groupErr
	}
	var res ExecResult
	b := <-result
	if err := json.Unmarshal(b, &res); err != nil {
		return runners.Exit{}, fmt.Errorf("vkernel target: %s: compat exec ended (%v) without saying how the exec ended", p.Args[0], waitErr)
	}
	switch {
	case res.Exit != nil:
		return runners.Exit{Code: *res.Exit}, nil
	case res.Trap != "":
		return runners.Exit{Code: -1, Crash: "wasm trap: " + trapText(res.Trap)}, nil
	case res.Denied != nil:
		return runners.Exit{}, fmt.Errorf("vkernel target: %w", res.Denied)
	default:
		return runners.Exit{}, fmt.Errorf("vkernel target: %s", res.Error)
	}
}

// trapText is the trap itself, without the "guest ENTRY: " prefix that
// vkernel.TrapError adds.
func trapText(s string) string {
	if _, rest, ok := strings.Cut(s, ": "); ok && strings.HasPrefix(s, "guest ") {
		return rest
	}
	return s
}

// program finds the host file for a program name or guest path.
func (t *Target) program(name string) (string, error) {
	if f, ok := t.opts.Programs[name]; ok {
		return f, nil
	}
	if !path.IsAbs(name) {
		return "", fmt.Errorf("vkernel target: program %q is not one of the target's programs and not an absolute guest path", name)
	}
	host, ok := vkernel.HostPath(t.mounts, name)
	if !ok {
		return "", fmt.Errorf("vkernel target: program %s is under no mount", name)
	}
	return host, nil
}

// Close implements runners.Target: later Runs fail. The kernel stays open.
func (t *Target) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return nil
}

// Command implements runners.Target: the compat exec command line that runs
// p as Run does, in a kernel of its own opened from the same megabinary.
func (t *Target) Command(p runners.Process) string {
	args, err := t.execArgs(p)
	if err != nil {
		args = append(args, p.Args...)
	}
	return runners.QuoteCommand(args...)
}

// execArgs is the compat exec command line for p, without the plumbing
// flags (-result-fd, -listen-fd) that only Run's own pipes need.
func (t *Target) execArgs(p runners.Process) ([]string, error) {
	args := append(append([]string(nil), t.opts.Exec...), "-megabinary", t.opts.Megabinary, "-pubkey", t.opts.PublicKey)
	if t.opts.Cache != "" {
		args = append(args, "-cache", t.opts.Cache)
	}
	for _, e := range t.opts.Entries {
		args = append(args, "-entry", e)
	}
	for _, m := range t.opts.Mounts {
		v := m.Guest + "=" + m.Host
		if m.ReadOnly {
			v += ":ro"
		}
		args = append(args, "-mount", v)
	}
	for _, e := range append(append([]string(nil), t.opts.Env...), p.Env...) {
		args = append(args, "-env", e)
	}
	if len(p.Args) == 0 {
		return args, errors.New("vkernel target: no program")
	}
	file, err := t.program(p.Args[0])
	if err != nil {
		return args, err
	}
	// The file compat exec hashes is the host file; argv[0] stays the
	// program as the caller named it.
	if file != p.Args[0] {
		args = append(args, "-argv0", p.Args[0])
	}
	return append(append(args, file), p.Args[1:]...), nil
}
