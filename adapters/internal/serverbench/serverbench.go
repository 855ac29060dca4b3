// Package serverbench compares a server's wasm build in the vkernel with
// the host's native build of the same version under the same load (compat
// bench redis, compat bench nginx). Each side is a process of its own
// serving on loopback: the vkernel side a compat exec process handed its
// listening socket (-listen-fd), as the vkernel target runs every guest,
// the native side the host's program. The load generator (redis-benchmark,
// wrk) runs against each in turn, test by test, alternating which side goes
// first, so both see the same machine; the figures are the generator's own
// and the server process's CPU time per request, which a busy machine
// disturbs far less than throughput.
package serverbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/compat-project/compat/runners"
)

// Vkernel describes the vkernel side: a compat exec process running a
// build from a signed megabinary.
type Vkernel struct {
	// Exec is the command that runs compat exec, such as
	// {"/usr/bin/compat", "exec"}.
	Exec []string
	// Megabinary and PublicKey are the signed megabinary and its key.
	Megabinary, PublicKey string
	// Cache is the cache root holding the AOT code ("" compat exec's
	// default).
	Cache string
	// Entry is the manifest entry to load (compat exec -entry).
	Entry string
	// Wasm is the file the exec is routed by.
	Wasm string
	// Mounts are compat exec -mount values (GUEST=HOST[:ro]).
	Mounts []string
	// CPUProfile, when set, is where compat exec writes a Go CPU profile
	// of the vkernel process (-cpuprofile).
	CPUProfile string
}

// Server is one side's server process.
type Server struct {
	// Name is "native" or "vkernel".
	Name string
	// Addr is the loopback address it serves on, host:port.
	Addr string
	// Command is the command line that started it.
	Command string

	cmd  *exec.Cmd
	log  *tailBuffer
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

// StartVkernel starts v's build as a compat exec process serving on a new
// loopback listener; args returns the guest's arguments after argv[0] for
// the port it serves on.
func StartVkernel(v Vkernel, args func(port int) []string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("vkernel server: listening on loopback: %w", err)
	}
	f, err := l.(*net.TCPListener).File()
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // the duplicate in f keeps the socket listening
	if err != nil {
		return nil, fmt.Errorf("vkernel server: %w", err)
	}
	defer f.Close()
	argv := append([]string(nil), v.Exec[1:]...)
	argv = append(argv, "-megabinary", v.Megabinary, "-pubkey", v.PublicKey, "-listen-fd", "3")
	if v.Cache != "" {
		argv = append(argv, "-cache", v.Cache)
	}
	if v.Entry != "" {
		argv = append(argv, "-entry", v.Entry)
	}
	for _, m := range v.Mounts {
		argv = append(argv, "-mount", m)
	}
	if v.CPUProfile != "" {
		argv = append(argv, "-cpuprofile", v.CPUProfile)
	}
	argv = append(argv, v.Wasm)
	argv = append(argv, args(port)...)
	cmd := exec.Command(v.Exec[0], argv...)
	cmd.ExtraFiles = []*os.File{f}
	return start("vkernel", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd)
}

// StartNative starts the host's program at path on a free loopback port;
// args returns its arguments for that port.
func StartNative(path string, args func(port int) []string) (*Server, error) {
	if _, err := exec.LookPath(path); err != nil {
		return nil, fmt.Errorf("native server: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("native server: %w", err)
	}
	return start("native", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exec.Command(path, args(port)...))
}

func start(name, addr string, cmd *exec.Cmd) (*Server, error) {
	s := &Server{Name: name, Addr: addr, Command: runners.QuoteCommand(cmd.Args...), cmd: cmd, log: &tailBuffer{max: 16 << 10}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// A process group of its own: a Ctrl-C at the terminal reaches the
	// benchmark, which stops the servers itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s server: starting %s: %w", name, cmd.Path, err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// freePort returns a loopback port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitReady calls probe until it succeeds, the server exits or timeout
// passes.
func (s *Server) WaitReady(ctx context.Context, timeout time.Duration, probe func(addr string) error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := probe(s.Addr)
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s server exited before it answered (%v): %s\n%s", s.Name, s.err, s.Command, s.log.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s server did not answer on %s in %s: %v: %s\n%s", s.Name, s.Addr, timeout, err, s.Command, s.log.String())
		}
	}
}

// Alive returns an error when the server has exited.
func (s *Server) Alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("%s server exited (%v): %s\n%s", s.Name, s.err, s.Command, s.log.String())
	default:
		return nil
	}
}

// CPU returns the CPU time the server process has used so far, user and
// system, all its threads: to the nanosecond from the scheduler's
// statistics when the kernel keeps them (/proc/PID/task/*/schedstat, of
// the threads alive: servers keep theirs), else in clock ticks.
func (s *Server) CPU() (time.Duration, error) {
	if d, err := threadsCPU(s.cmd.Process.Pid); err == nil {
		return d, nil
	}
	return processCPU(s.cmd.Process.Pid)
}

