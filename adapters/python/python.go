// Package python drives CPython's own test suite, regrtest, on a
// runners.Target and turns what it reports into compat results.
//
// Each test module runs in a process of its own:
//
//	python -m test -v --junit-xml WORK/test_x.xml test_x
//
// because a WebAssembly build has neither subprocesses nor threads, so
// regrtest's -j and --timeout cannot work there; the adapter runs several
// modules at once instead and enforces the timeout from outside. One
// module's crash, trap or timeout costs only that module: its tests that
// printed a verdict before it died are kept (read from the -v output), and
// one error result for the module carries the tail of its output.
package python

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/units"
	"github.com/compat-project/compat/runners"
)

// Suite is the suite name of every result this package produces.
const Suite = "python"

// Quick is the quick profile: well-known modules that run in about a second
// each natively and need neither threads nor subprocesses.
var Quick = []string{
	"test_bool", "test_int", "test_string", "test_unicode", "test_json",
	"test_list", "test_dict", "test_tuple", "test_set", "test_operator",
	"test_bisect", "test_textwrap",
}

// Modules lists the test modules in libTest, a CPython Lib/test directory
// on the host, the way regrtest finds them: every test_* .py file or
// directory, sorted.
func Modules(libTest string) ([]string, error) {
	entries, err := os.ReadDir(libTest)
	if err != nil {
		return nil, fmt.Errorf("listing CPython test modules: %w", err)
	}
	var mods []string
	for _, e := range entries {
		name, ext := e.Name(), filepath.Ext(e.Name())
		mod := strings.TrimSuffix(name, ext)
		if strings.HasPrefix(mod, "test_") && (ext == ".py" && !e.IsDir() || ext == "" && e.IsDir()) {
			mods = append(mods, mod)
		}
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("listing CPython test modules: no test_* modules in %s (is it Lib/test?)", libTest)
	}
	sort.Strings(mods)
	return mods, nil
}

// Profile returns the modules of the named profile: "quick" (Quick) or
// "full" (every module in libTest, see Modules).
func Profile(name, libTest string) ([]string, error) {
	switch name {
	case "quick":
		if libTest == "" {
			return append([]string(nil), Quick...), nil
		}
		all, err := Modules(libTest)
		if err != nil {
			return nil, err
		}
		for _, m := range Quick {
			if !slices.Contains(all, m) {
				return nil, fmt.Errorf("quick profile: %s has no module %s", libTest, m)
			}
		}
		return append([]string(nil), Quick...), nil
	case "full":
		return Modules(libTest)
	}
	return nil, fmt.Errorf("unknown python test profile %q: want quick or full", name)
}

// Options configures Run.
type Options struct {
	// Python is the command that starts the interpreter on the target,
	// such as {"python3.11"} or {"/usr/local/bin/python3.11"}; default
	// {"python3"}.
	Python []string
	// Modules lists the test modules to run, such as "test_os" (see
	// Profile).
	Modules []string
	// Work is a directory mounted on the target that the adapter reads
	// back: regrtest writes each module's JUnit XML to Work.Guest and the
	// adapter reads it from Work.Host.
	Work runners.Mount
	// Dir is the working directory on the target; empty means the
	// target's default.
	Dir string
	// Env holds extra "KEY=value" entries for the interpreter.
	Env []string
	// Args are extra regrtest arguments placed before the module, such
	// as {"-u", "all"} or {"--testdir", "/src"}.
	Args []string
	// Parallel is how many modules run at once; default 1.
	Parallel int
	// Timeout bounds each module's run; zero means none.
	Timeout time.Duration
	// Rerun runs the failed tests of each module once more (regrtest
	// -m), so a test that then passes is reported as flaky rather than
	// failed.
	Rerun bool
	// Progress, if set, is called once per module as it finishes. Calls
	// do not overlap.
	Progress func(Progress)
}

// Progress reports one finished module.
type Progress struct {
	// Module is the module that finished.
	Module string
	// Done counts finished modules, this one included, of Total.
	Done, Total int
	// Counts counts this module's results.
	Counts compat.Counts
	// Elapsed is how long this module took.
	Elapsed time.Duration
	// Err is the target's error running the module, if any.
	Err error
}

