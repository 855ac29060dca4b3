package vkernel

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compat-project/compat/vkernel/megabinary"
)

// The integrity suite: each attack on the fail-closed exec policy must be
// refused, load errors before anything runs and exec denials before the
// guest starts, each with an audit record naming the entry, the path and
// the hash.

// aotEntries returns the sealed AOT cache files of a kernel, by module.
func aotEntries(t *testing.T, k *Kernel) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k.CacheDir(), "*.aot"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// openErr opens the fixture's megabinary and returns the load error and the
// audit log; a kernel that opens is closed and the test fails.
func openErr(t *testing.T, f *fixture, opts Options) (error, string) {
	t.Helper()
	audit := &syncBuffer{}
	opts.TrustedKeys = []ed25519.PublicKey{f.pub}
	opts.Audit = audit
	k, err := Open(context.Background(), f.mb, opts)
	if err == nil {
		k.Close(context.Background())
		t.Fatal("the megabinary loaded")
	}
	return err, audit.String()
}

// deniedLoad checks a load error and its audit record: the record names the
// entry, the cache file and the file's hash.
func deniedLoad(t *testing.T, err error, audit, entry, path string) {
	t.Helper()
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), entry) {
		t.Errorf("load error does not name the entry %q and the file %s: %v", entry, path, err)
	}
	b, _ := os.ReadFile(path)
	hash := megabinary.SHA256(b)
	for _, r := range auditRecords(t, audit) {
		if r.Action == "load" && r.Decision == "deny" && r.Entry == entry && r.Path == path && r.Hash == hash {
			return
		}
	}
	t.Errorf("no audit record of the refused load naming entry %q, %s and sha256 %s; log:\n%s", entry, path, hash, audit)
}

// TestIntegrityAOTSwap is the attack of issue 10: in the cache of a
// megabinary with two entries, the two compiled files are swapped, so that
// a listed hash would run the other module's native code. The load fails
// and names the entry; nothing is recompiled in place of the bad entry.
func TestIntegrityAOTSwap(t *testing.T) {
	f := newFixture(t, entry("a", identGuest(t, "swap-a"), megabinary.Resources{}), entry("b", identGuest(t, "swap-b"), megabinary.Resources{}))
	cache := t.TempDir()
	k, _ := f.open(t, Options{CacheDir: cache})
	if s := k.Stats(); s.AOTCompiled != 2 || s.AOTLoaded != 0 {
		t.Fatalf("first load: %+v, want 2 modules compiled into the cache", s)
	}
	files := aotEntries(t, k)
	if len(files) != 2 {
		t.Fatalf("cache holds %v, want two entries", files)
	}
	// A second load reads both from the cache, checked.
	k2, _ := f.open(t, Options{CacheDir: cache})
	if s := k2.Stats(); s.AOTLoaded != 2 || s.AOTCompiled != 0 {
		t.Fatalf("second load: %+v, want both modules from the cache", s)
	}
	if out, _ := run(t, k2, Request{Path: f.wasm("a")}); out != "swap-a\n" {
		t.Fatalf("from the cache: %q", out)
	}

	a, _ := os.ReadFile(files[0])
	b, _ := os.ReadFile(files[1])
	os.WriteFile(files[0], b, 0o600)
	os.WriteFile(files[1], a, 0o600)
	err, audit := openErr(t, f, Options{CacheDir: cache})
	var bad *AOTError
	if !errors.As(err, &bad) {
		t.Fatalf("load error %v is not an *AOTError", err)
	}
	deniedLoad(t, err, audit, bad.Entry, bad.Path)
	if bad.Path != files[0] && bad.Path != files[1] {
		t.Errorf("error names %s, not one of the swapped files", bad.Path)
	}
	if got, _ := os.ReadFile(bad.Path); string(got) != string(a) && string(got) != string(b) {
		t.Error("the refused entry was rewritten (recompiled) instead of failing the load")
	}
}

