// Package vkernel runs WebAssembly programs from a signed megabinary on
// wazero. Execution is hash-based: Exec hashes the file it is asked to run,
// looks the SHA-256 up in the megabinary's signed manifest and runs the
// precompiled module of that entry; the file's own bytes are never run. A
// hash that is not listed is denied, with an audit record. There is no JIT:
// every module is compiled when the megabinary is loaded, and nothing is
// compiled after that.
//
// The host surface guests see (WASI preview1 on host file descriptors, plus
// the vkernel module) is documented in ABI.md; the megabinary format in
// megabinary/FORMAT.md.
package vkernel

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/compat-project/compat/vkernel/internal/aotcache"
	"github.com/compat-project/compat/vkernel/internal/hashcache"
	"github.com/compat-project/compat/vkernel/internal/hostabi"
	"github.com/compat-project/compat/vkernel/megabinary"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Options configure a Kernel.
type Options struct {
	// TrustedKeys are the public keys a megabinary's signature may be made
	// with. Open fails when none matches.
	TrustedKeys []ed25519.PublicKey
	// CacheDir is the root of the AOT compilation cache. Compiled code is
	// kept under CacheDir/aot/wazero-VERSION/DIGEST, so a second load of the
	// same megabinary reads it instead of compiling. Each entry is sealed
	// with a host key kept in CacheDir/aot/host.key (mode 0600) and bound
	// to the signed module it was compiled from; an entry that fails its
	// check fails the load. Exec refuses mounts that would show CacheDir/aot
	// to a guest. Empty: compile in memory on every load.
	CacheDir string
	// Policy is the exec policy; the zero value is PolicyHash.
	Policy Policy
	// Audit receives the audit log as JSON lines; nil discards it.
	Audit io.Writer
	// Entries, when not empty, names the manifest entries this kernel
	// runs: only their modules are read from the file, checked against
	// their digests and compiled (or their AOT code checked and loaded),
	// so a process that runs one program of a large megabinary (a shim, a
	// child process) does not pay for the others. The signature and the
	// framing of the whole file are still checked; an exec routed to
	// another entry is denied. Naming an entry the manifest lacks fails
	// the load.
	Entries []string
	// Interruptible makes a running guest stoppable wherever it is: when
	// its Exec's ctx ends, the guest stops at its next function entry or
	// loop header (wazero's WithCloseOnContextDone). That check leaves
	// native code at every loop iteration and makes guest code about 3x
	// slower (README, "Stopping a guest").
	//
	// Without it, a guest whose ctx ends stops at its next host call, and
	// a host call that blocks (poll_oneoff, a read, accept) returns as
	// soon as ctx ends; a guest computing without host calls runs on. Go
	// cannot preempt native wasm code, so such a guest also holds up the
	// Go runtime's stop-the-world phases in its process while it runs.
	// Guests that must be stoppable at any instant belong in a process of
	// their own that can be ended (compat exec; the vkernel runner target
	// runs each program so), or in a kernel with Interruptible set.
	Interruptible bool
	// ChildCommand is the command that starts a vkernel child process: a
	// program that calls ChildMain first thing in main (cmd/compat: its
	// own executable; the vkernel's tests: the test binary). A guest's
	// proc_spawn and proc_fork start their child this way, one host
	// process per vkernel process (ABI.md, "Processes"); the child's
	// kernel gets the same command, so children may start their own.
	// Nil: proc_spawn and proc_fork answer ENOSYS. Only a kernel opened
	// from a file (Open) can start children.
	ChildCommand []string
	// StartOnly makes a kernel that runs requests only with Start: it
	// checks the megabinary's signature and framing and routes by hash,
	// but reads and loads no module's code itself (each child process
	// loads its own entry's), so a service holding it stays small. Exec
	// fails in it. The AOT cache is filled by the first child of each
	// entry, which compiles the module when the cache has no code for it.
	StartOnly bool
	// StartWarm bounds how many child processes per entry Start keeps
	// started ahead of need (their code loaded, waiting for a request):
	// it keeps one more than the entry has running, up to this many
	// (0: StartWarmDefault), and ends those the load no longer needs
	// after 30 s idle. Each runs one request and ends.
	StartWarm int
	// StartShare is how many requests one of Start's child processes
	// runs at once, each in an instance of its own over the one copy of
	// the entry's code the process loaded (share.go); it keeps taking
	// requests after each ends. 0: StartShareDefault. 1: a process per
	// request, which runs one guest and ends (host signals reach the
	// guest by its dispositions, and end it at once wherever it is).
	StartShare int
	// StartDrain bounds how long a shared child process that is draining
	// (a guest it had to stop did not reach a host call) is let run for
	// its other requests before it is killed with them (0:
	// StartDrainDefault).
	StartDrain time.Duration
	// HostCallsDir, when set, makes every exec count its guest's calls of
	// each host function and write them, as it ends, to a file of its own
	// in this directory (WriteHostCalls's format; ReadHostCalls sums
	// them): the polyfill coverage map. The kernel's child processes
	// write there too. Empty: $COMPAT_HOSTCALLS_DIR (EnvHostCallsDir),
	// and when that is empty too nothing is counted.
	HostCallsDir string
	// NoSnapshot makes every exec start its entry's program the usual way
	// (its start export), even when the entry has a snapshot start
	// (ABI.md, "Snapshots"): the snapshot modules are neither checked nor
	// loaded. Child processes started for Start, spawns and forks inherit
	// it.
	NoSnapshot bool
}

