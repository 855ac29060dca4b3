package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/compat-project/compat"
)

// PropShards is the property of a merged run that says how many shards it
// was merged from.
const PropShards = "shards"

// MergeConfig describes a merge of shards' out directories.
type MergeConfig struct {
	// Shards are the out directories of compat run -shard i/n, one per
	// shard, in any order.
	Shards []string
	// Out receives the merged run; Baselines holds the expectations.
	Out, Baselines string
	// Timings, if set, is updated with the merged run's unit times, as a
	// run that is not a shard updates it.
	Timings string
	// History, as Config.History: the merged run joins it.
	History string
	// Log receives what the merge found.
	Log io.Writer
}

// ErrMissingShard is wrapped by Merge's error when a shard is missing: the
// merged run was written, partial.
var ErrMissingShard = errors.New("shard missing")

// Merge merges the shards' runs into one run per suite and target, as the
// whole run would have written them (SUITE-TARGET.xml and .json), diffs
// them against the baselines as one run and writes summary.md.
//
// It refuses, writing nothing, shards that ran different megabinaries, read
// different baselines, were split differently (shard counts, timings,
// units) or name one shard twice. A missing shard makes the merge partial:
// its units are incomplete ("not run"), and the error wraps
// ErrMissingShard, naming it.
func Merge(cfg MergeConfig) (*Outcome, error) {
	out := &Outcome{}
	logf := logger(cfg.Log)
	if len(cfg.Shards) == 0 {
		return out, errors.New("merge: no shard directories given")
	}
	infos := make([]shardInfo, len(cfg.Shards))
	byIndex := map[int]string{}
	for i, dir := range cfg.Shards {
		data, err := os.ReadFile(filepath.Join(dir, shardFile))
		if errors.Is(err, fs.ErrNotExist) {
			return out, fmt.Errorf("%s: no %s: not the out directory of compat run -shard i/n", dir, shardFile)
		}
		if err != nil {
			return out, err
		}
		if err := json.Unmarshal(data, &infos[i]); err != nil {
			return out, fmt.Errorf("%s: %w", filepath.Join(dir, shardFile), err)
		}
		in, first := infos[i], infos[0]
		differ := func(what, a, b string) error {
			return fmt.Errorf("shards of different runs: %s has %s %s, %s has %s (run every shard of one run from the same build, baselines and timings)",
				cfg.Shards[0], what, a, dir, b)
		}
		switch {
		case in.Shard.Count != first.Shard.Count:
			return out, differ("shard count", fmt.Sprint(first.Shard.Count), fmt.Sprint(in.Shard.Count))
		case in.Megabinary != first.Megabinary:
			return out, differ("megabinary", short(first.Megabinary), short(in.Megabinary))
		case in.Baselines != first.Baselines:
			return out, differ("baselines digest", short(first.Baselines), short(in.Baselines))
		case !reflect.DeepEqual(in.Suites, first.Suites) || !reflect.DeepEqual(in.Targets, first.Targets):
			return out, differ("suites and targets", strings.Join(first.Suites, ",")+" on "+strings.Join(first.Targets, ","),
				strings.Join(in.Suites, ",")+" on "+strings.Join(in.Targets, ","))
		case !reflect.DeepEqual(in.Split, first.Split):
			return out, differ("split of units", "one", "another")
		}
		if other, dup := byIndex[in.Shard.Index]; dup {
			return out, fmt.Errorf("shard %s given twice: %s and %s", in.Shard, other, dir)
		}
		byIndex[in.Shard.Index] = dir
	}
	first := infos[0]
	var missing []Shard
	var names []string
	for i := 1; i <= first.Shard.Count; i++ {
		if _, ok := byIndex[i]; !ok {
			missing = append(missing, Shard{i, first.Shard.Count})
			names = append(names, missing[len(missing)-1].String())
		}
	}

	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return out, err
	}
	base, digest, err := loadBaselines(cfg.Baselines, first.Suites, first.Targets, logf)
	if err != nil {
		return out, err
	}
	if digest != first.Baselines {
		logf("merge: the baselines in %s differ from those the shards read; the merged run is diffed against %s", cfg.Baselines, cfg.Baselines)
	}
	var all []map[string]*compat.Run
	for _, suite := range first.Suites {
		runs := map[string]*compat.Run{}
		for _, target := range first.Targets {
			run, err := mergeRuns(cfg.Shards, infos, suite, target, missing, logf)
			if err != nil {
				return out, err
			}
			if run == nil {
				continue
			}
			runs[target] = run
			if err := writeRun(cfg.Out, suite+"-"+target, *run, out); err != nil {
				return out, err
			}
		}
		if len(runs) > 0 {
			all = append(all, runs)
		}
	}
	start := time.Time{}
	for _, runs := range all {
		for _, r := range runs {
			if start.IsZero() || (!r.Start.IsZero() && r.Start.Before(start)) {
				start = r.Start
			}
		}
	}
	if start.IsZero() {
		start = time.Now()
	}
	if err := finish(cfg.Out, cfg.History, start, first.Targets, all, base, logf, out); err != nil {
		return out, err
	}
	if err := recordTimings(cfg.Out, cfg.Timings, out.Runs, out); err != nil {
		return out, err
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("%w: shard %s of the %d; the merged run in %s is partial (their units are not run)",
			ErrMissingShard, strings.Join(names, ", "), first.Shard.Count, cfg.Out)
	}
	return out, nil
}

