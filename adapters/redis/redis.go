// Package redis drives Redis' own Tcl test suite against redis-server on
// a runners.Target, and turns what it reports into compat results. It runs
// in two modes: external mode (Run), for the unit/* entries, against one
// server per unit that the target serves; and spawn mode (RunSpawn), for
// the integration/* entries, where runtest starts its own servers, several
// per unit, through the target's src/redis-server (ShimMain on the
// vkernel).
//
// In external mode the suite runs on the host, one unit at a time:
//
//	tclsh tests/test_helper.tcl --host 127.0.0.1 --port P --single unit/X
//
// against a fresh server per unit (units leave configuration and data
// behind; one server reused across units hung unit/protocol), started by
// the target's runners.Server with
//
//	redis-server --port P --save "" --appendonly no --enable-debug-command yes --bind 127.0.0.1 --protected-mode no
//
// (a Docker reference must run with docker.Options.HostNetwork: Docker's
// proxy relays each connection on its own, reordering what the suite sends
// on two connections in turn, and its blocking-list tests then hang). The
// server is ready when go-redis gets PONG. A server that exits or stops answering
// in the middle of a unit ends that unit: its tests reported so far are
// kept and one error result for the unit says what happened; the next
// unit gets a new server.
//
// Differential goes beyond the suite: one seeded random command stream
// sent to two servers, replies compared, the first divergence reported
// with its command. Harness (the `compat run -suite redis` suite) runs it
// on every target against the host's own redis-server.
package redis

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/units"
	"github.com/compat-project/compat/runners"
)

// Suite is the suite name of every result this package produces.
const Suite = "redis"

// Quick is the quick profile: units that take a few seconds each natively
// and need nothing but a plain server.
var Quick = []string{"unit/type/incr", "unit/keyspace", "unit/type/string"}

// ServerArgs are the options every server gets after --port: no
// persistence, DEBUG allowed, loopback only.
var ServerArgs = []string{"--save", "", "--appendonly", "no", "--enable-debug-command", "yes",
	"--bind", "127.0.0.1", "--protected-mode", "no"}

// Units lists the unit/* entries of the suite in dir (a directory holding
// tests/, as build-wasm.sh's suite/) in runtest's order: those of the
// ::all_tests list in tests/test_helper.tcl, the units runtest runs by
// default. Other files under tests/unit (unit/moduleapi/*, unit/cluster/*)
// belong to other runners (runtest-moduleapi, runtest-cluster).
func Units(dir string) ([]string, error) { return entries(dir, "unit/") }

// SpawnUnits lists the integration/* entries of ::all_tests in the suite
// in dir, in runtest's order: the units spawn mode runs.
func SpawnUnits(dir string) ([]string, error) { return entries(dir, "integration/") }

