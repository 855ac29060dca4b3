// Package docker runs programs in Docker containers: the native reference
// builds the vkernel is compared with, and service containers (Redis,
// NGINX) that a test suite talks to over a port.
//
// A Target is one long-lived container (its entrypoint just sleeps) with
// the mounts bound in; Run is a docker exec in it, so starting a process
// costs milliseconds rather than a container start. Images are only ever
// taken from the local Docker: a missing image is an error telling to run
// `make images`, never a pull.
//
// Containers are removed on every way out: Close (which may be called any
// number of times) and PurgeAll for everything this process started
// (compat run calls it on its way out, after SIGINT and SIGTERM too). Each
// container carries the label
// compat.runner=1 so that leftovers of a killed process can be found with
// `docker ps -a --filter label=compat.runner`.
//
// Ports are published only when asked for (Target.Serve), and then only on
// 127.0.0.1: dockertest publishes every exposed port on all interfaces by
// default, which this package switches off.
package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
)

// Label marks every container this package starts.
const Label = "compat.runner"

// container is one running container and how to remove it once.
type container struct {
	pool     *dockertest.Pool
	res      *dockertest.Resource
	image    string
	imageID  string
	once     sync.Once
	purgeErr error
}

func (c *container) purge() error {
	c.once.Do(func() {
		live.Lock()
		delete(live.set, c)
		live.Unlock()
		c.purgeErr = c.pool.Purge(c.res)
		var missing *dc.NoSuchContainer
		if errors.As(c.purgeErr, &missing) {
			c.purgeErr = nil // already gone: the goal is met
		}
		if c.purgeErr != nil {
			c.purgeErr = fmt.Errorf("removing container %.12s of %s: %w", c.res.Container.ID, c.image, c.purgeErr)
		}
	})
	return c.purgeErr
}

// live holds the containers not yet removed, for PurgeAll.
var live = struct {
	sync.Mutex
	set map[*container]struct{}
}{set: map[*container]struct{}{}}

// PurgeAll removes every container this process started and has not
// removed yet. Targets and services whose container it removed fail their
// next Run; their Close returns nil.
func PurgeAll() error {
	live.Lock()
	var cs []*container
	for c := range live.set {
		cs = append(cs, c)
	}
	live.Unlock()
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.purge())
	}
	return errors.Join(errs...)
}

var pools = struct {
	sync.Mutex
	m map[string]*dockertest.Pool
}{m: map[string]*dockertest.Pool{}}

// pool returns the dockertest pool for endpoint ("" means DOCKER_HOST or
// the default socket), checking once that the daemon answers.
func pool(endpoint string) (*dockertest.Pool, error) {
	pools.Lock()
	defer pools.Unlock()
	if p, ok := pools.m[endpoint]; ok {
		return p, nil
	}
	p, err := dockertest.NewPool(endpoint)
	if err != nil {
		return nil, fmt.Errorf("connecting to Docker: %w", err)
	}
	if err := p.Client.Ping(); err != nil {
		return nil, fmt.Errorf("connecting to Docker: %w (is the daemon running?)", err)
	}
	pools.m[endpoint] = p
	return p, nil
}

// spec is what start needs to run a container.
type spec struct {
	endpoint   string
	image      string
	entrypoint []string
	cmd        []string
	env        []string
	workdir    string
	mounts     []runners.Mount
	ports      []string
	// hostNetwork runs the container in the host's network namespace
	// (ports are then not published: the program binds host ports).
	hostNetwork bool
}

