package nginx

// Tests of what nginx.wasm's port gives nginx beyond serving files: real
// file modes and the directories above the mounts (vkposix's file part),
// the stream and mail modules on handed-over listeners, and the graceful
// QUIT of "master_process on". Each runs nginx.wasm through the shim.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/adapters/internal/shim/shimtest"
)

// noAlerts fails t if the error log of the server root dir has a line at
// crit level or above (where nginx reports a failed mkdir, for one).
func noAlerts(t *testing.T, dir string) {
	t.Helper()
	data, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
	for _, level := range []string{"[crit]", "[alert]", "[emerg]"} {
		if bytes.Contains(data, []byte(level)) {
			t.Errorf("error.log has %s lines:\n%.3000s", level, data)
			return
		}
	}
}

// TestProxyCacheLevels: a proxy_cache with levels=1:2 under the test's
// directory, which is mounted below /tmp. nginx makes the level
// directories with ngx_create_full_path, a mkdir of every component from
// "/tmp" on: the directories above the mount must answer EEXIST (vkposix),
// not ENOTCAPABLE ("[crit] mkdir() "/tmp" failed (76: ...)"), and the
// directories get the mode nginx asks for (0700), not the host's umask's.
// The second request is then a cache HIT that the backend never sees.
func TestProxyCacheLevels(t *testing.T) {
	s := testShim(t)
	var hits atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "backend %s\n", r.URL.Path)
	}))
	defer backend.Close()
	port := shimtest.FreePort(t)
	conf := fmt.Sprintf(`
master_process off;
daemon off;
error_log logs/error.log info;
pid logs/nginx.pid;
events { use poll; worker_connections 64; }
http {
    access_log off;
    client_body_temp_path DIR/tmp_body;
    proxy_temp_path DIR/proxy_temp;
    proxy_cache_path DIR/cache levels=1:2 keys_zone=z:1m;
    server {
        listen 127.0.0.1:%d;
        location / {
            proxy_pass %s;
            proxy_cache z;
            add_header X-Cache-Status $upstream_cache_status;
        }
    }
}
`, port, backend.URL)
	dir, _ := servroot(t, conf)
	in := startForeground(t, s, dir)
	url := fmt.Sprintf("http://127.0.0.1:%d/page", port)
	for i, want := range []string{"MISS", "HIT"} {
		resp, body := get(t, url)
		if resp.StatusCode != 200 || string(body) != "backend /page\n" || resp.Header.Get("X-Cache-Status") != want {
			t.Fatalf("request %d: status %d, X-Cache-Status %q, body %q; want 200, %s, the backend's body", i+1, resp.StatusCode, resp.Header.Get("X-Cache-Status"), body, want)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the backend got %d requests, want 1 (the second served from the cache)", n)
	}
	in.stop(t, syscall.SIGQUIT)
	noAlerts(t, dir)

	// The cached file is cache/X/YZ/<md5>, in directories nginx made.
	files, _ := filepath.Glob(filepath.Join(dir, "cache", "?", "??", "*"))
	if len(files) != 1 {
		t.Fatalf("cache files at levels 1:2: %q, want one", files)
	}
	for _, d := range []string{filepath.Dir(files[0]), filepath.Dir(filepath.Dir(files[0]))} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("level directory %s has mode %v, want 0700 (nginx's mkdir mode less the umask)", d, fi.Mode().Perm())
		}
	}
}

// TestIfExec: "if (-x ...)" sees the host's mode bits: a directory and an
// executable file are executable, a 0644 file is not ("-x" was false for
// everything while stat reported no permission bits).
func TestIfExec(t *testing.T) {
	s := testShim(t)
	port := shimtest.FreePort(t)
	conf := fmt.Sprintf(`
master_process off;
daemon off;
error_log logs/error.log info;
pid logs/nginx.pid;
events { use poll; worker_connections 64; }
http {
    access_log off;
    client_body_temp_path DIR/tmp_body;
    server {
        listen 127.0.0.1:%d;
        location = /dir   { if (-x DIR/html/dir) { return 200 "x\n"; } return 403; }
        location = /exec  { if (-x DIR/html/run.sh) { return 200 "x\n"; } return 403; }
        location = /plain { if (-x DIR/html/blob.bin) { return 200 "x\n"; } return 403; }
        location = /notx  { if (!-x DIR/html/blob.bin) { return 200 "not x\n"; } return 403; }
    }
}
`, port)
	dir, _ := servroot(t, conf)
	if err := os.Mkdir(filepath.Join(dir, "html", "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "html", "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "html", "blob.bin"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := startForeground(t, s, dir)
	for path, want := range map[string]int{"/dir": 200, "/exec": 200, "/plain": 403, "/notx": 200} {
		if resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d%s", port, path)); resp.StatusCode != want {
			t.Errorf("GET %s: status %d (%q), want %d", path, resp.StatusCode, body, want)
		}
	}
	in.stop(t, syscall.SIGQUIT)
	noAlerts(t, dir)
}

// TestStreamAndMail: a stream server proxies TCP to a loopback backend, and
// a mail (SMTP) server greets, both on listeners the shim found in the
// stream and mail blocks and handed over.
func TestStreamAndMail(t *testing.T) {
	s := testShim(t)
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "backend got %s", line)
			}()
		}
	}()
	streamPort, smtpPort := shimtest.FreePort(t), shimtest.FreePort(t)
	conf := fmt.Sprintf(`
master_process off;
daemon off;
error_log logs/error.log info;
pid logs/nginx.pid;
events { use poll; worker_connections 64; }
stream {
    server { listen 127.0.0.1:%d; proxy_pass %s; }
}
mail {
    auth_http 127.0.0.1:1/auth;
    server { listen 127.0.0.1:%d; protocol smtp; smtp_auth none; server_name mail.test; }
}
`, streamPort, backend.Addr(), smtpPort)
	dir, _ := servroot(t, conf)
	in := startForeground(t, s, dir)

	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", streamPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "hello stream\n")
	got, err := io.ReadAll(c)
	c.Close()
	if string(got) != "backend got hello stream\n" {
		t.Errorf("through the stream proxy: %q (%v), want the backend's answer", got, err)
	}

	m, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", smtpPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m.SetDeadline(time.Now().Add(10 * time.Second))
	greeting, err := bufio.NewReader(m).ReadString('\n')
	m.Close()
	if greeting != "220 mail.test ESMTP ready\r\n" {
		t.Errorf("SMTP greeting %q (%v), want nginx's 220 line", greeting, err)
	}
	in.stop(t, syscall.SIGQUIT)
	noAlerts(t, dir)
}

