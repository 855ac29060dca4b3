package report

import (
	"bufio"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/compat-project/compat"
)

// Page is what the sign-off page (report.html) shows: the sections of a
// run, as in summary.md, and the trend over earlier runs.
type Page struct {
	// Sections are the run's suites on each target (see WriteSummary).
	Sections []Section
	// History holds earlier runs' summaries and this one's, oldest first
	// (see History); empty: no trend is shown.
	History []Point
}

// WriteHTML writes the sign-off page: one self-contained HTML file (styles
// and charts inline, no scripts, nothing fetched) that a release manager
// reads in a minute. It shows the verdict; per suite, the counts on each
// target and the baseline's; the regressions first, each with its output
// and the commands that reproduce it; per suite, a chart of the units'
// time ratios (vkernel/reference) and one of the slowest units; the
// unexpected passes, flaky tests, units not run to their end and known
// failures grouped by reason; the identities of what ran (megabinary,
// modules, images, versions); and, with a history, the trend.
func WriteHTML(w io.Writer, page Page) error {
	bw := bufio.NewWriter(w)
	if err := pageTemplate.Execute(bw, buildPage(page)); err != nil {
		return fmt.Errorf("writing report.html: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing report.html: %w", err)
	}
	return nil
}

type htmlPage struct {
	Verdict, VerdictClass string
	Suites                []htmlSuite
	Regressions           []htmlChange
	RegressionsTotal      int
	History               []Point
	Trend                 template.HTML
	Coverage              []htmlCoverage
	BlindSpots            []string
	HostFunctions         int
}

// htmlCoverage is one suite's row of the polyfill coverage table.
type htmlCoverage struct {
	Suite, Target           string
	Units, Exercised, Total int
	Top                     []string
}

type htmlSuite struct {
	Suite, Target  string
	Rows           []htmlRow
	Classes        []htmlCount
	Incomplete     []compat.Incomplete
	Unexpected     []htmlChange
	Flaky          []htmlChange
	NotRun         []htmlChange
	NotRunTotal    int
	Known          []htmlGroup
	RatioChart     template.HTML
	SlowChart      template.HTML
	Ratios         string
	Identities     []htmlProp
	HasReference   bool
	ReferenceTitle string
}

type htmlRow struct {
	Name                                  string
	Pass, Fail, Error, Skip, Flaky, Total int
	Time                                  string
}

type htmlCount struct {
	Name string
	N    int
}

type htmlChange struct {
	Suite, Target, Test, Want, Got, Why, Output string
	Commands                                    []string
}

type htmlGroup struct {
	Reason string
	Tests  []string
}

type htmlProp struct{ Target, Key, Value string }

// maxHTMLRows bounds each list of the page; the JUnit files have them all.
const maxHTMLRows = 100