// start runs a container from a local image.
func start(ctx context.Context, s spec) (*container, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := pool(s.endpoint)
	if err != nil {
		return nil, err
	}
	repo, tag := splitImage(s.image)
	img, err := p.Client.InspectImage(repo + ":" + tag)
	if errors.Is(err, dc.ErrNoSuchImage) {
		return nil, fmt.Errorf("docker image %s:%s not found locally: run `make images` to build it (compat never pulls images)", repo, tag)
	}
	if err != nil {
		return nil, fmt.Errorf("inspecting docker image %s:%s: %w", repo, tag, err)
	}
	var binds []string
	for _, m := range s.mounts {
		if !strings.HasPrefix(m.Guest, "/") || !strings.HasPrefix(m.Host, "/") {
			return nil, fmt.Errorf("docker image %s: mount %s -> %s: both paths must be absolute", s.image, m.Host, m.Guest)
		}
		if _, err := os.Stat(m.Host); err != nil {
			return nil, fmt.Errorf("docker image %s: mount %s -> %s: %w", s.image, m.Host, m.Guest, err)
		}
		b := m.Host + ":" + m.Guest
		if m.ReadOnly {
			b += ":ro"
		}
		binds = append(binds, b)
	}
	bindings := map[dc.Port][]dc.PortBinding{}
	for _, port := range s.ports {
		bindings[dc.Port(port)] = []dc.PortBinding{{HostIP: "127.0.0.1", HostPort: ""}}
	}
	res, err := p.RunWithOptions(&dockertest.RunOptions{
		Repository:   repo,
		Tag:          tag,
		Entrypoint:   s.entrypoint,
		Cmd:          s.cmd,
		Env:          s.env,
		WorkingDir:   s.workdir,
		ExposedPorts: s.ports,
		Labels:       map[string]string{Label: "1", Label + ".pid": strconv.Itoa(os.Getpid())},
	}, func(hc *dc.HostConfig) {
		hc.PublishAllPorts = false
		hc.PortBindings = bindings
		if s.hostNetwork {
			hc.NetworkMode = "host"
			hc.PortBindings = nil
		}
		hc.Binds = binds
		hc.RestartPolicy = dc.RestartPolicy{Name: "no"}
		// docker-init as PID 1 reaps the orphans of exec'd processes,
		// which would otherwise pile up as zombies in a container that
		// lives for a whole suite.
		hc.Init = true
	})
	if err != nil {
		return nil, fmt.Errorf("starting a container of %s: %w", s.image, err)
	}
	c := &container{pool: p, res: res, image: s.image, imageID: img.ID}
	live.Lock()
	live.set[c] = struct{}{}
	live.Unlock()
	if err := ctx.Err(); err != nil {
		c.purge()
		return nil, err
	}
	return c, nil
}

// splitImage splits "repo:tag" (the tag defaulting to latest), minding a
// registry host's port.
func splitImage(image string) (repo, tag string) {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return image, "latest"
	}
	return image[:i], image[i+1:]
}

// Options configures a Target.
type Options struct {
	// Name names the target in reports; default "reference".
	Name string
	// Image is a local image, such as "compat/python-ref:latest". It
	// needs /bin/sh, which Run uses to start programs.
	Image string
	// Mounts are bound into the container.
	Mounts []runners.Mount
	// Env holds "KEY=value" entries for the container, and so for every
	// process.
	Env []string
	// Workdir is the default working directory of processes; default the
	// image's.
	Workdir string
	// Properties are reported beside "image" and "image.id".
	Properties map[string]string
	// Endpoint is the Docker daemon; empty means DOCKER_HOST or the
	// default socket.
	Endpoint string
	// HostNetwork makes Serve run its containers in the host's network
	// namespace on free ports of the host, reached without Docker's
	// proxy. The proxy relays each connection on its own, so data sent
	// on two connections in turn can reach the program out of order,
	// which breaks tests that rely on that order (Redis' blocking-list
	// tests hang). The program must then listen on 127.0.0.1 only: it is
	// told its ports, not its address.
	HostNetwork bool
}

// Target runs processes in one container. Create one with New.
type Target struct {
	opts Options
	c    *container
	seq  atomic.Int64
}

