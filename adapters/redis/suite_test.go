package redis

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/pipeline"
	"github.com/compat-project/compat/runners/testenv"
)

// fakeBuild lays out a build with an empty module and a suite whose
// ::all_tests lists units.
func fakeBuild(t *testing.T, units ...string) *wasmbuild.Build {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(`{"source":{"version":"5:7.0.15-1~deb12u10"}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "redis-server.wasm"), []byte("\x00asm"), 0o644)
	os.MkdirAll(filepath.Join(dir, "suite", "tests"), 0o755)
	os.WriteFile(filepath.Join(dir, "suite", "tests", "test_helper.tcl"), []byte("set ::all_tests {\n"+strings.Join(units, "\n")+"\n}\n"), 0o644)
	b, err := wasmbuild.Open(dir, wasmbuild.Redis)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNewSelectsModes: cmd/compat used to decide which units run in spawn
// mode; the suite does, for a profile and for a list alike, and gives
// spawn-mode units their own timeout (the one -timeout did not reach).
func TestNewSelectsModes(t *testing.T) {
	b := fakeBuild(t, "unit/printver", "unit/type/list", "integration/replication", "integration/rdb", "unit/moduleapi/x")
	s, err := New(Options{SuiteConfig: runners.SuiteConfig{Build: b.Dir, Profile: "full"}, Differential: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Plan()
	var got []string
	for _, u := range p.Units {
		got = append(got, u.Kind+":"+u.Name)
	}
	want := []string{":unit/printver", ":unit/type/list", ":unit/moduleapi/x", "spawn:integration/replication", "spawn:integration/rdb", "differential:differential"}
	if !slices.Equal(got, want) {
		t.Errorf("full profile units %q, want %q", got, want)
	}
	if k := p.Kinds[KindSpawn]; k.Timeout != SpawnTimeout || !k.Serial || k.Rerun {
		t.Errorf("spawn kind %+v", k)
	}
	if k := p.Kinds[""]; k.Serial || k.Timeout != 0 {
		t.Errorf("external kind %+v: parallel, with the pipeline's timeout", k)
	}
	s, err = New(Options{SuiteConfig: runners.SuiteConfig{Build: b.Dir, Units: []string{"integration/rdb", "unit/type/list"}}})
	if err != nil {
		t.Fatal(err)
	}
	if u := s.Plan().Units; len(u) != 2 || u[0] != (runners.Unit{Name: "unit/type/list"}) || u[1] != (runners.Unit{Name: "integration/rdb", Kind: KindSpawn}) {
		t.Errorf("explicit units %+v: external first, then spawn mode", u)
	}
	// A unit outside ::all_tests that runtest --single can run is known;
	// every unknown name is reported at once.
	os.MkdirAll(b.Path("suite", "tests", "unit", "extra"), 0o755)
	os.WriteFile(b.Path("suite", "tests", "unit", "extra", "x.tcl"), nil, 0o644)
	if _, err := New(Options{SuiteConfig: runners.SuiteConfig{Build: b.Dir, Units: []string{"unit/extra/x", DifferentialUnit}}}); err != nil {
		t.Errorf("a unit file outside ::all_tests: %v", err)
	}
	if _, err := New(Options{SuiteConfig: runners.SuiteConfig{Build: b.Dir, Units: []string{"unit/nosuch", "unit/type/list", "../x"}}}); err == nil ||
		!strings.Contains(err.Error(), `unknown unit(s) "unit/nosuch", "../x"`) {
		t.Errorf("unknown units: %v", err)
	}
	s, _ = New(Options{SuiteConfig: runners.SuiteConfig{Build: b.Dir, Profile: "quick"}})
	if u := s.Plan().Units; len(u) != len(Quick)+len(QuickSpawn) || u[len(u)-1].Kind != KindSpawn {
		t.Errorf("quick profile: %+v", u)
	}
	if _, err := New(Options{SuiteConfig: runners.SuiteConfig{Build: b.Dir, Profile: "slow"}}); err == nil {
		t.Error("an unknown profile was accepted")
	}
	if _, err := New(Options{SuiteConfig: runners.SuiteConfig{Cache: t.TempDir(), Profile: "quick"}}); err == nil || !strings.Contains(err.Error(), "redis-server.wasm") {
		t.Errorf("no build: %v", err)
	}
	if e := s.Entries()[0]; e.Name != "redis-server" || e.Wasm != b.Wasm() || e.Resources.Listeners != MaxListeners {
		t.Errorf("entry %+v", e)
	}
}

// TestDifferentialDirectoryError: a data directory the differential check
// cannot make is an error result per seed naming it (the error was
// ignored, and the server then wrote wherever it started).
func TestDifferentialDirectoryError(t *testing.T) {
	scratch := t.TempDir()
	os.WriteFile(filepath.Join(scratch, "differential-host"), nil, 0o644)
	ss := &session{suite: &Suite{diffSeeds: 2}, spec: runners.TargetSpec{Scratch: scratch}}
	rep := ss.differential(context.Background())
	if len(rep.Results) != 2 {
		t.Fatalf("results %+v, want one per seed", rep.Results)
	}
	for _, r := range rep.Results {
		if r.Status != compat.Error || !strings.Contains(r.Message, "differential-host") {
			t.Errorf("%s: %s %q, want an error naming the directory", r.Test, r.Status, r.Message)
		}
	}
	if rep.Command == "" {
		t.Error("no command")
	}
}

// TestDifferentialUnit runs the differential check as a unit of the
// pipeline against the host's own redis-server on the local reference.
func TestDifferentialUnit(t *testing.T) {
	b := testBuild(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Missing(t, "the host has no redis-server (apt-get install redis-server)")
	}
	s := &Suite{build: b, diffSeeds: 2, diffCount: 500, units: selectUnits(nil, true)}
	var lines []string
	run, err := pipeline.RunSuite(context.Background(), s, runners.TargetSpec{Kind: runners.Reference, Reference: runners.Local, Scratch: t.TempDir()},
		pipeline.Options{Progress: func(l string) { lines = append(lines, l) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Results) != 2 || run.Results[0].Test != "differential: seed 1" || run.Results[1].Status != compat.Pass {
		t.Fatalf("results %+v", run.Results)
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "differential 1/1: pass 2,") {
		t.Errorf("progress %q", lines)
	}
}

// TestSpawnQuick runs the quick profile's spawn-mode unit through the
// pipeline on the vkernel, where runtest starts redis-server.wasm itself
// through the shim on the target's own megabinary, and on the host's
// native redis-server beside it: both pass every test they report, and the
// vkernel run records that spawn mode ran the megabinary it names.
func TestSpawnQuick(t *testing.T) {
	b := testBuild(t)
	t.Setenv(envTestShim, "1")
	specs := map[string]runners.TargetSpec{"vkernel": testKernel(t, b)}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		specs["host"] = runners.TargetSpec{Kind: runners.Reference, Reference: runners.Local, Scratch: t.TempDir()}
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			s := &Suite{build: b, units: selectUnits(QuickSpawn, false), shim: []string{os.Args[0]}}
			run, err := pipeline.RunSuite(context.Background(), s, spec, pipeline.Options{Timeout: 5 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			c := run.Counts()
			for _, r := range run.Results {
				if r.Status != compat.Pass && r.Status != compat.Skip {
					t.Errorf("%s: %s: %s\n%s", r.Test, r.Status, r.Message, r.Output)
				}
			}
			if c.Pass == 0 {
				t.Fatalf("no test passed: %+v", run.Results)
			}
			if spec.Kind == runners.Vkernel {
				if d := run.Properties[SpawnMegabinaryProp]; d == "" || d != run.Properties[compat.PropMegabinaryDigest] || d != spec.Kernel.Digest() {
					t.Errorf("spawn mode ran %q, the run's megabinary is %q", d, run.Properties[compat.PropMegabinaryDigest])
				}
			}
		})
	}
}