// Kernel is one wazero runtime, one verified megabinary with all its modules
// compiled, a policy and an audit log. Exec may be called concurrently;
// instances share the compiled code and nothing else.
type Kernel struct {
	file     *megabinary.File
	runtime  wazero.Runtime
	cache    wazero.CompilationCache
	cacheDir string
	aot      *aotcache.Cache
	// protected holds the AOT root and its ancestors; no mount may be one
	// of them or lie beneath the root.
	protected *protectedTree
	policy    Policy
	audit     *auditLog

	routes map[string]*route // executable hash -> route
	hashes *hashcache.Cache

	// What a child process needs to open the same megabinary the same way.
	path      string
	trusted   []ed25519.PublicKey
	cacheRoot string
	childCmd  []string
	interrupt bool
	startOnly bool
	// hostCallsDir receives each exec's host call counts (Options.HostCallsDir).
	hostCallsDir string
	// noSnapshot is Options.NoSnapshot.
	noSnapshot bool

	// pool holds Start's child processes started ahead of need.
	pool startPool

	// images are the snapshot modules' memory images (memimage.go).
	images []*memImage
	// hostKey seals the split cache's files, kept in splitDir ("": no
	// cache); splitsMade and splitsCached count the splits written and
	// read (memimage.go).
	hostKey                  []byte
	splitDir                 string
	splitsMade, splitsCached atomic.Int64

	// lazyModules are the modules ownModule loaded, by digest.
	lazyMu      sync.Mutex
	lazyModules map[string]wazero.CompiledModule

	hashHits, hashMisses atomic.Int64
	// Child processes: started for a request (cold), started ahead of
	// need (warm), and requests a warm one ran.
	coldStarts, warmStarts, warmRuns atomic.Int64
}

// route is a manifest entry with its compiled module and parsed resources.
type route struct {
	entry  *megabinary.Entry
	module wazero.CompiledModule
	// startable: the entry is one this kernel runs (Options.Entries),
	// with Start (in a child, which loads its module) or, when module is
	// loaded, in-process too.
	startable bool
	// threads is set for a module that imports a shared memory (ABI.md,
	// "Threads").
	threads *threadSpec
	// snap is the entry's snapshot start, when it has one and this
	// kernel uses snapshots; its module is nil where r.module is.
	snap *snapRoute
	// lazy: module is nil, the entry's own module is loaded when an exec
	// first needs it (ownModule).
	lazy    bool
	connect []netip.Prefix
	bind    []netip.Prefix
	paths   map[string]bool
}

