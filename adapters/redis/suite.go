package redis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/runners/local"
	vkrunner "github.com/compat-project/compat/runners/vkernel"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// Build is a redis-server.wasm build made by images/redis/build-wasm.sh: a
// directory holding redis-server.wasm, suite/ (runtest and tests/ of the
// same source) and build-info.json.
type Build struct {
	Dir string
	// Version is the Debian source version it was built from, such as
	// "5:7.0.15-1~deb12u10".
	Version string
}

// OpenBuild opens a build directory, reading its build-info.json.
func OpenBuild(dir string) (*Build, error) {
	v, err := wasmbuild.SourceVersion(dir)
	if err != nil {
		return nil, fmt.Errorf("redis-server.wasm build: %w", err)
	}
	b := &Build{Dir: dir, Version: v}
	for _, f := range []string{b.Wasm(), filepath.Join(b.SuiteDir(), "tests", "test_helper.tcl")} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("redis-server.wasm build %s: %w (run: make images)", dir, err)
		}
	}
	return b, nil
}

// LatestBuild opens the newest complete build under a cache root
// (CACHE/redis-wasm/KEY).
func LatestBuild(cache string) (*Build, error) {
	dir, err := wasmbuild.Latest(cache, "redis-wasm")
	if err != nil {
		return nil, fmt.Errorf("redis-server.wasm: %w", err)
	}
	return OpenBuild(dir)
}

// Wasm is the server module.
func (b *Build) Wasm() string { return filepath.Join(b.Dir, "redis-server.wasm") }

// SuiteDir holds the Tcl suite (Options.Suite).
func (b *Build) SuiteDir() string { return filepath.Join(b.Dir, "suite") }

// ReferenceImage is the Docker image of Debian's native redis-server of
// the same version (images/redis/build-image.sh): the tag is the version
// without its epoch, '+' and '~' made '_'.
func (b *Build) ReferenceImage() string {
	v := b.Version
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	return "compat/redis-reference:" + strings.NewReplacer("+", "_", "~", "_").Replace(v)
}

// MaxListeners is how many listening sockets an instance may be handed:
// TCP on each bind address and a unix socket.
const MaxListeners = 8

// Entry is the megabinary entry for the build: redis-server.wasm, reached
// also through the hash of the host's native /usr/bin/redis-server when
// present, with any mount (its working directory), up to MaxListeners
// listeners and outgoing connections to loopback (replication).
func (b *Build) Entry() megabinary.SpecEntry {
	e := megabinary.SpecEntry{
		Name:  "redis-server",
		Wasm:  b.Wasm(),
		Paths: []string{"/usr/bin/redis-server"},
		Resources: megabinary.Resources{
			Mounts:    []megabinary.MountRule{{Guest: "/"}},
			Listeners: MaxListeners,
			Connect:   []string{"127.0.0.0/8", "::1/128"},
		},
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		e.AliasFiles = []string{"/usr/bin/redis-server"}
	}
	return e
}

// Harness runs Redis' suite on the targets of one comparison.
type Harness struct {
	Build *Build
	Units []string
	// Parallel is how many units (each with its own server) run at once
	// on each target.
	Parallel int
	// Timeout bounds one unit.
	Timeout time.Duration
	// Differential is how many seeded command streams (seeds 1..N, see
	// Differential) each target's server also answers beside the host's
	// own redis-server; 0 runs none. Results are in unit "differential";
	// without a host redis-server they are skips.
	Differential int
	// DiffCount bounds each stream; default 5,000 commands.
	DiffCount int
	// Spawn lists the units that run in spawn mode (runtest starts their
	// servers, see RunSpawn), after Units in external mode.
	Spawn []string
	// SpawnTimeout bounds one spawn-mode unit; default 20 minutes.
	SpawnTimeout time.Duration
	// Shim is the command that runs ShimMain with argv after it; default
	// {this executable, "redis-shim"}.
	Shim []string
	// Cache is the cache root (AOT code of the shim's megabinary).
	Cache string
}

// SpawnMegabinaryProp is the run property that holds the digest of the
// megabinary the vkernel's spawn-mode servers ran from.
const SpawnMegabinaryProp = "spawn." + compat.PropMegabinaryDigest

// refWork is where a reference container sees the target's scratch
// directory.
const refWork = "/compat-work"

// Name implements the pipeline's suite: "redis".
func (s *Harness) Name() string { return Suite }

// Entries are the megabinary entries the vkernel target needs.
func (s *Harness) Entries() []megabinary.SpecEntry { return []megabinary.SpecEntry{s.Build.Entry()} }

