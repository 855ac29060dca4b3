// Package serve is the vkernel's exec service: a long-lived kernel holding
// one verified megabinary that runs requests from other processes on a
// Unix socket, each in a vkernel process of its own (vkernel.Kernel.Start),
// and the client call that sends them. The protocol, its limits and its
// errors are in README.md beside this file.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/compat-project/compat/vkernel"
	"golang.org/x/sys/unix"
)

// Server runs exec requests that arrive on a Unix socket in its Kernel.
// Set its fields before Serve; they must not change after.
type Server struct {
	// Kernel runs the requests (Kernel.Start): it must be opened from a
	// file with a ChildCommand.
	Kernel *vkernel.Kernel
	// AllowUIDs and AllowGIDs are who may connect, checked with the
	// peer's credentials as the kernel reports them (SO_PEERCRED): a peer
	// whose uid is listed, or whose gid is. Both empty: only this
	// process's own effective uid.
	AllowUIDs, AllowGIDs []int
	// MaxRunning bounds the requests running at once (0: 4 per CPU);
	// MaxWaiting the requests that wait for one of those slots (0: 64).
	// A request beyond both is refused as busy.
	MaxRunning, MaxWaiting int
	// Audit receives the service's own decisions (a peer refused, a
	// malformed request) as vkernel.AuditRecord JSON lines; the kernel's
	// audit log gets every exec decision. Nil: not recorded.
	Audit io.Writer
	// RequestTimeout is how long a client has, once connected, to send
	// its request (0: DefaultRequestTimeout): a connection that sends
	// nothing holds nothing for long.
	RequestTimeout time.Duration
	// Log receives one line per failure that the client alone would not
	// see; nil: discarded.
	Log io.Writer

	once     sync.Once
	mu       sync.Mutex
	stop     chan struct{} // closed by Shutdown
	kill     chan struct{} // closed when Shutdown's ctx ends
	ls       []listener
	conns    sync.WaitGroup
	slots    chan struct{}
	waiting  int
	auditMu  sync.Mutex
	killOnce sync.Once
}

func (s *Server) init() {
	s.once.Do(func() {
		s.stop = make(chan struct{})
		s.kill = make(chan struct{})
		n := s.MaxRunning
		if n <= 0 {
			n = 4 * runtime.NumCPU()
		}
		s.slots = make(chan struct{}, n)
		if s.MaxWaiting <= 0 {
			s.MaxWaiting = 64
		}
		if s.RequestTimeout <= 0 {
			s.RequestTimeout = DefaultRequestTimeout
		}
	})
}

// Listen makes a SOCK_SEQPACKET Unix socket at path with the given mode
// (0: 0600, owner only). A socket file left at path by a service that is
// gone is replaced; one a live service answers on is an error.
func Listen(path string, mode os.FileMode) (*net.UnixListener, error) {
	if mode == 0 {
		mode = 0o600
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen %s: exists and is not a socket", path)
		}
		if c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"}); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: a service is answering there already", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen %s: removing the stale socket: %w", path, err)
		}
	}
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, err
	}
	// Close unlinks the path only while it is still this socket (a
	// restarted service may have bound it anew): see Server.Shutdown.
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		os.Remove(path)
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return l, nil
}

// Serve accepts connections on l until Shutdown, running each request
// in a vkernel process of its own. It returns nil after Shutdown.
func (s *Server) Serve(l *net.UnixListener) error {
	s.init()
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		return nil
	default:
	}
	// The socket file as it is now: Shutdown removes it only if it is
	// still this one.
	var st unix.Stat_t
	_ = unix.Stat(l.Addr().String(), &st)
	s.ls = append(s.ls, listener{l, st.Dev, st.Ino})
	s.mu.Unlock()
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			select {
			case <-s.stop:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of fds: the requests in flight free some.
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("serve: accept: %w", err)
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			defer c.Close()
			s.handle(c)
		}()
	}
}

// Shutdown stops the service without losing or cutting short a request:
// it stops accepting (the socket file is removed, so a restarted service
// may bind it at once), refuses every request that has not started yet as
// "stopping" (the client may retry it), and waits for those running to
// end and their clients to be told. When ctx ends first, the running ones
// are killed and Shutdown returns ctx's error once they are reaped.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	ls := s.ls
	s.ls = nil
	s.mu.Unlock()
	for _, l := range ls {
		l.unlinkIfOurs()
		l.Close()
	}
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.killOnce.Do(func() { close(s.kill) })
		<-done
		return ctx.Err()
	}
}

// listener is a socket Serve accepts on, with the identity its socket
// file had when Serve began.
type listener struct {
	*net.UnixListener
	dev, ino uint64
}

// unlinkIfOurs removes the listener's socket file if the path still names
// the file it had (not one a restarted service made).
func (l listener) unlinkIfOurs() {
	p := l.Addr().String()
	var there unix.Stat_t
	if l.ino != 0 && unix.Stat(p, &there) == nil && there.Ino == l.ino && there.Dev == l.dev {
		os.Remove(p)
	}
}

