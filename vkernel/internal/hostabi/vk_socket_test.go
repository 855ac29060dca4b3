package hostabi

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sockSession opens a process whose policy allows binding and connecting
// to loopback only, recording audit records.
func sockSession(t *testing.T, h *harness, mounts []Mount) (*session, *[]string) {
	var audit []string
	h.audit = func(action, detail, decision, reason string) {
		audit = append(audit, action+" "+detail+" "+decision)
	}
	loop := func(a netip.AddrPort) bool { return a.Addr().IsLoopback() }
	return h.open(t, Config{Mounts: mounts, Hooks: Hooks{AllowConnect: loop, AllowBind: loop, Audit: h.audit}}), &audit
}

// inetAddr writes the vkaddr of ap at off and returns off and its length.
func (s *session) inetAddr(off uint32, ap netip.AddrPort) (uint64, uint64) {
	fam := afInet6
	if ap.Addr().Is4() {
		fam = afInet
	}
	s.write(off, encodeSockAddr(sockAddr{family: fam, ap: ap}))
	return uint64(off), vkaddrInetLen
}

func (s *session) unixAddr(off uint32, path string) (uint64, uint64) {
	b := encodeSockAddr(sockAddr{family: afUnix, path: path})
	s.write(off, b)
	return uint64(off), uint64(len(b))
}

// socket opens a socket and returns its fd.
func (s *session) socket(domain, typ, flags uint64) uint64 {
	s.t.Helper()
	s.must("vkernel.sock_open", domain, typ, 0, flags, 60)
	return uint64(s.u32(60))
}

// name reads a socket's address (sock_getsockname or sock_getpeername).
func (s *session) name(call string, fd uint64) sockAddr {
	s.t.Helper()
	s.must(call, fd, 3000, vkaddrMax, 64)
	n := s.u32(64)
	a, errno := readSockAddr(s.mod.Memory(), 3000, n)
	if errno != ESUCCESS {
		s.t.Fatalf("%s: vkaddr of %d bytes: errno %d", call, n, errno)
	}
	return a
}

// sendto sends text (to the vkaddr at addr, addrLen; 0 for none).
func (s *session) sendto(fd uint64, text string, addr, addrLen uint64) {
	s.t.Helper()
	s.write(4000, []byte(text))
	s.must("vkernel.sock_sendto", fd, s.iovec(3900, 4000, uint32(len(text))), 1, msgNosignal, addr, addrLen, 68)
	if n := s.u32(68); n != uint32(len(text)) {
		s.t.Fatalf("sent %d bytes of %d", n, len(text))
	}
}

// recvfrom receives into a 64-byte buffer and returns the text and the
// sender's address (family 0 when none).
func (s *session) recvfrom(fd uint64, flags uint64) (string, sockAddr) {
	s.t.Helper()
	s.must("vkernel.sock_recvfrom", fd, s.iovec(3900, 5000, 64), 1, flags, 3000, vkaddrMax, 68, 72, 76)
	b, _ := s.mod.Memory().Read(5000, s.u32(68))
	var a sockAddr
	if n := s.u32(72); n > 0 {
		a, _ = readSockAddr(s.mod.Memory(), 3000, n)
	}
	return string(b), a
}

