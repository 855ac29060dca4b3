// Package report writes runs out for people and dashboards: JUnit XML for
// CI (Jenkins, GitLab, GitHub) and a Markdown summary for release
// sign-off.
//
// The JUnit files follow Surefire's schema, which all three dashboards
// read: every string is stripped of characters XML 1.0 forbids (test output
// is full of ANSI escapes and stray control bytes), times are summed up the
// tree, and a test that failed and then passed on a rerun is a passing
// testcase with flakyFailure children, as Surefire writes it.
package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/compat-project/compat"
	"github.com/jstemmer/go-junit-report/v2/junit"
)

// WriteJUnit writes runs to w as one JUnit XML document with one testsuite
// per run, named SUITE/TARGET. Testcases are named by test id, with the
// part after the unit as the name and SUITE.TARGET.UNIT as the classname, so
// that dashboards that merge testcases by classname keep the targets apart.
// Properties of each testsuite: suite, target and the run's Properties, and
// for a partial run (compat.Run.Partial) "partial", saying how many units
// did not run to their end and why. Such a unit that has no result of its
// own is a skipped testcase named for the unit, its message "not run: "
// and the reason, so that dashboards show what was not run.
func WriteJUnit(w io.Writer, runs ...compat.Run) error {
	doc := build(runs)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("writing JUnit XML: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "\t")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing JUnit XML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("writing JUnit XML: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("writing JUnit XML: %w", err)
	}
	return nil
}

// The junit package has no place for Surefire's rerun elements, so the
// document is junit's types with the testcase list replaced by one that has.
// encoding/xml lets the shallower Testcases field win over the embedded one.
type document struct {
	XMLName xml.Name `xml:"testsuites"`
	junit.Testsuites
	Suites []suite `xml:"testsuite"`
}

type suite struct {
	junit.Testsuite
	Testcases []testcase `xml:"testcase"`
}

type testcase struct {
	junit.Testcase
	FlakyFailures []rerun `xml:"flakyFailure"`
	FlakyErrors   []rerun `xml:"flakyError"`
	RerunFailures []rerun `xml:"rerunFailure"`
	RerunErrors   []rerun `xml:"rerunError"`
}

// rerun is Surefire's rerunType: one earlier failed attempt.
type rerun struct {
	Message    string        `xml:"message,attr,omitempty"`
	Type       string        `xml:"type,attr"`
	StackTrace *junit.Output `xml:"stackTrace,omitempty"`
}

func build(runs []compat.Run) document {
	var doc document
	var total time.Duration
	for i, run := range runs {
		ts := junit.Testsuite{
			Name: clean(run.Suite + "/" + run.Target),
			ID:   i,
		}
		if !run.Start.IsZero() {
			ts.SetTimestamp(run.Start)
		}
		ts.AddProperty("suite", clean(run.Suite))
		ts.AddProperty("target", clean(run.Target))
		keys := make([]string, 0, len(run.Properties))
		for k := range run.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ts.AddProperty(clean(k), clean(run.Properties[k]))
		}
		if run.Partial() {
			ts.AddProperty("partial", clean(PartialLine(run)))
		}
		results := append([]compat.Result(nil), run.Results...)
		own := map[string]bool{}
		for _, r := range results {
			if r.Test == r.Unit {
				own[r.Unit] = true
			}
		}
		for _, in := range run.Incomplete {
			if !own[in.Unit] {
				results = append(results, compat.Result{Suite: run.Suite, Unit: in.Unit, Test: in.Unit, Status: compat.Skip,
					Message: "not run: " + in.Reason})
			}
		}
		compat.SortResults(results)
		var sum time.Duration
		s := suite{}
		for _, r := range results {
			tc := testcaseFor(run, r)
			// junit's AddTestcase keeps the counts; the element list is
			// ours, with the rerun children.
			ts.AddTestcase(tc.Testcase)
			s.Testcases = append(s.Testcases, tc)
			sum += r.Duration
		}
		ts.Testcases = nil
		d := run.Duration
		if d == 0 {
			d = sum
		}
		ts.Time = seconds(d)
		total += d
		s.Testsuite = ts
		doc.Suites = append(doc.Suites, s)
		doc.Tests += ts.Tests
		doc.Failures += ts.Failures
		doc.Errors += ts.Errors
		// No doc.Skipped: Jenkins xUnit's junit-10.xsd allows skipped only
		// on each <testsuite>, not on <testsuites> (TestNoSkippedOnTestsuites).
	}
	doc.Name = "compat"
	doc.Time = seconds(total)
	return doc
}