// TestIntegrityAOTTamper: other ways to change the compiled code than a
// swap: a flipped byte, raw code without the seal (what wazero's own cache
// writes), an entry sealed for another megabinary, a truncated file and a
// symbolic link. Each fails the load with the entry named.
func TestIntegrityAOTTamper(t *testing.T) {
	wasm := identGuest(t, "tamper")
	f := newFixture(t, entry("t", wasm, megabinary.Resources{}))
	other := newFixture(t, entry("t", identGuest(t, "tamper-other"), megabinary.Resources{}), entry("u", wasm, megabinary.Resources{}))
	cases := map[string]func(path string, orig []byte, otherEntry []byte){
		"flipped code byte": func(p string, orig, _ []byte) {
			b := append([]byte(nil), orig...)
			b[len(b)-10] ^= 0x01
			os.WriteFile(p, b, 0o600)
		},
		"unsealed code": func(p string, orig, _ []byte) { os.WriteFile(p, orig[72:], 0o600) },
		"truncated":     func(p string, orig, _ []byte) { os.WriteFile(p, orig[:40], 0o600) },
		"sealed for another megabinary": func(p string, _, o []byte) {
			os.WriteFile(p, o, 0o600)
		},
		"symbolic link": func(p string, orig, _ []byte) {
			q := filepath.Join(filepath.Dir(p), "elsewhere")
			os.WriteFile(q, orig, 0o600)
			os.Remove(p)
			os.Symlink(q, p)
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			cache := t.TempDir()
			k, _ := f.open(t, Options{CacheDir: cache})
			files := aotEntries(t, k)
			// The same module in another megabinary, sealed under the same
			// host key and the same wazero key.
			ko, _ := other.open(t, Options{CacheDir: cache})
			var fromOther []byte
			for _, p := range aotEntries(t, ko) {
				if filepath.Base(p) == filepath.Base(files[0]) {
					fromOther, _ = os.ReadFile(p)
				}
			}
			if fromOther == nil {
				t.Fatal("the other megabinary has no entry for the shared module")
			}
			orig, _ := os.ReadFile(files[0])
			tamper(files[0], orig, fromOther)
			err, audit := openErr(t, f, Options{CacheDir: cache})
			var bad *AOTError
			if !errors.As(err, &bad) || bad.Entry != "t" || bad.Path != files[0] {
				t.Fatalf("load error %v does not name entry t and %s", err, files[0])
			}
			if name != "symbolic link" {
				deniedLoad(t, err, audit, "t", files[0])
			}
		})
	}
}

// TestIntegrityHostKey: the key that seals the cache must be the user's
// alone; a key others can read is refused, as is a cache whose key was
// replaced (every entry then fails its check).
func TestIntegrityHostKey(t *testing.T) {
	f := newFixture(t, entry("k", identGuest(t, "hostkey"), megabinary.Resources{}))
	cache := t.TempDir()
	k, _ := f.open(t, Options{CacheDir: cache})
	key := filepath.Join(cache, "aot", "host.key")
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("host key %s: %v %v, want mode 0600", key, st.Mode(), err)
	}
	files := aotEntries(t, k)

	os.Chmod(key, 0o644)
	if err, _ := openErr(t, f, Options{CacheDir: cache}); !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	os.Chmod(key, 0o600)
	os.WriteFile(key, make([]byte, 32), 0o600) // a key the attacker knows
	err, audit := openErr(t, f, Options{CacheDir: cache})
	deniedLoad(t, err, audit, "k", files[0])
}

// TestIntegrityMountOverCache: a guest given a mount that shows the AOT
// cache (the cache itself, a directory inside it, a directory above it, or
// a symbolic link to it), writable or not, is denied before it starts.
func TestIntegrityMountOverCache(t *testing.T) {
	f := newFixture(t, entry("probe", cGuest(t, "probe.c"), megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}}))
	top := t.TempDir()
	cache := filepath.Join(top, "cache")
	k, audit := f.open(t, Options{CacheDir: cache})
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(filepath.Join(cache, "aot"), link)
	hash := megabinary.SHA256(cGuest(t, "probe.c"))
	for name, m := range map[string]Mount{
		"the cache":           {Guest: "/", Host: filepath.Join(cache, "aot")},
		"inside the cache":    {Guest: "/", Host: k.CacheDir()},
		"above the cache":     {Guest: "/", Host: top},
		"the cache read-only": {Guest: "/", Host: cache, ReadOnly: true},
		"a link to the cache": {Guest: "/", Host: link},
		"the host root":       {Guest: "/", Host: "/"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := k.Exec(context.Background(), Request{Path: f.wasm("probe"), Args: []string{"probe", "fs"}, Mounts: []Mount{m}})
			var denied *DeniedError
			if !errors.As(err, &denied) || !strings.Contains(denied.Reason, "AOT cache") || denied.Hash != hash {
				t.Fatalf("mount of %s: %v, want a denial naming the AOT cache", m.Host, err)
			}
			var found bool
			for _, r := range auditRecords(t, audit.String()) {
				found = found || (r.Decision == "deny" && r.Entry == "probe" && r.Path == f.wasm("probe") && r.Hash == hash && strings.Contains(r.Reason, m.Host))
			}
			if !found {
				t.Fatalf("no audit record of the refused mount of %s", m.Host)
			}
		})
	}
	// A mount beside the cache is fine.
	run(t, k, Request{Path: f.wasm("probe"), Args: []string{"probe", "fs"}, Mounts: []Mount{{Guest: "/", Host: t.TempDir()}}})
}
