package redis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/prepare"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/runners/local"
	"github.com/compat-project/compat/runners/vktarget"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// Options says which build and which units a Suite runs.
type Options struct {
	// SuiteConfig names the build, a directory made by
	// images/redis/build-wasm.sh (redis-server.wasm, suite/ with runtest
	// and tests/ of the same source, build-info.json), and picks the
	// units: a profile (see Profile) or units, where unit/* entries run in
	// external mode, integration/* entries in spawn mode.
	runners.SuiteConfig
	// Differential is how many seeded command streams (seeds 1..N, see
	// Differential) each target's server also answers beside the host's
	// own redis-server, as the last unit, "differential"; 0 runs none.
	Differential int
}

// The kinds of unit a Suite runs (runners.Unit.Kind); external mode is the
// plain kind.
const (
	// KindSpawn units run in spawn mode: runtest starts their servers.
	KindSpawn = "spawn"
	// KindDifferential is the differential check's unit.
	KindDifferential = "differential"
)

// DifferentialUnit is the unit of the differential check's results.
const DifferentialUnit = "differential"

// SpawnTimeout bounds one spawn-mode unit: it starts several servers,
// replicas among them, and waits out their handshakes and reloads, so it
// gets longer than the pipeline's default.
const SpawnTimeout = 30 * time.Minute

// Suite runs Redis' Tcl suite: the runners.Suite of "compat run -suite
// redis".
type Suite struct {
	build *wasmbuild.Build
	units []runners.Unit
	// diffSeeds is Options.Differential; diffCount bounds each stream
	// (default 5,000 commands).
	diffSeeds, diffCount int

	// For tests: the suite directory (default the build's suite/), extra
	// test_helper.tcl arguments, and the command that runs ShimMain
	// (default this executable's redis-shim verb).
	suiteDir string
	args     []string
	shim     []string
}

// New opens the build and picks the units: each unit/* entry in external
// mode, each integration/* entry in spawn mode, and the differential check
// last.
func New(opts Options) (*Suite, error) {
	b, err := wasmbuild.OpenOrLatest(opts.Build, opts.Cache, wasmbuild.Redis)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(b.Path("suite", "tests", "test_helper.tcl")); err != nil {
		return nil, fmt.Errorf("redis-server.wasm build %s has no suite: %w (rebuild it: make -f images/images.mk redis-wasm)", b.Dir, err)
	}
	names := opts.Units
	if len(names) == 0 {
		external, spawn, err := Profile(opts.Profile, b.Path("suite"))
		if err != nil {
			return nil, err
		}
		names = append(external, spawn...)
	} else if err := knownUnits(b.Path("suite"), names); err != nil {
		return nil, err
	}
	s := &Suite{build: b, diffSeeds: opts.Differential}
	s.units = selectUnits(names, opts.Differential > 0)
	return s, nil
}

// knownUnits checks that every name is a unit of the suite in dir: an
// entry of its ::all_tests, a tests/NAME.tcl file (runtest --single runs
// any) or DifferentialUnit.
func knownUnits(dir string, names []string) error {
	all, err := allTests(dir)
	if err != nil {
		return err
	}
	return runners.UnknownUnits(Name, names, func(n string) bool {
		if n == DifferentialUnit || slices.Contains(all, n) {
			return true
		}
		fi, err := os.Stat(filepath.Join(dir, "tests", filepath.FromSlash(n)+".tcl"))
		return err == nil && !fi.IsDir() && filepath.IsLocal(n)
	}, `units are named like "unit/type/list", "integration/rdb" or "`+DifferentialUnit+`"`)
}

// selectUnits gives each named unit its kind, external units first, then
// spawn-mode ones, then the differential check when wanted, keeping the
// order within each.
func selectUnits(names []string, differential bool) []runners.Unit {
	var external, spawn []runners.Unit
	for _, n := range names {
		switch {
		case n == DifferentialUnit:
			differential = true
		case strings.HasPrefix(n, "integration/"):
			// runtest starts these units' servers itself, replicas
			// and restarts included: spawn mode.
			spawn = append(spawn, runners.Unit{Name: n, Kind: KindSpawn})
		default:
			external = append(external, runners.Unit{Name: n})
		}
	}
	units := append(external, spawn...)
	if differential {
		units = append(units, runners.Unit{Name: DifferentialUnit, Kind: KindDifferential})
	}
	return units
}

// MaxListeners is how many listening sockets an instance may be handed:
// TCP on each bind address and a unix socket.
const MaxListeners = 8

// MaxProcesses is how many child processes an instance may have at once:
// Redis forks one background child at a time (BGSAVE, BGREWRITEAOF, a
// diskless sync), plus one per forked Lua debugging session.
const MaxProcesses = 8

