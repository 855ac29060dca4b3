package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/runners"
)

// stripShards removes what only a merged run has, the shards property, from
// a written file.
func stripShards(name string, data []byte) []byte {
	s := string(normalise(name, data))
	s = regexp.MustCompile(`(?m)^\s*<property name="shards" value="\d+"></property>\n`).ReplaceAllString(s, "")
	s = regexp.MustCompile(`, shards `+"`"+`\d+`+"`").ReplaceAllString(s, "")
	s = regexp.MustCompile(`(?m)^\s*"shards": "\d+",\n`).ReplaceAllString(s, "")
	return []byte(s)
}

// runGolden runs goldenSuite on both targets into out, as shard sh (the
// zero Shard: the whole run).
func runGolden(t *testing.T, out, base string, sh Shard) *Outcome {
	t.Helper()
	o, err := Run(context.Background(), Config{
		Suites: []runners.Suite{goldenSuite()}, Targets: []string{runners.Vkernel, runners.Reference}, Reference: runners.Docker,
		Out: out, Baselines: base, Options: Options{Parallel: 2, Rerun: true}, Shard: sh,
	})
	if err != nil && !strings.Contains(err.Error(), "could not run on the vkernel target") {
		t.Fatalf("shard %s: %v", sh, err)
	}
	return o
}

