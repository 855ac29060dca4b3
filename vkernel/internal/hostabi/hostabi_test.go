package hostabi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat/vkernel/guests"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// trampolines is a guest that imports every host function and exports
// t<i>, which calls function i with its own arguments, so tests can call
// host functions with any arguments from a real guest.
func trampolines() string {
	var b strings.Builder
	b.WriteString("(module\n")
	fs := functions()
	for i, f := range fs {
		fmt.Fprintf(&b, "  (import %q %q (func $f%d %s))\n", f.module, f.name, i, sig(f.types, f.results))
	}
	b.WriteString("  (memory (export \"memory\") 1)\n")
	for i, f := range fs {
		fmt.Fprintf(&b, "  (func (export \"t%d\") %s", i, sig(f.types, f.results))
		for j := range f.types {
			fmt.Fprintf(&b, " (local.get %d)", j)
		}
		fmt.Fprintf(&b, " (call $f%d))\n", i)
	}
	b.WriteString(")\n")
	return b.String()
}

func sig(params, results []api.ValueType) string {
	s := ""
	if len(params) > 0 {
		s += "(param"
		for _, p := range params {
			s += " " + api.ValueTypeName(p)
		}
		s += ")"
	}
	if len(results) > 0 {
		s += " (result i32)"
	}
	return s
}

type harness struct {
	r        wazero.Runtime
	compiled wazero.CompiledModule
	root     string
	listener net.Listener
	// audit, if set, receives the process's audit records.
	audit func(action, detail, decision, reason string)
}

func newHarness(t testing.TB) *harness {
	wasm, err := guests.WAT(trampolines())
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "cannot build the trampoline guest: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true))
	t.Cleanup(func() { r.Close(ctx) })
	if err := Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	cm, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &harness{r: r, compiled: cm, root: t.TempDir(), listener: l}
}

