package vkernel

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compat-project/compat/vkernel/internal/hostabi"
	"github.com/compat-project/compat/vkernel/internal/wasmsnap"
	"github.com/compat-project/compat/vkernel/megabinary"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Snapshot start (ABI.md, "Snapshots"). An entry may carry a snapshot: a
// second module, made when the megabinary is built by running the entry's
// initialisation export once (AddSnapshot) and writing what that left in
// linear memory and the mutable globals into the module as its data
// segments and initial values. It is stored, digest-checked, signed and
// AOT-compiled like every module, so what starts from it is what was
// signed. An exec that qualifies (snapshotFor) instantiates it and calls
// its run export instead of the entry's start export: the program's
// initialisation is not run again.

// snapRoute is an entry's snapshot as a kernel loaded it.
type snapRoute struct {
	meta   *megabinary.Snapshot
	module wazero.CompiledModule
	// env holds the capture's values of the variables the form says
	// change initialisation (absent ones too, as "": a variable the
	// capture lacked must be absent).
	env map[string]string
	// options are the arguments an exec must pass after the entry's own
	// (python: the interpreter options, the capture's args without its
	// trailing -c CODE).
	options []string
	// image is the module's memory image: module is compiled without its
	// data, and every instance maps the image (memimage.go).
	image *memImage
}

// SnapshotError reports an entry's snapshot that a kernel refuses to
// load: made by another version of wazero, or not a module that can be
// started from. The megabinary is refused whole (exit 2), as for a module
// that fails its digest.
type SnapshotError struct {
	Entry, Module, Reason string
}

func (e *SnapshotError) Error() string {
	return fmt.Sprintf("entry %q: snapshot module %s refused: %s", e.Entry, short(e.Module), e.Reason)
}

