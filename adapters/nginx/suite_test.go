package nginx

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/suitetest"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/local"
	"github.com/compat-project/compat/runners/pipeline"
	"github.com/compat-project/compat/runners/testenv"
)

// suiteFor returns a Suite over the newest build running units (as
// New picks them from a list), or skips when a component it needs is
// missing.
func suiteFor(t *testing.T, units ...string) *Suite {
	t.Helper()
	b, err := wasmbuild.Latest(compat.CacheRoot(), wasmbuild.Nginx)
	if err != nil {
		testenv.Missing(t, "nginx.wasm is not built (make images): %v", err)
	}
	if _, err := os.Stat(b.Path("tests", "echo", "t", "echo.t")); err != nil {
		testenv.Missing(t, "the nginx.wasm build %s carries no module tests (rebuild it): %v", b.Dir, err)
	}
	s, err := New(Options{SuiteConfig: runners.SuiteConfig{Build: b.Dir, Profile: "quick", Units: units}})
	if err != nil {
		t.Fatal(err)
	}
	s.shim = []string{os.Args[0]}
	return s
}

// testNginx checks that Test::Nginx's library is fetched and loads.
func testNginx(t *testing.T) {
	t.Helper()
	lib, err := LatestTestNginx(compat.CacheRoot())
	if err != nil {
		testenv.Missing(t, "Test::Nginx is not fetched (make images): %v", err)
	}
	if out, err := exec.Command("perl", "-I", lib, "-MTest::Nginx::Socket", "-e", "1").CombinedOutput(); err != nil {
		testenv.Missing(t, "Test::Nginx does not load (make -f images/images.mk nginx-test-deps): %v: %s", err, out)
	}
}

// referenceImage checks that the suite's reference image is built.
func referenceImage(t *testing.T, s *Suite) {
	t.Helper()
	if err := exec.Command("docker", "image", "inspect", s.build.ReferenceImage()).Run(); err != nil {
		testenv.Missing(t, "reference image %s is not built (make -f images/images.mk nginx-image): %v", s.build.ReferenceImage(), err)
	}
}