// TestSockTCP: a listener bound to loopback, a blocking and a
// non-blocking connect to it, accepted with the peer's address, data both
// ways, options.
func TestSockTCP(t *testing.T) {
	s, _ := sockSession(t, newHarness(t), nil)
	l := s.socket(afInet, sockStream, 0)
	v := make([]byte, 4)
	put32(v, 1)
	s.write(80, v)
	s.must("vkernel.sock_setsockopt", l, solSocket, 2 /* SO_REUSEADDR */, 80, 4)
	s.must("vkernel.sock_bind", append([]uint64{l}, pair(s.inetAddr(2000, netip.MustParseAddrPort("127.0.0.1:0")))...)...)
	s.must("vkernel.sock_listen", l, 16)
	local := s.name("vkernel.sock_getsockname", l)
	if local.family != afInet || local.ap.Addr() != netip.MustParseAddr("127.0.0.1") || local.ap.Port() == 0 {
		t.Fatalf("listener address %+v", local)
	}
	s.must("vkernel.sock_getsockopt", l, solSocket, 30 /* SO_ACCEPTCONN */, 80, 4, 84)
	if s.u32(80) != 1 || s.u32(84) != 4 {
		t.Errorf("SO_ACCEPTCONN %d (len %d), want 1", s.u32(80), s.u32(84))
	}

	c := s.socket(afInet, sockStream, 0)
	s.must("vkernel.sock_connect_to", append([]uint64{c}, pair(s.inetAddr(2000, local.ap))...)...)
	s.must("wasi_snapshot_preview1.sock_accept", l, 0, 88)
	a := uint64(s.u32(88))
	if peer, me := s.name("vkernel.sock_getpeername", a), s.name("vkernel.sock_getsockname", c); peer != me {
		t.Errorf("accepted peer %+v, client %+v", peer, me)
	}
	s.sendto(c, "ping", 0, 0)
	if got, from := s.recvfrom(a, 0); got != "ping" || from.family != 0 {
		t.Errorf("received %q from %+v, want ping and no address", got, from)
	}
	s.must("vkernel.sock_setsockopt", a, solTCP, 1 /* TCP_NODELAY */, 80, 4)
	if errno, _ := s.call("vkernel.sock_getsockopt", a, solSocket, 25 /* SO_BINDTODEVICE */, 80, 4, 84); errno != ENOPROTOOPT {
		t.Errorf("SO_BINDTODEVICE: errno %d, want ENOPROTOOPT", errno)
	}
	if errno, _ := s.call("vkernel.sock_setsockopt", a, solSocket, 3 /* SO_TYPE */, 80, 4); errno != ENOPROTOOPT {
		t.Errorf("setting SO_TYPE: errno %d, want ENOPROTOOPT", errno)
	}

	// Non-blocking: EINPROGRESS (or done at once on loopback), then
	// writable with SO_ERROR 0.
	nb := s.socket(afInet, sockStream, fdflagNonblock)
	if errno, _ := s.call("vkernel.sock_connect_to", append([]uint64{nb}, pair(s.inetAddr(2000, local.ap))...)...); errno != EINPROGRESS && errno != ESUCCESS {
		t.Fatalf("non-blocking connect: errno %d", errno)
	}
	s.must("wasi_snapshot_preview1.sock_accept", l, 0, 88)
	s.must("vkernel.sock_getsockopt", nb, solSocket, 4 /* SO_ERROR */, 80, 4, 84)
	if s.u32(80) != 0 {
		t.Errorf("SO_ERROR %d after connecting", s.u32(80))
	}

	// A refused connection: SO_ERROR is a preview1 errno.
	s.must("wasi_snapshot_preview1.fd_close", l)
	r := s.socket(afInet, sockStream, 0)
	if errno, _ := s.call("vkernel.sock_connect_to", append([]uint64{r}, pair(s.inetAddr(2000, local.ap))...)...); errno != ECONNREFUSED {
		t.Errorf("connect to a closed port: errno %d, want ECONNREFUSED", errno)
	}

	// listen without bind: bound to loopback, not the wildcard.
	u := s.socket(afInet6, sockStream, 0)
	s.must("vkernel.sock_listen", u, 1)
	if a := s.name("vkernel.sock_getsockname", u); a.ap.Addr() != netip.IPv6Loopback() {
		t.Errorf("listening without bind: %+v, want ::1", a)
	}
}

func pair(a, b uint64) []uint64 { return []uint64{a, b} }

