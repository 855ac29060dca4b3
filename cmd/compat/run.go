package main

import (
	root "github.com/compat-project/compat"

	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/runners/pipeline"
)

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "run [-suite python,redis,nginx] [-target vkernel,reference] [-reference docker|local] [-profile quick|full] [-shard i/n] [-quiet] [-history DIR] [-out DIR]", stderr)
	suites := fs.String("suite", "python", "suites to run, comma-separated (python, redis, nginx)")
	targets := fs.String("target", "vkernel,reference", "targets, comma-separated: vkernel, reference")
	reference := fs.String("reference", "docker", "how the reference runs: docker (a dockertest container) or local (the host's own build)")
	out := fs.String("out", "out", "directory for JUnit files, run JSON, summary.md and report.html")
	baselineDir := fs.String("baselines", "baselines", "directory of the baseline files")
	key := fs.String("key", "", "private key to sign the run's megabinary (default: one generated for the run)")
	var (
		sf   suiteFlags
		opts pipeline.Options
	)
	fs.StringVar(&sf.profile, "profile", "quick", "quick (a few modules per suite) or full (the whole suites)")
	fs.StringVar(&sf.modules, "modules", "", "run these test modules (Python: test_X; Redis: unit/X, integration/X; NGINX: module/file.t, debian/tests/NAME, or with -suite-dir the checkout's FILE.t) instead of the profile's, comma-separated; an unknown name is a usage error")
	fs.StringVar(&sf.pythonBuild, "python-build", "", "python.wasm build directory (default: the newest under the cache; make images builds it)")
	fs.StringVar(&sf.redisBuild, "redis-build", "", "redis-server.wasm build directory (default: the newest under the cache)")
	fs.StringVar(&sf.nginxBuild, "nginx-build", "", "nginx.wasm build directory (default: the newest under the cache)")
	fs.StringVar(&sf.suiteDir, "suite-dir", "", "nginx: run the nginx-tests checkout in DIR (upstream's Perl suite, a commit contemporary with nginx 1.22) instead of the module suites and autopkgtests; -profile does not apply, all its top-level .t files run unless -modules names some")
	fs.IntVar(&sf.redisDiff, "redis-differential", 3, "seeded command streams each Redis server also answers beside the host's redis-server (0: none)")
	fs.IntVar(&opts.Parallel, "parallel", 2, "test modules run at once per target")
	fs.DurationVar(&opts.Timeout, "timeout", 0, "limit for one test module (default: 20m, the suite's own where it needs longer)")
	fs.BoolVar(&opts.Rerun, "rerun", true, "rerun failed tests once to tell flaky ones")
	shardFlag := fs.String("shard", "", "run shard i of n (i/n, such as 2/3) of every suite's units, balanced by -timings; merge the shards' -out directories with compat merge")
	timings := fs.String("timings", filepath.Join(root.CacheRoot(), "timings.json"), "recorded unit times: read to balance -shard, updated by every run that is not a shard (give every shard of a run the same file)")
	quiet := fs.Bool("quiet", false, "no progress line per unit, no heartbeat: only what each suite and target ran and found (CI logs)")
	history := fs.String("history", "", "directory that keeps each run's totals: summary.md and report.html show the trend over the last runs")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return usageError(fs, err)
	}
	var shard pipeline.Shard
	if *shardFlag != "" {
		var err error
		if shard, err = pipeline.ParseShard(*shardFlag); err != nil {
			return fail(stderr, err)
		}
	}
	if *reference != "docker" && *reference != "local" {
		return fail(stderr, fmt.Errorf("-reference %q: want docker or local", *reference))
	}
	kinds := split(*targets)
	for _, k := range kinds {
		if k != "vkernel" && k != "reference" {
			return fail(stderr, fmt.Errorf("-target %q: want vkernel and/or reference", k))
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fail(stderr, fmt.Errorf("finding the compat executable for the vkernel's processes: %w", err))
	}
	cfg := pipeline.Config{Targets: kinds, Reference: *reference, Out: *out, Baselines: *baselineDir, Cache: root.CacheRoot(), Key: *key,
		Exec: []string{self, "exec"}, Options: opts, Log: stdout, Shard: shard, Timings: *timings, History: *history, Quiet: *quiet}
	if img := os.Getenv("COMPAT_RUNNER_IMAGE"); img != "" {
		cfg.Properties = map[string]string{root.PropRunnerImage: img}
	}
	if !*quiet {
		// Long units (a Redis unit takes minutes) say they are alive.
		cfg.Options.Heartbeat = time.Minute
	}
	for _, name := range split(*suites) {
		s, err := newSuite(name, sf)
		if err != nil {
			return fail(stderr, err)
		}
		cfg.Suites = append(cfg.Suites, s)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer docker.PurgeAll()
	start := time.Now()
	outcome, err := pipeline.Run(ctx, cfg)
	for _, f := range outcome.Files {
		fmt.Fprintf(stdout, "wrote %s\n", f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "compat run: %v\n", err)
		return exitUsage
	}
	n := outcome.Regressions()
	fmt.Fprintf(stdout, "compat run: %d regression(s) in %s%s\n", n, time.Since(start).Round(time.Second), partialNote(outcome))
	if n > 0 {
		return exitRegressions
	}
	return exitOK
}

func mergeCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("merge", "merge [-out DIR] [-baselines DIR] [-history DIR] SHARD_DIR...", stderr)
	out := fs.String("out", "out", "directory for the merged JUnit files, run JSON, summary.md and report.html")
	baselineDir := fs.String("baselines", "baselines", "directory of the baseline files")
	timings := fs.String("timings", filepath.Join(root.CacheRoot(), "timings.json"), "recorded unit times, updated from the merged run")
	history := fs.String("history", "", "directory that keeps each run's totals (as compat run -history): the merged run joins it")
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		return usageError(fs, err)
	}
	start := time.Now()
	outcome, err := pipeline.Merge(pipeline.MergeConfig{Shards: fs.Args(), Out: *out, Baselines: *baselineDir, Timings: *timings, History: *history, Log: stdout})
	for _, f := range outcome.Files {
		fmt.Fprintf(stdout, "wrote %s\n", f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "compat merge: %v\n", err)
		return exitUsage
	}
	n := outcome.Regressions()
	fmt.Fprintf(stdout, "compat merge: %d shard(s), %d regression(s) in %s%s\n", fs.NArg(), n, time.Since(start).Round(time.Millisecond), partialNote(outcome))
	if n > 0 {
		return exitRegressions
	}
	return exitOK
}