// New starts the target's container, which sleeps until Close. It fails
// at once, without pulling, if the image is not in the local Docker.
func New(ctx context.Context, opts Options) (*Target, error) {
	if opts.Name == "" {
		opts.Name = "reference"
	}
	if opts.Image == "" {
		return nil, errors.New("docker target: Options.Image is empty")
	}
	c, err := start(ctx, spec{
		endpoint:   opts.Endpoint,
		image:      opts.Image,
		entrypoint: []string{"sleep", "infinity"},
		env:        opts.Env,
		workdir:    opts.Workdir,
		mounts:     opts.Mounts,
	})
	if err != nil {
		return nil, fmt.Errorf("docker target %s: %w", opts.Name, err)
	}
	return &Target{opts: opts, c: c}, nil
}

// Name returns the target's name.
func (t *Target) Name() string { return t.opts.Name }

// ContainerID returns the id of the target's container.
func (t *Target) ContainerID() string { return t.c.res.Container.ID }

// Properties returns the configured properties plus the image's name
// ("image") and id (compat.PropImageID).
func (t *Target) Properties() map[string]string {
	p := map[string]string{"image": t.opts.Image, compat.PropImageID: t.c.imageID}
	for k, v := range t.opts.Properties {
		p[k] = v
	}
	return p
}

// Close removes the container. Later calls return nil (or the first call's
// error).
func (t *Target) Close() error { return t.c.purge() }

// execWrapper starts the program from sh so that Run can find it again: it
// changes to the working directory, records its pid (a docker exec process
// leads its own process group, so the pid names the group a timeout kills),
// and reports a missing directory or program in the pid file, since only
// the exit status comes back from docker exec.
const execWrapper = `f=$1; d=$2; shift 2
if [ -n "$d" ] && ! cd "$d" 2>/dev/null; then echo nodir > "$f"; exit 125; fi
if ! command -v "$1" >/dev/null 2>&1; then echo noprog > "$f"; exit 127; fi
echo $$ > "$f"
exec "$@"`

// Run runs p in the container with docker exec (see runners.Target). Exit
// statuses above 128 are reported as signals, as a shell reports them: a
// program that exits 139 by itself reads as a segmentation fault.
func (t *Target) Run(ctx context.Context, p runners.Process) (runners.Exit, error) {
	fail := func(format string, args ...any) (runners.Exit, error) {
		return runners.Exit{}, fmt.Errorf("docker target %s: %s", t.opts.Name, fmt.Sprintf(format, args...))
	}
	if len(p.Args) == 0 {
		return fail("Run with no program")
	}
	if err := ctx.Err(); err != nil {
		return runners.Exit{}, fmt.Errorf("docker target %s: %s: %w", t.opts.Name, p.Args[0], err)
	}
	pidFile := fmt.Sprintf("/tmp/.compat-exec-%d-%d", os.Getpid(), t.seq.Add(1))
	cmd := append([]string{"sh", "-c", execWrapper, "sh", pidFile, p.Dir}, p.Args...)
	client := t.c.pool.Client
	id := t.c.res.Container.ID
	ex, err := client.CreateExec(dc.CreateExecOptions{
		Container:    id,
		Cmd:          cmd,
		Env:          append(append([]string(nil), t.opts.Env...), p.Env...),
		AttachStdin:  p.Stdin != nil,
		AttachStdout: true,
		AttachStderr: true,
		Context:      ctx,
	})
	if err != nil {
		return fail("creating exec of %s: %v", p.Args[0], err)
	}
	stdout, stderr := p.Stdout, p.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	// StartExec's context only covers connecting: the output stream
	// stays open until the process ends. So the stream is waited for
	// here, beside ctx.
	cw, err := client.StartExecNonBlocking(ex.ID, dc.StartExecOptions{
		InputStream:  p.Stdin,
		OutputStream: stdout,
		ErrorStream:  stderr,
	})
	if err != nil {
		return fail("starting %s: %v", p.Args[0], err)
	}
	streamed := make(chan error, 1)
	go func() { streamed <- cw.Wait() }()
	select {
	case err = <-streamed:
	case <-ctx.Done():
		kerr := t.kill(pidFile, ex.ID)
		select {
		case <-streamed:
		case <-time.After(5 * time.Second):
			// A child that escaped the process group may hold the
			// stream open; stop copying from it.
			cw.Close()
			<-streamed
		}
		if kerr != nil {
			return runners.Exit{Code: -1}, fmt.Errorf("docker target %s: %s: %w (and stopping it failed: %v)", t.opts.Name, p.Args[0], ctx.Err(), kerr)
		}
		return runners.Exit{Code: -1, Crash: "killed: " + ctx.Err().Error()},
			fmt.Errorf("docker target %s: %s: %w", t.opts.Name, strings.Join(p.Args, " "), ctx.Err())
	}
	if err != nil {
		return fail("running %s: %v", p.Args[0], err)
	}
	code, err := t.exitCode(ex.ID)
	if err != nil {
		return fail("running %s: %v", p.Args[0], err)
	}
	switch code {
	case 125, 127:
		// Maybe the wrapper's own failure: the pid file says.
		var out bytes.Buffer
		if _, err := t.c.res.Exec([]string{"cat", pidFile}, dockertest.ExecOptions{StdOut: &out}); err == nil {
			switch strings.TrimSpace(out.String()) {
			case "nodir":
				return fail("working directory %s does not exist in the container", p.Dir)
			case "noprog":
				return fail("program %s not found in the container", p.Args[0])
			}
		}
	}
	if code > 128 && code < 128+65 {
		return runners.SignalExit(syscall.Signal(code - 128)), nil
	}
	return runners.Exit{Code: code}, nil
}

