// Package pipeline is compat's main job and the loop of its test runner
// (lit's own part): it builds and signs the megabinary the suites need, runs
// each suite (a runners.Suite) on the vkernel and on the native reference,
// diffs every run against its stored baseline, and writes one JUnit file per
// suite and target, the runs as JSON (for compat baseline update) and a
// Markdown summary for release sign-off.
//
// The loop over a suite's units is RunSuite's, for every suite alike:
// which units run at once, each unit's timeout, one progress line per unit,
// one rerun of a unit's failed tests to tell flaky ones, and the error
// result of a unit that did not run to its end, with the command that
// reproduces it.
package pipeline

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/baselines"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/report"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// Config describes one comparison.
type Config struct {
	Suites []runners.Suite
	// Targets are the kinds to run: runners.Vkernel, runners.Reference.
	Targets []string
	// Reference is how the reference runs: runners.Docker or
	// runners.Local.
	Reference string
	// Out receives the results; Baselines holds the expectations.
	Out, Baselines string
	// Cache is the cache root (builds, AOT code).
	Cache string
	// Key signs the run's megabinary; empty: a key generated for the run.
	Key string
	// Exec is the command that runs compat exec, for the vkernel target
	// (runners.TargetSpec.Exec).
	Exec []string
	// Shard, if its Count is not zero, runs only one shard of every
	// suite's units (compat run -shard i/n).
	Shard Shard
	// Timings is the file of recorded unit times (see readTimings): read
	// to balance shards, updated by runs that are not shards. Empty: none;
	// shards are then balanced by unit count.
	Timings string
	// History, if set, is a directory keeping each run's totals:
	// summary.md and report.html show the trend over the last runs. A
	// shard ignores it: its merge keeps the run's.
	History string
	// Options say how each suite's units run.
	Options
	// Log receives progress lines.
	Log io.Writer
	// Properties are added to every run's properties, such as the
	// runner image's identity (compat.PropRunnerImage).
	Properties map[string]string
	// Quiet leaves out the per-unit progress lines (CI logs): Log gets
	// what each target ran and found, and the files written.
	Quiet bool
}

// Outcome is what a comparison found.
type Outcome struct {
	Runs  []compat.Run
	Diffs []compat.Diff
	// Files are the files written, in order.
	Files []string
}

// Regressions counts regressions over all diffs.
func (o *Outcome) Regressions() int {
	n := 0
	for _, d := range o.Diffs {
		n += d.Count(compat.Regression)
	}
	return n
}

