package nginx

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/shim/shimtest"
	"github.com/compat-project/compat/adapters/internal/suitetest"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/testenv"
)

// envTestShim makes the test binary the shim (shimtest.Main): testShim
// sets it for the scripts it prepares.
const envTestShim = "COMPAT_NGINX_TEST_AS_SHIM"

func TestMain(m *testing.M) {
	shimtest.Main(m, envTestShim, func(args []string) int {
		return ShimMain([]string{os.Args[0]}, args, os.Stdout, os.Stderr)
	})
}

// testShim prepares the shim for the newest nginx.wasm build, or skips.
func testShim(t *testing.T) *Shim {
	t.Helper()
	b, err := wasmbuild.Latest(compat.CacheRoot(), wasmbuild.Nginx)
	if err != nil {
		testenv.Missing(t, "nginx.wasm is not built (make images): %v", err)
	}
	t.Setenv(envTestShim, "1")
	s, err := PrepareShim(t.TempDir(), b, []string{os.Args[0]}, suitetest.Vkernel(t, compat.CacheRoot(), entry(b)))
	if err != nil {
		t.Fatal(err)
	}
	return s
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

// smokeServer is nginx.wasm serving smokeConf through the shim.
type smokeServer struct {
	in        *instance
	dir, base string // server root, "http://127.0.0.1:PORT"
	port      int
	body      []byte // html/blob.bin
}

func serveSmoke(t *testing.T) *smokeServer {
	t.Helper()
	s := testShim(t)
	sv := &smokeServer{port: shimtest.FreePort(t)}
	sv.dir, sv.body = servroot(t, strings.ReplaceAll(smokeConf, "PORT", fmt.Sprint(sv.port)))
	sv.base = fmt.Sprintf("http://127.0.0.1:%d", sv.port)
	sv.in = startForeground(t, s, sv.dir)
	return sv
}

// TestSmokeForeground is the smoke test: nginx.wasm in the vkernel serves a
// static file over a handed-over listener with the right bytes, logs the
// client's address, writes the shim's pid to its pid file, and QUIT stops
// it and removes the pid file.
func TestSmokeForeground(t *testing.T) {
	sv := serveSmoke(t)
	in, dir, base := sv.in, sv.dir, sv.base
	resp, got := get(t, base+"/blob.bin")
	body := sv.body
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("GET /blob.bin: status %d, %d bytes (want 200, the file's %d bytes, equal: %v)", resp.StatusCode, len(got), len(body), bytes.Equal(got, body))
	}
	if _, got := get(t, base+"/addr"); string(got) != fmt.Sprintf("127.0.0.1 %d\n", sv.port) {
		t.Errorf("GET /addr = %q, want the peer's address and the port", got)
	}
	if resp, _ := get(t, base+"/missing"); resp.StatusCode != 404 {
		t.Errorf("GET /missing: status %d, want 404", resp.StatusCode)
	}

	in.stop(t, syscall.SIGQUIT)
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
	port := shimtest.FreePort(t)
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
	dir, _ := servroot(t, fmt.Sprintf("daemon on;\nevents {}\nhttp { server { listen 127.0.0.1:%d; no_such_directive on; } }\n", shimtest.FreePort(t)))
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
	port := shimtest.FreePort(t)
	conf := fmt.Sprintf("daemon off;\nerror_log logs/error.log info;\npid logs/nginx.pid;\nevents {}\nhttp {\n    access_log off;\n    client_body_temp_path DIR/tmp_body;\n    server { listen 127.0.0.1:%d; location / { return 200 \"v1\\n\"; } }\n}\n", port)
	dir, _ := servroot(t, conf)
	in := startForeground(t, s, dir)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if _, got := get(t, url); string(got) != "v1\n" {
		t.Fatalf("before HUP: %q", got)
	}
	confFile := filepath.Join(dir, "conf", "nginx.conf")
	data, _ := os.ReadFile(confFile)
	if err := os.WriteFile(confFile, bytes.Replace(data, []byte(`"v1\n"`), []byte(`"v2\n"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
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
	// The old instance quit through nginx's own handler (the shim passes
	// HUP on as QUIT), and the new one wrote the shim's pid again.
	waitLog(t, dir, "signal 3 (SIGQUIT) received, shutting down")
	if pid := strings.TrimSpace(string(waitFile(t, filepath.Join(dir, "logs", "nginx.pid"), 10*time.Second))); pid != fmt.Sprint(in.cmd.Process.Pid) {
		t.Errorf("pid file after the reload holds %s, want the shim's pid %d", pid, in.cmd.Process.Pid)
	}
	in.stop(t, syscall.SIGQUIT)
	errlog, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
	if bytes.Contains(errlog, []byte("[alert]")) || bytes.Contains(errlog, []byte("[emerg]")) {
		t.Errorf("error.log has alerts:\n%.2000s", errlog)
	}
}

// instance is nginx.wasm started through the shim in the foreground, as
// nginx-tests and Test::Nginx with "daemon off" start it.
type instance struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer // read only after done
	done   chan error
}

// startForeground starts the shim on the server root dir (servroot) and
// waits for the pid file, which must hold the shim's pid.
func startForeground(t *testing.T, s *Shim, dir string) *instance {
	t.Helper()
	in := &instance{cmd: exec.Command(s.Binary, "-p", dir+"/", "-c", "conf/nginx.conf"), done: make(chan error, 1)}
	in.cmd.Stderr = &in.stderr
	start := time.Now()
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.cmd.Process.Kill() })
	go func() { in.done <- in.cmd.Wait() }()
	pid := strings.TrimSpace(string(waitFile(t, filepath.Join(dir, "logs", "nginx.pid"), 20*time.Second)))
	t.Logf("pid file after %s", time.Since(start).Round(time.Millisecond))
	if pid != fmt.Sprint(in.cmd.Process.Pid) {
		t.Fatalf("pid file holds %s, want the shim's pid %d", pid, in.cmd.Process.Pid)
	}
	return in
}

// stop sends sig and waits for the shim to exit 0: nginx itself must
// exit, before the shim's grace would end it.
func (in *instance) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := in.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("after %v: %v (stderr: %s)", sig, err, in.stderr.String())
		}
	case <-time.After(stopGraceForTests):
		t.Fatalf("%v did not stop the instance before the shim's grace ran out", sig)
	}
}

// waitLog waits until the error log holds want (nginx logs each signal
// its handler takes) and returns the log.
func waitLog(t *testing.T, dir, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
		if strings.Contains(string(data), want) {
			return string(data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("error.log has no %q 10s on:\n%s", want, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShimStopSignals: QUIT, TERM and INT reach nginx.wasm through the
// vkernel's signal delivery (vkernel.proc_signals) and run nginx's own
// signal handler, which logs the signal and what it does, as natively;
// the instance exits 0, well before the shim's 10 s grace, and removes
// its pid file.
func TestShimStopSignals(t *testing.T) {
	for _, c := range []struct {
		sig  syscall.Signal
		want string
	}{
		{syscall.SIGQUIT, "signal 3 (SIGQUIT) received, shutting down"},
		{syscall.SIGTERM, "signal 15 (SIGTERM) received, exiting"},
		{syscall.SIGINT, "signal 2 (SIGINT) received, exiting"},
	} {
		t.Run(c.sig.String(), func(t *testing.T) {
			sv := serveSmoke(t)
			dir := sv.dir
			sv.in.stop(t, c.sig)
			log := waitLog(t, dir, c.want)
			if !strings.Contains(log, "[notice]") || !strings.Contains(log, " exit\n") {
				t.Errorf("error.log has no notice that nginx exited:\n%s", log)
			}
			if strings.Contains(log, "[alert]") || strings.Contains(log, "[emerg]") {
				t.Errorf("error.log has alerts:\n%s", log)
			}
			if _, err := os.Stat(filepath.Join(dir, "logs", "nginx.pid")); !os.IsNotExist(err) {
				t.Errorf("pid file after %v: %v, want it removed by nginx", c.sig, err)
			}
		})
	}
}

// TestShimForcedStop: nginx exits at once on QUIT in its single-process
// cycle, so an instance still running stopGrace after QUIT, TERM or INT is
// one that no longer takes signals. The relay then logs an alert and ends
// the instance (stop with errStopGrace, which the shim turns into exit 0
// and a removed pid file, as nginx's own exit). Later signals and the
// instance's own end are the instance's business.
func TestShimForcedStop(t *testing.T) {
	var errOut bytes.Buffer
	l := &launcher{stderr: &errOut}
	host, guest := make(chan os.Signal, 1), make(chan os.Signal, 4)
	stopped := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reload atomic.Bool
	go l.relay(ctx, host, guest, &reload, func(err error) { stopped <- err })
	start := time.Now()
	host <- syscall.SIGQUIT
	if sig := <-guest; sig != syscall.SIGQUIT {
		t.Fatalf("the guest got %v, want QUIT passed on", sig)
	}
	select {
	case err := <-stopped:
		took := time.Since(start)
		if !errors.Is(err, errStopGrace) || took < stopGrace {
			t.Fatalf("stopped with %v after %v, want errStopGrace after %v", err, took, stopGrace)
		}
	case <-time.After(stopGrace + 20*time.Second):
		t.Fatalf("not stopped %v after QUIT", stopGrace+20*time.Second)
	}
	if !strings.Contains(errOut.String(), "[alert] the instance did not exit 10s after quit: ending it") {
		t.Errorf("no alert for the forced stop: %q", errOut.String())
	}
}

// stopGraceForTests bounds the wait for a stop signal below stopGrace, so
// that an instance the shim had to end is a failure.
const stopGraceForTests = stopGrace - 2*time.Second

// TestShimReopen: USR1 makes nginx reopen its logs (its handler sets
// ngx_reopen), as logrotate relies on: after the access log is moved
// away, the next request is logged in a new file at the configured path.
func TestShimReopen(t *testing.T) {
	sv := serveSmoke(t)
	in, dir, base := sv.in, sv.dir, sv.base
	if resp, _ := get(t, base+"/addr"); resp.StatusCode != 200 {
		t.Fatalf("GET /addr: %d", resp.StatusCode)
	}
	access := filepath.Join(dir, "logs", "access.log")
	if err := os.Rename(access, access+".1"); err != nil {
		t.Fatal(err)
	}
	if err := in.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitLog(t, dir, "signal 10 (SIGUSR1) received, reopening logs")
	waitLog(t, dir, "reopening logs\n")
	if resp, _ := get(t, base+"/missing"); resp.StatusCode != 404 {
		t.Fatalf("GET /missing: %d", resp.StatusCode)
	}
	// nginx logs a request after its response: read the logs once it has
	// exited.
	in.stop(t, syscall.SIGQUIT)
	old, _ := os.ReadFile(access + ".1")
	now, err := os.ReadFile(access)
	if err != nil {
		t.Fatalf("no new access.log after USR1: %v", err)
	}
	if !strings.Contains(string(old), "GET /addr ") || strings.Contains(string(old), "GET /missing ") {
		t.Errorf("the moved log has:\n%s\nwant the request before USR1 only", old)
	}
	if !strings.Contains(string(now), "GET /missing ") || strings.Contains(string(now), "GET /addr ") {
		t.Errorf("the new access.log has:\n%s\nwant the request after USR1 only", now)
	}
}

// TestPrepareShimRefusesOldBuild: a build whose nginx.wasm does not take
// signals from vkernel.proc_signals (made before the port did) is refused
// with a message that says to rebuild, rather than run with every signal
// ignored.
func TestPrepareShimRefusesOldBuild(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "nginx.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	info := `{"source": {"version": "1.22.1-9+deb12u9"}, "wasm_imports": {"vkernel": ["sock_connect"], "wasi_snapshot_preview1": ["poll_oneoff"]}}`
	os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(info), 0o644)
	b, err := wasmbuild.Open(dir, wasmbuild.Nginx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = PrepareShim(t.TempDir(), b, []string{"/bin/false"}, runners.TargetSpec{Megabinary: "/nonexistent.vkmb", PublicKey: "/nonexistent.pub"})
	if err == nil || !strings.Contains(err.Error(), "vkernel.proc_signals") || !strings.Contains(err.Error(), "rebuild") {
		t.Fatalf("PrepareShim of an old build: %v, want a refusal naming proc_signals and saying to rebuild", err)
	}
}
