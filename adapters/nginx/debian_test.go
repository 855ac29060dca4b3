package nginx

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/suitetest"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/runners/pipeline"
	"github.com/compat-project/compat/runners/testenv"
)

func TestParseControl(t *testing.T) {
	control := `# comment
Tests: one, two
Restrictions: allow-stderr isolation-container
Depends: nginx-light, curl

Tests: three
Restrictions: isolation-container, needs-root,
  needs-reboot
Depends: nginx (>= 1.22),
         libnginx-mod-http-lua [amd64 arm64],
         foo | bar
`
	got, err := parseControl([]byte(control))
	if err != nil {
		t.Fatal(err)
	}
	want := []DebianTest{
		{Name: "one", Depends: []string{"nginx-light", "curl"}, Restrictions: []string{"allow-stderr", "isolation-container"}},
		{Name: "two", Depends: []string{"nginx-light", "curl"}, Restrictions: []string{"allow-stderr", "isolation-container"}},
		{Name: "three", Depends: []string{"nginx", "libnginx-mod-http-lua", "foo"}, Restrictions: []string{"isolation-container", "needs-root", "needs-reboot"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseControl:\n got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"", "Depends: curl\n", "  continuation first\n", "no colon here\n"} {
		if _, err := parseControl([]byte(bad)); err == nil {
			t.Errorf("parseControl(%q) accepted", bad)
		}
	}
}

func TestDebianSkip(t *testing.T) {
	x25519 := DebianTest{Name: "ec-x25519", Depends: []string{"nginx-light", "ssl-cert", "curl"}}
	for _, c := range []struct {
		test DebianTest
		kind string
		ssl  bool   // nginx.wasm has ngx_http_ssl_module
		skip string // a word of the reason, "" for none
	}{
		{DebianTest{Name: "light-simple", Depends: []string{"nginx-light", "curl"}}, "vkernel", false, ""},
		{DebianTest{Name: "reboot", Restrictions: []string{"needs-reboot"}}, "reference", true, "reboot"},
		{DebianTest{Name: "abicheck", Depends: []string{"nginx-dev"}}, "reference", true, "nginx-dev"},
		{x25519, "vkernel", false, "ssl"},
		{x25519, "vkernel", true, ""},
		{x25519, "reference", false, ""},
	} {
		got := debianSkip(c.test, c.kind, c.ssl)
		if (c.skip == "") != (got == "") || !strings.Contains(got, c.skip) {
			t.Errorf("debianSkip(%s, %s, ssl=%v) = %q, want a reason with %q", c.test.Name, c.kind, c.ssl, got, c.skip)
		}
	}
}

func TestInterpreter(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{"#!/bin/bash\nset -e\n": "/bin/bash", "#!/bin/sh -e\n": "/bin/sh", "echo no shebang\n": "sh"} {
		p := filepath.Join(dir, "script")
		os.WriteFile(p, []byte(body), 0o644)
		if got := interpreter(p); got != want {
			t.Errorf("interpreter(%q) = %q, want %q", body, got, want)
		}
	}
	if got := interpreter(filepath.Join(dir, "missing")); got != "sh" {
		t.Errorf("interpreter(missing) = %q, want sh", got)
	}
}

// TestDebianTests runs three of Debian's autopkgtests of nginx through the
// pipeline on both targets, in containers of the reference image: the SSI
// test (restart through the init script, a page through two modules) must
// pass on both, the TLS test (ec-x25519) must pass on the reference and on
// the vkernel when nginx.wasm has ngx_http_ssl_module (BuildHasSSL; an
// older build skips it), and the reboot test is skipped everywhere. The vkernel side
// runs a real compat binary, built here, as /usr/sbin/nginx, on the
// target's own megabinary, and counts its host calls for the coverage map.
func TestDebianTests(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers; skipped with -short")
	}
	s := suiteFor(t, "debian/tests/ssi-module-test", "debian/tests/ec-x25519", "debian/tests/reboot")
	if _, err := DebianTests(s.build); err != nil {
		testenv.Missing(t, "the nginx.wasm build %s carries no autopkgtests (rebuild it): %v", s.build.Dir, err)
	}
	if err := exec.Command("docker", "image", "inspect", s.build.ReferenceImage()).Run(); err != nil {
		testenv.Missing(t, "reference image %s is not built (make -f images/images.mk nginx-image): %v", s.build.ReferenceImage(), err)
	}
	s.exe = filepath.Join(t.TempDir(), "compat")
	if out, err := exec.Command("go", "build", "-o", s.exe, "../../cmd/compat").CombinedOutput(); err != nil {
		t.Fatalf("building compat: %v\n%s", err, out)
	}
	defer docker.PurgeAll()
	ssl, err := BuildHasSSL(s.build)
	if err != nil {
		t.Fatal(err)
	}
	vkTLS, vkUnits := compat.Skip, 1
	if ssl {
		vkTLS, vkUnits = compat.Pass, 2
	}
	want := map[string]map[string]compat.Status{
		"reference": {"ssi-module-test": compat.Pass, "ec-x25519": compat.Pass, "reboot": compat.Skip},
		"vkernel":   {"ssi-module-test": compat.Pass, "ec-x25519": vkTLS, "reboot": compat.Skip},
	}
	for kind, statuses := range want {
		t.Run(kind, func(t *testing.T) {
			spec := runners.TargetSpec{Kind: runners.Reference, Reference: runners.Docker, Cache: compat.CacheRoot(), Scratch: t.TempDir()}
			if kind == runners.Vkernel {
				spec = suitetest.Vkernel(t, compat.CacheRoot(), entry(s.build))
			}
			run, err := pipeline.RunSuite(context.Background(), s, spec, pipeline.Options{Progress: func(line string) { t.Log(line) }})
			if err != nil {
				t.Fatal(err)
			}
			if len(run.Results) != 3 {
				t.Errorf("%d results, want 3", len(run.Results))
			}
			for _, r := range run.Results {
				name := strings.TrimPrefix(r.Test, DebianTestsUnit+"/")
				if r.Status != statuses[name] || r.Unit != r.Test {
					t.Errorf("%s (unit %s): %s (%s), want %s\n%s", r.Test, r.Unit, r.Status, r.Message, statuses[name], r.Output)
				}
			}
			if kind == runners.Vkernel {
				// The shim's kernels in the container count host calls
				// into the unit's directory: the units that ran count.
				if run.HostCalls == nil || run.HostCalls.Units != vkUnits {
					t.Fatalf("host calls %+v, want %d units' (ssi-module-test, and ec-x25519 with SSL)", run.HostCalls, vkUnits)
				}
				var calls uint64
				for _, f := range run.HostCalls.Functions {
					calls += f.Calls
				}
				if calls == 0 {
					t.Errorf("the unit's map has no calls: %+v", run.HostCalls)
				}
			}
		})
	}
}

func TestBuildHasSSL(t *testing.T) {
	for info, want := range map[string]bool{
		`{"source": {"version": "1.22.1-9"}, "configure_args": ["--with-http_ssl_module", "--with-stream"]}`:           true,
		`{"source": {"version": "1.22.1-9"}, "configure_args": ["--with-stream", "--with-stream_ssl_preread_module"]}`: false,
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(info), 0o644)
		os.WriteFile(filepath.Join(dir, "nginx.wasm"), nil, 0o644)
		b, err := wasmbuild.Open(dir, wasmbuild.Nginx)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := BuildHasSSL(b); err != nil || got != want {
			t.Errorf("BuildHasSSL of %s = %v, %v; want %v", info, got, err, want)
		}
	}
	b := &wasmbuild.Build{Dir: t.TempDir(), Recipe: wasmbuild.Nginx}
	if _, err := BuildHasSSL(b); err == nil || !strings.Contains(err.Error(), "build-info.json") {
		t.Errorf("BuildHasSSL of a build without build-info.json: %v, want an error naming it", err)
	}
}
