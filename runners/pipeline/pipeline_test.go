package pipeline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from this run")

// fakeSuite is a runners.Suite that runs no program: each unit's behaviour
// is a function of the target, the tests asked for and the unit's context.
type fakeSuite struct {
	entries []megabinary.SpecEntry
	units   []runners.Unit
	kinds   map[string]runners.Kind
	run     func(ctx context.Context, spec runners.TargetSpec, u runners.Unit, tests []string) runners.Report
}

func (s *fakeSuite) Name() string                    { return "fake" }
func (s *fakeSuite) Entries() []megabinary.SpecEntry { return s.entries }
func (s *fakeSuite) Plan() runners.Plan              { return runners.Plan{Units: s.units, Kinds: s.kinds} }
func (s *fakeSuite) Open(_ context.Context, spec runners.TargetSpec) (runners.Session, error) {
	return &fakeSession{s: s, spec: spec}, nil
}

type fakeSession struct {
	s    *fakeSuite
	spec runners.TargetSpec
}

func (ss *fakeSession) Properties() map[string]string {
	return map[string]string{"fake.target": ss.spec.Kind, compat.PropVersionPrefix + "fake": "1.0"}
}
func (ss *fakeSession) Run(ctx context.Context, u runners.Unit, tests []string) runners.Report {
	return ss.s.run(ctx, ss.spec, u, tests)
}
func (ss *fakeSession) Close() error { return nil }

func pass(unit, test string) compat.Result {
	return compat.Result{Unit: unit, Test: unit + "." + test, Status: compat.Pass, Duration: 10 * time.Millisecond}
}

func fail(unit, test, msg string) compat.Result {
	return compat.Result{Unit: unit, Test: unit + "." + test, Status: compat.Fail, Duration: 10 * time.Millisecond,
		Message: msg, Output: "Traceback:\n  " + msg}
}

// goldenSuite has a unit of every ending on the vkernel: all passing, a
// flaky test and one failing again on its rerun, a crash, a timeout of a
// kind with its own limit, a target that fails, a unit skipped as a whole.
// The reference passes them all.
func goldenSuite() *fakeSuite {
	return &fakeSuite{
		units: []runners.Unit{{Name: "unit_pass"}, {Name: "unit_flaky"}, {Name: "unit_crash"}, {Name: "unit_target"}, {Name: "unit_skipped"},
			{Name: "slow_hang", Kind: "slow"}},
		kinds: map[string]runners.Kind{"": {Rerun: true}, "slow": {Timeout: 50 * time.Millisecond, Serial: true}},
		run: func(ctx context.Context, spec runners.TargetSpec, u runners.Unit, tests []string) runners.Report {
			rep := runners.Report{Command: "fake-runner --target " + spec.Kind + " " + u.Name}
			if spec.Kind == runners.Reference {
				rep.Results = []compat.Result{pass(u.Name, "a"), pass(u.Name, "b")}
				return rep
			}
			// The vkernel processes of the units write their host calls
			// as real ones do (goldenHostCalls).
			switch u.Name {
			case "unit_pass":
				rep.Results = []compat.Result{pass(u.Name, "a"), pass(u.Name, "b"), pass(u.Name, "c")}
				writeHostCalls(ctx, map[string]uint64{"wasi_snapshot_preview1.fd_write": 3, "wasi_snapshot_preview1.clock_time_get": 2})
			case "unit_flaky":
				if len(tests) == 0 {
					rep.Results = []compat.Result{pass(u.Name, "a"), fail(u.Name, "b", "first run fails"), fail(u.Name, "c", "always fails")}
					// A process and its child.
					writeHostCalls(ctx, map[string]uint64{"wasi_snapshot_preview1.fd_write": 1, "vkernel.proc_spawn": 1})
					writeHostCalls(ctx, map[string]uint64{"wasi_snapshot_preview1.fd_write": 1})
				} else {
					// The rerun: b passes now, c fails again.
					rep.Command += " --only " + strings.Join(tests, ",")
					rep.Results = []compat.Result{pass(u.Name, "b"), fail(u.Name, "c", "always fails")}
					writeHostCalls(ctx, map[string]uint64{"wasi_snapshot_preview1.fd_write": 1})
				}
			case "unit_crash":
				writeHostCalls(ctx, map[string]uint64{"wasi_snapshot_preview1.fd_write": 5, "vkernel.proc_spawn": 2})
				rep.Results = []compat.Result{pass(u.Name, "a")}
				rep.Output = "running a ... ok\nrunning b ...\nFatal error: Segmentation fault\n"
				rep.Err = errors.New("signal: segmentation fault, but no test failed")
			case "unit_target":
				rep.Err = runners.TargetError(errors.New("fake target: the container is gone"))
			case "unit_skipped":
				rep.Results = []compat.Result{{Unit: u.Name, Test: u.Name, Status: compat.Skip, Message: "needs a feature this platform lacks"}}
			case "slow_hang":
				rep.Results = []compat.Result{pass(u.Name, "a")}
				<-ctx.Done()
				rep.Output = "a ... ok\nb ..."
				rep.Err = ctx.Err()
			}
			return rep
		},
	}
}

