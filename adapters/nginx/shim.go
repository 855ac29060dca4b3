package nginx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/compat-project/compat/adapters/internal/shim"
	"github.com/compat-project/compat/vkernel"
	"golang.org/x/sys/unix"
)

// envChild marks the background process of "daemon on".
const envChild = "COMPAT_NGINX_SHIM_CHILD"

// Compiled-in defaults of nginx.wasm (images/nginx/build-wasm.sh), which
// are Debian's.
const (
	defaultPrefix = "/usr/share/nginx/"
	defaultConf   = "/etc/nginx/nginx.conf"
	defaultPid    = "/run/nginx.pid"
	// tempGuest holds the compiled-in temp paths (/var/lib/nginx/body...).
	tempGuest = "/var/lib/nginx"
)

// startTimeout bounds how long the foreground process of "daemon on" waits
// for the instance to write its pid file.
const startTimeout = 30 * time.Second

// ShimMain runs nginx.wasm in the vkernel as a native nginx binary runs,
// for harnesses that start nginx themselves (Test::Nginx, nginx-tests:
// their TEST_NGINX_BINARY). args are nginx's own command-line arguments
// (-p, -c, -e, -g, -t, -T, -q, -v, -V, -s). It returns the exit status.
//
// What a native nginx does and the shim stands in for:
//   - listening: every "listen" address of the configuration (and -g) is
//     bound on the host, on loopback, and handed to the instance, which
//     matches the sockets to its directives by address;
//   - "daemon on" (nginx's default): the shim starts itself again in the
//     background, waits until the instance has written its pid file, and
//     exits 0, or with the instance's status if it stops first;
//   - the pid file holds the pid of the shim process that runs the
//     instance (nginx.wasm writes VKERNEL_HOST_PID), and signals sent to
//     it reach the instance: QUIT, TERM, INT and USR1 through the
//     vkernel's signal delivery, where nginx's own signal handler acts on
//     them as in its single-process cycle (QUIT and TERM exit and remove
//     the pid file, USR1 reopens the logs). HUP (reload) is passed on as
//     QUIT and a new instance started, which reads the configuration
//     again and takes over the same listening sockets, so connections
//     waiting in their queues are served by the new one. An instance that
//     has not exited 10 s after QUIT or TERM is ended;
//   - -s stop|quit|reload|reopen signals the pid in the pid file.
//
// The guest sees the prefix directory, the configuration's directory and
// the extra mounts of its environment (shim.Config, which PrepareShim's
// script sets) at their host paths, and a private directory at
// /var/lib/nginx for the compiled-in temp paths.
//
// self is the command that runs the shim again with nginx's arguments
// appended, such as {"/usr/bin/compat", "nginx-shim"}: "daemon on" needs it.
func ShimMain(self, args []string, stdout, stderr io.Writer) int {
	s := &launcher{self: self, stdout: stdout, stderr: stderr}
	if err := s.main(args); err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			return int(ex)
		}
		fmt.Fprintf(stderr, "nginx: [emerg] %v\n", err)
		// As nginx, say it in the -e error log too: harnesses read it.
		if cl, perr := parseCmdline(args); perr == nil && cl.errLog != "" && cl.errLog != "stderr" {
			if f, ferr := os.OpenFile(cl.errLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); ferr == nil {
				fmt.Fprintf(f, "%s [emerg] %d#0: %v\n", time.Now().Format("2006/01/02 15:04:05"), os.Getpid(), err)
				f.Close()
			}
		}
		return 1
	}
	return 0
}

// exitError is an exit status to pass on without a message.
type exitError int

func (e exitError) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// launcher is one shim process: the command that starts it again (for
// "daemon on") and where its own messages go.
type launcher struct {
	self           []string
	stdout, stderr io.Writer
}

// cmdline is nginx's command line as the shim reads it.
type cmdline struct {
	args    []string // as given, passed on to nginx.wasm
	prefix  string   // -p, or the compiled-in prefix
	conf    string   // -c resolved against the prefix
	errLog  string   // -e resolved against the prefix, "" or "stderr"
	globals string   // -g
	signal  string   // -s
	info    bool     // -v, -V, -h, -?, -t, -T: runs to completion, no listeners
}

