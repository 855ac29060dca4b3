package vkernel

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compat-project/compat/vkernel/megabinary"
)

func TestOpenRefusesBadMegabinaries(t *testing.T) {
	f := newFixture(t, entry("a", identGuest(t, "a"), megabinary.Resources{}))
	good, _ := os.ReadFile(f.mb)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	write := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "mb")
		os.WriteFile(p, b, 0o644)
		return p
	}
	unsigned, _ := megabinary.Parse(good)
	unsignedFile := filepath.Join(t.TempDir(), "unsigned")
	// Rebuild without the trailer.
	uf, _ := megabinary.Build(unsigned.Manifest.Entries, map[string][]byte{unsigned.Manifest.Modules[0].Digest: unsigned.Module(unsigned.Manifest.Modules[0].Digest)})
	uf.WriteFile(unsignedFile)

	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-120] ^= 0x40 // inside the last module
	manifestByte := append([]byte(nil), good...)
	manifestByte[30] ^= 0x01
	sigByte := append([]byte(nil), good...)
	sigByte[len(sigByte)-1] ^= 0x01

	cases := []struct {
		name, path string
		keys       []ed25519.PublicKey
		want       string
	}{
		{"wrong key", f.mb, []ed25519.PublicKey{otherPub}, "not among the 1 trusted key"},
		{"no key", f.mb, nil, "no trusted public key"},
		{"unsigned", unsignedFile, []ed25519.PublicKey{f.pub}, "not signed"},
		{"truncated", write(good[:len(good)-150]), []ed25519.PublicKey{f.pub}, "truncated"},
		{"module byte changed", write(flipped), []ed25519.PublicKey{f.pub}, "do not match the manifest digest"},
		{"manifest byte changed", write(manifestByte), []ed25519.PublicKey{f.pub}, "manifest"},
		{"signature byte changed", write(sigByte), []ed25519.PublicKey{f.pub}, "does not match the manifest"},
		{"not a megabinary", write([]byte("hello, world, this is text")), []ed25519.PublicKey{f.pub}, "bad magic"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := Open(context.Background(), c.path, Options{TrustedKeys: c.keys})
			if err == nil {
				k.Close(context.Background())
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// TestAOTCache: the first load compiles into the cache directory, keyed by
// the wazero version and the megabinary digest; a second kernel loads from
// it and runs the same code.
func TestAOTCache(t *testing.T) {
	f := newFixture(t, entry("a", identGuest(t, "cached"), megabinary.Resources{}))
	cache := t.TempDir()
	k1, _ := f.open(t, Options{CacheDir: cache})
	dir := k1.CacheDir()
	if !strings.HasPrefix(dir, filepath.Join(cache, "aot", "wazero-")) || !strings.HasSuffix(dir, k1.Digest()) {
		t.Fatalf("cache dir %s is not keyed by wazero version and digest %s", dir, k1.Digest())
	}
	var files int
	filepath.Walk(dir, func(_ string, info os.FileInfo, _ error) error {
		if info != nil && !info.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Fatalf("nothing compiled into %s", dir)
	}
	k2, _ := f.open(t, Options{CacheDir: cache})
	if out, _ := run(t, k2, Request{Path: f.wasm("a")}); out != "cached\n" {
		t.Fatalf("from cache: %q", out)
	}
}
