package runners

import (
	"context"
	"errors"
	"sync"
)

// Server is implemented by targets that can run a long-lived program that
// listens on TCP ports, such as a Redis server that a test suite then
// talks to from the host.
//
// Where a program listens differs by target (the vkernel hands it host
// sockets, a container has ports of its own, a local process must pick
// free ones), so the target chooses the ports and start builds the Process
// that names them, as in "--port 6379". Each port is reachable from the
// host at the matching Service.Addrs entry, always on 127.0.0.1.
type Server interface {
	// Serve starts the program start returns for n listening ports and
	// returns without waiting for it to accept connections (poll
	// Service.Addrs for that). The program runs until it exits, Close is
	// called or ctx is done.
	Serve(ctx context.Context, n int, start func(ports []int) Process) (*Service, error)
}

// Service is a program started by a Server. Its methods may be called
// from several goroutines at once.
type Service struct {
	addrs  []string
	cancel context.CancelFunc
	done   chan struct{}
	exit   Exit
	err    error
	once   sync.Once
}

// StartService runs run in a new goroutine under a context derived from
// ctx that Close cancels, and returns the Service that tracks it. addrs
// are the host addresses of the program's ports. It is for implementations
// of Server: run starts the program, waits for it and stops it when its
// context is done, reporting as Target.Run does.
func StartService(ctx context.Context, addrs []string, run func(ctx context.Context) (Exit, error)) *Service {
	ctx, cancel := context.WithCancel(ctx)
	s := &Service{addrs: addrs, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer cancel()
		s.exit, s.err = run(ctx)
	}()
	return s
}

// Addrs returns the host addresses ("127.0.0.1:43121") of the program's
// listening ports, in the order of the ports given to start.
func (s *Service) Addrs() []string { return s.addrs }

// Done is closed when the program has ended.
func (s *Service) Done() <-chan struct{} { return s.done }

// Exit waits for the program to end and reports how it exited, as
// Target.Run does: an error means the target lost track of it, or the
// service was stopped (the error then wraps context.Canceled or ctx's
// error).
func (s *Service) Exit() (Exit, error) {
	<-s.done
	return s.exit, s.err
}

// Close stops the program, if it still runs, and waits for it. It returns
// an error only when the target failed to run or to stop the program;
// how the program itself ended is Exit's to tell.
func (s *Service) Close() error {
	s.once.Do(s.cancel)
	<-s.done
	if s.err != nil && !errors.Is(s.err, context.Canceled) && !errors.Is(s.err, context.DeadlineExceeded) {
		return s.err
	}
	return nil
}