// writeHostCalls writes calls as one vkernel process of the unit whose
// context ctx is would (vkernel.WriteHostCalls, to the directory the
// pipeline gives the unit).
func writeHostCalls(ctx context.Context, calls map[string]uint64) {
	dir := runners.HostCallsDir(ctx)
	if dir == "" {
		panic("a unit on the vkernel has no host calls directory")
	}
	names := vkernel.HostFunctions()
	counts := make([]uint64, len(names))
	for i, name := range names {
		counts[i] = calls[name]
		delete(calls, name)
	}
	if len(calls) > 0 {
		panic(fmt.Sprintf("no such host functions: %v", calls))
	}
	if err := vkernel.WriteHostCalls(dir, "fake", counts); err != nil {
		panic(err)
	}
}

// goldenHostCalls is the coverage map of goldenSuite's units on the
// vkernel: the flaky unit's rerun adds calls, not a unit.
var goldenHostCalls = map[string]compat.HostCall{
	"wasi_snapshot_preview1.fd_write":       {Calls: 3 + 1 + 1 + 1 + 5, Units: 3},
	"wasi_snapshot_preview1.clock_time_get": {Calls: 2, Units: 1},
	"vkernel.proc_spawn":                    {Calls: 1 + 2, Units: 2},
}

// The baseline the vkernel run is compared with: a regression, a known
// failure, a flaky test, a removed test and an unexpected pass among them.
const goldenBaseline = `pass  slow_hang.a
pass  slow_hang.b
pass  unit_crash.a
pass  unit_crash.b
pass  unit_flaky.a
fail  unit_flaky.b  # flaky upstream
pass  unit_flaky.c
pass  unit_pass.a
fail  unit_pass.b  # was broken
pass  unit_pass.gone
skip  unit_skipped  # needs a feature
pass  unit_target.a
`

// normalise blanks what differs from run to run: times and durations.
func normalise(name string, data []byte) []byte {
	s := string(data)
	switch filepath.Ext(name) {
	case ".xml":
		s = regexp.MustCompile(`(time|timestamp)="[^"]*"`).ReplaceAllString(s, `$1="T"`)
	case ".json":
		s = regexp.MustCompile(`"Start": "[^"]*"`).ReplaceAllString(s, `"Start": "T"`)
		// Durations, and the unit times (the only other numbers).
		s = regexp.MustCompile(`"(\w+)": \d+`).ReplaceAllString(s, `"$1": 0`)
	case ".md":
		s = regexp.MustCompile(`(?m)^(\| (?:vkernel|reference) \|(?: [^|]* \|){6}) [^|]* \|$`).ReplaceAllString(s, "$1 T |")
		s = normaliseTimes(s)
	}
	return []byte(s)
}

