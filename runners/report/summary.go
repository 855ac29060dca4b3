package report

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/compat-project/compat"
)

// Section is one suite in a summary.
type Section struct {
	// Run is the run under test, such as the suite on the vkernel.
	Run compat.Run
	// Reference is the same suite on the native reference build, if it
	// was run.
	Reference *compat.Run
	// Diff compares Run with its baseline (baselines.Diff).
	Diff compat.Diff
}

// WriteSummary writes a Markdown summary for release sign-off: for each
// section, a table of counts (run, reference, baseline), then the changes,
// regressions first, then unexpected passes, flaky tests, new and removed
// tests, and the known failures folded away; last, when the section has a
// reference, the time ratios of its units against the reference's
// (CompareTimes). Last comes the polyfill coverage map of the runs that
// have one (CoverageOf).
func WriteSummary(w io.Writer, sections ...Section) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("# Compatibility summary\n\n")
	p("%s\n", Verdict(sections...))
	for _, s := range sections {
		writeSection(p, s)
	}
	writeCoverage(p, CoverageOf(sections...))
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing summary: %w", err)
	}
	return nil
}

// Verdict is the summary's first line: the regressions over all sections,
// and for a partial run (a unit stopped, timed out or in a missing shard)
// that it is partial, so that "no regressions" is never read as a full
// pass.
func Verdict(sections ...Section) string {
	regressions, units, runs := 0, 0, 0
	for _, s := range sections {
		regressions += s.Diff.Count(compat.Regression)
		if s.Run.Partial() {
			units += len(s.Run.Incomplete)
			runs++
		}
	}
	found := "no regressions"
	if regressions > 0 {
		found = fmt.Sprintf("**%d regression(s)**", regressions)
	}
	if units > 0 {
		return fmt.Sprintf("**Partial run**: %d unit(s) in %d run(s) did not run to their end; the tests they did not reach "+
			"were not run (not regressions). Among the tests that ran: %s in %d suite(s).", units, runs, found, len(sections))
	}
	if regressions > 0 {
		return fmt.Sprintf("%s in %d suite(s).", found, len(sections))
	}
	return fmt.Sprintf("No regressions in %d suite(s).", len(sections))
}

var classTitles = map[compat.Class]string{
	compat.Regression:     "Regressions",
	compat.UnexpectedPass: "Unexpected passes",
	compat.Flaky:          "Flaky",
	compat.NewTest:        "New tests",
	compat.RemovedTest:    "Removed tests",
	compat.NotRun:         "Not run",
	compat.KnownFailure:   "Known failures",
}

func writeSection(p func(string, ...any), s Section) {
	p("\n## %s on %s\n\n", cell(s.Run.Suite), cell(s.Run.Target))
	p("| | pass | fail | error | skip | flaky | total | time |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	row := func(name string, c compat.Counts, d time.Duration) {
		t := ""
		if d > 0 {
			t = d.Round(time.Second).String()
		}
		p("| %s | %d | %d | %d | %d | %d | %d | %s |\n", cell(name), c.Pass, c.Fail, c.Error, c.Skip, c.Flaky, c.Total(), t)
	}
	row(s.Run.Target, s.Run.Counts(), s.Run.Duration)
	if s.Reference != nil {
		row(s.Reference.Target, s.Reference.Counts(), s.Reference.Duration)
	}
	e := s.Diff.Expected
	// The baseline's flaky tests may pass or fail, so they count in the
	// total only.
	p("| baseline | %d | %d | | %d | %d | %d | |\n", e.Pass, e.Fail, e.Skip, e.Flaky, e.Pass+e.Fail+e.Skip+e.Flaky)
	p("\n")
	var parts []string
	for _, c := range compat.Classes {
		parts = append(parts, fmt.Sprintf("%s: %d", strings.ToLower(classTitles[c]), s.Diff.Count(c)))
	}
	p("%s; as expected: %d.\n", strings.Join(parts, ", "), s.Diff.Matched)
	writeProperties(p, s.Run)
	if s.Reference != nil {
		writeProperties(p, *s.Reference)
	}
	writeIncomplete(p, s.Run)
	for _, c := range compat.Classes {
		changes := s.Diff.Of(c)
		if len(changes) == 0 {
			continue
		}
		if c == compat.KnownFailure {
			p("\n<details><summary>%s (%d)</summary>\n", classTitles[c], len(changes))
		} else {
			p("\n### %s (%d)\n", classTitles[c], len(changes))
		}
		p("\n| test | baseline | got | reason / message |\n| --- | --- | --- | --- |\n")
		shown := changes
		if len(shown) > maxRows {
			// A sign-off page stays readable; the JUnit file has them all.
			shown = shown[:maxRows]
		}
		for _, ch := range shown {
			want, got := string(ch.Want), string(ch.Got)
			if want == "" {
				want = "(none)"
			}
			if ch.FromReference {
				// The baseline has no entry: the reference's result
				// is the expectation (baselines.DiffWithReference).
				want += " (reference)"
			}
			switch {
			case ch.Class == compat.NotRun:
				got = "not run"
			case got == "":
				got = "missing"
			}
			if ch.Class == compat.Flaky {
				got = "pass on rerun"
			}
			var why []string
			switch {
			case ch.FromReference:
				why = append(why, ch.Reason)
			case ch.Reason != "":
				why = append(why, "baseline: "+ch.Reason)
			}
			if m := firstLine(ch.Message); m != "" {
				why = append(why, m)
			}
			p("| `%s` | %s | %s | %s |\n", code(ch.Test), want, got, cell(strings.Join(why, "; ")))
		}
		if len(shown) < len(changes) {
			p("\n… and %d more (all are in the JUnit file).\n", len(changes)-len(shown))
		}
		if c == compat.KnownFailure {
			p("\n</details>\n")
		}
	}
	if s.Reference != nil {
		e := s.Diff.Expected
		writeVersus(p, s.Run, *s.Reference, e.Pass+e.Fail+e.Skip+e.Flaky == 0)
		writeTimes(p, s.Run, *s.Reference)
	}
}

