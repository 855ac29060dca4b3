package report

import (
	"bufio"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/compat-project/compat"
)

// Point is one run in a history: its totals, as the trend in summary.md and
// report.html shows them.
type Point struct {
	// Start is when the run started.
	Start time.Time
	// Pass, Fail, Error and Skip count the results of the runs under
	// test (every target but the reference), Flaky those that passed on
	// a rerun.
	Pass, Fail, Error, Skip, Flaky int
	// Regressions counts the regressions over every diff.
	Regressions int
	// Incomplete counts the units that did not run to their end.
	Incomplete int
	// Duration sums the runs' times over every target.
	Duration time.Duration
}

// PointOf sums a run's sections into a Point.
func PointOf(start time.Time, sections ...Section) Point {
	p := Point{Start: start.UTC()}
	for _, s := range sections {
		p.Regressions += s.Diff.Count(compat.Regression)
		p.Incomplete += len(s.Run.Incomplete)
		p.Duration += s.Run.Duration
		if s.Reference == nil && s.Run.Target == "reference" {
			continue
		}
		c := s.Run.Counts()
		p.Pass += c.Pass
		p.Fail += c.Fail
		p.Error += c.Error
		p.Skip += c.Skip
		p.Flaky += c.Flaky
	}
	return p
}

// When is Start as the trend tables show it.
func (p Point) When() string { return p.Start.Format("2006-01-02 15:04") }

// Time is Duration rounded to the second.
func (p Point) Time() string { return p.Duration.Round(time.Second).String() }

// Partial reports whether the run left units unfinished.
func (p Point) Partial() bool { return p.Incomplete > 0 }

// WriteTrend writes summary.md's trend section (see writeTrend); nothing
// for an empty history.
func WriteTrend(w io.Writer, history []Point) error {
	bw := bufio.NewWriter(w)
	writeTrend(func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }, history)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the trend: %w", err)
	}
	return nil
}

// writeTrend writes summary.md's trend table over the history, oldest
// first, with each run's change in passes against the one before.
func writeTrend(p func(string, ...any), history []Point) {
	if len(history) == 0 {
		return
	}
	p("\n## Trend over the last %d run(s)\n\n", len(history))
	p("| run | pass | fail | error | skip | flaky | regressions | time | |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for i, h := range history {
		delta := ""
		if i > 0 {
			if d := h.Pass - history[i-1].Pass; d != 0 {
				delta = fmt.Sprintf(" (%+d)", d)
			}
		}
		note := ""
		if h.Partial() {
			note = fmt.Sprintf("partial: %d unit(s)", h.Incomplete)
		}
		p("| %s | %d%s | %d | %d | %d | %d | %d | %s | %s |\n", h.When(), h.Pass, delta, h.Fail, h.Error, h.Skip, h.Flaky, h.Regressions, h.Time(), note)
	}
}

// trendChart draws the history's passes, regressions and times as three
// small line charts in one inline SVG.
func trendChart(history []Point) template.HTML {
	if len(history) < 2 {
		return ""
	}
	series := []struct {
		name, class string
		v           func(Point) float64
		unit        string
	}{
		{"pass", "tp", func(p Point) float64 { return float64(p.Pass) }, ""},
		{"regressions", "tr", func(p Point) float64 { return float64(p.Regressions) }, ""},
		{"time", "tp", func(p Point) float64 { return p.Duration.Seconds() }, " s"},
	}
	const w, h, gap = 300.0, 90.0, 30.0
	var b strings.Builder
	total := w*3 + gap*2
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" role="img" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f"><title>trend</title>`, total, h+30, total, h+30)
	for i, s := range series {
		x0 := float64(i) * (w + gap)
		lo, hi := s.v(history[0]), s.v(history[0])
		for _, p := range history {
			lo, hi = min(lo, s.v(p)), max(hi, s.v(p))
		}
		span := hi - lo
		if span == 0 {
			span = 1
		}
		var pts []string
		for j, p := range history {
			x := x0 + w*float64(j)/float64(len(history)-1)
			y := 20 + (h-10)*(1-(s.v(p)-lo)/span)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		last := s.v(history[len(history)-1])
		fmt.Fprintf(&b, `<text x="%.0f" y="12" class="ct">%s: %.0f%s (range %.0f–%.0f)</text>`, x0, s.name, last, s.unit, lo, hi)
		fmt.Fprintf(&b, `<polyline points="%s" class="%s"/>`, strings.Join(pts, " "), s.class)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
