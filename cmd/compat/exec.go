package main

import (
	root "github.com/compat-project/compat"

	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/compat-project/compat/runners/vktarget"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
	"github.com/compat-project/compat/vkernel/serve"
)

func execCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("exec", "exec (-megabinary MB -pubkey PUB | -via SOCKET) [flags] PATH [ARG...]", stderr)
	via := fs.String("via", "", "send the request to the compat serve listening on SOCKET instead of loading the megabinary here (the file and stdio go as fds; -megabinary, -pubkey, -policy, -audit, -cache, -entry, -listen, -listen-fd, -cpuprofile and -snapshot are the service's business)")
	retry := fs.Duration("retry", 5*time.Second, "with -via: keep retrying this long while the service is unreachable (restarting) or refuses as stopping or busy")
	cwd := fs.String("cwd", "", "guest path the guest starts in (proc_initial_cwd; the C layer changes to it)")
	mb := fs.String("megabinary", "", "signed megabinary")
	pubFile := fs.String("pubkey", "", "public key the megabinary must be signed with")
	policyName := fs.String("policy", "hash", "exec policy: hash or path+hash")
	auditFile := fs.String("audit", "", "audit log to append to (default CACHE/audit.jsonl)")
	cache := fs.String("cache", "", "cache root holding the AOT code (default $COMPAT_CACHE)")
	timeout := fs.Duration("timeout", 0, "stop the guest after this long, wherever it is (0: no limit); its loops then run slower (README, \"Stopping a guest\")")
	argv0 := fs.String("argv0", "", "argv[0] the guest sees (default PATH)")
	resultFD := fs.Int("result-fd", -1, "write how the exec ended, as one JSON object, to this inherited fd")
	snapshot := fs.Bool("snapshot", snapshotDefault(), "start from the entry's snapshot when it has one and the exec qualifies (vkernel/ABI.md, \"Snapshots\"); false, or COMPAT_SNAPSHOT=off, starts the usual way (with -via: the service's -snapshot decides)")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of this process (the vkernel and its guest) to FILE; SIGINT, SIGTERM and SIGHUP write it before the process dies of them (Go code then runs first: a guest computing without host calls can hold that up; a second signal then kills at once)")
	var mounts, listens, listenFDs, env, entries listFlag
	fs.Var(&mounts, "mount", "GUEST=HOST[:ro]: mount a host directory (repeatable)")
	fs.Var(&listens, "listen", "ADDR: listen on a host address and hand the socket to the guest (repeatable)")
	fs.Var(&listenFDs, "listen-fd", "FD: hand the guest the listening socket inherited as FD (repeatable)")
	fs.Var(&env, "env", "KEY=VALUE for the guest (repeatable)")
	fs.Var(&entries, "entry", "NAME: load only this manifest entry (repeatable; default all); execs routed to others are denied")
	if err := fs.Parse(args); err != nil || (*via == "" && (*mb == "" || *pubFile == "")) || fs.NArg() < 1 {
		return usageError(fs, err)
	}
	result := newResultWriter(*resultFD)
	if *via != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if bad := viaConflict(set); bad != "" {
			return fail(stderr, fmt.Errorf("exec -via: %s cannot be given with -via (the service has its own)", bad))
		}
		req := serve.Request{Path: fs.Arg(0), Args: fs.Args(), Env: env, Cwd: *cwd}
		if *argv0 != "" {
			req.Args = append([]string{*argv0}, fs.Args()[1:]...)
		}
		for _, m := range mounts {
			mount, err := parseMount(m)
			if err != nil {
				return fail(stderr, err)
			}
			req.Mounts = append(req.Mounts, mount)
		}
		return execVia(*via, req, *timeout, *retry, result, stdout, stderr)
	}
	failed := func(err error) int {
		result.write(vktarget.ExecResult{Error: err.Error()})
		return fail(stderr, err)
	}
	if *cache == "" {
		*cache = root.CacheRoot()
	}
	policy, err := vkernel.ParsePolicy(*policyName)
	if err != nil {
		return failed(err)
	}
	pub, err := megabinary.ReadPublicKey(*pubFile)
	if err != nil {
		return failed(err)
	}
	req := vkernel.Request{Path: fs.Arg(0), Args: fs.Args(), Env: env, Cwd: *cwd, Stdin: os.Stdin, Stdout: stdout, Stderr: stderr}
	if *argv0 != "" {
		req.Args = append([]string{*argv0}, fs.Args()[1:]...)
	}
	for _, m := range mounts {
		mount, err := parseMount(m)
		if err != nil {
			return failed(err)
		}
		req.Mounts = append(req.Mounts, mount)
	}
	for _, addr := range listens {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return failed(err)
		}
		defer l.Close()
		req.Listeners = append(req.Listeners, l)
	}
	for _, s := range listenFDs {
		l, err := inheritedListener(s)
		if err != nil {
			return failed(err)
		}
		defer l.Close()
		req.Listeners = append(req.Listeners, l)
	}
	stopProfile := func() {}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return failed(err)
		}
		defer stop()
		stopProfile = stop
	}
	// SIGINT, SIGTERM and SIGHUP end compat exec as they end a native
	// program without handlers (killed by the signal), once the profile
	// is written and the guest's child processes are ended and reaped:
	// none is left behind, not even as a zombie.
	defer vkernel.EndOnSignals(stopProfile)()
	if *auditFile == "" {
		*auditFile = filepath.Join(*cache, "audit.jsonl")
		os.MkdirAll(filepath.Dir(*auditFile), 0o755)
	}
	audit, err := os.OpenFile(*auditFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return failed(fmt.Errorf("audit log: %w", err))
	}
	defer audit.Close()

	ctx := context.Background()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	self, err := os.Executable()
	if err != nil {
		return failed(err)
	}
	k, err := vkernel.Open(ctx, *mb, vkernel.Options{
		TrustedKeys: []ed25519.PublicKey{pub},
		CacheDir:    *cache,
		Policy:      policy,
		Audit:       audit,
		Entries:     entries,
		// Only a -timeout needs the guest stoppable at any instant;
		// otherwise it runs at full speed and a signal ends the process.
		Interruptible: *timeout > 0,
		// The guest's children: this executable again (main calls
		// vkernel.ChildMain). They die with this process.
		ChildCommand: []string{self},
		NoSnapshot:   !*snapshot,
	})
	if err != nil {
		return failed(err)
	}
	defer k.Close(context.Background())
	res, err := k.Exec(ctx, req)
	var denied *vkernel.DeniedError
	var trap *vkernel.TrapError
	switch {
	case errors.As(err, &denied):
		result.write(vktarget.ExecResult{Denied: denied})
		fmt.Fprintf(stderr, "compat: %v\n", err)
		fmt.Fprintf(stderr, "compat: denied by the vkernel (policy %s); recorded in %s\n", policy, *auditFile)
		return exitDenied
	case errors.As(err, &trap):
		result.write(vktarget.ExecResult{Trap: err.Error()})
		fmt.Fprintf(stderr, "compat: %v\n", err)
		return exitTrap
	case err != nil:
		return failed(err)
	}
	code := int(res.ExitCode)
	result.write(vktarget.ExecResult{Exit: &code})
	if code > 255 {
		return 255
	}
	return code
}