func testcaseFor(run compat.Run, r compat.Result) testcase {
	name := r.Test
	if r.Unit != "" && compat.InUnit(r.Test, r.Unit) && len(r.Test) > len(r.Unit) {
		name = strings.TrimLeft(r.Test[len(r.Unit):], ".:/ ")
	}
	class := run.Suite + "." + run.Target
	if r.Unit != "" {
		class += "." + r.Unit
	}
	tc := testcase{Testcase: junit.Testcase{
		Name:      clean(name),
		Classname: clean(class),
		Time:      seconds(r.Duration),
	}}
	detail := func(res compat.Result) *junit.Result {
		return &junit.Result{Message: clean(res.Message), Type: string(res.Status), Data: clean(res.Output)}
	}
	switch r.Status {
	case compat.Fail:
		tc.Failure = detail(r)
	case compat.Error:
		tc.Error = detail(r)
	case compat.Skip:
		tc.Skipped = &junit.Result{Message: clean(r.Message)}
	}
	for _, p := range r.Previous {
		if !p.Status.Failed() {
			continue
		}
		rr := rerun{Message: clean(p.Message), Type: string(p.Status)}
		if p.Output != "" {
			rr.StackTrace = &junit.Output{Data: clean(p.Output)}
		}
		switch {
		case r.Status == compat.Pass && p.Status == compat.Fail:
			tc.FlakyFailures = append(tc.FlakyFailures, rr)
		case r.Status == compat.Pass:
			tc.FlakyErrors = append(tc.FlakyErrors, rr)
		case p.Status == compat.Fail:
			tc.RerunFailures = append(tc.RerunFailures, rr)
		default:
			tc.RerunErrors = append(tc.RerunErrors, rr)
		}
	}
	return tc
}

// PartialLine says in a line why run is partial: how many units did not run
// to their end, and the reasons, most frequent first ("" for a complete
// run).
func PartialLine(run compat.Run) string {
	if !run.Partial() {
		return ""
	}
	count := map[string]int{}
	var reasons []string
	for _, in := range run.Incomplete {
		why := reasonKind(in.Reason)
		if count[why] == 0 {
			reasons = append(reasons, why)
		}
		count[why]++
	}
	sort.SliceStable(reasons, func(i, j int) bool { return count[reasons[i]] > count[reasons[j]] })
	var parts []string
	for _, r := range reasons {
		parts = append(parts, fmt.Sprintf("%d %s", count[r], r))
	}
	return fmt.Sprintf("%d unit(s) did not run to their end: %s", len(run.Incomplete), strings.Join(parts, ", "))
}

// reasonKind shortens an Incomplete reason to what it has in common with
// others: the part before a parenthesis or a colon's detail.
func reasonKind(reason string) string {
	r, _, _ := strings.Cut(reason, " (")
	return strings.TrimSpace(r)
}

// seconds formats d as Surefire's time: seconds with a dot, no exponent.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}

// clean returns s with everything XML 1.0 cannot carry replaced by a
// visible escape: control characters other than tab, newline and carriage
// return become \xNN, the non-characters U+FFFE and U+FFFF become \uFFFE
// and \uFFFF, and bytes that are not UTF-8 become \xNN. encoding/xml does
// not do this for character data, and one \x01 in a traceback makes the
// whole file unreadable to a dashboard.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if !xmlChar(r) {
			ok = false
			break
		}
	}
	if ok && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !xmlChar(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case !xmlChar(r):
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// xmlChar reports whether r is a Char in the XML 1.0 grammar.
func xmlChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD ||
		0x20 <= r && r <= 0xD7FF ||
		0xE000 <= r && r <= 0xFFFD ||
		0x10000 <= r && r <= 0x10FFFF
}
