package main

import (
	root "github.com/compat-project/compat"

	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/compat-project/compat/adapters/nginx"
	"github.com/compat-project/compat/adapters/python"
	"github.com/compat-project/compat/adapters/redis"
	"github.com/compat-project/compat/runners"
)

// suiteFlags are compat run's per-suite settings.
type suiteFlags struct {
	profile, modules                    string
	pythonBuild, redisBuild, nginxBuild string
	suiteDir                            string
	redisDiff                           int
}

// newSuite opens the named suite's build; the suite picks its units from
// the profile or the -modules list.
func newSuite(name string, f suiteFlags) (runners.Suite, error) {
	cfg := func(build string) runners.SuiteConfig {
		return runners.SuiteConfig{Build: build, Cache: root.CacheRoot(), Profile: f.profile, Units: split(f.modules)}
	}
	switch name {
	case python.Name:
		return python.New(cfg(f.pythonBuild))
	case redis.Name:
		return redis.New(redis.Options{SuiteConfig: cfg(f.redisBuild), Differential: f.redisDiff})
	case nginx.Name:
		return nginx.New(nginx.Options{SuiteConfig: cfg(f.nginxBuild), NginxTests: f.suiteDir})
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
