package wasmbuild

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestLatestAndVersion(t *testing.T) {
	cache := t.TempDir()
	if _, err := Latest(cache, "x-wasm"); err == nil {
		t.Fatal("found a build in an empty cache")
	}
	for i, key := range []string{"old", "new", "incomplete"} {
		dir := filepath.Join(cache, "x-wasm", key)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(`{"source": {"version": "1.0-`+key+`"}}`), 0o644)
		if key != "incomplete" {
			stamp := filepath.Join(dir, ".done")
			os.WriteFile(stamp, nil, 0o644)
			when := time.Now().Add(time.Duration(i-5) * time.Minute)
			os.Chtimes(stamp, when, when)
		}
	}
	dir, err := Latest(cache, "x-wasm")
	if err != nil || filepath.Base(dir) != "new" {
		t.Fatalf("Latest = %q, %v; want the newest complete build", dir, err)
	}
	if v, err := SourceVersion(dir); err != nil || v != "1.0-new" {
		t.Fatalf("SourceVersion = %q, %v", v, err)
	}
	if _, err := SourceVersion(t.TempDir()); err == nil {
		t.Fatal("version of a directory without build-info.json")
	}
}

func TestImports(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(`{"wasm_imports": {"vkernel": ["proc_signals", "sock_connect"], "wasi_snapshot_preview1": ["fd_write"]}}`), 0o644)
	imports, err := Imports(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"proc_signals", "sock_connect"}; !slices.Equal(imports["vkernel"], want) {
		t.Fatalf("vkernel imports %q, want %q", imports["vkernel"], want)
	}
	os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(`{"source": {"version": "1"}}`), 0o644)
	if _, err := Imports(dir); err == nil {
		t.Fatal("a build-info.json without wasm_imports read as a build importing nothing")
	}
	if _, err := Imports(t.TempDir()); err == nil {
		t.Fatal("imports of a directory without build-info.json")
	}
}
