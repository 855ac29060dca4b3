package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/report"
)

// Shard is one of Count shards of a run, Index counting from 1 (compat run
// -shard Index/Count). The zero Shard is the whole run.
type Shard struct {
	Index, Count int
}

// PropShard is the run property that says which shard a run is ("2/3").
const PropShard = "shard"

// shardFile is the file in a shard's out directory that Merge reads: the
// shard's shardInfo.
const shardFile = "shard.json"

// ParseShard parses "i/n", 1 <= i <= n.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	sh := Shard{Index: i, Count: n}
	if !ok || err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("-shard %q: want i/n, such as 1/3", s)
	}
	if err := sh.check(); err != nil {
		return Shard{}, err
	}
	return sh, nil
}

func (s Shard) check() error {
	if s.Count < 1 || s.Index < 1 || s.Index > s.Count {
		return fmt.Errorf("-shard %d/%d: want i/n with 1 <= i <= n", s.Index, s.Count)
	}
	return nil
}

// String returns "i/n".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// shardInfo is what a shard records for Merge: which shard it is, and what
// every shard of the run must share (megabinary, baselines, split).
type shardInfo struct {
	Shard Shard
	// Suites and Targets are the run's, in order.
	Suites, Targets []string
	// Megabinary is the digest of the megabinary the shard ran, empty
	// without the vkernel target.
	Megabinary string `json:",omitempty"`
	// Baselines is a digest of the baseline files the shard read.
	Baselines string
	// Split says which shard runs each unit.
	Split assignment
}

// assignment maps each suite's units to the shard (from 1) that runs them.
type assignment map[string]map[string]int

// units returns the units of s that shard index runs, in the plan's order.
func (a assignment) units(s runners.Suite, index int) []runners.Unit {
	var out []runners.Unit
	for _, u := range s.Plan().Units {
		if a[s.Name()][u.Name] == index {
			out = append(out, u)
		}
	}
	return out
}

// describe says in a line what shard index runs, and its estimated time.
func (a assignment) describe(index int, t unitTimes) string {
	n, total := 0, 0
	var mine, all time.Duration
	known := false
	for suite, units := range a {
		for unit, i := range units {
			total++
			d, ok := t.unit(suite, unit)
			known = known || ok
			all += d
			if i == index {
				n++
				mine += d
			}
		}
	}
	if !known {
		return fmt.Sprintf("%d of %d units (no recorded times: balanced by unit count)", n, total)
	}
	return fmt.Sprintf("%d of %d units, %s of %s by the recorded times", n, total, mine.Round(time.Second), all.Round(time.Second))
}

// unitTimes are recorded unit times, by suite, target and unit.
type unitTimes map[string]map[string]map[string]time.Duration

// unit returns the recorded time of suite's unit summed over its targets,
// and whether any is recorded.
func (t unitTimes) unit(suite, unit string) (time.Duration, bool) {
	var sum time.Duration
	ok := false
	for _, units := range t[suite] {
		if d, found := units[unit]; found {
			sum += d
			ok = true
		}
	}
	return sum, ok
}

// set records d as the time of unit of suite on target.
func (t unitTimes) set(suite, target, unit string, d time.Duration) {
	if t[suite] == nil {
		t[suite] = map[string]map[string]time.Duration{}
	}
	if t[suite][target] == nil {
		t[suite][target] = map[string]time.Duration{}
	}
	t[suite][target][unit] = d
}

// timingsFile is unitTimes as stored: seconds.
type timingsFile map[string]map[string]map[string]float64

// readTimings reads a timings file (timings.json, written by every run that
// is not a shard and by Merge). A file that does not exist, or an empty
// path, gives no timings.
func readTimings(path string) (unitTimes, error) {
	t := unitTimes{}
	if path == "" {
		return t, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, err
	}
	var f timingsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("timings file %s: %w (delete it: the next run that is not a shard writes it again)", path, err)
	}
	for suite, targets := range f {
		for target, units := range targets {
			for u, s := range units {
				t.set(suite, target, u, time.Duration(s*float64(time.Second)))
			}
		}
	}
	return t, nil
}