// Run runs the comparison. Whatever ran is written to cfg.Out even when a
// later step fails: the error says what failed, and the outcome holds what
// was written.
//
// With cfg.Shard set, only the shard's part of every suite's units runs
// (splitUnits), its runs carry the "shard" property, and cfg.Out also gets
// shard.json, which Merge reads. A run that is not a shard records its
// units' times in cfg.Out/timings.json and in cfg.Timings, for the splits of
// later runs.
func Run(ctx context.Context, cfg Config) (*Outcome, error) {
	out := &Outcome{}
	runStart := time.Now()
	logf := logger(cfg.Log)
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return out, err
	}
	names := make([]string, len(cfg.Suites))
	for i, s := range cfg.Suites {
		names[i] = s.Name()
	}
	// Check every baseline before running anything: a broken file is the
	// user's to fix, and better found in a second than after an hour.
	base, baseDigest, err := loadBaselines(cfg.Baselines, names, cfg.Targets, logf)
	if err != nil {
		return out, err
	}

	timings, err := readTimings(cfg.Timings)
	if err != nil {
		return out, err
	}
	suites := cfg.Suites
	var shard *shardInfo
	if cfg.Shard.Count > 0 {
		if err := cfg.Shard.check(); err != nil {
			return out, err
		}
		split := splitUnits(cfg.Suites, timings, cfg.Shard.Count)
		shard = &shardInfo{Shard: cfg.Shard, Suites: names, Targets: cfg.Targets, Baselines: baseDigest, Split: split}
		suites = nil
		for _, s := range cfg.Suites {
			if mine := split.units(s, cfg.Shard.Index); len(mine) > 0 {
				suites = append(suites, shardSuite{Suite: s, units: mine})
			}
		}
		logf("shard %s: %s", cfg.Shard, split.describe(cfg.Shard.Index, timings))
		if cfg.History != "" {
			// A shard's totals are not a run's: the merge keeps them.
			logf("shard %s: -history is for compat merge; this shard adds nothing to %s", cfg.Shard, cfg.History)
			cfg.History = ""
		}
	}

	var mb *megabinaryFiles
	if slices.Contains(cfg.Targets, runners.Vkernel) {
		var err error
		start := time.Now()
		if mb, err = buildKernel(ctx, cfg, out); err != nil {
			return out, err
		}
		if mb != nil {
			defer mb.kernel.Close(context.Background())
			logf("megabinary %s (digest %s) built, signed, verified and loaded in %s", mb.path, mb.kernel.Digest()[:16], time.Since(start).Round(time.Millisecond))
		}
	}
	if shard != nil {
		if mb != nil {
			shard.Megabinary = mb.kernel.Digest()
		}
		if err := writeJSON(filepath.Join(cfg.Out, shardFile), shard, out); err != nil {
			return out, err
		}
	}

	var all []map[string]*compat.Run
	var firstErr error
	for _, s := range suites {
		runs := map[string]*compat.Run{}
		for _, kind := range cfg.Targets {
			name := s.Name() + "-" + kind
			if ctx.Err() != nil {
				// Stopped before this target began: a run of nothing,
				// partial, so that every report says what was not run.
				runs[kind] = notStarted(ctx, s, kind)
			} else {
				spec := runners.TargetSpec{Kind: kind, Reference: cfg.Reference, Cache: cfg.Cache}
				if kind == runners.Vkernel && mb != nil {
					spec.Kernel, spec.Megabinary, spec.PublicKey, spec.Exec = mb.kernel, mb.path, mb.publicKey, cfg.Exec
				}
				opts := cfg.Options
				start := time.Now()
				opts.Estimates = timings[s.Name()][kind]
				opts.Progress = func(line string) {
					logf("%s: %s [%s]", name, line, time.Since(start).Round(time.Second))
				}
				if cfg.Quiet {
					opts.Progress = nil
				}
				logf("%s: running %d unit(s)", name, len(s.Plan().Units))
				run, err := runInScratch(ctx, s, spec, opts)
				if run == nil {
					if firstErr == nil {
						firstErr = err
					}
					logf("%s: %v", name, err)
					continue
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				runs[kind] = run
			}
			if shard != nil {
				runs[kind].Properties = withProperty(runs[kind].Properties, PropShard, cfg.Shard.String())
			}
			for k, v := range cfg.Properties {
				runs[kind].Properties = withProperty(runs[kind].Properties, k, v)
			}
			if err := writeRun(cfg.Out, name, *runs[kind], out); err != nil {
				return out, err
			}
		}
		all = append(all, runs)
	}
	if err := finish(cfg.Out, cfg.History, runStart, cfg.Targets, all, base, logf, out); err != nil {
		return out, err
	}
	if shard == nil {
		if err := recordTimings(cfg.Out, cfg.Timings, out.Runs, out); err != nil {
			return out, err
		}
	}
	if ctx.Err() != nil {
		return out, fmt.Errorf("stopped: %w; partial results are in %s", context.Cause(ctx), cfg.Out)
	}
	return out, firstErr
}

// logger returns a printf to w that ends each line, or one that drops
// everything for a nil w.
func logger(w io.Writer) func(string, ...any) {
	return func(format string, args ...any) {
		if w != nil {
			fmt.Fprintf(w, format+"\n", args...)
		}
	}
}

