package main

import (
	root "github.com/compat-project/compat"

	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/compat-project/compat/runners/vktarget"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
	"github.com/compat-project/compat/vkernel/serve"
)

// serveCmd is compat serve: the exec service (vkernel/serve).
func serveCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", "serve -megabinary MB -pubkey PUB -socket PATH [flags]", stderr)
	mb := fs.String("megabinary", "", "signed megabinary")
	pubFile := fs.String("pubkey", "", "public key the megabinary must be signed with")
	socket := fs.String("socket", "", "Unix socket to listen on (made; a stale one left by a service that is gone is replaced)")
	policyName := fs.String("policy", "hash", "exec policy: hash or path+hash")
	auditFile := fs.String("audit", "", "audit log to append to (default CACHE/audit.jsonl)")
	cache := fs.String("cache", "", "cache root holding the AOT code (default $COMPAT_CACHE)")
	maxRunning := fs.Int("max", 0, "requests running at once (default 4 per CPU); more wait")
	maxWaiting := fs.Int("max-waiting", 0, "requests waiting for a slot (default 64); more are refused as busy")
	warm := fs.Int("warm", 2, "instances per entry kept started ahead of need, at most (one more than the entry has running)")
	share := fs.Int("share", vkernel.StartShareDefault, "requests one instance process runs at once, each in an instance of its own over one loaded copy of the entry's code (1: a process per request, which ends with it)")
	drain := fs.Duration("drain", vkernel.StartDrainDefault, "how long an instance process that is draining (a guest it had to stop made no host call) may run for its other requests before it is killed with them")
	mode := fs.String("mode", "0600", "permissions of the socket file (octal)")
	snapshot := fs.Bool("snapshot", snapshotDefault(), "start a request from its entry's snapshot when the entry has one and the request qualifies (vkernel/ABI.md, \"Snapshots\"); false, or COMPAT_SNAPSHOT=off, starts every request the usual way")
	var entries, prewarm, uids, gids listFlag
	fs.Var(&entries, "entry", "NAME: load only this manifest entry (repeatable; default all); requests routed to others are denied")
	fs.Var(&prewarm, "prewarm", "NAME: start an instance of this entry before the first request (repeatable)")
	fs.Var(&uids, "allow-uid", "UID: a user who may connect (repeatable; default: only this process's user)")
	fs.Var(&gids, "allow-gid", "GID: a group whose members (by the client's primary gid) may connect (repeatable)")
	if err := fs.Parse(args); err != nil || *mb == "" || *pubFile == "" || *socket == "" || fs.NArg() > 0 {
		return usageError(fs, err)
	}
	srv := &serve.Server{MaxRunning: *maxRunning, MaxWaiting: *maxWaiting, Log: stderr}
	for _, l := range []struct {
		list listFlag
		dst  *[]int
		name string
	}{{uids, &srv.AllowUIDs, "-allow-uid"}, {gids, &srv.AllowGIDs, "-allow-gid"}} {
		for _, s := range l.list {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return fail(stderr, fmt.Errorf("%s %q: want a number", l.name, s))
			}
			*l.dst = append(*l.dst, n)
		}
	}
	perm, err := strconv.ParseUint(*mode, 8, 32)
	if err != nil || perm == 0 || perm > 0o777 {
		return fail(stderr, fmt.Errorf("-mode %q: want octal permissions such as 0600", *mode))
	}
	if *cache == "" {
		*cache = root.CacheRoot()
	}
	policy, err := vkernel.ParsePolicy(*policyName)
	if err != nil {
		return fail(stderr, err)
	}
	pub, err := megabinary.ReadPublicKey(*pubFile)
	if err != nil {
		return fail(stderr, err)
	}
	if *auditFile == "" {
		*auditFile = filepath.Join(*cache, "audit.jsonl")
		os.MkdirAll(filepath.Dir(*auditFile), 0o755)
	}
	audit, err := os.OpenFile(*auditFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fail(stderr, fmt.Errorf("audit log: %w", err))
	}
	defer audit.Close()
	self, err := os.Executable()
	if err != nil {
		return fail(stderr, err)
	}
	ctx := context.Background()
	k, err := vkernel.Open(ctx, *mb, vkernel.Options{TrustedKeys: []ed25519.PublicKey{pub}, CacheDir: *cache,
		Policy: policy, Audit: audit, Entries: entries, ChildCommand: []string{self}, StartWarm: *warm,
		StartShare: *share, StartDrain: *drain,
		// The instances load their code; the service only routes.
		StartOnly: true, NoSnapshot: !*snapshot})
	if err != nil {
		return fail(stderr, err)
	}
	defer k.Close(context.Background())
	if err := k.Prewarm(prewarm...); err != nil {
		return fail(stderr, err)
	}
	srv.Kernel, srv.Audit = k, audit
	l, err := serve.Listen(*socket, os.FileMode(perm))
	if err != nil {
		return fail(stderr, err)
	}
	// SIGINT or SIGTERM: stop accepting, let the running requests end;
	// a second one kills them.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	stopped := make(chan error, 1)
	go func() {
		<-sigs
		fmt.Fprintf(stderr, "compat serve: stopping: no new requests; waiting for those running (a second signal kills them)\n")
		sctx, cancel := context.WithCancel(context.Background())
		go func() { <-sigs; cancel() }()
		stopped <- srv.Shutdown(sctx)
		cancel()
	}()
	fmt.Fprintf(stderr, "compat serve: listening on %s (megabinary %s, policy %s)\n", *socket, k.Digest()[:12], policy)
	if err := srv.Serve(l); err != nil {
		return fail(stderr, err)
	}
	if err := <-stopped; err != nil {
		fmt.Fprintf(stderr, "compat serve: requests still running were killed: %v\n", err)
	}
	if err := k.Close(context.Background()); err != nil {
		return fail(stderr, err)
	}
	return exitOK
}

