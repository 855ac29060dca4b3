package vkernel

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compat-project/compat/vkernel/internal/aotcache"
)

// TestSnapshotSplitCache: a kernel with a cache directory splits a
// snapshot module once and keeps the split, sealed; the next kernel reads
// it from there (no split made) and starts from it as from a fresh split,
// which it equals. A cached split that was changed in any way (a byte of
// the module without data, of the image, of the seal; sealed under
// another key or for another module; truncated; a symbolic link) fails
// the load with an *AOTError naming the entry and the file, and an audit
// record; the file is left as found, not made again.
func TestSnapshotSplitCache(t *testing.T) {
	w, err := newSnapWorld(t, snapSpec)
	if err != nil {
		t.Fatal(err)
	}
	digest := w.file.Manifest.Entry("snap").Snapshot.Module
	startsFromSnapshot := func(k *Kernel, what string) {
		t.Helper()
		out, res := run(t, k, w.request("-c", "code"))
		if !res.Snapshot || res.ExitCode != 0 || field(out, "start") != "snapshot" || field(out, "counter") != "42" ||
			field(out, "seed") != "from-capture" || field(out, "big") != "7,x" {
			t.Fatalf("%s: snapshot %v, exit %d, output %q; want a whole snapshot start", what, res.Snapshot, res.ExitCode, out)
		}
	}
	cache := t.TempDir()
	k1, _ := w.f.open(t, Options{CacheDir: cache})
	if s := k1.Stats(); s.SplitsMade != 1 || s.SplitsCached != 0 {
		t.Fatalf("first load: %d splits made, %d read from the cache; want 1 made", s.SplitsMade, s.SplitsCached)
	}
	startsFromSnapshot(k1, "first load")
	path := k1.splitPath(digest)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the split was not kept: %v", err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("split file %s: %v, %v; want mode 0600", path, st.Mode(), err)
	}

	k2, _ := w.f.open(t, Options{CacheDir: cache})
	if s := k2.Stats(); s.SplitsMade != 0 || s.SplitsCached != 1 {
		t.Fatalf("second load: %d splits made, %d read from the cache; want 1 read", s.SplitsMade, s.SplitsCached)
	}
	startsFromSnapshot(k2, "from the cache")
	// What the cache holds is the split of the signed bytes.
	cached, err := k2.cachedSplit(digest)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := splitModule(w.file.Module(digest))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cached.encode(), fresh.encode()) {
		t.Fatal("the cached split differs from a split of the signed module")
	}
	if len(fresh.runs) == 0 || fresh.size <= len(fresh.runs[0].data) {
		t.Errorf("split: %d runs over %d bytes; want the image's non-zero pages only", len(fresh.runs), fresh.size)
	}

	// A split of the same body sealed under a key that is not the host's,
	// and the true seal of another module's split.
	otherKey := make([]byte, aotcache.KeySize)
	rand.Read(otherKey)
	b := aotcache.Binding{Module: digest, Wazero: WazeroVersion()}
	forged := aotcache.SealFile(otherKey, splitKind, b, fresh.encode())
	hostKey, err := aotcache.LoadKey(filepath.Join(cache, "aot", "host.key"))
	if err != nil {
		t.Fatal(err)
	}
	otherModule := aotcache.SealFile(hostKey, splitKind, aotcache.Binding{Module: w.file.Manifest.Entry("snap").Module, Wazero: WazeroVersion()}, fresh.encode())
	body := len(orig) - len(fresh.encode())
	cases := map[string]func() error{
		"flipped byte of the module without data": func() error { return flip(path, orig, body+32+8+100) },
		"flipped byte of the image":               func() error { return flip(path, orig, len(orig)-10) },
		"flipped byte of the seal":                func() error { return flip(path, orig, 12) },
		"sealed under another key":                func() error { return os.WriteFile(path, forged, 0o600) },
		"sealed for another module":               func() error { return os.WriteFile(path, otherModule, 0o600) },
		"truncated":                               func() error { return os.WriteFile(path, orig[:len(orig)/2], 0o600) },
		"symbolic link": func() error {
			q := filepath.Join(filepath.Dir(path), "elsewhere")
			if err := os.WriteFile(q, orig, 0o600); err != nil {
				return err
			}
			os.Remove(path)
			return os.Symlink(q, path)
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			os.Remove(path)
			if err := os.WriteFile(path, orig, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := tamper(); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			audit, err := openErr(t, w.f, Options{CacheDir: cache})
			var bad *AOTError
			if !errors.As(err, &bad) {
				t.Fatalf("load error %v is not an *AOTError", err)
			}
			if bad.Entry != "snap" || bad.Path != path || bad.Module != digest {
				t.Errorf("error names entry %q, file %s, module %s; want snap, %s, %s", bad.Entry, bad.Path, bad.Module, path, digest)
			}
			if name != "symbolic link" { // not read: no hash
				deniedLoad(t, err, audit, bad.Entry, bad.Path)
			} else if !strings.Contains(audit, `"decision":"deny"`) || !strings.Contains(audit, "symbolic link") {
				t.Errorf("no audit record of the refused load; log:\n%s", audit)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
				t.Error("the refused split was rewritten instead of failing the load")
			}
		})
	}
	// Removed, it is made again from the signed module.
	os.Remove(path)
	k3, _ := w.f.open(t, Options{CacheDir: cache})
	if s := k3.Stats(); s.SplitsMade != 1 {
		t.Fatalf("after removing the split: %d made, want 1", s.SplitsMade)
	}
	startsFromSnapshot(k3, "split again")
}

// flip writes orig to path with byte i changed.
func flip(path string, orig []byte, i int) error {
	b := bytes.Clone(orig)
	b[i] ^= 0x01
	return os.WriteFile(path, b, 0o600)
}
