package serve

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
	"golang.org/x/sys/unix"
)

// TestMain lets the test binary be the kernel's child command.
func TestMain(m *testing.M) {
	vkernel.ChildMain()
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// world is a service running the posix guest (vkernel/guests/src/posix.c)
// as entry "posix", with a root directory holding it as /posix.wasm and an
// unlisted copy, /unlisted.wasm.
type world struct {
	k      *vkernel.Kernel
	srv    *Server
	sock   string
	root   string
	audit  *syncBuffer // the kernel's and the server's
	served chan error
}

func newWorld(t *testing.T, srv *Server) *world {
	t.Helper()
	wasm, err := guests.CPosix("posix.c", guests.Clang14)
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "cannot build the test guest: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(nil)
	d := megabinary.SHA256(wasm)
	f, err := megabinary.Build([]megabinary.Entry{{Name: "posix", Module: d, Hashes: []string{d},
		Resources: megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}, Processes: 4}}}, map[string][]byte{d: wasm})
	if err != nil {
		t.Fatal(err)
	}
	f.Sign(priv)
	mb := filepath.Join(dir, "test.vkmb")
	if err := f.WriteFile(mb); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "posix.wasm"), wasm, 0o755)
	os.WriteFile(filepath.Join(root, "unlisted.wasm"), append(append([]byte(nil), wasm...), 0), 0o755)
	audit := &syncBuffer{}
	k, err := vkernel.Open(context.Background(), mb, vkernel.Options{TrustedKeys: []ed25519.PublicKey{pub},
		CacheDir: filepath.Join(dir, "cache"), Audit: audit, ChildCommand: []string{os.Args[0]}, StartWarm: 2, StartOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close(context.Background()) })
	srv.Kernel, srv.Audit = k, audit
	w := &world{k: k, srv: srv, sock: filepath.Join(dir, "s"), root: root, audit: audit}
	w.serve(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		w.srv.Shutdown(ctx)
	})
	return w
}

// serve starts w.srv on w.sock.
func (w *world) serve(t *testing.T) {
	t.Helper()
	l, err := Listen(w.sock, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.served = make(chan error, 1)
	go func() { w.served <- w.srv.Serve(l) }()
}

func (w *world) mounts() []vkernel.Mount { return []vkernel.Mount{{Guest: "/", Host: w.root}} }

// exec runs the posix guest with args through the service, its stdout a
// pipe, and returns what it wrote and how it ended.
func (w *world) exec(t *testing.T, c *Client, req Request, args ...string) (string, *Result, error) {
	t.Helper()
	if req.Path == "" {
		req.Path = filepath.Join(w.root, "posix.wasm")
	}
	req.Args = append([]string{"posix"}, args...)
	if req.Mounts == nil {
		req.Mounts = w.mounts()
	}
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	req.Stdout = pw
	out := make(chan string, 1)
	go func() { b, _ := io.ReadAll(r); out <- string(b) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := c.Exec(ctx, req)
	pw.Close()
	return <-out, res, err
}

func (w *world) client() *Client { return &Client{Socket: w.sock} }

// TestServe runs guests through the service: output straight to the fd
// passed, exit status, cwd, the audit record naming the peer, and more
// requests at once than may run at once.
func TestServe(t *testing.T) {
	w := newWorld(t, &Server{MaxRunning: 2})
	out, res, err := w.exec(t, w.client(), Request{}, "echo", "hello")
	if err != nil || out != "hello\n" || res.ExitCode != 0 || res.Entry != "posix" || res.Pid <= 0 {
		t.Fatalf("echo: %q, %+v, %v", out, res, err)
	}
	if _, res, err = w.exec(t, w.client(), Request{}, "exit", "7"); err != nil || res.ExitCode != 7 {
		t.Errorf("exit 7: %+v, %v", res, err)
	}
	if out, _, err = w.exec(t, w.client(), Request{Cwd: "/sub"}, "cwd"); out != "cwd=/sub\n" {
		t.Errorf("cwd: %q, %v", out, err)
	}
	if !strings.Contains(w.audit.String(), `"peer":"uid=`) {
		t.Errorf("no exec record naming the peer:\n%s", w.audit.String())
	}
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, res, err := w.exec(t, w.client(), Request{}, "write-later", "50", "x")
			if err != nil || out != "x" || res.ExitCode != 0 {
				t.Errorf("concurrent request: %q, %+v, %v", out, res, err)
			}
		}()
	}
	wg.Wait()
}