// TestSockUDP: datagrams over 127.0.0.1 and ::1 with the sender's address;
// an unbound sender is bound to loopback, not the wildcard; MSG_PEEK and
// MSG_TRUNC; a connected datagram socket.
func TestSockUDP(t *testing.T) {
	s, _ := sockSession(t, newHarness(t), nil)
	for _, lo := range []string{"127.0.0.1", "::1"} {
		fam := uint64(afInet)
		if strings.Contains(lo, ":") {
			fam = afInet6
		}
		srv := s.socket(fam, sockDgram, 0)
		s.must("vkernel.sock_bind", append([]uint64{srv}, pair(s.inetAddr(2000, netip.AddrPortFrom(netip.MustParseAddr(lo), 0)))...)...)
		at := s.name("vkernel.sock_getsockname", srv)
		cli := s.socket(fam, sockDgram, 0)
		addr, n := s.inetAddr(2000, at.ap)
		s.sendto(cli, "hello", addr, n)
		me := s.name("vkernel.sock_getsockname", cli)
		if me.ap.Addr().String() != lo || me.ap.Port() == 0 {
			t.Errorf("%s: unbound sender bound to %+v, want %s", lo, me, lo)
		}
		if got, _ := s.recvfrom(srv, msgPeek); got != "hello" {
			t.Errorf("%s: peeked %q", lo, got)
		}
		got, from := s.recvfrom(srv, 0)
		if got != "hello" || from.ap != me.ap || int(fam) != from.family {
			t.Errorf("%s: received %q from %+v, want hello from %+v", lo, got, from, me)
		}
		// A datagram longer than the buffer: cut, MSG_TRUNC reported,
		// the real length with MSG_TRUNC asked.
		s.sendto(cli, strings.Repeat("x", 100), addr, n)
		s.must("vkernel.sock_recvfrom", srv, s.iovec(3900, 5000, 10), 1, msgTrunc, 0, 0, 68, 72, 76)
		if s.u32(68) != 100 || s.u32(76) != msgTrunc || s.u32(72) != vkaddrInetLen {
			t.Errorf("%s: truncated datagram: n %d flags %#x addr_len %d", lo, s.u32(68), s.u32(76), s.u32(72))
		}
		// Connected: send without an address; a NONBLOCK empty read is EAGAIN.
		s.must("vkernel.sock_connect_to", srv, addr, n)
		s.must("vkernel.sock_connect_to", append([]uint64{srv}, pair(s.inetAddr(2000, me.ap))...)...)
		s.sendto(srv, "back", 0, 0)
		if got, _ := s.recvfrom(cli, 0); got != "back" {
			t.Errorf("%s: connected reply %q", lo, got)
		}
		if errno, _ := s.call("vkernel.sock_recvfrom", cli, s.iovec(3900, 5000, 10), 1, msgDontwait, 0, 0, 68, 72, 76); errno != EAGAIN {
			t.Errorf("%s: MSG_DONTWAIT on an empty socket: errno %d, want EAGAIN", lo, errno)
		}
		// AF_UNSPEC dissolves the association: no destination left.
		s.write(2100, make([]byte, 4))
		s.must("vkernel.sock_connect_to", srv, 2100, 4)
		s.write(4000, []byte("x"))
		if errno, _ := s.call("vkernel.sock_sendto", srv, s.iovec(3900, 4000, 1), 1, 0, 0, 0, 68); errno != EDESTADDRREQ {
			t.Errorf("%s: send after AF_UNSPEC connect: errno %d, want EDESTADDRREQ", lo, errno)
		}
		s.must("vkernel.sock_getsockopt", srv, solSocket, 3 /* SO_TYPE */, 80, 4, 84)
		if s.u32(80) != sockDgram {
			t.Errorf("SO_TYPE %d, want SOCK_DGRAM", s.u32(80))
		}
	}
}

