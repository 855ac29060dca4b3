package python

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/suitetest"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/pipeline"
	"github.com/compat-project/compat/runners/testenv"
)

// hostPython finds Debian's python3.11 with its regrtest package
// (libpython3.11-testsuite), the interpreter the integration tests drive.
func hostPython(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the host's python3.11 regrtest; skipped with -short")
	}
	const py = "/usr/bin/python3.11"
	if _, err := os.Stat(py); err != nil {
		testenv.Missing(t, "%s not installed (Debian package python3.11): %v", py, err)
	}
	if _, err := os.Stat("/usr/lib/python3.11/test/libregrtest"); err != nil {
		testenv.Missing(t, "python3.11's regrtest not installed (Debian package libpython3.11-testsuite)")
	}
	return py
}

// testSuite returns a Suite over a stand-in build (build-info.json and an
// empty python.wasm: the local reference runs the host's interpreter) that
// runs mods with python.
func testSuite(t *testing.T, python []string, mods ...string) *Suite {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(`{"source": {"version": "3.11.2-6+deb12u8"}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "python.wasm"), nil, 0o644)
	b, err := wasmbuild.Open(dir, wasmbuild.Python)
	if err != nil {
		t.Fatal(err)
	}
	return &Suite{build: b, modules: mods, localPython: python}
}

// runLocal runs s on the local reference, as compat run -reference local
// does, and returns the run and its progress lines.
func runLocal(t *testing.T, ctx context.Context, s *Suite, opts pipeline.Options) (*compat.Run, []string, error) {
	t.Helper()
	var lines []string
	opts.Progress = func(l string) { lines = append(lines, l) }
	spec := runners.TargetSpec{Kind: runners.Reference, Reference: runners.Local, Scratch: t.TempDir()}
	run, err := pipeline.RunSuite(ctx, s, spec, opts)
	if run == nil {
		t.Fatalf("RunSuite: %v", err)
	}
	return run, lines, err
}

func TestRunStdlibModules(t *testing.T) {
	py := hostPython(t)
	mods := []string{"test_bool", "test_bisect", "test_winreg"}
	run, progress, err := runLocal(t, context.Background(), testSuite(t, []string{py}, mods...), pipeline.Options{Parallel: 2, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if run.Suite != "python" || run.Target != "reference" || run.Duration <= 0 || run.Properties["host.os"] == "" ||
		run.Properties["version.python3.11"] != "3.11.2-6+deb12u8" {
		t.Errorf("run header: %+v", run)
	}
	c := run.Counts()
	// test_bool has 29 tests, test_bisect over 30; test_winreg is one
	// skip for the module.
	if c.Fail+c.Error != 0 || c.Pass < 55 || c.Skip < 1 {
		for _, r := range run.Results {
			if r.Status != compat.Pass {
				t.Logf("%s %s %s\n%s", r.Test, r.Status, r.Message, r.Output)
			}
		}
		t.Fatalf("counts %+v, want about 60 passes, the test_winreg skip and no failures", c)
	}
	rs := suitetest.ByTest(run.Results)
	if r := rs["test_bool.BoolTest.test_math"]; r.Status != compat.Pass || r.Unit != "test_bool" {
		t.Errorf("test_bool.BoolTest.test_math: %+v", r)
	}
	if r := rs["test_winreg"]; r.Status != compat.Skip || !strings.Contains(r.Message, "winreg") {
		t.Errorf("test_winreg: %+v", r)
	}
	if len(progress) != 3 || !strings.Contains(progress[2], " 3/3: pass ") {
		t.Fatalf("progress lines: %q", progress)
	}
}

func TestRunBrokenModules(t *testing.T) {
	py := hostPython(t)
	lib, err := filepath.Abs(filepath.Join("testdata", "lib"))
	if err != nil {
		t.Fatal(err)
	}
	flakyDir := t.TempDir()
	t.Cleanup(func() { os.RemoveAll(filepath.Join(lib, "__pycache__")) })
	s := testSuite(t, []string{py, "-B"}, "test_compatcrash", "test_compatctrl", "test_compatflaky", "test_compatsample", "test_compatslow")
	s.args = []string{"--testdir", lib}
	s.env = []string{"COMPAT_FLAKY_DIR=" + flakyDir}
	run, _, err := runLocal(t, context.Background(), s, pipeline.Options{Parallel: 2, Timeout: 8 * time.Second, Rerun: true})
	if err != nil {
		t.Fatalf("RunSuite: %v (a crash, a timeout or a failure is a result, not an error)", err)
	}
	rs := suitetest.ByTest(run.Results)
	want := map[string]compat.Status{
		"test_compatcrash":                                 compat.Error,
		"test_compatcrash.Crash.test_a_passes":             compat.Pass,
		"test_compatcrash.Crash.test_b_skips":              compat.Skip,
		"test_compatcrash.Crash.test_c_aborts":             compat.Error,
		"test_compatctrl":                                  compat.Error,
		"test_compatctrl.Control.test_ok":                  compat.Pass,
		"test_compatctrl.Control.test_prints_control_char": compat.Fail,
		"test_compatflaky.Flaky.test_flaky":                compat.Pass,
		"test_compatflaky.Flaky.test_always_fails":         compat.Fail,
		"test_compatflaky.Flaky.test_passes":               compat.Pass,
		"test_compatsample.Outcomes.test_fail":             compat.Fail,
		"test_compatsample.Outcomes.test_subtests":         compat.Fail,
		"test_compatsample.BrokenSetup.setUpClass":         compat.Error,
		"test_compatslow":                                  compat.Error,
		"test_compatslow.Slow.test_a_fast":                 compat.Pass,
		"test_compatslow.Slow.test_b_sleeps":               compat.Error,
	}
	for id, st := range want {
		r, ok := rs[id]
		if !ok {
			t.Errorf("%s: no result", id)
			continue
		}
		if r.Status != st {
			t.Errorf("%s: %s (%s), want %s", id, r.Status, r.Message, st)
		}
	}
	if _, ok := rs["test_compatcrash.Crash.test_d_never_runs"]; ok {
		t.Error("a test after the crash has a result")
	}
	if r := rs["test_compatcrash"]; !strings.Contains(r.Message, "signal: aborted") || !strings.Contains(r.Output, "Fatal Python error: Aborted") {
		t.Errorf("crash result: message %q, output tail %q", r.Message, r.Output)
	}
	// The unit's error result starts with the command that reproduces
	// it, as the target runs it.
	if r := rs["test_compatcrash"]; !strings.HasPrefix(r.Output, "$ env COMPAT_FLAKY_DIR=") ||
		!strings.Contains(r.Output, py+" -B -m test -v --junit-xml ") || !strings.Contains(r.Output, " --testdir "+lib+" test_compatcrash\n") {
		t.Errorf("crash result does not start with its command:\n%s", r.Output)
	}
	if r := rs["test_compatslow"]; !strings.Contains(r.Message, "timed out after 8s") {
		t.Errorf("timeout result: %q", r.Message)
	}
	if r := rs["test_compatflaky.Flaky.test_flaky"]; !r.Flaky() || r.Previous[0].Message != "AssertionError: first run fails" {
		t.Errorf("flaky test: %+v, want a pass after a failure", r)
	}
	if r := rs["test_compatflaky.Flaky.test_always_fails"]; len(r.Previous) != 1 || r.Flaky() {
		t.Errorf("test failing on rerun too: %+v, want a failure with one previous failure", r)
	}
}

func TestRunCancelled(t *testing.T) {
	py := hostPython(t)
	lib, _ := filepath.Abs(filepath.Join("testdata", "lib"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s := testSuite(t, []string{py, "-B"}, "test_compatslow", "test_compatslow", "test_compatslow")
	s.args = []string{"--testdir", lib}
	run, _, err := runLocal(t, ctx, s, pipeline.Options{})
	if err == nil || !strings.Contains(err.Error(), "stopped after") {
		t.Errorf("err = %v, want the run to say it stopped early", err)
	}
	// The unit the stop cut keeps what passed before it; it gets no error
	// result (its unreached tests are "not run"), and the run lists it as
	// incomplete with the reason.
	rs := suitetest.ByTest(run.Results)
	if len(rs) != 1 {
		t.Errorf("results %v, want the first module's finished test only", summary(run.Results))
	}
	if r := rs["test_compatslow.Slow.test_a_fast"]; r.Status != compat.Pass {
		t.Errorf("the test that finished before the stop: %+v", r)
	}
	if !run.Partial() || len(run.Incomplete) == 0 || run.Incomplete[0].Unit != "test_compatslow" ||
		!strings.Contains(run.Incomplete[0].Reason, "run was stopped before the unit finished") {
		t.Errorf("incomplete units %+v, want test_compatslow stopped by the run", run.Incomplete)
	}
}

// TestOpenNeedsAKernel: the vkernel target without the pipeline's kernel
// is an error naming it, not a crash.
func TestOpenNeedsAKernel(t *testing.T) {
	s := testSuite(t, nil, "test_bool")
	if _, err := s.Open(context.Background(), runners.TargetSpec{Kind: runners.Vkernel, Scratch: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "kernel") {
		t.Errorf("Open on the vkernel without a kernel: %v", err)
	}
}

// TestNew: explicit modules replace the profile's; a profile is checked
// against the build's Lib/test.
func TestNew(t *testing.T) {
	s := testSuite(t, nil)
	lib := libTest(s.build)
	os.MkdirAll(lib, 0o755)
	for _, m := range Quick {
		os.WriteFile(filepath.Join(lib, m+".py"), nil, 0o644)
	}
	got, err := New(runners.SuiteConfig{Build: s.build.Dir, Profile: "quick"})
	if err != nil || len(got.Plan().Units) != len(Quick) || !got.Plan().Kinds[""].Rerun {
		t.Fatalf("quick: %+v, %v", got, err)
	}
	os.MkdirAll(filepath.Join(lib, "test_x"), 0o755)
	got, err = New(runners.SuiteConfig{Build: s.build.Dir, Units: []string{"test_x"}})
	if err != nil || len(got.Plan().Units) != 1 || got.Plan().Units[0].Name != "test_x" {
		t.Fatalf("explicit: %+v, %v", got, err)
	}
	// Every unknown module is named at once, before anything runs.
	if _, err := New(runners.SuiteConfig{Build: s.build.Dir, Units: []string{"test_nosuch", "test_x", "test_other"}}); err == nil ||
		!strings.Contains(err.Error(), `unknown unit(s) "test_nosuch", "test_other"`) {
		t.Errorf("unknown modules: %v", err)
	}
	if _, err := New(runners.SuiteConfig{Build: s.build.Dir, Profile: "slow"}); err == nil {
		t.Error("an unknown profile was accepted")
	}
	if _, err := New(runners.SuiteConfig{Cache: t.TempDir(), Profile: "quick"}); err == nil || !strings.Contains(err.Error(), "python.wasm") {
		t.Errorf("no build: %v", err)
	}
}