// normaliseTimes blanks the figures of the summary's unit time sections
// and sorts their table rows by unit: the units that crashed or timed out
// take wall-clock time, so their ratios and thus the rows' order vary.
func normaliseTimes(s string) string {
	figure := regexp.MustCompile(`\d+\.\d+( s|×)`)
	lines := strings.Split(s, "\n")
	inTimes := false
	for i := 0; i < len(lines); i++ {
		switch {
		case strings.HasPrefix(lines[i], "### Time per unit"):
			inTimes = true
		case strings.HasPrefix(lines[i], "#"):
			inTimes = false
		}
		if !inTimes {
			continue
		}
		lines[i] = figure.ReplaceAllString(lines[i], "T$1")
		if strings.HasPrefix(lines[i], "| `") {
			j := i
			for j < len(lines) && strings.HasPrefix(lines[j], "| `") {
				lines[j] = figure.ReplaceAllString(lines[j], "T$1")
				j++
			}
			sort.Strings(lines[i:j])
			i = j - 1
		}
	}
	return strings.Join(lines, "\n")
}

// TestGolden runs the fake suite through the whole pipeline on both
// targets and compares every file it writes with testdata/golden (go test
// ./runners/pipeline -update rewrites them).
func TestGolden(t *testing.T) {
	// The coverage map of a short ABI of the functions goldenSuite calls
	// and two it does not: the golden files stay as they are when host
	// functions are added.
	defer func(f func() []string) { hostFunctions = f }(hostFunctions)
	hostFunctions = func() []string {
		return []string{"wasi_snapshot_preview1.fd_write", "wasi_snapshot_preview1.clock_time_get", "wasi_snapshot_preview1.path_open",
			"vkernel.proc_spawn", "vkernel.proc_fork"}
	}
	out, base := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "fake-vkernel.txt"), []byte(goldenBaseline), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	o, err := Run(context.Background(), Config{
		Suites: []runners.Suite{goldenSuite()}, Targets: []string{runners.Vkernel, runners.Reference}, Reference: runners.Docker,
		Out: out, Baselines: base, Options: Options{Parallel: 2, Rerun: true}, Log: &log,
	})
	t.Log(log.String())
	if err == nil || !strings.Contains(err.Error(), "1 unit(s) could not run on the vkernel target") || !strings.Contains(err.Error(), "the container is gone") {
		t.Errorf("err = %v, want the target's failure once everything ran", err)
	}
	if len(o.Runs) != 2 || o.Regressions() == 0 {
		t.Fatalf("runs %d, regressions %d", len(o.Runs), o.Regressions())
	}
	golden := filepath.Join("testdata", "golden")
	for _, name := range []string{"fake-vkernel.xml", "fake-vkernel.json", "fake-reference.xml", "fake-reference.json", "summary.md", HostCallsFile} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got = normalise(name, got)
		file := filepath.Join(golden, name)
		if *update {
			if err := os.MkdirAll(golden, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%v (create it: go test ./runners/pipeline -run TestGolden -update)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from %s (if the change is meant, rewrite it: go test ./runners/pipeline -run TestGolden -update):\n%s",
				name, file, firstDiff(string(want), string(got)))
		}
	}
}

// firstDiff shows the first line where want and got differ.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return "(no line differs)"
}

