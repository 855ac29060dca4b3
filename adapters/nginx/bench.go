package nginx

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/compat-project/compat/adapters/internal/prepare"
	"github.com/compat-project/compat/adapters/internal/serverbench"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// BenchOptions configure Bench.
type BenchOptions struct {
	// Build is the nginx.wasm build's directory; "" the newest under
	// Cache.
	Build string
	// Cache is the cache root: the builds and the AOT code.
	Cache string
	// Dir is a scratch directory for the megabinary, its key and the
	// servers' prefixes.
	Dir string
	// Exec is the command that runs compat exec; default this
	// executable's exec verb.
	Exec []string
	// Duration is each wrk run's -d (default 5 s).
	Duration time.Duration
	// Connections is wrk's -c (default 10); it runs one thread (-t1).
	Connections int
	// FileSize is the size of the static file served (default 4 KiB).
	FileSize int
	// CPUProfile, when set, is where the vkernel process writes a Go CPU
	// profile (compat exec -cpuprofile).
	CPUProfile string
}

// NativeNginx is the host's native nginx (Debian's nginx-light or any
// other flavour: the same version as the build's source).
const NativeNginx = "/usr/sbin/nginx"

// Wrk is the load generator Bench runs.
const Wrk = "wrk"

// benchConf is the configuration both sides serve with: one process
// (master_process off), no access log, a static file under PREFIX/html.
const benchConf = `# compat bench nginx
master_process off;
daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr;
events {
    worker_connections 1024;
}
http {
    access_log off;
    server {
        listen 127.0.0.1:%[2]d;
        root %[1]s/html;
    }
}
`

// Bench runs nginx.wasm in the vkernel (a compat exec process handed its
// listening socket) and the host's native nginx side by side on loopback,
// each serving one static file with the same configuration (benchConf:
// master_process off, access_log off; the native side with its default
// event method, epoll), and runs wrk -t1 against each in turn, with
// keep-alive connections and with a new connection per request
// ("Connection: close"): requests per second, latency and the server's CPU
// time per request on each side, and their ratios.
func Bench(ctx context.Context, opts BenchOptions) (*serverbench.Report, error) {
	if opts.Duration <= 0 {
		opts.Duration = 5 * time.Second
	}
	if opts.Connections <= 0 {
		opts.Connections = 10
	}
	if opts.FileSize <= 0 {
		opts.FileSize = 4096
	}
	b, err := wasmbuild.OpenOrLatest(opts.Build, opts.Cache, wasmbuild.Nginx)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(NativeNginx); err != nil {
		return nil, fmt.Errorf("bench nginx needs Debian's native nginx (apt-get install nginx-light): %w", err)
	}
	if _, err := exec.LookPath(Wrk); err != nil {
		return nil, fmt.Errorf("bench nginx needs wrk (apt-get install wrk): %w", err)
	}
	exe, err := prepare.Self(opts.Exec, "exec")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	signed, err := prepare.Sign(dir, "bench-nginx", []megabinary.SpecEntry{entry(b)})
	if err != nil {
		return nil, err
	}
	body := benchFile(opts.FileSize)
	prefixes := map[string]string{}
	for _, side := range []string{"native", "vkernel"} {
		p := filepath.Join(dir, "nginx-"+side)
		prefixes[side] = p
		for _, d := range []string{"html", "var"} {
			if err := os.MkdirAll(filepath.Join(p, d), 0o755); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(filepath.Join(p, "html", "file.html"), body, 0o644); err != nil {
			return nil, err
		}
	}
	// args writes the side's configuration for its port and returns
	// nginx's command line.
	args := func(side string) func(port int) []string {
		return func(port int) []string {
			p := prefixes[side]
			conf := filepath.Join(p, "nginx.conf")
			// An error shows when the server does not start.
			os.WriteFile(conf, []byte(fmt.Sprintf(benchConf, p, port)), 0o644)
			return []string{"-p", p + "/", "-c", conf, "-e", "stderr"}
		}
	}
	native, err := serverbench.StartNative(NativeNginx, args("native"))
	if err != nil {
		return nil, err
	}
	defer native.Stop()
	vp := prefixes["vkernel"]
	vk, err := serverbench.StartVkernel(serverbench.Vkernel{
		Exec: exe, Megabinary: signed.Path, PublicKey: signed.PublicKey, Cache: opts.Cache,
		Entry: entry(b).Name, Wasm: b.Wasm(), CPUProfile: opts.CPUProfile,
		// The prefix at its own path, and the compiled-in temp paths.
		Mounts: []string{vp + "=" + vp, tempGuest + "=" + filepath.Join(vp, "var")},
	}, args("vkernel"))
	if err != nil {
		return nil, err
	}
	defer vk.Stop()
	for _, s := range []*serverbench.Server{native, vk} {
		if err := s.WaitReady(ctx, startTimeout, func(addr string) error { return getFile(addr, len(body)) }); err != nil {
			return nil, err
		}
	}
	wrk := func(close bool) func(ctx context.Context, addr string) (serverbench.Figure, error) {
		return func(ctx context.Context, addr string) (serverbench.Figure, error) {
			return runWrk(ctx, addr, opts.Connections, opts.Duration, close)
		}
	}
	tests := []serverbench.Test{
		{Name: "keep-alive", Run: wrk(false)},
		{Name: "new connection", Run: wrk(true)},
	}
	rep := &serverbench.Report{
		Server: fmt.Sprintf("nginx.wasm %s (%s) vs native %s, a %d-byte static file", b.Version, b.Wasm(), nativeNginxVersion(), opts.FileSize),
		Load: fmt.Sprintf("%s -t1 -c%d -d%s --latency [-H 'Connection: close'] http://ADDR/file.html",
			Wrk, opts.Connections, opts.Duration),
		Native:  native.Command,
		Vkernel: vk.Command,
	}
	rep.Rows, err = serverbench.Compare(ctx, native, vk, tests)
	return rep, err
}

// benchFile is the static file's content: printable, n bytes.
func benchFile(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i%36]
		if i%64 == 63 {
			b[i] = '\n'
		}
	}
	return b
}

