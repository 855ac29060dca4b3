package vkernel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/internal/wasmsnap"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// snapWorld is a signed megabinary whose entry "snap" (the snapshot guest)
// has a snapshot start made from a capture that read /data/seed.
type snapWorld struct {
	dir, mb, data string
	f             *fixture
	file          *megabinary.File
}

var snapSpec = megabinary.SpecSnapshot{Init: "vk_snapshot_init", Export: "vk_snapshot_main", Form: "python",
	Argv0: "/snap", Args: []string{"-c", "init"}, Env: []string{"SNAP_ENV=capture"}}

func newSnapWorld(t *testing.T, spec megabinary.SpecSnapshot) (*snapWorld, error) {
	t.Helper()
	wasm := guest(t, func() ([]byte, error) { return guests.CPosix("snapshot.c", guests.Clang19) })
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "seed"), []byte("from-capture"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := megabinary.SHA256(wasm)
	f, err := megabinary.Build([]megabinary.Entry{{Name: "snap", Module: d, Hashes: []string{d},
		Resources: megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/data", ReadOnly: true}, {Guest: "/tmp"}}}}},
		map[string][]byte{d: wasm})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Mounts == nil {
		spec.Mounts = []megabinary.SpecMount{{Guest: "/data", Host: data, ReadOnly: true}}
	}
	f, err = AddSnapshot(context.Background(), f, "snap", spec)
	if err != nil {
		return nil, err
	}
	w := &snapWorld{dir: dir, data: data, file: f}
	w.f = &fixture{dir: dir, mb: filepath.Join(dir, "snap.vkmb")}
	w.f.pub, w.f.priv, _ = ed25519.GenerateKey(nil)
	f.Sign(w.f.priv)
	if err := f.WriteFile(w.f.mb); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "snap.wasm"), wasm, 0o755); err != nil {
		t.Fatal(err)
	}
	w.mb = w.f.mb
	return w, nil
}

func (w *snapWorld) request(args ...string) Request {
	return Request{Path: filepath.Join(w.dir, "snap.wasm"), Args: append([]string{"/snap"}, args...),
		Env: []string{"SNAP_ENV=exec"}, Mounts: []Mount{{Guest: "/data", Host: w.data, ReadOnly: true}}}
}