// TestServeUnlisted: an unlisted file is refused with the vkernel's
// denial (compat exec -via exits 126) and an audit record.
func TestServeUnlisted(t *testing.T) {
	w := newWorld(t, &Server{})
	_, _, err := w.exec(t, w.client(), Request{Path: filepath.Join(w.root, "unlisted.wasm")}, "echo", "x")
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Kind != RefusedDenied || refused.Denied == nil || refused.Denied.Hash == "" {
		t.Fatalf("unlisted: %v, want a denial with the hash", err)
	}
	if !strings.Contains(w.audit.String(), `"decision":"deny","reason":"not in the signed manifest`) {
		t.Errorf("no deny record:\n%s", w.audit.String())
	}
}

// rawExec sends an exec message of the given bytes and fds on a new
// connection and returns the service's answer.
func (w *world) raw(t *testing.T, payload []byte, fds ...int) *message {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: w.sock, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.WriteMsgUnix(payload, oob, nil); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	m, rfds, err := receive(c)
	closeFDs(rfds)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return m
}

// TestServeHostileClient: malformed requests are refused as bad requests
// (and recorded) and the service goes on serving; a client that hangs up
// mid-request ends its instance; a peer that is not allowed is refused.
func TestServeHostileClient(t *testing.T) {
	w := newWorld(t, &Server{})
	f, _ := os.Open(filepath.Join(w.root, "posix.wasm"))
	defer f.Close()
	fd := int(f.Fd())
	good, _ := json.Marshal(&message{Type: typeExec, Version: Version, Args: [][]byte{[]byte("posix"), []byte("echo"), []byte("x")}})
	opath, err := unix.Open(w.root, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(opath)
	many := make([]int, 20)
	for i := range many {
		many[i] = fd
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		fds     []int
		want    string
	}{
		{"no fds", good, nil, "carries 0 file descriptors"},
		{"one fd", good, []int{fd}, "carries 1 file descriptors"},
		{"too many fds", good, many, "more file descriptors"},
		{"oversized", append(bytes.Repeat([]byte(" "), MaxMessage+100), good...), []int{fd, fd, fd, fd}, "larger than the limit"},
		{"not JSON", []byte("\x00\x01garbage"), []int{fd, fd, fd, fd}, "not a JSON object"},
		{"wrong version", []byte(`{"type":"exec","version":99,"args":["eA=="]}`), []int{fd, fd, fd, fd}, "protocol version 99"},
		{"O_PATH stdout", good, []int{fd, fd, opath, fd}, "O_PATH"},
		{"empty argv", []byte(`{"type":"exec","version":1}`), []int{fd, fd, fd, fd}, "argv is empty"},
		{"relative mount", []byte(`{"type":"exec","version":1,"args":["eA=="],"mounts":[{"guest":"Lw==","host":"cmVs"}]}`), []int{fd, fd, fd, fd}, "must be absolute"},
	} {
		m := w.raw(t, tc.payload, tc.fds...)
		if m.Type != typeRefused || m.Kind != RefusedBadRequest || !strings.Contains(m.Error, tc.want) {
			t.Errorf("%s: answer %+v, want a bad-request refusal saying %q", tc.name, m, tc.want)
		}
	}
	if !strings.Contains(w.audit.String(), `"action":"serve"`) {
		t.Errorf("no serve record of the bad requests:\n%s", w.audit.String())
	}
	// A bad file descriptor as the file to run: the kernel cannot read it.
	opathFile, err := unix.Open(filepath.Join(w.root, "posix.wasm"), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(opathFile)
	m := w.raw(t, good, opathFile, fd, fd, fd)
	if m.Type != typeRefused || m.Kind != RefusedDenied || !strings.Contains(m.Reason, "cannot read") {
		t.Errorf("O_PATH file: %+v, want a denial", m)
	}
	if out, res, err := w.exec(t, w.client(), Request{}, "echo", "still"); err != nil || out != "still\n" || res.ExitCode != 0 {
		t.Fatalf("after the hostile requests: %q, %+v, %v", out, res, err)
	}

	// Hanging up mid-request ends the instance: its fds are closed (in
	// a shared instance process, which goes on, or with the process).
	ctx, cancel := context.WithCancel(context.Background())
	pids := make(chan int, 1)
	done := make(chan error, 1)
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	go func() {
		_, err := w.client().Exec(ctx, Request{File: f, Path: "posix", Args: []string{"posix", "spin"}, Mounts: w.mounts(),
			Stdout: outW, Started: func(pid int) { pids <- pid }})
		done <- err
	}()
	pid := <-pids
	outW.Close()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("hung-up client: %v", err)
	}
	ended := make(chan struct{})
	go func() { io.Copy(io.Discard, outR); close(ended) }()
	select {
	case <-ended:
	case <-time.After(time.Minute):
		t.Errorf("instance in process %d still holds its stdout a minute after its client hung up", pid)
	}

	// A peer of another uid.
	w2 := newWorld(t, &Server{AllowUIDs: []int{os.Geteuid() + 4242}})
	_, _, err = w2.exec(t, w2.client(), Request{}, "echo", "x")
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Kind != RefusedPeer {
		t.Errorf("peer not allowed: %v", err)
	}
	if !strings.Contains(w2.audit.String(), `"action":"serve","detail":"peer uid=`) {
		t.Errorf("no record of the refused peer:\n%s", w2.audit.String())
	}
}

// gone waits up to d for pid to be gone (reaped by the service).
func gone(pid int, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if unix.Kill(pid, 0) == unix.ESRCH {
			return true
		}
	}
	return false
}

// TestServeSignals: a signal the client forwards reaches the guest, which
// dies of it by its default disposition.
func TestServeSignals(t *testing.T) {
	w := newWorld(t, &Server{})
	sigs := make(chan os.Signal, 1)
	_, res, err := w.exec(t, w.client(), Request{Signals: sigs, Started: func(int) { sigs <- syscall.SIGTERM }}, "sleep", "20000")
	if err != nil || res.Signal != syscall.SIGTERM || res.ExitCode != 128+int(syscall.SIGTERM) {
		t.Errorf("SIGTERM: %+v, %v", res, err)
	}
}

// TestServeStopWithRequestsInFlight: stopping the service lets the
// requests that run finish and report, refuses new ones (nothing of them
// runs), and a restarted service on the same socket takes the requests of
// clients that retry.
func TestServeStopWithRequestsInFlight(t *testing.T) {
	w := newWorld(t, &Server{})
	type outcome struct {
		out string
		res *Result
		err error
	}
	started := make(chan int, 2)
	results := make(chan outcome, 2)
	for i := 0; i < 2; i++ {
		go func() {
			out, res, err := w.exec(t, w.client(), Request{Started: func(pid int) { started <- pid }}, "write-later", "700", "done")
			results <- outcome{out, res, err}
		}()
	}
	<-started
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- w.srv.Shutdown(context.Background()) }()
	// The socket is gone at once: a new request does not start.
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Lstat(w.sock); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the socket is still there after Shutdown began")
		}
	}
	if _, _, err := w.exec(t, w.client(), Request{}, "echo", "late"); err == nil {
		t.Error("a request after Shutdown began ran")
	}
	// A client that retries is served by the restarted service.
	retried := make(chan outcome, 1)
	go func() {
		out, res, err := w.exec(t, &Client{Socket: w.sock, Retry: 2 * time.Minute}, Request{}, "echo", "retried")
		retried <- outcome{out, res, err}
	}()
	for i := 0; i < 2; i++ {
		o := <-results
		if o.err != nil || o.out != "done" || o.res.ExitCode != 0 {
			t.Errorf("request in flight: %q, %+v, %v", o.out, o.res, o.err)
		}
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-w.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	w.srv = &Server{Kernel: w.k, Audit: w.audit}
	w.serve(t)
	if o := <-retried; o.err != nil || o.out != "retried\n" {
		t.Errorf("retried request: %q, %+v, %v", o.out, o.res, o.err)
	}
}

