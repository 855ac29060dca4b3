package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/compat-project/compat/vkernel"
)

// Request is what a client asks the service to run.
type Request struct {
	// File is the file to run, open for reading: the service hashes this
	// descriptor and routes by its SHA-256. Nil: Path is opened here (by
	// the client, with the client's rights).
	File *os.File
	// Path names the file in the service's audit log and errors.
	Path string
	// Args is argv, argv[0] first; empty means just Path.
	Args []string
	// Env holds KEY=VALUE pairs.
	Env []string
	// Cwd, when not empty, is the guest path the guest starts in.
	Cwd string
	// Mounts are the host directories the guest sees, within what its
	// entry allows. The service opens them with its own rights.
	Mounts []vkernel.Mount
	// Stdin, Stdout and Stderr are handed to the guest, which reads and
	// writes them itself; nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// Signals, if not nil, carries signals to the guest while it runs
	// (SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
	// SIGCONT; others are dropped).
	Signals <-chan os.Signal
	// Started, if not nil, is called once the guest runs, with its pid.
	Started func(pid int)
}

// Result is how a request ended.
type Result struct {
	// Pid is the guest's pid (its host process), Entry the manifest
	// entry it ran.
	Pid   int
	Entry string
	// ExitCode is the guest's exit status, or 128 plus Signal when a
	// signal ended it. A guest that trapped dies of SIGABRT.
	ExitCode int
	Signal   syscall.Signal
	// Duration is the service's measure, from the start to the reaping.
	Duration time.Duration
}

// RefusedError reports a request the service did not run. Nothing of it
// ran.
type RefusedError struct {
	// Kind is one of the Refused constants.
	Kind string
	// Message is the service's explanation.
	Message string
	// Denied is set for a RefusedDenied: the file and its hash as the
	// vkernel saw them.
	Denied *vkernel.DeniedError
}

func (e *RefusedError) Error() string { return fmt.Sprintf("refused (%s): %s", e.Kind, e.Message) }

// Retryable reports whether a later attempt may run the request.
func (e *RefusedError) Retryable() bool { return e.Kind == RefusedStopping || e.Kind == RefusedBusy }

// LostError reports a request that started but whose end the client
// never learned: the connection broke after the start (the service was
// killed outright).
type LostError struct {
	Pid int
	Err error
}

func (e *LostError) Error() string {
	return fmt.Sprintf("request running as pid %d: lost the service: %v", e.Pid, e.Err)
}
func (e *LostError) Unwrap() error { return e.Err }

// Client sends requests to the service at Socket.
type Client struct {
	// Socket is the service's socket path.
	Socket string
	// Retry is how long Exec keeps retrying a request that did not start
	// because the service was unreachable (not running, restarting) or
	// refused it as stopping or busy; 0: no retries.
	Retry time.Duration
}

// Exec runs req in the service and waits for its end. A request is either
// refused (a *RefusedError, or a connection error: nothing ran) or runs to
// its end, whose status is returned. When ctx ends, the client hangs up
// and the service ends the instance; Exec then returns ctx's error.
func (c *Client) Exec(ctx context.Context, req Request) (*Result, error) {
	file := req.File
	if file == nil {
		f, err := os.Open(req.Path)
		if err != nil {
			return nil, fmt.Errorf("exec via %s: %w", c.Socket, err)
		}
		defer f.Close()
		file = f
	}
	m := &message{Type: typeExec, Version: Version, Path: []byte(req.Path), Cwd: []byte(req.Cwd)}
	args := req.Args
	if len(args) == 0 {
		args = []string{req.Path}
	}
	for _, a := range args {
		m.Args = append(m.Args, []byte(a))
	}
	for _, e := range req.Env {
		m.Env = append(m.Env, []byte(e))
	}
	for _, mt := range req.Mounts {
		m.Mounts = append(m.Mounts, mountMsg{Guest: []byte(mt.Guest), Host: []byte(mt.Host), ReadOnly: mt.ReadOnly})
	}
	var devnull *os.File
	stdio := [3]*os.File{req.Stdin, req.Stdout, req.Stderr}
	for i := range stdio {
		if stdio[i] == nil {
			if devnull == nil {
				var err error
				if devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					return nil, err
				}
				defer devnull.Close()
			}
			stdio[i] = devnull
		}
	}
	fds := []int{int(file.Fd()), int(stdio[0].Fd()), int(stdio[1].Fd()), int(stdio[2].Fd())}
	deadline := time.Now().Add(c.Retry)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		res, err := c.once(ctx, m, fds, req)
		var refused *RefusedError
		retry := errors.As(err, &refused) && refused.Retryable() || errors.Is(err, errNotStarted)
		if !retry || time.Now().Add(wait).After(deadline) {
			if errors.Is(err, errNotStarted) {
				err = fmt.Errorf("exec via %s: %w", c.Socket, errors.Unwrap(err))
			}
			return res, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// errNotStarted wraps a failure before the service said the request
// started: it did not run, and may be sent again.
var errNotStarted = errors.New("not started")

type notStarted struct{ err error }

func (e notStarted) Error() string        { return e.err.Error() }
func (e notStarted) Unwrap() error        { return e.err }
func (e notStarted) Is(target error) bool { return target == errNotStarted }

// once makes one attempt.
func (c *Client) once(ctx context.Context, m *message, fds []int, req Request) (*Result, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unixpacket", c.Socket)
	if err != nil {
		return nil, notStarted{err}
	}
	uc := conn.(*net.UnixConn)
	defer uc.Close()
	if err := send(uc, m, fds...); err != nil {
		return nil, notStarted{err}
	}
	// A cancelled ctx hangs up, which ends the instance.
	stop := context.AfterFunc(ctx, func() { uc.Close() })
	defer stop()
	reply, rfds, err := receive(uc)
	closeFDs(rfds)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, notStarted{err}
	}
	switch reply.Type {
	case typeRefused:
		e := &RefusedError{Kind: reply.Kind, Message: reply.Error}
		if reply.Kind == RefusedDenied {
			e.Denied = &vkernel.DeniedError{Path: req.Path, Hash: reply.Hash, Reason: reply.Reason}
		}
		return nil, e
	case typeStarted:
	default:
		return nil, fmt.Errorf("exec via %s: the service answered %q, want %q or %q", c.Socket, reply.Type, typeStarted, typeRefused)
	}
	res := &Result{Pid: reply.Pid, Entry: reply.Entry}
	if req.Started != nil {
		req.Started(res.Pid)
	}
	if req.Signals != nil {
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case <-done:
					return
				case s := <-req.Signals:
					if sig, ok := s.(syscall.Signal); ok {
						_ = send(uc, &message{Type: typeSignal, Signal: int(sig)})
					}
				}
			}
		}()
	}
	end, efds, err := receive(uc)
	closeFDs(efds)
	if err == nil && end.Type != typeExit {
		err = fmt.Errorf("the service answered %q, want %q", end.Type, typeExit)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &LostError{Pid: res.Pid, Err: err}
	}
	res.ExitCode, res.Signal, res.Duration = end.Code, syscall.Signal(end.ExitSig), time.Duration(end.Duration)*time.Microsecond
	return res, nil
}
