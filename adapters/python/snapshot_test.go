package python

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// snapshotBuild returns the newest python.wasm build under the cache that
// has the snapshot exports (images/python/patches/python3.11/
// wasi-vkernel-snapshot.patch).
func snapshotBuild(t *testing.T) *wasmbuild.Build {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(compat.CacheRoot(), wasmbuild.Python.Name, "*", ".done"))
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := os.Stat(dirs[i])
		b, _ := os.Stat(dirs[j])
		return a.ModTime().After(b.ModTime())
	})
	for _, d := range dirs {
		wasm, err := os.ReadFile(filepath.Join(filepath.Dir(d), "python.wasm"))
		if err == nil && bytes.Contains(wasm, []byte("vk_snapshot_main")) {
			b, err := wasmbuild.Open(filepath.Dir(d), wasmbuild.Python)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	testenv.Missing(t, "needs a python.wasm build with the snapshot exports (make images)")
	return nil
}

// TestPythonSnapshot: python.wasm's snapshot start, on the real build in
// the vkernel. -c CODE, a script and -m MODULE start from the snapshot
// with this exec's argv, environment and working directory applied
// (sys.argv, os.environ, os.getcwd, sys.path[0], __file__), and say
// exactly what a cold start of the same exec says about the interpreter
// (sys.path, sys.executable, sys.flags, the modules imported, the standard
// streams); an exec with an interpreter option starts cold, and right.
func TestPythonSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python.wasm; skipped with -short")
	}
	build := snapshotBuild(t)
	wasm, err := os.ReadFile(build.Wasm())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"usr/bin", "tmp/work"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/python3.11"), wasm, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "import sys, os\nprint(sys.argv, __file__, sys.path[0], os.environ.get('SNAPTEST'))\n"
	if err := os.WriteFile(filepath.Join(root, "tmp/work/s.py"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts := []vkernel.Mount{{Guest: "/", Host: root}, {Guest: "/usr/lib", Host: build.Path("lib"), ReadOnly: true}}
	d := megabinary.SHA256(wasm)
	f, err := megabinary.Build([]megabinary.Entry{{Name: "python3.11", Module: d, Hashes: []string{d},
		Resources: megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}, {Guest: "/usr/lib", ReadOnly: true}}}}},
		map[string][]byte{d: wasm})
	if err != nil {
		t.Fatal(err)
	}
	spec := megabinary.SpecSnapshot{Init: "vk_snapshot_init", Export: "vk_snapshot_main", Form: "python",
		Argv0: guestPython, Args: []string{"-c", "pass"}}
	for _, m := range mounts {
		spec.Mounts = append(spec.Mounts, megabinary.SpecMount{Guest: m.Guest, Host: m.Host, ReadOnly: m.ReadOnly})
	}
	ctx := context.Background()
	if f, err = vkernel.AddSnapshot(ctx, f, "python3.11", spec); err != nil {
		t.Fatal(err)
	}
	mb := filepath.Join(dir, "py.vkmb")
	key := filepath.Join(dir, "key")
	pub, err := megabinary.GenerateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := megabinary.ReadPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f.Sign(priv)
	if err := f.WriteFile(mb); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	open := func(noSnapshot bool) *vkernel.Kernel {
		k, err := vkernel.Open(ctx, mb, vkernel.Options{TrustedKeys: []ed25519.PublicKey{pub}, CacheDir: cache, NoSnapshot: noSnapshot})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close(ctx) })
		return k
	}
	snap, cold := open(false), open(true)
	exec := func(k *vkernel.Kernel, args ...string) (string, *vkernel.Result) {
		t.Helper()
		var out, errOut bytes.Buffer
		res, err := k.Exec(ctx, vkernel.Request{Path: filepath.Join(root, "usr/bin/python3.11"), Args: append([]string{guestPython}, args...),
			Env: []string{"SNAPTEST=from exec"}, Mounts: mounts, Cwd: "/tmp/work", Stdout: &out, Stderr: &errOut})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%v: %v, exit %v\nstdout: %s\nstderr: %s", args, err, res, out.String(), errOut.String())
		}
		return out.String(), res
	}
	same := "import sys, os, time; print(time.process_time() < 30, time.monotonic() > 0, sys.argv, sys.orig_argv, os.environ.get('SNAPTEST'), os.getcwd(), sys.path, sys.executable, sys.flags, " +
		"sorted(sys.modules), sys.stdout.line_buffering, sys.stdin.isatty(), sys.stdout.encoding)"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "import sys, os; print(sys.argv, os.environ['SNAPTEST'], os.getcwd())", "a", "b c"},
			"['-c', 'a', 'b c'] from exec /tmp/work\n"},
		{[]string{"s.py", "x"}, "['s.py', 'x'] /tmp/work/s.py /tmp/work from exec\n"},
		{[]string{"-m", "calendar", "2026", "1"}, "January 2026"},
		{[]string{"-c", same, "arg"}, ""},
	} {
		out, res := exec(snap, c.args...)
		if !res.Snapshot {
			t.Errorf("%v: not started from the snapshot", c.args)
		}
		if !strings.Contains(out, c.want) {
			t.Errorf("%v: output %q, want %q", c.args, out, c.want)
		}
		if coldOut, coldRes := exec(cold, c.args...); coldOut != out || coldRes.Snapshot {
			t.Errorf("%v: the snapshot start said\n%s\nthe cold start\n%s", c.args, out, coldOut)
		}
	}
	// What a start costs in-process (instantiating, copying the data
	// segments, running), for the record.
	for _, k := range []*vkernel.Kernel{snap, cold} {
		var ds []time.Duration
		for i := 0; i < 5; i++ {
			_, res := exec(k, "-c", "pass")
			ds = append(ds, res.Duration)
		}
		t.Logf("-c pass in-process, snapshot %v: %v", k == snap, ds)
	}
	out, res := exec(snap, "-I", "-c", "import sys; print(sys.flags.isolated, sys.argv)", "y")
	if res.Snapshot || out != "1 ['-c', 'y']\n" {
		t.Errorf("-I: snapshot %v, output %q; want a cold start printing 1 ['-c', 'y']", res.Snapshot, out)
	}
}
