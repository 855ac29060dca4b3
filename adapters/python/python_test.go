package python

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/local"
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

// newLocal returns a local target whose /work is a fresh host directory.
func newLocal(t *testing.T) (*local.Target, runners.Mount) {
	t.Helper()
	work := runners.Mount{Host: t.TempDir(), Guest: "/compat/work"}
	tg, err := local.New(local.Options{Name: "host", Mounts: []runners.Mount{work}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg, work
}

func byTest(rs []compat.Result) map[string]compat.Result {
	m := map[string]compat.Result{}
	for _, r := range rs {
		m[r.Test] = r
	}
	return m
}

func TestRunStdlibModules(t *testing.T) {
	py := hostPython(t)
	tg, work := newLocal(t)
	var mu sync.Mutex
	var progress []Progress
	mods := []string{"test_bool", "test_bisect", "test_winreg"}
	run, err := Run(context.Background(), tg, Options{
		Python:   []string{py},
		Modules:  mods,
		Work:     work,
		Dir:      "/compat/work",
		Parallel: 2,
		Timeout:  2 * time.Minute,
		Progress: func(p Progress) {
			mu.Lock()
			progress = append(progress, p)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if run.Suite != "python" || run.Target != "host" || run.Duration <= 0 || run.Properties["host.os"] == "" {
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
	rs := byTest(run.Results)
	if r := rs["test_bool.BoolTest.test_math"]; r.Status != compat.Pass || r.Unit != "test_bool" {
		t.Errorf("test_bool.BoolTest.test_math: %+v", r)
	}
	if r := rs["test_winreg"]; r.Status != compat.Skip || !strings.Contains(r.Message, "winreg") {
		t.Errorf("test_winreg: %+v", r)
	}
	if len(progress) != 3 || progress[2].Done != 3 || progress[2].Total != 3 {
		t.Fatalf("progress calls: %+v", progress)
	}
	for _, p := range progress {
		if p.Elapsed <= 0 || p.Counts.Total() == 0 || p.Err != nil {
			t.Errorf("progress for %s: %+v", p.Module, p)
		}
	}
	for _, m := range mods {
		if _, err := os.Stat(filepath.Join(work.Host, m+".xml")); err != nil {
			t.Errorf("regrtest's XML for %s: %v", m, err)
		}
	}
}

func TestRunBrokenModules(t *testing.T) {
	py := hostPython(t)
	tg, work := newLocal(t)
	lib, err := filepath.Abs(filepath.Join("testdata", "lib"))
	if err != nil {
		t.Fatal(err)
	}
	flakyDir := t.TempDir()
	t.Cleanup(func() { os.RemoveAll(filepath.Join(lib, "__pycache__")) })
	run, err := Run(context.Background(), tg, Options{
		Python:   []string{py, "-B"},
		Modules:  []string{"test_compatcrash", "test_compatctrl", "test_compatflaky", "test_compatsample", "test_compatslow"},
		Work:     work,
		Args:     []string{"--testdir", lib},
		Env:      []string{"COMPAT_FLAKY_DIR=" + flakyDir},
		Parallel: 2,
		Timeout:  8 * time.Second,
		Rerun:    true,
	})
	if err != nil {
		t.Fatalf("Run: %v (a crash, a timeout or a failure is a result, not an error)", err)
	}
	rs := byTest(run.Results)
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
	tg, work := newLocal(t)
	lib, _ := filepath.Abs(filepath.Join("testdata", "lib"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	run, err := Run(ctx, tg, Options{
		Python:  []string{py, "-B"},
		Modules: []string{"test_compatslow", "test_compatslow", "test_compatslow"},
		Work:    work,
		Args:    []string{"--testdir", lib},
	})
	if err == nil || !strings.Contains(err.Error(), "stopped after") {
		t.Errorf("err = %v, want the run to say it stopped early", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Run took %v after a 2s deadline", d)
	}
	rs := byTest(run.Results)
	if len(rs) != 3 {
		t.Errorf("results %v, want those of the first module only", summary(run.Results))
	}
	if r := rs["test_compatslow.Slow.test_a_fast"]; r.Status != compat.Pass {
		t.Errorf("the test that finished before the stop: %+v", r)
	}
	if r := rs["test_compatslow"]; r.Status != compat.Error || !strings.Contains(r.Message, "run stopped before the module finished") {
		t.Errorf("module result: %+v, want an error saying the run stopped", r)
	}
}

func TestRunNeedsWork(t *testing.T) {
	tg, _ := newLocal(t)
	if _, err := Run(context.Background(), tg, Options{Modules: []string{"test_bool"}}); err == nil {
		t.Error("Run without Options.Work gave no error")
	}
}
