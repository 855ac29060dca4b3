package pipeline

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
	"github.com/compat-project/compat/adapters/python"
)

func cacheRoot() string {
	if d := os.Getenv("COMPAT_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "compat")
}

func harness(t *testing.T, build *python.Build, modules ...string) *python.Harness {
	return &python.Harness{Build: build, Modules: modules, Parallel: 2, Timeout: 5 * time.Minute}
}

// brokenBuild makes a copy of build whose builtin sorted() no longer sorts
// (replaced at start-up by a sitecustomize module): a deliberately broken
// build. The copy hard-links the stdlib, so it is cheap.
func brokenBuild(t *testing.T, build *python.Build) *python.Build {
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-al", filepath.Join(build.Dir, "lib"), filepath.Join(dir, "lib")).CombinedOutput(); err != nil {
		t.Fatalf("copying the stdlib: %v\n%s", err, out)
	}
	for _, f := range []string{"python.wasm", "build-info.json"} {
		if err := os.Link(filepath.Join(build.Dir, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	site := filepath.Join(dir, "lib", "python3.11", "sitecustomize.py")
	if err := os.WriteFile(site, []byte("import builtins\nbuiltins.sorted = lambda iterable, *args, **kwargs: list(iterable)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := python.OpenBuild(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRegressionsFromABrokenBuild runs two regrtest modules on the real
// python.wasm in the vkernel, records them as the baseline, checks a second
// run matches it, then runs a build with sorted() patched out and checks
// the pipeline reports regressions, with every JUnit file written.
func TestRegressionsFromABrokenBuild(t *testing.T) {
	build, err := python.LatestBuild(cacheRoot())
	if err != nil {
		testenv.Missing(t, "needs a python.wasm build (make images): %v", err)
	}
	ctx := context.Background()
	base := t.TempDir()
	modules := []string{"test_bisect", "test_sort"}
	cfg := func(b *python.Build, out string) Config {
		return Config{Suites: []Suite{harness(t, b, modules...)}, Targets: []string{"vkernel"}, Reference: "local",
			Out: out, Baselines: base, Cache: cacheRoot()}
	}
	first := filepath.Join(t.TempDir(), "first")
	o, err := Run(ctx, cfg(build, first))
	if err != nil {
		t.Fatal(err)
	}
	if c := o.Runs[0].Counts(); c.Pass < 50 || c.Fail+c.Error > 0 {
		t.Fatalf("healthy build: %+v", c)
	}
	if _, _, err := UpdateBaseline(first, base, "python", "vkernel"); err != nil {
		t.Fatal(err)
	}
	o, err = Run(ctx, cfg(build, filepath.Join(t.TempDir(), "second")))
	if err != nil || o.Regressions() != 0 || o.Diffs[0].Matched == 0 {
		t.Fatalf("healthy build against its own baseline: err %v, regressions %d", err, o.Regressions())
	}

	brokenOut := filepath.Join(t.TempDir(), "broken")
	o, err = Run(ctx, cfg(brokenBuild(t, build), brokenOut))
	if err != nil {
		t.Fatal(err)
	}
	if o.Regressions() == 0 {
		t.Fatalf("sorted() patched out, but no regressions: %+v", o.Runs[0].Counts())
	}
	// The tests still run; the ones that sort fail.
	var failed int
	for _, c := range o.Diffs[0].Of(compat.Regression) {
		if c.Got == compat.Fail {
			failed++
		}
	}
	if failed == 0 {
		t.Errorf("no regression is a failed test: %+v", o.Diffs[0].Of(compat.Regression))
	}
	for _, f := range []string{"python-vkernel.xml", "python-vkernel.json", "summary.md", "compat.vkmb"} {
		if _, err := os.Stat(filepath.Join(brokenOut, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	summary, _ := os.ReadFile(filepath.Join(brokenOut, "summary.md"))
	if !strings.Contains(string(summary), "Regressions") {
		t.Errorf("summary does not list regressions first:\n%.600s", summary)
	}
	t.Logf("broken build: %d regressions", o.Regressions())
}

// TestBrokenBaselineStopsEarly: a baseline file with a bad line is reported
// with its name and line before anything runs.
func TestBrokenBaselineStopsEarly(t *testing.T) {
	base := t.TempDir()
	os.WriteFile(filepath.Join(base, "python-vkernel.txt"), []byte("pass test_a.T.t\nfail test_b.T.t\n"), 0o644)
	build := &python.Build{Dir: t.TempDir(), Version: "x"}
	_, err := Run(context.Background(), Config{Suites: []Suite{harness(t, build, "test_a")}, Targets: []string{"vkernel"},
		Out: t.TempDir(), Baselines: base})
	if err == nil || !strings.Contains(err.Error(), "python-vkernel.txt:2") {
		t.Fatalf("err = %v, want one naming python-vkernel.txt:2", err)
	}
}
