package nginx

// Tests of nginx.wasm's own sockets (vkposix's net part over the
// vkernel's socket calls): the resolver's and syslog's UDP, unix-domain
// listeners and upstreams, proxy_bind before connect, and a stream UDP
// listener. Each runs the real nginx.wasm through the shim against servers
// of the test's own on loopback or in the test's directory (which the shim
// mounts: unix socket paths are guest paths inside the mounts).

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/adapters/internal/shim/shimtest"
)

// dnsServer is a DNS server on UDP loopback that answers A queries for the
// names in hosts and NXDOMAIN for others, and records the names asked.
type dnsServer struct {
	conn  *net.UDPConn
	hosts map[string]net.IP

	mu    sync.Mutex
	asked []string
}

// startDNS starts a dnsServer for hosts; it stops when the test ends.
func startDNS(t *testing.T, hosts map[string]net.IP) *dnsServer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{conn: c, hosts: hosts}
	t.Cleanup(func() { c.Close() })
	go d.serve()
	return d
}

func (d *dnsServer) port() int { return d.conn.LocalAddr().(*net.UDPAddr).Port }

func (d *dnsServer) names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

func (d *dnsServer) serve() {
	buf := make([]byte, 512)
	for {
		n, from, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if resp := d.answer(buf[:n]); resp != nil {
			d.conn.WriteToUDP(resp, from)
		}
	}
}

// answer builds the response to one query (RFC 1035 section 4): the
// header with the query's id, the question copied, and one A record
// (a pointer to the question's name, class IN, TTL 60) when the name is
// known. A query it cannot read gets no answer.
func (d *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if l > 63 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	end := i + 1 + 4 // the root label, type and class
	if end > len(q) {
		return nil
	}
	name := strings.ToLower(strings.Join(labels, "."))
	qtype := binary.BigEndian.Uint16(q[i+1:])
	d.mu.Lock()
	d.asked = append(d.asked, name)
	d.mu.Unlock()

	resp := append([]byte(nil), q[:end]...)
	flags := uint16(0x8180) // response, recursion desired and available
	ip, ok := d.hosts[name]
	ancount := uint16(0)
	switch {
	case !ok:
		flags |= 3 // NXDOMAIN
	case qtype == 1 && ip.To4() != nil:
		ancount = 1
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
		resp = append(resp, ip.To4()...)
	}
	binary.BigEndian.PutUint16(resp[2:], flags)
	binary.BigEndian.PutUint16(resp[6:], ancount)
	binary.BigEndian.PutUint16(resp[8:], 0)
	binary.BigEndian.PutUint16(resp[10:], 0)
	return resp
}

// echoHTTP is an HTTP server on l that answers every request with
// "PREFIX PATH from PEER-HOST\n"; it stops when the test ends.
func echoHTTP(t *testing.T, l net.Listener, prefix string) {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr // a unix socket's peer: no port
		}
		fmt.Fprintf(w, "%s %s from %s\n", prefix, r.URL.Path, host)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// sockConf is a configuration with the error log at info level and EXTRA
// in the main context.
const sockConf = `
master_process off;
daemon off;
error_log logs/error.log info;
pid logs/nginx.pid;
events { use poll; worker_connections 64; }
EXTRA
`

// TestResolver: "resolver" queries a DNS server over UDP (it failed with
// "socket() failed (2: Permission denied)": the guest could not create a
// UDP socket), and proxy_pass to a name in a variable is resolved at run
// time with it.
func TestResolver(t *testing.T) {
	s := testShim(t)
	dns := startDNS(t, map[string]net.IP{"name.test": net.IPv4(127, 0, 0, 1)})
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoHTTP(t, bl, "backend")
	port := shimtest.FreePort(t)
	conf := strings.ReplaceAll(sockConf, "EXTRA", fmt.Sprintf(`
http {
    access_log off;
    client_body_temp_path DIR/tmp_body;
    proxy_temp_path DIR/proxy_temp;
    resolver 127.0.0.1:%d ipv6=off;
    resolver_timeout 5s;
    server {
        listen 127.0.0.1:%d;
        location /known/ { set $up name.test; proxy_pass http://$up:%d; }
        location /unknown/ { set $up nosuch.test; proxy_pass http://$up:%d; }
    }
}
`, dns.port(), port, bl.Addr().(*net.TCPAddr).Port, bl.Addr().(*net.TCPAddr).Port))
	dir, _ := servroot(t, conf)
	in := startForeground(t, s, dir)

	resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/known/x", port))
	if resp.StatusCode != 200 || string(body) != "backend /known/x from 127.0.0.1\n" {
		t.Errorf("GET /known/x through name.test: status %d, body %q; want 200 and the backend's answer", resp.StatusCode, body)
	}
	resp, body = get(t, fmt.Sprintf("http://127.0.0.1:%d/unknown/x", port))
	if resp.StatusCode != 502 {
		t.Errorf("GET /unknown/x through nosuch.test (NXDOMAIN): status %d, body %q; want 502", resp.StatusCode, body)
	}
	asked := strings.Join(dns.names(), " ")
	if !strings.Contains(asked, "name.test") || !strings.Contains(asked, "nosuch.test") {
		t.Errorf("the DNS server was asked for %q, want name.test and nosuch.test", asked)
	}
	in.stop(t, syscall.SIGQUIT)
	log, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
	if !strings.Contains(string(log), "nosuch.test could not be resolved (3: Host not found)") {
		t.Errorf("error.log does not say nosuch.test could not be resolved:\n%s", log)
	}
	noAlerts(t, dir)
}