// mergeRuns merges the shards' runs of suite on target; nil when no shard
// has a unit of the suite.
func mergeRuns(dirs []string, infos []shardInfo, suite, target string, missing []Shard, logf func(string, ...any)) (*compat.Run, error) {
	split := infos[0].Split[suite]
	if len(split) == 0 {
		return nil, nil
	}
	merged := &compat.Run{Suite: suite, Target: target}
	cut := map[string]string{}
	for i, dir := range dirs {
		index := infos[i].Shard.Index
		path := filepath.Join(dir, suite+"-"+target+".json")
		run, err := ReadRun(path)
		if errors.Is(err, fs.ErrNotExist) {
			for u, s := range split {
				if s == index {
					cut[u] = fmt.Sprintf("shard %s wrote no run of %s on %s (see its log)", infos[i].Shard, suite, target)
				}
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if merged.Start.IsZero() || run.Start.Before(merged.Start) {
			merged.Start = run.Start
		}
		merged.Duration += run.Duration
		merged.Results = append(merged.Results, run.Results...)
		for u, d := range run.UnitTimes {
			if merged.UnitTimes == nil {
				merged.UnitTimes = map[string]time.Duration{}
			}
			merged.UnitTimes[u] = d
		}
		for k, v := range run.Properties {
			if k == PropShard {
				continue
			}
			if merged.Properties == nil {
				merged.Properties = map[string]string{}
			}
			if old, ok := merged.Properties[k]; ok && old != v {
				logf("merge: %s-%s: shards differ in %s (%s, %s): the first is kept", suite, target, k, old, v)
				continue
			}
			merged.Properties[k] = v
		}
		for _, in := range run.Incomplete {
			cut[in.Unit] = in.Reason
		}
		if run.HostCalls != nil {
			// Each shard ran units of its own: calls and units add up.
			if merged.HostCalls == nil {
				merged.HostCalls = &compat.HostCalls{}
			}
			merged.HostCalls.Merge(*run.HostCalls)
		}
	}
	for _, m := range missing {
		for u, s := range split {
			if s == m.Index {
				cut[u] = fmt.Sprintf("not run: shard %s is missing from the merge", m)
			}
		}
	}
	units := make([]string, 0, len(cut))
	for u := range cut {
		units = append(units, u)
	}
	sort.Strings(units)
	for _, u := range units {
		merged.Incomplete = append(merged.Incomplete, compat.Incomplete{Unit: u, Reason: cut[u]})
	}
	compat.SortResults(merged.Results)
	merged.Properties = withProperty(merged.Properties, PropShards, fmt.Sprint(infos[0].Shard.Count))
	return merged, nil
}

// short abbreviates a digest for a message.
func short(d string) string {
	if d == "" {
		return "(none)"
	}
	if len(d) > 16 {
		return d[:16]
	}
	return d
}