// entries lists the ::all_tests entries of the suite in dir that start
// with prefix.
func entries(dir, prefix string) ([]string, error) {
	all, err := allTests(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range all {
		if strings.HasPrefix(u, prefix) {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("listing Redis test units: ::all_tests of %s names no %s*", dir, prefix)
	}
	return out, nil
}

// allTests reads the ::all_tests list of tests/test_helper.tcl in dir.
func allTests(dir string) ([]string, error) {
	name := filepath.Join(dir, "tests", "test_helper.tcl")
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("listing Redis test units: %w", err)
	}
	_, list, ok := strings.Cut(string(b), "set ::all_tests {")
	if ok {
		list, _, ok = strings.Cut(list, "}")
	}
	if !ok {
		return nil, fmt.Errorf("listing Redis test units: no \"set ::all_tests {...}\" in %s", name)
	}
	return strings.Fields(list), nil
}

// Profile returns the units of the named profile: for "quick", Quick in
// external mode and QuickSpawn in spawn mode; for "full", every unit/*
// entry of the suite in dir in external mode and every integration/* entry
// in spawn mode (see Units and SpawnUnits).
func Profile(name, dir string) (external, spawn []string, err error) {
	switch name {
	case "quick":
		return append([]string(nil), Quick...), append([]string(nil), QuickSpawn...), nil
	case "full":
		if external, err = Units(dir); err != nil {
			return nil, nil, err
		}
		spawn, err = SpawnUnits(dir)
		return external, spawn, err
	}
	return nil, nil, fmt.Errorf("unknown redis test profile %q: want quick or full", name)
}

// Options configures Run.
type Options struct {
	// Suite is the host directory holding the suite's tests/ (and
	// runtest), from the same source as the server.
	Suite string
	// Units lists the units to run, such as "unit/type/list".
	Units []string
	// Server is the command that starts redis-server on the target,
	// such as {"redis-server"} or {"/redis-server.wasm"}; default
	// {"redis-server"}.
	Server []string
	// ServerArgs are added after ServerArgs, such as {"--dir", "/tmp/x"}.
	ServerArgs []string
	// Tclsh is the host's Tcl shell; default "tclsh".
	Tclsh string
	// Args are extra test_helper.tcl arguments, such as {"--skiptest",
	// "name"}.
	Args []string
	// Parallel is how many units run at once, each with its own server;
	// default 1.
	Parallel int
	// Timeout bounds each unit; default 10 minutes.
	Timeout time.Duration
	// StartTimeout bounds the wait for a new server's PONG; default 30 s.
	StartTimeout time.Duration
	// Progress, if set, is called once per unit as it finishes. Calls do
	// not overlap.
	Progress func(Progress)
}

// Progress reports one finished unit.
type Progress struct {
	// Unit is the unit that finished.
	Unit string
	// Done counts finished units, this one included, of Total.
	Done, Total int
	// Counts counts this unit's results.
	Counts compat.Counts
	// Elapsed is how long the unit took, server start included.
	Elapsed time.Duration
	// Err is the target's error serving the unit, if any.
	Err error
}

// Run runs opts.Units against servers that target serves (it must be a
// runners.Server) and returns one result per test, plus one error result
// (Test == Unit) for each unit that could not run to its end.
//
// The error is not nil when ctx ended before every unit ran (the results
// so far are returned) or when the target failed to serve some unit;
// those units have error results too.
func Run(ctx context.Context, target runners.Target, opts Options) (compat.Run, error) {
	run := compat.Run{Suite: Suite, Target: target.Name(), Start: time.Now(), Properties: target.Properties()}
	server, ok := target.(runners.Server)
	if !ok {
		return run, fmt.Errorf("redis adapter: target %s cannot serve (it does not implement runners.Server)", target.Name())
	}
	if opts.Suite == "" {
		return run, errors.New("redis adapter: Options.Suite is empty")
	}
	if _, err := os.Stat(filepath.Join(opts.Suite, "tests", "test_helper.tcl")); err != nil {
		return run, fmt.Errorf("redis adapter: suite %s: %w", opts.Suite, err)
	}
	if len(opts.Server) == 0 {
		opts.Server = []string{"redis-server"}
	}
	if opts.Tclsh == "" {
		opts.Tclsh = "tclsh"
	}
	if _, err := exec.LookPath(opts.Tclsh); err != nil {
		return run, fmt.Errorf("redis adapter: %s not found (apt-get install tcl): %w", opts.Tclsh, err)
	}
	if opts.Parallel < 1 {
		opts.Parallel = 1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Minute
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	results, err := units.Run(ctx, opts.Units, opts.Parallel, "units",
		func(ctx context.Context, unit string) ([]compat.Result, error) {
			return runUnit(ctx, server, opts, unit)
		},
		func(f units.Finished) {
			if opts.Progress != nil {
				opts.Progress(Progress{Unit: f.Unit, Done: f.Done, Total: f.Total, Counts: f.Counts, Elapsed: f.Elapsed, Err: f.Err})
			}
		})
	run.Results = results
	run.Duration = time.Since(run.Start)
	if err != nil {
		err = fmt.Errorf("redis adapter: %w", err)
	}
	return run, err
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// unitError is the error result of a whole unit, begun at start: what
// stopped it, and the output that shows it.
func unitError(unit string, start time.Time, msg, output string) compat.Result {
	return compat.Result{Suite: Suite, Unit: unit, Test: unit, Status: compat.Error,
		Duration: time.Since(start), Message: msg, Output: output}
}

// runUnit serves a fresh server, runs one unit against it and returns its
// results. The error is the target's, when it could not serve.
func runUnit(ctx context.Context, server runners.Server, opts Options, unit string) ([]compat.Result, error) {
	start := time.Now()
	unitErr := func(msg, output string) compat.Result { return unitError(unit, start, msg, output) }
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var serverLog units.Buffer
	svc, err := server.Serve(ctx, 1, func(ports []int) runners.Process {
		args := append(append([]string(nil), opts.Server...), "--port", strconv.Itoa(ports[0]))
		args = append(append(args, ServerArgs...), opts.ServerArgs...)
		return runners.Process{Args: args, Stdout: &serverLog, Stderr: &serverLog}
	})
	if err != nil {
		return []compat.Result{unitErr("server did not start: "+err.Error(), "")},
			fmt.Errorf("redis adapter: unit %s: %w", unit, err)
	}
	defer svc.Close()
	addr := svc.Addrs()[0]

	if err := waitReady(ctx, svc, addr, opts.StartTimeout); err != nil {
		exit, serveErr := exitIfDone(svc)
		msg := "server not ready: " + err.Error()
		if exit != nil {
			msg = "server exited before it answered PING: " + exit.String()
		}
		var targetErr error
		if serveErr != nil && ctx.Err() == nil {
			targetErr = fmt.Errorf("redis adapter: unit %s: %w", unit, serveErr)
		}
		return []compat.Result{unitErr(msg, tail(serverLog.String(), 40))}, targetErr
	}

	// test_helper listens on a port of its own for its test clients,
	// probing for a free one and closing it again; two runs starting at
	// once (parallel units, other processes) can still pick the same
	// port, so a run that could not open it is started again.
	var (
		output, startErr string
		waitErr          error
	)
	for attempt := 1; ; attempt++ {
		output, startErr, waitErr = runtest(ctx, opts, addr, unit, svc)
		if startErr != "" {
			return []compat.Result{unitErr(startErr, "")}, nil
		}
		if attempt == 3 || !strings.Contains(output, "couldn't open socket: address already in use") {
			break
		}
	}
	p := Parse(output, unit)
	results := p.Results

	serverDied := false
	wait := time.Duration(0)
	if p.Exception != "" || !p.Done {
		// runtest may notice a dead server before the target reports
		// it: give the target a moment, to name the right cause.
		wait = time.Second
	}
	select {
	case <-svc.Done():
		serverDied = ctx.Err() == nil
	case <-time.After(wait):
	}
	switch {
	case serverDied:
		exit, _ := svc.Exit()
		results = append(results, unitErr(fmt.Sprintf("server ended in the middle of the unit (%s) after %d tests reported; the rest did not run", exit, len(p.Results)),
			tail(output, 30)+"\n--- server log ---\n"+tail(serverLog.String(), 30)))
	case ctx.Err() != nil:
		results = append(results, unitErr(fmt.Sprintf("unit timed out after %v with %d tests reported; the rest did not run", opts.Timeout, len(p.Results)),
			tail(output, 30)))
	case p.Exception != "":
		first, _, _ := strings.Cut(p.Exception, "\n")
		results = append(results, unitErr("exception: "+first, p.Exception))
	case !p.Done:
		results = append(results, unitErr(fmt.Sprintf("runtest ended (%v) before the unit did", waitErr), tail(output, 30)))
	}
	return results, nil
}

// runtest runs test_helper.tcl on unit against the server at addr, and
// stops it shortly after the server ends (runtest could wait forever for
// a reply). It returns the output, why it could not start (empty if it
// did) and how test_helper exited.
func runtest(ctx context.Context, opts Options, addr, unit string, svc *runners.Service) (output, startErr string, waitErr error) {
	host, port, _ := strings.Cut(addr, ":")
	base, err := freeBasePort()
	if err != nil {
		return "", "no free port for runtest's test server: " + err.Error(), nil
	}
	args := []string{"tests/test_helper.tcl", "--host", host, "--port", port, "--single", unit,
		"--baseport", strconv.Itoa(base), "--portcount", "100"}
	args = append(args, opts.Args...)
	cmd := exec.CommandContext(ctx, opts.Tclsh, args...)
	cmd.Dir = opts.Suite
	var out units.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// test_helper starts test clients of its own: kill the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return "", fmt.Sprintf("runtest did not start: %s: %v", opts.Tclsh, err), nil
	}
	exited := make(chan struct{})
	go func() {
		select {
		case <-svc.Done():
			select {
			case <-time.After(3 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			case <-exited:
			}
		case <-exited:
		}
	}()
	waitErr = cmd.Wait()
	close(exited)
	return out.String(), "", waitErr
}

// freeBasePort finds a --baseport for test_helper: it takes its test
// server's port from the 32 below it, first the lowest, and also wants
// that port+10000 free. Both are checked here.
func freeBasePort() (int, error) {
	var last error
	for i := 0; i < 50; i++ {
		p := 15000 + mrand.IntN(20000)
		a, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			last = err
			continue
		}
		b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		a.Close()
		if err != nil {
			last = err
			continue
		}
		b.Close()
		return p + 32, nil
	}
	return 0, last
}

// waitReady polls PING on addr until PONG, the service ends, ctx ends or
// limit passes. It polls every few milliseconds: a server is usually up
// within tens of them.
func waitReady(ctx context.Context, svc *runners.Service, addr string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second,
		MaxRetries: -1, PoolSize: 1, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	var last error
	for {
		pong, err := c.Ping(ctx).Result()
		if err == nil && pong == "PONG" {
			return nil
		}
		last = err
		select {
		case <-svc.Done():
			return fmt.Errorf("server ended (last PING: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("no PONG from %s within %v (last PING: %v)", addr, limit, last)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// exitIfDone returns the service's exit if it has ended.
func exitIfDone(svc *runners.Service) (*runners.Exit, error) {
	select {
	case <-svc.Done():
		e, err := svc.Exit()
		return &e, err
	default:
		return nil, nil
	}
}