// Run runs opts.Modules on target and returns one result per test. A
// module that could not finish contributes one error result with Test set
// to the module, beside whatever tests it did report.
//
// The error is not nil when ctx ended before every module ran (the results
// so far are returned) or when the target failed to run some module (see
// runners.Target.Run); those modules have error results too.
func Run(ctx context.Context, target runners.Target, opts Options) (compat.Run, error) {
	run := compat.Run{Suite: Suite, Target: target.Name(), Start: time.Now(), Properties: target.Properties()}
	if len(opts.Python) == 0 {
		opts.Python = []string{"python3"}
	}
	if opts.Parallel < 1 {
		opts.Parallel = 1
	}
	if opts.Work.Host == "" || opts.Work.Guest == "" {
		return run, errors.New("python adapter: Options.Work needs both a host and a guest path")
	}
	results, err := units.Run(ctx, opts.Modules, opts.Parallel, "modules",
		func(ctx context.Context, mod string) ([]compat.Result, error) {
			return runModule(ctx, target, opts, mod)
		},
		func(f units.Finished) {
			if opts.Progress != nil {
				opts.Progress(Progress{Module: f.Unit, Done: f.Done, Total: f.Total, Counts: f.Counts, Elapsed: f.Elapsed, Err: f.Err})
			}
		})
	run.Results = results
	run.Duration = time.Since(run.Start)
	if err != nil {
		err = fmt.Errorf("python adapter: %w", err)
	}
	return run, err
}

// attempt is one regrtest process for one module.
type attempt struct {
	exit    runners.Exit
	err     error // the target's error, including a timeout
	stopped error // the run's context ended while the module ran
	output  string
	xml     []compat.Result
	xmlErr  error // why there are no XML results
	verbose verbose
}

// runOnce runs regrtest on mod, passing match as -m patterns.
func runOnce(ctx context.Context, target runners.Target, opts Options, mod string, match []string) attempt {
	name := mod + ".xml"
	if len(match) > 0 {
		name = mod + ".rerun.xml"
	}
	hostXML := filepath.Join(opts.Work.Host, name)
	guestXML := strings.TrimSuffix(opts.Work.Guest, "/") + "/" + name
	// A file left by an earlier run must not pass for this one's.
	os.Remove(hostXML)
	args := append(append([]string(nil), opts.Python...), "-m", "test", "-v", "--junit-xml", guestXML)
	args = append(args, opts.Args...)
	for _, m := range match {
		args = append(args, "-m", m)
	}
	args = append(args, mod)
	parent := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	var out units.Buffer
	var a attempt
	a.exit, a.err = target.Run(ctx, runners.Process{Args: args, Env: opts.Env, Dir: opts.Dir, Stdout: &out, Stderr: &out})
	a.stopped = parent.Err()
	a.output = out.String()
	a.verbose = parseVerbose(a.output, mod)
	f, err := os.Open(hostXML)
	if err != nil {
		a.xmlErr = err
		return a
	}
	defer f.Close()
	a.xml, a.xmlErr = ParseJUnit(f, mod)
	return a
}

// runModule runs one module, then its failed tests again if opts.Rerun,
// and returns its results.
func runModule(ctx context.Context, target runners.Target, opts Options, mod string) ([]compat.Result, error) {
	start := time.Now()
	a := runOnce(ctx, target, opts, mod, nil)
	results := merge(a, mod, opts.Timeout, time.Since(start))
	var targetErr error
	if a.err != nil && a.stopped == nil && !errors.Is(a.err, context.DeadlineExceeded) {
		targetErr = fmt.Errorf("python adapter: module %s: %w", mod, a.err)
	}
	if !opts.Rerun || a.err != nil || ctx.Err() != nil {
		return results, targetErr
	}
	var match []string
	for _, r := range results {
		if r.Status.Failed() && r.Test != mod {
			// regrtest ids keep the "test." prefix that testID drops;
			// a leading * matches it, or nothing under --testdir.
			match = append(match, "*"+r.Test)
		}
	}
	if len(match) == 0 {
		return results, nil
	}
	b := runOnce(ctx, target, opts, mod, match)
	again := map[string]compat.Result{}
	for _, r := range merge(b, mod, opts.Timeout, 0) {
		again[r.Test] = r
	}
	for i, r := range results {
		if !r.Status.Failed() || r.Test == mod {
			continue
		}
		if n, ok := again[r.Test]; ok && (n.Status == compat.Pass || n.Status.Failed()) {
			n.Previous = []compat.Result{r}
			results[i] = n
		}
	}
	return results, nil
}

