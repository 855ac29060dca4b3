// Package vktarget is the runners.Target that runs programs in the vkernel:
// each process is an exec routed by the SHA-256 of the program's file
// through a signed megabinary.
package vktarget

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"sync"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/vkernel"
)

// Options configure a Target.
type Options struct {
	// Name names the target in reports; default "vkernel".
	Name string
	// Kernel runs the processes. It stays the caller's: one kernel serves
	// every suite of a run, so Close leaves it open.
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
	// Megabinary and PublicKey are the files Kernel was opened from, named
	// in the commands Command writes (compat exec needs both); empty, the
	// commands say MEGABINARY and PUBKEY instead.
	Megabinary, PublicKey string
}

// Target runs processes in one vkernel. It is safe for concurrent use.
type Target struct {
	opts   Options
	mounts []vkernel.Mount
	mu     sync.Mutex
	closed bool
}

// New returns a Target over opts.Kernel.
func New(opts Options) (*Target, error) {
	if opts.Kernel == nil {
		return nil, errors.New("vkernel target: no kernel")
	}
	if opts.Name == "" {
		opts.Name = "vkernel"
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
		ls    []net.Listener
		ports []int
		addrs []string
	)
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("vkernel target: listener %d of %d: %w", i+1, n, err)
		}
		ls = append(ls, l)
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
		return t.run(ctx, p, ls)
	}), nil
}

func (t *Target) run(ctx context.Context, p runners.Process, listeners []net.Listener) (runners.Exit, error) {
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
	file, err := t.program(p.Args[0])
	if err != nil {
		return runners.Exit{}, err
	}
	res, err := t.opts.Kernel.Exec(ctx, vkernel.Request{
		Path:      file,
		Args:      p.Args,
		Env:       append(append([]string(nil), t.opts.Env...), p.Env...),
		Stdin:     p.Stdin,
		Stdout:    p.Stdout,
		Stderr:    p.Stderr,
		Mounts:    t.mounts,
		Listeners: listeners,
	})
	var trap *vkernel.TrapError
	switch {
	case ctx.Err() != nil:
		return runners.Exit{}, fmt.Errorf("vkernel target: %s: %w", p.Args[0], ctx.Err())
	case errors.As(err, &trap):
		return runners.Exit{Code: -1, Crash: "wasm trap: " + trap.Err.Error()}, nil
	case err != nil:
		return runners.Exit{}, fmt.Errorf("vkernel target: %w", err)
	}
	return runners.Exit{Code: int(res.ExitCode)}, nil
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
// p in a kernel of its own, opened from the same megabinary
// (Options.Megabinary) with the target's mounts and environment.
func (t *Target) Command(p runners.Process) string {
	mb, pub := t.opts.Megabinary, t.opts.PublicKey
	if mb == "" {
		mb = "MEGABINARY"
	}
	if pub == "" {
		pub = "PUBKEY"
	}
	args := []string{"compat", "exec", "-megabinary", mb, "-pubkey", pub}
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
	if len(p.Args) > 0 {
		file, err := t.program(p.Args[0])
		if err != nil {
			file = p.Args[0]
		}
		args = append(append(args, file), p.Args[1:]...)
	}
	return runners.QuoteCommand(args...)
}