// TestServeHangUpWhileWaiting: a request whose client hangs up while it
// waits for a slot never runs.
func TestServeHangUpWhileWaiting(t *testing.T) {
	w := newWorld(t, &Server{MaxRunning: 1})
	first := make(chan error, 1)
	started := make(chan int, 1)
	go func() {
		_, _, err := w.exec(t, w.client(), Request{Started: func(pid int) { started <- pid }}, "sleep", "800")
		first <- err
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := w.client().Exec(ctx, Request{Path: filepath.Join(w.root, "posix.wasm"), Args: []string{"posix", "echo", "second"}, Mounts: w.mounts()})
		second <- err
	}()
	time.Sleep(200 * time.Millisecond) // the second request waits for the slot
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("second request: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The slot is free again: a third request runs; the second never did.
	if out, _, err := w.exec(t, w.client(), Request{}, "echo", "third"); err != nil || out != "third\n" {
		t.Fatalf("third: %q, %v", out, err)
	}
	// The service's records name the peer (the instance's own records,
	// of its second routing, do not).
	if n := strings.Count(w.audit.String(), `"peer":"uid=`); n != 2 {
		t.Errorf("%d exec records of the service, want 2 (the second request must not run):\n%s", n, w.audit.String())
	}
}

// TestServeSilentClient: a client that connects and sends nothing is
// disconnected after the request timeout, and holds nothing up.
func TestServeSilentClient(t *testing.T) {
	w := newWorld(t, &Server{MaxRunning: 1, RequestTimeout: 200 * time.Millisecond})
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: w.sock, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	m, fds, err := receive(c)
	closeFDs(fds)
	if err == nil && m.Kind != RefusedBadRequest {
		t.Errorf("silent client got %+v", m)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("silent client held for %s", d)
	}
	if out, _, err := w.exec(t, w.client(), Request{}, "echo", "next"); err != nil || out != "next\n" {
		t.Errorf("next request: %q, %v", out, err)
	}
}

// TestServeMountsOfOtherUsers: a peer of another uid may mount only a
// directory it owns, or read-only one anybody may read and search.
func TestServeMountsOfOtherUsers(t *testing.T) {
	s := &Server{}
	other := peer{uid: os.Geteuid() + 4242, gid: 4242, pid: 1}
	private, public := t.TempDir(), t.TempDir()
	os.Chmod(private, 0o700)
	os.Chmod(public, 0o755)
	for _, tc := range []struct {
		host string
		ro   bool
		p    peer
		ok   bool
	}{
		{private, true, other, false},
		{public, false, other, false},
		{public, true, other, true},
		{private, false, peer{uid: os.Geteuid()}, true},
	} {
		_, err := s.mount(mountMsg{Guest: []byte("/m"), Host: []byte(tc.host), ReadOnly: tc.ro}, tc.p)
		if (err == nil) != tc.ok {
			t.Errorf("mount %s (ro %v) for %s: %v, want allowed %v", tc.host, tc.ro, tc.p, err, tc.ok)
		}
	}
}

// TestServeSharedNoLeaks: requests at once share instance processes
// (vkernel.Options.StartShare), each with its own output and status, one
// of them trapping; after Shutdown and the kernel's Close no instance
// process, goroutine or fd of the service is left.
func TestServeSharedNoLeaks(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	runtime.GC()
	fdsBefore, goBefore := fds(), runtime.NumGoroutine()
	w := newWorld(t, &Server{})
	type outcome struct {
		i   int
		out string
		res *Result
		err error
	}
	const n = 6
	results := make(chan outcome, n)
	pids := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			args := []string{"write-later", "300", fmt.Sprintf("r%d", i)}
			if i == n-1 {
				args = []string{"trap"}
			}
			out, res, err := w.exec(t, w.client(), Request{Started: func(pid int) { pids <- pid }}, args...)
			results <- outcome{i, out, res, err}
		}()
	}
	hosts := map[int]bool{}
	for i := 0; i < n; i++ {
		o := <-results
		hosts[<-pids] = true
		switch {
		case o.i == n-1:
			if o.err != nil || o.res.Signal != syscall.SIGABRT {
				t.Errorf("trapping request: %+v, %v", o.res, o.err)
			}
		case o.err != nil || o.out != fmt.Sprintf("r%d", o.i) || o.res.ExitCode != 0:
			t.Errorf("request %d: %q, %+v, %v", o.i, o.out, o.res, o.err)
		}
	}
	if len(hosts) >= n {
		t.Errorf("%d requests ran in %d processes: none shared", n, len(hosts))
	}
	if err := w.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.k.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for pid := range hosts {
		if !gone(pid, 10*time.Second) {
			t.Errorf("instance process %d still runs after Close", pid)
		}
	}
	// Goroutines end a moment after what they wait for.
	for end := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > goBefore && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > goBefore {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after Close, %d before:\n%s", g, goBefore, buf[:runtime.Stack(buf, true)])
	}
	if f := fds(); f > fdsBefore {
		t.Errorf("%d fds open after Close, %d before", f, fdsBefore)
	}
}