// slowBackend is an HTTP backend whose /slow answers after delay (or when
// the test ends) and tells started when it has the request.
func slowBackend(t *testing.T, delay time.Duration) (url string, started <-chan struct{}) {
	t.Helper()
	st := make(chan struct{}, 4)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			st <- struct{}{}
			select {
			case <-time.After(delay):
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "done %s\n", r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL, st
}

// gracefulConf is a "master_process on" server proxying to BACKEND, with
// EXTRA in the main context.
const gracefulConf = `
master_process on;
daemon off;
error_log logs/error.log info;
pid logs/nginx.pid;
EXTRA
events { use poll; worker_connections 64; }
http {
    access_log logs/access.log;
    client_body_temp_path DIR/tmp_body;
    proxy_temp_path DIR/proxy_temp;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:PORT;
        location / { proxy_pass BACKEND; }
    }
}
`

// request sends a GET for path on a new connection and returns it and a
// reader of its responses.
func request(t *testing.T, port int, path string, keepalive bool) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	conn := "close"
	if keepalive {
		conn = "keep-alive"
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: %s\r\n\r\n", path, conn)
	return c, bufio.NewReader(c)
}

// TestGracefulQuit: with "master_process on", QUIT lets a proxied request
// in flight finish (nginx.wasm's single-process cycle shuts down as a
// native worker does), closes an idle keep-alive connection at once, and
// then nginx exits by itself, removing its pid file.
func TestGracefulQuit(t *testing.T) {
	s := testShim(t)
	const delay = 2 * time.Second
	url, started := slowBackend(t, delay)
	port := shimtest.FreePort(t)
	conf := strings.NewReplacer("PORT", fmt.Sprint(port), "BACKEND", url, "EXTRA", "").Replace(gracefulConf)
	dir, _ := servroot(t, conf)
	in := startForeground(t, s, dir)

	// An idle keep-alive connection: one request answered, then nothing.
	idle, idleR := request(t, port, "/fast", true)
	resp, err := http.ReadResponse(idleR, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	slow, slowR := request(t, port, "/slow", false)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend did not get /slow in 10s")
	}
	quit := time.Now()
	if err := in.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}

	idle.SetReadDeadline(time.Now().Add(delay))
	if n, err := idleR.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("idle keep-alive connection after QUIT: read %d bytes, %v; want it closed at once", n, err)
	}
	closedIdle := time.Since(quit)

	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err = http.ReadResponse(slowR, nil)
	if err != nil {
		t.Fatalf("the request in flight at QUIT: %v, want its response", err)
	}
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "done /slow\n" || err != nil {
		t.Errorf("the request in flight at QUIT: status %d, body %q, %v; want 200 and the backend's body", resp.StatusCode, body, err)
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("nginx after QUIT: %v\n%s", err, in.stderr.String())
		}
	case <-time.After(stopGraceForTests):
		t.Fatal("nginx did not exit by itself after its last request")
	}
	t.Logf("after QUIT: idle connection closed in %v, exit in %v", closedIdle.Round(time.Millisecond), time.Since(quit).Round(time.Millisecond))
	if closedIdle > delay/2 {
		t.Errorf("the idle connection was closed %v after QUIT, want at once", closedIdle)
	}
	log := waitLog(t, dir, "gracefully shutting down")
	if !strings.Contains(log, "exiting") {
		t.Errorf("error.log has no \"exiting\":\n%s", log)
	}
	noAlerts(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "logs", "nginx.pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pid file after QUIT: %v, want it removed", err)
	}
}

// TestGracefulQuitTimeout: worker_shutdown_timeout bounds the graceful
// QUIT: a request still in flight then is closed and nginx exits.
func TestGracefulQuitTimeout(t *testing.T) {
	s := testShim(t)
	url, started := slowBackend(t, time.Minute)
	port := shimtest.FreePort(t)
	conf := strings.NewReplacer("PORT", fmt.Sprint(port), "BACKEND", url, "EXTRA", "worker_shutdown_timeout 1s;").Replace(gracefulConf)
	dir, _ := servroot(t, conf)
	in := startForeground(t, s, dir)
	slow, slowR := request(t, port, "/slow", false)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend did not get /slow in 10s")
	}
	quit := time.Now()
	if err := in.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("nginx after QUIT: %v\n%s", err, in.stderr.String())
		}
	case <-time.After(stopGraceForTests):
		t.Fatal("nginx did not exit after worker_shutdown_timeout")
	}
	took := time.Since(quit)
	if took < time.Second {
		t.Errorf("nginx exited %v after QUIT, before worker_shutdown_timeout (1s) with a request in flight", took)
	}
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(slowR); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the request cut by worker_shutdown_timeout: its connection is still open")
	}
	waitLog(t, dir, "gracefully shutting down")
}