func buildPage(page Page) htmlPage {
	hp := htmlPage{Verdict: strings.ReplaceAll(Verdict(page.Sections...), "**", ""), VerdictClass: "ok", History: page.History}
	for _, s := range page.Sections {
		if s.Diff.Count(compat.Regression) > 0 {
			hp.VerdictClass = "bad"
		}
		if s.Run.Partial() && hp.VerdictClass == "ok" {
			hp.VerdictClass = "partial"
		}
	}
	for _, s := range page.Sections {
		hs := htmlSuite{Suite: s.Run.Suite, Target: s.Run.Target, Incomplete: s.Run.Incomplete}
		row := func(name string, c compat.Counts, d time.Duration) htmlRow {
			r := htmlRow{Name: name, Pass: c.Pass, Fail: c.Fail, Error: c.Error, Skip: c.Skip, Flaky: c.Flaky, Total: c.Total()}
			if d > 0 {
				r.Time = d.Round(time.Second).String()
			}
			return r
		}
		hs.Rows = append(hs.Rows, row(s.Run.Target, s.Run.Counts(), s.Run.Duration))
		if s.Reference != nil {
			hs.Rows = append(hs.Rows, row(s.Reference.Target, s.Reference.Counts(), s.Reference.Duration))
		}
		e := s.Diff.Expected
		hs.Rows = append(hs.Rows, htmlRow{Name: "baseline", Pass: e.Pass, Fail: e.Fail, Skip: e.Skip, Flaky: e.Flaky, Total: e.Pass + e.Fail + e.Skip + e.Flaky})
		for _, c := range compat.Classes {
			hs.Classes = append(hs.Classes, htmlCount{classTitles[c], s.Diff.Count(c)})
		}
		results := byTest(s.Run)
		for _, ch := range s.Diff.Changes {
			hc := change(s, ch, results)
			switch ch.Class {
			case compat.Regression:
				hp.Regressions = append(hp.Regressions, hc)
			case compat.UnexpectedPass:
				hs.Unexpected = append(hs.Unexpected, hc)
			case compat.Flaky:
				hs.Flaky = append(hs.Flaky, hc)
			case compat.NotRun:
				hs.NotRun = append(hs.NotRun, hc)
			}
		}
		hs.NotRunTotal = len(hs.NotRun)
		if len(hs.NotRun) > maxHTMLRows {
			hs.NotRun = hs.NotRun[:maxHTMLRows]
		}
		hs.Known = knownGroups(s.Diff.Of(compat.KnownFailure))
		for _, k := range sortedProps(s.Run.Properties) {
			hs.Identities = append(hs.Identities, htmlProp{s.Run.Target, k, s.Run.Properties[k]})
		}
		if s.Reference != nil {
			hs.HasReference = true
			hs.ReferenceTitle = s.Run.Target + " / " + s.Reference.Target
			tr := CompareTimes(s.Run, *s.Reference)
			if tr.Units > 0 {
				hs.Ratios = fmt.Sprintf("%d units with a time on both: ratio median %.2f×, p90 %.2f×, total %s / %s = %.2f×",
					tr.Units, tr.Median, tr.P90, secs(tr.Run), secs(tr.Reference), tr.Total)
				hs.RatioChart = ratioChart(tr.Slowest)
			}
			hs.SlowChart = slowChart(s.Run, *s.Reference)
		}
		hp.Suites = append(hp.Suites, hs)
	}
	hp.RegressionsTotal = len(hp.Regressions)
	if len(hp.Regressions) > maxHTMLRows {
		hp.Regressions = hp.Regressions[:maxHTMLRows]
	}
	hp.Trend = trendChart(page.History)
	cov := CoverageOf(page.Sections...)
	for _, sc := range cov.Suites {
		hc := htmlCoverage{Suite: sc.Suite, Target: sc.Target, Units: sc.Units, Exercised: sc.Exercised(), Total: len(sc.Functions)}
		for _, f := range sc.Top(TopHostCalls) {
			hc.Top = append(hc.Top, fmt.Sprintf("%s %s (%d)", shortFunction(f.Function), grouped(f.Calls), f.Units))
		}
		hp.Coverage = append(hp.Coverage, hc)
	}
	for _, f := range cov.BlindSpots {
		hp.BlindSpots = append(hp.BlindSpots, shortFunction(f))
	}
	hp.HostFunctions = len(cov.Functions)
	return hp
}