// TestSyslogUDP: "access_log syslog:server=..." sends each entry as a UDP
// datagram, with nginx's syslog header and tag.
func TestSyslogUDP(t *testing.T) {
	s := testShim(t)
	sl, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	port := shimtest.FreePort(t)
	conf := strings.ReplaceAll(sockConf, "EXTRA", fmt.Sprintf(`
http {
    log_format plain "$request_method $uri $status";
    access_log syslog:server=127.0.0.1:%d,tag=ngxwasm plain;
    client_body_temp_path DIR/tmp_body;
    server {
        listen 127.0.0.1:%d;
        location / { return 200 "ok\n"; }
    }
}
`, sl.LocalAddr().(*net.UDPAddr).Port, port))
	dir, _ := servroot(t, conf)
	in := startForeground(t, s, dir)
	if resp, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/logged", port)); resp.StatusCode != 200 {
		t.Fatalf("GET /logged: %d", resp.StatusCode)
	}
	sl.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	n, _, err := sl.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no syslog datagram in 10s: %v", err)
	}
	msg := string(buf[:n])
	if !strings.HasPrefix(msg, "<190>") || !strings.HasSuffix(msg, "ngxwasm: GET /logged 200") {
		t.Errorf("syslog datagram %q, want <190>...ngxwasm: GET /logged 200", msg)
	}
	in.stop(t, syscall.SIGQUIT)
	noAlerts(t, dir)
}

