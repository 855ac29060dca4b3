package vkernel

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/megabinary"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental/sock"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// A host target starts a guest with one listening socket at fd 3 and
// returns the socket's port and a function that waits for the guest's
// output (or its error).
type hostTarget func(t *testing.T, wasm []byte, args ...string) (port int, wait func() (string, error))

// onVkernel runs the guest in the vkernel with a listener handed over.
func onVkernel(t *testing.T, wasm []byte, args ...string) (int, func() (string, error)) {
	name := "guest"
	f := newFixture(t, entry(name, wasm, megabinary.Resources{Listeners: 1}))
	k, _ := f.open(t, Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return start(func(out io.Writer) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := k.Exec(ctx, Request{Path: f.wasm(name), Args: append([]string{"guest"}, args...), Stdout: out, Stderr: out, Listeners: []net.Listener{l}})
		return err
	}, l.Addr().(*net.TCPAddr).Port)
}

// onWazero runs the guest on plain wazero with its own preview1 and a
// listener from its experimental sock package.
func onWazero(t *testing.T, wasm []byte, args ...string) (int, func() (string, error)) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	return start(func(out io.Writer) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
		defer r.Close(ctx)
		wasi_snapshot_preview1.MustInstantiate(ctx, r)
		ctx = sock.WithConfig(ctx, sock.NewConfig().WithTCPListener("127.0.0.1", port))
		_, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().
			WithArgs(append([]string{"guest"}, args...)...).WithStdout(out).WithStderr(out))
		return err
	}, port)
}

func start(run func(io.Writer) error, port int) (int, func() (string, error)) {
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(&out) }()
	return port, func() (string, error) {
		err := <-done
		return out.String(), err
	}
}

func dial(t *testing.T, port int) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	for i := 0; i < 100; i++ {
		c, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("dial %d: %v", port, err)
	return nil
}

// hostDefect is a behaviour servers need that wazero 1.12's preview1 gets
// wrong. Each case runs the same guest on plain wazero and on the vkernel:
// check must fail on wazero (the defect) and pass on the vkernel.
type hostDefect struct {
	name   string
	guest  string
	args   []string
	client func(t *testing.T, port int) string // what the client saw, "" if it has no part
	check  func(out, client string) error
}

var hostDefects = []hostDefect{
	{
		name: "clocks are real", guest: "probe.c", args: []string{"clock"},
		check: func(out, _ string) error {
			ns, _ := strconv.ParseInt(field(out, "realtime_ns"), 10, 64)
			if d := time.Since(time.Unix(0, ns)); d < -time.Minute || d > time.Minute {
				return fmt.Errorf("guest realtime %v is %v from the host's", time.Unix(0, ns).UTC(), d)
			}
			return nil
		},
	},
	{
		name: "poll does not report an idle socket ready", guest: "probe.c", args: []string{"poll-idle", "3"},
		check: func(out, _ string) error {
			if field(out, "ready") != "0" {
				return fmt.Errorf("poll on a listener with no client: %s", strings.TrimSpace(out))
			}
			if ms, _ := strconv.Atoi(field(out, "elapsed_ms")); ms < 250 {
				return fmt.Errorf("poll returned after %d ms of a 300 ms timeout", ms)
			}
			return nil
		},
	},
	{
		name: "poll supports write subscriptions", guest: "probe.c", args: []string{"poll-write", "3"},
		client: func(t *testing.T, port int) string {
			c := dial(t, port)
			time.Sleep(500 * time.Millisecond)
			c.Close()
			return ""
		},
		check: func(out, _ string) error {
			if field(out, "ready") != "1" || field(out, "pollout") != "1" {
				return fmt.Errorf("POLLOUT on a connected socket: %s", strings.TrimSpace(out))
			}
			return nil
		},
	},
	{
		name: "absolute clock sleeps", guest: "probe.c", args: []string{"abs-sleep"},
		check: func(out, _ string) error {
			ms, _ := strconv.Atoi(field(out, "elapsed_ms"))
			if field(out, "rc") != "0" || ms < 45 {
				return fmt.Errorf("clock_nanosleep(TIMER_ABSTIME, +50ms): %s", strings.TrimSpace(out))
			}
			return nil
		},
	},
	{
		name: "readv keeps bytes when a later iovec would block", guest: "probe.c", args: []string{"readv-split", "3"},
		client: func(t *testing.T, port int) string {
			c := dial(t, port)
			c.Write([]byte("abcd"))
			time.Sleep(1 * time.Second)
			c.Close()
			return ""
		},
		check: func(out, _ string) error {
			if field(out, "n") != "4" || field(out, "data") != "abcd" {
				return fmt.Errorf("readv of 4 available bytes into 4+4: %s", strings.TrimSpace(out))
			}
			return nil
		},
	},
	{
		name: "closing an accepted socket closes the connection", guest: "probe.c", args: []string{"close-eof", "3"},
		client: func(t *testing.T, port int) string {
			c := dial(t, port)
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(800 * time.Millisecond))
			b, err := io.ReadAll(c)
			return fmt.Sprintf("read=%q err=%v", b, err)
		},
		check: func(_, client string) error {
			if client != `read="hi" err=<nil>` {
				return fmt.Errorf("client saw %s; want \"hi\" then EOF while the guest is still running", client)
			}
			return nil
		},
	},
	{
		name: "a listening socket is not a preopened directory", guest: "probe.c", args: []string{"prestat", "3"},
		check: func(out, _ string) error {
			if field(out, "prestat_errno") != "8" {
				return fmt.Errorf("fd_prestat_get on the listener: %s (want EBADF, 8)", strings.TrimSpace(out))
			}
			return nil
		},
	},
	{
		name: "accepted sockets carry the peer address", guest: "vkprobe.c", args: []string{"peer", "3"},
		client: func(t *testing.T, port int) string {
			c := dial(t, port)
			defer c.Close()
			time.Sleep(300 * time.Millisecond)
			return c.LocalAddr().String()
		},
		check: func(out, client string) error {
			if field(out, "errno") != "0" || field(out, "peer") != client {
				return fmt.Errorf("peer address %q, want %q (%s)", field(out, "peer"), client, strings.TrimSpace(out))
			}
			return nil
		},
	},
}

func TestHostSurfaceFixesWazeroDefects(t *testing.T) {
	for _, d := range hostDefects {
		t.Run(d.name, func(t *testing.T) {
			wasm := cGuest(t, d.guest)
			for _, target := range []struct {
				name   string
				run    hostTarget
				defect bool
			}{{"wazero", onWazero, true}, {"vkernel", onVkernel, false}} {
				port, wait := target.run(t, wasm, d.args...)
				client := ""
				if d.client != nil {
					client = d.client(t, port)
				}
				out, err := wait()
				checkErr := d.check(out, client)
				if err != nil && checkErr == nil {
					checkErr = err
				}
				switch {
				case target.defect && checkErr == nil:
					t.Errorf("plain wazero no longer shows this defect (output %q): the vkernel's override may be unnecessary", out)
				case target.defect:
					t.Logf("wazero: %v", checkErr)
				case checkErr != nil:
					t.Errorf("vkernel: %v (run error: %v)", checkErr, err)
				}
			}
		})
	}
}

// TestConnect: the vkernel module's outgoing connect reaches an allowed
// address and is refused, with an audit record, for others.
func TestConnect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4)
			io.ReadFull(c, buf)
			c.Write(bytes.ToUpper(buf))
			c.Close()
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	vk := cGuest(t, "vkprobe.c")
	allowed := newFixture(t, entry("vk", vk, megabinary.Resources{Connect: []string{"127.0.0.0/8"}}))
	k, _ := allowed.open(t, Options{})
	out, _ := run(t, k, Request{Path: allowed.wasm("vk"), Args: []string{"vkprobe", "connect", "127.0.0.1", port}})
	if field(out, "connect_errno") != "0" || field(out, "reply") != "PING" {
		t.Fatalf("allowed connect: %q", out)
	}
	// An entry whose resources.connect does not cover loopback: the
	// default (empty) would allow it.
	denied := newFixture(t, entry("vk", vk, megabinary.Resources{Connect: []string{"none"}}))
	k2, audit := denied.open(t, Options{})
	out, _ = run(t, k2, Request{Path: denied.wasm("vk"), Args: []string{"vkprobe", "connect", "127.0.0.1", port}})
	if field(out, "connect_errno") != "2" || !strings.Contains(audit.String(), `"action":"connect"`) {
		t.Fatalf("connect without the resource: %q, audit %s", out, audit.String())
	}
}

func TestSetjmpLongjmp(t *testing.T) {
	f := newFixture(t, entry("vk", cGuest(t, "vkprobe.c"), megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	out, _ := run(t, k, Request{Path: f.wasm("vk"), Args: []string{"vkprobe", "jmp", "1000"}})
	if field(out, "jumps") != "1000" {
		t.Fatalf("setjmp/longjmp: %q", out)
	}
}

func TestListenerLocalAddress(t *testing.T) {
	f := newFixture(t, entry("vk", cGuest(t, "vkprobe.c"), megabinary.Resources{Listeners: 1}))
	k, _ := f.open(t, Options{})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	out, _ := run(t, k, Request{Path: f.wasm("vk"), Args: []string{"vkprobe", "local", "3"}, Listeners: []net.Listener{l}})
	if field(out, "local") != l.Addr().String() {
		t.Fatalf("sock_local_addr: %q, want %s", out, l.Addr())
	}
}

// TestEchoManyBytes moves 10 MB through the guest in both directions and
// checks every byte: reads and writes never lose or duplicate data.
func TestEchoManyBytes(t *testing.T) {
	f := newFixture(t, entry("probe", cGuest(t, "probe.c"), megabinary.Resources{Listeners: 1}))
	k, _ := f.open(t, Options{})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := k.Exec(context.Background(), Request{Path: f.wasm("probe"), Args: []string{"probe", "echo", "3", "1"}, Stdout: &out, Listeners: []net.Listener{l}})
		done <- err
	}()
	c := dial(t, l.Addr().(*net.TCPAddr).Port)
	payload := make([]byte, 10<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	go func() {
		c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%v; guest output: %s", err, out.String())
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Logf("guest output: %s", out.String())
		t.Fatalf("echoed %d bytes, want %d identical ones", len(got), len(payload))
	}
}