// peer is a connecting process's credentials.
type peer struct{ uid, gid, pid int }

func (p peer) String() string { return fmt.Sprintf("uid=%d gid=%d pid=%d", p.uid, p.gid, p.pid) }

func peerOf(c *net.UnixConn) (peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return peer{}, err
	}
	if cerr != nil {
		return peer{}, cerr
	}
	return peer{uid: int(cred.Uid), gid: int(cred.Gid), pid: int(cred.Pid)}, nil
}

func (s *Server) allowed(p peer) bool {
	if len(s.AllowUIDs) == 0 && len(s.AllowGIDs) == 0 {
		return p.uid == os.Geteuid()
	}
	for _, u := range s.AllowUIDs {
		if u == p.uid {
			return true
		}
	}
	for _, g := range s.AllowGIDs {
		if g == p.gid {
			return true
		}
	}
	return false
}

// DefaultRequestTimeout is Server.RequestTimeout's default.
const DefaultRequestTimeout = 10 * time.Second

// handle runs one connection's request.
func (s *Server) handle(c *net.UnixConn) {
	p, err := peerOf(c)
	if err != nil {
		s.logf("peer credentials: %v", err)
		return
	}
	if !s.allowed(p) {
		reason := fmt.Sprintf("peer %s is not allowed to use the service", p)
		s.audit(vkernel.AuditRecord{Action: "serve", Detail: "peer " + p.String(), Decision: "deny", Reason: reason})
		s.refuse(c, RefusedPeer, reason)
		// Closing with the request unread would reset the connection
		// before the client reads the refusal: take it, unread.
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, fds, _ := receive(c)
		closeFDs(fds)
		return
	}
	c.SetReadDeadline(time.Now().Add(s.RequestTimeout))
	m, fds, err := receive(c)
	// Wrapped at once, so that each fd is closed once, by its file.
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("request-fd-%d", i))
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if err != nil {
		if !errors.Is(err, errClosed) && !errors.Is(err, io.EOF) {
			s.badRequest(c, p, err.Error())
		}
		return
	}
	c.SetReadDeadline(time.Time{})
	req, err := s.request(m, files, p)
	if err != nil {
		s.badRequest(c, p, err.Error())
		return
	}
	if !s.acquire() {
		select {
		case <-s.stop:
			s.refuse(c, RefusedStopping, "the service is stopping; retry")
		default:
			s.refuse(c, RefusedBusy, "too many requests are waiting; retry later")
		}
		return
	}
	defer func() { <-s.slots }()
	if hungUp(c) {
		// Gone while waiting for a slot: nothing of it runs.
		return
	}
	s.run(c, req)
}

// hungUp reports whether the client has closed its end of the connection.
func hungUp(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return true
	}
	hup := false
	_ = raw.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
		if n, err := unix.Poll(fds, 0); err == nil && n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLRDHUP|unix.POLLERR) != 0 {
			hup = true
		}
	})
	return hup
}

// acquire takes a running slot, waiting if need be; false when the
// service stops first or too many wait already.
func (s *Server) acquire() bool {
	select {
	case <-s.stop:
		return false
	default:
	}
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	s.mu.Lock()
	if s.waiting >= s.MaxWaiting {
		s.mu.Unlock()
		return false
	}
	s.waiting++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
	}()
	select {
	case s.slots <- struct{}{}:
		select {
		case <-s.stop:
			<-s.slots
			return false
		default:
			return true
		}
	case <-s.stop:
		return false
	}
}