// snapshotDefault is the default of -snapshot: on, unless the environment
// variable COMPAT_SNAPSHOT is "off" (or "0", "false", "no").
func snapshotDefault() bool {
	switch strings.ToLower(os.Getenv("COMPAT_SNAPSHOT")) {
	case "off", "0", "false", "no":
		return false
	}
	return true
}

// startCPUProfile profiles the process into file until the returned stop
// is called (also by EndOnSignals before the process dies of a signal).
func startCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile %s: %w", file, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}

// resultWriter writes compat exec's ExecResult to -result-fd, once: the
// -timeout watchdog and the exec race to it.
type resultWriter struct {
	mu sync.Mutex
	f  *os.File
}

func newResultWriter(fd int) *resultWriter {
	if fd < 0 {
		return &resultWriter{}
	}
	return &resultWriter{f: os.NewFile(uintptr(fd), "result-fd")}
}

func (w *resultWriter) write(r vktarget.ExecResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return
	}
	b, _ := json.Marshal(r)
	w.f.Write(append(b, '\n'))
	w.f.Close()
	w.f = nil
}

// inheritedListener adopts the listening socket inherited as fd s.
func inheritedListener(s string) (net.Listener, error) {
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("-listen-fd %q: want an inherited fd number above 2", s)
	}
	f := os.NewFile(uintptr(fd), "listen-fd-"+s)
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("-listen-fd %d: not a listening socket: %w", fd, err)
	}
	return l, nil
}

func parseMount(s string) (vkernel.Mount, error) {
	guest, host, ok := strings.Cut(s, "=")
	if !ok || guest == "" || host == "" {
		return vkernel.Mount{}, fmt.Errorf("mount %q: want GUEST=HOST[:ro]", s)
	}
	m := vkernel.Mount{Guest: guest}
	if h, ok := strings.CutSuffix(host, ":ro"); ok {
		host, m.ReadOnly = h, true
	}
	abs, err := filepath.Abs(host)
	if err != nil {
		return m, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return m, fmt.Errorf("mount %q: %s is not a directory", s, abs)
	}
	m.Host = abs
	return m, nil
}