// TestUnixSockets: nginx listens on a unix socket in its directory (the
// shim mounts it), takes the client's address from X-Real-IP for unix
// peers (set_real_ip_from unix:), and proxies to a unix-socket upstream
// (proxy_pass http://unix:PATH:). Before, a unix: address was refused at
// start: nginx.wasm was built without unix-domain sockets.
func TestUnixSockets(t *testing.T) {
	s := testShim(t)
	port := shimtest.FreePort(t)
	conf := strings.ReplaceAll(sockConf, "EXTRA", fmt.Sprintf(`
http {
    access_log off;
    client_body_temp_path DIR/tmp_body;
    proxy_temp_path DIR/proxy_temp;
    server {
        listen 127.0.0.1:%d;
        listen unix:DIR/nginx.sock;
        set_real_ip_from unix:;
        real_ip_header X-Real-IP;
        location = /addr { return 200 "addr $remote_addr $server_addr\n"; }
        location /up/ { proxy_pass http://unix:DIR/up.sock:; }
    }
}
`, port))
	dir, _ := servroot(t, conf)
	ul, err := net.Listen("unix", filepath.Join(dir, "up.sock"))
	if err != nil {
		t.Fatal(err)
	}
	echoHTTP(t, ul, "unix upstream")
	in := startForeground(t, s, dir)

	sock := filepath.Join(dir, "nginx.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("%s: %v, %v; want the socket nginx bound", sock, fi, err)
	}
	unixGet := func(path string, header map[string]string) (int, string) {
		t.Helper()
		c, err := net.DialTimeout("unix", sock, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		req, _ := http.NewRequest("GET", "http://localhost"+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		req.Close = true
		if err := req.Write(c); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil {
			t.Fatalf("GET %s over %s: %v", path, sock, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := unixGet("/addr", nil); code != 200 || body != "addr unix: unix:"+sock+"\n" {
		t.Errorf("GET /addr over the unix listener: %d %q, want 200 %q", code, body, "addr unix: unix:"+sock+"\n")
	}
	if code, body := unixGet("/addr", map[string]string{"X-Real-IP": "192.0.2.7"}); code != 200 || !strings.HasPrefix(body, "addr 192.0.2.7 ") {
		t.Errorf("GET /addr with X-Real-IP over the unix listener: %d %q, want the address from the header (set_real_ip_from unix:)", code, body)
	}
	// The same header over TCP is not trusted.
	if resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/addr", port)); resp.StatusCode != 200 || !strings.HasPrefix(string(body), "addr 127.0.0.1 ") {
		t.Errorf("GET /addr over TCP: %d %q, want the TCP peer", resp.StatusCode, body)
	}
	resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/up/x", port))
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "unix upstream /up/x from ") {
		t.Errorf("GET /up/x through the unix upstream: %d %q, want the upstream's answer", resp.StatusCode, body)
	}
	in.stop(t, syscall.SIGQUIT)
	noAlerts(t, dir)
	// nginx removes its unix socket when it exits, as natively.
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("%s after QUIT: %v, want it removed", sock, err)
	}
}

// TestProxyBind: proxy_bind binds the upstream connection's local address
// before connect (it answered EACCES: the vkernel created and connected
// outgoing sockets in one call), so the upstream sees 127.0.0.2.
func TestProxyBind(t *testing.T) {
	s := testShim(t)
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoHTTP(t, bl, "backend")
	port := shimtest.FreePort(t)
	conf := strings.ReplaceAll(sockConf, "EXTRA", fmt.Sprintf(`
http {
    access_log off;
    client_body_temp_path DIR/tmp_body;
    proxy_temp_path DIR/proxy_temp;
    server {
        listen 127.0.0.1:%d;
        location /bound/ { proxy_bind 127.0.0.2; proxy_pass http://%s; }
        location /free/ { proxy_pass http://%s; }
    }
}
`, port, bl.Addr(), bl.Addr()))
	dir, _ := servroot(t, conf)
	in := startForeground(t, s, dir)
	for path, from := range map[string]string{"/bound/x": "127.0.0.2", "/free/x": "127.0.0.1"} {
		resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if want := fmt.Sprintf("backend %s from %s\n", path, from); resp.StatusCode != 200 || string(body) != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
	}
	in.stop(t, syscall.SIGQUIT)
	noAlerts(t, dir)
}

// TestStreamUDP: a stream "listen ... udp" (which stopped nginx.wasm at
// start: the vkernel had no UDP sockets) proxies each datagram to a UDP
// upstream and the upstream's answer back to the client.
func TestStreamUDP(t *testing.T) {
	s := testShim(t)
	up, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := up.ReadFromUDP(buf)
			if err != nil {
				return
			}
			up.WriteToUDP([]byte("echo "+string(buf[:n])), from)
		}
	}()
	// A free UDP port on loopback for nginx.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uport := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	conf := strings.ReplaceAll(sockConf, "EXTRA", fmt.Sprintf(`
stream {
    server {
        listen 127.0.0.1:%d udp;
        proxy_pass %s;
        proxy_responses 1;
        proxy_timeout 5s;
    }
}
`, uport, up.LocalAddr()))
	dir, _ := servroot(t, conf)
	in := startForeground(t, s, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, msg := range []string{"one", "two"} {
		c, err := (&net.Dialer{}).DialContext(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", uport))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		c.Close()
		if err != nil || string(buf[:n]) != "echo "+msg {
			t.Errorf("datagram %q through the stream UDP proxy: got %q (%v), want %q", msg, buf[:n], err, "echo "+msg)
		}
	}
	in.stop(t, syscall.SIGQUIT)
	noAlerts(t, dir)
}

// TestReloadOwnSockets: on HUP the shim quits the instance and starts a
// new one; the sockets nginx bound itself (a unix listener, a UDP
// listener) are closed by the old instance (the unix path removed) and
// bound again by the new one, which serves the new configuration on both.
func TestReloadOwnSockets(t *testing.T) {
	s := testShim(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uport := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	conf := strings.ReplaceAll(sockConf, "EXTRA", fmt.Sprintf(`
http {
    access_log off;
    client_body_temp_path DIR/tmp_body;
    server { listen unix:DIR/nginx.sock; location / { return 200 "v1\n"; } }
}
stream {
    server { listen 127.0.0.1:%d udp; return "v1"; }
}
`, uport))
	dir, _ := servroot(t, conf)
	in := startForeground(t, s, dir)
	sock := filepath.Join(dir, "nginx.sock")
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}, Timeout: 5 * time.Second}
	both := func() (string, string) {
		var overUnix, overUDP string
		if resp, err := client.Get("http://localhost/"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			overUnix = string(b)
		}
		if c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", uport)); err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			c.Write([]byte("?"))
			b := make([]byte, 64)
			n, _ := c.Read(b)
			c.Close()
			overUDP = string(b[:n])
		}
		return overUnix, overUDP
	}
	if u, d := both(); u != "v1\n" || d != "v1" {
		t.Fatalf("before HUP: unix %q, UDP %q; want v1 on both", u, d)
	}
	confFile := filepath.Join(dir, "conf", "nginx.conf")
	data, _ := os.ReadFile(confFile)
	if err := os.WriteFile(confFile, []byte(strings.ReplaceAll(string(data), "v1", "v2")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	hup := time.Now()
	deadline := hup.Add(10 * time.Second)
	for {
		u, d := both()
		if u == "v2\n" && d == "v2" {
			t.Logf("v2 on both %v after HUP", time.Since(hup).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after HUP: unix %q, UDP %q; want v2 on both", u, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.stop(t, syscall.SIGQUIT)
	noAlerts(t, dir)
}