// request checks an exec message and its fds and makes the vkernel
// request: fds[0] the file to run, fds[1:4] its stdio.
func (s *Server) request(m *message, fds []*os.File, p peer) (vkernel.Request, error) {
	var req vkernel.Request
	if m.Type != typeExec {
		return req, fmt.Errorf("first message is %q, want %q", m.Type, typeExec)
	}
	if m.Version != Version {
		return req, fmt.Errorf("protocol version %d, this service speaks %d", m.Version, Version)
	}
	if len(fds) != requestFDs {
		return req, fmt.Errorf("the exec message carries %d file descriptors, want %d (file, stdin, stdout, stderr)", len(fds), requestFDs)
	}
	for i, f := range fds[1:] {
		// An O_PATH descriptor can be neither read nor written; the
		// file's own (fds[0]) is refused by the kernel, which cannot
		// read it, with an audit record.
		if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_PATH != 0 {
			return req, fmt.Errorf("the %s descriptor is an O_PATH descriptor, which can be neither read nor written", [...]string{"stdin", "stdout", "stderr"}[i])
		}
	}
	req.File, req.Stdin, req.Stdout, req.Stderr = fds[0], fds[1], fds[2], fds[3]
	for _, b := range append(append([][]byte{m.Path, m.Cwd}, m.Args...), m.Env...) {
		if strings.IndexByte(string(b), 0) >= 0 {
			return req, errors.New("a path, argument or environment variable holds a NUL byte")
		}
	}
	if len(m.Args) == 0 {
		return req, errors.New("argv is empty (argv[0] is required)")
	}
	req.Path = string(m.Path)
	if req.Path == "" {
		req.Path = "(file descriptor)"
	}
	for _, a := range m.Args {
		req.Args = append(req.Args, string(a))
	}
	for _, e := range m.Env {
		if !strings.Contains(string(e), "=") {
			return req, fmt.Errorf("environment variable %q has no '='", e)
		}
		req.Env = append(req.Env, string(e))
	}
	if cwd := string(m.Cwd); cwd != "" {
		if !path.IsAbs(cwd) {
			return req, fmt.Errorf("cwd %q is not an absolute guest path", cwd)
		}
		req.Cwd = path.Clean(cwd)
	}
	for _, mm := range m.Mounts {
		mt, err := s.mount(mm, p)
		if err != nil {
			return req, err
		}
		req.Mounts = append(req.Mounts, mt)
	}
	req.Peer = p.String()
	return req, nil
}

// mount checks a mount a client asks for. The service opens the host
// directory with its own rights, so a peer of another uid may only mount
// a directory it owns, or read-only one that anybody may read and search.
func (s *Server) mount(mm mountMsg, p peer) (vkernel.Mount, error) {
	g, h := string(mm.Guest), string(mm.Host)
	if !path.IsAbs(g) || !path.IsAbs(h) {
		return vkernel.Mount{}, fmt.Errorf("mount %s=%s: both paths must be absolute", g, h)
	}
	var st unix.Stat_t
	if err := unix.Stat(h, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return vkernel.Mount{}, fmt.Errorf("mount %s=%s: not a directory the service can see", g, h)
	}
	if p.uid != os.Geteuid() && int(st.Uid) != p.uid && !(mm.ReadOnly && st.Mode&0o005 == 0o005) {
		return vkernel.Mount{}, fmt.Errorf("mount %s=%s: peer uid %d may mount only directories it owns, or world-readable ones read-only", g, h, p.uid)
	}
	return vkernel.Mount{Guest: path.Clean(g), Host: path.Clean(h), ReadOnly: mm.ReadOnly}, nil
}

// run starts the request, tells the client, forwards its signals and
// reports the end. A client that goes away ends its instance.
func (s *Server) run(c *net.UnixConn, req vkernel.Request) {
	proc, err := s.Kernel.Start(context.Background(), req)
	if err != nil {
		var denied *vkernel.DeniedError
		if errors.As(err, &denied) {
			_ = send(c, &message{Type: typeRefused, Kind: RefusedDenied, Error: err.Error(), Hash: denied.Hash, Reason: denied.Reason})
			return
		}
		s.logf("%v", err)
		s.refuse(c, RefusedFailed, err.Error())
		return
	}
	if err := send(c, &message{Type: typeStarted, Pid: proc.Pid(), Entry: proc.Entry()}); err != nil {
		// The client is gone before it could know: its instance ends.
		proc.Kill()
		proc.Wait()
		return
	}
	// The client's signals, and its end, which ends the instance. This
	// reader ends when the connection is closed below.
	go func() {
		for {
			m, fds, err := receive(c)
			closeFDs(fds)
			if err != nil {
				proc.Kill()
				return
			}
			if sig := syscall.Signal(m.Signal); m.Type == typeSignal && forwardable[sig] {
				_ = proc.Signal(sig)
			}
		}
	}()
	select {
	case <-proc.Done():
	case <-s.kill:
		proc.Kill()
	}
	res, err := proc.Wait()
	if err != nil {
		s.logf("%v", err)
		return
	}
	_ = send(c, &message{Type: typeExit, Code: int(res.ExitCode), ExitSig: int(res.Signal), Duration: int(res.Duration / time.Microsecond)})
}

func (s *Server) badRequest(c *net.UnixConn, p peer, reason string) {
	s.audit(vkernel.AuditRecord{Action: "serve", Detail: "peer " + p.String(), Decision: "deny", Reason: "bad request: " + reason})
	s.refuse(c, RefusedBadRequest, reason)
}

func (s *Server) refuse(c *net.UnixConn, kind, reason string) {
	_ = send(c, &message{Type: typeRefused, Kind: kind, Error: reason})
}

func (s *Server) audit(r vkernel.AuditRecord) {
	if s.Audit == nil {
		return
	}
	r.Time = time.Now().UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	if _, err := s.Audit.Write(append(b, '\n')); err != nil {
		s.logf("audit log: %v", err)
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.Log != nil {
		fmt.Fprintf(s.Log, "compat serve: "+format+"\n", args...)
	}
}
