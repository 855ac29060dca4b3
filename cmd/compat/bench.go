package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/compat-project/compat/vkernel/bench"
)

func benchCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "exec" && args[0] != "concurrent") {
		fmt.Fprint(stderr, "usage: compat bench exec|concurrent [-n N] [-json]\n")
		return exitUsage
	}
	kind := args[0]
	fs := newFlags("bench "+kind, "bench "+kind+" [-n N] [-json]", stderr)
	defaultN := 1000
	if kind == "concurrent" {
		defaultN = 500
	}
	n := fs.Int("n", defaultN, "runs (exec) or concurrent invocations (concurrent)")
	asJSON := fs.Bool("json", false, "print the figures as JSON")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 || *n <= 0 {
		return usageError(fs, err)
	}
	dir := filepath.Join(cacheRoot(), "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(stderr, err)
	}
	ctx := context.Background()
	var report interface{ Write(io.Writer) }
	var err error
	if kind == "exec" {
		report, err = bench.Exec(ctx, bench.ExecOptions{Runs: *n, Dir: dir})
	} else {
		report, err = bench.Concurrent(ctx, bench.ConcurrentOptions{N: *n, Dir: dir})
	}
	if err != nil {
		return fail(stderr, fmt.Errorf("bench %s: %w", kind, err))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(report)
		return exitOK
	}
	report.Write(stdout)
	return exitOK
}