// TestShardsMergeEqualsWhole: three shards of the golden suite, merged, write
// what the whole run writes, test for test: the same run JSON, JUnit files
// and summary.md, but for times and the merged run's shards property.
func TestShardsMergeEqualsWhole(t *testing.T) {
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "fake-vkernel.txt"), []byte(goldenBaseline), 0o644); err != nil {
		t.Fatal(err)
	}
	whole := t.TempDir()
	wo := runGolden(t, whole, base, Shard{})
	var dirs []string
	seen := map[string]int{}
	for i := 1; i <= 3; i++ {
		dir := t.TempDir()
		o := runGolden(t, dir, base, Shard{i, 3})
		dirs = append(dirs, dir)
		for _, r := range o.Runs {
			if r.Properties[PropShard] != fmt.Sprintf("%d/3", i) {
				t.Errorf("shard %d: run properties %v lack shard %d/3", i, r.Properties, i)
			}
			if r.Target == runners.Vkernel {
				units := map[string]bool{}
				for _, res := range r.Results {
					units[res.Unit] = true
				}
				for u := range units {
					seen[u]++
				}
			}
		}
		xml, _ := os.ReadFile(filepath.Join(dir, "fake-vkernel.xml"))
		if !strings.Contains(string(xml), fmt.Sprintf(`<property name="shard" value="%d/3">`, i)) {
			t.Errorf("shard %d: JUnit has no shard property", i)
		}
	}
	if len(seen) != 6 {
		t.Errorf("units run by the shards: %v, want each of the 6 once", seen)
	}
	for u, n := range seen {
		if n != 1 {
			t.Errorf("unit %s ran in %d shards", u, n)
		}
	}
	merged := t.TempDir()
	// Shards in any order.
	mo, err := Merge(MergeConfig{Shards: []string{dirs[2], dirs[0], dirs[1]}, Out: merged, Baselines: base})
	if err != nil {
		t.Fatal(err)
	}
	// The coverage map: the shards' units add up to the whole run's.
	units := 0
	for _, d := range dirs {
		if r, err := ReadRun(filepath.Join(d, "fake-vkernel.json")); err == nil && r.HostCalls != nil {
			units += r.HostCalls.Units
		}
	}
	if units != 3 {
		t.Errorf("the shards' maps hold %d units, want the whole run's 3", units)
	}
	for _, d := range []string{whole, merged} {
		r, err := ReadRun(filepath.Join(d, "fake-vkernel.json"))
		if err != nil {
			t.Fatal(err)
		}
		checkHostCalls(t, &r)
		if r, _ := ReadRun(filepath.Join(d, "fake-reference.json")); r.HostCalls != nil {
			t.Errorf("%s: the reference has a coverage map: %+v", d, r.HostCalls)
		}
	}
	if mo.Regressions() != wo.Regressions() || mo.Regressions() == 0 {
		t.Errorf("merged: %d regressions, whole run %d", mo.Regressions(), wo.Regressions())
	}
	for _, name := range []string{"fake-vkernel.xml", "fake-vkernel.json", "fake-reference.xml", "fake-reference.json", "summary.md"} {
		w, err := os.ReadFile(filepath.Join(whole, name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := os.ReadFile(filepath.Join(merged, name))
		if err != nil {
			t.Fatal(err)
		}
		if a, b := string(stripShards(name, w)), string(stripShards(name, m)); a != b {
			t.Errorf("merged %s differs from the whole run's:\n%s", name, firstDiff(a, b))
		}
	}
	for i, d := range wo.Diffs {
		if !reflect.DeepEqual(d, mo.Diffs[i]) {
			t.Errorf("diff %s-%s: merged %+v\nwhole %+v", d.Suite, d.Target, mo.Diffs[i], d)
		}
	}
	// baseline update reads the merged run as it reads a whole one.
	nb := t.TempDir()
	if _, _, err := UpdateBaseline(merged, nb, "fake", runners.Vkernel); err != nil {
		t.Fatal(err)
	}
	nw := t.TempDir()
	UpdateBaseline(whole, nw, "fake", runners.Vkernel)
	a, _ := os.ReadFile(filepath.Join(nb, "fake-vkernel.txt"))
	b, _ := os.ReadFile(filepath.Join(nw, "fake-vkernel.txt"))
	if string(a) != string(b) || len(a) == 0 {
		t.Errorf("baseline from the merged run:\n%s\nfrom the whole run:\n%s", a, b)
	}

	t.Run("missing", func(t *testing.T) {
		out := t.TempDir()
		o, err := Merge(MergeConfig{Shards: []string{dirs[0], dirs[2]}, Out: out, Baselines: base})
		if !errors.Is(err, ErrMissingShard) || !strings.Contains(err.Error(), "shard 2/3") {
			t.Fatalf("err = %v, want shard 2/3 missing", err)
		}
		var incomplete []string
		for _, r := range o.Runs {
			if r.Target == runners.Vkernel {
				for _, in := range r.Incomplete {
					if strings.Contains(in.Reason, "shard 2/3 is missing") {
						incomplete = append(incomplete, in.Unit)
					}
				}
			}
		}
		if len(incomplete) != 2 {
			t.Errorf("units of the missing shard: %v, want its 2", incomplete)
		}
		summary, _ := os.ReadFile(filepath.Join(out, "summary.md"))
		if !strings.Contains(string(summary), "**Partial run**") || !strings.Contains(string(summary), "shard 2/3 is missing") {
			t.Errorf("summary does not say the merge is partial:\n%s", summary)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		_, err := Merge(MergeConfig{Shards: []string{dirs[0], dirs[1], dirs[1]}, Out: t.TempDir(), Baselines: base})
		if err == nil || !strings.Contains(err.Error(), "shard 2/3 given twice") {
			t.Errorf("err = %v, want shard 2/3 given twice", err)
		}
	})
	t.Run("different runs", func(t *testing.T) {
		for field, change := range map[string]func(*shardInfo){
			"megabinary":       func(in *shardInfo) { in.Megabinary = "0123456789abcdef0123" },
			"baselines digest": func(in *shardInfo) { in.Baselines = "other" },
			"shard count":      func(in *shardInfo) { in.Shard.Count = 4 },
			"split of units":   func(in *shardInfo) { in.Split["fake"]["unit_pass"] = 3 - in.Split["fake"]["unit_pass"]%3 },
		} {
			odd := t.TempDir()
			copyDir(t, dirs[1], odd)
			var in shardInfo
			data, _ := os.ReadFile(filepath.Join(odd, shardFile))
			json.Unmarshal(data, &in)
			change(&in)
			data, _ = json.Marshal(in)
			os.WriteFile(filepath.Join(odd, shardFile), data, 0o644)
			out := t.TempDir()
			_, err := Merge(MergeConfig{Shards: []string{dirs[0], odd, dirs[2]}, Out: out, Baselines: base})
			if err == nil || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), odd) {
				t.Errorf("%s: err = %v, want a refusal naming it and %s", field, err, odd)
			}
			if _, err := os.Stat(filepath.Join(out, "summary.md")); err == nil {
				t.Errorf("%s: a refused merge wrote summary.md", field)
			}
		}
	})
	t.Run("not a shard", func(t *testing.T) {
		_, err := Merge(MergeConfig{Shards: []string{whole}, Out: t.TempDir(), Baselines: base})
		if err == nil || !strings.Contains(err.Error(), "no shard.json") {
			t.Errorf("err = %v", err)
		}
	})
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, e.Name()), data, 0o644)
	}
}