// call runs host function i with args in a fresh instance and process.
func (h *harness) call(t testing.TB, i int, args []uint64, setup func(api.Memory)) (uint32, error) {
	p, err := NewProcess(Config{
		Args: []string{"fuzz", "arg"}, Env: []string{"A=B"},
		Mounts:    []Mount{{Guest: "/", Host: h.root}, {Guest: "/ro", Host: h.root, ReadOnly: true}},
		Listeners: []net.Listener{h.listener},
		Hooks:     Hooks{AllowConnect: func(a netip.AddrPort) bool { return false }, Audit: h.audit},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ctx = WithProcess(ctx, p)
	mod, err := h.r.InstantiateModule(ctx, h.compiled, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close(ctx)
	if setup != nil {
		setup(mod.Memory())
	}
	res, err := mod.ExportedFunction(fmt.Sprintf("t%d", i)).Call(ctx, args...)
	if len(res) > 0 {
		return uint32(res[0]), err
	}
	return 0, err
}

// expected reports the errors a host call may end with by design: the
// guest's exit, the deadline, and the traps setjmp and longjmp raise for a
// guest that cannot use them.
func expected(err error) bool {
	if err == nil {
		return true
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "__stack_pointer") || strings.Contains(msg, "was not saved by setjmp")
}

func TestEveryFunctionRejectsOutOfRangePointers(t *testing.T) {
	h := newHarness(t)
	for i, f := range functions() {
		args := make([]uint64, len(f.types))
		for j := range args {
			args[j] = 0xfffffff0 // past the single page of memory
		}
		if len(args) > 0 {
			args[0] = 3 // a valid fd where the first argument is one
		}
		_, err := h.call(t, i, args, nil)
		if !expected(err) {
			t.Errorf("%s.%s: %v", f.module, f.name, err)
		}
	}
}

// FuzzHostCalls calls a host function chosen by the input with arguments
// from the input, on guest memory also filled from the input: the host must
// answer with an errno (or an intended trap), never panic or touch memory
// outside the guest's.
func FuzzHostCalls(f *testing.F) {
	h := newHarness(f)
	for i := range functions() {
		f.Add(uint8(i), make([]byte, 80), []byte("hello"))
	}
	f.Fuzz(func(t *testing.T, which uint8, argBytes []byte, mem []byte) {
		fs := functions()
		i := int(which) % len(fs)
		args := make([]uint64, len(fs[i].types))
		for j := range args {
			if len(argBytes) >= 8*(j+1) {
				args[j] = binary.LittleEndian.Uint64(argBytes[8*j:])
			}
			if fs[i].types[j] == i32 {
				args[j] = uint64(uint32(args[j]))
			}
		}
		_, err := h.call(t, i, args, func(m api.Memory) { m.Write(0, mem[:min(len(mem), 65536)]) })
		if !expected(err) {
			t.Fatalf("%s.%s%v: %v", fs[i].module, fs[i].name, args, err)
		}
	})
}

// FuzzJoinInMount: whatever the guest names, the result stays inside the
// mount: clean, relative, and never "..".
func FuzzJoinInMount(f *testing.F) {
	for _, s := range []string{"a/b", "../../etc/passwd", "/abs", "a/../../b", ".", "", "//x//y/", "a/./b/.."} {
		f.Add("sub/dir", s)
	}
	f.Fuzz(func(t *testing.T, dir, name string) {
		dir = JoinInMount(".", dir)
		got := JoinInMount(dir, name)
		if got == "" || path.IsAbs(got) || path.Clean(got) != got || got == ".." || strings.HasPrefix(got, "../") {
			t.Fatalf("JoinInMount(%q, %q) = %q", dir, name, got)
		}
		// Lexically, as a path under "/" the mount root.
		want := strings.TrimPrefix(path.Clean("/"+dir+"/"+name), "/")
		if want == "" {
			want = "."
		}
		if got != want {
			t.Fatalf("JoinInMount(%q, %q) = %q, want %q", dir, name, got, want)
		}
	})
}

func TestJoinInMount(t *testing.T) {
	for _, c := range [][3]string{
		{".", "a/b", "a/b"}, {".", "../../etc", "etc"}, {"a", "..", "."}, {"a/b", "../c", "a/c"},
		{".", "/abs", "abs"}, {"x", "./y/../z", "x/z"},
	} {
		if got := JoinInMount(c[0], c[1]); got != c[2] {
			t.Errorf("JoinInMount(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

func TestPrestatOnlyForMounts(t *testing.T) {
	h := newHarness(t)
	idx := map[string]int{}
	for i, f := range functions() {
		idx[f.name] = i
	}
	// fds: 0-2 stdio, 3 "/", 4 "/ro", 5 the listener.
	for fd, want := range map[uint64]Errno{0: EBADF, 3: ESUCCESS, 4: ESUCCESS, 5: EBADF, 99: EBADF} {
		got, err := h.call(t, idx["fd_prestat_get"], []uint64{fd, 1024}, nil)
		if err != nil || Errno(got) != want {
			t.Errorf("fd_prestat_get(%d) = %d, %v; want %d", fd, got, err, want)
		}
	}
}

func TestListenersFollowMounts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	p, err := NewProcess(Config{Mounts: []Mount{{Guest: "/", Host: dir}, {Guest: "/data", Host: dir}}, Listeners: []net.Listener{l}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	want := "VKERNEL_LISTEN_FDS=5=" + l.Addr().String()
	if got := string(p.env[len(p.env)-1]); got != want {
		t.Fatalf("env %q, want %q", got, want)
	}
	if f := p.fds.get(5); f == nil || !f.listener {
		t.Fatal("fd 5 is not the listener")
	}
}

// TestTrailingSlash: a trailing slash survives path cleaning: creating
// "missing/" is EISDIR and opening "file/" is ENOTDIR, as on Linux, and
// mkdir "d/" works.
func TestTrailingSlash(t *testing.T) {
	h := newHarness(t)
	idx := map[string]int{}
	for i, f := range functions() {
		idx[f.name] = i
	}
	os.WriteFile(filepath.Join(h.root, "file"), []byte("x"), 0o644)
	put := func(p string) func(api.Memory) { return func(m api.Memory) { m.Write(100, []byte(p)) } }
	open := func(p string, oflags uint64) Errno {
		got, err := h.call(t, idx["path_open"], []uint64{3, 1, 100, uint64(len(p)), oflags, rightFDRead | rightFDWrite, 0, 0, 200}, put(p))
		if err != nil {
			t.Fatal(err)
		}
		return Errno(got)
	}
	if e := open("missing/", oflagCreat); e != EISDIR {
		t.Errorf("create missing/: errno %d, want EISDIR", e)
	}
	if _, err := os.Stat(filepath.Join(h.root, "missing")); err == nil {
		t.Error("create missing/ made a file")
	}
	if e := open("file/", 0); e != ENOTDIR {
		t.Errorf("open file/: errno %d, want ENOTDIR", e)
	}
	got, _ := h.call(t, idx["path_create_directory"], []uint64{3, 100, 2}, put("d/"))
	if Errno(got) != ESUCCESS {
		t.Errorf("mkdir d/: errno %d", got)
	}
}

// TestMemIntentAuditsEveryExecRequest: every mem_map and mem_protect
// request that includes PROT_EXEC is refused and audited, including one
// with unknown bits (EINVAL, as Linux answers those); requests without
// PROT_EXEC are not audited.
func TestMemIntentAuditsEveryExecRequest(t *testing.T) {
	h := newHarness(t)
	var records []string
	h.audit = func(action, detail, decision, reason string) {
		records = append(records, action+" "+detail+" "+decision+" "+reason)
	}
	idx := map[string]int{}
	for i, f := range functions() {
		idx[f.name] = i
	}
	for _, c := range []struct {
		prot  uint64
		errno Errno
		audit bool
	}{
		{ProtRead | ProtWrite, ESUCCESS, false},
		{0x80000000, EINVAL, false},
		{ProtExec, EPERM, true},
		{ProtWrite | ProtExec, EPERM, true},
		{0x80000000 | ProtExec, EINVAL, true},
		{0x100 | ProtRead | ProtExec, EINVAL, true},
	} {
		for _, call := range []struct {
			name string
			args []uint64
		}{{"mem_map", []uint64{4096, c.prot, 0}}, {"mem_protect", []uint64{0, 4096, c.prot}}} {
			records = nil
			got, err := h.call(t, idx[call.name], call.args, nil)
			if err != nil || Errno(got) != c.errno {
				t.Errorf("%s prot=%#x: errno %d, %v; want %d", call.name, c.prot, got, err, c.errno)
			}
			want := fmt.Sprintf("prot=%#x deny", c.prot)
			if audited := len(records) == 1 && strings.Contains(records[0], want); audited != c.audit {
				t.Errorf("%s prot=%#x: audit records %q, want audited=%v", call.name, c.prot, records, c.audit)
			}
		}
	}
}

func TestClimbsAbove(t *testing.T) {
	for name, want := range map[string]bool{
		"a": false, "a/..": false, "a/../b": false, "./a/./../b/": false, "a//b/../..": false,
		"..": true, "../a": true, "a/../..": true, "a/../../a": true, "x/../../secret": true, "./..": true,
	} {
		if got := climbsAbove(name); got != want {
			t.Errorf("climbsAbove(%q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzClimbsAbove: a relative path that never climbs above its directory
// resolves, lexically, to that directory or beneath it.
func FuzzClimbsAbove(f *testing.F) {
	for _, s := range []string{"a/../b", "../x", "a/b/../../..", "./.", "a//../"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		depth, climbs := 0, false
		for _, c := range strings.Split(name, "/") {
			switch c {
			case "", ".":
			case "..":
				depth--
				climbs = climbs || depth < 0
			default:
				depth++
			}
		}
		if climbsAbove(name) != climbs {
			t.Fatalf("climbsAbove(%q) = %v, want %v", name, !climbs, climbs)
		}
		if path.IsAbs(name) || climbs {
			return
		}
		if got := JoinInMount("d/e", name); got != "d/e" && !strings.HasPrefix(got, "d/e/") {
			t.Fatalf("%q does not climb above d/e, but resolves to %q", name, got)
		}
	})
}

// The sampler times one call in timeSampling, spread over the calls: no
// run of calls goes untimed for long, whatever the seed.
func TestTimeSampling(t *testing.T) {
	for _, seed := range []uint64{1, 0x9e3779b97f4a7c15, uint64(time.Now().UnixNano()) | 1} {
		p := &Process{sampler: seed}
		const n = 80000
		sampled, gap, longest := 0, 0, 0
		for i := 0; i < n; i++ {
			if p.sample() {
				sampled++
				gap = 0
				continue
			}
			if gap++; gap > longest {
				longest = gap
			}
		}
		if want := n / timeSampling; sampled < want*9/10 || sampled > want*11/10 || longest > 40*timeSampling {
			t.Errorf("seed %#x: %d of %d calls sampled (want about %d), longest run unsampled %d", seed, sampled, n, want, longest)
		}
	}
}
