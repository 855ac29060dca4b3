// Package local runs programs on the host itself, for machines without
// Docker: the host's own python3.11 stands in for a reference build.
//
// It implements runners.Target with os/exec. Mounts are emulated by
// rewriting paths, which has limits a container does not have:
//
//   - Only paths the caller hands over are rewritten: an argument, an
//     environment value or the working directory that is a guest path or
//     starts with one (also after "=", as in --junit-xml=/out/x.xml). Paths
//     the program builds itself, or reads from files, are not.
//   - The program sees the host's real paths in its own results
//     (tracebacks, os.getcwd()).
//   - Any value starting with a guest path is rewritten, so a guest path
//     must not be a prefix of host paths the caller passes: a mount at
//     /work would also rewrite /work/main/testdata. Prefer guest paths such
//     as /compat/work.
//   - ReadOnly is not enforced.
//   - Everything else on the host is visible, not just the mounts.
package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/compat-project/compat/runners"
)

// Options configures a Target.
type Options struct {
	// Name names the target in reports; default "local".
	Name string
	// Mounts map guest paths to host directories (see the package
	// documentation for the limits).
	Mounts []runners.Mount
	// Env holds "KEY=value" entries added to the host's environment for
	// every process.
	Env []string
	// Properties are reported as they are, beside "host.os" and
	// "host.arch".
	Properties map[string]string
	// KillGrace is how long a process whose context is done may keep its
	// output pipes open after it is killed (its children may hold them);
	// default 5s.
	KillGrace time.Duration
}

// Target runs processes on the host. Create one with New.
type Target struct {
	opts   Options
	mu     sync.Mutex
	closed bool
}

// New returns a Target for the host. It checks that every mount's host
// directory exists and every guest path is absolute.
func New(opts Options) (*Target, error) {
	if opts.Name == "" {
		opts.Name = "local"
	}
	if opts.KillGrace == 0 {
		opts.KillGrace = 5 * time.Second
	}
	for _, m := range opts.Mounts {
		if !filepath.IsAbs(m.Guest) {
			return nil, fmt.Errorf("local target %s: mount guest path %q is not absolute", opts.Name, m.Guest)
		}
		fi, err := os.Stat(m.Host)
		if err != nil {
			return nil, fmt.Errorf("local target %s: mount %s -> %s: %w", opts.Name, m.Host, m.Guest, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("local target %s: mount host path %s is not a directory", opts.Name, m.Host)
		}
	}
	return &Target{opts: opts}, nil
}

// Name returns the target's name.
func (t *Target) Name() string { return t.opts.Name }

// Properties returns the configured properties plus the host's OS and
// architecture.
func (t *Target) Properties() map[string]string {
	p := map[string]string{"host.os": runtime.GOOS, "host.arch": runtime.GOARCH}
	for k, v := range t.opts.Properties {
		p[k] = v
	}
	return p
}

// Close marks the target closed; later Runs fail. There is nothing to
// release.
func (t *Target) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return nil
}

// HostPath returns the host path of a guest path under the target's mounts,
// and whether a mount covers it. The longest matching guest path wins.
func (t *Target) HostPath(guest string) (string, bool) {
	best := -1
	for i, m := range t.opts.Mounts {
		g := filepath.Clean(m.Guest)
		if guest == g || strings.HasPrefix(guest, g+"/") || g == "/" {
			if best < 0 || len(g) > len(filepath.Clean(t.opts.Mounts[best].Guest)) {
				best = i
			}
		}
	}
	if best < 0 {
		return guest, false
	}
	m := t.opts.Mounts[best]
	rel := strings.TrimPrefix(guest, filepath.Clean(m.Guest))
	return filepath.Join(m.Host, rel), true
}

// mapValue rewrites a value that is, or starts with, a guest path, also
// after a "KEY=" or "--flag=" prefix.
func (t *Target) mapValue(s string) string {
	if strings.HasPrefix(s, "/") {
		h, _ := t.HostPath(s)
		return h
	}
	if k, v, ok := strings.Cut(s, "="); ok && strings.HasPrefix(v, "/") {
		h, _ := t.HostPath(v)
		return k + "=" + h
	}
	return s
}

// Run runs p on the host (see runners.Target). The process gets its own
// process group so that a timeout kills its children too.
func (t *Target) Run(ctx context.Context, p runners.Process) (runners.Exit, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return runners.Exit{}, fmt.Errorf("local target %s: Run after Close", t.opts.Name)
	}
	if len(p.Args) == 0 {
		return runners.Exit{}, fmt.Errorf("local target %s: Run with no program", t.opts.Name)
	}
	args := make([]string, len(p.Args))
	for i, a := range p.Args {
		args[i] = t.mapValue(a)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = os.Environ()
	for _, e := range append(append([]string(nil), t.opts.Env...), p.Env...) {
		cmd.Env = append(cmd.Env, t.mapValue(e))
	}
	// A unit's harness starts the shims that run its guests: they write
	// their host call counts where the unit's context says.
	cmd.Env = runners.HostCallsEnv(ctx, cmd.Env)
	if p.Dir != "" {
		cmd.Dir = t.mapValue(p.Dir)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.Stdin, p.Stdout, p.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The negative pid names the whole process group.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = t.opts.KillGrace
	err := cmd.Run()
	if ctx.Err() != nil {
		return runners.Exit{Code: -1, Crash: "killed: " + ctx.Err().Error()},
			fmt.Errorf("local target %s: %s: %w", t.opts.Name, strings.Join(p.Args, " "), ctx.Err())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return runners.Exit{}, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return runners.SignalExit(ws.Signal()), nil
		}
		return runners.Exit{Code: ee.ExitCode()}, nil
	default:
		return runners.Exit{}, fmt.Errorf("local target %s: running %s: %w", t.opts.Name, strings.Join(args, " "), err)
	}
}

// Serve implements runners.Server. The ports are free ports of 127.0.0.1
// found by listening on port 0 and closing the socket again, so another
// process could take one before the program binds it; the program then
// fails to start, which Service.Exit reports.
func (t *Target) Serve(ctx context.Context, n int, start func(ports []int) runners.Process) (*runners.Service, error) {
	var ports []int
	var addrs []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		// All are held open until every port is chosen, so they differ.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("local target %s: finding free port %d of %d: %w", t.opts.Name, i+1, n, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	ls = nil
	p := start(ports)
	return runners.StartService(ctx, addrs, func(ctx context.Context) (runners.Exit, error) {
		return t.Run(ctx, p)
	}), nil
}
