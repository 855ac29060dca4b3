package redis

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/suitetest"
)

// compat_sample.out: runtest 7.0.15 against Debian's redis-server, with
// --skiptest "compat skipped by --skiptest" (testdata/units).
func TestParseEveryStatus(t *testing.T) {
	const unit = "unit/compat_sample"
	p := Parse(suitetest.Recorded(t, "compat_sample.out"), unit)
	if !p.Done || p.Exception != "" {
		t.Fatalf("Done=%v Exception=%q", p.Done, p.Exception)
	}
	want := []struct {
		test   string
		status compat.Status
		msg    string
	}{
		{"compat passes", compat.Pass, ""},
		{"compat fails: an assertion", compat.Fail, "Expected 'one' to be equal to 'two' (context: type eval line 2 cmd {assert_equal {one} [r echo two]} proc ::test)"},
		{"compat fails: a wrong result", compat.Fail, "Expected 'four' to equal or match 'three'"},
		{"compat skipped by --skiptest", compat.Skip, "skipped by runtest --skiptest or --only"},
		{"compat ignored: a tag", compat.Skip, "Not supported on external server"},
		{"compat passes after the others", compat.Pass, ""},
		{"[ignored group 1]", compat.Skip, "Not supported on external server"},
	}
	if len(p.Results) != len(want) {
		t.Fatalf("%d results, want %d (the failure summary must not count twice): %+v", len(p.Results), len(want), p.Results)
	}
	for i, w := range want {
		r := p.Results[i]
		if r.Test != unit+": "+w.test || r.Status != w.status || r.Message != w.msg || r.Unit != unit || r.Suite != Name {
			t.Errorf("result %d = %q %s %q (unit %q), want %q %s %q", i, r.Test, r.Status, r.Message, r.Unit, w.test, w.status, w.msg)
		}
		if !compat.InUnit(r.Test, unit) {
			t.Errorf("%q is not in unit %q", r.Test, unit)
		}
	}
	if d := p.Results[5].Duration; d != time.Millisecond {
		t.Errorf("duration %v, want 1ms", d)
	}
}

func TestParseException(t *testing.T) {
	p := Parse(suitetest.Recorded(t, "unit_type_set.out"), "unit/type/set")
	if !strings.HasPrefix(p.Exception, `Executing test client: key "pid" not known in dictionary.`) ||
		!strings.Contains(p.Exception, `"get_child_pid 0"`) || strings.Contains(p.Exception, "Cleanup:") {
		t.Fatalf("Exception = %q", p.Exception)
	}
	if p.Done {
		t.Error("an aborted unit reads as done")
	}
	c := compat.Counts{}
	for _, r := range p.Results {
		c.Add(r)
	}
	// The tests before the one that raised did report.
	if c.Pass < 50 || c.Fail != 0 {
		t.Errorf("counts %+v", c)
	}
}

func TestParseCrash(t *testing.T) {
	p := Parse(suitetest.Recorded(t, "compat_crash.out"), "unit/compat_crash")
	if len(p.Results) != 1 || p.Results[0].Test != "unit/compat_crash: compat before the crash" || p.Results[0].Status != compat.Pass {
		t.Fatalf("results %+v", p.Results)
	}
	if !strings.HasPrefix(p.Exception, "Executing test client: I/O error reading reply.") {
		t.Errorf("Exception = %q", p.Exception)
	}
}

func TestParseIgnoresAndColours(t *testing.T) {
	out := suitetest.Recorded(t, "unit_introspection.out")
	if !strings.Contains(out, "\x1b[") {
		t.Fatal("the recording has no colours to strip")
	}
	p := Parse(out, "unit/introspection")
	m := suitetest.ByTest(p.Results)
	r, ok := m["unit/introspection: CONFIG REWRITE sanity"]
	if !ok || r.Status != compat.Skip || r.Message != "Not supported on external server" {
		t.Errorf("CONFIG REWRITE sanity: %+v", r)
	}
	if _, ok := m["unit/introspection: [ignored group 2]"]; !ok {
		t.Error("the second ignored group is missing")
	}
	for _, r := range p.Results {
		if strings.Contains(r.Test, "\x1b") {
			t.Errorf("colour left in %q", r.Test)
		}
	}
}

