package redis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/prepare"
	"github.com/compat-project/compat/adapters/internal/shim"
	"github.com/compat-project/compat/adapters/internal/units"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// Spawn mode is the suite's own way to run: runtest starts the servers a
// unit needs itself (src/redis-server CONFIG-FILE, several per unit for
// replication), stops them with SIGTERM or SIGKILL and restarts them. It
// runs the units external mode cannot: integration/* (replication, AOF and
// RDB loading, shutdown, redis-cli, redis-benchmark).
//
// The suite runs in a working copy whose src/ holds the programs of the
// target: on the vkernel, scripts that run ShimMain (redis-server.wasm as
// redis-server, redis-check-aof and redis-check-rdb) beside the host's
// redis-cli and redis-benchmark (clients, not under test); on a reference,
// links to Debian's binaries.

// QuickSpawn is the quick profile's spawn-mode part: a unit that loads an
// RDB file of an old encoding in a server of its own, a few seconds.
var QuickSpawn = []string{"integration/convert-zipmap-hash-on-load"}

// The programs runtest starts from src/.
var suitePrograms = []string{"redis-server", "redis-check-aof", "redis-check-rdb", "redis-cli", "redis-benchmark"}

// PrepareSuite copies the suite at src (runtest, tests/) to dst and fills
// dst/src with programs: name to what it is, a symbolic link's target
// (such as "/usr/bin/redis-server", resolved where the suite runs). Missing
// names of suitePrograms are left out: the units that need them fail
// saying so.
func PrepareSuite(dst, src string, programs map[string]string) error {
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return fmt.Errorf("copying the Redis suite: %w", err)
	}
	bin := filepath.Join(dst, "src")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	for name, target := range programs {
		p := filepath.Join(bin, name)
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			return fmt.Errorf("linking src/%s: %w", name, err)
		}
	}
	return nil
}

// NativePrograms maps the suite's programs to Debian's binaries in dir
// (such as "/usr/bin").
func NativePrograms(dir string) map[string]string {
	m := map[string]string{}
	for _, name := range suitePrograms {
		m[name] = filepath.Join(dir, name)
	}
	return m
}

// VkernelPrograms writes into dir (which must exist) a megabinary holding
// b's entry, signed with a key made for it, and the scripts redis-server,
// redis-check-aof and redis-check-rdb that run self (the command that calls
// ShimMain with argv after it, such as {"/usr/bin/compat", "redis-shim"})
// under those names. It returns the programs for PrepareSuite, with the
// host's redis-cli and redis-benchmark where present, and the
// megabinary's digest.
func VkernelPrograms(dir string, b *Build, self []string, cache string) (map[string]string, string, error) {
	signed, err := prepare.Sign(dir, "redis", []megabinary.SpecEntry{b.Entry()})
	if err != nil {
		return nil, "", fmt.Errorf("redis shim: %w", err)
	}
	env := (&shim.Config{Megabinary: signed.Path, PublicKey: signed.PublicKey, Wasm: b.Wasm(), Cache: cache}).Env()
	programs := map[string]string{}
	for _, name := range []string{"redis-server", "redis-check-aof", "redis-check-rdb"} {
		script := filepath.Join(dir, name)
		cmd := append(append([]string(nil), self...), name)
		if err := prepare.WriteScript(script, name+" as redis-server.wasm in the vkernel (compat adapters/redis).", env, cmd); err != nil {
			return nil, "", fmt.Errorf("redis shim: %w", err)
		}
		programs[name] = script
	}
	for _, name := range []string{"redis-cli", "redis-benchmark"} {
		if _, err := os.Stat(filepath.Join("/usr/bin", name)); err == nil {
			programs[name] = filepath.Join("/usr/bin", name)
		}
	}
	return programs, signed.Digest, nil
}

// SpawnOptions configures RunSpawn.
type SpawnOptions struct {
	// Dir is the working copy made by PrepareSuite, as the target sees it.
	Dir string
	// Units lists the units to run, such as "integration/rdb".
	Units []string
	// Tclsh is the target's Tcl shell; default "tclsh".
	Tclsh string
	// Timeout bounds each unit; default 20 minutes.
	Timeout time.Duration
	// TestTimeout is runtest's own bound on one test (--timeout), after
	// which it reports the test as timed out; default 5 minutes.
	TestTimeout time.Duration
	// Progress, if set, is called once per unit as it finishes.
	Progress func(Progress)
}

// RunSpawn runs opts.Units one at a time on target in spawn mode and
// returns one result per test, plus one error result (Test == Unit) for
// each unit that could not run to its end: an exception, a crash of
// runtest, a unit over its time. The error is not nil when ctx ended
// first or the target failed; the results so far are returned.
func RunSpawn(ctx context.Context, target runners.Target, opts SpawnOptions) ([]compat.Result, error) {
	if opts.Tclsh == "" {
		opts.Tclsh = "tclsh"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 20 * time.Minute
	}
	if opts.TestTimeout <= 0 {
		opts.TestTimeout = 5 * time.Minute
	}
	results, err := units.Run(ctx, opts.Units, 1, "units",
		func(ctx context.Context, unit string) ([]compat.Result, error) {
			return spawnUnit(ctx, target, opts, unit)
		},
		func(f units.Finished) {
			if opts.Progress != nil {
				opts.Progress(Progress{Unit: f.Unit, Done: f.Done, Total: f.Total, Counts: f.Counts, Elapsed: f.Elapsed, Err: f.Err})
			}
		})
	if err != nil {
		err = fmt.Errorf("redis adapter (spawn mode): %w", err)
	}
	return results, err
}

func spawnUnit(ctx context.Context, target runners.Target, opts SpawnOptions, unit string) ([]compat.Result, error) {
	start := time.Now()
	unitErr := func(msg, output string) compat.Result { return unitError(unit, start, msg, output) }
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var (
		output string
		exit   runners.Exit
		err    error
	)
	for attempt := 1; ; attempt++ {
		base, perr := freeBasePort()
		if perr != nil {
			return []compat.Result{unitErr("no free ports for runtest: "+perr.Error(), "")}, nil
		}
		var out units.Buffer
		// --clients 1: one unit needs one test client. runtest takes the
		// ports of its servers from the range above --baseport.
		exit, err = target.Run(ctx, runners.Process{
			Args: []string{opts.Tclsh, "tests/test_helper.tcl", "--single", unit, "--clients", "1",
				"--baseport", strconv.Itoa(base), "--portcount", "400",
				"--timeout", strconv.Itoa(int(opts.TestTimeout / time.Second))},
			Dir:    opts.Dir,
			Stdout: &out, Stderr: &out,
		})
		output = out.String()
		if attempt == 3 || !strings.Contains(output, "couldn't open socket: address already in use") {
			break
		}
	}
	p := Parse(output, unit)
	results := p.Results
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		results = append(results, unitErr(fmt.Sprintf("unit timed out after %v with %d tests reported; the rest did not run", opts.Timeout, len(p.Results)), tail(output, 30)))
		return results, nil
	case err != nil && ctx.Err() != nil:
		return append(results, unitErr("interrupted: "+err.Error(), tail(output, 30))), err
	case err != nil:
		return append(results, unitErr("runtest could not run: "+err.Error(), tail(output, 30))), err
	case p.Exception != "":
		first, _, _ := strings.Cut(p.Exception, "\n")
		results = append(results, unitErr("exception: "+first, p.Exception))
	case !p.Done:
		results = append(results, unitErr(fmt.Sprintf("runtest ended (%s) before the unit did, after %d tests reported", exit, len(p.Results)), tail(output, 30)))
	}
	return results, nil
}