// loadBaselines loads the baseline of every suite on every target from
// dir, an empty one where there is no file, and returns them by
// SUITE-TARGET with a digest of what was read (shards of one run must
// agree on it).
func loadBaselines(dir string, suites, targets []string, logf func(string, ...any)) (map[string]*baselines.Baseline, string, error) {
	base := map[string]*baselines.Baseline{}
	h := sha256.New()
	for _, s := range suites {
		for _, t := range targets {
			path := baselines.File(dir, s, t)
			data, err := os.ReadFile(path)
			var b *baselines.Baseline
			if err == nil {
				b, err = baselines.Parse(path, bytes.NewReader(data))
			}
			switch {
			case errors.Is(err, fs.ErrNotExist):
				if t != runners.Reference && slices.Contains(targets, runners.Reference) {
					logf("%s-%s: no baseline at %s: the reference's results in this run are the expectation (keep a baseline with: compat baseline update)", s, t, path)
				} else {
					logf("%s-%s: no baseline at %s: every result counts as new (create it with: compat baseline update)", s, t, path)
				}
				b = &baselines.Baseline{Name: path}
				fmt.Fprintf(h, "%s-%s: none\n", s, t)
			case err != nil:
				return nil, "", fmt.Errorf("baseline %s: %w (fix the file, or recreate it with: compat baseline update)", path, err)
			default:
				fmt.Fprintf(h, "%s-%s: %x\n", s, t, sha256.Sum256(data))
			}
			base[s+"-"+t] = b
		}
	}
	return base, hex.EncodeToString(h.Sum(nil)), nil
}

// finish diffs every suite's runs (once all its targets ran: where a
// baseline is silent, the reference's result is the other targets'
// expectation), logs the counts and writes summary.md and report.html; with
// a history directory, the run (started at start) joins the history and
// both show the trend.
func finish(dir, historyDir string, start time.Time, targets []string, all []map[string]*compat.Run, base map[string]*baselines.Baseline,
	logf func(string, ...any), out *Outcome) error {
	var sections []report.Section
	for _, runs := range all {
		diffs := map[string]compat.Diff{}
		var suite string
		for _, kind := range targets {
			run, ok := runs[kind]
			if !ok {
				continue
			}
			suite = run.Suite
			var ref *compat.Run
			if kind != runners.Reference {
				ref = runs[runners.Reference]
			}
			name := run.Suite + "-" + kind
			diff := baselines.DiffWithReference(*run, base[name], ref)
			diffs[kind] = diff
			out.Runs = append(out.Runs, *run)
			out.Diffs = append(out.Diffs, diff)
			c := run.Counts()
			logf("%s: pass %d, fail %d, error %d, skip %d, flaky %d in %s; regressions %d, unexpected passes %d, new %d",
				name, c.Pass, c.Fail, c.Error, c.Skip, c.Flaky, run.Duration.Round(time.Second),
				diff.Count(compat.Regression), diff.Count(compat.UnexpectedPass), diff.Count(compat.NewTest))
			if run.Partial() {
				logf("%s: partial: %s", name, report.PartialLine(*run))
			}
		}
		if vk, ref := runs[runners.Vkernel], runs[runners.Reference]; vk != nil && ref != nil {
			if tr := report.CompareTimes(*vk, *ref); tr.Units > 0 {
				logf("%s: unit time vkernel/reference over %d units: median %.2f×, p90 %.2f×, total %.2f×",
					suite, tr.Units, tr.Median, tr.P90, tr.Total)
			}
		}
		for _, kind := range targets {
			run, ok := runs[kind]
			if !ok {
				continue
			}
			sec := report.Section{Run: *run, Diff: diffs[kind]}
			if kind != runners.Reference {
				sec.Reference = runs[runners.Reference]
			}
			sections = append(sections, sec)
		}
	}
	var history []report.Point
	if historyDir != "" {
		var err error
		if history, err = recordHistory(historyDir, report.PointOf(start, sections...)); err != nil {
			return err
		}
	}
	summary := filepath.Join(dir, "summary.md")
	if err := writeFile(summary, func(w io.Writer) error {
		if err := report.WriteSummary(w, sections...); err != nil {
			return err
		}
		return report.WriteTrend(w, history)
	}); err != nil {
		return err
	}
	page := filepath.Join(dir, "report.html")
	if err := writeFile(page, func(w io.Writer) error {
		return report.WriteHTML(w, report.Page{Sections: sections, History: history})
	}); err != nil {
		return err
	}
	out.Files = append(out.Files, summary, page)
	// The polyfill coverage map for tools: every suite's map and the
	// blind spots. A map an earlier run left in dir is not this run's.
	hostCalls := filepath.Join(dir, HostCallsFile)
	if cov := report.CoverageOf(sections...); len(cov.Suites) > 0 {
		return writeJSON(hostCalls, cov, out)
	}
	if err := os.Remove(hostCalls); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// HostCallsFile is the file in out/ holding the run's polyfill coverage
// map (report.Coverage): each suite's calls per host function of the
// vkernel, and the functions no suite called.
const HostCallsFile = "hostcalls.json"

// HistoryRuns is how many runs the trend shows, the latest last.
const HistoryRuns = 20

// recordHistory adds p to the history in dir (one JSON file per run, named
// by its start) and returns the last HistoryRuns points, oldest first.
func recordHistory(dir string, p report.Point) ([]report.Point, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	name := filepath.Join(dir, p.Start.Format("20060102T150405.000000000Z")+".json")
	var discard Outcome
	if err := writeJSON(name, p, &discard); err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var points []report.Point
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var q report.Point
		if err := json.Unmarshal(data, &q); err != nil {
			return nil, fmt.Errorf("history %s: %w (remove the file)", f, err)
		}
		points = append(points, q)
	}
	slices.SortStableFunc(points, func(a, b report.Point) int { return a.Start.Compare(b.Start) })
	if len(points) > HistoryRuns {
		points = points[len(points)-HistoryRuns:]
	}
	return points, nil
}