// parseCmdline reads nginx's options, in either form ("-p DIR", "-pDIR").
func parseCmdline(args []string) (*cmdline, error) {
	c := &cmdline{args: args, prefix: defaultPrefix}
	conf := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' {
			return nil, fmt.Errorf("invalid option: %q", a)
		}
		for j := 1; j < len(a); j++ {
			switch opt := a[j]; opt {
			case 'v', 'V', 'h', '?', 't', 'T':
				c.info = true
			case 'q':
			case 'p', 'c', 'e', 'g', 's':
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("option \"-%c\" requires %s", opt, map[byte]string{'p': "directory name", 'c': "file name", 'e': "file name", 'g': "parameter", 's': "parameter"}[opt])
					}
					i++
					val = args[i]
				}
				switch opt {
				case 'p':
					c.prefix = val
				case 'c':
					conf = val
				case 'e':
					c.errLog = val
				case 'g':
					c.globals = val
				case 's':
					c.signal = val
				}
				j = len(a)
			default:
				return nil, fmt.Errorf("invalid option: \"%s\"", a[j:])
			}
		}
	}
	if !strings.HasSuffix(c.prefix, "/") {
		c.prefix += "/"
	}
	if c.errLog != "" && c.errLog != "stderr" && !filepath.IsAbs(c.errLog) {
		c.errLog = filepath.Join(c.prefix, c.errLog)
	}
	switch {
	case conf == "":
		c.conf = defaultConf
	case filepath.IsAbs(conf):
		c.conf = conf
	default:
		c.conf = filepath.Join(c.prefix, conf)
	}
	return c, nil
}

// inPrefix resolves a path of the configuration as nginx does.
func (c *cmdline) inPrefix(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.prefix, p)
}

func (s *launcher) main(args []string) error {
	cl, err := parseCmdline(args)
	if err != nil {
		return err
	}
	if cl.info {
		return s.run(cl, nil)
	}
	text, err := os.ReadFile(cl.conf)
	if err != nil {
		return fmt.Errorf("open() %q failed: %w", cl.conf, err)
	}
	sc, err := readServerConf(string(text), cl.globals, filepath.Dir(cl.conf))
	if err != nil {
		sc = scanServerConf(string(text), cl.globals)
	}
	pidFile := cl.inPrefix(defaultPid)
	if sc.Pid != "" {
		pidFile = cl.inPrefix(sc.Pid)
	}
	if cl.signal != "" {
		return s.signal(cl.signal, pidFile)
	}
	if sc.Daemon && os.Getenv(envChild) == "" {
		return s.daemon(args, pidFile)
	}
	return s.run(cl, &server{conf: sc, text: string(text), pidFile: pidFile})
}

// server is what a serving instance needs beyond its command line: its
// configuration as read and its text, and the pid file's path.
type server struct {
	conf    *serverConf
	text    string
	pidFile string
}

// signal is "nginx -s": it signals the pid in the pid file.
func (s *launcher) signal(name, pidFile string) error {
	sig, ok := map[string]syscall.Signal{"stop": syscall.SIGTERM, "quit": syscall.SIGQUIT, "reopen": syscall.SIGUSR1, "reload": syscall.SIGHUP}[name]
	if !ok {
		return fmt.Errorf("invalid option: \"-s %s\"", name)
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("kill(%d, %d) failed: %w", pid, sig, err)
	}
	return nil
}

func readPid(pidFile string) (int, error) {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf("open() %q failed: %w", pidFile, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("invalid PID number %q in %q", strings.TrimSpace(string(data)), pidFile)
	}
	return pid, nil
}