// getFile checks that the server at addr serves file.html, size bytes.
func getFile(addr string, size int) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/file.html")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n != int64(size) {
		return fmt.Errorf("GET /file.html: %s, %d bytes (want 200, %d bytes)", resp.Status, n, size)
	}
	return nil
}

// nativeNginxVersion is what the native nginx says of its version
// ("nginx/1.22.1"; nginx -v prints it on stderr).
func nativeNginxVersion() string {
	out, err := exec.Command(NativeNginx, "-v").CombinedOutput()
	if err != nil {
		return NativeNginx
	}
	_, v, ok := strings.Cut(strings.TrimSpace(string(out)), "version: ")
	if !ok {
		return NativeNginx
	}
	return NativeNginx + " (" + v + ")"
}

var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkRate     = regexp.MustCompile(`(?m)^Requests/sec:\s*([0-9.]+)`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
	wrkLatency  = regexp.MustCompile(`(?m)^\s*(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// runWrk runs wrk -t1 against addr's file.html and reads its summary.
func runWrk(ctx context.Context, addr string, conns int, d time.Duration, close bool) (serverbench.Figure, error) {
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s", "--latency"}
	if close {
		args = append(args, "-H", "Connection: close")
	}
	args = append(args, "http://"+addr+"/file.html")
	ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
	defer cancel()
	out, err := serverbench.Run(ctx, Wrk, args...)
	if err != nil {
		return serverbench.Figure{}, err
	}
	return parseWrk(out)
}

// parseWrk reads wrk's summary: requests, requests/sec, socket errors,
// non-2xx answers and the 50th and 99th latency percentiles (--latency).
func parseWrk(out string) (serverbench.Figure, error) {
	var f serverbench.Figure
	m := wrkRequests.FindStringSubmatch(out)
	r := wrkRate.FindStringSubmatch(out)
	if m == nil || r == nil {
		return f, fmt.Errorf("wrk: no request count or rate in its output:\n%s", out)
	}
	f.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	f.PerSecond, _ = strconv.ParseFloat(r[1], 64)
	if s := wrkSocket.FindStringSubmatch(out); s != nil {
		for _, v := range s[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			f.Errors += n
		}
	}
	if s := wrkNon2xx.FindStringSubmatch(out); s != nil {
		n, _ := strconv.ParseInt(s[1], 10, 64)
		f.Errors += n
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := wrkLatency.FindStringSubmatch(sc.Text())
		if l == nil {
			continue
		}
		v, _ := strconv.ParseFloat(l[2], 64)
		switch l[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if l[1] == "50" {
			f.P50 = v
		} else {
			f.P99 = v
		}
	}
	return f, nil
}