// withProperty returns props with key set to value, copied.
func withProperty(props map[string]string, key, value string) map[string]string {
	n := make(map[string]string, len(props)+1)
	for k, v := range props {
		n[k] = v
	}
	n[key] = value
	return n
}

// notStarted is the run of a suite on a target that the stopped run never
// began: no results, every unit of the plan incomplete.
func notStarted(ctx context.Context, s runners.Suite, kind string) *compat.Run {
	run := &compat.Run{Suite: s.Name(), Target: kind, Start: time.Now()}
	for _, u := range s.Plan().Units {
		run.Incomplete = append(run.Incomplete, compat.Incomplete{Unit: u.Name,
			Reason: fmt.Sprintf("not started: the run was stopped (%v)", context.Cause(ctx))})
	}
	return run
}

// runInScratch runs s on the target spec describes, with a scratch
// directory of its own that is removed afterwards.
func runInScratch(ctx context.Context, s runners.Suite, spec runners.TargetSpec, opts Options) (*compat.Run, error) {
	scratch, err := os.MkdirTemp("", "compat-"+s.Name()+"-"+spec.Kind+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	spec.Scratch = scratch
	return RunSuite(ctx, s, spec, opts)
}

// megabinaryFiles is the run's megabinary: the file, its public key and
// the kernel opened from it.
type megabinaryFiles struct {
	path, publicKey string
	kernel          *vkernel.Kernel
}

// buildKernel builds the megabinary of every suite's entries, signs it with
// the configured key or one made for this run, writes it and its public key
// to cfg.Out, checks it and opens it. With no entries there is nothing to
// build: it returns nil.
func buildKernel(ctx context.Context, cfg Config, out *Outcome) (*megabinaryFiles, error) {
	var spec megabinary.Spec
	for _, s := range cfg.Suites {
		spec.Entries = append(spec.Entries, s.Entries()...)
	}
	if len(spec.Entries) == 0 {
		return nil, nil
	}
	f, err := spec.Build()
	if err != nil {
		return nil, fmt.Errorf("building the megabinary: %w", err)
	}
	if err := vkernel.Verify(ctx, f, cfg.Cache); err != nil {
		return nil, fmt.Errorf("the megabinary does not verify: %w", err)
	}
	keyFile := cfg.Key
	if keyFile == "" {
		keyFile = filepath.Join(cfg.Out, "run-key")
		if _, err := megabinary.GenerateKey(keyFile); err != nil {
			return nil, err
		}
	}
	priv, err := megabinary.ReadPrivateKey(keyFile)
	if err != nil {
		return nil, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	// Shims open the megabinary in processes of their own and need the
	// public key as a file: the run's, whichever private key signed it.
	pubFile := filepath.Join(cfg.Out, "run-key.pub")
	if cfg.Key != "" {
		if err := writePublicKey(pubFile, pub); err != nil {
			return nil, err
		}
	}
	f.Sign(priv)
	mb := filepath.Join(cfg.Out, "compat.vkmb")
	if err := f.WriteFile(mb); err != nil {
		return nil, err
	}
	out.Files = append(out.Files, mb)
	k, err := vkernel.Open(ctx, mb, vkernel.Options{TrustedKeys: []ed25519.PublicKey{pub}, CacheDir: cfg.Cache})
	if err != nil {
		return nil, err
	}
	// Shims and containers open these files from other working
	// directories: hand them on as absolute paths.
	absMB, err := filepath.Abs(mb)
	if err != nil {
		k.Close(ctx)
		return nil, err
	}
	absPub, err := filepath.Abs(pubFile)
	if err != nil {
		k.Close(ctx)
		return nil, err
	}
	return &megabinaryFiles{path: absMB, publicKey: absPub, kernel: k}, nil
}

// writePublicKey writes pub to name as PEM (PKIX), as megabinary.GenerateKey
// writes NAME.pub.
func writePublicKey(name string, pub ed25519.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	return os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}

// writeJSON writes v to path as indented JSON.
func writeJSON(path string, v any, out *Outcome) error {
	if err := writeFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(v)
	}); err != nil {
		return err
	}
	out.Files = append(out.Files, path)
	return nil
}