// Target starts the named target for this suite: "vkernel" (the kernel
// serves redis-server.wasm with scratch/root as its root and working
// directory), or "reference" run by Docker (reference "docker": a
// container per unit, in the host's network) or on the host ("local": /usr/bin/redis-server with
// scratch/data as its directory). The suite reads nothing back from the
// targets: the returned mount is scratch itself.
func (s *Harness) Target(ctx context.Context, kind string, k *vkernel.Kernel, reference, scratch string) (runners.Target, runners.Mount, error) {
	work := runners.Mount{Host: scratch, Guest: scratch}
	props := map[string]string{compat.PropVersionPrefix + "redis": s.Build.Version}
	switch {
	case kind == "vkernel":
		root := filepath.Join(scratch, "root")
		if err := os.MkdirAll(root, 0o777); err != nil {
			return nil, work, err
		}
		t, err := vkrunner.New(vkrunner.Options{
			Kernel:     k,
			Mounts:     []runners.Mount{{Host: root, Guest: "/"}},
			Programs:   map[string]string{"redis-server": s.Build.Wasm()},
			Properties: props,
		})
		return t, work, err
	case kind == "reference" && reference == "docker":
		work.Guest = refWork
		t, err := docker.New(ctx, docker.Options{Name: "reference", Image: s.Build.ReferenceImage(), Properties: props, HostNetwork: true,
			Mounts: []runners.Mount{work}})
		return t, work, err
	case kind == "reference" && reference == "local":
		if _, err := exec.LookPath("redis-server"); err != nil {
			return nil, work, fmt.Errorf("local reference: redis-server is not installed (apt-get install redis-server): %w", err)
		}
		t, err := local.New(local.Options{Name: "reference", Properties: props})
		return t, work, err
	}
	return nil, work, fmt.Errorf("redis: unknown target %q (reference %q)", kind, reference)
}

// Run runs the suite's units on t, reporting each finished unit to
// progress as one line.
func (s *Harness) Run(ctx context.Context, t runners.Target, work runners.Mount, progress func(string)) (compat.Run, error) {
	opts := Options{
		Suite:    s.Build.SuiteDir(),
		Units:    s.Units,
		Server:   []string{"redis-server"},
		Parallel: s.Parallel,
		Timeout:  s.Timeout,
		Progress: func(p Progress) {
			if progress == nil {
				return
			}
			line := fmt.Sprintf("%s %d/%d: pass %d, fail %d, error %d, skip %d (%s)", p.Unit, p.Done, p.Total,
				p.Counts.Pass, p.Counts.Fail, p.Counts.Error, p.Counts.Skip, p.Elapsed.Round(10*time.Millisecond))
			if p.Err != nil {
				line += ": " + p.Err.Error()
			}
			progress(line)
		},
	}
	if _, ok := t.(*local.Target); ok {
		// The host's server writes its files (dump.rdb...) to scratch,
		// not to the current directory.
		data := filepath.Join(work.Host, "data")
		if err := os.MkdirAll(data, 0o777); err != nil {
			return compat.Run{}, err
		}
		opts.ServerArgs = []string{"--dir", data}
	}
	run := compat.Run{Suite: Suite, Target: t.Name(), Start: time.Now(), Properties: t.Properties()}
	var err error
	if len(s.Units) > 0 {
		run, err = Run(ctx, t, opts)
	}
	if len(s.Spawn) > 0 && ctx.Err() == nil {
		spawned, serr := s.runSpawn(ctx, t, work, &run, opts.Progress)
		run.Results = append(run.Results, spawned...)
		compat.SortResults(run.Results)
		err = errors.Join(err, serr)
	}
	if s.Differential > 0 && ctx.Err() == nil {
		start := time.Now()
		diff := s.differential(ctx, t, work)
		run.Results = append(run.Results, diff...)
		compat.SortResults(run.Results)
		if progress != nil {
			var c compat.Counts
			for _, r := range diff {
				c.Add(r)
			}
			progress(fmt.Sprintf("differential: pass %d, fail %d, error %d, skip %d (%s)", c.Pass, c.Fail, c.Error, c.Skip, time.Since(start).Round(10*time.Millisecond)))
		}
	}
	run.Duration = time.Since(run.Start)
	return run, err
}

