package vktarget

import (
	"bufio"
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/vkernel"
)

// TestHostCalls: under a context naming a host calls directory, the
// compat exec process of each Run and Serve writes its guest's host
// calls there, counted by the process's own kernel.
func TestHostCalls(t *testing.T) {
	tgt, _ := newTarget(t)
	dir := t.TempDir()
	ctx := runners.WithHostCallsDir(context.Background(), dir)
	if exit, err := tgt.Run(ctx, runners.Process{Args: []string{"/bin/probe", "args", "x"}}); err != nil || !exit.OK() {
		t.Fatalf("probe args: %v %v", exit, err)
	}
	files, err := vkernel.ReadHostCalls(dir)
	if err != nil || len(files) != 1 {
		t.Fatalf("after one exec: files %+v (%v), want one", files, err)
	}
	f := files[0]
	if f.Entry != "probe" || f.Pid == os.Getpid() || f.Pid == 0 {
		t.Errorf("file of entry %q by pid %d, want probe by the compat exec process", f.Entry, f.Pid)
	}
	// wasi-libc's start-up reads the arguments once; the probe prints them.
	if f.Calls["wasi_snapshot_preview1.args_get"] != 1 || f.Calls["wasi_snapshot_preview1.fd_write"] == 0 {
		t.Errorf("counts %v: want args_get once and fd_write", f.Calls)
	}

	// A Run under a context without one writes nothing there.
	if exit, err := tgt.Run(context.Background(), runners.Process{Args: []string{"/bin/probe", "exit", "0"}}); err != nil || !exit.OK() {
		t.Fatalf("probe exit 0: %v %v", exit, err)
	}
	if files, _ := vkernel.ReadHostCalls(dir); len(files) != 1 {
		t.Errorf("a Run without a host calls directory wrote to another's: %d files", len(files))
	}

	// A served guest killed with its service (compat exec's whole
	// process group, as a Redis unit's server is) leaves the counts it
	// made: they are counted in a shared mapping of the file.
	served := t.TempDir()
	svc, err := tgt.Serve(runners.WithHostCallsDir(context.Background(), served), 1, func(ports []int) runners.Process {
		return runners.Process{Args: []string{"/bin/probe", "echo", "4", "2"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	conn, err := net.DialTimeout("tcp", svc.Addrs()[0], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte("ping\n"))
	if got, err := bufio.NewReader(conn).ReadString('\n'); err != nil || got != "ping\n" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	// The guest waits for a second connection that never comes.
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if exit, err := svc.Exit(); err == nil {
		t.Fatalf("the service ended by itself (%v): want it killed", exit)
	}
	files, err = vkernel.ReadHostCalls(served)
	if err != nil || len(files) != 1 {
		t.Fatalf("killed guest: files %+v (%v), want one", files, err)
	}
	// It accepted (polling the non-blocking listener) and echoed.
	if c := files[0].Calls; c["wasi_snapshot_preview1.sock_accept"] == 0 || c["wasi_snapshot_preview1.sock_send"] == 0 {
		t.Errorf("killed guest's counts %v: want sock_accept and sock_send", c)
	}
}