// TestUnitResults checks, beside the golden files, what the loop promises
// about each unit: the unit error carries the command and the output's
// tail, a rerun passing makes a flaky result, a timeout and a stopped run
// say which they were.
func TestUnitResults(t *testing.T) {
	var lines []string
	run, err := RunSuite(context.Background(), goldenSuite(), runners.TargetSpec{Kind: runners.Vkernel},
		Options{Parallel: 2, Rerun: true, Progress: func(l string) { lines = append(lines, l) }})
	if run == nil {
		t.Fatal(err)
	}
	byTest := map[string]compat.Result{}
	for _, r := range run.Results {
		byTest[r.Test] = r
	}
	if r := byTest["unit_crash"]; r.Status != compat.Error || r.Message != "signal: segmentation fault, but no test failed" ||
		r.Output != "$ fake-runner --target vkernel unit_crash\nrunning a ... ok\nrunning b ...\nFatal error: Segmentation fault" {
		t.Errorf("crash: %+v", r)
	}
	if r := byTest["unit_flaky.b"]; !r.Flaky() || len(r.Previous) != 1 || r.Previous[0].Message != "first run fails" {
		t.Errorf("flaky: %+v", r)
	}
	if r := byTest["unit_flaky.c"]; r.Status != compat.Fail || len(r.Previous) != 1 || r.Flaky() {
		t.Errorf("failing twice: %+v", r)
	}
	if r := byTest["slow_hang"]; r.Status != compat.Error || r.Message != "timed out after 50ms with 1 tests reported; the rest did not run" {
		t.Errorf("timeout of the slow kind: %+v", r)
	}
	if r := byTest["unit_target"]; r.Status != compat.Error || !strings.HasPrefix(r.Output, "$ fake-runner") {
		t.Errorf("target error: %+v", r)
	}
	if r := byTest["unit_skipped"]; r.Status != compat.Skip {
		t.Errorf("a unit skipped as a whole: %+v", r)
	}
	if len(lines) != 6 || !regexp.MustCompile(`^slow_hang 6/6: pass 1, fail 0, error 1, skip 0 \(\S+\): timed out after 50ms`).MatchString(lines[5]) {
		t.Errorf("progress lines %q", lines)
	}
	for _, l := range lines {
		if !regexp.MustCompile(`^\w+ \d/6: pass \d, fail \d, error \d, skip \d \(\S+\)`).MatchString(l) {
			t.Errorf("progress line %q is not in the one format", l)
		}
	}

	checkHostCalls(t, run)

	// Without Rerun, the failed tests stay failed.
	run, _ = RunSuite(context.Background(), goldenSuite(), runners.TargetSpec{Kind: runners.Vkernel}, Options{})
	for _, r := range run.Results {
		if len(r.Previous) > 0 {
			t.Errorf("%s was rerun", r.Test)
		}
	}
}

// TestTimeoutOverridesKinds: a timeout given to the pipeline (compat run
// -timeout) bounds every unit, those of kinds with their own too (Redis'
// spawn-mode units used to ignore it).
func TestTimeoutOverridesKinds(t *testing.T) {
	s := &fakeSuite{
		units: []runners.Unit{{Name: "hang", Kind: "long"}},
		kinds: map[string]runners.Kind{"long": {Timeout: time.Hour}},
		run: func(ctx context.Context, _ runners.TargetSpec, u runners.Unit, _ []string) runners.Report {
			<-ctx.Done()
			return runners.Report{Command: "hang", Err: ctx.Err()}
		},
	}
	run, _ := RunSuite(context.Background(), s, runners.TargetSpec{Kind: runners.Reference, Reference: runners.Local}, Options{Timeout: 30 * time.Millisecond})
	if len(run.Results) != 1 || !strings.HasPrefix(run.Results[0].Message, "timed out after 30ms") {
		t.Errorf("results %+v", run.Results)
	}
}

// TestStoppedRun: a run stopped from outside says so in the run's
// incomplete units and in the error, and starts no more units.
func TestStoppedRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	started := 0
	s := &fakeSuite{
		units: []runners.Unit{{Name: "first"}, {Name: "second"}},
		run: func(uctx context.Context, _ runners.TargetSpec, u runners.Unit, _ []string) runners.Report {
			mu.Lock()
			started++
			mu.Unlock()
			cancel()
			<-uctx.Done()
			return runners.Report{Command: "x", Err: uctx.Err()}
		},
	}
	run, err := RunSuite(ctx, s, runners.TargetSpec{Kind: runners.Reference, Reference: runners.Local}, Options{})
	if err == nil || !strings.Contains(err.Error(), "stopped after 1 of 2 units") {
		t.Errorf("err = %v", err)
	}
	// Neither unit is a result: the one stopped did nothing wrong, the
	// other never started. Both are incomplete, so that their tests count
	// as not run.
	if started != 1 || len(run.Results) != 0 || len(run.Incomplete) != 2 ||
		!strings.HasPrefix(run.Incomplete[0].Reason, "the run was stopped before the unit finished") ||
		!strings.HasPrefix(run.Incomplete[1].Reason, "not started: the run was stopped") {
		t.Errorf("started %d, results %+v, incomplete %+v", started, run.Results, run.Incomplete)
	}
}

