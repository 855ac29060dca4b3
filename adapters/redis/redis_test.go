package redis

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/suitetest"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/runners/pipeline"
	"github.com/compat-project/compat/runners/testenv"
)

// build finds the output of images/redis/build-wasm.sh in the cache (the
// newest complete one), or skips: the suite comes from it.
func build(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Redis servers and the Tcl suite; skipped with -short")
	}
	if _, err := exec.LookPath("tclsh"); err != nil {
		testenv.Missing(t, "tclsh is not installed (apt-get install tcl)")
	}
	root := os.Getenv("COMPAT_CACHE")
	if root == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			testenv.Missing(t, "%v", err)
		}
		root = filepath.Join(c, "compat")
	}
	dones, _ := filepath.Glob(filepath.Join(root, "redis-wasm", "*", ".done"))
	if len(dones) == 0 {
		testenv.Missing(t, "no redis-server.wasm build under %s (make -f images/images.mk redis-wasm)", root)
	}
	sort.Slice(dones, func(i, j int) bool {
		a, _ := os.Stat(dones[i])
		b, _ := os.Stat(dones[j])
		return a.ModTime().After(b.ModTime())
	})
	return filepath.Dir(dones[0])
}

// scratchSuite copies the build's suite and adds testdata/units.
func scratchSuite(t *testing.T, out string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "suite")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(out, "suite"))); err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob(filepath.Join("testdata", "units", "*.tcl"))
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tests", "unit", filepath.Base(u)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testKernel returns the vkernel target's spec for a megabinary of b's
// entry, as the pipeline makes it.
func testKernel(t *testing.T, b *wasmbuild.Build) runners.TargetSpec {
	return suitetest.Vkernel(t, filepath.Join(os.TempDir(), "compat-redis-test-aot"), entry(b))
}

func testBuild(t *testing.T) *wasmbuild.Build {
	t.Helper()
	b, err := wasmbuild.Open(build(t), wasmbuild.Redis)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// check runs real units through the pipeline on the target spec describes
// and checks what each must give: a unit that passes, one of every
// outcome, a server that crashes and a server that hangs, all in one
// bounded run.
func check(t *testing.T, b *wasmbuild.Build, spec runners.TargetSpec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := &Suite{build: b, suiteDir: scratchSuite(t, b.Dir), args: []string{"--skiptest", "compat skipped by --skiptest"},
		units: selectUnits([]string{"unit/type/incr", "unit/compat_sample", "unit/compat_crash", "unit/compat_hang"}, false)}
	start := time.Now()
	run, err := pipeline.RunSuite(ctx, s, spec, pipeline.Options{Parallel: 2, Timeout: 15 * time.Second,
		Progress: func(line string) { t.Log(line) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d results in %v", spec.Kind, len(run.Results), time.Since(start).Round(time.Millisecond))
	byUnit := map[string]compat.Counts{}
	m := map[string]compat.Result{}
	for _, r := range run.Results {
		c := byUnit[r.Unit]
		c.Add(r)
		byUnit[r.Unit] = c
		m[r.Test] = r
	}
	if c := byUnit["unit/type/incr"]; c.Pass < 20 || c.Fail+c.Error != 0 {
		for _, r := range run.Results {
			if r.Unit == "unit/type/incr" && r.Status.Failed() {
				t.Logf("%s: %s\n%s", r.Test, r.Message, r.Output)
			}
		}
		t.Errorf("unit/type/incr: %+v, want only passes", c)
	}
	for test, want := range map[string]compat.Status{
		"unit/compat_sample: compat passes":                  compat.Pass,
		"unit/compat_sample: compat fails: an assertion":     compat.Fail,
		"unit/compat_sample: compat fails: a wrong result":   compat.Fail,
		"unit/compat_sample: compat skipped by --skiptest":   compat.Skip,
		"unit/compat_sample: compat ignored: a tag":          compat.Skip,
		"unit/compat_sample: compat passes after the others": compat.Pass,
		"unit/compat_crash: compat before the crash":         compat.Pass,
		"unit/compat_hang: compat before the hang":           compat.Pass,
	} {
		if r, ok := m[test]; !ok || r.Status != want {
			t.Errorf("%s: %+v, want %s", test, r, want)
		}
	}
	if r, ok := m["unit/compat_sample"]; ok {
		t.Errorf("unit/compat_sample ran to its end but has a unit error: %s", r.Message)
	}
	t.Logf("crash: %s", m["unit/compat_crash"].Message)
	if r := m["unit/compat_crash"]; r.Status != compat.Error || !strings.Contains(r.Message, "server ended in the middle of the unit") {
		t.Errorf("crash: %q %q", r.Status, r.Message)
	}
	// The unit error shows both commands: the server's on the target and
	// runtest's on the host.
	if r := m["unit/compat_crash"]; !strings.Contains(r.Output, "redis-server") || !strings.Contains(r.Output, "tclsh tests/test_helper.tcl --host 127.0.0.1 --port ") ||
		!strings.Contains(r.Output, "--single unit/compat_crash") {
		t.Errorf("crash result lacks the commands that reproduce it:\n%s", r.Output)
	}
	if r := m["unit/compat_hang"]; r.Status != compat.Error || !strings.Contains(r.Message, "timed out after 15s") {
		t.Errorf("hang: %q %q", r.Status, r.Message)
	}
	if _, ok := m["unit/compat_crash: compat after the crash"]; ok {
		t.Error("a test after the crash reported")
	}
}

func TestLocalServer(t *testing.T) {
	b := testBuild(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Missing(t, "the host has no redis-server (apt-get install redis-server)")
	}
	check(t, b, runners.TargetSpec{Kind: runners.Reference, Reference: runners.Local, Scratch: t.TempDir()})
}

func TestReferenceImage(t *testing.T) {
	b := testBuild(t)
	if err := exec.Command("docker", "image", "inspect", b.ReferenceImage()).Run(); err != nil {
		testenv.Missing(t, "reference image %s (images/redis/build-image.sh): %v", b.ReferenceImage(), err)
	}
	defer docker.PurgeAll()
	check(t, b, runners.TargetSpec{Kind: runners.Reference, Reference: runners.Docker, Scratch: t.TempDir()})
}

func TestVkernel(t *testing.T) {
	b := testBuild(t)
	check(t, b, testKernel(t, b))
}