// partialNote says, after the verdict, that the run is partial: how many
// units did not run to their end ("" for a complete run).
func partialNote(o *pipeline.Outcome) string {
	n := 0
	for _, r := range o.Runs {
		n += len(r.Incomplete)
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (partial: %d unit(s) did not run to their end; see summary.md)", n)
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func baselineCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "update" {
		fmt.Fprint(stderr, "usage: compat baseline update [-out DIR] [-baselines DIR] [-suite S] [-target T]\n")
		return exitUsage
	}
	fs := newFlags("baseline update", "baseline update [-out DIR] [-baselines DIR] [-suite S,...] [-target vkernel,reference]", stderr)
	out := fs.String("out", "out", "directory of the run to take expectations from")
	baselineDir := fs.String("baselines", "baselines", "directory of the baseline files")
	suites := fs.String("suite", "", "suites, comma-separated (default: every suite the run in -out wrote)")
	targets := fs.String("target", "vkernel,reference", "targets, comma-separated")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		return usageError(fs, err)
	}
	names := split(*suites)
	if len(names) == 0 {
		var err error
		if names, err = suitesWritten(*out, split(*targets)); err != nil {
			return fail(stderr, err)
		}
	}
	updated := 0
	for _, s := range names {
		for _, t := range split(*targets) {
			changes, path, err := pipeline.UpdateBaseline(*out, *baselineDir, s, t)
			if errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(stderr, "compat: %v: no run of %s on %s in %s (run compat run first)\n", err, s, t, *out)
				continue
			}
			if err != nil {
				return fail(stderr, err)
			}
			updated++
			fmt.Fprintf(stdout, "%s: %d change(s)\n", path, len(changes))
			for _, c := range changes {
				fmt.Fprintf(stdout, "  %s\n", c)
			}
		}
	}
	if updated == 0 {
		return fail(stderr, fmt.Errorf("no run found in %s", *out))
	}
	fmt.Fprintln(stdout, "review the changes with git diff, and give every non-pass a real reason before committing")
	return exitOK
}

// suitesWritten lists the suites of which out holds a run (SUITE-TARGET.json)
// on any of targets, sorted: after compat run, every suite it ran.
func suitesWritten(out string, targets []string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(out, "*.json"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".json")
		for _, t := range targets {
			if suite, ok := strings.CutSuffix(base, "-"+t); ok && suite != "" && !slices.Contains(names, suite) {
				names = append(names, suite)
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no run found in %s (no SUITE-TARGET.json for targets %s; run compat run first)", out, strings.Join(targets, ", "))
	}
	slices.Sort(names)
	return names, nil
}