// TestParallelism: units of a plain kind run Parallel at once, those of a
// Serial kind one at a time.
func TestParallelism(t *testing.T) {
	var (
		mu           sync.Mutex
		running, top map[string]int
		both         = make(chan struct{})
		once         sync.Once
	)
	running, top = map[string]int{}, map[string]int{}
	s := &fakeSuite{
		units: []runners.Unit{{Name: "p1"}, {Name: "p2"}, {Name: "s1", Kind: "serial"}, {Name: "s2", Kind: "serial"}, {Name: "s3", Kind: "serial"}},
		kinds: map[string]runners.Kind{"serial": {Serial: true}},
		run: func(ctx context.Context, _ runners.TargetSpec, u runners.Unit, _ []string) runners.Report {
			mu.Lock()
			running[u.Kind]++
			top[u.Kind] = max(top[u.Kind], running[u.Kind])
			if running[""] == 2 {
				once.Do(func() { close(both) })
			}
			mu.Unlock()
			if u.Kind == "" {
				// Wait for the other plain unit: they must overlap.
				select {
				case <-both:
				case <-ctx.Done():
				}
			}
			mu.Lock()
			running[u.Kind]--
			mu.Unlock()
			return runners.Report{Command: u.Name, Results: []compat.Result{pass(u.Name, "t")}}
		},
	}
	run, err := RunSuite(context.Background(), s, runners.TargetSpec{Kind: runners.Reference, Reference: runners.Local}, Options{Parallel: 4, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if top[""] != 2 || top["serial"] != 1 || run.Counts().Pass != 5 {
		t.Errorf("at once: plain %d (want 2), serial %d (want 1); %+v", top[""], top["serial"], run.Counts())
	}
}

// TestBrokenBaselineStopsEarly: a baseline file with a bad line is reported
// with its name and line before anything runs.
func TestBrokenBaselineStopsEarly(t *testing.T) {
	base := t.TempDir()
	os.WriteFile(filepath.Join(base, "fake-vkernel.txt"), []byte("pass unit_a.t\nfail unit_b.t\n"), 0o644)
	ran := false
	s := &fakeSuite{units: []runners.Unit{{Name: "unit_a"}}, run: func(context.Context, runners.TargetSpec, runners.Unit, []string) runners.Report {
		ran = true
		return runners.Report{}
	}}
	_, err := Run(context.Background(), Config{Suites: []runners.Suite{s}, Targets: []string{runners.Vkernel}, Out: t.TempDir(), Baselines: base})
	if err == nil || !strings.Contains(err.Error(), "fake-vkernel.txt:2") || ran {
		t.Fatalf("err = %v (ran: %v), want one naming fake-vkernel.txt:2 before anything ran", err, ran)
	}
}

// TestUnknownTarget: a target spec the pipeline cannot run is an error
// naming it, and no suite is opened.
func TestUnknownTarget(t *testing.T) {
	s := &fakeSuite{}
	for _, spec := range []runners.TargetSpec{{Kind: "cloud"}, {Kind: runners.Reference, Reference: "vm"}} {
		if run, err := RunSuite(context.Background(), s, spec, Options{}); run != nil || err == nil || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("%+v: run %v, err %v", spec, run, err)
		}
	}
}

// TestSpecPathsAbsolute: with a relative -out, the megabinary and public
// key handed to suites are absolute paths, since shims and containers open
// them from other working directories.
func TestSpecPathsAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	wasm, err := guests.Ident("fake")
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	os.WriteFile(filepath.Join(dir, "fake.wasm"), wasm, 0o644)
	var got runners.TargetSpec
	s := &fakeSuite{entries: []megabinary.SpecEntry{{Name: "fake", Wasm: filepath.Join(dir, "fake.wasm")}}, units: []runners.Unit{{Name: "unit_a"}}, run: func(_ context.Context, spec runners.TargetSpec, u runners.Unit, _ []string) runners.Report {
		got = spec
		return runners.Report{Results: []compat.Result{pass(u.Name, "t")}}
	}}
	_, err = Run(context.Background(), Config{Suites: []runners.Suite{s}, Targets: []string{runners.Vkernel}, Out: "out/rel", Baselines: "baselines", Cache: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]string{"Megabinary": got.Megabinary, "PublicKey": got.PublicKey} {
		if !filepath.IsAbs(p) {
			t.Errorf("spec.%s = %q, want an absolute path", name, p)
		} else if _, err := os.Stat(p); err != nil {
			t.Errorf("spec.%s: %v", name, err)
		}
	}
}

// TestNoBaselineComparesWithReference: a suite with no baseline at all is
// not "0 regressions": what passes on the reference and fails on the
// vkernel is a regression, and the summary shows the two side by side.
func TestNoBaselineComparesWithReference(t *testing.T) {
	s := &fakeSuite{
		units: []runners.Unit{{Name: "a"}, {Name: "b"}},
		run: func(ctx context.Context, spec runners.TargetSpec, u runners.Unit, tests []string) runners.Report {
			rep := runners.Report{Command: "fake " + u.Name}
			switch {
			case spec.Kind == runners.Reference:
				rep.Results = []compat.Result{pass(u.Name, "x"), pass(u.Name, "y")}
			case u.Name == "a":
				rep.Results = []compat.Result{pass(u.Name, "x"), fail(u.Name, "y", "got: '500'; expected: '200'")}
			default:
				rep.Results = []compat.Result{pass(u.Name, "x"), pass(u.Name, "y")}
			}
			return rep
		},
	}
	out := t.TempDir()
	var log strings.Builder
	o, err := Run(context.Background(), Config{
		Suites: []runners.Suite{s}, Targets: []string{runners.Vkernel, runners.Reference}, Reference: runners.Docker,
		Out: out, Baselines: t.TempDir(), Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "the reference's results in this run are the expectation") {
		t.Errorf("log does not say what the vkernel is compared with:\n%s", log.String())
	}
	if n := o.Regressions(); n != 1 {
		t.Errorf("%d regressions, want 1 (a.y passes on the reference)\n%s", n, log.String())
	}
	summary, err := os.ReadFile(filepath.Join(out, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"**1 regression(s)**",
		"| `a.y` | pass (reference) | fail | no baseline entry: the reference's result in this run; got: '500'; expected: '200' |",
		"### vkernel vs reference (1)",
		"| `a.y` | fail | pass | got: '500'; expected: '200' |",
	} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, summary)
		}
	}
	// The reference, compared with nothing, has no regressions of its own.
	for _, d := range o.Diffs {
		if d.Target == runners.Reference && d.Count(compat.Regression) != 0 {
			t.Errorf("reference diff has regressions: %+v", d.Changes)
		}
	}
}

