package vkernel

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel/internal/hashcache"
	"github.com/compat-project/compat/vkernel/megabinary"
	"golang.org/x/sys/unix"
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

// openErr opens the fixture's megabinary and returns the audit log and the
// load error; a kernel that opens is closed and the test fails.
func openErr(t *testing.T, f *fixture, opts Options) (string, error) {
	t.Helper()
	audit := &syncBuffer{}
	opts.TrustedKeys = []ed25519.PublicKey{f.pub}
	opts.Audit = audit
	k, err := Open(context.Background(), f.mb, opts)
	if err == nil {
		k.Close(context.Background())
		t.Fatal("the megabinary loaded")
	}
	return audit.String(), err
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
	audit, err := openErr(t, f, Options{CacheDir: cache})
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
			audit, err := openErr(t, f, Options{CacheDir: cache})
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
	if _, err := openErr(t, f, Options{CacheDir: cache}); !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	os.Chmod(key, 0o600)
	os.WriteFile(key, make([]byte, 32), 0o600) // a key the attacker knows
	audit, err := openErr(t, f, Options{CacheDir: cache})
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

// fileKey is the identity the hash cache would key a file by.
func fileKey(t *testing.T, path string) hashcache.Key {
	t.Helper()
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_BASIC_STATS, &st); err != nil {
		t.Fatal(err)
	}
	return hashcache.KeyOfStatx(&st)
}

// TestIntegritySharedMapping is the attack of issue 10: listed content S is
// written through a shared writable mapping, left to settle past the racy
// window and run; then unlisted content U is written through the same
// mapping. The page is already dirty, so the write leaves size, mtime and
// ctime as they were, and a digest cached by file identity would still say
// S. The second exec must be denied, by U's hash. On tmpfs the identity is
// checked to be unchanged, so the attack's premise holds there; the third
// case adds chattr +i, which tmpfs takes but does not enforce on a mapping
// made before it.
func TestIntegritySharedMapping(t *testing.T) {
	listed := identGuest(t, "mmap-listed")
	unlisted := identGuest(t, "mmap-UNLIST")
	if len(listed) != len(unlisted) {
		t.Fatal("variants differ in size")
	}
	f := newFixture(t, entry("listed", listed, megabinary.Resources{}))
	shm := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		shm = "/dev/shm"
	} else {
		testenv.Missing(t, "no /dev/shm (tmpfs) to run the attack where writeback cannot interfere")
	}
	for _, c := range []struct {
		name, dir string
		immutable bool
	}{
		{"disk", t.TempDir(), false},
		{"tmpfs", shm, false},
		{"tmpfs immutable", shm, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir, err := os.MkdirTemp(c.dir, "vkernel-mmap-")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "prog")
			t.Cleanup(func() { hashcache.SetImmutable(path, false); os.RemoveAll(dir) })
			if err := os.WriteFile(path, make([]byte, len(listed)), 0o755); err != nil {
				t.Fatal(err)
			}
			fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			m, err := unix.Mmap(fd, 0, len(listed), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Munmap(m)
			copy(m, listed)
			if c.immutable {
				if err := hashcache.SetImmutable(path, true); err != nil {
					testenv.Missing(t, "cannot chattr +i on tmpfs (needs root): %v", err)
				}
			}
			time.Sleep(RacyWindow + 200*time.Millisecond)
			k, audit := f.open(t, Options{})
			if out, _ := run(t, k, Request{Path: path}); out != "mmap-listed\n" {
				t.Fatalf("listed content: %q", out)
			}
			before := fileKey(t, path)
			copy(m, unlisted)
			if after := fileKey(t, path); after != before {
				if strings.HasPrefix(c.dir, shm) && shm != "" {
					t.Fatalf("on tmpfs the write through the dirty mapping changed the identity %+v -> %+v: the attack's premise does not hold", before, after)
				}
				t.Logf("the page was written back meanwhile, so the write changed the identity; the exec is checked all the same")
			}
			res, err := k.Exec(context.Background(), Request{Path: path})
			var denied *DeniedError
			if !errors.As(err, &denied) || denied.Hash != megabinary.SHA256(unlisted) {
				t.Fatalf("unlisted bytes written through the mapping: res=%+v err=%v, want a denial by their hash", res, err)
			}
			var found bool
			for _, r := range auditRecords(t, audit.String()) {
				found = found || (r.Decision == "deny" && r.Path == path && r.Hash == denied.Hash)
			}
			if !found {
				t.Fatalf("no audit record of the denial; log:\n%s", audit.String())
			}
		})
	}
}

// TestImmutableWriteProtectsMappings checks what the hash cache relies on
// to cache an immutable file's digest on ext4: setting the attribute
// flushes the file and write-protects its mappings, so a write through a
// shared mapping made before, with its page dirty, faults instead of
// changing the file.
func TestImmutableWriteProtectsMappings(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Type != unix.EXT4_SUPER_MAGIC {
		testenv.Missing(t, "the temporary directory %s is not on ext4", dir)
	}
	path := filepath.Join(dir, "f")
	os.WriteFile(path, make([]byte, 4096), 0o644)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	m, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	m[0] = 'S'
	immutable(t, path)
	faulted := func() (faulted bool) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { faulted = recover() != nil }()
		m[1] = 'U'
		return false
	}()
	b := make([]byte, 2)
	unix.Pread(fd, b, 0)
	if !faulted || string(b) != "S\x00" {
		t.Fatalf("after chattr +i a write through the mapping faulted=%v and the file holds %q: ext4 no longer write-protects mappings, so immutable files must not be cached", faulted, b)
	}
}
