package report

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat"
)

// timedRun is a run whose units took the given times, each split over two
// tests.
func timedRun(target string, units map[string]time.Duration) compat.Run {
	run := compat.Run{Suite: "s", Target: target}
	for u, d := range units {
		run.Results = append(run.Results,
			compat.Result{Unit: u, Test: u + ".a", Status: compat.Pass, Duration: d / 4},
			compat.Result{Unit: u, Test: u + ".b", Status: compat.Fail, Duration: d - d/4})
	}
	return run
}

// TestCompareTimes checks the unit time ratios on runs built with known
// answers: which units count, a unit's own result standing for the whole
// unit, median, p90 (nearest rank), the total and the slowest ten.
func TestCompareTimes(t *testing.T) {
	vk, ref := map[string]time.Duration{}, map[string]time.Duration{}
	for i := 1; i <= 9; i++ { // ratios 1..9
		u := fmt.Sprintf("u%d", i)
		vk[u], ref[u] = time.Duration(i)*time.Second, time.Second
	}
	vk["a_tie"], ref["a_tie"] = 5*time.Second, 500*time.Millisecond // ratio 10
	vk["only_vkernel"] = time.Hour                                  // not on the reference
	ref["only_reference"] = time.Hour                               // not on the vkernel
	vk["zero_ref"], ref["zero_ref"] = time.Hour, 0                  // no reference time
	run, reference := timedRun("vkernel", vk), timedRun("reference", ref)
	// A unit that timed out: its own result (30 s) stands for the whole
	// unit, not added to its test's 5 s. Ratio 30 s / 3 s = 10, tied with
	// a_tie, which sorts first by name.
	run.Results = append(run.Results,
		compat.Result{Unit: "t_timeout", Test: "t_timeout.a", Status: compat.Pass, Duration: 5 * time.Second},
		compat.Result{Unit: "t_timeout", Test: "t_timeout", Status: compat.Error, Duration: 30 * time.Second},
		compat.Result{Test: "no_unit", Status: compat.Pass, Duration: time.Hour})
	reference.Results = append(reference.Results,
		compat.Result{Unit: "t_timeout", Test: "t_timeout.a", Status: compat.Pass, Duration: 2 * time.Second},
		compat.Result{Unit: "t_timeout", Test: "t_timeout.b", Status: compat.Pass, Duration: time.Second},
		compat.Result{Test: "no_unit", Status: compat.Pass, Duration: time.Second})

	tr := CompareTimes(run, reference)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	// Ratios, sorted: 1 2 3 4 5 6 7 8 9 10 10. Median: the 6th; p90: the
	// ceil(9.9) = 10th.
	if tr.Units != 11 || !near(tr.Median, 6) || !near(tr.P90, 10) {
		t.Errorf("units %d, median %v, p90 %v; want 11, 6, 10", tr.Units, tr.Median, tr.P90)
	}
	// 45 + 5 + 30 s against 9 + 0.5 + 3 s.
	if tr.Run != 80*time.Second || tr.Reference != 12500*time.Millisecond || !near(tr.Total, 6.4) {
		t.Errorf("total %v / %v = %v; want 80s / 12.5s = 6.4", tr.Run, tr.Reference, tr.Total)
	}
	var names []string
	for _, u := range tr.Slowest {
		names = append(names, u.Unit)
	}
	if got, want := strings.Join(names, " "), "a_tie t_timeout u9 u8 u7 u6 u5 u4 u3 u2"; got != want {
		t.Errorf("slowest %q, want %q", got, want)
	}
	if s := tr.Slowest[1]; s.Run != 30*time.Second || s.Reference != 3*time.Second || !near(s.Ratio, 10) {
		t.Errorf("t_timeout: %+v, want 30s / 3s = 10", s)
	}

	// An even count: the median is the mean of the two middle ratios.
	even := CompareTimes(
		timedRun("vkernel", map[string]time.Duration{"a": time.Second, "b": 2 * time.Second, "c": 3 * time.Second, "d": 4 * time.Second}),
		timedRun("reference", map[string]time.Duration{"a": time.Second, "b": time.Second, "c": time.Second, "d": time.Second}))
	if even.Units != 4 || !near(even.Median, 2.5) || !near(even.P90, 4) || len(even.Slowest) != 4 {
		t.Errorf("even: %+v; want 4 units, median 2.5, p90 4", even)
	}

	// Nothing in common: no ratios, and the summary says so.
	none := CompareTimes(timedRun("vkernel", map[string]time.Duration{"a": time.Second}), timedRun("reference", nil))
	if none.Units != 0 || none.Median != 0 || none.Slowest != nil {
		t.Errorf("disjoint runs: %+v", none)
	}
	var b strings.Builder
	if err := WriteSummary(&b, Section{Run: timedRun("vkernel", map[string]time.Duration{"a": time.Second}), Reference: &compat.Run{Target: "reference"}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "No unit has a time on both targets") {
		t.Errorf("summary without common units:\n%s", b.String())
	}
}
