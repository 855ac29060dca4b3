package vkernel

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// sockWorld is a kernel with the sock guest as entry "sock" (default
// network policy: loopback only; children allowed), the guest at /sock.wasm
// in a directory mounted at /, which also holds /etc/hosts.
type sockWorld struct {
	k     *Kernel
	audit *syncBuffer
	root  string
}

func newSockWorld(t *testing.T, compiler string) *sockWorld {
	t.Helper()
	wasm := guest(t, func() ([]byte, error) { return guests.CPosix("sock.c", compiler) })
	f := newFixture(t, entry("sock", wasm, megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}, {Guest: "/data"}}, Processes: 2}))
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "run"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte("127.0.0.1 localhost\n# comment\n10.1.2.3 testhost.example testhost\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "services"), []byte("# comment\nssh 22/tcp\nhttp 80/tcp www # WorldWideWeb HTTP\n"), 0o644)
	os.WriteFile(filepath.Join(root, "sock.wasm"), wasm, 0o755)
	k, audit := f.open(t, Options{CacheDir: t.TempDir()})
	return &sockWorld{k: k, audit: audit, root: root}
}

func (w *sockWorld) run(t *testing.T, mounts []Mount, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if mounts == nil {
		mounts = []Mount{{Guest: "/", Host: w.root}}
	}
	var out, errOut bytes.Buffer
	res, err := w.k.Exec(ctx, Request{Path: filepath.Join(w.root, "sock.wasm"), Args: append([]string{"sock"}, args...),
		Mounts: mounts, Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatalf("sock %v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errOut.String())
	}
	t.Logf("sock %v:\n%s", args, out.String())
	if res.ExitCode != 0 || strings.Contains(out.String(), "fail=") {
		t.Errorf("sock %v: exit %d\nstdout: %s\nstderr: %s", args, res.ExitCode, out.String(), errOut.String())
	}
	return out.String()
}

// TestSockets runs real C programs using vkposix's sockets (built with both
// compilers the recipes use) on the vkernel: TCP, UDP over IPv4 and IPv6,
// a unix socket in a mount reached from a spawned child, socketpair,
// select with exceptfds, name resolution without DNS, and the policy's
// refusals with their audit records.
func TestSockets(t *testing.T) {
	for _, cc := range compilers {
		t.Run(cc, func(t *testing.T) {
			w := newSockWorld(t, cc)
			t.Run("tcp", func(t *testing.T) {
				out := w.run(t, nil, "tcp")
				wantFields(t, out, "listen", "127.0.0.1:port", "len", "16", "accepted_family", "inet", "peer", "127.0.0.1",
					"same_port", "1", "server_got", "ping", "client_got", "pong", "eof", "0",
					"nb_so_error", "0", "so_type", "1", "empty_read", "-1", "errno", "6", "bindtodevice", "-1")
				if !strings.Contains(out, "bindtodevice=-1 errno=50") {
					t.Errorf("SO_BINDTODEVICE: want ENOPROTOOPT (50); output:\n%s", out)
				}
			})
			for _, addr := range []string{"127.0.0.1", "::1"} {
				t.Run("udp-"+addr, func(t *testing.T) {
					out := w.run(t, nil, "udp", addr)
					wantFields(t, out, "got", "datagram", "from", addr, "reply", "reply", "reply_from_port_matches", "1",
						"nothing", "-1", "errno", "6", "timed_out", "-1")
					if !strings.Contains(out, "after_unspec=-1 errno=17\n") {
						t.Errorf("send after connect(AF_UNSPEC): want EDESTADDRREQ (17); output:\n%s", out)
					}
					if !strings.Contains(out, "timed_out=-1 errno=6\n") {
						t.Errorf("recv past SO_RCVTIMEO: want EAGAIN (6); output:\n%s", out)
					}
				})
			}
			t.Run("unix", func(t *testing.T) {
				out := w.run(t, nil, "unix-server", "/sock.wasm", "/run/test.sock")
				wantFields(t, out, "bound", "/run/test.sock", "from_child", "hello-over-unix", "child_status", "0")
				if st, err := os.Stat(filepath.Join(w.root, "run", "test.sock")); err != nil || st.Mode()&os.ModeSocket == 0 {
					t.Errorf("the socket is not in the mount on the host: %v", err)
				}
			})
			t.Run("eintr", func(t *testing.T) {
				out := w.run(t, nil, "eintr")
				wantFields(t, out, "idle_poll", "0", "interrupted", "-1", "errno", "27", "restarted", "4", "got", "late",
					"ready_poll", "1", "revents_in", "1")
				if !strings.Contains(out, "restarted=4 got=late alarms=2") {
					t.Errorf("want the restarted read to get the second handler's datagram; output:\n%s", out)
				}
			})
			t.Run("pair", func(t *testing.T) {
				out := w.run(t, nil, "pair")
				wantFields(t, out, "pair1", "abc", "pair2", "abc", "msg1", "def", "msg2", "def", "inet_pair", "-1", "errno", "58")
			})
			t.Run("select", func(t *testing.T) {
				// wasi-libc alone answers ENOSYS (52) as soon as exceptfds
				// holds a descriptor.
				out := w.run(t, nil, "select")
				wantFields(t, out, "idle", "0", "ready", "1", "readable", "1", "exceptional", "0")
				if !strings.Contains(out, "closed=-1 errno=8\n") {
					t.Errorf("select of a closed descriptor in exceptfds: want EBADF (8); output:\n%s", out)
				}
			})
			t.Run("gai", func(t *testing.T) {
				out := w.run(t, nil, "gai")
				wantFields(t, out, "hostname", "localhost", "localhost", "127.0.0.1/80/6,",
					"passive", "::/8080", "testhost_errno", "0", "testhost", "10.1.2.3", "canon", "testhost.example",
					"nowhere", "-2", "nameinfo", "localhost:22", "http_port", "80", "testhost_mapped", "::ffff:10.1.2.3",
					"service", "http", "hostent", "testhost.example/10.1.2.3", "byaddr", "localhost", "mapped", "::ffff:127.0.0.1", "v6", "2001:db8::1:0:0:1", "bad", "0")
			})
			t.Run("deny", func(t *testing.T) {
				before := w.audit.String()
				outside := t.TempDir()
				data := t.TempDir()
				os.Symlink(outside, filepath.Join(data, "out"))
				mounts := []Mount{{Guest: "/data", Host: data}}
				out := w.run(t, mounts, "deny", "/elsewhere/x.sock")
				wantFields(t, out, "bind_any", "-1", "bind_far", "-1", "connect_far", "-1", "sendto_far", "-1", "unix_bind", "-1", "raw", "-1")
				for _, k := range []string{"bind_any", "bind_far", "connect_far", "sendto_far", "unix_bind"} {
					if !strings.Contains(out, k+"=-1 errno=2\n") {
						t.Errorf("%s: want EACCES (2); output:\n%s", k, out)
					}
				}
				audit := strings.TrimPrefix(w.audit.String(), before)
				for _, want := range []string{`"action":"bind","entry":"sock","detail":"0.0.0.0:0","decision":"deny"`,
					`"detail":"192.0.2.1:80"`, `"action":"connect"`, `"action":"sendto"`,
					`"detail":"unix:/elsewhere/x.sock","decision":"deny"`} {
					if !strings.Contains(audit, want) {
						t.Errorf("audit log lacks %s:\n%s", want, audit)
					}
				}
				// A symbolic link out of the mount leads nowhere.
				out = w.run(t, mounts, "deny", "/data/out/x.sock")
				if !strings.Contains(out, "unix_bind=-1 errno=44\n") {
					t.Errorf("bind through a link leaving the mount: want ENOENT (44); output:\n%s", out)
				}
				if ents, _ := os.ReadDir(outside); len(ents) != 0 {
					t.Errorf("a socket appeared outside the mount: %v", ents)
				}
			})
		})
	}
}

// TestNetworkResources: resources.connect and resources.bind default to
// loopback, "none" allows nothing, a listed prefix replaces the default,
// and a bad prefix names the list and what to write.
func TestNetworkResources(t *testing.T) {
	lo4, lo6, any4, far := netip.MustParseAddrPort("127.0.0.1:80"), netip.MustParseAddrPort("[::1]:80"),
		netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("192.0.2.1:80")
	for _, c := range []struct {
		list                []string
		lo4, lo6, any4, far bool
	}{
		{nil, true, true, false, false},
		{[]string{"none"}, false, false, false, false},
		{[]string{"0.0.0.0/32"}, false, false, true, false},
		{[]string{"0.0.0.0/0"}, true, false, true, true},
	} {
		p, err := parsePrefixes(c.list)
		if err != nil {
			t.Fatalf("%v: %v", c.list, err)
		}
		if got := [4]bool{allowed(p, lo4), allowed(p, lo6), allowed(p, any4), allowed(p, far)}; got != [4]bool{c.lo4, c.lo6, c.any4, c.far} {
			t.Errorf("%v: loopback4/6, wildcard, far allowed %v", c.list, got)
		}
	}
	if _, err := parsePrefixes([]string{"localhost"}); err == nil || !strings.Contains(err.Error(), "CIDR") {
		t.Errorf("bad prefix: %v", err)
	}
}
