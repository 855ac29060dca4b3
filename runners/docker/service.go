package docker

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"

	dc "github.com/ory/dockertest/v3/docker"

	"github.com/compat-project/compat/runners"
)

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
	for _, port := range published {
		a := loopbackAddr(c, port)
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

// loopbackAddr returns the host address ("127.0.0.1:49153") that a
// published container port ("6379/tcp") is reachable at, or "" when the
// port is not published on 127.0.0.1.
func loopbackAddr(c *container, port string) string {
	nets := c.res.Container.NetworkSettings
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
