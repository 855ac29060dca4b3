package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/compat-project/compat/adapters/python"
	"github.com/compat-project/compat/adapters/redis"
	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/runners/pipeline"
)

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "run [-suite python,redis] [-target vkernel,reference] [-reference docker|local] [-profile quick|full] [-out DIR]", stderr)
	suites := fs.String("suite", "python", "suites to run, comma-separated (python, redis)")
	targets := fs.String("target", "vkernel,reference", "targets, comma-separated: vkernel, reference")
	reference := fs.String("reference", "docker", "how the reference runs: docker (a dockertest container) or local (the host's own build)")
	profile := fs.String("profile", "quick", "quick (a dozen modules) or full (the whole suite)")
	modules := fs.String("modules", "", "run these test modules (Redis: units) instead of the profile's, comma-separated")
	out := fs.String("out", "out", "directory for JUnit files, run JSON and summary.md")
	baselineDir := fs.String("baselines", "baselines", "directory of the baseline files")
	key := fs.String("key", "", "private key to sign the run's megabinary (default: one generated for the run)")
	pythonBuild := fs.String("python-build", "", "python.wasm build directory (default: the newest under the cache; make images builds it)")
	redisBuild := fs.String("redis-build", "", "redis-server.wasm build directory (default: the newest under the cache; make images builds it)")
	redisDiff := fs.Int("redis-differential", 3, "seeded command streams each Redis server also answers beside the host's redis-server (0: none)")
	parallel := fs.Int("parallel", 2, "test modules run at once per target")
	timeout := fs.Duration("timeout", 20*time.Minute, "limit for one test module")
	rerun := fs.Bool("rerun", true, "rerun failed tests once to tell flaky ones")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
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
	cfg := pipeline.Config{Targets: kinds, Reference: *reference, Out: *out, Baselines: *baselineDir, Cache: cacheRoot(), Key: *key, Log: stdout}
	for _, name := range split(*suites) {
		switch name {
		case "python":
			build, err := pythonBuildDir(*pythonBuild)
			if err != nil {
				return fail(stderr, err)
			}
			mods := split(*modules)
			if len(mods) == 0 {
				if mods, err = python.Profile(*profile, build.LibTest()); err != nil {
					return fail(stderr, err)
				}
			}
			cfg.Suites = append(cfg.Suites, &python.Harness{Build: build, Modules: mods, Parallel: *parallel, Timeout: *timeout, Rerun: *rerun})
		case "redis":
			build, err := redisBuildDir(*redisBuild)
			if err != nil {
				return fail(stderr, err)
			}
			units := split(*modules)
			if len(units) == 0 {
				if units, err = redis.Profile(*profile, build.SuiteDir()); err != nil {
					return fail(stderr, err)
				}
			}
			cfg.Suites = append(cfg.Suites, &redis.Harness{Build: build, Units: units, Parallel: *parallel, Timeout: *timeout, Differential: *redisDiff})
		default:
			return fail(stderr, fmt.Errorf("-suite %q: unknown suite (known: python, redis)", name))
		}
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
	fmt.Fprintf(stdout, "compat run: %d regression(s) in %s\n", n, time.Since(start).Round(time.Second))
	if n > 0 {
		return exitRegressions
	}
	return exitOK
}

func pythonBuildDir(dir string) (*python.Build, error) {
	if dir != "" {
		return python.OpenBuild(dir)
	}
	return python.LatestBuild(cacheRoot())
}

func redisBuildDir(dir string) (*redis.Build, error) {
	if dir != "" {
		return redis.OpenBuild(dir)
	}
	return redis.LatestBuild(cacheRoot())
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
	fs := newFlags("baseline update", "baseline update [-out DIR] [-baselines DIR] [-suite python] [-target vkernel,reference]", stderr)
	out := fs.String("out", "out", "directory of the run to take expectations from")
	baselineDir := fs.String("baselines", "baselines", "directory of the baseline files")
	suites := fs.String("suite", "python", "suites, comma-separated")
	targets := fs.String("target", "vkernel,reference", "targets, comma-separated")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	updated := 0
	for _, s := range split(*suites) {
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
