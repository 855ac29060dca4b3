// Package redis drives Redis' own Tcl test suite against redis-server on
// a runners.Target, and turns what it reports into compat results. Its
// Suite is the runners.Suite of "compat run -suite redis", whose units run
// in two modes: external mode, for the unit/* entries, against one server
// per unit that the target serves; and spawn mode (units of kind "spawn"),
// for the integration/* entries, where runtest starts its own servers,
// several per unit, through the target's src/redis-server (ShimMain on the
// vkernel, opening the pipeline's megabinary).
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
// with its command. The Suite runs it as the unit "differential" on every
// target against the host's own redis-server.
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

	"github.com/compat-project/compat/runners"
)

// Name is the suite's name in reports and baselines, and of every result
// this package produces.
const Name = "redis"

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

// runExternal serves a fresh server on the session's target, runs one unit
// against it with test_helper.tcl on the host and reports its results.
func (ss *session) runExternal(ctx context.Context, unit string) runners.Report {
	var serverLog runners.Buffer
	process := func(port string) runners.Process {
		args := append([]string{"redis-server", "--port", port}, ServerArgs...)
		return runners.Process{Args: append(args, ss.serverArgs...), Stdout: &serverLog, Stderr: &serverLog}
	}
	server := process("PORT")
	rep := runners.Report{Command: ss.target.Command(server)}
	svc, err := ss.server.Serve(ctx, 1, func(ports []int) runners.Process {
		server = process(strconv.Itoa(ports[0]))
		return server
	})
	if err != nil {
		rep.Err = runners.TargetError(fmt.Errorf("server did not start: %w", err))
		return rep
	}
	defer svc.Close()
	addr := svc.Addrs()[0]
	rep.Command = ss.target.Command(server)

	if err := waitReady(ctx, svc, addr, startTimeout); err != nil {
		exit, serveErr := exitIfDone(svc)
		rep.Output = serverLog.String()
		switch {
		case ctx.Err() != nil:
			rep.Err = ctx.Err()
		case serveErr != nil:
			rep.Err = runners.TargetError(fmt.Errorf("serving the server: %w", serveErr))
		case exit != nil:
			rep.Err = fmt.Errorf("server exited before it answered PING: %s", exit)
		default:
			rep.Err = fmt.Errorf("server not ready: %w", err)
		}
		return rep
	}

	// test_helper listens on a port of its own for its test clients,
	// probing for a free one and closing it again; two runs starting at
	// once (parallel units, other processes) can still pick the same
	// port, so a run that could not open it is started again.
	var (
		output  string
		waitErr error
		cmdline []string
	)
	for attempt := 1; ; attempt++ {
		output, cmdline, waitErr, err = ss.runtest(ctx, addr, unit, svc)
		rep.Command = ss.target.Command(server) + "\n" + runners.QuoteCommand(append([]string{"cd", ss.suiteDir, "&&"}, cmdline...)...)
		if err != nil {
			rep.Err = runners.TargetError(err)
			return rep
		}
		if attempt == 3 || !strings.Contains(output, "couldn't open socket: address already in use") {
			break
		}
	}
	p := Parse(output, unit)
	rep.Results, rep.Output = p.Results, output

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
		rep.Err = fmt.Errorf("server ended in the middle of the unit (%s) after %d tests reported; the rest did not run", exit, len(p.Results))
		rep.Output = runners.Tail(output, 25, 4000) + "\n--- server log ---\n" + runners.Tail(serverLog.String(), 25, 4000)
	case ctx.Err() != nil:
		rep.Err = ctx.Err()
	case p.Exception != "":
		first, _, _ := strings.Cut(p.Exception, "\n")
		rep.Err = errors.New("exception: " + first)
		rep.Output = p.Exception
	case !p.Done:
		rep.Err = fmt.Errorf("runtest ended (%v) before the unit did", waitErr)
	}
	return rep
}

// startTimeout bounds the wait for a new server's PONG.
const startTimeout = 30 * time.Second

// runtest runs test_helper.tcl on unit against the server at addr, and
// stops it shortly after the server ends (runtest could wait forever for
// a reply). It returns the output, the command line, how test_helper
// exited and, when it could not start, why.
func (ss *session) runtest(ctx context.Context, addr, unit string, svc *runners.Service) (output string, cmdline []string, waitErr, startErr error) {
	host, port, _ := strings.Cut(addr, ":")
	base, err := freeBasePort()
	if err != nil {
		return "", nil, nil, fmt.Errorf("no free port for runtest's test server: %w", err)
	}
	args := []string{"tests/test_helper.tcl", "--host", host, "--port", port, "--single", unit,
		"--baseport", strconv.Itoa(base), "--portcount", "100"}
	args = append(args, ss.suite.args...)
	cmdline = append([]string{tclsh}, args...)
	cmd := exec.CommandContext(ctx, tclsh, args...)
	cmd.Dir = ss.suiteDir
	var out runners.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// test_helper starts test clients of its own: kill the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return "", cmdline, nil, fmt.Errorf("runtest did not start: %s: %w", tclsh, err)
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
	return out.String(), cmdline, waitErr, nil
}

// tclsh is the Tcl shell that runs the suite.
const tclsh = "tclsh"

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
