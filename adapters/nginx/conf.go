package nginx

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// directive is one simple directive of an nginx configuration: its name,
// its arguments and how deep in blocks it stands (0: main context).
type directive struct {
	name  string
	args  []string
	depth int
}

// parseConf splits an nginx configuration into its simple directives. It
// knows what the shim needs: comments, quoting, escapes, blocks. It does
// not follow "include" and does not expand variables (harnesses write them
// out already).
func parseConf(text string) ([]directive, error) {
	var (
		out   []directive
		words []string
		depth int
		line  = 1
	)
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == ';':
			if len(words) > 0 {
				out = append(out, directive{name: words[0], args: words[1:], depth: depth})
			}
			words = nil
			i++
		case c == '{':
			// A block directive ("http", "location /x"): its name is not
			// needed, only the depth.
			words = nil
			depth++
			i++
		case c == '}':
			if depth == 0 {
				return nil, fmt.Errorf("line %d: unexpected \"}\"", line)
			}
			words = nil
			depth--
			i++
		case c == '"' || c == '\'':
			var b strings.Builder
			i++
			for i < len(text) && text[i] != c {
				if text[i] == '\\' && i+1 < len(text) {
					i++
				}
				if text[i] == '\n' {
					line++
				}
				b.WriteByte(text[i])
				i++
			}
			if i == len(text) {
				return nil, fmt.Errorf("line %d: unterminated quoted string", line)
			}
			i++
			words = append(words, b.String())
		default:
			start := i
			// Inside a word "#" and quotes are plain characters, as for nginx.
			for i < len(text) && !strings.ContainsRune(" \t\r\n;{}", rune(text[i])) {
				switch {
				case text[i] == '\\' && i+1 < len(text):
					i += 2
				case text[i] == '$' && i+1 < len(text) && text[i+1] == '{':
					// "${var}": braces that are no block, as nginx reads them
					for i < len(text) && text[i] != '}' {
						i++
					}
					if i < len(text) {
						i++
					}
				default:
					i++
				}
			}
			words = append(words, text[start:i])
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unexpected end of file: %d block(s) not closed", depth)
	}
	if len(words) > 0 {
		return nil, fmt.Errorf("unexpected end of file: directive %q has no \";\"", words[0])
	}
	return out, nil
}

// serverConf is what the shim reads from an nginx configuration and the
// -g directives before it starts the instance.
type serverConf struct {
	// Daemon is the "daemon" setting (nginx's default: on).
	Daemon bool
	// Pid is the "pid" path as written, "" when not set; PidIn says
	// where it is set (pidInGlobals, pidInConf, pidInInclude).
	Pid, PidIn string
	// Listen holds the host addresses to listen on, one per distinct
	// "listen" socket, in order ("127.0.0.1:1984").
	Listen []string
}

