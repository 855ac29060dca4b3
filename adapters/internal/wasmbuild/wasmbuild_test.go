package wasmbuild

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var testRecipe = Recipe{Name: "x-wasm", Wasm: "x.wasm", Image: "compat/x-reference", ImageEnv: "COMPAT_X_REFERENCE_IMAGE"}

// writeBuild lays out a build of testRecipe in dir with info as its
// build-info.json.
func writeBuild(t *testing.T, dir, info string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"build-info.json": info, "x.wasm": "\x00asm"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLatest(t *testing.T) {
	cache := t.TempDir()
	if _, err := Latest(cache, testRecipe); err == nil || !strings.Contains(err.Error(), "make images") {
		t.Fatalf("Latest of an empty cache: %v, want an error saying how to build", err)
	}
	for i, key := range []string{"old", "new", "incomplete"} {
		dir := filepath.Join(cache, "x-wasm", key)
		writeBuild(t, dir, `{"source": {"version": "1.0-`+key+`"}}`)
		if key != "incomplete" {
			stamp := filepath.Join(dir, ".done")
			os.WriteFile(stamp, nil, 0o644)
			when := time.Now().Add(time.Duration(i-5) * time.Minute)
			os.Chtimes(stamp, when, when)
		}
	}
	b, err := Latest(cache, testRecipe)
	if err != nil || filepath.Base(b.Dir) != "new" || b.Version != "1.0-new" {
		t.Fatalf("Latest = %+v, %v; want the newest complete build", b, err)
	}
	if b.Wasm() != filepath.Join(b.Dir, "x.wasm") || b.Path("lib", "a") != filepath.Join(b.Dir, "lib", "a") {
		t.Errorf("paths: %s, %s", b.Wasm(), b.Path("lib", "a"))
	}
	if o, err := OpenOrLatest("", cache, testRecipe); err != nil || o.Dir != b.Dir {
		t.Errorf("OpenOrLatest without a directory = %+v, %v; want the latest", o, err)
	}
	old := filepath.Join(cache, "x-wasm", "old")
	if o, err := OpenOrLatest(old, cache, testRecipe); err != nil || o.Dir != old {
		t.Errorf("OpenOrLatest(%s) = %+v, %v", old, o, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, testRecipe); err == nil || !strings.Contains(err.Error(), "images.mk x-wasm") {
		t.Errorf("no build-info.json: %v, want the make target to run", err)
	}
	os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(`{"source": {}}`), 0o644)
	if _, err := Open(dir, testRecipe); err == nil || !strings.Contains(err.Error(), "no source version") {
		t.Errorf("no version: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(`{"source": {"version": "1"}}`), 0o644)
	if _, err := Open(dir, testRecipe); err == nil || !strings.Contains(err.Error(), "x.wasm") {
		t.Errorf("no module: %v, want its name", err)
	}
	os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(`{`), 0o644)
	if _, err := Open(dir, testRecipe); err == nil || !strings.Contains(err.Error(), "build-info.json") {
		t.Errorf("bad JSON: %v", err)
	}
}

// TestReferenceImage: the image build-info.json records wins over the tag
// made from the version, and the recipe's variable wins over both; the tag
// maps every character build-image.sh maps (python's used to map only '+').
func TestReferenceImage(t *testing.T) {
	t.Setenv(testRecipe.ImageEnv, "")
	cases := []struct{ info, want string }{
		{`{"source": {"version": "3.11.2-6+deb12u8"}}`, "compat/x-reference:3.11.2-6_deb12u8"},
		{`{"source": {"version": "5:7.0.15-1~deb12u10"}}`, "compat/x-reference:7.0.15-1_deb12u10"},
		{`{"source": {"version": "1.2~rc1+b2"}, "reference_image": "compat/x-reference:recorded"}`, "compat/x-reference:recorded"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		writeBuild(t, dir, c.info)
		b, err := Open(dir, testRecipe)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.ReferenceImage(); got != c.want {
			t.Errorf("%s: ReferenceImage = %q, want %q", c.info, got, c.want)
		}
		t.Setenv(testRecipe.ImageEnv, "mine:1")
		if got := b.ReferenceImage(); got != "mine:1" {
			t.Errorf("%s with %s set: %q", c.info, testRecipe.ImageEnv, got)
		}
		t.Setenv(testRecipe.ImageEnv, "")
	}
	// The Debian versions tr '+~:' '__-' maps without an epoch.
	dir := t.TempDir()
	writeBuild(t, dir, `{"source": {"version": "1.0~a+b"}}`)
	b, _ := Open(dir, testRecipe)
	if got := b.ReferenceImage(); got != "compat/x-reference:1.0_a_b" {
		t.Errorf("'~' and '+': %q", got)
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