// change is one change of s for the page: with the output of its result
// (or, for a test that reported nothing, of its unit's), and the commands
// that reproduce it: the unit's own, when its error result recorded it,
// and compat run's for the unit.
func change(s Section, ch compat.Change, results map[string]compat.Result) htmlChange {
	hc := htmlChange{Suite: s.Run.Suite, Target: s.Run.Target, Test: ch.Test, Want: string(ch.Want), Got: string(ch.Got)}
	if hc.Want == "" {
		hc.Want = "(none)"
	}
	if ch.FromReference {
		hc.Want += " (reference)"
	}
	switch {
	case ch.Class == compat.NotRun:
		hc.Got = "not run"
	case ch.Class == compat.Flaky:
		hc.Got = "pass on rerun"
	case hc.Got == "":
		hc.Got = "missing"
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
	r, ok := results[ch.Test]
	if ch.Class == compat.Flaky {
		for i := len(r.Previous) - 1; i >= 0; i-- {
			if m := firstLine(r.Previous[i].Message); r.Previous[i].Status.Failed() && m != "" {
				why = append(why, "failed first: "+m)
				break
			}
		}
	}
	hc.Why = strings.Join(why, "; ")
	unit := r.Unit
	if !ok {
		unit = unitOf(ch.Test, s.Run)
	}
	if ch.Class != compat.Regression {
		return hc
	}
	out := r.Output
	if own, ok := results[unit]; ok && unit != "" {
		if out == "" {
			out = own.Output
		}
		for _, l := range strings.Split(own.Output, "\n") {
			if c, ok := strings.CutPrefix(l, "$ "); ok {
				hc.Commands = append(hc.Commands, c)
			} else {
				break
			}
		}
	}
	hc.Output = clean(tailOf(out, 40))
	if unit != "" {
		hc.Commands = append(hc.Commands, fmt.Sprintf("compat run -suite %s -target %s -modules %s", s.Run.Suite, s.Run.Target, unit))
	}
	return hc
}

// unitOf finds the unit of run that test belongs to.
func unitOf(test string, run compat.Run) string {
	best := ""
	for _, r := range run.Results {
		if r.Unit != "" && compat.InUnit(test, r.Unit) && len(r.Unit) > len(best) {
			best = r.Unit
		}
	}
	for _, in := range run.Incomplete {
		if compat.InUnit(test, in.Unit) && len(in.Unit) > len(best) {
			best = in.Unit
		}
	}
	return best
}

// tailOf keeps the last n lines of s.
func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[… %d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// knownGroups groups known failures by their reason, the largest group
// first.
func knownGroups(changes []compat.Change) []htmlGroup {
	by := map[string][]string{}
	for _, ch := range changes {
		reason := ch.Reason
		if reason == "" {
			reason = "(no reason given)"
		}
		by[reason] = append(by[reason], ch.Test)
	}
	var out []htmlGroup
	for r, tests := range by {
		sort.Strings(tests)
		out = append(out, htmlGroup{r, tests})
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].Tests) != len(out[j].Tests) {
			return len(out[i].Tests) > len(out[j].Tests)
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

func sortedProps(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// bar is one bar of a chart.
type bar struct {
	label, value string
	v, ref       float64 // ref: a second, thinner bar (the reference's time), 0 for none
}

// barChart draws bars as an inline SVG: labels on the left, bars scaled to
// the largest value, the value at the end, and a dashed rule at mark (0:
// none), such as 1× for ratios.
func barChart(title string, bars []bar, mark float64, markLabel string) template.HTML {
	if len(bars) == 0 {
		return ""
	}
	const labelW, barW, rowH, top = 260.0, 360.0, 22.0, 24.0
	top1 := 0.0
	for _, b := range bars {
		top1 = max(top1, b.v, b.ref, mark)
	}
	if top1 <= 0 {
		top1 = 1
	}
	// Room below the bars for the mark's label, right of them for values.
	h := top + rowH*float64(len(bars)) + 22
	const right = 200.0
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" role="img" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">`, labelW+barW+right, h, labelW+barW+right, h)
	fmt.Fprintf(&b, `<title>%s</title><text x="0" y="14" class="ct">%s</text>`, esc(title), esc(title))
	for i, br := range bars {
		y := top + rowH*float64(i)
		w := barW * br.v / top1
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="cl" text-anchor="end">%s</text>`, labelW-6, y+14, esc(shorten(br.label, 40)))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.1f" width="%.1f" height="%.0f" class="cb"/>`, labelW, y+3, max(w, 1), rowH-10)
		if br.ref > 0 {
			fmt.Fprintf(&b, `<rect x="%.0f" y="%.1f" width="%.1f" height="4" class="cr"/>`, labelW, y+rowH-6, max(barW*br.ref/top1, 1))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="cv">%s</text>`, labelW+max(w, 1)+4, y+14, esc(br.value))
	}
	if mark > 0 {
		x := labelW + barW*mark/top1
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" class="cm"/><text x="%.1f" y="%.0f" class="cv" text-anchor="middle">%s</text>`,
			x, top-2, x, h-16, x, h-4, esc(markLabel))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// ratioChart charts the units with the highest time ratios.
func ratioChart(units []UnitTime) template.HTML {
	var bars []bar
	for _, u := range units {
		bars = append(bars, bar{label: u.Unit, value: fmt.Sprintf("%.2f×", u.Ratio), v: u.Ratio})
	}
	return barChart("Time ratio vkernel / reference, highest units", bars, 1, "1×")
}

// slowChart charts the units that took longest on the run's target, with
// the reference's time as a thin second bar.
func slowChart(run, ref compat.Run) template.HTML {
	mine, theirs := UnitTimes(run), UnitTimes(ref)
	units := make([]string, 0, len(mine))
	for u := range mine {
		units = append(units, u)
	}
	sort.Slice(units, func(i, j int) bool {
		if mine[units[i]] != mine[units[j]] {
			return mine[units[i]] > mine[units[j]]
		}
		return units[i] < units[j]
	})
	if len(units) > SlowestUnits {
		units = units[:SlowestUnits]
	}
	var bars []bar
	for _, u := range units {
		bars = append(bars, bar{label: u, value: fmt.Sprintf("%s (ref %s)", secs(mine[u]), secs(theirs[u])),
			v: mine[u].Seconds(), ref: theirs[u].Seconds()})
	}
	return barChart("Slowest units on "+run.Target+" (thin bar: "+ref.Target+")", bars, 0, "")
}

// shorten cuts s to n runes with an ellipsis in the middle.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n/2-1]) + "…" + string(r[len(r)-(n-n/2):])
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>compat sign-off</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #1b1b1b; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
#verdict { font-size: 1.2em; padding: .6em .9em; border-radius: 6px; font-weight: 600; }
#verdict.ok { background: #e3f5e1; border: 1px solid #6bbf5f; }
#verdict.bad { background: #fde4e1; border: 1px solid #d9534f; }
#verdict.partial { background: #fff4d6; border: 1px solid #e0a800; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font-family: ui-monospace, monospace; font-size: 12.5px; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; max-height: 24em; white-space: pre-wrap; }
.regression { border-left: 4px solid #d9534f; padding-left: .8em; margin: 1em 0; }
.muted { color: #666; }
svg .ct { font-weight: 600; font-size: 13px; }
svg .cl, svg .cv { font-size: 12px; font-family: ui-monospace, monospace; }
svg .cb { fill: #4a7fc1; }
svg .cr { fill: #9a9a9a; }
svg .cm { stroke: #d9534f; stroke-dasharray: 4 3; }
svg .tp { fill: none; stroke: #4a7fc1; stroke-width: 2; }
svg .tr { fill: none; stroke: #d9534f; stroke-width: 2; }
</style>
</head>
<body>
<h1>compat sign-off</h1>
<p id="verdict" class="{{.VerdictClass}}">{{.Verdict}}</p>

<h2 id="overview">Suites</h2>
{{range .Suites}}
<h3>{{.Suite}} on {{.Target}}</h3>
<table class="counts">
<tr><th></th><th>pass</th><th>fail</th><th>error</th><th>skip</th><th>flaky</th><th>total</th><th>time</th></tr>
{{range .Rows}}<tr><th>{{.Name}}</th><td class="n">{{.Pass}}</td><td class="n">{{.Fail}}</td><td class="n">{{.Error}}</td><td class="n">{{.Skip}}</td><td class="n">{{.Flaky}}</td><td class="n">{{.Total}}</td><td class="n">{{.Time}}</td></tr>
{{end}}</table>
<p class="muted">{{range $i, $c := .Classes}}{{if $i}}, {{end}}{{$c.Name}}: {{$c.N}}{{end}}</p>
{{end}}

<h2 id="regressions">Regressions ({{.RegressionsTotal}})</h2>
{{if not .Regressions}}<p>None.</p>{{end}}
{{if ne .RegressionsTotal (len .Regressions)}}<p>The first {{len .Regressions}} are shown; the JUnit files have them all.</p>{{end}}
{{range .Regressions}}
<div class="regression">
<p><code>{{.Test}}</code> — {{.Suite}} on {{.Target}}: expected {{.Want}}, got <strong>{{.Got}}</strong>{{if .Why}}: {{.Why}}{{end}}</p>
{{if .Commands}}<p>Reproduce:</p><pre>{{range .Commands}}$ {{.}}
{{end}}</pre>{{end}}
{{if .Output}}<details open><summary>Output</summary><pre>{{.Output}}</pre></details>{{end}}
</div>
{{end}}

{{range .Suites}}{{if .HasReference}}
<h2 id="times-{{.Suite}}-{{.Target}}">Time, {{.Suite}}: {{.ReferenceTitle}}</h2>
<p>{{if .Ratios}}{{.Ratios}}{{else}}No unit has a time on both targets.{{end}}</p>
{{.RatioChart}}
{{.SlowChart}}
{{end}}{{end}}

{{range .Suites}}
{{if .Incomplete}}
<h2>Not run to their end: {{.Suite}} on {{.Target}} ({{len .Incomplete}} units)</h2>
<table><tr><th>unit</th><th>why</th></tr>
{{range .Incomplete}}<tr><td><code>{{.Unit}}</code></td><td>{{.Reason}}</td></tr>
{{end}}</table>
{{if .NotRun}}<details><summary>Tests not run: {{.NotRunTotal}}{{if ne .NotRunTotal (len .NotRun)}} (the first {{len .NotRun}} listed){{end}}</summary><ul>{{range .NotRun}}<li><code>{{.Test}}</code> (expected {{.Want}})</li>{{end}}</ul></details>{{end}}
{{end}}
{{if .Unexpected}}
<h2>Unexpected passes: {{.Suite}} on {{.Target}} ({{len .Unexpected}})</h2>
<table><tr><th>test</th><th>baseline</th><th>got</th><th>reason</th></tr>
{{range .Unexpected}}<tr><td><code>{{.Test}}</code></td><td>{{.Want}}</td><td>{{.Got}}</td><td>{{.Why}}</td></tr>
{{end}}</table>
{{end}}
{{if .Flaky}}
<h2>Flaky: {{.Suite}} on {{.Target}} ({{len .Flaky}})</h2>
<table><tr><th>test</th><th>baseline</th><th>why</th></tr>
{{range .Flaky}}<tr><td><code>{{.Test}}</code></td><td>{{.Want}}</td><td>{{.Why}}</td></tr>
{{end}}</table>
{{end}}
{{if .Known}}
<h2>Known failures by cause: {{.Suite}} on {{.Target}}</h2>
<table><tr><th>reason</th><th>tests</th></tr>
{{range .Known}}<tr><td>{{.Reason}}</td><td>{{len .Tests}}: {{range $i, $t := .Tests}}{{if $i}}, {{end}}<code>{{$t}}</code>{{end}}</td></tr>
{{end}}</table>
{{end}}
{{end}}

{{if .Coverage}}
<h2 id="coverage">Polyfill coverage</h2>
<p>The vkernel's host functions (WASI preview1 and the <code>vkernel</code> module) the suites' guests called, counted per exec; <code>hostcalls.json</code> has every function's calls and units.</p>
<table><tr><th>suite</th><th>target</th><th>units</th><th>functions called</th><th>most called: calls (units)</th></tr>
{{range .Coverage}}<tr><td>{{.Suite}}</td><td>{{.Target}}</td><td class="n">{{.Units}}</td><td class="n">{{.Exercised}} of {{.Total}}</td><td>{{range $i, $t := .Top}}{{if $i}}, {{end}}<code>{{$t}}</code>{{end}}</td></tr>
{{end}}</table>
{{if .BlindSpots}}<p><strong>Blind spots</strong>: {{len .BlindSpots}} of {{.HostFunctions}} host functions no suite called: {{range $i, $f := .BlindSpots}}{{if $i}}, {{end}}<code>{{$f}}</code>{{end}}.</p>{{else}}<p>Blind spots: none; every host function was called by some suite.</p>{{end}}

{{end -}}

{{if .History}}
<h2 id="history">Trend over the last {{len .History}} runs</h2>
{{.Trend}}
<table><tr><th>run</th><th>pass</th><th>fail</th><th>error</th><th>skip</th><th>regressions</th><th>time</th><th></th></tr>
{{range .History}}<tr><td>{{.When}}</td><td class="n">{{.Pass}}</td><td class="n">{{.Fail}}</td><td class="n">{{.Error}}</td><td class="n">{{.Skip}}</td><td class="n">{{.Regressions}}</td><td class="n">{{.Time}}</td><td>{{if .Partial}}partial{{end}}</td></tr>
{{end}}</table>
{{end}}

<h2 id="identities">What ran</h2>
<table><tr><th>suite</th><th>target</th><th>property</th><th>value</th></tr>
{{range $s := .Suites}}{{range .Identities}}<tr><td>{{$s.Suite}}</td><td>{{.Target}}</td><td>{{.Key}}</td><td><code>{{.Value}}</code></td></tr>
{{end}}{{end}}</table>
</body>
</html>
`))
