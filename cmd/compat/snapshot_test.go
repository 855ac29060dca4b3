package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// TestSnapshotCLI: compat megabinary build makes the snapshot start a spec
// entry asks for and signs it; compat exec starts from it (the state the
// capture left, this exec's argv), -snapshot=false and COMPAT_SNAPSHOT=off
// start cold; a megabinary whose snapshot module was tampered with is
// refused with exit 2 and nothing runs.
func TestSnapshotCLI(t *testing.T) {
	wasm, err := guests.CPosix("snapshot.c", guests.Clang19)
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("COMPAT_CACHE", filepath.Join(dir, "cache"))
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	os.WriteFile(filepath.Join(dir, "data", "seed"), []byte("cli"), 0o644)
	os.WriteFile(filepath.Join(dir, "snap.wasm"), wasm, 0o755)
	spec := `{"entries": [{"name": "snap", "wasm": "snap.wasm",
	  "resources": {"mounts": [{"guest": "/data", "read_only": true}]},
	  "snapshot": {"init": "vk_snapshot_init", "export": "vk_snapshot_main", "form": "python",
	    "argv0": "/snap", "args": ["-c", "init"], "mounts": [{"guest": "/data", "host": "data", "read_only": true}]}}]}`
	os.WriteFile(filepath.Join(dir, "spec.json"), []byte(spec), 0o644)
	key := filepath.Join(dir, "key")
	if _, err := megabinary.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	mb := filepath.Join(dir, "snap.vkmb")
	code, out, errOut := compat(t, "megabinary", "build", "-spec", filepath.Join(dir, "spec.json"), "-out", mb, "-key", key)
	if code != 0 || !strings.Contains(out, "snapshot of snap: module ") {
		t.Fatalf("build: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := compat(t, "megabinary", "inspect", mb); code != 0 || !strings.Contains(out, "snapshot: module ") {
		t.Errorf("inspect: exit %d, no snapshot line:\n%s", code, out)
	}
	exec := func(mb string, flags ...string) (int, string, string) {
		args := append([]string{"exec", "-megabinary", mb, "-pubkey", key + ".pub", "-mount", "/data=" + filepath.Join(dir, "data") + ":ro",
			"-argv0", "/snap"}, flags...)
		return compat(t, append(args, filepath.Join(dir, "snap.wasm"), "-c", "code", "x")...)
	}
	if code, out, errOut := exec(mb); code != 0 || !strings.Contains(out, "start=snapshot counter=42 seed=cli") || !strings.Contains(out, "argv=/snap,-c,code,x ") {
		t.Errorf("exec: exit %d, output %q %s; want a snapshot start", code, out, errOut)
	}
	if code, out, _ := exec(mb, "-snapshot=false"); code != 0 || !strings.Contains(out, "start=cold") {
		t.Errorf("exec -snapshot=false: exit %d, output %q; want a cold start", code, out)
	}
	t.Setenv("COMPAT_SNAPSHOT", "off")
	if code, out, _ := exec(mb); code != 0 || !strings.Contains(out, "start=cold") {
		t.Errorf("exec with COMPAT_SNAPSHOT=off: exit %d, output %q; want a cold start", code, out)
	}
	t.Setenv("COMPAT_SNAPSHOT", "")

	// One byte of the stored snapshot module changed.
	f, err := megabinary.ReadFile(mb)
	if err != nil {
		t.Fatal(err)
	}
	snap := f.Module(f.Manifest.Entry("snap").Snapshot.Module)
	b, _ := os.ReadFile(mb)
	i := bytes.Index(b, snap)
	if i < 0 {
		t.Fatal("snapshot module not found in the file")
	}
	b[i+len(snap)-100] ^= 1
	bad := filepath.Join(dir, "tampered.vkmb")
	os.WriteFile(bad, b, 0o644)
	if code, out, errOut := exec(bad); code != exitUsage || out != "" || !strings.Contains(errOut, "digest") {
		t.Errorf("tampered snapshot: exit %d, output %q, stderr %q; want exit 2 naming the digest", code, out, errOut)
	}
}
