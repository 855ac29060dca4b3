package compat

import "sort"

// Expectation is what a baseline says about one test.
type Expectation string

// The expectations a baseline can hold. Every one but ExpectPass comes with
// a reason.
const (
	// ExpectPass: the test passes.
	ExpectPass Expectation = "pass"
	// ExpectFail: the test fails or errors (a known failure).
	ExpectFail Expectation = "fail"
	// ExpectSkip: the test is skipped.
	ExpectSkip Expectation = "skip"
	// ExpectFlaky: the test may pass or fail; neither is reported as a
	// change.
	ExpectFlaky Expectation = "flaky"
)

// Valid reports whether e is one of the Expect constants.
func (e Expectation) Valid() bool {
	switch e {
	case ExpectPass, ExpectFail, ExpectSkip, ExpectFlaky:
		return true
	}
	return false
}

// Class sorts a difference between a run and its baseline.
type Class string

// The classes of Change, in the order reports list them: most urgent first.
const (
	// Regression: expected to pass (or be skipped), but failed, errored,
	// was skipped when it used to pass, or reported nothing because its
	// unit crashed. A test the baseline does not list is held to the
	// reference's result in the same run instead, when there is one.
	Regression Class = "regression"
	// UnexpectedPass: expected to fail or be skipped, but passed (lit's
	// XPASS), or expected to fail but was skipped: either way the test no
	// longer fails and the baseline wants updating.
	UnexpectedPass Class = "unexpected-pass"
	// Flaky: failed, then passed when run again. Reported, not a
	// regression.
	Flaky Class = "flaky"
	// NewTest: in the run but not in the baseline (and, when the run has
	// a reference, not a regression against the reference's result).
	NewTest Class = "new"
	// RemovedTest: in the baseline, and its unit ran without error, but it
	// reported nothing: the test was removed or renamed upstream.
	RemovedTest Class = "removed"
	// NotRun: expected (by the baseline, or by the reference's result)
	// but not reached: its unit did not run to its end because the run
	// was stopped, the unit's time ran out or its shard is missing (see
	// Run.Incomplete). Never a regression; a unit that timed out is one
	// itself, by its own error result.
	NotRun Class = "not-run"
	// KnownFailure: failed as the baseline says it does.
	KnownFailure Class = "known-failure"
)

// Classes lists every Class in report order.
var Classes = []Class{Regression, UnexpectedPass, Flaky, NewTest, RemovedTest, NotRun, KnownFailure}

func (c Class) rank() int {
	for i, k := range Classes {
		if k == c {
			return i
		}
	}
	return len(Classes)
}

// Change is one test whose outcome a report should mention.
type Change struct {
	// Class says how the test differs from the baseline.
	Class Class
	// Test is the test's id.
	Test string
	// Want is the baseline's expectation, empty for a new test.
	Want Expectation
	// Got is the run's status, empty when the test reported nothing.
	Got Status
	// Reason is the baseline's reason, if any, or with FromReference why
	// the reference's result stands in for one.
	Reason string
	// FromReference is set when the baseline has no entry for the test
	// and Want is the reference's result in the same run (see
	// baselines.DiffWithReference).
	FromReference bool
	// Message is the run's message, if any.
	Message string
}

// Diff is how one run differs from its baseline.
type Diff struct {
	// Suite and Target name the run.
	Suite, Target string
	// Changes lists the tests to report, sorted by class (see Classes)
	// and then test id.
	Changes []Change
	// Matched counts the tests that did what the baseline says, known
	// failures excepted (they are in Changes).
	Matched int
	// Expected counts the baseline's expectations for the units the run
	// covered: pass in Pass, fail in Fail, skip in Skip and flaky in
	// Flaky.
	Expected Counts
}

// Sort puts d.Changes in report order.
func (d *Diff) Sort() {
	sort.SliceStable(d.Changes, func(i, j int) bool {
		a, b := d.Changes[i], d.Changes[j]
		if a.Class != b.Class {
			return a.Class.rank() < b.Class.rank()
		}
		return a.Test < b.Test
	})
}

// Of returns the changes of class c, in order.
func (d Diff) Of(c Class) []Change {
	var out []Change
	for _, ch := range d.Changes {
		if ch.Class == c {
			out = append(out, ch)
		}
	}
	return out
}

// Count returns how many changes have class c.
func (d Diff) Count(c Class) int {
	n := 0
	for _, ch := range d.Changes {
		if ch.Class == c {
			n++
		}
	}
	return n
}

// OK reports whether the run has no regressions: the answer a release
// checklist wants.
func (d Diff) OK() bool { return d.Count(Regression) == 0 }
