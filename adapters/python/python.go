// Package python drives CPython's own test suite, regrtest, on a
// runners.Target and turns what it reports into compat results. Its Suite
// is the runners.Suite of "compat run -suite python".
//
// Each test module is a unit and runs in a process of its own:
//
//	python3.11 -m test -v --junit-xml WORK/test_x.xml test_x
//
// because a WebAssembly build has neither subprocesses nor threads, so
// regrtest's -j and --timeout cannot work there; the pipeline runs several
// modules at once instead and enforces the timeout from outside. One
// module's crash, trap or timeout costs only that module: its tests that
// printed a verdict before it died are kept (read from the -v output), and
// the pipeline gives the module one error result with the tail of its
// output. The failed tests of a module can run again alone (regrtest -m),
// so the pipeline's rerun tells flaky tests.
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
	"github.com/compat-project/compat/runners"
)

// Name is the suite's name in reports and baselines, and of every result
// this package produces.
const Name = "python"

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

// attempt is one regrtest process for one module.
type attempt struct {
	exit    runners.Exit
	err     error // the target's error, including a timeout
	output  string
	xml     []compat.Result
	xmlErr  error // why there are no XML results
	verbose verbose
}

// runModule runs regrtest on mod on the session's target, with tests, if
// any, as -m patterns (a rerun), and reports its results.
func (ss *session) runModule(ctx context.Context, mod string, tests []string) runners.Report {
	name := mod + ".xml"
	if len(tests) > 0 {
		name = mod + ".rerun.xml"
	}
	hostXML := filepath.Join(ss.work.Host, name)
	guestXML := strings.TrimSuffix(ss.work.Guest, "/") + "/" + name
	// A file left by an earlier run must not pass for this one's.
	os.Remove(hostXML)
	args := append(append([]string(nil), ss.python...), "-m", "test", "-v", "--junit-xml", guestXML)
	args = append(args, ss.suite.args...)
	for _, t := range tests {
		// regrtest ids keep the "test." prefix that testID drops; a
		// leading * matches it, or nothing under --testdir.
		args = append(args, "-m", "*"+t)
	}
	args = append(args, mod)
	var out runners.Buffer
	p := runners.Process{Args: args, Env: ss.suite.env, Stdout: &out, Stderr: &out}
	start := time.Now()
	var a attempt
	a.exit, a.err = ss.target.Run(ctx, p)
	a.output = out.String()
	a.verbose = parseVerbose(a.output, mod)
	if f, err := os.Open(hostXML); err != nil {
		a.xmlErr = err
	} else {
		a.xml, a.xmlErr = ParseJUnit(f, mod)
		f.Close()
	}
	results, err := merge(a, mod, time.Since(start))
	return runners.Report{Results: results, Command: ss.target.Command(p), Output: a.output, Err: err}
}

// merge turns one attempt into results: the XML's, plus what only the
// verbose output shows, plus a skip result for the module when it ran no
// test. The error says why the process did not end the way a completed
// regrtest run does, with the last line of its output that says something.
func merge(a attempt, mod string, elapsed time.Duration) ([]compat.Result, error) {
	results, err := mergeResults(a, mod, elapsed)
	if err != nil && a.verbose.aborted == "" && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		if m := lastMeaningful(a.output); m != "" {
			err = fmt.Errorf("%w: %s", err, m)
		}
	}
	return results, err
}

func mergeResults(a attempt, mod string, elapsed time.Duration) ([]compat.Result, error) {
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
	failed := false
	for _, r := range results {
		failed = failed || r.Status.Failed()
	}
	skip := compat.Result{Suite: Name, Unit: mod, Test: mod, Status: compat.Skip, Duration: elapsed}
	switch {
	case errors.Is(a.err, context.DeadlineExceeded) || errors.Is(a.err, context.Canceled):
		// The pipeline says whether the module timed out or the run
		// was stopped.
		return results, a.err
	case a.err != nil:
		return results, runners.TargetError(fmt.Errorf("could not run: %w", a.err))
	case a.xmlErr != nil:
		return results, fmt.Errorf("%v without JUnit XML (%v)", a.exit, a.xmlErr)
	case a.verbose.aborted != "":
		// The module stopped outside any test (a tearDown of the whole
		// case, a test class's asyncio runner): the tests after it
		// never ran, so the unit did not run to its end.
		return results, fmt.Errorf("regrtest stopped %s outside its tests (uncaught exception): %s", mod, a.verbose.aborted)
	case a.exit.Crash != "" || !a.exit.OK() && !failed:
		// regrtest exits 2 when tests failed; any other ending is the
		// process's own failure.
		return results, fmt.Errorf("%v, but no test failed", a.exit)
	case len(results) == 0 && a.verbose.skipped != "":
		skip.Message = a.verbose.skipped
		return append(results, skip), nil
	case len(results) == 0:
		skip.Message = "ran no tests"
		return append(results, skip), nil
	}
	return results, nil
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