// run runs s through the pipeline's loop on spec.
func run(t *testing.T, s *Suite, spec runners.TargetSpec) *compat.Run {
	t.Helper()
	r, err := pipeline.RunSuite(context.Background(), s, spec, pipeline.Options{Timeout: 5 * time.Minute, Progress: func(l string) { t.Log(l) }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func vkernelSpec(t *testing.T, s *Suite) runners.TargetSpec {
	t.Setenv(envTestShim, "1")
	return suitetest.Vkernel(t, compat.CacheRoot(), entry(s.build))
}

func referenceSpec(t *testing.T) runners.TargetSpec {
	return runners.TargetSpec{Kind: runners.Reference, Reference: runners.Docker, Cache: compat.CacheRoot(), Scratch: t.TempDir()}
}

func find(run *compat.Run, id string) *compat.Result {
	for i := range run.Results {
		if run.Results[i].Test == id {
			return &run.Results[i]
		}
	}
	return nil
}

// TestSuiteVkernel runs the echo module's echo.t with Test::Nginx on the
// host against nginx.wasm through the shim, on the target's megabinary.
func TestSuiteVkernel(t *testing.T) {
	s := suiteFor(t, "echo/echo.t")
	testNginx(t)
	spec := vkernelSpec(t, s)
	r := run(t, s, spec)
	c := r.Counts()
	t.Logf("echo/echo.t on the vkernel: %+v", c)
	// As natively (TestSuiteReference): all pass but TEST 27's 6 checks,
	// skipped for the lack of image_filter in both builds.
	if c.Pass != 106 || c.Fail != 0 || c.Error != 0 || c.Skip != 6 {
		t.Errorf("counts %+v: want 106 passes and the 6 image_filter skips", c)
	}
	if r := find(r, "echo/echo.t TEST 21: proxy - status code ok"); r == nil || r.Status != compat.Pass {
		t.Errorf("TEST 21 (proxy_pass to the instance itself, through its own connect()): %+v", r)
	}
	if r := find(r, "echo/echo.t TEST 1: sanity - response_body - response is expected (repeated req 0, req 0)"); r == nil || r.Status != compat.Pass {
		t.Errorf("TEST 1: %+v", r)
	}
	// The shim ran the target's megabinary: the run says so.
	if d := r.Properties[compat.PropMegabinaryDigest]; d != spec.Kernel.Digest() || r.Properties[compat.PropModuleDigest] == "" {
		t.Errorf("properties %v, want the megabinary digest %s and a module digest", r.Properties, spec.Kernel.Digest())
	}
}

// TestSuiteReference runs the same file in the reference image against
// Debian's nginx.
func TestSuiteReference(t *testing.T) {
	s := suiteFor(t, "echo/echo.t")
	referenceImage(t, s)
	r := run(t, s, referenceSpec(t))
	c := r.Counts()
	t.Logf("echo/echo.t on the reference: %+v", c)
	if c.Error != 0 || c.Pass < 106 {
		t.Errorf("counts %+v: want no error and at least 106 passes", c)
	}
	if r := find(r, "echo/echo.t TEST 21: proxy - status code ok"); r == nil || r.Status != compat.Pass {
		t.Errorf("TEST 21 (proxy_pass) natively: %+v", r)
	}
}

// nginxTestsSuite is a Suite over testdata/nginx-tests/compat_smoke.t, a
// file that drives TEST_NGINX_BINARY as nginx-tests does.
func nginxTestsSuite(t *testing.T) *Suite {
	s := suiteFor(t)
	dir, err := filepath.Abs("testdata/nginx-tests")
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{SuiteConfig: runners.SuiteConfig{Build: s.build.Dir}, NginxTests: dir})
	if err != nil {
		t.Fatal(err)
	}
	n.shim = s.shim
	return n
}

// checkSmoke checks a run of testdata/nginx-tests: compat_smoke.t's 9
// tests, compat_reload.t's 8 (the pid file through a reload) and
// compat_modules.t's 3 (the dynamic modules nginx -V lists load from
// TEST_NGINX_MODULES) all pass.
func checkSmoke(t *testing.T, r *compat.Run) {
	t.Helper()
	if c := r.Counts(); c.Pass != 20 || c.Total() != 20 {
		for _, r := range r.Results {
			t.Logf("%s: %s %s\n%s", r.Test, r.Status, r.Message, r.Output)
		}
		t.Fatalf("counts %+v, want the files' 20 tests passing", c)
	}
	for _, id := range []string{"nginx-tests/compat_smoke.t QUIT stops nginx", "nginx-tests/compat_smoke.t no alerts", "nginx-tests/compat_smoke.t pid file holds the pid that was started",
		"nginx-tests/compat_reload.t pid file never missing during the reload", "nginx-tests/compat_reload.t serves the new configuration after HUP",
		"nginx-tests/compat_reload.t runs unprivileged, as nginx-tests wants", "nginx-tests/compat_modules.t nginx -t loads them"} {
		if r := find(r, id); r == nil || r.Status != compat.Pass {
			t.Errorf("%s: %+v", id, r)
		}
	}
}

// TestNginxTestsMode runs the nginx-tests-style file through the Suite in
// its nginx-tests mode on the vkernel.
func TestNginxTestsMode(t *testing.T) {
	s := nginxTestsSuite(t)
	checkSmoke(t, run(t, s, vkernelSpec(t, s)))
}

// TestNginxTestsModeReference runs the same file in the reference image
// against Debian's /usr/sbin/nginx.
func TestNginxTestsModeReference(t *testing.T) {
	s := nginxTestsSuite(t)
	referenceImage(t, s)
	checkSmoke(t, run(t, s, referenceSpec(t)))
}

// openedSuite is a Suite whose Open returns a session made by the test.
type openedSuite struct {
	*Suite
	ss *session
}

func (o openedSuite) Open(context.Context, runners.TargetSpec) (runners.Session, error) {
	return o.ss, nil
}

// TestUnitErrorsDoNotEndTheRun: a file whose TAP does not parse and a file
// the target cannot run (its directory is gone) are unit errors with the
// command that reproduces them; they used to end the run. The file after
// them still runs. prove is a stand-in on PATH.
func TestUnitErrorsDoNotEndTheRun(t *testing.T) {
	bin, work := t.TempDir(), t.TempDir()
	prove := `#!/bin/sh
for f; do :; done
case "$f" in
*bad.t) echo "ok 1 - before the long line"; head -c 5000000 /dev/zero | tr '\0' x; echo ;;
*) echo "1..1"; echo "ok 1 - fine" ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "prove"), []byte(prove), 0o755); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(work, "echo"), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	tg, err := local.New(local.Options{Name: runners.Reference, Env: []string{"TEST_NGINX_NO_SHUFFLE=1"}})
	if err != nil {
		t.Fatal(err)
	}
	s := &Suite{harness: HarnessTestNginx, units: []runners.Unit{{Name: "echo/bad.t"}, {Name: "gone/x.t"}, {Name: "echo/good.t"}}}
	ss := &session{suite: s, spec: runners.TargetSpec{Kind: runners.Reference}, target: tg, work: runners.Mount{Host: work, Guest: work}}
	r, err := pipeline.RunSuite(context.Background(), openedSuite{s, ss}, runners.TargetSpec{Kind: runners.Reference, Reference: runners.Docker}, pipeline.Options{})
	if r == nil {
		t.Fatal(err)
	}
	if err == nil || !strings.Contains(err.Error(), "1 unit(s) could not run") {
		t.Errorf("err = %v, want the target's failure said once the run is over", err)
	}
	bad := find(r, "echo/bad.t")
	if bad == nil || bad.Status != compat.Error || !strings.Contains(bad.Message, "does not parse as TAP") ||
		!strings.HasPrefix(bad.Output, "$ cd "+filepath.Join(work, "echo")+" && env TEST_NGINX_NO_SHUFFLE=1 prove -v --formatter TAP::Formatter::Console t/bad.t\n") {
		t.Errorf("TAP error: %v; results %+v", bad, r)
	}
	if ok := find(r, "echo/bad.t before the long line"); ok == nil || ok.Status != compat.Pass {
		t.Errorf("the test before the bad line: %+v", ok)
	}
	if gone := find(r, "gone/x.t"); gone == nil || gone.Status != compat.Error || !strings.Contains(gone.Output, "prove -v --formatter TAP::Formatter::Console t/x.t") {
		t.Errorf("target error: %+v", gone)
	}
	if good := find(r, "echo/good.t fine"); good == nil || good.Status != compat.Pass {
		t.Errorf("the file after the errors did not run: %+v", r.Results)
	}
}

// TestNewSelects: the suite picks autopkgtests out of a list
// (cmd/compat used to), checks the names against the build, and names
// nginx-tests units by their checkout.
func TestNewSelects(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(`{"source":{"version":"1.22.1-9+deb12u9"}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "nginx.wasm"), nil, 0o644)
	for _, m := range Modules {
		os.MkdirAll(filepath.Join(dir, "tests", m, "t"), 0o755)
		os.WriteFile(filepath.Join(dir, "tests", m, "t", "a.t"), nil, 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "debian-tests"), 0o755)
	os.WriteFile(filepath.Join(dir, "debian-tests", "control"), []byte("Tests: ssi-module-test\n\nTests: reboot\nRestrictions: needs-reboot\n"), 0o644)
	s, err := New(Options{SuiteConfig: runners.SuiteConfig{Build: dir, Units: []string{"debian/tests/reboot", "echo/a.t"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []runners.Unit{{Name: "echo/a.t"}, {Name: "debian/tests/reboot", Kind: KindAutopkgtest}}
	if got := s.Plan().Units; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("units %+v, want %+v", got, want)
	}
	if k := s.Plan().Kinds; !k[""].Serial || !k[KindAutopkgtest].Serial {
		t.Errorf("kinds %+v: files share a port, one at a time", k)
	}
	if _, err := New(Options{SuiteConfig: runners.SuiteConfig{Build: dir, Units: []string{"echo/none.t"}}}); err == nil || !strings.Contains(err.Error(), "echo/none.t") {
		t.Errorf("unknown file: %v", err)
	}
	if _, err := New(Options{SuiteConfig: runners.SuiteConfig{Build: dir, Units: []string{"debian/tests/none"}}}); err == nil || !strings.Contains(err.Error(), "ssi-module-test, reboot") {
		t.Errorf("unknown autopkgtest: %v", err)
	}
	s, err = New(Options{SuiteConfig: runners.SuiteConfig{Build: dir, Profile: "full"}})
	if err != nil || len(s.Plan().Units) != len(Modules)+2 {
		t.Errorf("full profile: %+v, %v", s, err)
	}
	checkout := t.TempDir()
	os.WriteFile(filepath.Join(checkout, "x.t"), nil, 0o644)
	if _, err := New(Options{SuiteConfig: runners.SuiteConfig{Build: dir}, NginxTests: checkout}); err == nil || !strings.Contains(err.Error(), "lib/Test/Nginx.pm") {
		t.Errorf("a directory without lib/Test/Nginx.pm: %v", err)
	}
	os.MkdirAll(filepath.Join(checkout, "lib", "Test"), 0o755)
	os.WriteFile(filepath.Join(checkout, "lib", "Test", "Nginx.pm"), nil, 0o644)
	s, err = New(Options{SuiteConfig: runners.SuiteConfig{Build: dir}, NginxTests: checkout})
	if err != nil || len(s.Plan().Units) != 1 || s.Plan().Units[0].Name != "nginx-tests/x.t" {
		t.Errorf("nginx-tests: %+v, %v", s, err)
	}
	s, err = New(Options{SuiteConfig: runners.SuiteConfig{Build: dir, Units: []string{"nginx-tests/x.t"}}, NginxTests: checkout})
	if err != nil || len(s.Plan().Units) != 1 || s.Plan().Units[0].Name != "nginx-tests/x.t" {
		t.Errorf("nginx-tests, a file named with its unit prefix: %+v, %v", s, err)
	}
	// Unknown names are all reported, before the build is looked for.
	if _, err := New(Options{SuiteConfig: runners.SuiteConfig{Cache: t.TempDir(), Units: []string{"nosuch.t", "x.t", "echo/echo.t"}}, NginxTests: checkout}); err == nil ||
		!strings.Contains(err.Error(), `unknown unit(s) "nosuch.t", "echo/echo.t"`) {
		t.Errorf("unknown nginx-tests files: %v", err)
	}
	if _, err := New(Options{SuiteConfig: runners.SuiteConfig{Build: dir, Units: []string{"echo/none.t", "echo/a.t", "set-misc/none.t"}}}); err == nil ||
		!strings.Contains(err.Error(), `"echo/none.t", "set-misc/none.t"`) {
		t.Errorf("unknown module files: %v", err)
	}
	if _, err := s.Open(context.Background(), runners.TargetSpec{Kind: runners.Reference, Reference: runners.Local, Scratch: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "-reference docker") {
		t.Errorf("a local reference: %v", err)
	}
}
