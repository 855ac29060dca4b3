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

	"github.com/compat-project/compat/adapters/internal/prepare"
	"github.com/compat-project/compat/adapters/internal/shim"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
)

// Spawn mode is the suite's own way to run: runtest starts the servers a
// unit needs itself (src/redis-server CONFIG-FILE, several per unit for
// replication), stops them with SIGTERM or SIGKILL and restarts them. It
// runs the units external mode cannot: integration/* (replication, AOF and
// RDB loading, shutdown, redis-cli, redis-benchmark).
//
// The suite runs in a working copy whose src/ holds the programs of the
// target: on the vkernel, scripts that run ShimMain (redis-server.wasm as
// redis-server, redis-check-aof and redis-check-rdb, from the pipeline's
// megabinary) beside the host's redis-cli and redis-benchmark (clients,
// not under test); on a reference, links to Debian's binaries.

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

// VkernelPrograms writes into dir (which must exist) the scripts
// redis-server, redis-check-aof and redis-check-rdb that run self (the
// command that calls ShimMain with argv after it, such as
// {"/usr/bin/compat", "redis-shim"}) under those names, running b's module
// from the megabinary spec names (spec.Megabinary, signed with the key in
// spec.PublicKey: the pipeline's, so that the run's megabinary digest is
// what spawn mode ran). It returns the programs for PrepareSuite, with the
// host's redis-cli and redis-benchmark where present.
func VkernelPrograms(dir string, b *wasmbuild.Build, self []string, spec runners.TargetSpec) (map[string]string, error) {
	if spec.Megabinary == "" || spec.PublicKey == "" {
		return nil, errors.New("redis shim: no megabinary to run (the vkernel target's spec names none)")
	}
	env := (&shim.Config{Megabinary: spec.Megabinary, PublicKey: spec.PublicKey, Wasm: b.Wasm(), Cache: spec.Cache, Entry: entry(b).Name}).Env()
	programs := map[string]string{}
	for _, name := range []string{"redis-server", "redis-check-aof", "redis-check-rdb"} {
		script := filepath.Join(dir, name)
		cmd := append(append([]string(nil), self...), name)
		if err := prepare.WriteScript(script, name+" as redis-server.wasm in the vkernel (compat adapters/redis).", env, cmd); err != nil {
			return nil, fmt.Errorf("redis shim: %w", err)
		}
		programs[name] = script
	}
	for _, name := range []string{"redis-cli", "redis-benchmark"} {
		if _, err := os.Stat(filepath.Join("/usr/bin", name)); err == nil {
			programs[name] = filepath.Join("/usr/bin", name)
		}
	}
	return programs, nil
}

// testTimeout is runtest's own bound on one test (--timeout), after which it
// reports the test as timed out.
const testTimeout = 5 * time.Minute

// runSpawn runs one unit in spawn mode in the session's working copy of
// the suite, where runtest starts the servers itself, and reports its
// results.
func (ss *session) runSpawn(ctx context.Context, unit string) runners.Report {
	var rep runners.Report
	for attempt := 1; ; attempt++ {
		base, err := freeBasePort()
		if err != nil {
			rep.Err = runners.TargetError(fmt.Errorf("no free ports for runtest: %w", err))
			return rep
		}
		var out runners.Buffer
		// --clients 1: one unit needs one test client. runtest takes the
		// ports of its servers from the range above --baseport.
		p := runners.Process{
			Args: []string{tclsh, "tests/test_helper.tcl", "--single", unit, "--clients", "1",
				"--baseport", strconv.Itoa(base), "--portcount", "400",
				"--timeout", strconv.Itoa(int(testTimeout / time.Second))},
			Dir:    ss.spawnDir,
			Stdout: &out, Stderr: &out,
		}
		rep.Command = ss.spawnTarget.Command(p)
		var exit runners.Exit
		exit, err = ss.spawnTarget.Run(ctx, p)
		rep.Output = out.String()
		switch {
		case err != nil && ctx.Err() != nil:
			rep.Err = ctx.Err()
		case err != nil:
			rep.Err = runners.TargetError(fmt.Errorf("runtest could not run: %w", err))
		case attempt < 3 && strings.Contains(rep.Output, "couldn't open socket: address already in use"):
			continue
		}
		p2 := Parse(rep.Output, unit)
		rep.Results = p2.Results
		switch {
		case rep.Err != nil:
		case p2.Exception != "":
			first, _, _ := strings.Cut(p2.Exception, "\n")
			rep.Err, rep.Output = errors.New("exception: "+first), p2.Exception
		case !p2.Done:
			rep.Err = fmt.Errorf("runtest ended (%s) before the unit did, after %d tests reported", exit, len(p2.Results))
		}
		return rep
	}
}
