package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/compat-project/compat/adapters/internal/shim"
)

// ShimMain runs redis-server.wasm in the vkernel as a native redis-server
// (or redis-check-aof, redis-check-rdb: the same binary, chosen by argv[0])
// runs, for runtest's own servers (the suite's src/redis-server). argv is
// the command line, argv[0] naming the program. It returns the exit status.
//
// What a native redis-server does and the shim stands in for:
//   - listening: the configuration's port on each bind address, and its
//     unixsocket, are bound on the host and handed to the instance, which
//     takes them by address and path. "*" and "::*" bind loopback only
//     (127.0.0.1, ::1): the suite's clients connect there. A port in use
//     is reported in Redis' own words ("Failed listening on port"), so
//     that runtest tries another;
//   - the working directory: the instance starts in the shim's, mounted at
//     its host path, so relative paths in the configuration ("dir
//     ./tests/tmp/server.1") mean what they mean natively;
//   - the pid: the instance reports the shim's (INFO process_id, the
//     "PID:" runtest waits for), and signals sent to it reach the
//     instance: TERM, INT, HUP, USR1 and USR2 through the vkernel's signal
//     delivery, so SIGTERM is Redis' own orderly shutdown; KILL, STOP and
//     CONT act on the shim process itself.
//
// The megabinary, its key and the build come from the environment the
// scripts of VkernelPrograms set (shim.Config).
func ShimMain(argv []string, stdout, stderr io.Writer) int {
	code, err := shimRun(argv, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s (compat redis shim): %v\n", progName(argv), err)
		return 1
	}
	return code
}

func progName(argv []string) string {
	if len(argv) == 0 {
		return "redis-server"
	}
	return filepath.Base(argv[0])
}

// serverOptions is what the shim reads of a redis-server command line.
type serverOptions struct {
	port       int
	binds      []string // as configured, "-" prefix included
	unixSocket string
	dir        string
	configFile string // absolute, or ""
	info       bool   // --version, --help, --test-memory...: no listeners
}

// readServerOptions reads the configuration file (argv[1] unless it is an
// option) and the "--name value..." options after it, as redis-server
// does: later settings win.
func readServerOptions(args []string) (*serverOptions, error) {
	o := &serverOptions{port: 6379, binds: []string{"*", "-::*"}}
	if len(args) > 0 {
		switch args[0] {
		case "-v", "--version", "-h", "--help", "--test-memory", "--check-system":
			o.info = true
			return o, nil
		}
	}
	var lines []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, err := filepath.Abs(args[0])
		if err != nil {
			return nil, err
		}
		text, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading the configuration file: %w", err)
		}
		o.configFile = name
		lines = strings.Split(string(text), "\n")
		args = args[1:]
	}
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--"):
			lines = append(lines, a[2:])
		case len(lines) > 0:
			lines[len(lines)-1] += " " + quoteArg(a)
		}
	}
	for _, line := range lines {
		words, err := splitArgs(line)
		if err != nil {
			return nil, fmt.Errorf("configuration line %q: %w", line, err)
		}
		if len(words) == 0 || strings.HasPrefix(words[0], "#") {
			continue
		}
		switch name, vals := strings.ToLower(words[0]), words[1:]; {
		case name == "port" && len(vals) == 1:
			p, err := strconv.Atoi(vals[0])
			if err != nil || p < 0 || p > 65535 {
				return nil, fmt.Errorf("invalid port %q", vals[0])
			}
			o.port = p
		case name == "bind" && len(vals) > 0:
			o.binds = vals
		case name == "unixsocket" && len(vals) == 1:
			o.unixSocket = vals[0]
		case name == "dir" && len(vals) == 1:
			o.dir = vals[0]
		}
	}
	return o, nil
}

// quoteArg quotes a command-line value for splitArgs, as redis-server
// quotes its "--name value" options into configuration lines.
func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	return strconv.Quote(s)
}