// viaFlags are compat exec's flags that have no meaning with -via: the
// service has its own megabinary, policy, cache and audit log.
var viaFlags = []string{"megabinary", "pubkey", "policy", "audit", "cache", "entry", "listen", "listen-fd", "cpuprofile", "snapshot"}

// execVia is compat exec -via SOCKET: the request goes to a compat serve.
func execVia(socket string, req serve.Request, timeout, retry time.Duration, result *resultWriter, stdout, stderr io.Writer) int {
	failed := func(err error) int {
		result.write(vktarget.ExecResult{Error: err.Error()})
		return fail(stderr, err)
	}
	// The guest writes to these fds itself; a writer that is not a file
	// (tests) gets a pipe copied into it.
	var copies []chan struct{}
	for _, o := range []struct {
		w   io.Writer
		dst **os.File
	}{{stdout, &req.Stdout}, {stderr, &req.Stderr}} {
		if f, ok := o.w.(*os.File); ok {
			*o.dst = f
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return failed(err)
		}
		done := make(chan struct{})
		copies = append(copies, done)
		go func(w io.Writer) { io.Copy(w, r); r.Close(); close(done) }(o.w)
		*o.dst = w
		defer w.Close()
	}
	req.Stdin = os.Stdin
	// Signals that end a program go to the guest; the client ends as the
	// guest does.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	var gotMu sync.Mutex
	got := make(map[syscall.Signal]bool)
	fwd := make(chan os.Signal, 4)
	go func() {
		for s := range sigs {
			gotMu.Lock()
			got[s.(syscall.Signal)] = true
			gotMu.Unlock()
			fwd <- s
		}
	}()
	req.Signals = fwd
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res, err := (&serve.Client{Socket: socket, Retry: retry}).Exec(ctx, req)
	for _, f := range []*os.File{req.Stdout, req.Stderr} {
		if f != stdout && f != stderr {
			f.Close()
		}
	}
	for _, done := range copies {
		<-done
	}
	var refused *serve.RefusedError
	switch {
	case errors.As(err, &refused) && refused.Denied != nil:
		result.write(vktarget.ExecResult{Denied: refused.Denied})
		fmt.Fprintf(stderr, "compat: %v\n", refused.Message)
		fmt.Fprintf(stderr, "compat: denied by the vkernel of the service at %s; recorded in its audit log\n", socket)
		return exitDenied
	case errors.Is(err, context.DeadlineExceeded):
		result.write(vktarget.ExecResult{Trap: "stopped: " + err.Error()})
		fmt.Fprintf(stderr, "compat: guest stopped: %v\n", err)
		return exitTrap
	case err != nil:
		return failed(err)
	}
	code := res.ExitCode
	result.write(vktarget.ExecResult{Exit: &code})
	signal.Stop(sigs)
	gotMu.Lock()
	forwarded := got[res.Signal]
	gotMu.Unlock()
	if res.Signal != 0 && forwarded {
		// The guest died of the signal this process was sent: so does
		// this process, as a native program would.
		signal.Reset(res.Signal)
		syscall.Kill(os.Getpid(), res.Signal)
		time.Sleep(time.Second)
	}
	if code > 255 {
		return 255
	}
	return code
}

// viaConflict names a flag given with -via that it excludes, or "".
func viaConflict(set map[string]bool) string {
	var bad []string
	for _, f := range viaFlags {
		if set[f] {
			bad = append(bad, "-"+f)
		}
	}
	return strings.Join(bad, ", ")
}
