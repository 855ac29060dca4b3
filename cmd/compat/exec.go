package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

func execCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("exec", "exec -megabinary MB -pubkey PUB [flags] PATH [ARG...]", stderr)
	mb := fs.String("megabinary", "", "signed megabinary")
	pubFile := fs.String("pubkey", "", "public key the megabinary must be signed with")
	policyName := fs.String("policy", "hash", "exec policy: hash or path+hash")
	auditFile := fs.String("audit", "", "audit log to append to (default COMPAT_CACHE/audit.jsonl)")
	timeout := fs.Duration("timeout", 0, "stop the guest after this long (0: no limit)")
	var mounts, listens, env listFlag
	fs.Var(&mounts, "mount", "GUEST=HOST[:ro]: mount a host directory (repeatable)")
	fs.Var(&listens, "listen", "ADDR: listen on a host address and hand the socket to the guest (repeatable)")
	fs.Var(&env, "env", "KEY=VALUE for the guest (repeatable)")
	if err := fs.Parse(args); err != nil || *mb == "" || *pubFile == "" || fs.NArg() < 1 {
		return usageError(fs, err)
	}
	policy, err := vkernel.ParsePolicy(*policyName)
	if err != nil {
		return fail(stderr, err)
	}
	pub, err := megabinary.ReadPublicKey(*pubFile)
	if err != nil {
		return fail(stderr, err)
	}
	req := vkernel.Request{Path: fs.Arg(0), Args: fs.Args(), Env: env, Stdin: os.Stdin, Stdout: stdout, Stderr: stderr}
	for _, m := range mounts {
		mount, err := parseMount(m)
		if err != nil {
			return fail(stderr, err)
		}
		req.Mounts = append(req.Mounts, mount)
	}
	for _, addr := range listens {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(stderr, err)
		}
		defer l.Close()
		req.Listeners = append(req.Listeners, l)
	}
	if *auditFile == "" {
		*auditFile = filepath.Join(cacheRoot(), "audit.jsonl")
		os.MkdirAll(filepath.Dir(*auditFile), 0o755)
	}
	audit, err := os.OpenFile(*auditFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fail(stderr, fmt.Errorf("audit log: %w", err))
	}
	defer audit.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	k, err := vkernel.Open(ctx, *mb, vkernel.Options{
		TrustedKeys: []ed25519.PublicKey{pub},
		CacheDir:    cacheRoot(),
		Policy:      policy,
		Audit:       audit,
	})
	if err != nil {
		return fail(stderr, err)
	}
	defer k.Close(context.Background())
	res, err := k.Exec(ctx, req)
	var denied *vkernel.DeniedError
	var trap *vkernel.TrapError
	switch {
	case errors.As(err, &denied):
		fmt.Fprintf(stderr, "compat: %v\n", err)
		fmt.Fprintf(stderr, "compat: denied by the vkernel (policy %s); recorded in %s\n", policy, *auditFile)
		return exitDenied
	case errors.As(err, &trap):
		fmt.Fprintf(stderr, "compat: %v\n", err)
		return exitTrap
	case err != nil:
		return fail(stderr, err)
	}
	if res.ExitCode > 255 {
		return 255
	}
	return int(res.ExitCode)
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
