package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	dc "github.com/ory/dockertest/v3/docker"

	"github.com/compat-project/compat/runners"
)

// ServiceOptions configures a service container.
type ServiceOptions struct {
	// Image is a local image, such as "compat/redis-ref:latest".
	Image string
	// Entrypoint and Cmd override the image's; empty keeps them.
	Entrypoint, Cmd []string
	// Env holds "KEY=value" entries for the container.
	Env []string
	// Mounts are bound into the container.
	Mounts []runners.Mount
	// Ports are the container ports to publish, such as "6379/tcp".
	// Each is bound to a free port on 127.0.0.1 and nowhere else.
	Ports []string
	// Endpoint is the Docker daemon; empty means DOCKER_HOST or the
	// default socket.
	Endpoint string
}

// Service is a container running its image's own program, such as a Redis
// server that a test suite connects to. Create one with StartService.
type Service struct {
	c     *container
	ports []string
}

// StartService starts a container from a local image with the requested
// ports published on 127.0.0.1. It does not wait for the program to listen:
// see WaitTCP.
func StartService(ctx context.Context, opts ServiceOptions) (*Service, error) {
	if opts.Image == "" {
		return nil, errors.New("docker service: ServiceOptions.Image is empty")
	}
	for _, p := range opts.Ports {
		if !strings.Contains(p, "/") {
			return nil, fmt.Errorf("docker service %s: port %q needs a protocol, as in %q", opts.Image, p, p+"/tcp")
		}
	}
	c, err := start(ctx, spec{
		endpoint:   opts.Endpoint,
		image:      opts.Image,
		entrypoint: opts.Entrypoint,
		cmd:        opts.Cmd,
		env:        opts.Env,
		mounts:     opts.Mounts,
		ports:      opts.Ports,
	})
	if err != nil {
		return nil, fmt.Errorf("docker service: %w", err)
	}
	return &Service{c: c, ports: opts.Ports}, nil
}

// ID returns the container's id.
func (s *Service) ID() string { return s.c.res.Container.ID }

// ImageID returns the id of the image the service runs.
func (s *Service) ImageID() string { return s.c.imageID }

// Addr returns the host address ("127.0.0.1:49153") that a published
// container port ("6379/tcp") is reachable at, or "" if port was not
// published.
func (s *Service) Addr(port string) string {
	nets := s.c.res.Container.NetworkSettings
	if nets == nil {
		return ""
	}
	for _, b := range nets.Ports[dc.Port(port)] {
		if b.HostIP == "127.0.0.1" && b.HostPort != "" {
			return net.JoinHostPort(b.HostIP, b.HostPort)
		}
	}
	return ""
}

// WaitTCP waits until port accepts TCP connections, polling every 10ms
// (dockertest's Retry starts at 500ms, longer than most services need to
// start), until ctx is done.
func (s *Service) WaitTCP(ctx context.Context, port string) error {
	addr := s.Addr(port)
	if addr == "" {
		return fmt.Errorf("docker service %s: port %s is not published (published: %v)", s.c.image, port, s.ports)
	}
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker service %s: waiting for %s (%s): %w (last: %v)", s.c.image, port, addr, ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close removes the container. Later calls return nil (or the first call's
// error).
func (s *Service) Close() error { return s.c.purge() }

// ServePortBase is the first container port Target.Serve gives a
// program; a service's ports are ServePortBase, ServePortBase+1, ...
// (each container has its own network, so they never collide).
const ServePortBase = 10000

// Serve implements runners.Server: each call starts a new container of the
// target's image, with its mounts and environment, running p.Args as the
// entrypoint, its ports published on 127.0.0.1 only (or, with
// Options.HostNetwork, in the host's network on free host ports). The container's
// output goes to p.Stdout and p.Stderr (p.Stdin is not supported); the
// container is removed when the program ends or the service is closed.
func (t *Target) Serve(ctx context.Context, n int, newProcess func(ports []int) runners.Process) (*runners.Service, error) {
	var ports []int
	var published, addrs []string
	if t.opts.HostNetwork {
		var err error
		if ports, addrs, err = freeLoopbackPorts(n); err != nil {
			return nil, fmt.Errorf("docker target %s: serve: %w", t.opts.Name, err)
		}
	} else {
		for i := 0; i < n; i++ {
			ports = append(ports, ServePortBase+i)
			published = append(published, fmt.Sprintf("%d/tcp", ServePortBase+i))
		}
	}
	p := newProcess(ports)
	if len(p.Args) == 0 {
		return nil, fmt.Errorf("docker target %s: serve: no program", t.opts.Name)
	}
	if p.Stdin != nil {
		return nil, fmt.Errorf("docker target %s: serve %s: standard input is not supported", t.opts.Name, p.Args[0])
	}
	c, err := start(ctx, spec{
		endpoint:    t.opts.Endpoint,
		image:       t.opts.Image,
		entrypoint:  p.Args,
		env:         append(append([]string(nil), t.opts.Env...), p.Env...),
		workdir:     p.Dir,
		mounts:      t.opts.Mounts,
		ports:       published,
		hostNetwork: t.opts.HostNetwork,
	})
	if err != nil {
		return nil, fmt.Errorf("docker target %s: serve %s: %w", t.opts.Name, p.Args[0], err)
	}
	svc := &Service{c: c, ports: published}
	for _, port := range published {
		a := svc.Addr(port)
		if a == "" {
			c.purge()
			return nil, fmt.Errorf("docker target %s: serve %s: port %s was not published on 127.0.0.1", t.opts.Name, p.Args[0], port)
		}
		addrs = append(addrs, a)
	}
	id := c.res.Container.ID
	return runners.StartService(ctx, addrs, func(ctx context.Context) (runners.Exit, error) {
		defer c.purge()
		logs := make(chan struct{})
		go func() {
			defer close(logs)
			c.pool.Client.Logs(dc.LogsOptions{
				Context: ctx, Container: id, Follow: true, Stdout: true, Stderr: true,
				OutputStream: orDiscard(p.Stdout), ErrorStream: orDiscard(p.Stderr),
			})
		}()
		code, err := c.pool.Client.WaitContainerWithContext(id, ctx)
		if ctx.Err() != nil {
			c.purge()
			<-logs
			return runners.Exit{Code: -1, Crash: "killed: " + ctx.Err().Error()},
				fmt.Errorf("docker target %s: %s: %w", t.opts.Name, p.Args[0], ctx.Err())
		}
		<-logs
		if err != nil {
			return runners.Exit{}, fmt.Errorf("docker target %s: waiting for %s in container %.12s: %w", t.opts.Name, p.Args[0], id, err)
		}
		if code > 128 {
			return runners.SignalExit(syscall.Signal(code - 128)), nil
		}
		return runners.Exit{Code: code}, nil
	}), nil
}

// freeLoopbackPorts finds n free ports of 127.0.0.1 by listening on port
// 0, all at once so that they differ, and closing the sockets again.
func freeLoopbackPorts(n int) ([]int, []string, error) {
	var ports []int
	var addrs []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("finding free port %d of %d: %w", i+1, n, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		addrs = append(addrs, l.Addr().String())
	}
	return ports, addrs, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
