package redis

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	// Build is the redis-server.wasm build's directory; "" the newest
	// under Cache.
	Build string
	// Cache is the cache root: the builds and the AOT code.
	Cache string
	// Dir is a scratch directory for the megabinary, its key and the
	// servers' working directories.
	Dir string
	// Exec is the command that runs compat exec; default this
	// executable's exec verb.
	Exec []string
	// Requests is redis-benchmark's -n for each test (default 100000).
	Requests int
	// Clients are the -c values to run every test at (default 1 and 10).
	Clients []int
	// CPUProfile, when set, is where the vkernel process writes a Go CPU
	// profile (compat exec -cpuprofile).
	CPUProfile string
}

// BenchTests are the redis-benchmark tests Bench runs (-t), at each
// client count.
var BenchTests = []string{"PING_INLINE", "PING_MBULK", "SET", "GET"}

// NativeServer is the host's native redis-server (Debian's, the same
// version as the build's source).
const NativeServer = "/usr/bin/redis-server"

// RedisBenchmark is the load generator Bench runs.
const RedisBenchmark = "redis-benchmark"

// Bench runs redis-server.wasm in the vkernel (a compat exec process
// handed its listening socket) and the host's native redis-server side by
// side on loopback, both with ServerArgs' settings (no persistence), and
// runs redis-benchmark against each in turn for every test of BenchTests
// at every client count: requests per second, latency and the server's
// CPU time per request on each side, and their ratios.
func Bench(ctx context.Context, opts BenchOptions) (*serverbench.Report, error) {
	if opts.Requests <= 0 {
		opts.Requests = 100000
	}
	if len(opts.Clients) == 0 {
		opts.Clients = []int{1, 10}
	}
	b, err := wasmbuild.OpenOrLatest(opts.Build, opts.Cache, wasmbuild.Redis)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{NativeServer, RedisBenchmark} {
		if _, err := exactPath(p); err != nil {
			return nil, fmt.Errorf("bench redis needs %s (apt-get install redis-server redis-tools): %w", p, err)
		}
	}
	exe, err := prepare.Self(opts.Exec, "exec")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	signed, err := prepare.Sign(opts.Dir, "bench-redis", []megabinary.SpecEntry{entry(b)})
	if err != nil {
		return nil, err
	}
	work := map[string]string{}
	for _, side := range []string{"native", "vkernel"} {
		work[side] = filepath.Join(opts.Dir, "redis-"+side)
		if err := os.MkdirAll(work[side], 0o755); err != nil {
			return nil, err
		}
	}
	args := func(port int) []string {
		return append([]string{"--port", strconv.Itoa(port)}, ServerArgs...)
	}
	native, err := serverbench.StartNative(NativeServer, func(port int) []string {
		return append(args(port), "--dir", work["native"])
	})
	if err != nil {
		return nil, err
	}
	defer native.Stop()
	vk, err := serverbench.StartVkernel(serverbench.Vkernel{
		Exec: exe, Megabinary: signed.Path, PublicKey: signed.PublicKey, Cache: opts.Cache,
		Entry: entry(b).Name, Wasm: b.Wasm(), Mounts: []string{"/=" + work["vkernel"]}, CPUProfile: opts.CPUProfile,
	}, args)
	if err != nil {
		return nil, err
	}
	defer vk.Stop()
	for _, s := range []*serverbench.Server{native, vk} {
		if err := s.WaitReady(ctx, startTimeout, ping); err != nil {
			return nil, err
		}
	}
	var tests []serverbench.Test
	for _, c := range opts.Clients {
		for _, t := range BenchTests {
			tests = append(tests, serverbench.Test{
				Name: fmt.Sprintf("%s -c %d", t, c),
				Run: func(ctx context.Context, addr string) (serverbench.Figure, error) {
					return redisBenchmark(ctx, addr, t, c, opts.Requests)
				},
			})
		}
	}
	rep := &serverbench.Report{
		Server:  fmt.Sprintf("redis-server.wasm %s (%s) vs native %s", b.Version, b.Wasm(), nativeVersion()),
		Load:    fmt.Sprintf("%s -n %d --csv -t TEST -c CLIENTS", RedisBenchmark, opts.Requests),
		Native:  native.Command,
		Vkernel: vk.Command,
	}
	rep.Rows, err = serverbench.Compare(ctx, native, vk, tests)
	return rep, err
}

// exactPath finds a program by absolute path or on PATH.
func exactPath(p string) (string, error) {
	if filepath.IsAbs(p) {
		_, err := os.Stat(p)
		return p, err
	}
	return exec.LookPath(p)
}

// ping checks that a server at addr answers PING.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// nativeVersion is what the native redis-server says of its version
// ("v=7.0.15").
func nativeVersion() string {
	out, err := serverbench.Run(context.Background(), NativeServer, "--version")
	if err != nil {
		return NativeServer
	}
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "v=") {
			return NativeServer + " " + f
		}
	}
	return NativeServer
}

// redisBenchmark runs one redis-benchmark test against addr and reads its
// CSV line: "TEST","rps","avg_latency_ms","min_latency_ms",
// "p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms".
func redisBenchmark(ctx context.Context, addr, test string, clients, requests int) (serverbench.Figure, error) {
	host, port, _ := net.SplitHostPort(addr)
	// redis-benchmark retries a server that does not answer for ever: a
	// generous bound, far above a test's expected few seconds.
	ctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(requests)*time.Millisecond)
	defer cancel()
	out, err := serverbench.Run(ctx, RedisBenchmark, "-h", host, "-p", port, "-t", strings.ToLower(test),
		"-c", strconv.Itoa(clients), "-n", strconv.Itoa(requests), "--csv")
	if err != nil {
		return serverbench.Figure{}, err
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		return serverbench.Figure{}, fmt.Errorf("redis-benchmark -t %s: reading its CSV: %w\n%s", test, err, out)
	}
	for _, r := range recs {
		if len(r) < 7 || r[0] != test {
			continue
		}
		rps, err1 := strconv.ParseFloat(r[1], 64)
		p50, err2 := strconv.ParseFloat(r[4], 64)
		p99, err3 := strconv.ParseFloat(r[6], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return serverbench.Figure{}, fmt.Errorf("redis-benchmark -t %s: bad figures in %q", test, r)
		}
		return serverbench.Figure{PerSecond: rps, P50: p50, P99: p99, Requests: int64(requests)}, nil
	}
	return serverbench.Figure{}, fmt.Errorf("redis-benchmark -t %s: no %s line in its output:\n%s", test, test, out)
}