// runSpawn runs s.Spawn in spawn mode where t's programs are: through the
// shim on the host for the vkernel target (a kernel of the shim's own per
// server: runtest starts servers as programs), in the reference container,
// or on the host for the local reference. On the vkernel the shim's
// megabinary, signed for the run, is not the pipeline's: run's properties
// get its digest as SpawnMegabinaryProp.
func (s *Harness) runSpawn(ctx context.Context, t runners.Target, work runners.Mount, run *compat.Run, progress func(Progress)) ([]compat.Result, error) {
	suite := filepath.Join(work.Host, "spawn-suite")
	opts := SpawnOptions{Dir: filepath.Join(work.Guest, "spawn-suite"), Units: s.Spawn, Timeout: s.SpawnTimeout, Progress: progress}
	fail := func(err error) ([]compat.Result, error) {
		var results []compat.Result
		for _, u := range s.Spawn {
			results = append(results, compat.Result{Suite: Suite, Unit: u, Test: u, Status: compat.Error, Message: err.Error()})
		}
		return results, err
	}
	runner := t
	var programs map[string]string
	switch t.(type) {
	case *vkrunner.Target:
		self := s.Shim
		if len(self) == 0 {
			exe, err := os.Executable()
			if err != nil {
				return fail(fmt.Errorf("redis: finding the compat executable for the shim: %w", err))
			}
			self = []string{exe, "redis-shim"}
		}
		dir := filepath.Join(work.Host, "shim")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(err)
		}
		vkPrograms, digest, err := VkernelPrograms(dir, s.Build, self, s.Cache)
		if err != nil {
			return fail(err)
		}
		programs = vkPrograms
		props := map[string]string{SpawnMegabinaryProp: digest}
		for k, v := range run.Properties {
			props[k] = v
		}
		run.Properties = props
		lt, err := local.New(local.Options{Name: t.Name(), Properties: t.Properties()})
		if err != nil {
			return fail(err)
		}
		defer lt.Close()
		runner = lt
		opts.Dir = suite
	case *docker.Target, *local.Target:
		programs = NativePrograms("/usr/bin")
	default:
		return fail(fmt.Errorf("redis: spawn mode cannot run on target %s (%T)", t.Name(), t))
	}
	if err := PrepareSuite(suite, s.Build.SuiteDir(), programs); err != nil {
		return fail(err)
	}
	return RunSpawn(ctx, runner, opts)
}

// differential serves one server on t and one on the host (Debian's
// redis-server, the same revision as the reference) and compares their
// replies to s.Differential seeded streams, leaving out KnownDivergences.
func (s *Harness) differential(ctx context.Context, t runners.Target, work runners.Mount) []compat.Result {
	var results []compat.Result
	each := func(status compat.Status, msg string) []compat.Result {
		for seed := 1; seed <= s.Differential; seed++ {
			results = append(results, compat.Result{Suite: Suite, Unit: "differential",
				Test: fmt.Sprintf("differential: seed %d", seed), Status: status, Message: msg})
		}
		return results
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return each(compat.Skip, "no redis-server on the host to compare with (apt-get install redis-server)")
	}
	host, err := local.New(local.Options{Name: "differential"})
	if err != nil {
		return each(compat.Error, err.Error())
	}
	defer host.Close()
	serve := func(srv runners.Server, cmd []string, extra ...string) (*runners.Service, error) {
		svc, err := srv.Serve(ctx, 1, func(ports []int) runners.Process {
			args := append(append([]string(nil), cmd...), "--port", strconv.Itoa(ports[0]))
			return runners.Process{Args: append(append(args, ServerArgs...), extra...)}
		})
		if err != nil {
			return nil, err
		}
		if err := waitReady(ctx, svc, svc.Addrs()[0], 30*time.Second); err != nil {
			svc.Close()
			return nil, err
		}
		return svc, nil
	}
	dir := func(name string) string {
		d := filepath.Join(work.Host, name)
		os.MkdirAll(d, 0o777)
		return d
	}
	a, err := serve(host, []string{bin}, "--dir", dir("differential-host"))
	if err != nil {
		return each(compat.Error, "host redis-server: "+err.Error())
	}
	defer a.Close()
	var extra []string
	if _, ok := t.(*local.Target); ok {
		extra = []string{"--dir", dir("differential-data")}
	}
	b, err := serve(t.(runners.Server), []string{"redis-server"}, extra...)
	if err != nil {
		return each(compat.Error, t.Name()+" redis-server: "+err.Error())
	}
	defer b.Close()
	count := s.DiffCount
	if count <= 0 {
		count = 5000
	}
	for seed := 1; seed <= s.Differential; seed++ {
		rep, err := Differential(ctx, a.Addrs()[0], b.Addrs()[0], DiffOptions{Seed: uint64(seed), Count: count, Timeout: time.Minute, Leave: KnownDivergences})
		r := rep.Result()
		if err != nil {
			r.Status, r.Message = compat.Error, err.Error()
		}
		results = append(results, r)
	}
	return results
}
