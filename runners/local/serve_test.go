package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat/runners"
)

var _ runners.Server = (*Target)(nil)

func TestServe(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		testenv.Missing(t, "perl (the test's one-line TCP server) is not installed")
	}
	tg := newTarget(t)
	svc, err := tg.Serve(context.Background(), 1, func(ports []int) runners.Process {
		return runners.Process{Args: []string{perl, "-MIO::Socket::INET", "-e", fmt.Sprintf(
			`$s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => %d, Listen => 5, ReuseAddr => 1) or die "listen: $!";
$c = $s->accept; print $c "hello\n"; close $c; exit 7`, ports[0])}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var line string
	for ctx.Err() == nil && line == "" {
		if conn, err := net.DialTimeout("tcp", svc.Addrs()[0], time.Second); err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			line, _ = bufio.NewReader(conn).ReadString('\n')
			conn.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
	if line != "hello\n" {
		t.Fatalf("service said %q, want hello", line)
	}
	if exit, err := svc.Exit(); err != nil || exit.Code != 7 {
		t.Fatalf("Exit = %v, %v; want exit status 7", exit, err)
	}
}

func TestServeClose(t *testing.T) {
	tg := newTarget(t)
	svc, err := tg.Serve(context.Background(), 2, func(ports []int) runners.Process {
		if len(ports) != 2 || ports[0] == ports[1] {
			t.Errorf("ports %v", ports)
		}
		return runners.Process{Args: []string{"sleep", "600"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range svc.Addrs() {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("Addrs[%d] = %q", i, a)
		}
	}
	start := time.Now()
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Exit(); !errors.Is(err, context.Canceled) {
		t.Errorf("Exit after Close: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
}