// splitArgs splits a configuration line into words: spaces separate them,
// "double quotes" take backslash escapes, 'single quotes' are literal.
func splitArgs(line string) ([]string, error) {
	var words []string
	i := 0
	for {
		for i < len(line) && strings.IndexByte(" \t\r", line[i]) >= 0 {
			i++
		}
		if i == len(line) {
			return words, nil
		}
		var w strings.Builder
		switch line[i] {
		case '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' {
					j++
				}
			}
			if j >= len(line) {
				return nil, errors.New("unbalanced quotes")
			}
			s, err := strconv.Unquote(line[i : j+1])
			if err != nil {
				s = line[i+1 : j]
			}
			w.WriteString(s)
			i = j + 1
		case '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unbalanced quotes")
			}
			w.WriteString(line[i+1 : i+1+j])
			i += j + 2
		default:
			for i < len(line) && strings.IndexByte(" \t\r", line[i]) < 0 {
				w.WriteByte(line[i])
				i++
			}
		}
		words = append(words, w.String())
	}
}

// loopbackFor maps a bind address to the host address the shim binds.
func loopbackFor(addr string) string {
	switch addr {
	case "*", "0.0.0.0":
		return "127.0.0.1"
	case "::*", "::":
		return "::1"
	case "localhost":
		return "127.0.0.1"
	}
	return addr
}

// listen binds what o asks for. A required address that cannot be bound
// ends the start as redis-server ends it, in its log (stdout).
func (o *serverOptions) listen(stdout io.Writer) ([]net.Listener, bool) {
	var ls []net.Listener
	fail := func() ([]net.Listener, bool) {
		for _, l := range ls {
			l.Close()
		}
		return nil, false
	}
	if o.port != 0 {
		for _, b := range o.binds {
			optional := strings.HasPrefix(b, "-")
			addr := loopbackFor(strings.TrimPrefix(b, "-"))
			l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(o.port)))
			if err != nil {
				if optional {
					continue
				}
				fmt.Fprintf(stdout, "%d:M # Warning: Could not create server TCP listening socket %s:%d: %v\n", os.Getpid(), addr, o.port, errors.Unwrap(err))
				fmt.Fprintf(stdout, "%d:M # Failed listening on port %d (TCP), aborting.\n", os.Getpid(), o.port)
				return fail()
			}
			ls = append(ls, l)
		}
	}
	if o.unixSocket != "" {
		path := o.unixSocket
		os.Remove(path) // as redis-server does before it binds
		l, err := net.Listen("unix", path)
		if err != nil {
			fmt.Fprintf(stdout, "%d:M # Failed opening Unix socket: %v\n", os.Getpid(), err)
			return fail()
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false) // the instance removes it
		ls = append(ls, l)
	}
	return ls, true
}

func shimRun(argv []string, stdout, stderr io.Writer) (int, error) {
	cfg, err := shim.FromEnv()
	if err != nil {
		return 0, err
	}
	name := progName(argv)
	args := argv[min(1, len(argv)):]
	cwd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	mounts := shim.AddDir(cfg.Mounts, cwd)
	var listeners []net.Listener
	if name == "redis-server" {
		o, err := readServerOptions(args)
		if err != nil {
			return 0, err
		}
		if o.configFile != "" {
			mounts = shim.AddDir(mounts, filepath.Dir(o.configFile))
		}
		mounts = shim.AddDir(mounts, o.dir)
		if o.unixSocket != "" {
			mounts = shim.AddDir(mounts, filepath.Dir(o.unixSocket))
		}
		if !o.info {
			ls, ok := o.listen(stdout)
			if !ok {
				return 1, nil
			}
			listeners = ls
			defer func() {
				for _, l := range ls {
					l.Close()
				}
			}()
		}
	} else {
		// redis-check-aof, redis-check-rdb: their file arguments.
		for _, a := range args {
			if filepath.IsAbs(a) {
				mounts = shim.AddDir(mounts, filepath.Dir(a))
			}
		}
	}

	ctx := context.Background()
	k, err := shim.Open(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer k.Close()

	// Redis handles these itself (SIGTERM and SIGINT: its orderly
	// shutdown), so they reach the instance as they come.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	return k.Run(ctx, shim.Instance{
		Args:       append([]string{name}, args...),
		Env:        []string{"PWD=" + cwd},
		Stdin:      os.Stdin,
		Stdout:     stdout,
		Stderr:     stderr,
		Mounts:     mounts,
		Listeners:  listeners,
		Signals:    sigs,
		TrapReport: name + ": ",
	})
}
