package aotcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

var testBinding = Binding{Megabinary: strings.Repeat("a", 64), Module: strings.Repeat("b", 64), Wazero: "v1.12.0"}

func TestSealUnseal(t *testing.T) {
	hostKey := bytes.Repeat([]byte{7}, KeySize)
	key := sha256.Sum256([]byte("module"))
	code := []byte("native code")
	sealed := Seal(hostKey, testBinding, key, code)
	got, err := Unseal(hostKey, testBinding, key, sealed)
	if err != nil || !bytes.Equal(got, code) {
		t.Fatalf("Unseal(Seal(code)) = %q, %v", got, err)
	}
	otherModule := testBinding
	otherModule.Module = strings.Repeat("c", 64)
	otherMB := testBinding
	otherMB.Megabinary = strings.Repeat("d", 64)
	otherWazero := testBinding
	otherWazero.Wazero = "v1.13.0"
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 1
	for name, c := range map[string]struct {
		hostKey []byte
		b       Binding
		key     Key
		data    []byte
		want    string
	}{
		"other host key":       {bytes.Repeat([]byte{8}, KeySize), testBinding, key, sealed, "MAC does not match"},
		"other module":         {hostKey, otherModule, key, sealed, "MAC does not match"},
		"other megabinary":     {hostKey, otherMB, key, sealed, "MAC does not match"},
		"other wazero version": {hostKey, otherWazero, key, sealed, "MAC does not match"},
		"other wazero key":     {hostKey, testBinding, sha256.Sum256([]byte("x")), sealed, "moved from another module"},
		"flipped code byte":    {hostKey, testBinding, key, flipped, "MAC does not match"},
		"unsealed":             {hostKey, testBinding, key, code, "truncated"},
		"bad magic":            {hostKey, testBinding, key, append([]byte("WAZEVO\x07v1.12.0"), sealed[15:]...), "bad magic"},
	} {
		if _, err := Unseal(c.hostKey, c.b, c.key, c.data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}

// FuzzUnseal: whatever the bytes, an entry opens only if it is exactly the
// sealed form of the code it yields.
func FuzzUnseal(f *testing.F) {
	hostKey := bytes.Repeat([]byte{7}, KeySize)
	key := sha256.Sum256([]byte("module"))
	f.Add(Seal(hostKey, testBinding, key, []byte("native code")))
	f.Add(Seal(hostKey, testBinding, key, nil))
	f.Add([]byte("VKAOT001"))
	f.Fuzz(func(t *testing.T, data []byte) {
		code, err := Unseal(hostKey, testBinding, key, data)
		if err == nil && !bytes.Equal(Seal(hostKey, testBinding, key, code), data) {
			t.Fatalf("%x opened, but is not the seal of the code it gave", data)
		}
	})
}

func TestLoadKey(t *testing.T) {
	name := filepath.Join(t.TempDir(), "aot", "host.key")
	k1, err := LoadKey(name)
	if err != nil || len(k1) != KeySize {
		t.Fatalf("new key: %d bytes, %v", len(k1), err)
	}
	if st, _ := os.Stat(name); st.Mode().Perm() != 0o600 {
		t.Fatalf("new key has mode %v", st.Mode())
	}
	if k2, err := LoadKey(name); err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load gave another key: %v", err)
	}
	os.Chmod(name, 0o640)
	if _, err := LoadKey(name); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key: %v", err)
	}
	os.Chmod(name, 0o600)
	os.WriteFile(name, []byte("short"), 0o600)
	if _, err := LoadKey(name); err == nil || !strings.Contains(err.Error(), "holds 5 bytes") {
		t.Fatalf("short key: %v", err)
	}
	os.Remove(name)
	os.Symlink("/etc/hostname", name)
	if _, err := LoadKey(name); err == nil {
		t.Fatal("a symbolic link was taken as the key")
	}
}

// TestInstall: once installed, wazero compiles through the cache: the
// first runtime adds the module's code, a second one loads it from there
// and runs it; a sealed entry that fails its check fails CompileModule.
func TestInstall(t *testing.T) {
	// The smallest module with a function, so there is code to cache.
	wasm := []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 7, 5, 1, 1, 'f', 0, 0, 10, 4, 1, 2, 0, 0x0b}
	dir := t.TempDir()
	hostKey := bytes.Repeat([]byte{7}, KeySize)
	ctx := context.Background()
	compile := func() (*Cache, error) {
		c := New(dir, hostKey, Binding{Megabinary: testBinding.Megabinary, Wazero: "test"})
		cc := wazero.NewCompilationCache()
		defer cc.Close(ctx)
		if err := Install(cc, c); err != nil {
			t.Fatal(err)
		}
		if err := Install(cc, c); err == nil {
			t.Fatal("a second Install succeeded")
		}
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cc))
		defer r.Close(ctx)
		c.Expect(testBinding.Module)
		m, err := r.CompileModule(ctx, wasm)
		if err != nil {
			return c, err
		}
		mod, err := r.InstantiateModule(ctx, m, wazero.NewModuleConfig())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mod.ExportedFunction("f").Call(ctx); err != nil {
			t.Fatal(err)
		}
		return c, nil
	}
	c, err := compile()
	if hits, adds := c.Counts(); err != nil || hits != 0 || adds != 1 {
		t.Fatalf("first compile: %d loaded, %d added, %v", hits, adds, err)
	}
	c, err = compile()
	if hits, adds := c.Counts(); err != nil || hits != 1 || adds != 0 {
		t.Fatalf("second compile: %d loaded, %d added, %v", hits, adds, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.aot"))
	b, _ := os.ReadFile(files[0])
	b[len(b)-1] ^= 1
	os.WriteFile(files[0], b, 0o600)
	c, err = compile()
	var bad *TamperedError
	if !errors.As(err, &bad) || bad.Path != files[0] || c.Failure() == nil {
		t.Fatalf("tampered entry: %v", err)
	}
}

// BenchmarkUnseal measures the check a load adds per module, for code the
// size of python.wasm's (25 MB compiled from 8.7 MB of wasm).
func BenchmarkUnseal(b *testing.B) {
	hostKey := bytes.Repeat([]byte{7}, KeySize)
	key := sha256.Sum256([]byte("module"))
	sealed := Seal(hostKey, testBinding, key, make([]byte, 25<<20))
	b.SetBytes(int64(len(sealed)))
	for b.Loop() {
		if _, err := Unseal(hostKey, testBinding, key, sealed); err != nil {
			b.Fatal(err)
		}
	}
}
