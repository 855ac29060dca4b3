package python

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/pipeline"
	"github.com/compat-project/compat/runners/testenv"
)

// copyBuild makes a copy of build (hard links: cheap) with files added to
// or replaced in its stdlib, named relative to lib/python3.11.
func copyBuild(t *testing.T, build *wasmbuild.Build, files map[string][]byte) *wasmbuild.Build {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-al", build.Path("lib"), filepath.Join(dir, "lib")).CombinedOutput(); err != nil {
		t.Fatalf("copying the stdlib: %v\n%s", err, out)
	}
	for _, f := range []string{"python.wasm", "build-info.json"} {
		if err := os.Link(build.Path(f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range files {
		// Written anew, not through the link: the original stays as it is.
		path := filepath.Join(dir, "lib", "python3.11", name)
		os.Remove(path)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := wasmbuild.Open(dir, wasmbuild.Python)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// brokenBuild makes a copy of build whose builtin sorted() no longer sorts
// (replaced at start-up by a sitecustomize module): a deliberately broken
// build.
func brokenBuild(t *testing.T, build *wasmbuild.Build) *wasmbuild.Build {
	return copyBuild(t, build, map[string][]byte{
		"sitecustomize.py": []byte("import builtins\nbuiltins.sorted = lambda iterable, *args, **kwargs: list(iterable)\n"),
	})
}

// TestRegressionsFromABrokenBuild runs two regrtest modules on the real
// python.wasm in the vkernel through the pipeline, records them as the
// baseline, checks a second run matches it, then runs a build with sorted()
// patched out and checks the pipeline reports regressions, with every
// output file written.
func TestRegressionsFromABrokenBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs regrtest on python.wasm; skipped with -short")
	}
	build, err := wasmbuild.Latest(compat.CacheRoot(), wasmbuild.Python)
	if err != nil {
		testenv.Missing(t, "needs a python.wasm build (make images): %v", err)
	}
	ctx := context.Background()
	base := t.TempDir()
	modules := []string{"test_bisect", "test_sort"}
	cfg := func(b *wasmbuild.Build, out string) pipeline.Config {
		return pipeline.Config{Suites: []runners.Suite{&Suite{build: b, modules: modules}}, Targets: []string{runners.Vkernel},
			Out: out, Baselines: base, Cache: compat.CacheRoot(), Exec: testenv.CompatExec(t), Options: pipeline.Options{Parallel: 2}}
	}
	first := filepath.Join(t.TempDir(), "first")
	o, err := pipeline.Run(ctx, cfg(build, first))
	if err != nil {
		t.Fatal(err)
	}
	if c := o.Runs[0].Counts(); c.Pass < 50 || c.Fail+c.Error > 0 {
		t.Fatalf("healthy build: %+v", c)
	}
	// The polyfill coverage map: both units' interpreters, each in a
	// compat exec process of its own, counted their host calls.
	if h := o.Runs[0].HostCalls; h == nil || h.Units != len(modules) {
		t.Errorf("coverage map %+v: want both units", h)
	} else {
		byName := map[string]compat.HostCall{}
		for _, c := range h.Functions {
			byName[c.Function] = c
		}
		// Every interpreter opens its stdlib's files and writes its
		// output.
		for _, f := range []string{"wasi_snapshot_preview1.path_open", "wasi_snapshot_preview1.fd_write", "wasi_snapshot_preview1.args_get"} {
			if c := byName[f]; c.Units != len(modules) || c.Calls < uint64(len(modules)) {
				t.Errorf("%s: %d calls by %d units, want calls by each unit", f, c.Calls, c.Units)
			}
		}
		t.Logf("coverage: %d of %d host functions called", h.Exercised(), len(h.Functions))
	}
	if _, err := os.Stat(filepath.Join(first, pipeline.HostCallsFile)); err != nil {
		t.Errorf("no coverage map for tools: %v", err)
	}
	if _, _, err := pipeline.UpdateBaseline(first, base, "python", "vkernel"); err != nil {
		t.Fatal(err)
	}
	o, err = pipeline.Run(ctx, cfg(build, filepath.Join(t.TempDir(), "second")))
	if err != nil || o.Regressions() != 0 || o.Diffs[0].Matched == 0 {
		t.Fatalf("healthy build against its own baseline: err %v, regressions %d", err, o.Regressions())
	}

	brokenOut := filepath.Join(t.TempDir(), "broken")
	o, err = pipeline.Run(ctx, cfg(brokenBuild(t, build), brokenOut))
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
	for _, f := range []string{"python-vkernel.xml", "python-vkernel.json", "summary.md", "compat.vkmb", "run-key.pub"} {
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
