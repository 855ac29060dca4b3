package baselines

import (
	"fmt"
	"sort"
	"strings"

	"github.com/compat-project/compat"
)

// scope answers, for a baseline entry, whether the run covered its unit and
// whether that unit failed as a whole. A run that covers only some units
// (a --tests list, a quick profile) is compared only on those units, so a
// partial run never shows the rest of the baseline as removed. Units the
// run lists as incomplete (compat.Run.Incomplete) are covered, and cut.
type scope struct {
	units   map[string]bool // unit -> the unit has a failed unit-level result
	results map[string]compat.Result
	cut     map[string]string // incomplete unit -> why
}

func newScope(run compat.Run) scope {
	s := scope{units: map[string]bool{}, results: map[string]compat.Result{}, cut: map[string]string{}}
	for _, r := range run.Results {
		if r.Unit != "" {
			crashed := r.Test == r.Unit && r.Status.Failed()
			s.units[r.Unit] = s.units[r.Unit] || crashed
		}
		s.results[r.Test] = r
	}
	for _, in := range run.Incomplete {
		s.cut[in.Unit] = in.Reason
		s.units[in.Unit] = s.units[in.Unit] || false
	}
	return s
}

// unitOf returns the unit of the run that test belongs to. It tries each
// prefix of test that ends before a character that cannot continue a name,
// the same boundary compat.InUnit uses.
func (s scope) unitOf(test string) (unit string, crashed, ok bool) {
	for i := 1; i <= len(test); i++ {
		if i < len(test) && !compat.InUnit(test[:i+1], test[:i]) {
			continue
		}
		if c, found := s.units[test[:i]]; found {
			return test[:i], c, true
		}
	}
	return "", false, false
}

// Diff compares run with the baseline b. Only the units that run covered
// are compared (see compat.Result.Unit); each result and each entry of those
// units is classified as follows, where "missing" means the test reported
// nothing:
//
//	baseline  got pass        got fail/error  got skip        missing, unit crashed  missing, unit ran
//	pass      matched         regression      regression      regression             removed
//	fail      unexpected-pass known-failure   unexpected-pass known-failure          removed
//	skip      unexpected-pass regression      matched         matched                removed
//	flaky     matched         known-failure   regression      known-failure          removed
//	(none)    new             new             new             -                      -
//
// A result that failed and then passed on a rerun (compat.Result.Flaky) is
// classed flaky whatever the baseline says. A nil b compares against an
// empty baseline: every test is new.
//
// In a unit the run did not run to its end (compat.Run.Incomplete: the run
// was stopped, the unit timed out, its shard is missing) a listed test
// that reported nothing is not-run, whatever the baseline expects: it was
// never reached. The unit's own error result (a timeout) is a regression
// when it has no entry and some test not reached was expected to pass:
// one regression for the unit, not one per test it did not reach.
func Diff(run compat.Run, b *Baseline) compat.Diff {
	return DiffWithReference(run, b, nil)
}

// Reasons of the changes whose expectation is the reference's result.
const (
	refReason      = "no baseline entry: the reference's result in this run"
	refUnitReason  = "no baseline entry: the unit ran to its end on the reference in this run"
	refCrashReason = "no baseline entry: the reference's result in this run; the unit did not run to its end here"
)

