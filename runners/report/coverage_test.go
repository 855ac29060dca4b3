package report

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/compat-project/compat"
)

// coverageSections are two suites with coverage maps over the same four
// host functions and a reference run without one: exec_a and fd_write
// are called by both suites, clock_time_get by one, proc_kill by none.
func coverageSections() []Section {
	fns := []string{"wasi_snapshot_preview1.fd_write", "wasi_snapshot_preview1.clock_time_get", "vkernel.proc_spawn", "vkernel.proc_kill"}
	py := compat.NewHostCalls(fns)
	py.AddUnit(map[string]uint64{"wasi_snapshot_preview1.fd_write": 1234567, "vkernel.proc_spawn": 3})
	py.AddUnit(map[string]uint64{"wasi_snapshot_preview1.fd_write": 1, "wasi_snapshot_preview1.clock_time_get": 40})
	redis := compat.NewHostCalls(fns)
	redis.AddUnit(map[string]uint64{"wasi_snapshot_preview1.fd_write": 7, "vkernel.proc_spawn": 7})
	return []Section{
		{Run: compat.Run{Suite: "python", Target: "vkernel", HostCalls: py}},
		{Run: compat.Run{Suite: "python", Target: "reference"}},
		{Run: compat.Run{Suite: "redis", Target: "vkernel", HostCalls: redis}},
	}
}

// TestCoverageOf: the map gathers each suite's calls, and the blind spots
// are the functions no suite called, whichever suite lists them.
func TestCoverageOf(t *testing.T) {
	c := CoverageOf(coverageSections()...)
	if len(c.Suites) != 2 || c.Suites[0].Suite != "python" || c.Suites[1].Suite != "redis" {
		t.Fatalf("suites %+v, want python and redis (the reference has no map)", c.Suites)
	}
	py := c.Suites[0]
	if py.Units != 2 || py.Exercised() != 3 {
		t.Errorf("python: %d units, %d functions called; want 2 and 3", py.Units, py.Exercised())
	}
	got := fmt.Sprint(py.Top(2))
	if want := "[{wasi_snapshot_preview1.fd_write 1234568 2} {wasi_snapshot_preview1.clock_time_get 40 1}]"; got != want {
		t.Errorf("python's top 2: %s, want %s", got, want)
	}
	// Ties by name.
	if got := fmt.Sprint(c.Suites[1].Top(5)); got != "[{vkernel.proc_spawn 7 1} {wasi_snapshot_preview1.fd_write 7 1}]" {
		t.Errorf("redis's top: %s", got)
	}
	if fmt.Sprint(c.BlindSpots) != "[vkernel.proc_kill]" || len(c.Functions) != 4 {
		t.Errorf("blind spots %v of %d functions, want [vkernel.proc_kill] of 4", c.BlindSpots, len(c.Functions))
	}
	// A function only one map lists (an older run's ABI) is in the
	// list, and a blind spot when uncalled.
	extra := coverageSections()
	extra[2].Run.HostCalls.Functions = append(extra[2].Run.HostCalls.Functions, compat.HostCall{Function: "vkernel.fd_new"})
	if c := CoverageOf(extra...); fmt.Sprint(c.BlindSpots) != "[vkernel.proc_kill vkernel.fd_new]" || len(c.Functions) != 5 {
		t.Errorf("with a function of one map: blind spots %v of %v", c.BlindSpots, c.Functions)
	}
	if c := CoverageOf(Section{Run: compat.Run{Suite: "python", Target: "vkernel"}}); len(c.Suites) != 0 || len(c.BlindSpots) != 0 {
		t.Errorf("no map, but coverage %+v", c)
	}
}

// TestCoverageGolden pins summary.md's polyfill coverage section; a
// summary of runs without maps has none.
func TestCoverageGolden(t *testing.T) {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	writeCoverage(func(f string, a ...any) { fmt.Fprintf(bw, f, a...) }, CoverageOf(coverageSections()...))
	bw.Flush()
	golden(t, "coverage.md", buf.Bytes())

	buf.Reset()
	if err := WriteSummary(&buf, coverageSections()...); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "## Polyfill coverage") || !strings.HasSuffix(buf.String(), "`vkernel.proc_kill`.\n") {
		t.Errorf("summary.md does not end with the coverage section:\n%s", buf.String())
	}
	buf.Reset()
	runs := sampleRuns()
	if err := WriteSummary(&buf, Section{Run: runs[0], Reference: &runs[1], Diff: sampleDiff()}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "Polyfill coverage") {
		t.Error("a summary of runs without coverage maps has a coverage section")
	}
}

// TestCoverageHTML: report.html shows the same table and blind spots.
func TestCoverageHTML(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, Page{Sections: coverageSections()}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		`<h2 id="coverage">Polyfill coverage</h2>`,
		`<tr><td>python</td><td>vkernel</td><td class="n">2</td><td class="n">3 of 4</td><td><code>fd_write 1,234,568 (2)</code>, <code>clock_time_get 40 (1)</code>, <code>vkernel.proc_spawn 3 (1)</code></td></tr>`,
		`<strong>Blind spots</strong>: 1 of 4 host functions no suite called: <code>vkernel.proc_kill</code>.`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %s", want)
		}
	}
}