// entry is the megabinary entry for b: redis-server.wasm, reached also
// through the hash of the host's native /usr/bin/redis-server when
// present, with any mount (its working directory), up to MaxListeners
// listeners, outgoing connections to loopback (replication) and up to
// MaxProcesses forked children.
func entry(b *wasmbuild.Build) megabinary.SpecEntry {
	e := megabinary.SpecEntry{
		Name:  "redis-server",
		Wasm:  b.Wasm(),
		Paths: []string{"/usr/bin/redis-server"},
		Resources: megabinary.Resources{
			Mounts:    []megabinary.MountRule{{Guest: "/"}},
			Listeners: MaxListeners,
			Connect:   []string{"127.0.0.0/8", "::1/128"},
			Processes: MaxProcesses,
		},
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		e.AliasFiles = []string{"/usr/bin/redis-server"}
	}
	return e
}

// Name implements runners.Suite: "redis".
func (s *Suite) Name() string { return Name }

// Entries implements runners.Suite.
func (s *Suite) Entries() []megabinary.SpecEntry { return []megabinary.SpecEntry{entry(s.build)} }

// Plan implements runners.Suite. External units run in parallel, a server
// each; spawn-mode units one at a time (runtest takes a range of ports for
// its servers) with SpawnTimeout.
func (s *Suite) Plan() runners.Plan {
	return runners.Plan{Units: s.units, Kinds: map[string]runners.Kind{
		KindSpawn:        {Timeout: SpawnTimeout, Serial: true},
		KindDifferential: {Serial: true},
	}}
}

// SpawnMegabinaryProp is the run property that holds the digest of the
// megabinary the vkernel's spawn-mode servers ran from: the pipeline's,
// the same as compat.PropMegabinaryDigest.
const SpawnMegabinaryProp = "spawn." + compat.PropMegabinaryDigest

// refWork is where a reference container sees the session's scratch
// directory.
const refWork = "/compat-work"

// session runs units on one target.
type session struct {
	suite  *Suite
	spec   runners.TargetSpec
	target runners.Target
	// server serves the external-mode units' servers: target itself, as
	// every target Open makes can serve.
	server runners.Server
	// serverArgs follow ServerArgs: the local reference's data
	// directory.
	serverArgs []string
	// suiteDir is the suite the host's runtest runs (external mode).
	suiteDir string
	// spawnTarget runs runtest in spawn mode in spawnDir, the working
	// copy of the suite as spawnTarget sees it.
	spawnTarget runners.Target
	spawnDir    string
	props       map[string]string
}

// Open implements runners.Suite. External mode serves redis-server on the
// target: the pipeline's kernel (vkernel), the reference image in the
// host's network, a container per unit (docker), or the host's
// /usr/bin/redis-server (local). Spawn mode runs runtest where the target's
// programs are: on the host with src/ holding the shim scripts (vkernel),
// in the reference container, or on the host with Debian's binaries.
func (s *Suite) Open(ctx context.Context, spec runners.TargetSpec) (runners.Session, error) {
	ss := &session{suite: s, spec: spec, suiteDir: s.suiteDir,
		props: map[string]string{compat.PropVersionPrefix + "redis": s.build.Version}}
	if ss.suiteDir == "" {
		ss.suiteDir = s.build.Path("suite")
	}
	if _, err := exec.LookPath(tclsh); err != nil {
		return nil, fmt.Errorf("redis: %s not found (apt-get install tcl): %w", tclsh, err)
	}
	spawnCopy := filepath.Join(spec.Scratch, "spawn-suite")
	programs := NativePrograms("/usr/bin")
	switch {
	case spec.Kind == runners.Vkernel:
		root := filepath.Join(spec.Scratch, "root")
		if err := os.MkdirAll(root, 0o777); err != nil {
			return nil, err
		}
		t, err := vktarget.New(vktarget.Options{
			Kernel:     spec.Kernel,
			Mounts:     []runners.Mount{{Host: root, Guest: "/"}},
			Programs:   map[string]string{"redis-server": s.build.Wasm()},
			Properties: ss.props,
			Megabinary: spec.Megabinary, PublicKey: spec.PublicKey,
			Exec: spec.Exec, Cache: spec.Cache, Entries: []string{entry(s.build).Name},
		})
		if err != nil {
			return nil, err
		}
		ss.target, ss.server = t, t
		if s.has(KindSpawn) {
			if programs, err = s.shimPrograms(spec); err != nil {
				return nil, err
			}
			ss.props[SpawnMegabinaryProp] = spec.Kernel.Digest()
			if ss.spawnTarget, err = local.New(local.Options{Name: spec.Kind}); err != nil {
				return nil, err
			}
		}
		ss.spawnDir = spawnCopy
	case spec.Reference == runners.Docker:
		t, err := docker.New(ctx, docker.Options{Name: runners.Reference, Image: s.build.ReferenceImage(), Properties: ss.props,
			HostNetwork: true, Mounts: []runners.Mount{{Host: spec.Scratch, Guest: refWork}}})
		if err != nil {
			return nil, err
		}
		ss.target, ss.server, ss.spawnTarget = t, t, t
		ss.spawnDir = filepath.Join(refWork, "spawn-suite")
	default:
		if _, err := exec.LookPath("redis-server"); err != nil {
			return nil, fmt.Errorf("local reference: redis-server is not installed (apt-get install redis-server): %w", err)
		}
		// The host's server writes its files (dump.rdb...) to scratch,
		// not to the current directory.
		data, err := spec.Dir("data")
		if err != nil {
			return nil, err
		}
		t, err := local.New(local.Options{Name: runners.Reference, Properties: ss.props})
		if err != nil {
			return nil, err
		}
		ss.target, ss.server, ss.spawnTarget = t, t, t
		ss.serverArgs = []string{"--dir", data}
		ss.spawnDir = spawnCopy
	}
	if s.has(KindSpawn) {
		if err := PrepareSuite(spawnCopy, s.build.Path("suite"), programs); err != nil {
			ss.Close()
			return nil, err
		}
	}
	return ss, nil
}

