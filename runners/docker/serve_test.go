package docker

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compat-project/compat/runners"
)

var _ runners.Server = (*Target)(nil)

// syncBuffer is a strings.Builder safe for the log goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTargetServe(t *testing.T) {
	needDocker(t)
	tg := newTarget(t, Options{Image: baseImage})
	var out syncBuffer
	svc, err := tg.Serve(context.Background(), 1, func(ports []int) runners.Process {
		return runners.Process{Args: []string{"perl", "-MIO::Socket::INET", "-e", fmt.Sprintf(
			`$| = 1; $s = IO::Socket::INET->new(LocalPort => %d, Listen => 5, ReuseAddr => 1) or die "listen: $!";
print "listening\n"; $c = $s->accept; print $c "hello\n"; close $c; exit 7`, ports[0])}, Stdout: &out}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	addr := svc.Addrs()[0]
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("Addrs = %q, want 127.0.0.1:PORT", svc.Addrs())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Docker's proxy accepts before the program does: retry until the
	// greeting arrives.
	var line string
	for ctx.Err() == nil && line == "" {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			line, _ = bufio.NewReader(conn).ReadString('\n')
			conn.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if line != "hello\n" {
		t.Fatalf("service said %q, want hello", line)
	}
	exit, err := svc.Exit()
	if err != nil || exit.Code != 7 {
		t.Fatalf("Exit = %v, %v; want exit status 7", exit, err)
	}
	if !strings.Contains(out.String(), "listening") {
		t.Errorf("the program's output did not arrive: %q", out.String())
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTargetServeClose(t *testing.T) {
	needDocker(t)
	tg := newTarget(t, Options{Image: baseImage})
	svc, err := tg.Serve(context.Background(), 2, func(ports []int) runners.Process {
		if len(ports) != 2 || ports[0] == ports[1] {
			t.Errorf("ports %v", ports)
		}
		return runners.Process{Args: []string{"sleep", "600"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Addrs()) != 2 {
		t.Fatalf("Addrs = %v", svc.Addrs())
	}
	start := time.Now()
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Exit(); err == nil {
		t.Error("a closed service reports no error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestTargetServeHostNetwork(t *testing.T) {
	needDocker(t)
	tg := newTarget(t, Options{Image: baseImage, HostNetwork: true})
	svc, err := tg.Serve(context.Background(), 1, func(ports []int) runners.Process {
		return runners.Process{Args: []string{"perl", "-MIO::Socket::INET", "-e", fmt.Sprintf(
			`$s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => %d, Listen => 5, ReuseAddr => 1) or die "listen: $!";
$c = $s->accept; print $c "hello\n"; close $c; exit 3`, ports[0])}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var line string
	for ctx.Err() == nil && line == "" {
		if conn, err := net.DialTimeout("tcp", svc.Addrs()[0], time.Second); err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			line, _ = bufio.NewReader(conn).ReadString('\n')
			conn.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if line != "hello\n" {
		t.Fatalf("service at %v said %q, want hello", svc.Addrs(), line)
	}
	if exit, err := svc.Exit(); err != nil || exit.Code != 3 {
		t.Fatalf("Exit = %v, %v; want exit status 3", exit, err)
	}
}