// TestSockDenied: binding, connecting and sending outside the policy are
// EACCES with an audit record each.
func TestSockDenied(t *testing.T) {
	s, audit := sockSession(t, newHarness(t), nil)
	tcp := s.socket(afInet, sockStream, 0)
	udp := s.socket(afInet6, sockDgram, 0)
	for _, c := range []struct {
		call string
		fd   uint64
		addr string
	}{
		{"vkernel.sock_bind", tcp, "0.0.0.0:0"},
		{"vkernel.sock_bind", tcp, "192.0.2.1:80"},
		{"vkernel.sock_bind", udp, "[::]:0"},
		{"vkernel.sock_connect_to", tcp, "192.0.2.1:80"},
		{"vkernel.sock_connect_to", udp, "[::ffff:192.0.2.1]:53"},
	} {
		before := len(*audit)
		addr, n := s.inetAddr(2000, netip.MustParseAddrPort(c.addr))
		if errno, _ := s.call(c.call, c.fd, addr, n); errno != EACCES || len(*audit) != before+1 {
			t.Errorf("%s %s: errno %d, audit %v; want EACCES and a record", c.call, c.addr, errno, (*audit)[before:])
		}
	}
	before := len(*audit)
	addr, n := s.inetAddr(2000, netip.MustParseAddrPort("192.0.2.1:53"))
	s.write(4000, []byte("x"))
	if errno, _ := s.call("vkernel.sock_sendto", udp, s.iovec(3900, 4000, 1), 1, 0, addr, n, 68); errno != EACCES || len(*audit) != before+1 {
		t.Errorf("sendto outside the policy: errno %d, audit %v", errno, (*audit)[before:])
	}
	if !strings.HasPrefix((*audit)[len(*audit)-1], "sendto 192.0.2.1:53 deny") {
		t.Errorf("audit record %q", (*audit)[len(*audit)-1])
	}
	if errno, _ := s.call("vkernel.sock_open", afInet, 3 /* SOCK_RAW */, 0, 0, 60); errno != EPROTOTYPE {
		t.Errorf("raw socket: errno %d, want EPROTOTYPE", errno)
	}
	if errno, _ := s.call("vkernel.sock_open", 16 /* AF_NETLINK */, sockDgram, 0, 0, 60); errno != EAFNOSUPPORT {
		t.Errorf("netlink socket: errno %d, want EAFNOSUPPORT", errno)
	}
}