// writeRun writes a run's JUnit file and its JSON (read back by compat
// baseline update).
func writeRun(dir, name string, run compat.Run, out *Outcome) error {
	xmlFile := filepath.Join(dir, name+".xml")
	if err := writeFile(xmlFile, func(w io.Writer) error { return report.WriteJUnit(w, run) }); err != nil {
		return err
	}
	jsonFile := filepath.Join(dir, name+".json")
	if err := writeFile(jsonFile, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(run)
	}); err != nil {
		return err
	}
	out.Files = append(out.Files, xmlFile, jsonFile)
	return nil
}

// ReadRun reads a run written by Run.
func ReadRun(path string) (compat.Run, error) {
	var run compat.Run
	data, err := os.ReadFile(path)
	if err != nil {
		return run, err
	}
	if err := json.Unmarshal(data, &run); err != nil {
		return run, fmt.Errorf("%s: %w", path, err)
	}
	return run, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// UpdateBaseline rewrites the baseline of suite on target from the run in
// out, keeping existing reasons, and returns the changes for review and
// the baseline's path.
func UpdateBaseline(out, dir, suite, target string) ([]string, string, error) {
	run, err := ReadRun(filepath.Join(out, suite+"-"+target+".json"))
	if err != nil {
		return nil, "", err
	}
	path := baselines.File(dir, suite, target)
	b, err := baselines.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		b, err = &baselines.Baseline{Name: path}, nil
	}
	if err != nil {
		return nil, path, err
	}
	nb, changes := baselines.Update(b, run)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, path, err
	}
	return changes, path, nb.Save(path)
}