// TestInterruptedRunIsPartial is the quick run stopped after 4 s:
// the tests never reached were reported as regressions ("missing"). Now
// the run is partial: no regressions, the summary's verdict, the JUnit
// files (vkernel's and the reference's, which never began) and the run
// JSON say so, and the unreached tests are listed as not run.
func TestInterruptedRunIsPartial(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	s := &fakeSuite{
		units: []runners.Unit{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		run: func(uctx context.Context, spec runners.TargetSpec, u runners.Unit, _ []string) runners.Report {
			rep := runners.Report{Command: "fake " + u.Name}
			switch u.Name {
			case "a":
				rep.Results = []compat.Result{pass(u.Name, "x"), pass(u.Name, "y")}
			case "b":
				// The interrupt arrives in b's second test, which
				// the format reports as an error.
				cancel(errors.New("interrupt"))
				<-uctx.Done()
				rep.Results = []compat.Result{pass(u.Name, "x"),
					{Unit: u.Name, Test: u.Name + ".y", Status: compat.Error, Message: "did not finish: the process died or was stopped while it ran"}}
				rep.Err = uctx.Err()
			default:
				t.Errorf("unit %s started after the interrupt", u.Name)
			}
			return rep
		},
	}
	base := t.TempDir()
	os.WriteFile(filepath.Join(base, "fake-vkernel.txt"), []byte("pass a.x\npass a.y\npass b.x\npass b.y\npass c.x\npass c.y\n"), 0o644)
	out := t.TempDir()
	o, err := Run(ctx, Config{Suites: []runners.Suite{s}, Targets: []string{runners.Vkernel, runners.Reference}, Reference: runners.Local,
		Out: out, Baselines: base, Options: Options{Parallel: 1}})
	if err == nil || !strings.Contains(err.Error(), "stopped: interrupt") {
		t.Errorf("err = %v, want the stop", err)
	}
	if n := o.Regressions(); n != 0 {
		t.Errorf("%d regressions, want 0: %+v", n, o.Diffs)
	}
	var vk compat.Diff
	for _, d := range o.Diffs {
		if d.Target == runners.Vkernel {
			vk = d
		}
	}
	var notRun []string
	for _, c := range vk.Of(compat.NotRun) {
		notRun = append(notRun, c.Test)
	}
	if strings.Join(notRun, " ") != "b.y c.x c.y" {
		t.Errorf("not run: %q, want b.y c.x c.y", notRun)
	}
	summary, _ := os.ReadFile(filepath.Join(out, "summary.md"))
	for _, want := range []string{
		"**Partial run**: 5 unit(s) in 2 run(s) did not run to their end",
		"Among the tests that ran: no regressions",
		"| `b` | the run was stopped before the unit finished (interrupt) |",
		"| `c` | not started: the run was stopped (interrupt) |",
		"| `b.y` | pass | not run |",
	} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, summary)
		}
	}
	page, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil || !strings.Contains(string(page), `<p id="verdict" class="partial">Partial run: 5 unit(s)`) {
		t.Errorf("report.html does not say the run is partial (%v):\n%s", err, page)
	}
	for _, name := range []string{"fake-vkernel.xml", "fake-reference.xml"} {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `<property name="partial" value="`) {
			t.Errorf("%s has no partial property:\n%s", name, data)
		}
		xmllint(t, filepath.Join(out, name))
	}
	run, err := ReadRun(filepath.Join(out, "fake-vkernel.json"))
	if err != nil || len(run.Incomplete) != 2 {
		t.Errorf("run JSON: %v, incomplete %+v", err, run.Incomplete)
	}
}

