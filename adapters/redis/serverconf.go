package redis

// What the shim reads of a redis-server command line and configuration
// file: the sockets to bind for the instance and the directories to mount.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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

// listen binds what o asks for. When a required address cannot be bound
// it closes what it bound and returns the lines redis-server logs as it
// gives up, in its own words: runtest reads "Failed listening on port"
// and tries another port.
func (o *serverOptions) listen() ([]net.Listener, error) {
	var ls []net.Listener
	fail := func(format string, args ...any) ([]net.Listener, error) {
		for _, l := range ls {
			l.Close()
		}
		return nil, fmt.Errorf(format, args...)
	}
	pid := os.Getpid()
	if o.port != 0 {
		for _, b := range o.binds {
			optional := strings.HasPrefix(b, "-")
			addr := loopbackFor(strings.TrimPrefix(b, "-"))
			l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(o.port)))
			if err != nil {
				if optional {
					continue
				}
				return fail("%d:M # Warning: Could not create server TCP listening socket %s:%d: %v\n%d:M # Failed listening on port %d (TCP), aborting.\n",
					pid, addr, o.port, errors.Unwrap(err), pid, o.port)
			}
			ls = append(ls, l)
		}
	}
	if o.unixSocket != "" {
		path := o.unixSocket
		os.Remove(path) // as redis-server does before it binds
		l, err := net.Listen("unix", path)
		if err != nil {
			return fail("%d:M # Failed opening Unix socket: %v\n", pid, err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false) // the instance removes it
		ls = append(ls, l)
	}
	return ls, nil
}