// TestSnapshotRestoresState: a C guest's snapshot start sees the memory
// its capture left (data, bss, heap: a file read at the capture, since
// changed) and this exec's own argv and environment; the manifest records
// the snapshot beside its source module, and the snapshot module no longer
// exports its initialisation.
func TestSnapshotRestoresState(t *testing.T) {
	w, err := newSnapWorld(t, snapSpec)
	if err != nil {
		t.Fatal(err)
	}
	e := w.file.Manifest.Entry("snap")
	if e.Snapshot == nil || e.Snapshot.Source != e.Module || e.Snapshot.Wazero != WazeroVersion() {
		t.Fatalf("manifest entry: %+v", e.Snapshot)
	}
	m, err := wasmsnap.Parse(w.file.Module(e.Snapshot.Module))
	if err != nil {
		t.Fatal(err)
	}
	if m.HasFuncExport("vk_snapshot_init") || !m.HasFuncExport("vk_snapshot_main") || !m.HasFuncExport("_start") {
		t.Errorf("snapshot module's exports: init dropped, main and _start kept expected")
	}
	// The file the capture read changes: the snapshot holds the old text.
	if err := os.WriteFile(filepath.Join(w.data, "seed"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	k, audit := w.f.open(t, Options{})
	for i := 0; i < 2; i++ {
		out, res := run(t, k, w.request("-c", "code", "arg 1"))
		if !res.Snapshot || res.ExitCode != 0 {
			t.Fatalf("exec %d: snapshot %v, exit %d: %s", i, res.Snapshot, res.ExitCode, out)
		}
		for k, want := range map[string]string{"start": "snapshot", "counter": "42", "seed": "from-capture", "big": "7,x",
			"env": "exec", "pid": strconv.Itoa(os.Getpid())} {
			if got := field(out, k); got != want {
				t.Errorf("exec %d: %s=%q, want %q (output %q)", i, k, got, want, out)
			}
		}
		if !strings.Contains(out, "argv=/snap,-c,code,arg 1 ") {
			t.Errorf("exec %d: argv not this exec's: %q", i, out)
		}
	}
	if !strings.Contains(audit.String(), `"snapshot":true`) {
		t.Errorf("audit log does not say the exec started from the snapshot:\n%s", audit)
	}
}

// TestSnapshotFallback: an exec that does not qualify starts cold, from
// _start: other arguments, other mounts, an environment variable that
// changes initialisation, another argv[0], or snapshots turned off.
func TestSnapshotFallback(t *testing.T) {
	w, err := newSnapWorld(t, snapSpec)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := w.f.open(t, Options{})
	cases := map[string]Request{}
	cases["option"] = w.request("-X", "code")
	cases["stdin"] = w.request()
	cases["-c without code"] = w.request("-c")
	r := w.request("-c", "code")
	r.Mounts = append(r.Mounts, Mount{Guest: "/tmp", Host: t.TempDir()})
	cases["mounts"] = r
	r = w.request("-c", "code")
	r.Env = append(r.Env, "PYTHONHASHSEED=0")
	cases["PYTHON variable"] = r
	r = w.request("script.py")
	r.Args[0] = "/other"
	cases["argv0"] = r
	for name, req := range cases {
		out, res := run(t, k, req)
		if res.Snapshot || field(out, "start") != "cold" || field(out, "counter") != "1" {
			t.Errorf("%s: snapshot %v, output %q; want a cold start", name, res.Snapshot, out)
		}
	}
	for _, args := range [][]string{{"-m", "mod"}, {"script.py", "-x"}} {
		out, res := run(t, k, w.request(args...))
		if !res.Snapshot || field(out, "start") != "snapshot" {
			t.Errorf("%v: snapshot %v, output %q; want a snapshot start", args, res.Snapshot, out)
		}
	}
	// A kernel of this entry alone loads the entry's own module only when
	// a cold start needs it.
	one, _ := w.f.open(t, Options{Entries: []string{"snap"}})
	if r := one.entryRoute("snap"); r == nil || !r.lazy || r.module != nil {
		t.Fatalf("entry's own module loaded ahead in a kernel of the entry alone")
	}
	for _, args := range [][]string{{"-c", "x"}, {"-X"}, {"-X"}} {
		out, res := run(t, one, w.request(args...))
		if res.Snapshot != (args[0] == "-c") || res.ExitCode != 0 {
			t.Errorf("entry alone, %v: snapshot %v, output %q", args, res.Snapshot, out)
		}
	}
	off, _ := w.f.open(t, Options{NoSnapshot: true})
	out, res := run(t, off, w.request("-c", "code"))
	if res.Snapshot || field(out, "start") != "cold" {
		t.Errorf("NoSnapshot: snapshot %v, output %q; want a cold start", res.Snapshot, out)
	}
}

// TestSnapshotStart: a request run with Start (a child process, made
// ahead from the snapshot) starts from it; one that does not qualify
// throws the instance made ahead away and starts cold.
func TestSnapshotStart(t *testing.T) {
	w, err := newSnapWorld(t, snapSpec)
	if err != nil {
		t.Fatal(err)
	}
	k, audit := w.f.open(t, Options{StartOnly: true})
	for _, c := range []struct {
		args  []string
		start string
	}{{[]string{"-c", "x"}, "snapshot"}, {[]string{"-X"}, "cold"}, {[]string{"-m", "y"}, "snapshot"}} {
		req := w.request(c.args...)
		f, err := os.Open(req.Path)
		if err != nil {
			t.Fatal(err)
		}
		req.File = f
		rp, wp, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		req.Stdout = wp
		p, err := k.Start(context.Background(), req)
		wp.Close()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		out.ReadFrom(rp)
		rp.Close()
		res, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if field(out.String(), "start") != c.start || res.ExitCode != 0 {
			t.Errorf("%v: exit %d, output %q; want a %s start", c.args, res.ExitCode, out.String(), c.start)
		}
		if c.start == "snapshot" && field(out.String(), "pid") != strconv.Itoa(p.Pid()) {
			t.Errorf("%v: pid %s in the output, the child is %d", c.args, field(out.String(), "pid"), p.Pid())
		}
	}
	if !strings.Contains(audit.String(), `"snapshot":true`) {
		t.Errorf("the children's audit records do not say they started from the snapshot:\n%s", audit)
	}
}

// TestSnapshotRefused: a capture that leaves an fd open is refused; a
// megabinary whose snapshot module was changed (its digest no longer
// matches) or that was made with another wazero fails to open.
func TestSnapshotRefused(t *testing.T) {
	leak := snapSpec
	leak.Args = []string{"leak", "-c", "init"}
	if _, err := newSnapWorld(t, leak); err == nil || !strings.Contains(err.Error(), "fd 4 is open") {
		t.Errorf("capture leaving a file open: err %v, want a refusal naming fd 4", err)
	}

	w, err := newSnapWorld(t, snapSpec)
	if err != nil {
		t.Fatal(err)
	}
	// A byte of the snapshot module flipped, in the file as signed.
	b, err := os.ReadFile(w.mb)
	if err != nil {
		t.Fatal(err)
	}
	snap := w.file.Module(w.file.Manifest.Entry("snap").Snapshot.Module)
	i := bytes.Index(b, snap)
	if i < 0 {
		t.Fatal("snapshot module not found in the megabinary")
	}
	b[i+len(snap)/2] ^= 0xff
	tampered := filepath.Join(w.dir, "tampered.vkmb")
	if err := os.WriteFile(tampered, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), tampered, Options{TrustedKeys: []ed25519.PublicKey{w.f.pub}}); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("tampered snapshot module: Open err %v, want a digest mismatch", err)
	}

	// Another wazero version, signed as such.
	entries := append([]megabinary.Entry(nil), w.file.Manifest.Entries...)
	s := *entries[0].Snapshot
	s.Wazero = "v0.0.1"
	entries[0].Snapshot = &s
	modules := map[string][]byte{entries[0].Module: w.file.Module(entries[0].Module), s.Module: w.file.Module(s.Module)}
	other, err := megabinary.Build(entries, modules)
	if err != nil {
		t.Fatal(err)
	}
	other.Sign(w.f.priv)
	name := filepath.Join(w.dir, "other.vkmb")
	if err := other.WriteFile(name); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), name, Options{TrustedKeys: []ed25519.PublicKey{w.f.pub}})
	var se *SnapshotError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "v0.0.1") {
		t.Errorf("snapshot of another wazero: Open err %v, want a SnapshotError naming v0.0.1", err)
	}
	if _, err := Open(context.Background(), name, Options{TrustedKeys: []ed25519.PublicKey{w.f.pub}, NoSnapshot: true}); err != nil {
		t.Errorf("with NoSnapshot the snapshot is not loaded, so not refused: %v", err)
	}
}
