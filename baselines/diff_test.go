package baselines

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/compat-project/compat"
)

func mustParse(t *testing.T, s string) *Baseline {
	t.Helper()
	b, err := Parse("test.txt", strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func res(unit, test string, st compat.Status, msg string) compat.Result {
	return compat.Result{Suite: "python", Unit: unit, Test: test, Status: st, Message: msg}
}

func flaky(unit, test string) compat.Result {
	r := res(unit, test, compat.Pass, "")
	r.Previous = []compat.Result{res(unit, test, compat.Fail, "AssertionError: timing")}
	return r
}

const diffBaseline = `# header kept by Update
pass  test_a.T.test_pass_pass
pass  test_a.T.test_pass_fail
pass  test_a.T.test_pass_error
pass  test_a.T.test_pass_skip
pass  test_a.T.test_pass_gone
pass  test_a.T.test_pass_flaky
fail  test_a.T.test_fail_pass  # known bug
fail  test_a.T.test_fail_fail  # known bug
fail  test_a.T.test_fail_skip  # known bug
skip  test_a.T.test_skip_pass  # no network
skip  test_a.T.test_skip_fail  # no network
skip  test_a.T.test_skip_skip  # no network
flaky test_a.T.test_flaky_pass  # load
flaky test_a.T.test_flaky_fail  # load
flaky test_a.T.test_flaky_skip  # load
pass  test_crash.T.test_pass
fail  test_crash.T.test_fail  # known
skip  test_crash.T.test_skip  # resource
pass  test_notrun.T.test_x
fail  test_notrun.T.test_y  # not in this run
pass  test_a2.T.test_other_unit
`

func diffRun() compat.Run {
	return compat.Run{Suite: "python", Target: "vkernel", Results: []compat.Result{
		res("test_a", "test_a.T.test_pass_pass", compat.Pass, ""),
		res("test_a", "test_a.T.test_pass_fail", compat.Fail, "AssertionError: 1 != 2"),
		res("test_a", "test_a.T.test_pass_error", compat.Error, "OSError: [Errno 58] Not supported"),
		res("test_a", "test_a.T.test_pass_skip", compat.Skip, "requires network"),
		flaky("test_a", "test_a.T.test_pass_flaky"),
		res("test_a", "test_a.T.test_fail_pass", compat.Pass, ""),
		res("test_a", "test_a.T.test_fail_fail", compat.Error, "boom"),
		res("test_a", "test_a.T.test_fail_skip", compat.Skip, "skipped now"),
		res("test_a", "test_a.T.test_skip_pass", compat.Pass, ""),
		res("test_a", "test_a.T.test_skip_fail", compat.Fail, "broken"),
		res("test_a", "test_a.T.test_skip_skip", compat.Skip, "no network"),
		res("test_a", "test_a.T.test_flaky_pass", compat.Pass, ""),
		res("test_a", "test_a.T.test_flaky_fail", compat.Fail, "timing"),
		res("test_a", "test_a.T.test_flaky_skip", compat.Skip, "gone"),
		res("test_a", "test_a.T.test_new_pass", compat.Pass, ""),
		res("test_a", "test_a.T.test_new_fail", compat.Fail, "AssertionError: new\nsecond line"),
		flaky("test_a", "test_a.T.test_new_flaky"),
		res("test_a", "test_a.T.test_new_skip", compat.Skip, "requires 'cpu' resource"),
		res("test_crash", "test_crash", compat.Error, "exit status 139 without JUnit XML"),
	}}
}

func TestDiff(t *testing.T) {
	d := Diff(diffRun(), mustParse(t, diffBaseline))
	var got []string
	for _, c := range d.Changes {
		got = append(got, string(c.Class)+" "+c.Test+" "+string(c.Want)+"->"+string(c.Got))
	}
	want := []string{
		"regression test_a.T.test_flaky_skip flaky->skip",
		"regression test_a.T.test_pass_error pass->error",
		"regression test_a.T.test_pass_fail pass->fail",
		"regression test_a.T.test_pass_skip pass->skip",
		"regression test_a.T.test_skip_fail skip->fail",
		"regression test_crash.T.test_pass pass->",
		"unexpected-pass test_a.T.test_fail_pass fail->pass",
		"unexpected-pass test_a.T.test_fail_skip fail->skip",
		"unexpected-pass test_a.T.test_skip_pass skip->pass",
		"flaky test_a.T.test_new_flaky ->pass",
		"flaky test_a.T.test_pass_flaky pass->pass",
		"new test_a.T.test_new_fail ->fail",
		"new test_a.T.test_new_pass ->pass",
		"new test_a.T.test_new_skip ->skip",
		"new test_crash ->error",
		"removed test_a.T.test_pass_gone pass->",
		"known-failure test_a.T.test_fail_fail fail->error",
		"known-failure test_a.T.test_flaky_fail flaky->fail",
		"known-failure test_crash.T.test_fail fail->",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Matched: pass_pass, skip_skip, flaky_pass, test_crash.T.test_skip.
	if d.Matched != 4 {
		t.Errorf("Matched = %d, want 4", d.Matched)
	}
	// test_notrun and test_a2 were not run: their lines are out of scope.
	wantExp := compat.Counts{Pass: 7, Fail: 4, Skip: 4, Flaky: 3}
	if d.Expected != wantExp {
		t.Errorf("Expected = %+v, want %+v", d.Expected, wantExp)
	}
	if d.OK() {
		t.Error("OK() = true with regressions")
	}
	if d.Suite != "python" || d.Target != "vkernel" {
		t.Errorf("Suite, Target = %q, %q", d.Suite, d.Target)
	}
	for _, c := range d.Changes {
		if c.Test == "test_a.T.test_fail_fail" && (c.Reason != "known bug" || c.Message != "boom") {
			t.Errorf("known failure lost its reason or message: %+v", c)
		}
	}
}

func TestDiffNilBaseline(t *testing.T) {
	d := Diff(diffRun(), nil)
	if n := d.Count(compat.NewTest) + d.Count(compat.Flaky); n != len(diffRun().Results) {
		t.Errorf("against no baseline: %d new or flaky, want every one of %d results", n, len(diffRun().Results))
	}
	if !d.OK() {
		t.Error("regressions against an empty baseline")
	}
}

func TestUpdate(t *testing.T) {
	old := mustParse(t, diffBaseline)
	nb, changes := Update(old, diffRun())
	var buf bytes.Buffer
	nb.WriteTo(&buf)
	wantFile := `# header kept by Update
fail  test_a.T.test_fail_fail  # known bug
pass  test_a.T.test_fail_pass
skip  test_a.T.test_fail_skip  # known bug
flaky test_a.T.test_flaky_fail  # load
flaky test_a.T.test_flaky_pass  # load
skip  test_a.T.test_flaky_skip  # load
fail  test_a.T.test_new_fail  # TODO: AssertionError: new
flaky test_a.T.test_new_flaky  # TODO: failed, then passed when run again: AssertionError: timing
pass  test_a.T.test_new_pass
skip  test_a.T.test_new_skip  # requires 'cpu' resource
fail  test_a.T.test_pass_error  # TODO: OSError: [Errno 58] Not supported
fail  test_a.T.test_pass_fail  # TODO: AssertionError: 1 != 2
flaky test_a.T.test_pass_flaky  # TODO: failed, then passed when run again: AssertionError: timing
pass  test_a.T.test_pass_pass
skip  test_a.T.test_pass_skip  # requires network
fail  test_a.T.test_skip_fail  # no network
pass  test_a.T.test_skip_pass
skip  test_a.T.test_skip_skip  # no network
pass  test_a2.T.test_other_unit
fail  test_crash  # TODO: exit status 139 without JUnit XML
fail  test_crash.T.test_fail  # known
pass  test_crash.T.test_pass
skip  test_crash.T.test_skip  # resource
pass  test_notrun.T.test_x
fail  test_notrun.T.test_y  # not in this run
`
	if buf.String() != wantFile {
		t.Errorf("updated baseline:\n%s\nwant:\n%s", buf.String(), wantFile)
	}
	wantChanges := []string{
		"changed test_a.T.test_fail_pass: fail -> pass",
		"changed test_a.T.test_fail_skip: fail -> skip  # known bug",
		"changed test_a.T.test_flaky_skip: flaky -> skip  # load",
		"added   fail  test_a.T.test_new_fail  # TODO: AssertionError: new",
		"added   flaky test_a.T.test_new_flaky  # TODO: failed, then passed when run again: AssertionError: timing",
		"added   pass  test_a.T.test_new_pass",
		"added   skip  test_a.T.test_new_skip  # requires 'cpu' resource",
		"changed test_a.T.test_pass_error: pass -> fail  # TODO: OSError: [Errno 58] Not supported",
		"changed test_a.T.test_pass_fail: pass -> fail  # TODO: AssertionError: 1 != 2",
		"changed test_a.T.test_pass_flaky: pass -> flaky  # TODO: failed, then passed when run again: AssertionError: timing",
		"removed pass  test_a.T.test_pass_gone",
		"changed test_a.T.test_pass_skip: pass -> skip  # requires network",
		"changed test_a.T.test_skip_fail: skip -> fail  # no network",
		"changed test_a.T.test_skip_pass: skip -> pass",
		"added   fail  test_crash  # TODO: exit status 139 without JUnit XML",
	}
	if !reflect.DeepEqual(changes, wantChanges) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(changes, "\n"), strings.Join(wantChanges, "\n"))
	}
	// The rewritten baseline must parse, and a run compared with it must
	// show nothing but the tests whose unit crashed and the flaky ones.
	again := mustParse(t, buf.String())
	d := Diff(diffRun(), again)
	for _, c := range d.Changes {
		switch {
		case c.Class == compat.Flaky:
		case c.Class == compat.KnownFailure:
		case c.Test == "test_crash.T.test_pass" && c.Class == compat.Regression:
		default:
			t.Errorf("after Update, Diff still reports %+v", c)
		}
	}
	// Update leaves its input alone.
	if !reflect.DeepEqual(old, mustParse(t, diffBaseline)) {
		t.Error("Update modified its input baseline")
	}
}

func TestUpdateNoTODOWithoutMessage(t *testing.T) {
	run := compat.Run{Results: []compat.Result{res("t", "t.A.b", compat.Error, "")}}
	nb, _ := Update(nil, run)
	if len(nb.Entries) != 1 || nb.Entries[0].Reason != "TODO: explain" {
		t.Errorf("entries = %+v, want one with reason %q", nb.Entries, "TODO: explain")
	}
}

// TestDiffWithReference: where the baseline is silent, the reference's
// result in the same run is the expectation; where it speaks, it wins.
func TestDiffWithReference(t *testing.T) {
	run := compat.Run{Suite: "nginx", Target: "vkernel", Results: []compat.Result{
		res("a.t", "a.t 1", compat.Pass, ""),
		res("a.t", "a.t 2", compat.Fail, "got: '500'; expected: '200'"),
		res("a.t", "a.t 3", compat.Skip, "no ssl"),
		res("a.t", "a.t 4", compat.Fail, "fails on both"),
		res("a.t", "a.t 5", compat.Pass, ""),
		res("a.t", "a.t 6", compat.Fail, "listed"),
		res("a.t", "a.t 7", compat.Fail, "not on the reference"),
		flaky("a.t", "a.t 8"),
		// b.t hung after its first test: the rest is missing here.
		res("b.t", "b.t 1", compat.Pass, ""),
		res("b.t", "b.t", compat.Error, "timed out"),
		// c.t crashed on both targets.
		res("c.t", "c.t", compat.Error, "crash"),
		// d.t crashed here, but the baseline knows.
		res("d.t", "d.t", compat.Error, "crash"),
	}}
	ref := compat.Run{Suite: "nginx", Target: "reference", Results: []compat.Result{
		res("a.t", "a.t 1", compat.Pass, ""),
		res("a.t", "a.t 2", compat.Pass, ""),
		res("a.t", "a.t 3", compat.Pass, ""),
		res("a.t", "a.t 4", compat.Fail, "fails on both"),
		res("a.t", "a.t 5", compat.Fail, "fails on the reference"),
		res("a.t", "a.t 6", compat.Pass, ""),
		res("a.t", "a.t 8", compat.Pass, ""),
		res("b.t", "b.t 1", compat.Pass, ""),
		res("b.t", "b.t 2", compat.Pass, ""),
		res("b.t", "b.t 3", compat.Skip, "skipped there"),
		res("c.t", "c.t", compat.Error, "crash"),
		res("d.t", "d.t 1", compat.Pass, ""),
	}}
	b := mustParse(t, "fail  a.t 6  # known here\nfail  d.t  # crashes, issue 9\n")
	d := DiffWithReference(run, b, &ref)
	var got []string
	for _, c := range d.Changes {
		line := string(c.Class) + " " + c.Test + " " + string(c.Want) + "->" + string(c.Got)
		if c.FromReference {
			line += " (reference)"
		}
		got = append(got, line)
	}
	want := []string{
		"regression a.t 2 pass->fail (reference)",
		"regression a.t 3 pass->skip (reference)",
		"regression b.t pass->error (reference)",
		"regression b.t 2 pass-> (reference)",
		"flaky a.t 8 ->pass",
		"new a.t 1 ->pass",
		"new a.t 4 ->fail",
		"new a.t 5 ->pass",
		"new a.t 7 ->fail",
		"new b.t 1 ->pass",
		"new c.t ->error",
		"known-failure a.t 6 fail->fail",
		"known-failure d.t fail->error",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range d.Changes {
		if c.FromReference && !strings.Contains(c.Reason, "reference") {
			t.Errorf("%s: reason %q does not say the reference is the expectation", c.Test, c.Reason)
		}
	}
	// Without the reference it is Diff: nothing is a regression.
	if n := DiffWithReference(run, b, nil).Count(compat.Regression); n != 0 {
		t.Errorf("without a reference: %d regressions, want 0", n)
	}
	// With no baseline at all the reference still finds the regressions.
	// (a.t 2, 3 and 6, b.t and b.t 2, d.t and d.t 1).
	if n := DiffWithReference(run, nil, &ref).Count(compat.Regression); n != 7 {
		t.Errorf("no baseline: %d regressions, want 7", n)
	}
	// A baseline's entries keep their meaning: the full diff is unchanged
	// by a reference that disagrees with every entry.
	full := mustParse(t, diffBaseline)
	other := diffRun()
	for i := range other.Results {
		other.Results[i].Status = compat.Pass
	}
	other.Target = "reference"
	listed := func(d compat.Diff) []compat.Change {
		var out []compat.Change
		for _, c := range d.Changes {
			if c.Want != "" && !c.FromReference {
				out = append(out, c)
			}
		}
		return out
	}
	plain, withRef := Diff(diffRun(), full), DiffWithReference(diffRun(), full, &other)
	if !reflect.DeepEqual(listed(plain), listed(withRef)) || plain.Matched != withRef.Matched || plain.Expected != withRef.Expected {
		t.Errorf("a reference changed the diff of listed tests:\n%+v\nwant\n%+v", listed(withRef), listed(plain))
	}
}

// TestDiffPartial: tests a partial run did not reach are not-run, never
// regressions: those of a unit the run was stopped in, of a unit never
// started and of a unit whose time ran out. The timed-out unit itself is one
// regression, since tests of it that should pass were not reached; and
// Update keeps the entries of every unreached test.
func TestDiffPartial(t *testing.T) {
	b := mustParse(t, `pass  a.t 1
pass  a.t 2
fail  a.t 3  # known
pass  b.t 1
pass  b.t 2
pass  c.t 1
pass  c.t 2
skip  c.t 3  # no ssl
pass  d.t 1
`)
	run := compat.Run{Suite: "nginx", Target: "vkernel", Results: []compat.Result{
		res("a.t", "a.t 1", compat.Pass, ""),
		// b.t timed out after its first test.
		res("b.t", "b.t 1", compat.Pass, ""),
		res("b.t", "b.t", compat.Error, "timed out after 20m0s with 1 tests reported; the rest did not run"),
		// d.t ran to its end, on another unit's side of the stop.
		res("d.t", "d.t 1", compat.Pass, ""),
	}, Incomplete: []compat.Incomplete{
		{Unit: "a.t", Reason: "the run was stopped before the unit finished (interrupt)"},
		{Unit: "b.t", Reason: "timed out after 20m0s"},
		{Unit: "c.t", Reason: "not started: the run was stopped"},
	}}
	ref := compat.Run{Suite: "nginx", Target: "reference", Results: []compat.Result{
		res("a.t", "a.t 1", compat.Pass, ""),
		res("a.t", "a.t 4", compat.Pass, ""),
		res("b.t", "b.t 1", compat.Pass, ""),
	}}
	for _, tc := range []struct {
		name string
		ref  *compat.Run
		want []string
	}{
		{"baseline only", nil, []string{
			"regression b.t pass->error",
			"not-run a.t 2 pass->",
			"not-run a.t 3 fail->",
			"not-run b.t 2 pass->",
			"not-run c.t 1 pass->",
			"not-run c.t 2 pass->",
			"not-run c.t 3 skip->",
		}},
		{"with the reference", &ref, []string{
			"regression b.t pass->error (reference)",
			"not-run a.t 2 pass->",
			"not-run a.t 3 fail->",
			"not-run a.t 4 pass-> (reference)",
			"not-run b.t 2 pass->",
			"not-run c.t 1 pass->",
			"not-run c.t 2 pass->",
			"not-run c.t 3 skip->",
		}},
	} {
		d := DiffWithReference(run, b, tc.ref)
		var got []string
		for _, c := range d.Changes {
			line := string(c.Class) + " " + c.Test + " " + string(c.Want) + "->" + string(c.Got)
			if c.FromReference {
				line += " (reference)"
			}
			got = append(got, line)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: changes:\n%s\nwant:\n%s", tc.name, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
	nb, changes := Update(b, run)
	var buf bytes.Buffer
	nb.WriteTo(&buf)
	for _, keep := range []string{"pass  a.t 2\n", "fail  a.t 3  # known\n", "pass  b.t 2\n", "skip  c.t 3  # no ssl\n"} {
		if !strings.Contains(buf.String(), keep) {
			t.Errorf("Update dropped %q of an unreached test:\n%s", keep, buf.String())
		}
	}
	for _, c := range changes {
		if strings.HasPrefix(c, "removed") {
			t.Errorf("Update removed an unreached test: %s", c)
		}
	}
}
