package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	root "github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/nginx"
	"github.com/compat-project/compat/adapters/redis"
)

// benchServerCmd is compat bench redis|nginx: the wasm build in the
// vkernel against the host's native server of the same version, under
// redis-benchmark or wrk, side by side on loopback.
func benchServerCmd(kind string, args []string, stdout, stderr io.Writer) int {
	synopsis := map[string]string{
		"redis": "bench redis [-n N] [-c C,...] [-build DIR] [-cpuprofile FILE] [-json]",
		"nginx": "bench nginx [-d DURATION] [-c N] [-size BYTES] [-build DIR] [-cpuprofile FILE] [-json]",
	}[kind]
	fs := newFlags("bench "+kind, synopsis, stderr)
	build := fs.String("build", "", "the "+kind+" wasm build's directory (default: the newest under the cache)")
	asJSON := fs.Bool("json", false, "print the figures as JSON")
	profile := fs.String("cpuprofile", "", "write a Go CPU profile of the vkernel's server process to FILE")
	var (
		n, conns, size *int
		clients        *string
		d              *time.Duration
	)
	if kind == "redis" {
		n = fs.Int("n", 100000, "requests per test (redis-benchmark -n)")
		clients = fs.String("c", "1,10", "client counts (redis-benchmark -c): every test runs at each")
	} else {
		d = fs.Duration("d", 5*time.Second, "each wrk run's duration")
		conns = fs.Int("c", 10, "wrk's connections")
		size = fs.Int("size", 4096, "the static file's size in bytes")
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || (n != nil && *n <= 0) ||
		(conns != nil && *conns <= 0) || (size != nil && *size <= 0) || (d != nil && *d < time.Second) {
		return usageError(fs, err)
	}
	var counts []int
	if clients != nil {
		for _, s := range strings.Split(*clients, ",") {
			c, err := strconv.Atoi(s)
			if err != nil || c <= 0 {
				fmt.Fprintf(stderr, "compat: bench redis: bad -c %q: want client counts such as 1,10\n", *clients)
				return usageError(fs, nil)
			}
			counts = append(counts, c)
		}
	}
	if *profile != "" {
		abs, err := filepath.Abs(*profile)
		if err != nil {
			return fail(stderr, err)
		}
		*profile = abs
	}
	dir := filepath.Join(root.CacheRoot(), "bench", kind)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(stderr, err)
	}
	ctx := context.Background()
	var report interface{ Write(io.Writer) }
	var err error
	if kind == "redis" {
		report, err = redis.Bench(ctx, redis.BenchOptions{Build: *build, Cache: root.CacheRoot(), Dir: dir, Requests: *n, Clients: counts, CPUProfile: *profile})
	} else {
		report, err = nginx.Bench(ctx, nginx.BenchOptions{Build: *build, Cache: root.CacheRoot(), Dir: dir, Duration: *d, Connections: *conns, FileSize: *size, CPUProfile: *profile})
	}
	return writeBenchReport(kind, report, err, *asJSON, stdout, stderr)
}