// writeVersus lists the tests whose result differs between run and ref,
// those that passed on the reference first. Without a baseline for the
// run's units (open) it is a section of its own, the comparison that
// stands in for one; otherwise it is folded away under the baseline's
// changes. A unit that ended as a whole on one side (a skip, a crash)
// shows as that one result there: its tests missing on that side are not
// listed one by one, unless the unit crashed, where they are what was
// lost.
func writeVersus(p func(string, ...any), run, ref compat.Run, open bool) {
	type row struct {
		test       string
		got, there compat.Status
		msg        string
	}
	ours, theirs := byTest(run), byTest(ref)
	wholeSkip := func(m map[string]compat.Result, unit string) bool {
		r, ok := m[unit]
		return ok && r.Status == compat.Skip
	}
	cut := func(run compat.Run) map[string]bool {
		m := map[string]bool{}
		for _, in := range run.Incomplete {
			m[in.Unit] = true
		}
		return m
	}
	cutHere, cutThere := cut(run), cut(ref)
	var rows []row
	add := func(test string) {
		a, inRun := ours[test]
		b, inRef := theirs[test]
		switch {
		case inRun && inRef && a.Status == b.Status:
			return
		case !inRun && wholeSkip(ours, b.Unit), !inRef && wholeSkip(theirs, a.Unit):
			return
		case !inRun && cutHere[b.Unit], !inRef && cutThere[a.Unit]:
			// Not run on one side (a partial run): listed as such
			// in the diff, not as a difference.
			return
		}
		msg := a.Message
		if msg == "" {
			msg = b.Message
		}
		rows = append(rows, row{test: test, got: a.Status, there: b.Status, msg: msg})
	}
	for _, r := range run.Results {
		add(r.Test)
	}
	for _, r := range ref.Results {
		if _, ok := ours[r.Test]; !ok {
			add(r.Test)
		}
	}
	title := fmt.Sprintf("%s vs %s", run.Target, ref.Target)
	if len(rows) == 0 {
		if open {
			p("\n### %s\n\nEvery test has the same result on both.\n", cell(title))
		}
		return
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i].there == compat.Pass, rows[j].there == compat.Pass
		if a != b {
			return a
		}
		return rows[i].test < rows[j].test
	})
	if open {
		p("\n### %s (%d)\n\nNo baseline covers these units: the reference's results are the expectation.\n", cell(title), len(rows))
	} else {
		p("\n<details><summary>%s (%d)</summary>\n", cell(title), len(rows))
	}
	p("\n| test | %s | %s | message |\n| --- | --- | --- | --- |\n", cell(run.Target), cell(ref.Target))
	shown := rows
	if len(shown) > maxRows {
		shown = shown[:maxRows]
	}
	status := func(st compat.Status) string {
		if st == "" {
			return "missing"
		}
		return string(st)
	}
	for _, r := range shown {
		p("| `%s` | %s | %s | %s |\n", code(r.test), status(r.got), status(r.there), cell(firstLine(r.msg)))
	}
	if len(shown) < len(rows) {
		p("\n… and %d more (all are in the JUnit files).\n", len(rows)-len(shown))
	}
	if !open {
		p("\n</details>\n")
	}
}

// writeIncomplete lists the units a partial run did not run to their end.
func writeIncomplete(p func(string, ...any), run compat.Run) {
	if !run.Partial() {
		return
	}
	p("\n### Partial: %s\n\n| unit | why |\n| --- | --- |\n", cell(PartialLine(run)))
	shown := run.Incomplete
	if len(shown) > maxRows {
		shown = shown[:maxRows]
	}
	for _, in := range shown {
		p("| `%s` | %s |\n", code(in.Unit), cell(in.Reason))
	}
	if len(shown) < len(run.Incomplete) {
		p("\n… and %d more.\n", len(run.Incomplete)-len(shown))
	}
}

// byTest indexes a run's results by test id.
func byTest(run compat.Run) map[string]compat.Result {
	m := make(map[string]compat.Result, len(run.Results))
	for _, r := range run.Results {
		m[r.Test] = r
	}
	return m
}

// maxRows bounds each table of the summary.
const maxRows = 200

func writeProperties(p func(string, ...any), run compat.Run) {
	if len(run.Properties) == 0 {
		return
	}
	keys := make([]string, 0, len(run.Properties))
	for k := range run.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kv []string
	for _, k := range keys {
		kv = append(kv, fmt.Sprintf("%s `%s`", cell(k), code(run.Properties[k])))
	}
	p("\n%s: %s\n", cell(run.Target), strings.Join(kv, ", "))
}

// firstLine returns the first non-blank line of s, cut to a table-friendly
// length.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if r := []rune(l); len(r) > 160 {
			l = string(r[:157]) + "..."
		}
		return l
	}
	return ""
}

// cell makes s safe inside a Markdown table cell: one line, no column
// separators, no stray markup from test messages.
func cell(s string) string {
	s = clean(s)
	r := strings.NewReplacer("\r", " ", "\n", " ", "|", `\|`, "<", "&lt;", ">", "&gt;", "`", "\\`", "*", `\*`, "_", `\_`)
	return r.Replace(s)
}

// code makes s safe inside a `code span` in a table cell.
func code(s string) string {
	s = clean(s)
	r := strings.NewReplacer("\r", " ", "\n", " ", "|", `\|`, "`", "'")
	return r.Replace(s)
}