// DiffWithReference is Diff where the baseline is silent: a test the
// baseline has no entry for is held to ref's result for it, ref being the
// same suite on the reference in the same run (nil: no reference, Diff's
// behaviour). Entries of the baseline are classified exactly as by Diff,
// so a baseline that lists a test always wins. Without an entry:
//
//   - a result that the table above classes a regression when the
//     reference's status is taken as the expectation (pass on the
//     reference; fail, error or skip here) is a regression;
//   - a unit that did not run to its end (an error result for the unit
//     itself), where the reference ran it to its end, is a regression;
//   - in such a unit, a test that passed on the reference and reported
//     nothing here is a regression, unless the baseline lists the unit
//     as a known failure;
//   - every other result is new, as without a reference.
//
// Such changes have FromReference set, Want the reference's result and a
// Reason saying so. A suite with no baseline at all is thus compared with
// its reference: "no baseline" never means "no regressions".
func DiffWithReference(run compat.Run, b *Baseline, ref *compat.Run) compat.Diff {
	d := compat.Diff{Suite: run.Suite, Target: run.Target}
	s := newScope(run)
	inBaseline := map[string]bool{}
	var entries []Entry
	if b != nil {
		entries = b.Entries
	}
	add := func(c compat.Class, e Entry, r compat.Result) {
		d.Changes = append(d.Changes, compat.Change{Class: c, Test: e.Test, Want: e.Expect, Got: r.Status, Reason: e.Reason, Message: r.Message})
	}
	for _, e := range entries {
		inBaseline[e.Test] = true
		r, ran := s.results[e.Test]
		unit, crashed, covered := s.unitOf(e.Test)
		if !ran && !covered {
			continue
		}
		switch e.Expect {
		case compat.ExpectPass:
			d.Expected.Pass++
		case compat.ExpectFail:
			d.Expected.Fail++
		case compat.ExpectSkip:
			d.Expected.Skip++
		case compat.ExpectFlaky:
			d.Expected.Flaky++
		}
		if !ran {
			if _, cut := s.cut[unit]; cut {
				add(compat.NotRun, e, r)
				continue
			}
			switch {
			case !crashed:
				add(compat.RemovedTest, e, r)
			case e.Expect == compat.ExpectPass:
				add(compat.Regression, e, r)
			case e.Expect == compat.ExpectSkip:
				d.Matched++
			default:
				add(compat.KnownFailure, e, r)
			}
			continue
		}
		if r.Flaky() {
			add(compat.Flaky, e, r)
			continue
		}
		switch c := classify(e.Expect, r.Status); c {
		case "":
			d.Matched++
		default:
			add(c, e, r)
		}
	}
	rs := newScope(compat.Run{})
	if ref != nil {
		rs = newScope(*ref)
	}
	fromRef := func(r compat.Result, want compat.Expectation, reason string) {
		d.Changes = append(d.Changes, compat.Change{Class: compat.Regression, Test: r.Test, Want: want, Got: r.Status,
			Reason: reason, Message: r.Message, FromReference: true})
	}
	// Tests of incomplete units that the baseline does not list and that
	// reported nothing here: the reference's results say what was not
	// reached.
	notReached := map[string]int{} // unit -> tests expected to pass, not reached
	for _, c := range d.Changes {
		if c.Class == compat.NotRun && c.Want == compat.ExpectPass {
			if u, _, ok := s.unitOf(c.Test); ok {
				notReached[u]++
			}
		}
	}
	for _, t := range sortedKeys(rs.results) {
		rr := rs.results[t]
		if _, cut := s.cut[rr.Unit]; !cut || t == rr.Unit || inBaseline[t] {
			continue
		}
		if _, ok := s.results[t]; ok {
			continue
		}
		d.Changes = append(d.Changes, compat.Change{Class: compat.NotRun, Test: t, Want: expectationOf(rr.Status),
			Reason: refReason, FromReference: true})
		if rr.Status == compat.Pass {
			notReached[rr.Unit]++
		}
	}
	for _, r := range run.Results {
		if inBaseline[r.Test] {
			continue
		}
		if r.Flaky() {
			add(compat.Flaky, Entry{Test: r.Test}, r)
			continue
		}
		if rr, ok := rs.results[r.Test]; ok && classify(expectationOf(rr.Status), r.Status) == compat.Regression {
			fromRef(r, expectationOf(rr.Status), refReason)
			continue
		}
		if crashedHere := r.Test == r.Unit && r.Status.Failed(); crashedHere {
			_, cut := s.cut[r.Unit]
			if crashedThere, ran := rs.units[r.Unit]; ran && !crashedThere {
				fromRef(r, compat.ExpectPass, refUnitReason)
				if !cut {
					for _, t := range rs.missingPasses(r.Unit, s) {
						if !inBaseline[t] {
							fromRef(compat.Result{Test: t}, compat.ExpectPass, refCrashReason)
						}
					}
				}
				continue
			}
			if n := notReached[r.Unit]; cut && n > 0 {
				d.Changes = append(d.Changes, compat.Change{Class: compat.Regression, Test: r.Test, Want: compat.ExpectPass, Got: r.Status,
					Reason:  fmt.Sprintf("no baseline entry: the unit did not run to its end, and %d test(s) of it expected to pass were not reached", n),
					Message: r.Message})
				continue
			}
		}
		add(compat.NewTest, Entry{Test: r.Test}, r)
	}
	d.Sort()
	return d
}

// sortedKeys returns m's keys in order, for output that does not depend on
// map order.
func sortedKeys(m map[string]compat.Result) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// expectationOf is the expectation that a result of status st meets.
func expectationOf(st compat.Status) compat.Expectation {
	switch st {
	case compat.Pass:
		return compat.ExpectPass
	case compat.Skip:
		return compat.ExpectSkip
	}
	return compat.ExpectFail
}

// missingPasses lists, sorted, the tests of unit that passed in the run s
// describes and that run reports nothing for.
func (s scope) missingPasses(unit string, run scope) []string {
	var out []string
	for t, r := range s.results {
		if r.Unit == unit && t != unit && r.Status == compat.Pass {
			if _, ok := run.results[t]; !ok {
				out = append(out, t)
			}
		}
	}
	sort.Strings(out)
	return out
}

// classify returns the class of a test that the baseline expects to end
// as want and that ended as got, or "" when it did what was expected.
func classify(want compat.Expectation, got compat.Status) compat.Class {
	switch want {
	case compat.ExpectPass:
		if got != compat.Pass {
			return compat.Regression
		}
	case compat.ExpectFail:
		if !got.Failed() {
			return compat.UnexpectedPass
		}
		return compat.KnownFailure
	case compat.ExpectSkip:
		switch {
		case got == compat.Pass:
			return compat.UnexpectedPass
		case got.Failed():
			return compat.Regression
		}
	case compat.ExpectFlaky:
		switch {
		case got == compat.Skip:
			return compat.Regression
		case got.Failed():
			return compat.KnownFailure
		}
	}
	return ""
}

// Update returns a copy of b rewritten to expect what run did, for the units
// run covered, and a list of the changes for a human to review, one line
// each:
//
//	added   fail  test_x.C.test_new  # TODO: AssertionError: 1 != 2
//	removed pass  test_x.C.test_gone
//	changed test_os.FileTests.test_blocking: pass -> fail  # TODO: OSError: [Errno 58]
//
// Existing reasons are kept whenever the new expectation still needs one. A
// test that needs a new reason gets its skip message as the reason, or
// "TODO: " and its failure message, so that the file stays valid and the
// reviewer sees what to explain. A test expected flaky stays flaky, since
// one run cannot show it has stopped being flaky. Tests whose unit crashed
// keep their entries, as do the tests a partial run did not reach
// (compat.Run.Incomplete), and units the run did not cover are untouched.
// A nil b is an empty baseline.
func Update(b *Baseline, run compat.Run) (*Baseline, []string) {
	if b == nil {
		b = &Baseline{}
	}
	out := &Baseline{Name: b.Name, Header: append([]string(nil), b.Header...)}
	s := newScope(run)
	var changes []change
	old := map[string]bool{}
	for _, e := range b.Entries {
		old[e.Test] = true
		r, ran := s.results[e.Test]
		unit, crashed, covered := s.unitOf(e.Test)
		_, cut := s.cut[unit]
		switch {
		case !ran && (!covered || crashed || cut):
			out.Entries = append(out.Entries, e)
		case !ran:
			changes = append(changes, change{e.Test, "removed " + formatEntry(e)})
		default:
			n := expectFrom(r, e)
			out.Entries = append(out.Entries, n)
			if n.Expect != e.Expect {
				line := fmt.Sprintf("changed %s: %s -> %s", formatTest(e.Test), e.Expect, n.Expect)
				if n.Reason != "" {
					line += "  # " + oneLine(n.Reason)
				}
				changes = append(changes, change{e.Test, line})
			}
		}
	}
	for _, r := range run.Results {
		if old[r.Test] {
			continue
		}
		old[r.Test] = true // a duplicate result must not add the test twice
		n := expectFrom(r, Entry{})
		out.Entries = append(out.Entries, n)
		changes = append(changes, change{n.Test, "added   " + formatEntry(n)})
	}
	out.sort()
	return out, sortChanges(changes)
}

// expectFrom returns the entry that says what r did, keeping what it can of
// the previous entry prev (zero for a new test).
func expectFrom(r compat.Result, prev Entry) Entry {
	n := Entry{Test: r.Test}
	switch {
	case r.Flaky() || prev.Expect == compat.ExpectFlaky && r.Status != compat.Skip:
		n.Expect = compat.ExpectFlaky
	case r.Status == compat.Pass:
		n.Expect = compat.ExpectPass
	case r.Status == compat.Skip:
		n.Expect = compat.ExpectSkip
	default:
		n.Expect = compat.ExpectFail
	}
	switch {
	case n.Expect == compat.ExpectPass:
		if prev.Expect == compat.ExpectPass {
			n.Reason = prev.Reason
		}
	case prev.Reason != "":
		n.Reason = prev.Reason
	case n.Expect == compat.ExpectSkip && firstLine(r.Message) != "":
		n.Reason = firstLine(r.Message)
	case r.Flaky():
		n.Reason = "TODO: failed, then passed when run again: " + firstLine(r.Previous[len(r.Previous)-1].Message)
	default:
		n.Reason = "TODO: " + firstLine(r.Message)
	}
	n.Reason = strings.TrimSpace(n.Reason)
	if n.Reason == "TODO:" {
		n.Reason = "TODO: explain"
	}
	return n
}

// firstLine returns the first non-blank line of s, cut to a length that
// reads well in a baseline file.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		l = oneLine(l)
		if l == "" {
			continue
		}
		if r := []rune(l); len(r) > 120 {
			l = string(r[:117]) + "..."
		}
		return l
	}
	return ""
}

// change is one line of Update's change list with the test it is about.
type change struct{ test, line string }

// sortChanges orders the change list by test id so a reviewer can read it
// beside the file's diff.
func sortChanges(changes []change) []string {
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].test < changes[j].test })
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.line
	}
	return out
}