// daemon starts the shim again in its own session and waits until the
// instance has written its pid (the child's) to the pid file.
func (s *launcher) daemon(args []string, pidFile string) error {
	if len(s.self) == 0 {
		return errors.New(`"daemon on" needs the shim's own command (ShimMain's self)`)
	}
	cmd := exec.Command(s.self[0], append(append([]string(nil), s.self[1:]...), args...)...)
	cmd.Env = append(os.Environ(), envChild+"=1")
	// The child keeps stderr until the instance runs, as nginx does before
	// it redirects stderr to its error log; stdout is dropped.
	cmd.Stderr = s.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the background instance (%s): %w", s.self[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	want := cmd.Process.Pid
	deadline := time.After(startTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return exitError(ee.ExitCode())
			}
			if err != nil {
				return err
			}
			return exitError(1)
		case <-deadline:
			_ = cmd.Process.Kill()
			return fmt.Errorf("the instance did not write its pid %d to %s in %s", want, pidFile, startTimeout)
		case <-tick.C:
			if pid, err := readPid(pidFile); err == nil && pid == want {
				// Detach: the child runs on after this process exits.
				_ = cmd.Process.Release()
				return nil
			}
		}
	}
}

// run runs one instance in the foreground: to completion for -v/-t and
// the like (srv nil), or serving until it exits or is signalled.
func (s *launcher) run(cl *cmdline, srv *server) error {
	cfg, err := shim.FromEnv()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)

	// The listeners by address; they outlive an instance (the vkernel
	// hands over duplicates), so a reload keeps the sockets and their
	// queued connections.
	bound := map[string]net.Listener{}
	defer func() {
		for _, l := range bound {
			l.Close()
		}
	}()
	listen := func(conf *serverConf) ([]net.Listener, error) {
		var ls []net.Listener
		want := map[string]bool{}
		for _, addr := range conf.Listen {
			want[addr] = true
			l, ok := bound[addr]
			if !ok {
				var err error
				if l, err = listenLoopback(addr); err != nil {
					return nil, fmt.Errorf("bind() to %s failed: %w", addr, err)
				}
				bound[addr] = l
			}
			ls = append(ls, l)
		}
		for addr, l := range bound {
			if !want[addr] {
				l.Close()
				delete(bound, addr)
			}
		}
		return ls, nil
	}
	var listeners []net.Listener
	if srv != nil {
		if listeners, err = listen(srv.conf); err != nil {
			return err
		}
	}
	mounts := shim.AddDir(cfg.Mounts, cl.prefix)
	mounts = shim.AddDir(mounts, filepath.Dir(cl.conf))

	// The pid file stays through reloads (pidfile.go): instances write a
	// private one, which is published at the real path.
	args := cl.args
	var copies []string
	instanceArgs := func(conf *serverConf, text string) []string {
		a, copied, ok, err := privatePid(cl, conf, text)
		if err != nil {
			fmt.Fprintf(s.stderr, "nginx: [warn] %v: the pid file may be missing during reloads\n", err)
			return cl.args
		}
		if copied != "" {
			copies = append(copies, copied)
		}
		if !ok {
			return cl.args
		}
		return a
	}
	defer func() {
		for _, c := range copies {
			os.Remove(c)
		}
	}()
	if srv != nil {
		runDir, err := os.MkdirTemp("", "compat-nginx-run-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(runDir)
		mounts = append(mounts, vkernel.Mount{Guest: shimRunGuest, Host: runDir})
		pub := &pidPublisher{private: filepath.Join(runDir, filepath.Base(shimPidGuest)), public: srv.pidFile}
		pubCtx, stopPub := context.WithCancel(context.Background())
		published := make(chan struct{})
		go func() { defer close(published); pub.run(pubCtx) }()
		defer func() {
			// Last of all: nothing may publish the pid again once the
			// file is removed, as nginx removes it when it exits.
			stopPub()
			<-published
			removeOwnPid(srv.pidFile)
		}()
		args = instanceArgs(srv.conf, srv.text)
	}
	if _, ok := vkernel.HostPath(mounts, tempGuest); !ok {
		tmp, err := os.MkdirTemp("", "compat-nginx-var-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		mounts = append(mounts, vkernel.Mount{Guest: tempGuest, Host: tmp})
	}

	k, err := shim.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer k.Close()

	var (
		guest  chan os.Signal
		reload atomic.Bool
	)
	if srv != nil {
		host := make(chan os.Signal, 8)
		signal.Notify(host, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
		defer signal.Stop(host)
		guest = make(chan os.Signal, 8)
		go s.relay(ctx, host, guest, &reload, cancel)
		if os.Getenv(envChild) != "" {
			go detachStderr(ctx, srv.pidFile)
		}
	}

	var code int
	for {
		code, err = k.Run(ctx, shim.Instance{
			Args:       append([]string{"nginx"}, args...),
			Stdout:     s.stdout,
			Stderr:     s.stderr,
			Mounts:     mounts,
			Listeners:  listeners,
			Signals:    guest,
			TrapReport: "nginx: [alert] ",
		})
		if err != nil || code != 0 || !reload.Swap(false) {
			break
		}
		// HUP: the instance quit; a new one reads the configuration again
		// and takes over the listeners.
		if text, rerr := os.ReadFile(cl.conf); rerr == nil {
			conf, perr := readServerConf(string(text), cl.globals, filepath.Dir(cl.conf))
			if perr != nil {
				conf = scanServerConf(string(text), cl.globals)
			}
			if ls, lerr := listen(conf); lerr == nil {
				listeners = ls
			} else {
				fmt.Fprintf(s.stderr, "nginx: [emerg] reload: %v\n", lerr)
			}
			args = instanceArgs(conf, string(text))
		}
	}
	switch {
	case errors.Is(err, errStopGrace):
		// The instance did not stop by itself in time and was ended;
		// its pid file goes as the shim exits (see above).
		return nil
	case err != nil:
		return err
	case code != 0:
		return exitError(code)
	}
	return nil
}

// listenLoopback listens on a loopback address. On a host with IPv6 off
// (no IPv6 address at all, as in a Docker container by default) [::1]
// cannot be bound, but nginx's "listen [::]:80" still binds the IPv6
// wildcard, which there can receive nothing: the shim does the same, so a
// configuration such as Debian's default site starts as it does natively.
func listenLoopback(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	host, port, _ := net.SplitHostPort(addr)
	if host != "::1" || hostHasIPv6() {
		return nil, err
	}
	return net.Listen("tcp6", net.JoinHostPort("::", port))
}

// hostHasIPv6 reports whether any interface has an IPv6 address.
func hostHasIPv6() bool {
	data, err := os.ReadFile("/proc/net/if_inet6")
	return err != nil || len(strings.TrimSpace(string(data))) > 0
}

// stopGrace is how long an instance may take to exit after QUIT or TERM
// before the shim ends it.
const stopGrace = 10 * time.Second

// errStopGrace ends an instance still running stopGrace after QUIT or TERM.
var errStopGrace = errors.New("the instance did not exit in time after QUIT or TERM")

// relay passes the signals sent to the shim process (host) on to the
// instance (guest), whose nginx.wasm takes them with vkernel.proc_signals
// and runs nginx's own signal handler. HUP is passed on as QUIT, with
// reload set: nginx's single-process cycle cannot reconfigure in place
// (images/nginx/port/ngx_wasi.c says why), so the instance quits and run
// starts a new one on the same listeners. After QUIT, TERM or INT, an
// instance still running stopGrace later is ended through stop.
func (s *launcher) relay(ctx context.Context, host <-chan os.Signal, guest chan<- os.Signal, reload *atomic.Bool, stop context.CancelCauseFunc) {
	var (
		grace    <-chan time.Time
		stopping os.Signal
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-grace:
			fmt.Fprintf(s.stderr, "nginx: [alert] the instance did not exit %s after %v: ending it\n", stopGrace, stopping)
			stop(errStopGrace)
			return
		case sig := <-host:
			switch sig {
			case syscall.SIGHUP:
				reload.Store(true)
				sig = syscall.SIGQUIT
			case syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT:
				reload.Store(false)
				if grace == nil {
					grace, stopping = time.After(stopGrace), sig
				}
			}
			select {
			case guest <- sig:
			case <-ctx.Done():
				return
			}
		}
	}
}

// detachStderr is the background instance's half of "daemon on": once the
// instance has written its pid file, stderr (inherited from whoever started
// nginx) is pointed at /dev/null, as a native nginx daemon lets go of it,
// so a caller reading the stream to its end is not kept waiting.
func detachStderr(ctx context.Context, pidFile string) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if pid, err := readPid(pidFile); err == nil && pid == os.Getpid() {
			break
		}
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer null.Close()
	_ = unix.Dup3(int(null.Fd()), 2, 0)
}
