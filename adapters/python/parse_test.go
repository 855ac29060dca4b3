package python

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/suitetest"
	"github.com/compat-project/compat/runners"
)

// The files in testdata/recorded were written by Debian's python3.11
// 3.11.2-6+deb12u9 running regrtest on the modules in testdata/lib (and
// test_bool, test_winreg from the stdlib):
//
//	python3.11 -m test [--testdir testdata/lib] -v --junit-xml M.xml M > M.out 2>&1

// summary renders results as "test status message" lines, sorted.
func summary(rs []compat.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Test+" "+string(r.Status)+" "+r.Message)
	}
	sort.Strings(out)
	return out
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestParseJUnitPassing(t *testing.T) {
	rs, err := ParseJUnit(strings.NewReader(suitetest.Recorded(t, "test_bool.xml")), "test_bool")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 29 {
		t.Fatalf("%d results, want the 29 tests of test_bool", len(rs))
	}
	r := rs[0]
	if r.Test != "test_bool.BoolTest.test_blocked" || r.Unit != "test_bool" || r.Suite != "python" || r.Status != compat.Pass || r.Duration <= 0 {
		t.Errorf("first result = %+v", r)
	}
}

func TestParseJUnitOutcomes(t *testing.T) {
	rs, err := ParseJUnit(strings.NewReader(suitetest.Recorded(t, "test_compatsample.xml")), "test_compatsample")
	if err != nil {
		t.Fatal(err)
	}
	sameLines(t, "results", summary(rs), []string{
		"test_compatsample.Outcomes.test_error error OSError: [Errno 58] Not supported",
		"test_compatsample.Outcomes.test_expected_failure pass ",
		"test_compatsample.Outcomes.test_fail fail AssertionError: 1 != 2 : one is not two",
		"test_compatsample.Outcomes.test_pass pass ",
		"test_compatsample.Outcomes.test_skip skip not on this platform",
		"test_compatsample.Outcomes.test_unexpected_success fail unexpected success",
	})
	for _, r := range rs {
		if r.Test == "test_compatsample.Outcomes.test_fail" {
			if !strings.Contains(r.Output, "Traceback (most recent call last)") || !strings.Contains(r.Output, "stdout before failure red") {
				t.Errorf("failure output lacks the traceback or the test's stdout: %q", r.Output)
			}
		}
	}
}

func TestParseJUnitBroken(t *testing.T) {
	for _, in := range []string{"", "<testsuites><testcase", "<html></html>"} {
		if _, err := ParseJUnit(strings.NewReader(in), "test_x"); err == nil || !strings.Contains(err.Error(), "test_x") {
			t.Errorf("ParseJUnit(%q): err = %v, want an error naming the module", in, err)
		}
	}
	rs, err := ParseJUnit(strings.NewReader(suitetest.Recorded(t, "test_winreg.xml")), "test_winreg")
	if err != nil || len(rs) != 0 {
		t.Errorf("skipped module: %v, %v; want no results", rs, err)
	}
}