// readServerConf reads the settings of conf and globals (-g), which nginx
// parses as part of the main context. With dir set (the configuration's
// directory, against which nginx resolves relative paths), "include"
// directives are followed, their patterns expanded as nginx does (glob);
// with dir "" they are not.
func readServerConf(conf, globals, dir string) (*serverConf, error) {
	sc := &serverConf{Daemon: true}
	seen := map[string]bool{}
	var read func(text string, depth, nesting int, where string) error
	read = func(text string, depth, nesting int, where string) error {
		ds, err := parseConf(text)
		if err != nil {
			return err
		}
		for _, d := range ds {
			main := d.depth+depth == 0
			switch {
			case d.name == "daemon" && main && len(d.args) == 1:
				sc.Daemon = d.args[0] == "on"
			case d.name == "pid" && main && len(d.args) == 1:
				sc.Pid, sc.PidIn = d.args[0], where
			case d.name == "listen" && len(d.args) > 0 && !listenUDP(d.args[1:]):
				addr, err := listenAddr(d.args[0])
				if err != nil {
					return err
				}
				if addr != "" && !seen[addr] {
					seen[addr] = true
					sc.Listen = append(sc.Listen, addr)
				}
			case d.name == "include" && len(d.args) == 1 && dir != "":
				if nesting == maxIncludeNesting {
					return fmt.Errorf("include %q: includes nested more than %d deep", d.args[0], maxIncludeNesting)
				}
				pattern := d.args[0]
				if !filepath.IsAbs(pattern) {
					pattern = filepath.Join(dir, pattern)
				}
				files, err := filepath.Glob(pattern)
				if err != nil {
					return fmt.Errorf("include %q: %w", d.args[0], err)
				}
				for _, f := range files {
					data, err := os.ReadFile(f)
					if err != nil {
						return fmt.Errorf("include %q: %w", d.args[0], err)
					}
					if err := read(string(data), depth+d.depth, nesting+1, pidInInclude); err != nil {
						return fmt.Errorf("in %s: %w", f, err)
					}
				}
			}
		}
		return nil
	}
	for i, text := range []string{conf, globals} {
		if err := read(text, 0, 0, []string{pidInConf, pidInGlobals}[i]); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// maxIncludeNesting bounds include chains (a file including itself).
const maxIncludeNesting = 16

// listenAddr turns the address of a "listen" directive into the loopback
// address the host listens on for it: a wildcard or a bare port is
// 127.0.0.1 (the port's nginx matches a wildcard listen to a handed-over
// socket by port), "localhost" is 127.0.0.1, and an address that is not
// loopback is refused: test instances listen on loopback only. UNIX
// sockets give "": nginx.wasm binds them itself, inside its mounts.
func listenAddr(arg string) (string, error) {
	if strings.HasPrefix(arg, "unix:") {
		return "", nil
	}
	host, port := "", ""
	switch {
	case strings.HasPrefix(arg, "["):
		end := strings.Index(arg, "]")
		if end < 0 {
			return "", fmt.Errorf("listen %q: no \"]\"", arg)
		}
		host = arg[1:end]
		port = strings.TrimPrefix(arg[end+1:], ":")
	case strings.Contains(arg, ":"):
		host, port, _ = strings.Cut(arg, ":")
	default:
		if _, err := strconv.Atoi(arg); err == nil {
			port = arg
		} else {
			host = arg
		}
	}
	if port == "" {
		port = "80"
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("listen %q: bad port %q", arg, port)
	}
	switch host {
	case "", "*", "0.0.0.0", "localhost":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("listen %q: only loopback addresses can be served here (want 127.0.0.1, [::1], a bare port or a wildcard)", arg)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// listenUDP reports whether the parameters of a "listen" directive (after
// its address) make it a UDP listener (stream "listen 53 udp"). The shim
// binds none for it: nginx.wasm binds its UDP sockets itself, where the
// entry's resources.bind allows (loopback), and the shim hands over TCP
// listeners only (images/nginx/patches/nginx/wasi-port.patch).
func listenUDP(params []string) bool {
	return slices.Contains(params, "udp")
}

var (
	scanListen = regexp.MustCompile(`(?m)(?:^|[;{}])\s*listen\s+([^\s;]+)([^;]*)`)
	scanDaemon = regexp.MustCompile(`(?m)(?:^|[;{}])\s*daemon\s+(on|off)\s*;`)
	scanPid    = regexp.MustCompile(`(?m)(?:^|[;{}])\s*pid\s+([^\s;]+)\s*;`)
)

// scanServerConf is readServerConf for a configuration parseConf cannot
// read, such as one with *_by_lua_block bodies (Lua, not nginx syntax): it
// looks for the directives at the start of lines or after ";", "{", "}".
// nginx itself then reports whatever is wrong with the file.
func scanServerConf(conf, globals string) *serverConf {
	sc := &serverConf{Daemon: true}
	seen := map[string]bool{}
	for i, text := range []string{conf, globals} {
		for _, m := range scanDaemon.FindAllStringSubmatch(text, -1) {
			sc.Daemon = m[1] == "on"
		}
		for _, m := range scanPid.FindAllStringSubmatch(text, -1) {
			sc.Pid, sc.PidIn = m[1], []string{pidInConf, pidInGlobals}[i]
		}
		for _, m := range scanListen.FindAllStringSubmatch(text, -1) {
			if listenUDP(strings.Fields(m[2])) {
				continue
			}
			if addr, err := listenAddr(m[1]); err == nil && addr != "" && !seen[addr] {
				seen[addr] = true
				sc.Listen = append(sc.Listen, addr)
			}
		}
	}
	return sc
}