// writeTimings writes t to path.
func writeTimings(path string, t unitTimes, out *Outcome) error {
	f := timingsFile{}
	for suite, targets := range t {
		f[suite] = map[string]map[string]float64{}
		for target, units := range targets {
			f[suite][target] = map[string]float64{}
			for u, d := range units {
				f[suite][target][u] = float64(d.Round(time.Millisecond)) / float64(time.Second)
			}
		}
	}
	return writeJSON(path, f, out)
}

// timingsOf returns the unit times of runs: their wall-clock times
// (compat.Run.UnitTimes), or for runs written without them their tests'
// times (report.UnitTimes). Units that stopped with no result of their own
// (the run was stopped, a shard is missing) have no representative time
// and are left out; a timed-out one counts, with its timeout.
func timingsOf(runs []compat.Run) unitTimes {
	t := unitTimes{}
	for _, run := range runs {
		skip := map[string]bool{}
		for _, in := range run.Incomplete {
			skip[in.Unit] = true
		}
		for _, r := range run.Results {
			if r.Test == r.Unit {
				delete(skip, r.Unit)
			}
		}
		times := run.UnitTimes
		if len(times) == 0 {
			times = report.UnitTimes(run)
		}
		for unit, d := range times {
			if !skip[unit] {
				t.set(run.Suite, run.Target, unit, d)
			}
		}
	}
	return t
}

// recordTimings writes the runs' unit times to dir/timings.json and, when
// file is set, into file, keeping file's times of the units these runs did
// not time.
func recordTimings(dir, file string, runs []compat.Run, out *Outcome) error {
	now := timingsOf(runs)
	if err := writeTimings(filepath.Join(dir, "timings.json"), now, out); err != nil {
		return err
	}
	if file == "" {
		return nil
	}
	old, err := readTimings(file)
	if err != nil {
		old = unitTimes{}
	}
	for suite, targets := range now {
		for target, units := range targets {
			for u, d := range units {
				old.set(suite, target, u, d)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	var discard Outcome
	return writeTimings(file, old, &discard)
}

// splitUnits deals every suite's units over n shards: longest first, each to
// the shard with the least time so far (ties: the lowest index), by the
// recorded times t (summed over targets). A unit with no recorded time counts as the mean of
// the recorded ones, or as one unit of time when none is recorded, so that
// without timings the shards get equal numbers of units. The result
// depends only on the plans, t and n, so every shard computes the same.
func splitUnits(suites []runners.Suite, t unitTimes, n int) assignment {
	type item struct {
		suite, unit string
		d           time.Duration
	}
	var items []item
	var sum time.Duration
	known := 0
	for _, s := range suites {
		for _, u := range s.Plan().Units {
			d, ok := t.unit(s.Name(), u.Name)
			if ok {
				sum += d
				known++
			}
			items = append(items, item{s.Name(), u.Name, d})
			if !ok {
				items[len(items)-1].d = -1
			}
		}
	}
	unknown := time.Second
	if known > 0 {
		unknown = max(sum/time.Duration(known), time.Millisecond)
	}
	for i := range items {
		if items[i].d < 0 {
			items[i].d = unknown
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.d != b.d {
			return a.d > b.d
		}
		if a.suite != b.suite {
			return a.suite < b.suite
		}
		return a.unit < b.unit
	})
	load := make([]time.Duration, n)
	a := assignment{}
	for _, s := range suites {
		a[s.Name()] = map[string]int{}
	}
	for _, it := range items {
		best := 0
		for i := 1; i < n; i++ {
			if load[i] < load[best] {
				best = i
			}
		}
		load[best] += it.d
		a[it.suite][it.unit] = best + 1
	}
	return a
}

// shardSuite is a suite whose plan is one shard's part of it.
type shardSuite struct {
	runners.Suite
	units []runners.Unit
}

// Plan returns the shard's units, in the suite's order, and the suite's
// kinds.
func (s shardSuite) Plan() runners.Plan {
	p := s.Suite.Plan()
	p.Units = s.units
	return p
}
