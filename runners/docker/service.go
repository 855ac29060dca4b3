package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
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
