package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/compat-project/compat/adapters/nginx"
	"github.com/compat-project/compat/adapters/python"
	"github.com/compat-project/compat/adapters/redis"
	"github.com/compat-project/compat/runners/pipeline"
)

// suiteFlags are compat run's per-suite settings.
type suiteFlags struct {
	profile, modules                    string
	pythonBuild, redisBuild, nginxBuild string
	suiteDir                            string
	redisDiff, parallel                 int
	timeout                             time.Duration
	rerun                               bool
}

// newSuite opens the named suite's build and picks its tests.
func newSuite(name string, f suiteFlags) (pipeline.Suite, error) {
	tests := split(f.modules)
	switch name {
	case "python":
		build, err := python.LatestBuild(cacheRoot())
		if f.pythonBuild != "" {
			build, err = python.OpenBuild(f.pythonBuild)
		}
		if err != nil {
			return nil, err
		}
		if len(tests) == 0 {
			if tests, err = python.Profile(f.profile, build.LibTest()); err != nil {
				return nil, err
			}
		}
		return &python.Harness{Build: build, Modules: tests, Parallel: f.parallel, Timeout: f.timeout, Rerun: f.rerun}, nil
	case "redis":
		build, err := redis.LatestBuild(cacheRoot())
		if f.redisBuild != "" {
			build, err = redis.OpenBuild(f.redisBuild)
		}
		if err != nil {
			return nil, err
		}
		var spawn []string
		if len(tests) == 0 {
			if tests, spawn, err = redis.Profile(f.profile, build.SuiteDir()); err != nil {
				return nil, err
			}
		} else {
			// integration/* units need servers of their own: spawn mode.
			var external []string
			for _, t := range tests {
				if strings.HasPrefix(t, "integration/") {
					spawn = append(spawn, t)
				} else {
					external = append(external, t)
				}
			}
			tests = external
		}
		return &redis.Harness{Build: build, Units: tests, Spawn: spawn, Parallel: f.parallel, Timeout: f.timeout,
			Differential: f.redisDiff, Cache: cacheRoot()}, nil
	case "nginx":
		build, err := nginx.LatestBuild(cacheRoot())
		if f.nginxBuild != "" {
			build, err = nginx.OpenBuild(f.nginxBuild)
		}
		if err != nil {
			return nil, err
		}
		s := &nginx.Suite{Build: build, Cache: cacheRoot(), Timeout: f.timeout, Files: tests}
		switch {
		case f.suiteDir != "":
			s.Harness, s.Dir = nginx.HarnessNginxTests, f.suiteDir
			if len(s.Files) == 0 {
				s.Files, err = nginx.NginxTestsFiles(f.suiteDir)
			}
		case len(s.Files) == 0:
			if s.Files, err = build.Files(f.profile); err == nil {
				s.DebianTests, err = build.DebianTestNames(f.profile)
			}
		default:
			// debian/tests/NAME names one of Debian's autopkgtests.
			var files []string
			for _, t := range s.Files {
				if name, ok := strings.CutPrefix(t, nginx.DebianTestsUnit+"/"); ok {
					s.DebianTests = append(s.DebianTests, name)
				} else {
					files = append(files, t)
				}
			}
			s.Files = files
			err = known(s.Files, s.DebianTests, build)
		}
		return s, err
	}
	return nil, fmt.Errorf("-suite %q: unknown suite (known: python, redis, nginx)", name)
}

// nginxShim is the verb Test::Nginx and nginx-tests run as nginx
// (TEST_NGINX_BINARY): it runs nginx.wasm in the vkernel with nginx's own
// command line.
func nginxShim(args []string, stdout, stderr io.Writer) int {
	// The shim starts itself again for "daemon on": by the name it was
	// started under, when that is a path, so that a link named nginx
	// (Debian's autopkgtests find the service by that name) stays nginx.
	exe := os.Args[0]
	if !strings.Contains(exe, "/") {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fail(stderr, err)
		}
	}
	return nginx.ShimMain([]string{exe, "nginx-shim"}, args, stdout, stderr)
}

// redisShim is the verb the Redis suite runs as src/redis-server,
// src/redis-check-aof and src/redis-check-rdb in spawn mode: it runs
// redis-server.wasm in the vkernel with the command line after it, argv[0]
// first.
func redisShim(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return fail(stderr, errors.New("usage: compat redis-shim redis-server|redis-check-aof|redis-check-rdb [ARG ...]"))
	}
	return redis.ShimMain(args, stdout, stderr)
}

// known checks that every named NGINX test file is one of the build's.
func known(files, debianTests []string, build *nginx.Build) error {
	all, err := build.Files("full")
	if err != nil {
		return err
	}
	for _, f := range files {
		if !slices.Contains(all, f) {
			return fmt.Errorf("nginx: no test file %q in the build (files are named like %q)", f, all[0])
		}
	}
	if len(debianTests) == 0 {
		return nil
	}
	names, err := build.DebianTestNames("full")
	if err != nil {
		return err
	}
	for _, t := range debianTests {
		if !slices.Contains(names, t) {
			return fmt.Errorf("nginx: no autopkgtest %q in the build's debian/tests (there are: %s)", t, strings.Join(names, ", "))
		}
	}
	return nil
}