func TestParseVerbose(t *testing.T) {
	v := parseVerbose(suitetest.Recorded(t, "test_compatsample.out"), "test_compatsample")
	sameLines(t, "results", summary(v.results), []string{
		"test_compatsample.BrokenSetup.setUpClass error RuntimeError: setUpClass broke",
		"test_compatsample.Outcomes.test_error error OSError: [Errno 58] Not supported",
		"test_compatsample.Outcomes.test_expected_failure pass ",
		"test_compatsample.Outcomes.test_fail fail AssertionError: 1 != 2 : one is not two",
		"test_compatsample.Outcomes.test_pass pass ",
		"test_compatsample.Outcomes.test_skip skip not on this platform",
		"test_compatsample.Outcomes.test_subtests fail AssertionError: 1 == 1",
		"test_compatsample.Outcomes.test_unexpected_success fail unexpected success",
	})
	w := parseVerbose(suitetest.Recorded(t, "test_winreg.out"), "test_winreg")
	if w.skipped != "No module named 'winreg'" || len(w.results) != 0 {
		t.Errorf("module skip: %+v", w)
	}
	docs := parseVerbose("test_a (test.test_m.C.test_a)\nDoc line ... ok\ntest_b (test.test_m.C.test_b) ... printed\nskipped \"needs x\"\n", "test_m")
	sameLines(t, "docstring and printed output", summary(docs.results), []string{
		"test_m.C.test_a pass ",
		"test_m.C.test_b skip needs x",
	})
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name string
		a    attempt
		want []string
	}{
		{
			// The XML leaves out the setUpClass error and the subtest
			// failure (<testcase />); the verbose output has them.
			name: "failures regrtest's XML drops",
			a: func() attempt {
				xml, err := ParseJUnit(strings.NewReader(suitetest.Recorded(t, "test_compatsample.xml")), "test_compatsample")
				if err != nil {
					t.Fatal(err)
				}
				out := suitetest.Recorded(t, "test_compatsample.out")
				return attempt{exit: runners.Exit{Code: 2}, output: out, xml: xml, verbose: parseVerbose(out, "test_compatsample")}
			}(),
			want: []string{
				"test_compatsample.BrokenSetup.setUpClass error RuntimeError: setUpClass broke",
				"test_compatsample.Outcomes.test_error error OSError: [Errno 58] Not supported",
				"test_compatsample.Outcomes.test_expected_failure pass ",
				"test_compatsample.Outcomes.test_fail fail AssertionError: 1 != 2 : one is not two",
				"test_compatsample.Outcomes.test_pass pass ",
				"test_compatsample.Outcomes.test_skip skip not on this platform",
				"test_compatsample.Outcomes.test_subtests fail AssertionError: 1 == 1",
				"test_compatsample.Outcomes.test_unexpected_success fail unexpected success",
			},
		},
		{
			// regrtest itself dies building its XML from a control
			// character (exit 1, no file).
			name: "regrtest fails to write its XML",
			a: func() attempt {
				out := suitetest.Recorded(t, "test_compatctrl.out")
				return attempt{exit: runners.Exit{Code: 1}, output: out, xmlErr: os.ErrNotExist, verbose: parseVerbose(out, "test_compatctrl")}
			}(),
			want: []string{
				"test_compatctrl error exit status 1 without JUnit XML (file does not exist): xml.etree.ElementTree.ParseError: not well-formed (invalid token): line 1, column 312",
				"test_compatctrl.Control.test_ok pass ",
				"test_compatctrl.Control.test_prints_control_char fail AssertionError: with a control character in its output",
			},
		},
		{
			name: "crash half-way",
			a: func() attempt {
				out := suitetest.Recorded(t, "test_compatcrash.out")
				return attempt{exit: runners.SignalExit(6), output: out, xmlErr: os.ErrNotExist, verbose: parseVerbose(out, "test_compatcrash")}
			}(),
			want: []string{
				"test_compatcrash error signal: aborted without JUnit XML (file does not exist): Extension modules: _testcapi (total: 1)",
				"test_compatcrash.Crash.test_a_passes pass ",
				"test_compatcrash.Crash.test_b_skips skip not here",
				"test_compatcrash.Crash.test_c_aborts error did not finish: the process died or was stopped while it ran",
			},
		},
		{
			name: "lines from other suites in a test's output",
			a: attempt{
				exit:   runners.Exit{Code: 0},
				output: "test_a (test.test_x.A.test_a) ... ok\ntest_inner (test.test_other.B.test_inner) ... FAIL\ntest_ghost (test.test_x.Inner.test_ghost) ... ok\n",
				xml:    []compat.Result{{Test: "test_x.A.test_a", Unit: "test_x", Status: compat.Pass}},
			},
			want: []string{"test_x.A.test_a pass "},
		},
		{
			name: "module skipped",
			a: func() attempt {
				out := suitetest.Recorded(t, "test_winreg.out")
				return attempt{output: out, verbose: parseVerbose(out, "test_winreg")}
			}(),
			want: []string{"test_winreg skip No module named 'winreg'"},
		},
		{
			// An IsolatedAsyncioTestCase's teardown starts a thread
			// where there are none: regrtest ends the module there.
			name: "uncaught exception outside the tests",
			a: func() attempt {
				out := "test_headers (test.test_os.TestSendfile.test_headers) ... ok\n" +
					"test test_os crashed -- Traceback (most recent call last):\n" +
					"  File \"/usr/lib/python3.11/threading.py\", line 957, in start\n" +
					"    _start_new_thread(self._bootstrap, ())\n" +
					"RuntimeError: can't start new thread\n\n" +
					"test_os failed (uncaught exception)\n\n== Tests result: FAILURE ==\n\n1 test failed:\n    test_os\n"
				return attempt{exit: runners.Exit{Code: 2}, output: out, xml: []compat.Result{{Test: "test_os.TestSendfile.test_headers", Unit: "test_os", Status: compat.Pass}},
					verbose: parseVerbose(out, "test_os")}
			}(),
			want: []string{
				"test_os error regrtest stopped test_os outside its tests (uncaught exception): RuntimeError: can't start new thread",
				"test_os.TestSendfile.test_headers pass ",
			},
		},
		{
			name: "non-zero exit with nothing failed",
			a:    attempt{exit: runners.Exit{Code: 3}, output: "0:00:00 [1/1] test_x\nWarning -- env changed\n", xml: []compat.Result{{Test: "test_x.A.b", Unit: "test_x", Status: compat.Pass}}},
			want: []string{
				"test_x error exit status 3, but no test failed: Warning -- env changed",
				"test_x.A.b pass ",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unit, _, _ := strings.Cut(strings.Fields(tt.want[0])[0], ".")
			results, err := merge(tt.a, unit, 0)
			if err != nil {
				// As the pipeline reports it: one error result for the
				// module.
				results = append(results, compat.Result{Test: unit, Status: compat.Error, Message: err.Error()})
				compat.SortResults(results)
			}
			sameLines(t, "merged results", summary(results), tt.want)
		})
	}
}

func TestModulesAndProfiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"test_a.py", "test_b.pyc", "helper.py", "test_c.txt", "__init__.py"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	os.Mkdir(filepath.Join(dir, "test_pkg"), 0o755)
	os.Mkdir(filepath.Join(dir, "test_dir.d"), 0o755)
	mods, err := Modules(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(mods, " ") != "test_a test_pkg" {
		t.Errorf("Modules = %v, want [test_a test_pkg]", mods)
	}
	if _, err := Modules(t.TempDir()); err == nil {
		t.Error("Modules of an empty directory gave no error")
	}
	if q, err := Profile("quick", ""); err != nil || len(q) < 8 {
		t.Errorf("Profile(quick) = %v, %v", q, err)
	}
	if f, err := Profile("full", dir); err != nil || len(f) != 2 {
		t.Errorf("Profile(full) = %v, %v", f, err)
	}
	if _, err := Profile("medium", dir); err == nil || !strings.Contains(err.Error(), "medium") {
		t.Errorf("Profile(medium) error = %v", err)
	}
}

func TestUniqueIDs(t *testing.T) {
	in := []compat.Result{{Test: "test_json.T.test_a"}, {Test: "json"}, {Test: "json"}, {Test: "json.encoder.JSONEncoder.encode"}}
	got := uniqueIDs(in, "test_json")
	want := []string{"test_json.T.test_a", "test_json.json", "test_json.json#2", "test_json.json.encoder.JSONEncoder.encode"}
	for i, r := range got {
		if r.Test != want[i] {
			t.Errorf("result %d: %q, want %q", i, r.Test, want[i])
		}
	}
}

func TestVerboseDoctestVerdict(t *testing.T) {
	out := "doctest (test.test_pep646_syntax) ... 117 tests with zero failures\n\n== Tests result: SUCCESS ==\n"
	v := parseVerbose(out, "test_pep646_syntax")
	if len(v.results) != 1 || v.results[0].Status != compat.Pass {
		t.Fatalf("doctest verdict: %+v", v.results)
	}
}
