package nginx

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat"
)

// suiteFor returns a Suite over the newest build running files, or skips
// when a component it needs is missing.
func suiteFor(t *testing.T, files ...string) *Suite {
	t.Helper()
	b, err := LatestBuild(cacheRoot())
	if err != nil {
		testenv.Missing(t, "nginx.wasm is not built (make images): %v", err)
	}
	if _, err := os.Stat(filepath.Join(b.Dir, "tests", "echo", "t", "echo.t")); err != nil {
		testenv.Missing(t, "the nginx.wasm build %s carries no module tests (rebuild it): %v", b.Dir, err)
	}
	return &Suite{Build: b, Files: files, Shim: []string{os.Args[0]}, Cache: cacheRoot(), Timeout: 5 * time.Minute}
}

func counts(run compat.Run) compat.Counts {
	var c compat.Counts
	for _, r := range run.Results {
		c.Add(r)
	}
	return c
}

func find(run compat.Run, id string) *compat.Result {
	for i := range run.Results {
		if run.Results[i].Test == id {
			return &run.Results[i]
		}
	}
	return nil
}

// TestSuiteVkernel runs the echo module's echo.t with Test::Nginx on the
// host against nginx.wasm through the shim.
func TestSuiteVkernel(t *testing.T) {
	s := suiteFor(t, "echo/echo.t")
	lib, err := LatestTestNginx(cacheRoot())
	if err != nil {
		testenv.Missing(t, "Test::Nginx is not fetched (make images): %v", err)
	}
	if out, err := exec.Command("perl", "-I", lib, "-MTest::Nginx::Socket", "-e", "1").CombinedOutput(); err != nil {
		testenv.Missing(t, "Test::Nginx does not load (make -f images/images.mk nginx-test-deps): %v: %s", err, out)
	}
	t.Setenv(envTestShim, "1")
	ctx := context.Background()
	target, work, err := s.Target(ctx, "vkernel", nil, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	var lines []string
	run, err := s.Run(ctx, target, work, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	c := counts(run)
	t.Logf("echo/echo.t on the vkernel: %+v; %s", c, strings.Join(lines, "; "))
	// As natively (TestSuiteReference): all pass but TEST 27's 6 checks,
	// skipped for the lack of image_filter in both builds.
	if c.Pass != 106 || c.Fail != 0 || c.Error != 0 || c.Skip != 6 {
		t.Errorf("counts %+v: want 106 passes and the 6 image_filter skips", c)
	}
	if r := find(run, "echo/echo.t TEST 21: proxy - status code ok"); r == nil || r.Status != compat.Pass {
		t.Errorf("TEST 21 (proxy_pass to the instance itself, through vkernel.sock_connect): %+v", r)
	}
	if r := find(run, "echo/echo.t TEST 1: sanity - response_body - response is expected (repeated req 0, req 0)"); r == nil || r.Status != compat.Pass {
		t.Errorf("TEST 1: %+v", r)
	}
	if run.Properties[compat.PropMegabinaryDigest] == "" || run.Properties[compat.PropModuleDigest] == "" {
		t.Errorf("properties lack the digests: %v", run.Properties)
	}
}

// TestSuiteReference runs the same file in the reference image against
// Debian's nginx.
func TestSuiteReference(t *testing.T) {
	s := suiteFor(t, "echo/echo.t")
	if err := exec.Command("docker", "image", "inspect", s.Build.ReferenceImage()).Run(); err != nil {
		testenv.Missing(t, "reference image %s is not built (make -f images/images.mk nginx-image): %v", s.Build.ReferenceImage(), err)
	}
	ctx := context.Background()
	target, work, err := s.Target(ctx, "reference", nil, "docker", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	run, err := s.Run(ctx, target, work, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	c := counts(run)
	t.Logf("echo/echo.t on the reference: %+v", c)
	if c.Error != 0 || c.Pass < 106 {
		t.Errorf("counts %+v: want no error and at least 106 passes", c)
	}
	if r := find(run, "echo/echo.t TEST 21: proxy - status code ok"); r == nil || r.Status != compat.Pass {
		t.Errorf("TEST 21 (proxy_pass) natively: %+v", r)
	}
}

// TestNginxTestsMode runs testdata/nginx-tests/compat_smoke.t, a file
// that drives TEST_NGINX_BINARY as nginx-tests does, through the Suite in
// its nginx-tests mode on the vkernel.
func TestNginxTestsMode(t *testing.T) {
	s := suiteFor(t)
	dir, err := filepath.Abs("testdata/nginx-tests")
	if err != nil {
		t.Fatal(err)
	}
	s.Harness, s.Dir = HarnessNginxTests, dir
	if s.Files, err = NginxTestsFiles(dir); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envTestShim, "1")
	ctx := context.Background()
	target, work, err := s.Target(ctx, "vkernel", nil, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	run, err := s.Run(ctx, target, work, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	c := counts(run)
	if c.Pass != 9 || c.Total() != 9 {
		for _, r := range run.Results {
			t.Logf("%s: %s %s\n%s", r.Test, r.Status, r.Message, r.Output)
		}
		t.Fatalf("counts %+v, want the file's 9 tests passing", c)
	}
	for _, id := range []string{"nginx-tests/compat_smoke.t QUIT stops nginx", "nginx-tests/compat_smoke.t no alerts", "nginx-tests/compat_smoke.t pid file holds the pid that was started"} {
		if r := find(run, id); r == nil || r.Status != compat.Pass {
			t.Errorf("%s: %+v", id, r)
		}
	}
}

// TestNginxTestsModeReference runs the same nginx-tests-style file in the
// reference image against Debian's /usr/sbin/nginx.
func TestNginxTestsModeReference(t *testing.T) {
	s := suiteFor(t)
	if err := exec.Command("docker", "image", "inspect", s.Build.ReferenceImage()).Run(); err != nil {
		testenv.Missing(t, "reference image %s is not built (make -f images/images.mk nginx-image): %v", s.Build.ReferenceImage(), err)
	}
	dir, err := filepath.Abs("testdata/nginx-tests")
	if err != nil {
		t.Fatal(err)
	}
	s.Harness, s.Dir, s.Files = HarnessNginxTests, dir, []string{"compat_smoke.t"}
	ctx := context.Background()
	target, work, err := s.Target(ctx, "reference", nil, "docker", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	run, err := s.Run(ctx, target, work, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if c := counts(run); c.Pass != 9 || c.Total() != 9 {
		for _, r := range run.Results {
			t.Logf("%s: %s %s\n%s", r.Test, r.Status, r.Message, r.Output)
		}
		t.Fatalf("counts %+v, want the file's 9 tests passing natively too", c)
	}
}