// merge turns one attempt into results: the XML's, plus what only the
// verbose output shows, plus one error result for the module when the
// process did not end the way a completed regrtest run does.
func merge(a attempt, mod string, timeout, elapsed time.Duration) []compat.Result {
	var results []compat.Result
	index := map[string]int{}
	for _, r := range a.xml {
		index[r.Test] = len(results)
		results = append(results, r)
	}
	for _, v := range a.verbose.results {
		i, ok := index[v.Test]
		switch {
		case !compat.InUnit(v.Test, mod):
			// Output of some other test run, printed by a test
			// (test_unittest and test_regrtest run suites of their own).
		case !ok && a.xmlErr == nil && !v.Status.Failed() && !strings.HasSuffix(v.Test, ".doctest"):
			// With the XML in hand, the verbose output is only
			// trusted for the failures the XML leaves out, and for
			// run_doctest's verdicts, which the XML never has.
		case !ok:
			index[v.Test] = len(results)
			results = append(results, v)
		case worse(v.Status, results[i].Status):
			// regrtest's XML records a test whose subtest failed as
			// passed or not at all; the verbose output knows better.
			results[i].Status, results[i].Message = v.Status, v.Message
			if v.Output != "" {
				results[i].Output = v.Output
			}
		}
	}
	results = uniqueIDs(results, mod)
	unit := compat.Result{Suite: Suite, Unit: mod, Test: mod, Duration: elapsed}
	failed := false
	for _, r := range results {
		failed = failed || r.Status.Failed()
	}
	switch {
	case a.stopped != nil:
		// The whole run was stopped (^C, the CI's deadline): say so
		// rather than blame the module, but keep an error result, so
		// that its missing tests count as missing, not as removed.
		unit.Status = compat.Error
		unit.Message = fmt.Sprintf("run stopped before the module finished (%v)", a.stopped)
	case errors.Is(a.err, context.DeadlineExceeded):
		unit.Status = compat.Error
		unit.Message = fmt.Sprintf("timed out after %v", timeout)
	case a.err != nil:
		unit.Status = compat.Error
		unit.Message = "could not run: " + a.err.Error()
	case a.xmlErr != nil:
		unit.Status = compat.Error
		unit.Message = fmt.Sprintf("%v without JUnit XML (%v)", a.exit, a.xmlErr)
	case a.exit.Crash != "" || !a.exit.OK() && !failed:
		// regrtest exits 2 when tests failed; any other ending is the
		// process's own failure.
		unit.Status = compat.Error
		unit.Message = fmt.Sprintf("%v, but no test failed", a.exit)
	case len(results) == 0 && a.verbose.skipped != "":
		unit.Status = compat.Skip
		unit.Message = a.verbose.skipped
	case len(results) == 0:
		unit.Status = compat.Skip
		unit.Message = "ran no tests"
	default:
		return results
	}
	if unit.Status == compat.Error {
		unit.Output = tail(a.output, 60, 8000)
		if m := lastMeaningful(unit.Output); m != "" {
			unit.Message += ": " + m
		}
	}
	return append(results, unit)
}

// tail returns at most the last n lines and max bytes of s.
func tail(s string, n, max int) string {
	s = strings.TrimRight(s, "\n")
	if len(s) > max {
		s = s[len(s)-max:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lastMeaningful returns the last line of output that says something, for
// a one-line message: regrtest's closing banner is skipped.
func lastMeaningful(s string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "Total duration") || strings.HasPrefix(l, "Tests result") ||
			strings.HasPrefix(l, "== Tests result") || strings.HasSuffix(l, "failed") && strings.HasPrefix(l, "test ") {
			continue
		}
		if len(l) > 200 {
			l = l[:197] + "..."
		}
		return l
	}
	return ""
}

// uniqueIDs gives every result an id inside its module and unique in it,
// as baselines need: doctests carry only the documented object's name
// ("json"), and a module may report one name twice (test_json runs the
// json doctests for the C and the Python implementation).
func uniqueIDs(results []compat.Result, mod string) []compat.Result {
	seen := map[string]int{}
	for i := range results {
		id := results[i].Test
		if !compat.InUnit(id, mod) {
			id = mod + "." + id
		}
		seen[id]++
		if n := seen[id]; n > 1 {
			id = fmt.Sprintf("%s#%d", id, n)
		}
		results[i].Test = id
	}
	return results
}