// loopback is what resources.connect and resources.bind allow when empty.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// parsePrefixes parses a resources.connect or resources.bind list: CIDR
// prefixes; empty is loopback, "none" alone nothing.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	if len(list) == 0 {
		return loopback, nil
	}
	if len(list) == 1 && list[0] == "none" {
		return []netip.Prefix{}, nil
	}
	var out []netip.Prefix
	for _, c := range list {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("%w (want CIDR prefixes such as 127.0.0.0/8, or \"none\" alone)", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// allowed reports whether a is in one of the prefixes.
func allowed(prefixes []netip.Prefix, a netip.AddrPort) bool {
	for _, p := range prefixes {
		if p.Contains(a.Addr()) {
			return true
		}
	}
	return false
}

// Open reads the megabinary at path, checks its signature against
// opts.TrustedKeys, compiles every module ahead of time and checks that each
// imports only the vkernel's host surface. Errors name the failed check.
func Open(ctx context.Context, path string, opts Options) (*Kernel, error) {
	read := megabinary.ReadFile
	if opts.StartOnly {
		read = func(name string) (*megabinary.File, error) { return megabinary.ReadEntries(name, nil) }
	} else if len(opts.Entries) > 0 {
		read = func(name string) (*megabinary.File, error) { return megabinary.ReadEntries(name, opts.Entries) }
	}
	f, err := read(path)
	if err != nil {
		return nil, err
	}
	if err := f.Verify(opts.TrustedKeys...); err != nil {
		return nil, fmt.Errorf("megabinary %s: %w", path, err)
	}
	k, err := load(ctx, f, opts)
	if err != nil {
		return nil, fmt.Errorf("megabinary %s: %w", path, err)
	}
	if k.path, err = filepath.Abs(path); err != nil {
		k.Close(ctx)
		return nil, err
	}
	return k, nil
}

// Verify is the hash-routing verification of a megabinary, signed or not:
// every module compiles and imports only the host surface, every entry's
// start export exists, and every listed hash routes to exactly its entry.
// It does not check the signature; Open does. With a cache directory the
// compiled code is kept, so opening the signed file next costs no
// compilation.
func Verify(ctx context.Context, f *megabinary.File, cacheDir string) error {
	k, err := load(ctx, f, Options{CacheDir: cacheDir})
	if err != nil {
		return err
	}
	defer k.Close(ctx)
	for _, e := range f.Manifest.Entries {
		for _, h := range e.Hashes {
			r, ok := k.routes[h]
			if !ok || r.entry.Name != e.Name {
				return fmt.Errorf("hash %s of entry %q does not route to it", h, e.Name)
			}
		}
	}
	return nil
}

func load(ctx context.Context, f *megabinary.File, opts Options) (_ *Kernel, err error) {
	k := &Kernel{
		file:   f,
		policy: opts.Policy,
		audit:  newAuditLog(opts.Audit),
		routes: map[string]*route{},
		hashes: hashcache.New(4096),

		trusted:    opts.TrustedKeys,
		cacheRoot:  opts.CacheDir,
		childCmd:   opts.ChildCommand,
		interrupt:  opts.Interruptible,
		startOnly:  opts.StartOnly,
		noSnapshot: opts.NoSnapshot,

		hostCallsDir: opts.HostCallsDir,
	}
	if k.hostCallsDir == "" {
		k.hostCallsDir = os.Getenv(EnvHostCallsDir)
	}
	if k.hostCallsDir != "" {
		// Child processes get it too, wherever they start.
		if k.hostCallsDir, err = filepath.Abs(k.hostCallsDir); err != nil {
			return nil, fmt.Errorf("host calls directory: %w", err)
		}
	}
	k.pool.max = opts.StartWarm
	if k.pool.max <= 0 {
		k.pool.max = StartWarmDefault
	}
	k.pool.share, k.pool.drain = opts.StartShare, opts.StartDrain
	if k.pool.share <= 0 {
		k.pool.share = StartShareDefault
	}
	if k.pool.drain <= 0 {
		k.pool.drain = StartDrainDefault
	}
	cfg := engineConfig(opts.Interruptible)
	if opts.CacheDir != "" {
		aotRoot := filepath.Join(opts.CacheDir, "aot")
		hostKey, err := aotcache.LoadKey(filepath.Join(aotRoot, "host.key"))
		if err != nil {
			return nil, err
		}
		if k.protected, err = protect(aotRoot); err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		k.cacheDir = filepath.Join(aotRoot, "wazero-"+WazeroVersion(), f.Digest())
		if err := os.MkdirAll(k.cacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		k.hostKey, k.splitDir = hostKey, filepath.Join(aotRoot, "wazero-"+WazeroVersion(), "split")
		if err := os.MkdirAll(k.splitDir, 0o700); err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		k.aot = aotcache.New(k.cacheDir, hostKey, aotcache.Binding{Megabinary: f.Digest(), Wazero: WazeroVersion()})
		k.cache = wazero.NewCompilationCache()
		if err := aotcache.Install(k.cache, k.aot); err != nil {
			k.cache.Close(ctx)
			return nil, fmt.Errorf("compilation cache %s: %w", k.cacheDir, err)
		}
		cfg = cfg.WithCompilationCache(k.cache)
	}
	k.runtime = wazero.NewRuntimeWithConfig(ctx, cfg)
	defer func() {
		if err != nil {
			k.Close(ctx)
		}
	}()
	if err := hostabi.Instantiate(ctx, k.runtime); err != nil {
		return nil, err
	}
	loaded, err := entriesToLoad(f, opts.Entries, !opts.NoSnapshot)
	if err != nil {
		return nil, err
	}
	if !opts.NoSnapshot {
		if err := checkSnapshots(f, loaded); err != nil {
			return nil, err
		}
	}
	// A kernel for some entries only (a child process, compat exec
	// -entry) loads the own module of an entry it starts from a snapshot
	// when an exec first needs it (ownModule): most never do, and each
	// python.wasm module's code costs a child about 0.2 s of CPU to load.
	lazy := map[string]bool{}
	if len(opts.Entries) > 0 && !opts.NoSnapshot {
		eager := map[string]bool{}
		for _, e := range f.Manifest.Entries {
			if loaded.entry[e.Name] {
				if e.Snapshot == nil {
					eager[e.Module] = true
				} else {
					eager[e.Snapshot.Module] = true
				}
			}
		}
		for _, e := range f.Manifest.Entries {
			if loaded.entry[e.Name] && e.Snapshot != nil && !eager[e.Module] {
				lazy[e.Module] = true
			}
		}
	}
	compiled := map[string]wazero.CompiledModule{}
	threaded := map[string]*threadSpec{}
	snapModules := map[string]bool{}
	images := map[string]*memImage{}
	if !opts.NoSnapshot {
		for _, e := range f.Manifest.Entries {
			if e.Snapshot != nil && loaded.entry[e.Name] {
				snapModules[e.Snapshot.Module] = true
			}
		}
	}
	for _, m := range f.Manifest.Modules {
		if !loaded.module[m.Digest] || opts.StartOnly || lazy[m.Digest] {
			continue
		}
		var cm wazero.CompiledModule
		if snapModules[m.Digest] {
			var img *memImage
			if cm, img, err = k.compileSnapshot(ctx, m.Digest); err != nil {
				return nil, err
			}
			images[m.Digest] = img
			k.images = append(k.images, img)
		} else if cm, err = k.compile(ctx, m.Digest); err != nil {
			return nil, err
		}
		mem, shared, err := memoryImport(f.Module(m.Digest))
		if err != nil {
			// compile checked it already.
			return nil, fmt.Errorf("module %s: %w", m.Digest[:12], err)
		}
		compiled[m.Digest] = cm
		if shared {
			// The memory module is compiled now, with the guest's: nothing
			// is compiled after the load.
			mb := memoryModule(mem)
			if k.aot != nil {
				// Its code is sealed to its own digest: modules with the
				// same limits share it.
				k.aot.Expect(megabinary.SHA256(mb))
			}
			mc, err := k.runtime.CompileModule(ctx, mb)
			if err != nil {
				return nil, fmt.Errorf("module %s: shared memory of %d..%d pages: %w", m.Digest[:12], mem.min, mem.max, err)
			}
			threaded[m.Digest] = &threadSpec{mem: mem, memory: mc}
		}
	}
	for i := range f.Manifest.Entries {
		e := &f.Manifest.Entries[i]
		r := &route{entry: e, module: compiled[e.Module], threads: threaded[e.Module], lazy: lazy[e.Module], paths: map[string]bool{}, startable: loaded.entry[e.Name]}
		if !loaded.entry[e.Name] || opts.StartOnly {
			r.module = nil
			for _, p := range e.Paths {
				r.paths[p] = true
			}
			for _, h := range e.Hashes {
				k.routes[h] = r
			}
			continue
		}
		cm := r.module
		if r.lazy {
			// The snapshot module has the entry's module's code and
			// exports (less the initialisation).
			cm = compiled[e.Snapshot.Module]
		}
		def, ok := cm.ExportedFunctions()[e.StartExport()]
		if !ok {
			return nil, fmt.Errorf("entry %q: module exports no function %q", e.Name, e.StartExport())
		}
		if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0 {
			return nil, fmt.Errorf("entry %q: start function %q must take and return nothing", e.Name, e.StartExport())
		}
		if r.connect, err = parsePrefixes(e.Resources.Connect); err != nil {
			return nil, fmt.Errorf("entry %q: resources.connect: %w", e.Name, err)
		}
		if r.bind, err = parsePrefixes(e.Resources.Bind); err != nil {
			return nil, fmt.Errorf("entry %q: resources.bind: %w", e.Name, err)
		}
		for _, p := range e.Paths {
			r.paths[p] = true
		}
		for _, h := range e.Hashes {
			k.routes[h] = r
		}
		if e.Snapshot != nil && !opts.NoSnapshot {
			if r.snap, err = newSnapRoute(e, compiled[e.Snapshot.Module]); err != nil {
				return nil, err
			}
			r.snap.image = images[e.Snapshot.Module]
		}
	}
	return k, nil
}

// engineConfig is the wazero configuration every kernel compiles and runs
// with. The threads feature (shared memories and the atomic instructions,
// ABI.md "Threads") is on for every module: it changes nothing in the code
// compiled for a module without a shared memory (TestThreadsFeatureLeavesCode
// compares the two), so single-threaded guests pay nothing for it.
// interruptible adds wazero's per-loop cancellation checks (README,
// "Stopping a guest").
func engineConfig(interruptible bool) wazero.RuntimeConfig {
	return wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(interruptible).
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesThreads)
}

// compile compiles the stored module (or loads and checks its code from
// the AOT cache) and checks its imports.
func (k *Kernel) compile(ctx context.Context, digest string) (wazero.CompiledModule, error) {
	return k.compileBytes(ctx, digest, k.file.Module(digest), digest)
}

// compileBytes compiles wasm, the stored module of that digest or one
// made from it (whose code is sealed to sealed, its own digest), and
// checks its imports.
func (k *Kernel) compileBytes(ctx context.Context, digest string, wasm []byte, sealed string) (wazero.CompiledModule, error) {
	f := k.file
	if k.aot != nil {
		k.aot.Expect(sealed)
	}
	cm, err := k.runtime.CompileModule(ctx, wasm)
	if err != nil {
		var bad *aotcache.TamperedError
		if errors.As(err, &bad) {
			e := &AOTError{Entry: strings.Join(entriesOf(f, digest), ","), Module: digest, Path: bad.Path, Hash: bad.Hash, Reason: bad.Reason}
			k.audit.write(AuditRecord{Action: "load", Path: e.Path, Hash: e.Hash, Entry: e.Entry, Decision: "deny", Reason: e.Reason})
			return nil, e
		}
		return nil, fmt.Errorf("module %s does not compile: %w", digest[:12], err)
	}
	_, shared, err := memoryImport(f.Module(digest))
	if err == nil {
		err = checkImports(cm, shared)
	}
	if err != nil {
		cm.Close(ctx)
		return nil, fmt.Errorf("module %s: %w", digest[:12], err)
	}
	return cm, nil
}

// ownModule returns the entry's own module, loading it now if the kernel
// left it for later (route.lazy).
func (k *Kernel) ownModule(ctx context.Context, r *route) (wazero.CompiledModule, error) {
	if !r.lazy {
		return r.module, nil
	}
	k.lazyMu.Lock()
	defer k.lazyMu.Unlock()
	if cm := k.lazyModules[r.entry.Module]; cm != nil {
		return cm, nil
	}
	cm, err := k.compile(ctx, r.entry.Module)
	if err != nil {
		return nil, err
	}
	if k.lazyModules == nil {
		k.lazyModules = map[string]wazero.CompiledModule{}
	}
	k.lazyModules[r.entry.Module] = cm
	return cm, nil
}

// loadSet is what Open compiles: entries by name, modules by digest.
type loadSet struct{ entry, module map[string]bool }

// entriesToLoad returns the entries named (all when names is empty) and
// their modules (their snapshot modules too, with snapshots), or an error
// naming an entry the manifest lacks.
func entriesToLoad(f *megabinary.File, names []string, snapshots bool) (loadSet, error) {
	set := loadSet{entry: map[string]bool{}, module: map[string]bool{}}
	for _, e := range f.Manifest.Entries {
		if len(names) == 0 || slices.Contains(names, e.Name) {
			set.entry[e.Name] = true
			set.module[e.Module] = true
			if e.Snapshot != nil && snapshots {
				set.module[e.Snapshot.Module] = true
			}
		}
	}
	for _, n := range names {
		if !set.entry[n] {
			return set, fmt.Errorf("entry %q is not in the megabinary's manifest", n)
		}
	}
	return set, nil
}

// AOTError reports compiled code in the AOT cache that failed its check:
// changed, swapped with another module's, or sealed with another host key.
// The load fails; the file is left as found, and nothing is recompiled in
// its place.
type AOTError struct {
	// Entry names the manifest entries that run the module (comma-separated).
	Entry string
	// Module is the signed module's digest.
	Module string
	// Path is the cache file, Hash the SHA-256 of its bytes as read.
	Path, Hash string
	// Reason says which check failed.
	Reason string
}

func (e *AOTError) Error() string {
	return fmt.Sprintf("entry %s: compiled code %s (sha256 %s) for module %s refused: %s; remove the file to recompile it from the signed module",
		e.Entry, e.Path, e.Hash, e.Module[:12], e.Reason)
}

// entriesOf names the entries that run a module.
func entriesOf(f *megabinary.File, module string) []string {
	var names []string
	for _, e := range f.Manifest.Entries {
		if e.Module == module {
			names = append(names, e.Name)
		}
	}
	return names
}

// checkImports refuses a module that imports anything but functions of the
// host surface with their exact signatures, and, when shared (memoryImport
// found env.memory imported shared, with a maximum: the one exception,
// ABI.md "Threads"), memory. In particular no import can hand the host
// bytes to compile.
func checkImports(cm wazero.CompiledModule, shared bool) error {
	if mems := cm.ImportedMemories(); len(mems) > 0 && !shared {
		mod, name, _ := mems[0].Import()
		return fmt.Errorf("imports memory %s.%s; guests must define their own", mod, name)
	}
	if err := checkThreadImports(cm, shared); err != nil {
		return err
	}
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		params, results, ok := hostabi.Signature(mod, name)
		if !ok {
			return fmt.Errorf("imports %s.%s, which is not in the vkernel's host surface", mod, name)
		}
		if !sameTypes(params, def.ParamTypes()) || !sameTypes(results, def.ResultTypes()) {
			return fmt.Errorf("imports %s.%s with signature %s, want %s", mod, name,
				signature(def.ParamTypes(), def.ResultTypes()), signature(params, results))
		}
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func signature(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		var s []string
		for _, t := range ts {
			s = append(s, api.ValueTypeName(t))
		}
		return strings.Join(s, ",")
	}
	return "(" + names(params) + ")->(" + names(results) + ")"
}

// Close releases the runtime and the compiled code. It reports an audit
// record that could not be written.
func (k *Kernel) Close(ctx context.Context) error {
	k.pool.close()
	if k.runtime != nil {
		k.runtime.Close(ctx)
	}
	for _, img := range k.images {
		img.close()
	}
	k.images = nil
	if k.cache != nil {
		k.cache.Close(ctx)
	}
	k.audit.mu.Lock()
	defer k.audit.mu.Unlock()
	if k.audit.err != nil {
		return fmt.Errorf("audit log: %w", k.audit.err)
	}
	return nil
}

// Digest returns the megabinary's digest (see megabinary.File.Digest).
func (k *Kernel) Digest() string { return k.file.Digest() }

// Manifest returns the loaded megabinary's manifest. It must not be changed.
func (k *Kernel) Manifest() *megabinary.Manifest { return &k.file.Manifest }

// CacheDir returns the directory holding this megabinary's compiled code,
// or "" when compiled in memory.
func (k *Kernel) CacheDir() string { return k.cacheDir }

// Stats are counters of a kernel's work so far.
type Stats struct {
	// HashCacheHits counts execs that reused a file's digest.
	HashCacheHits int64
	// HashCacheMisses counts execs that read and hashed the file.
	HashCacheMisses int64
	// AOTLoaded counts modules whose compiled code came from the AOT
	// cache (each checked against its host-key seal) when the kernel
	// loaded; AOTCompiled those compiled and added to it.
	AOTLoaded, AOTCompiled int
	// ChildStarts counts the child processes its guests' spawns and forks
	// started on request, WarmStarts those started ahead of need, and
	// WarmRuns the spawns and forks that a warm one ran (ABI.md,
	// "Processes").
	ChildStarts, WarmStarts, WarmRuns int64
	// SplitsMade counts the snapshot modules this kernel split into
	// memory image and module without data and kept in the cache;
	// SplitsCached those whose split it read from the cache, checked
	// against its host-key seal (memimage.go).
	SplitsMade, SplitsCached int64
}

// Stats returns the kernel's counters.
func (k *Kernel) Stats() Stats {
	s := Stats{HashCacheHits: k.hashHits.Load(), HashCacheMisses: k.hashMisses.Load(),
		ChildStarts: k.coldStarts.Load(), WarmStarts: k.warmStarts.Load(), WarmRuns: k.warmRuns.Load(),
		SplitsMade: k.splitsMade.Load(), SplitsCached: k.splitsCached.Load()}
	if k.aot != nil {
		s.AOTLoaded, s.AOTCompiled = k.aot.Counts()
	}
	return s
}

// WazeroVersion returns the version of wazero this program was built with.
func WazeroVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				return d.Version
			}
		}
	}
	return "unknown"
}