// threadsCPU sums the first field of each thread's schedstat: its time on
// a CPU, in nanoseconds.
func threadsCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/schedstat")
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread ended
		}
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: empty", pid, t.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: %w", pid, t.Name(), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// Stop ends the server: SIGTERM (compat exec writes its profile and dies
// of it; Redis and NGINX shut down), SIGKILL after 10 s.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, 100 on every
// Linux architecture compat runs on.
const clockTick = 10 * time.Millisecond

// processCPU reads utime + stime of pid from /proc (the whole process,
// threads that ended included).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from after ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no \")\" in %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// Figure is one side's result in one test.
type Figure struct {
	// PerSecond is the load generator's requests per second.
	PerSecond float64 `json:"req_per_s"`
	// P50 and P99 are its latency percentiles, in milliseconds (0 when
	// it reports none).
	P50 float64 `json:"p50_ms,omitempty"`
	P99 float64 `json:"p99_ms,omitempty"`
	// Requests is how many requests completed.
	Requests int64 `json:"requests"`
	// Errors counts failed requests (wrk's socket errors and non-2xx
	// answers).
	Errors int64 `json:"errors,omitempty"`
	// CPUPerRequest is the server process's CPU time (user + system)
	// over the test divided by Requests, in microseconds.
	CPUPerRequest float64 `json:"cpu_us_per_req"`
}

// Row is one test on both sides.
type Row struct {
	Test    string `json:"test"`
	Native  Figure `json:"native"`
	Vkernel Figure `json:"vkernel"`
	// Ratio is vkernel requests per second over native (1: as fast).
	Ratio float64 `json:"ratio"`
	// CPURatio is vkernel CPU per request over native (1: as cheap).
	CPURatio float64 `json:"cpu_ratio"`
}

// Report is a comparison's result.
type Report struct {
	// Server names the program and its version ("redis-server 7.0.15").
	Server string `json:"server"`
	// Load is the load generator's command, with the server's address
	// left out.
	Load string `json:"load"`
	// Native and Vkernel are the commands that started each side.
	Native  string `json:"native"`
	Vkernel string `json:"vkernel"`
	Rows    []Row  `json:"rows"`
}

// Test is one load to put on each side in turn: run returns the load
// generator's figures against addr (CPUPerRequest is filled in by
// Compare).
type Test struct {
	Name string
	Run  func(ctx context.Context, addr string) (Figure, error)
}

// Compare runs each test against both servers, alternating which goes
// first, and returns a row per test.
func Compare(ctx context.Context, native, vk *Server, tests []Test) ([]Row, error) {
	var rows []Row
	for i, t := range tests {
		sides := []*Server{native, vk}
		if i%2 == 1 {
			sides[0], sides[1] = vk, native
		}
		figs := map[*Server]Figure{}
		for _, s := range sides {
			f, err := measure(ctx, s, t)
			if err != nil {
				return rows, err
			}
			figs[s] = f
		}
		r := Row{Test: t.Name, Native: figs[native], Vkernel: figs[vk]}
		if r.Native.PerSecond > 0 {
			r.Ratio = r.Vkernel.PerSecond / r.Native.PerSecond
		}
		if r.Native.CPUPerRequest > 0 {
			r.CPURatio = r.Vkernel.CPUPerRequest / r.Native.CPUPerRequest
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func measure(ctx context.Context, s *Server, t Test) (Figure, error) {
	before, err := s.CPU()
	if err != nil {
		return Figure{}, fmt.Errorf("%s %s: %w", s.Name, t.Name, err)
	}
	f, err := t.Run(ctx, s.Addr)
	if err == nil {
		err = s.Alive()
	}
	if err != nil {
		return f, fmt.Errorf("%s on the %s server: %w", t.Name, s.Name, err)
	}
	after, err := s.CPU()
	if err != nil {
		return f, fmt.Errorf("%s %s: %w", s.Name, t.Name, err)
	}
	if f.Requests > 0 {
		f.CPUPerRequest = float64(after-before) / float64(time.Microsecond) / float64(f.Requests)
	}
	return f, nil
}

// Write prints the report as a table.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "%s: %s\n", r.Server, r.Load)
	fmt.Fprintf(w, "  native:  %s\n  vkernel: %s\n\n", r.Native, r.Vkernel)
	fmt.Fprintf(w, "%-22s %12s %12s %7s   %12s %12s %7s\n", "test", "native/s", "vkernel/s", "ratio", "native cpu", "vkernel cpu", "ratio")
	for _, row := range r.Rows {
		fmt.Fprintf(w, "%-22s %12.0f %12.0f %6.2fx   %9.1f µs %9.1f µs %6.2fx\n", row.Test,
			row.Native.PerSecond, row.Vkernel.PerSecond, row.Ratio,
			row.Native.CPUPerRequest, row.Vkernel.CPUPerRequest, row.CPURatio)
	}
	for _, row := range r.Rows {
		if row.Native.Errors+row.Vkernel.Errors > 0 {
			fmt.Fprintf(w, "%s: failed requests: native %d, vkernel %d\n", row.Test, row.Native.Errors, row.Vkernel.Errors)
		}
	}
	fmt.Fprintln(w, "\nratio: vkernel over native (req/s: higher is better; cpu: server CPU per request, lower is better)")
}

// Run runs the load generator's command and returns its standard output;
// a failure says what ran and what it printed.
func Run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), nil
}
