package report

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/compat-project/compat"
)

// UnitTime is one unit's time on a target and on the reference.
type UnitTime struct {
	Unit      string        `json:"unit"`
	Run       time.Duration `json:"run_ns"`
	Reference time.Duration `json:"reference_ns"`
	// Ratio is Run / Reference.
	Ratio float64 `json:"ratio"`
}

// TimeRatios compares, unit by unit, the time a run took with the time
// the reference took, over the units present in both whose reference time
// is above zero.
type TimeRatios struct {
	// Units counts the units compared.
	Units int `json:"units"`
	// Median and P90 are the median and the 90th percentile (nearest
	// rank: the ceil(0.9*Units)-th smallest) of the units' ratios; the
	// median of an even count is the mean of the two middle ratios.
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	// Run and Reference are the compared units' total times, Total their
	// ratio.
	Run       time.Duration `json:"run_ns"`
	Reference time.Duration `json:"reference_ns"`
	Total     float64       `json:"total_ratio"`
	// Slowest are the units with the highest ratios, highest first (ties
	// by unit name), at most SlowestUnits of them.
	Slowest []UnitTime `json:"slowest"`
}

// SlowestUnits is how many units TimeRatios.Slowest lists.
const SlowestUnits = 10

// UnitTimes returns the time of each unit of run, as its JUnit file shows
// it: the time of the unit's own result (Test == Unit: a unit that crashed,
// timed out or was skipped as a whole, whose time covers the whole unit)
// when it has one, else the sum of its tests' times. Results with no unit
// are left out.
func UnitTimes(run compat.Run) map[string]time.Duration {
	sums := map[string]time.Duration{}
	whole := map[string]time.Duration{}
	for _, r := range run.Results {
		switch {
		case r.Unit == "":
		case r.Test == r.Unit:
			whole[r.Unit] += r.Duration
		default:
			sums[r.Unit] += r.Duration
		}
	}
	for u, d := range whole {
		sums[u] = d
	}
	return sums
}

// CompareTimes compares run's unit times (UnitTimes) with ref's.
func CompareTimes(run, ref compat.Run) TimeRatios {
	mine, theirs := UnitTimes(run), UnitTimes(ref)
	var units []UnitTime
	var tr TimeRatios
	for u, r := range theirs {
		d, ok := mine[u]
		if !ok || r <= 0 {
			continue
		}
		units = append(units, UnitTime{Unit: u, Run: d, Reference: r, Ratio: float64(d) / float64(r)})
		tr.Run += d
		tr.Reference += r
	}
	tr.Units = len(units)
	if tr.Units == 0 {
		return tr
	}
	tr.Total = float64(tr.Run) / float64(tr.Reference)
	sort.Slice(units, func(i, j int) bool {
		if units[i].Ratio != units[j].Ratio {
			return units[i].Ratio > units[j].Ratio
		}
		return units[i].Unit < units[j].Unit
	})
	n := len(units)
	// units is highest first: the k-th smallest is units[n-k].
	kth := func(k int) float64 { return units[n-k].Ratio }
	if n%2 == 1 {
		tr.Median = kth(n/2 + 1)
	} else {
		tr.Median = (kth(n/2) + kth(n/2+1)) / 2
	}
	tr.P90 = kth(int(math.Ceil(0.9 * float64(n))))
	tr.Slowest = units[:min(n, SlowestUnits)]
	return tr
}

// writeTimes writes the section's unit time ratios against its reference.
func writeTimes(p func(string, ...any), run, ref compat.Run) {
	tr := CompareTimes(run, ref)
	p("\n### Time per unit, %s / %s\n\n", cell(run.Target), cell(ref.Target))
	if tr.Units == 0 {
		p("No unit has a time on both targets (above zero on the reference).\n")
		return
	}
	p("Units with a time on both targets (above zero on the reference): %d. Ratio median %.2f×, p90 %.2f×; "+
		"their total %s / %s = %.2f×. A unit's time is its tests' times summed, or its own when it ended as a whole "+
		"(crash, timeout, skip).\n\n",
		tr.Units, tr.Median, tr.P90, secs(tr.Run), secs(tr.Reference), tr.Total)
	p("| unit (highest ratios) | %s | %s | ratio |\n| --- | ---: | ---: | ---: |\n", cell(run.Target), cell(ref.Target))
	for _, u := range tr.Slowest {
		p("| `%s` | %s | %s | %.2f× |\n", code(u.Unit), secs(u.Run), secs(u.Reference), u.Ratio)
	}
}

// secs formats d as seconds with three decimals.
func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }
