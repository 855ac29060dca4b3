package nginx

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/adapters/internal/suitetest"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners/testenv"
)

// The test binary doubles as the shim: the launcher script runs it with
// envTestShim set, and TestMain hands over to ShimMain before any test
// flag is parsed.
const envTestShim = "COMPAT_NGINX_TEST_AS_SHIM"

func TestMain(m *testing.M) {
	if os.Getenv(envTestShim) == "1" {
		os.Exit(ShimMain([]string{os.Args[0]}, os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func cacheRoot() string {
	if d := os.Getenv("COMPAT_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "compat")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "compat")
}

// testShim prepares the shim for the newest nginx.wasm build, or skips.
func testShim(t *testing.T) *Shim {
	t.Helper()
	b, err := wasmbuild.Latest(cacheRoot(), wasmbuild.Nginx)
	if err != nil {
		testenv.Missing(t, "nginx.wasm is not built (make images): %v", err)
	}
	t.Setenv(envTestShim, "1")
	s, err := PrepareShim(t.TempDir(), b, []string{os.Args[0]}, suitetest.Vkernel(t, cacheRoot(), entry(b)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// servroot lays out a server root as the harnesses do: conf/nginx.conf,
// html/ with a static file, logs/.
func servroot(t *testing.T, conf string) (dir string, body []byte) {
	t.Helper()
	dir = t.TempDir()
	for _, d := range []string{"conf", "html", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	body = make([]byte, 300_000)
	rand.Read(body)
	if err := os.WriteFile(filepath.Join(dir, "html", "blob.bin"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	conf = strings.ReplaceAll(conf, "DIR", dir)
	if err := os.WriteFile(filepath.Join(dir, "conf", "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, body
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp, data
}

func waitFile(t *testing.T, name string, d time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		data, err := os.ReadFile(name)
		if err == nil && len(bytes.TrimSpace(data)) > 0 {
			return data
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear in %s", name, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const smokeConf = `
master_process off;
daemon off;
error_log logs/error.log info;
pid logs/nginx.pid;
events { use poll; worker_connections 64; }
http {
    access_log logs/access.log;
    client_body_temp_path DIR/tmp_body;
    server {
        listen 127.0.0.1:PORT;
        root DIR/html;
        location = /addr { return 200 "$remote_addr $server_port\n"; }
    }
}
`

// TestSmokeForeground is the smoke test: nginx.wasm in the vkernel serves a
// static file over a handed-over listener with the right bytes, logs the
// client's address, writes the shim's pid to its pid file, and QUIT stops
// it and removes the pid file.
func TestSmokeForeground(t *testing.T) {
	s := testShim(t)
	port := freePort(t)
	dir, body := servroot(t, strings.ReplaceAll(smokeConf, "PORT", fmt.Sprint(port)))

	var stderr bytes.Buffer
	cmd := exec.Command(s.Binary, "-p", dir+"/", "-c", "conf/nginx.conf")
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid := strings.TrimSpace(string(waitFile(t, filepath.Join(dir, "logs", "nginx.pid"), 20*time.Second)))
	t.Logf("pid file after %s", time.Since(start).Round(time.Millisecond))
	if pid != fmt.Sprint(cmd.Process.Pid) {
		t.Errorf("pid file holds %s, want the shim's pid %d", pid, cmd.Process.Pid)
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	resp, got := get(t, base+"/blob.bin")
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("GET /blob.bin: status %d, %d bytes (want 200, the file's %d bytes, equal: %v)", resp.StatusCode, len(got), len(body), bytes.Equal(got, body))
	}
	if _, got := get(t, base+"/addr"); string(got) != fmt.Sprintf("127.0.0.1 %d\n", port) {
		t.Errorf("GET /addr = %q, want the peer's address and the port", got)
	}
	if resp, _ := get(t, base+"/missing"); resp.StatusCode != 404 {
		t.Errorf("GET /missing: status %d, want 404", resp.StatusCode)
	}

	if err := cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after QUIT: %v (stderr: %s)", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("QUIT did not stop the instance in 10s")
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "nginx.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file after QUIT: %v, want it removed", err)
	}

	access, _ := os.ReadFile(filepath.Join(dir, "logs", "access.log"))
	lines := strings.Split(strings.TrimSpace(string(access)), "\n")
	if len(lines) != 3 {
		t.Fatalf("access.log has %d lines, want 3:\n%s", len(lines), access)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "127.0.0.1 - - [") {
			t.Errorf("access.log line without the client's address: %q", l)
		}
	}
	if !strings.Contains(lines[0], `"GET /blob.bin HTTP/1.1" 200 300000 `) {
		t.Errorf("access.log: %q, want the static file with its size", lines[0])
	}
	errlog, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
	if bytes.Contains(errlog, []byte("[alert]")) || bytes.Contains(errlog, []byte("[emerg]")) {
		t.Errorf("error.log has alerts:\n%s", errlog)
	}
}

// TestShimDaemon: with "daemon on" (and master_process on) the command
// returns once the instance serves, like nginx's daemon, and the pid in
// the pid file is one that QUIT ("nginx -s quit") stops. A bare "listen
// PORT" (a wildcard) is served on loopback.
func TestShimDaemon(t *testing.T) {
	s := testShim(t)
	port := freePort(t)
	conf := strings.ReplaceAll(smokeConf, "127.0.0.1:PORT", fmt.Sprint(port))
	conf = strings.Replace(conf, "master_process off;\ndaemon off;", "master_process on;\ndaemon on;", 1)
	dir, body := servroot(t, conf)

	out, err := exec.Command(s.Binary, "-p", dir+"/", "-c", "conf/nginx.conf").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx (daemon on): %v\n%s", err, out)
	}
	pidText := waitFile(t, filepath.Join(dir, "logs", "nginx.pid"), time.Second)
	var pid int
	fmt.Sscan(string(pidText), &pid)
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("pid file holds %q: not a running process", pidText)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)

	if resp, got := get(t, fmt.Sprintf("http://127.0.0.1:%d/blob.bin", port)); resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("GET /blob.bin: status %d, %d bytes", resp.StatusCode, len(got))
	}
	// "nginx -s quit" signals the pid in the pid file, as natively.
	if out, err := exec.Command(s.Binary, "-p", dir+"/", "-c", "conf/nginx.conf", "-s", "quit").CombinedOutput(); err != nil {
		t.Fatalf("nginx -s quit: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("QUIT did not stop the daemon in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "nginx.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file after QUIT: %v, want it removed", err)
	}
}

// TestShimReportsConfigErrors: a configuration nginx rejects makes the
// command fail with nginx's own message, as natively.
func TestShimReportsConfigErrors(t *testing.T) {
	s := testShim(t)
	dir, _ := servroot(t, fmt.Sprintf("daemon on;\nevents {}\nhttp { server { listen 127.0.0.1:%d; no_such_directive on; } }\n", freePort(t)))
	out, err := exec.Command(s.Binary, "-p", dir+"/", "-c", "conf/nginx.conf", "-e", "logs/error.log").CombinedOutput()
	if err == nil {
		t.Fatalf("nginx with a bad directive exited 0:\n%s", out)
	}
	errlog, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
	if !strings.Contains(string(out)+string(errlog), `unknown directive "no_such_directive"`) {
		t.Errorf("no nginx message about the directive; output:\n%s\nerror.log:\n%s", out, errlog)
	}
}

// TestShimVersion: -V runs without a configuration.
func TestShimVersion(t *testing.T) {
	s := testShim(t)
	out, err := exec.Command(s.Binary, "-V").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nginx version: nginx/1.22.1") || !strings.Contains(string(out), "--crossbuild=wasi") {
		t.Fatalf("nginx -V: %v\n%s", err, out)
	}
}

// TestShimReload: HUP makes the instance read its configuration again (a
// new instance on the same listening socket), with no alert; QUIT then
// stops it.
func TestShimReload(t *testing.T) {
	s := testShim(t)
	port := freePort(t)
	conf := fmt.Sprintf("daemon off;\nerror_log logs/error.log info;\npid logs/nginx.pid;\nevents {}\nhttp {\n    access_log off;\n    client_body_temp_path DIR/tmp_body;\n    server { listen 127.0.0.1:%d; location / { return 200 \"v1\\n\"; } }\n}\n", port)
	dir, _ := servroot(t, conf)
	cmd := exec.Command(s.Binary, "-p", dir+"/", "-c", "conf/nginx.conf")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFile(t, filepath.Join(dir, "logs", "nginx.pid"), 20*time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if _, got := get(t, url); string(got) != "v1\n" {
		t.Fatalf("before HUP: %q", got)
	}
	confFile := filepath.Join(dir, "conf", "nginx.conf")
	data, _ := os.ReadFile(confFile)
	if err := os.WriteFile(confFile, bytes.Replace(data, []byte(`"v1\n"`), []byte(`"v2\n"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) == "v2\n" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new configuration is not served 10s after HUP (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after QUIT: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("QUIT did not stop the instance in 10s")
	}
	errlog, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
	if bytes.Contains(errlog, []byte("[alert]")) || bytes.Contains(errlog, []byte("[emerg]")) {
		t.Errorf("error.log has alerts:\n%.2000s", errlog)
	}
}