func short(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// checkSnapshots refuses a megabinary whose loaded entries have a snapshot
// made by another wazero: the captured state depends on the host calls'
// answers, which belong to the version that ran them.
func checkSnapshots(f *megabinary.File, loaded loadSet) error {
	for _, e := range f.Manifest.Entries {
		if s := e.Snapshot; s != nil && loaded.entry[e.Name] && s.Wazero != WazeroVersion() {
			return &SnapshotError{Entry: e.Name, Module: s.Module,
				Reason: fmt.Sprintf("made with wazero %s, this vkernel runs wazero %s; build the megabinary again", s.Wazero, WazeroVersion())}
		}
	}
	return nil
}

// newSnapRoute checks the compiled snapshot module of entry e (nil in a
// kernel that loads no code) and what an exec must match to start from it.
func newSnapRoute(e *megabinary.Entry, cm wazero.CompiledModule) (*snapRoute, error) {
	s := e.Snapshot
	if cm != nil {
		def, ok := cm.ExportedFunctions()[s.Export]
		if !ok || len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0 {
			return nil, &SnapshotError{Entry: e.Name, Module: s.Module, Reason: fmt.Sprintf("exports no function %s() taking and returning nothing", s.Export)}
		}
		if _, ok := cm.ExportedFunctions()[s.Init]; ok {
			return nil, &SnapshotError{Entry: e.Name, Module: s.Module, Reason: fmt.Sprintf("still exports its initialisation %s", s.Init)}
		}
	}
	sr := &snapRoute{meta: s, module: cm, env: map[string]string{}}
	switch s.Form {
	case "python":
		n := len(s.Args)
		if n < 2 || s.Args[n-2] != "-c" {
			return nil, &SnapshotError{Entry: e.Name, Module: s.Module, Reason: "python form: the capture's args must end with -c CODE"}
		}
		sr.options = s.Args[:n-2]
		for _, kv := range mergeEnv(e.Env, s.Env) {
			name, value, _ := strings.Cut(kv, "=")
			if pythonInitVar(name) {
				sr.env[name] = value
			}
		}
	default:
		return nil, &SnapshotError{Entry: e.Name, Module: s.Module, Reason: fmt.Sprintf("unknown form %q", s.Form)}
	}
	return sr, nil
}

// pythonInitVar reports whether an environment variable changes what
// CPython's initialisation does: its own (PYTHON*), HOME (the user site
// directory) and the locale's (the encodings).
func pythonInitVar(name string) bool {
	return strings.HasPrefix(name, "PYTHON") || name == "HOME" || name == "LANG" || name == "LC_ALL" || name == "LC_CTYPE"
}

// snapshotFor returns the snapshot an exec of r starts from, or nil for
// the usual start: when the kernel uses snapshots, the entry has one, and
// the exec qualifies. args and env are the guest's (the entry's merged
// with the request's). An exec qualifies when it has no listeners, its
// mounts are the capture's (guest paths and read-only flags, in order: the
// preopened fds the snapshot's memory knows), and its arguments and
// environment fit the form.
func (k *Kernel) snapshotFor(r *route, req *Request, args, env []string) *snapRoute {
	s := r.snap
	if s == nil || s.module == nil || k.noSnapshot || len(req.Listeners) > 0 {
		return nil
	}
	if len(req.Mounts) != len(s.meta.Mounts) {
		return nil
	}
	for i, m := range req.Mounts {
		if m.Guest != s.meta.Mounts[i].Guest || m.ReadOnly != s.meta.Mounts[i].ReadOnly {
			return nil
		}
	}
	if len(args) == 0 || args[0] != s.meta.Argv0 {
		return nil
	}
	rest := args[1:]
	if len(rest) < len(r.entry.Args) || !slices.Equal(rest[:len(r.entry.Args)], r.entry.Args) {
		return nil
	}
	rest = rest[len(r.entry.Args):]
	switch s.meta.Form {
	case "python":
		if !pythonQualifies(s.options, rest) {
			return nil
		}
		seen := map[string]bool{}
		for _, kv := range env {
			name, value, _ := strings.Cut(kv, "=")
			if !pythonInitVar(name) {
				continue
			}
			if want, ok := s.env[name]; !ok || want != value {
				return nil
			}
			seen[name] = true
		}
		if len(seen) != len(s.env) {
			return nil
		}
		return s
	}
	return nil
}

// pythonQualifies reports whether python's arguments after the entry's
// own can start from a snapshot made with the interpreter options given:
// the same options, then -c CODE, -m MODULE or a script (a first argument
// that is not an option), each with any arguments after it. Anything
// else (other options, stdin, the REPL) changes what initialisation does
// or needs, and starts as usual.
func pythonQualifies(options, rest []string) bool {
	if len(rest) <= len(options) || !slices.Equal(rest[:len(options)], options) {
		return false
	}
	rest = rest[len(options):]
	switch a := rest[0]; {
	case a == "-c" || a == "-m":
		return len(rest) >= 2
	case a == "" || strings.HasPrefix(a, "-"):
		return false
	}
	return true
}

// AddSnapshot makes the snapshot start of entry name of the megabinary f
// (ABI.md, "Snapshots") and returns a new, unsigned megabinary holding it:
// the entry's module with every mutable global exported runs its export
// spec.Init once, in a vkernel process with the spec's argv, environment
// and mounts (within the entry's resources), with no child processes;
// then its linear memory and globals are written into a copy of the
// entry's module (wasmsnap), stored beside it and recorded in the entry's
// manifest. The capture must leave nothing in the host's hands that a new
// process would lack (open files beyond stdio and the mounts, children, a
// timer): hostabi.Process.Residue. Errors name what failed, with the
// guest's stderr.
func AddSnapshot(ctx context.Context, f *megabinary.File, name string, spec megabinary.SpecSnapshot) (*megabinary.File, error) {
	e := f.Manifest.Entry(name)
	if e == nil {
		return nil, fmt.Errorf("snapshot: entry %q is not in the manifest", name)
	}
	src := f.Module(e.Module)
	if src == nil {
		return nil, fmt.Errorf("snapshot of %q: module %s was not read", name, short(e.Module))
	}
	fail := func(format string, a ...any) (*megabinary.File, error) {
		return nil, fmt.Errorf("snapshot of %q: %s", name, fmt.Sprintf(format, a...))
	}
	if spec.Init == "" || spec.Export == "" || spec.Argv0 == "" {
		return fail("init, export and argv0 must be given")
	}
	m, err := wasmsnap.Parse(src)
	if err != nil {
		return fail("module %s: %v", short(e.Module), err)
	}
	for _, fn := range []string{spec.Init, spec.Export} {
		if !m.HasFuncExport(fn) {
			return fail("module %s exports no function %q", short(e.Module), fn)
		}
	}
	inst := m.Instrument()
	// The capture runs in a kernel of its own, over an unsigned megabinary
	// of the instrumented module alone, compiled in memory.
	ce := *e
	ce.Hashes = []string{megabinary.SHA256(inst)}
	ce.Module = ce.Hashes[0]
	ce.Export = spec.Init
	ce.Snapshot = nil
	ce.Resources.Processes = 0
	cf, err := megabinary.Build([]megabinary.Entry{ce}, map[string][]byte{ce.Module: inst})
	if err != nil {
		return fail("%v", err)
	}
	k, err := load(ctx, cf, Options{NoSnapshot: true})
	if err != nil {
		return fail("loading the instrumented module: %v", err)
	}
	defer k.Close(ctx)
	dir, err := os.MkdirTemp("", "vkernel-snapshot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, name+".wasm")
	if err := os.WriteFile(file, inst, 0o600); err != nil {
		return nil, err
	}
	var mounts []Mount
	var rules []megabinary.MountRule
	for _, mt := range spec.Mounts {
		mounts = append(mounts, Mount{Guest: mt.Guest, Host: mt.Host, ReadOnly: mt.ReadOnly})
		rules = append(rules, megabinary.MountRule{Guest: mt.Guest, ReadOnly: mt.ReadOnly})
	}
	var stdout, stderr bytes.Buffer
	var state wasmsnap.State
	captured := false
	req := Request{Path: file, Args: append([]string{spec.Argv0}, spec.Args...), Env: spec.Env, Mounts: mounts,
		Cwd: spec.Cwd, Stdout: &stdout, Stderr: &stderr,
		capture: func(mod api.Module, p *hostabi.Process) error {
			if res := p.Residue(); len(res) > 0 {
				return fmt.Errorf("the initialisation left host state a new process would not have: %s", strings.Join(res, "; "))
			}
			mem := mod.Memory()
			if mem == nil {
				return fmt.Errorf("the module has no memory")
			}
			b, ok := mem.Read(0, mem.Size())
			if !ok {
				return fmt.Errorf("cannot read %d bytes of memory", mem.Size())
			}
			state.Memory = bytes.Clone(b)
			state.Globals = map[uint32]uint64{}
			for _, idx := range m.MutableGlobals() {
				g := mod.ExportedGlobal(fmt.Sprint(wasmsnap.GlobalExportPrefix, idx))
				if g == nil {
					return fmt.Errorf("mutable global %d is not exported by the instrumented module", idx)
				}
				state.Globals[idx] = g.Get()
			}
			captured = true
			return nil
		}}
	res, err := k.Exec(ctx, req)
	if err != nil {
		return fail("running %s: %v; stderr: %q", spec.Init, err, tail(stderr.Bytes()))
	}
	if !captured {
		return fail("%s exited with status %d instead of returning; stderr: %q", spec.Init, res.ExitCode, tail(stderr.Bytes()))
	}
	state.DropExports = []string{spec.Init}
	snap, err := m.Snapshot(state)
	if err != nil {
		return fail("%v", err)
	}
	digest := megabinary.SHA256(snap)
	entries := slices.Clone(f.Manifest.Entries)
	modules := map[string][]byte{digest: snap}
	for i := range entries {
		if d := entries[i].Module; f.Module(d) != nil {
			modules[d] = f.Module(d)
		}
		if s := entries[i].Snapshot; s != nil && f.Module(s.Module) != nil {
			modules[s.Module] = f.Module(s.Module)
		}
		if entries[i].Name == name {
			entries[i].Snapshot = &megabinary.Snapshot{Module: digest, Source: e.Module, Init: spec.Init, Export: spec.Export,
				Form: spec.Form, Argv0: spec.Argv0, Args: spec.Args, Env: spec.Env, Mounts: rules, Wazero: WazeroVersion()}
		}
	}
	out, err := megabinary.Build(entries, modules)
	if err != nil {
		return fail("%v", err)
	}
	return out, nil
}

// tail is the end of a guest's output, for an error message.
func tail(b []byte) string {
	const n = 2000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
