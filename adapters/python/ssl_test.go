package python

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners/testenv"
)

// TestSSLOnTheVkernel runs testdata/ssl/test_compat_ssl.py on the real
// python.wasm in the vkernel, through the pipeline as compat run does:
// _hashlib's digests, KDFs and HMAC over OpenSSL (images/openssl),
// ssl.create_default_context(), random bytes, and TLS handshakes over
// loopback TCP (in one process with non-blocking sockets, and against a
// child python.wasm server) with a self-signed certificate that the host's
// openssl command makes for localhost. Every test must pass.
func TestSSLOnTheVkernel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python.wasm; skipped with -short")
	}
	build, err := wasmbuild.Latest(compat.CacheRoot(), wasmbuild.Python)
	if err != nil {
		testenv.Missing(t, "needs a python.wasm build (make images): %v", err)
	}
	for _, mod := range []string{"_ssl", "_hashlib"} {
		if state := moduleState(t, build, mod); state != "yes" {
			testenv.Missing(t, "python.wasm in %s has no %s module (state %q: built before images/openssl): rebuild it (make images)", build.Dir, mod, state)
		}
	}
	openssl := testenv.Command(t, "openssl", "openssl")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cmd := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
		"-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
		"-keyout", key, "-out", cert)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	files := map[string][]byte{}
	for name, path := range map[string]string{"compat_ssl_cert.pem": cert, "compat_ssl_key.pem": key} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Join("test", name)] = data
	}
	runCompatModule(t, copyBuild(t, build, files), filepath.Join("testdata", "ssl", "test_compat_ssl.py"), 9)
}

// moduleState is what configure decided for the stdlib extension module
// name ("yes", "missing", "disabled", "n/a"), from the build's
// build-info.json, or "" when it does not say.
func moduleState(t *testing.T, build *wasmbuild.Build, name string) string {
	t.Helper()
	data, err := os.ReadFile(build.Path("build-info.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Modules map[string]string `json:"modules"`
	}
	if err := json.Unmarshal(data, &info); err != nil {
		t.Fatalf("%s: build-info.json: %v", build.Dir, err)
	}
	return info.Modules[name]
}