// has reports whether the suite runs units of kind.
func (s *Suite) has(kind string) bool {
	for _, u := range s.units {
		if u.Kind == kind {
			return true
		}
	}
	return false
}

// shimPrograms writes the spawn-mode scripts that run the shim, on the
// pipeline's megabinary, into the scratch directory of spec.
func (s *Suite) shimPrograms(spec runners.TargetSpec) (map[string]string, error) {
	self, err := prepare.Self(s.shim, "redis-shim")
	if err != nil {
		return nil, err
	}
	dir, err := spec.Dir("shim")
	if err != nil {
		return nil, err
	}
	return VkernelPrograms(dir, s.build, self, spec)
}

// Properties implements runners.Session.
func (ss *session) Properties() map[string]string {
	props := ss.target.Properties()
	for k, v := range ss.props {
		props[k] = v
	}
	return props
}

// Run implements runners.Session: the unit in its mode. Redis units do not
// rerun single tests (their kinds have no Rerun): tests is empty.
func (ss *session) Run(ctx context.Context, u runners.Unit, tests []string) runners.Report {
	switch u.Kind {
	case KindSpawn:
		return ss.runSpawn(ctx, u.Name)
	case KindDifferential:
		return ss.differential(ctx)
	}
	return ss.runExternal(ctx, u.Name)
}

// Close implements runners.Session.
func (ss *session) Close() error {
	err := ss.target.Close()
	if ss.spawnTarget != nil && ss.spawnTarget != ss.target {
		ss.spawnTarget.Close()
	}
	return err
}

// differential serves one server on the target and one on the host
// (Debian's redis-server, the same revision as the reference) and compares
// their replies to the suite's seeded streams, leaving out
// KnownDivergences.
func (ss *session) differential(ctx context.Context) (rep runners.Report) {
	s := ss.suite
	rep.Command = "(compat run -suite redis -modules differential: no server was started)"
	each := func(status compat.Status, msg string) runners.Report {
		for seed := 1; seed <= s.diffSeeds; seed++ {
			rep.Results = append(rep.Results, compat.Result{Suite: Name, Unit: DifferentialUnit,
				Test: fmt.Sprintf("differential: seed %d", seed), Status: status, Message: msg})
		}
		return rep
	}
	hostDir, err := ss.spec.Dir("differential-host")
	if err != nil {
		return each(compat.Error, err.Error())
	}
	extra := ss.serverArgs
	if len(extra) > 0 {
		// The local reference: a data directory of its own.
		d, err := ss.spec.Dir("differential-data")
		if err != nil {
			return each(compat.Error, err.Error())
		}
		extra = []string{"--dir", d}
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
	var commands []string
	serve := func(t runners.Target, srv runners.Server, args ...string) (*runners.Service, error) {
		svc, err := srv.Serve(ctx, 1, func(ports []int) runners.Process {
			p := runners.Process{Args: append(append([]string{args[0], "--port", strconv.Itoa(ports[0])}, ServerArgs...), args[1:]...)}
			commands = append(commands, t.Command(p))
			return p
		})
		if err != nil {
			return nil, err
		}
		if err := waitReady(ctx, svc, svc.Addrs()[0], startTimeout); err != nil {
			svc.Close()
			return nil, err
		}
		return svc, nil
	}
	defer func() {
		if len(commands) > 0 {
			rep.Command = strings.Join(commands, "\n")
		}
	}()
	a, err := serve(host, host, bin, "--dir", hostDir)
	if err != nil {
		return each(compat.Error, "host redis-server: "+err.Error())
	}
	defer a.Close()
	b, err := serve(ss.target, ss.server, append([]string{"redis-server"}, extra...)...)
	if err != nil {
		return each(compat.Error, ss.spec.Kind+" redis-server: "+err.Error())
	}
	defer b.Close()
	count := s.diffCount
	if count <= 0 {
		count = 5000
	}
	for seed := 1; seed <= s.diffSeeds; seed++ {
		d, err := Differential(ctx, a.Addrs()[0], b.Addrs()[0], DiffOptions{Seed: uint64(seed), Count: count, Timeout: time.Minute, Leave: KnownDivergences})
		r := d.Result()
		if err != nil {
			r.Status, r.Message = compat.Error, err.Error()
		}
		rep.Results = append(rep.Results, r)
	}
	return rep
}