// xmllint validates a JUnit file against the schema CI dashboards use.
func xmllint(t *testing.T, path string) {
	t.Helper()
	testenv.Command(t, "xmllint", "libxml2-utils")
	// The schema lives beside the module root (see runners/report's tests).
	schema, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "schemas", "junit-10.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(schema); err != nil {
		testenv.Missing(t, "JUnit schema: %v", err)
	}
	if out, err := exec.Command("xmllint", "--noout", "--schema", schema, path).CombinedOutput(); err != nil {
		t.Errorf("xmllint %s: %v\n%s", path, err, out)
	}
}

// TestProgress: each line says the units done of the total and an ETA from
// the recorded times; a heartbeat names the running unit while it runs
// long; a quiet run logs no line per unit.
func TestProgress(t *testing.T) {
	quick := &fakeSuite{
		units: []runners.Unit{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		run: func(_ context.Context, _ runners.TargetSpec, u runners.Unit, _ []string) runners.Report {
			return runners.Report{Results: []compat.Result{pass(u.Name, "t")}}
		},
	}
	var lines []string
	est := map[string]time.Duration{"a": 10 * time.Second, "b": 20 * time.Second, "c": 30 * time.Second}
	if _, err := RunSuite(context.Background(), quick, runners.TargetSpec{Kind: runners.Reference, Reference: runners.Local},
		Options{Estimates: est, Progress: func(l string) { lines = append(lines, l) }}); err != nil {
		t.Fatal(err)
	}
	want := []string{`^a 1/3: pass 1, fail 0, error 0, skip 0 \(\S+\); ETA 50s$`, `^b 2/3: .*; ETA 30s$`, `^c 3/3: pass 1, fail 0, error 0, skip 0 \(\S+\)$`}
	for i, re := range want {
		if i >= len(lines) || !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d: %q, want %s (all: %q)", i, lines, re, lines)
		}
	}

	beat := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var beats []string
	slow := &fakeSuite{
		units: []runners.Unit{{Name: "slow"}},
		run: func(ctx context.Context, _ runners.TargetSpec, u runners.Unit, _ []string) runners.Report {
			select {
			case <-beat:
			case <-ctx.Done():
			}
			return runners.Report{Results: []compat.Result{pass(u.Name, "t")}}
		},
	}
	RunSuite(context.Background(), slow, runners.TargetSpec{Kind: runners.Reference, Reference: runners.Local},
		Options{Heartbeat: 10 * time.Millisecond, Timeout: 10 * time.Second, Estimates: map[string]time.Duration{"slow": time.Hour},
			Progress: func(l string) {
				mu.Lock()
				beats = append(beats, l)
				mu.Unlock()
				if strings.HasPrefix(l, "0/1 done; running: slow (") {
					once.Do(func() { close(beat) })
				}
			}})
	if len(beats) < 2 || !regexp.MustCompile(`^0/1 done; running: slow \(0s\); ETA (59m59s|1h0m0s)$`).MatchString(beats[0]) {
		t.Errorf("heartbeat lines %q", beats)
	}

	var log strings.Builder
	if _, err := Run(context.Background(), Config{Suites: []runners.Suite{quick}, Targets: []string{runners.Reference}, Reference: runners.Local,
		Out: t.TempDir(), Baselines: t.TempDir(), Log: &log, Quiet: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "1/3") || !strings.Contains(log.String(), "fake-reference: pass 3") {
		t.Errorf("quiet log:\n%s", log.String())
	}
}

// checkHostCalls checks a run of goldenSuite on the vkernel has the
// coverage map of its units: every host function the vkernel exports,
// in the ABI's order, with the calls and units of goldenHostCalls.
func checkHostCalls(t *testing.T, run *compat.Run) {
	t.Helper()
	h := run.HostCalls
	if h == nil {
		t.Fatal("the run on the vkernel has no host calls")
	}
	if h.Units != 3 {
		t.Errorf("%d units reported host calls, want 3", h.Units)
	}
	names := vkernel.HostFunctions()
	if len(h.Functions) != len(names) {
		t.Fatalf("%d host functions in the map, the vkernel exports %d", len(h.Functions), len(names))
	}
	for i, c := range h.Functions {
		if c.Function != names[i] {
			t.Errorf("function %d is %s, want %s", i, c.Function, names[i])
		}
		want := goldenHostCalls[c.Function]
		if c.Calls != want.Calls || c.Units != want.Units {
			t.Errorf("%s: %d calls by %d units, want %d by %d", c.Function, c.Calls, c.Units, want.Calls, want.Units)
		}
	}
	if n := h.Exercised(); n != len(goldenHostCalls) {
		t.Errorf("%d functions exercised, want %d", n, len(goldenHostCalls))
	}
}