// exitCode waits for the exec to be reported finished and returns its
// status. The stream can close a moment before the daemon marks the exec
// done, so it polls briefly.
func (t *Target) exitCode(execID string) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ins, err := t.c.pool.Client.InspectExec(execID)
		if err != nil {
			return 0, fmt.Errorf("inspecting exec: %w", err)
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		if time.Now().After(deadline) {
			return 0, errors.New("exec still running 10s after its output closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill stops a timed-out exec: docker has no API for that, so it kills the
// exec's process group from inside the container, waiting for the pid file
// if the program had not started yet, and then waits for the exec to end.
func (t *Target) kill(pidFile, execID string) error {
	// Plain sh, since images need have nothing else: dash's kill takes no
	// negative pid, so the group's members are found in /proc (field 5
	// of stat is the process group) and killed until none is left alive.
	// Zombies are skipped: they are dead, waiting for PID 1 to reap them.
	script := `f=$1; i=0
while [ ! -s "$f" ]; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.05; done
g=$(cat "$f"); case $g in ''|*[!0-9]*) exit 0;; esac
n=0
while [ $n -lt 50 ]; do
  left=0
  for s in /proc/[0-9]*/stat; do
    st=$(cat "$s" 2>/dev/null) || continue
    set -- ${st##*) }
    [ "$1" != Z ] && [ "$3" = "$g" ] || continue
    p=${s#/proc/}; kill -KILL "${p%/stat}" 2>/dev/null; left=1
  done
  [ $left = 0 ] && exit 0
  n=$((n+1)); sleep 0.02
done
exit 2`
	var out bytes.Buffer
	code, err := t.c.res.Exec([]string{"sh", "-c", script, "sh", pidFile}, dockertest.ExecOptions{StdErr: &out})
	if err != nil {
		return fmt.Errorf("killing the process: %w", err)
	}
	switch code {
	case 0:
	case 1:
		return fmt.Errorf("killing the process: no pid after 5s (%s)", strings.TrimSpace(out.String()))
	default:
		return fmt.Errorf("killing the process group: members left after 50 rounds (%s)", strings.TrimSpace(out.String()))
	}
	_, err = t.exitCode(execID)
	return err
}