func TestParseDuplicateNames(t *testing.T) {
	out := "[ok]: same (1 ms)\n[ok]: same (2 ms)\n[err]: same in tests/unit/x.tcl\nboom\n[1/1 done]: unit/x (0 seconds)\n"
	p := Parse(out, "unit/x")
	got := []string{}
	for _, r := range p.Results {
		got = append(got, r.Test)
	}
	want := "unit/x: same|unit/x: same (2)|unit/x: same (3)"
	if strings.Join(got, "|") != want || !p.Done || p.Results[2].Message != "boom" {
		t.Errorf("got %q done=%v", got, p.Done)
	}
}

func TestSplitIgnore(t *testing.T) {
	for _, c := range []struct{ in, name, reason string }{
		{"a: b: Not supported on external server", "a: b", "Not supported on external server"},
		{"Not supported in cluster mode", "", "Not supported in cluster mode"},
		{"x: Tag: needs:repl denied", "x", "Tag: needs:repl denied"},
		{"y: large memory flag not provided", "y", "large memory flag not provided"},
		{"z: something new", "z", "something new"},
	} {
		if n, r := splitIgnore(c.in); n != c.name || r != c.reason {
			t.Errorf("splitIgnore(%q) = %q, %q; want %q, %q", c.in, n, r, c.name, c.reason)
		}
	}
}

func TestUnits(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tests"), 0o755)
	os.WriteFile(filepath.Join(dir, "tests", "test_helper.tcl"), []byte("set x 1\nset ::all_tests {\n    unit/printver\n    unit/type/list\n    integration/replication\n}\nset y {a}\n"), 0o644)
	got, err := Units(dir)
	if err != nil || strings.Join(got, " ") != "unit/printver unit/type/list" {
		t.Fatalf("Units = %q, %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, "tests", "test_helper.tcl"), []byte("set y {a}\n"), 0o644)
	if _, err := Units(dir); err == nil || !strings.Contains(err.Error(), "all_tests") {
		t.Errorf("no list: %v", err)
	}
}

// TestParseFoldsRandomNames: integration/psync2 names its tests after a
// random draw; they fold into one result per template, whose id is the
// same in every run, and which fails when any drawn test failed.
func TestParseFoldsRandomNames(t *testing.T) {
	out := "[ok]: PSYNC2: Set #0 to replicate from #3 (10 ms)\n" +
		"[ok]: PSYNC2: Set #0 to replicate from #3 (12 ms)\n" +
		"[err]: PSYNC2: Set #4 to replicate from #1 in tests/integration/psync2.tcl\n" +
		"Expected 1 got 0\n" +
		"[ok]: PSYNC2: cluster is consistent after load (x = 123559) (5 ms)\n" +
		"[ok]: PSYNC2: Bring the master back again for next test (1 ms)\n" +
		"[1/1 done]: integration/psync2 (3 seconds)\n"
	p := Parse(out, "integration/psync2")
	got := map[string]compat.Result{}
	for _, r := range p.Results {
		got[r.Test] = r
	}
	if len(p.Results) != 3 {
		t.Fatalf("%d results, want 3 (two folded, one plain): %+v", len(p.Results), p.Results)
	}
	drawn := got["integration/psync2: PSYNC2: Set #N to replicate from #M (every cycle)"]
	if drawn.Status != compat.Fail || !strings.Contains(drawn.Message, "Set #4 to replicate from #1: Expected 1 got 0") || drawn.Duration != 22*time.Millisecond {
		t.Errorf("folded replicate-from tests: %+v", drawn)
	}
	if r := got["integration/psync2: PSYNC2: cluster is consistent after load (every cycle)"]; r.Status != compat.Pass {
		t.Errorf("folded consistency test: %+v", r)
	}
	if r := got["integration/psync2: PSYNC2: Bring the master back again for next test"]; r.Status != compat.Pass {
		t.Errorf("an ordinary test of the unit: %+v", r)
	}
	if p := Parse("[ok]: PSYNC2: Set #0 to replicate from #3 (1 ms)\n", "integration/other"); p.Results[0].Test != "integration/other: PSYNC2: Set #0 to replicate from #3" {
		t.Errorf("another unit's test was folded: %s", p.Results[0].Test)
	}
}