// TestSplit: without timings the shards get equal numbers of units; with
// them, the longest units are dealt first to the least loaded shard, and a
// unit with no recorded time counts as the mean.
func TestSplit(t *testing.T) {
	s := &fakeSuite{units: []runners.Unit{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}, {Name: "e"}, {Name: "f"}, {Name: "g"}}}
	count := map[int]int{}
	for _, i := range splitUnits([]runners.Suite{s}, nil, 3)["fake"] {
		count[i]++
	}
	if !reflect.DeepEqual(count, map[int]int{1: 3, 2: 2, 3: 2}) {
		t.Errorf("by unit count: %v", count)
	}
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	// Times on two targets, summed; g has none: it counts as the mean, 5 s.
	tm := unitTimes{"fake": {"vkernel": {"a": sec(8), "b": sec(5), "c": sec(5), "d": sec(2), "e": sec(1), "f": sec(1)},
		"reference": {"a": sec(2), "b": sec(2), "c": sec(1), "d": sec(1), "e": sec(1), "f": sec(1)}}}
	got := splitUnits([]runners.Suite{s}, tm, 2)["fake"]
	// a 10 → 1; b 7 → 2; c 6 → 2 (13); g 5 → 1 (15); d 3 → 2 (16); e 2 → 1 (17); f 2 → 2 (18).
	want := map[string]int{"a": 1, "b": 2, "c": 2, "g": 1, "d": 2, "e": 1, "f": 2}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("by time: %v, want %v", got, want)
	}
	if again := splitUnits([]runners.Suite{s}, tm, 2)["fake"]; !reflect.DeepEqual(again, got) {
		t.Error("the split is not deterministic")
	}
	for _, bad := range []string{"0/3", "4/3", "1", "a/b", "1/0"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
	if sh, err := ParseShard("2/3"); err != nil || sh != (Shard{2, 3}) {
		t.Errorf("ParseShard(2/3) = %v, %v", sh, err)
	}
}

// TestTimingsRecorded: a whole run records its unit times in its out
// directory and in the timings file, which the next shard's split reads;
// shards leave the file alone, so that every shard splits alike.
func TestTimingsRecorded(t *testing.T) {
	base, file := t.TempDir(), filepath.Join(t.TempDir(), "timings.json")
	out := t.TempDir()
	o, err := Run(context.Background(), Config{Suites: []runners.Suite{goldenSuite()}, Targets: []string{runners.Reference}, Reference: runners.Local,
		Out: out, Baselines: base, Timings: file})
	if err != nil || len(o.Runs) != 1 {
		t.Fatal(err)
	}
	tm, err := readTimings(file)
	// The units' wall-clock times, not their tests' (20 ms for unit_pass).
	want := o.Runs[0].UnitTimes["unit_pass"].Round(time.Millisecond)
	if err != nil || len(tm["fake"]["reference"]) != 6 || tm["fake"]["reference"]["unit_pass"] != want {
		t.Fatalf("timings %v, %v: want the 6 units, unit_pass %v", tm, err, want)
	}
	if _, err := os.Stat(filepath.Join(out, "timings.json")); err != nil {
		t.Error(err)
	}
	before, _ := os.ReadFile(file)
	hist := t.TempDir()
	Run(context.Background(), Config{Suites: []runners.Suite{goldenSuite()}, Targets: []string{runners.Reference}, Reference: runners.Local,
		Out: t.TempDir(), Baselines: base, Timings: file, Shard: Shard{1, 2}, History: hist})
	after, _ := os.ReadFile(file)
	if string(before) != string(after) {
		t.Error("a shard rewrote the timings file")
	}
	// Nor does a shard join the history: its merge does.
	if files, _ := filepath.Glob(filepath.Join(hist, "*")); len(files) != 0 {
		t.Errorf("a shard wrote history %v", files)
	}
}

// TestHistory: each run with a history directory joins it, and summary.md
// and report.html show the trend over the last runs (up to HistoryRuns).
func TestHistory(t *testing.T) {
	hist, base := t.TempDir(), t.TempDir()
	var out string
	for i := 0; i < HistoryRuns+2; i++ {
		out = t.TempDir()
		n := i
		s := &fakeSuite{units: []runners.Unit{{Name: "a"}}, run: func(_ context.Context, _ runners.TargetSpec, u runners.Unit, _ []string) runners.Report {
			// One more passing test per run.
			var rep runners.Report
			for j := 0; j <= n; j++ {
				rep.Results = append(rep.Results, pass(u.Name, fmt.Sprintf("t%02d", j)))
			}
			return rep
		}}
		if _, err := Run(context.Background(), Config{Suites: []runners.Suite{s}, Targets: []string{runners.Vkernel}, Out: out, Baselines: base, History: hist}); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(hist, "*.json"))
	if len(files) != HistoryRuns+2 {
		t.Errorf("%d history files, want one per run (%d)", len(files), HistoryRuns+2)
	}
	summary, _ := os.ReadFile(filepath.Join(out, "summary.md"))
	trend := string(summary[strings.Index(string(summary), "## Trend"):])
	if !strings.HasPrefix(trend, fmt.Sprintf("## Trend over the last %d run(s)", HistoryRuns)) ||
		strings.Count(trend, "\n| 20") != HistoryRuns || !strings.Contains(trend, "| 22 (+1) |") || strings.Contains(trend, "| 2 (+1) |") {
		t.Errorf("trend:\n%s", trend)
	}
	page, _ := os.ReadFile(filepath.Join(out, "report.html"))
	if !strings.Contains(string(page), fmt.Sprintf("Trend over the last %d runs", HistoryRuns)) || !strings.Contains(string(page), "<polyline") {
		t.Errorf("report.html has no trend")
	}
}