// TestSockUnix: a unix stream socket bound at a guest path inside a mount
// (longer than sun_path would allow on the host), connected to by path and
// accepted; paths outside the mounts, through a symbolic link leaving the
// mount, abstract ones, and on a read-only mount are refused.
func TestSockUnix(t *testing.T) {
	h := newHarness(t)
	root := filepath.Join(h.root, strings.Repeat("d", 100))
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(root, "run"), 0o755)
	os.Symlink(outside, filepath.Join(root, "out"))
	s, audit := sockSession(t, h, []Mount{{Guest: "/data", Host: root}, {Guest: "/ro", Host: root, ReadOnly: true}})

	l := s.socket(afUnix, sockStream, 0)
	s.must("vkernel.sock_bind", append([]uint64{l}, pair(s.unixAddr(2000, "/data/run/s.sock"))...)...)
	if st, err := os.Stat(filepath.Join(root, "run", "s.sock")); err != nil || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("bound socket on the host: %v", err)
	}
	s.must("vkernel.sock_listen", l, 4)
	if a := s.name("vkernel.sock_getsockname", l); a.family != afUnix || a.path != "/data/run/s.sock" {
		t.Errorf("getsockname %+v", a)
	}
	c := s.socket(afUnix, sockStream, 0)
	s.must("vkernel.sock_connect_to", append([]uint64{c}, pair(s.unixAddr(2000, "/data/run/../run/s.sock"))...)...)
	s.must("wasi_snapshot_preview1.sock_accept", l, 0, 88)
	a := uint64(s.u32(88))
	if p := s.name("vkernel.sock_getpeername", c); p.path != "/data/run/../run/s.sock" {
		t.Errorf("client's peer %+v", p)
	}
	if p := s.name("vkernel.sock_getpeername", a); p.family != afUnix || p.path != "" {
		t.Errorf("accepted socket's peer %+v, want unnamed", p)
	}
	if n := s.name("vkernel.sock_getsockname", a); n.path != "/data/run/s.sock" {
		t.Errorf("accepted socket's name %+v, want the listener's", n)
	}
	s.sendto(c, "over unix", 0, 0)
	if got, _ := s.recvfrom(a, 0); got != "over unix" {
		t.Errorf("received %q", got)
	}

	for _, c := range []struct {
		path  string
		errno Errno
		audit bool
	}{
		{"/elsewhere/s.sock", EACCES, true},
		{"\x00abstract", EACCES, true},
		{"/data/out/s.sock", ENOENT, false}, // the link resolves inside the mount, where nothing is
		{"/ro/run/t.sock", EROFS, false},
		{"/data/run/s.sock", EADDRINUSE, false},
		{"relative.sock", EINVAL, false},
	} {
		before := len(*audit)
		u := s.socket(afUnix, sockStream, 0)
		if errno, _ := s.call("vkernel.sock_bind", append([]uint64{u}, pair(s.unixAddr(2000, c.path))...)...); errno != c.errno || (len(*audit) > before) != c.audit {
			t.Errorf("bind %q: errno %d, audit %v; want %d, audit %v", c.path, errno, (*audit)[before:], c.errno, c.audit)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("a socket appeared outside the mount: %v", ents)
	}
	if errno, _ := s.call("vkernel.sock_connect_to", append([]uint64{s.socket(afUnix, sockStream, 0)}, pair(s.unixAddr(2000, "/elsewhere/x"))...)...); errno != EACCES {
		t.Errorf("connect outside the mounts: errno %d", errno)
	}
}

// TestSockPair: both ends of a stream and a dgram pair carry data; inet
// pairs are EOPNOTSUPP as on Linux.
func TestSockPair(t *testing.T) {
	s, _ := sockSession(t, newHarness(t), nil)
	for _, typ := range []uint64{sockStream, sockDgram} {
		s.must("vkernel.sock_pair", afUnix, typ, 0, 90)
		a, b := uint64(s.u32(90)), uint64(s.u32(94))
		s.sendto(a, "to b", 0, 0)
		if got, _ := s.recvfrom(b, 0); got != "to b" {
			t.Errorf("type %d: b got %q", typ, got)
		}
		s.write(4000, []byte("to a"))
		s.must("wasi_snapshot_preview1.fd_write", b, s.iovec(3900, 4000, 4), 1, 68)
		s.must("wasi_snapshot_preview1.fd_read", a, s.iovec(3900, 5000, 64), 1, 68)
		if got, _ := s.mod.Memory().Read(5000, s.u32(68)); string(got) != "to a" {
			t.Errorf("type %d: a read %q", typ, got)
		}
		s.must("wasi_snapshot_preview1.fd_fdstat_get", a, 200)
		if want := map[uint64]uint32{sockStream: filetypeSocketStream, sockDgram: filetypeSocketDgram}[typ]; s.u32(200)&0xff != want {
			t.Errorf("type %d: filetype %d, want %d", typ, s.u32(200)&0xff, want)
		}
	}
	if errno, _ := s.call("vkernel.sock_pair", afInet, sockStream, 0, 90); errno != ENOTSUP {
		t.Errorf("inet pair: errno %d, want ENOTSUP", errno)
	}
}

// TestSockTimeouts: SO_RCVTIMEO bounds a blocking receive and accept
// (EAGAIN after it), reads back as set, and a bad timeval is EDOM.
func TestSockTimeouts(t *testing.T) {
	s, _ := sockSession(t, newHarness(t), nil)
	u := s.socket(afInet, sockDgram, 0)
	s.must("vkernel.sock_bind", append([]uint64{u}, pair(s.inetAddr(2000, netip.MustParseAddrPort("127.0.0.1:0")))...)...)
	tv := make([]byte, 16)
	put64(tv, 0)
	put64(tv[8:], 80_000) // 80 ms
	s.write(80, tv)
	s.must("vkernel.sock_setsockopt", u, solSocket, 20 /* SO_RCVTIMEO */, 80, 16)
	s.must("vkernel.sock_getsockopt", u, solSocket, 20, 100, 16, 84)
	if got, _ := s.mod.Memory().Read(100, 16); string(got) != string(tv) || s.u32(84) != 16 {
		t.Errorf("SO_RCVTIMEO reads back %x (len %d), want %x", got, s.u32(84), tv)
	}
	start := time.Now()
	errno, _ := s.call("vkernel.sock_recvfrom", u, s.iovec(3900, 5000, 10), 1, 0, 0, 0, 68, 72, 76)
	if took := time.Since(start); errno != EAGAIN || took < 70*time.Millisecond || took > 2*time.Second {
		t.Errorf("receive with SO_RCVTIMEO 80ms: errno %d after %v, want EAGAIN after about 80ms", errno, took)
	}
	l := s.socket(afInet, sockStream, 0)
	s.must("vkernel.sock_setsockopt", l, solSocket, 20, 80, 16)
	s.must("vkernel.sock_listen", l, 1)
	if errno, _ := s.call("wasi_snapshot_preview1.sock_accept", l, 0, 88); errno != EAGAIN {
		t.Errorf("accept with SO_RCVTIMEO: errno %d, want EAGAIN", errno)
	}
	put64(tv[8:], 1_000_000)
	s.write(80, tv)
	if errno, _ := s.call("vkernel.sock_setsockopt", u, solSocket, 21 /* SO_SNDTIMEO */, 80, 16); errno != EDOM {
		t.Errorf("tv_usec 1000000: errno %d, want EDOM", errno)
	}
}

// TestSockInherit: a child's copy of a unix socket (proc_spawn, proc_fork)
// keeps the guest paths it was bound and connected to, and its type.
func TestSockInherit(t *testing.T) {
	h := newHarness(t)
	s, _ := sockSession(t, h, nil)
	l := s.socket(afUnix, sockDgram, 0)
	s.must("vkernel.sock_bind", append([]uint64{l}, pair(s.unixAddr(2000, "/d.sock"))...)...)
	c := s.socket(afUnix, sockDgram, 0)
	s.must("vkernel.sock_connect_to", append([]uint64{c}, pair(s.unixAddr(2000, "/d.sock"))...)...)
	var files []InheritedFile
	for _, fd := range []uint64{l, c} {
		in, errno := s.p.inheritable(uint32(fd))
		if errno != ESUCCESS {
			t.Fatalf("inheritable %d: errno %d", fd, errno)
		}
		dup, err := unix.FcntlInt(uintptr(in.HostFD), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		in.HostFD = dup
		files = append(files, in)
	}
	child := h.open(t, Config{Files: files})
	if got := child.name("vkernel.sock_getsockname", l); got.path != "/d.sock" {
		t.Errorf("child's bound socket name %+v", got)
	}
	if got := child.name("vkernel.sock_getpeername", c); got.path != "/d.sock" {
		t.Errorf("child's connected socket peer %+v", got)
	}
	child.sendto(c, "from child", 0, 0)
	if got, _ := s.recvfrom(l, 0); got != "from child" {
		t.Errorf("parent received %q", got)
	}
	child.must("wasi_snapshot_preview1.fd_fdstat_get", l, 200)
	if child.u32(200)&0xff != filetypeSocketDgram {
		t.Errorf("child's filetype %d, want dgram", child.u32(200)&0xff)
	}
}
