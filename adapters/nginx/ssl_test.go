package nginx

// Tests of nginx.wasm's TLS (ngx_http_ssl_module and ngx_stream_ssl_module
// over images/openssl's OpenSSL for wasm32): the real nginx.wasm through
// the shim, with a certificate made by the host's openssl command, and Go's
// TLS client on loopback.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/shim/shimtest"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners/testenv"
)

// sslShim is testShim for a build with the SSL modules; it stops the test
// through testenv.Missing for a build made before images/openssl.
func sslShim(t *testing.T) *Shim {
	t.Helper()
	s := testShim(t)
	b, err := wasmbuild.Latest(compat.CacheRoot(), wasmbuild.Nginx)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := BuildHasSSL(b)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		testenv.Missing(t, "nginx.wasm in %s has no ngx_http_ssl_module (built before images/openssl): rebuild it (make images)", b.Dir)
	}
	return s
}

// selfSigned writes a self-signed certificate for localhost and 127.0.0.1
// (an EC P-256 key) into dir with the host's openssl command, and returns
// a pool that trusts it.
func selfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	openssl := testenv.Command(t, "openssl", "openssl")
	cmd := exec.Command(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-days", "2", "-subj", "/CN=localhost",
		"-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
		"-keyout", filepath.Join(dir, "key.pem"), "-out", filepath.Join(dir, "cert.pem"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("cert.pem from openssl req holds no certificate:\n%s", pem)
	}
	return pool
}

// TestHTTPS: nginx.wasm serves HTTPS on loopback: TLS 1.3 with HTTP/2
// chosen by ALPN, TLS 1.2 for a client that goes no further, X25519 as
// the only key exchange (ssl_ecdh_curve X25519, as Debian's ec-x25519
// autopkgtest), a 300 kB file intact, sessions in a shared cache, and the
// stream module's TLS termination. The client verifies the certificate
// for "localhost".
func TestHTTPS(t *testing.T) {
	s := sslShim(t)
	port, streamPort := shimtest.FreePort(t), shimtest.FreePort(t)
	conf := strings.ReplaceAll(sockConf, "EXTRA", fmt.Sprintf(`
http {
    access_log off;
    client_body_temp_path DIR/tmp_body;
    ssl_certificate DIR/cert.pem;
    ssl_certificate_key DIR/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ecdh_curve X25519;
    ssl_session_cache shared:SSL:1m;
    server {
        listen 127.0.0.1:%d ssl http2;
        root DIR/html;
        location = /info { return 200 "$ssl_protocol $server_protocol $ssl_session_reused\n"; }
        location = /hmac { set_hmac_sha256 $h "secret" "message"; set_encode_base64 $h $h; return 200 "$h\n"; }
    }
}
stream {
    ssl_certificate DIR/cert.pem;
    ssl_certificate_key DIR/key.pem;
    server {
        listen 127.0.0.1:%d ssl;
        return "stream $ssl_protocol\n";
    }
}
`, port, streamPort))
	dir, blob := servroot(t, conf)
	pool := selfSigned(t, dir)
	in := startForeground(t, s, dir)

	client := func(cfg *tls.Config) *http.Client {
		cfg.RootCAs, cfg.ServerName = pool, "localhost"
		if cfg.CurvePreferences == nil {
			cfg.CurvePreferences = []tls.CurveID{tls.X25519}
		}
		return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
	}
	fetch := func(c *http.Client, path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: reading the body: %v", path, err)
		}
		return resp, body
	}

	c13 := client(&tls.Config{MinVersion: tls.VersionTLS13})
	resp, body := fetch(c13, "/info")
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || string(body) != "TLSv1.3 HTTP/2.0 .\n" {
		t.Errorf("GET /info over TLS 1.3: %d %s %q, want 200 HTTP/2.0 \"TLSv1.3 HTTP/2.0 .\\n\"", resp.StatusCode, resp.Proto, body)
	}
	if resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN: %+v, want h2", resp.TLS)
	}
	if resp, got := fetch(c13, "/blob.bin"); resp.StatusCode != 200 || !bytes.Equal(got, blob) {
		t.Errorf("GET /blob.bin over TLS: status %d, %d bytes (want 200 and the %d bytes of the file)", resp.StatusCode, len(got), len(blob))
	}
	// set-misc's set_hmac_sha256 (built because OpenSSL is there):
	// base64 of HMAC-SHA256("secret", "message").
	if _, body := fetch(c13, "/hmac"); string(body) != "i19IcCmVwVmMVz2x4hhmqbgl1KeU0WnXBgoDYFeWNgs=\n" {
		t.Errorf("GET /hmac: %q, want base64 of HMAC-SHA256(secret, message)", body)
	}

	// TLS 1.2, HTTP/1.1; the second connection resumes the session from
	// nginx's shared cache. In TLS 1.2 the client's groups also name the
	// curves of ECDSA certificates it takes: P-256 (the certificate's) is
	// offered besides X25519 (the key exchange).
	cache := tls.NewLRUClientSessionCache(4)
	c12 := client(&tls.Config{MaxVersion: tls.VersionTLS12, ClientSessionCache: cache, NextProtos: []string{"http/1.1"},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}})
	c12.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	c12.Transport.(*http.Transport).DisableKeepAlives = true
	if resp, body := fetch(c12, "/info"); resp.StatusCode != 200 || string(body) != "TLSv1.2 HTTP/1.1 .\n" {
		t.Errorf("GET /info over TLS 1.2: %d %q, want 200 \"TLSv1.2 HTTP/1.1 .\\n\"", resp.StatusCode, body)
	}
	if resp, body := fetch(c12, "/info"); resp.StatusCode != 200 || string(body) != "TLSv1.2 HTTP/1.1 r\n" {
		t.Errorf("GET /info over TLS 1.2 again: %d %q, want the session reused (\"TLSv1.2 HTTP/1.1 r\\n\")", resp.StatusCode, body)
	}

	// A client that offers only P-256: nginx accepts X25519 alone.
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: pool, ServerName: "localhost", CurvePreferences: []tls.CurveID{tls.CurveP256}})
	if err == nil {
		conn.Close()
		t.Errorf("a handshake offering only P-256 succeeded; ssl_ecdh_curve X25519 should refuse it")
	}

	// The stream module terminates TLS too, with nginx 1.22's default
	// ssl_protocols (TLSv1 to TLSv1.2: 1.23.4 added TLSv1.3).
	sc, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Minute}, "tcp", fmt.Sprintf("127.0.0.1:%d", streamPort), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("stream TLS: %v", err)
	}
	line, err := bufio.NewReader(sc).ReadString('\n')
	sc.Close()
	if err != nil || line != "stream TLSv1.2\n" {
		t.Errorf("stream TLS answered %q (%v), want \"stream TLSv1.2\\n\"", line, err)
	}

	in.stop(t, syscall.SIGQUIT)
	noAlerts(t, dir)
}
