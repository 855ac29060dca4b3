package vkernel

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel/internal/hashcache"
	"github.com/compat-project/compat/vkernel/megabinary"
	"golang.org/x/sys/unix"
)

// immutable makes a file immutable for the rest of the test, or reports the
// missing privilege or filesystem support.
func immutable(t testing.TB, path string) {
	t.Helper()
	if err := hashcache.SetImmutable(path, true); err != nil {
		testenv.Missing(t, "cannot make %s immutable (needs root and ext4): %v", path, err)
	}
	t.Cleanup(func() { hashcache.SetImmutable(path, false) })
}

// TestHashCacheReuse: an immutable file (on ext4) is hashed once; once the
// attribute is cleared and the file rewritten with different bytes of the
// same size, it is hashed again and routed by its new content.
func TestHashCacheReuse(t *testing.T) {
	a, b := identGuest(t, "cache-a"), identGuest(t, "cache-b")
	if len(a) != len(b) {
		t.Fatal("variants differ in size")
	}
	f := newFixture(t, entry("a", a, megabinary.Resources{}), entry("b", b, megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	path := f.wasm("a")
	immutable(t, path)
	// Only a file whose last change is older than the racy window is cached.
	time.Sleep(RacyWindow + 100*time.Millisecond)
	for i := 0; i < 3; i++ {
		if out, _ := run(t, k, Request{Path: path}); out != "cache-a\n" {
			t.Fatalf("run %d: %q", i, out)
		}
	}
	if s := k.Stats(); s.HashCacheMisses != 1 || s.HashCacheHits != 2 {
		t.Fatalf("stats %+v, want 1 miss then 2 hits", s)
	}
	if err := hashcache.SetImmutable(path, false); err != nil {
		t.Fatal(err)
	}
	fd, _ := os.OpenFile(path, os.O_WRONLY, 0)
	fd.WriteAt(b, 0)
	fd.Close()
	if out, _ := run(t, k, Request{Path: path}); out != "cache-b\n" {
		t.Fatalf("after rewrite: %q", out)
	}
}

// TestHashCacheMutableRehashed: a file that can still be written is hashed
// on every exec, however old its last change.
func TestHashCacheMutableRehashed(t *testing.T) {
	f := newFixture(t, entry("a", identGuest(t, "mutable"), megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	old := time.Now().Add(-time.Hour)
	os.Chtimes(f.wasm("a"), old, old)
	time.Sleep(RacyWindow + 100*time.Millisecond)
	for i := 0; i < 3; i++ {
		run(t, k, Request{Path: f.wasm("a")})
	}
	if s := k.Stats(); s.HashCacheMisses != 3 || s.HashCacheHits != 0 {
		t.Fatalf("stats %+v, want every exec hashed", s)
	}
}

// TestHashCacheRace rewrites one file in place, alternating between a
// listed program and unlisted bytes of the same size, while execs run
// concurrently. Every allowed exec must have routed by a listed hash, and
// once the writer stops on the unlisted bytes, the next exec must be denied:
// a stale cached digest would let unlisted content through.
func TestHashCacheRace(t *testing.T) {
	listed := identGuest(t, "race-listed")
	unlisted := identGuest(t, "race-UNLIST")
	if len(listed) != len(unlisted) {
		t.Fatal("variants differ in size")
	}
	f := newFixture(t, entry("listed", listed, megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	path := f.wasm("listed")
	listedHash := megabinary.SHA256(listed)

	stop := make(chan struct{})
	var writes atomic.Int64
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		fd, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer fd.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				fd.WriteAt(unlisted, 0)
				return
			default:
			}
			content := listed
			if i%2 == 1 {
				content = unlisted
			}
			fd.WriteAt(content, 0)
			writes.Add(1)
		}
	}()
	var allowed, denied atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Second)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				res, err := k.Exec(context.Background(), Request{Path: path})
				var d *DeniedError
				switch {
				case err == nil && res.Hash == listedHash:
					allowed.Add(1)
				case errors.As(err, &d):
					denied.Add(1)
				default:
					t.Errorf("exec during the race: res=%+v err=%v", res, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	writer.Wait()
	_, err := k.Exec(context.Background(), Request{Path: path})
	var d *DeniedError
	if !errors.As(err, &d) || d.Hash != megabinary.SHA256(unlisted) {
		t.Fatalf("after the race the file holds unlisted bytes, but exec gave %v", err)
	}
	t.Logf("%d writes; %d execs allowed, %d denied", writes.Load(), allowed.Load(), denied.Load())
	if allowed.Load() == 0 || denied.Load() == 0 {
		t.Logf("the race did not exercise both outcomes")
	}
}

// TestHashCacheSameTickRewrite: a listed program is run, then overwritten in
// place with unlisted bytes of the same size, at once, so that on a kernel
// with coarse timestamps the rewrite lands in the same tick and leaves size,
// mtime and ctime unchanged. Every such exec must be denied. (Linux 6.13+
// gives a file observed by stat a fine-grained timestamp on its next change,
// so there the key changes anyway; TestSettled covers the window that
// protects the other kernels and filesystems.)
func TestHashCacheSameTickRewrite(t *testing.T) {
	listed := identGuest(t, "tick-listed")
	unlisted := identGuest(t, "tick-UNLIST")
	f := newFixture(t, entry("listed", listed, megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	path := f.wasm("listed")
	fd, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	for i := 0; i < 200; i++ {
		fd.WriteAt(listed, 0)
		if _, err := k.Exec(context.Background(), Request{Path: path}); err != nil {
			t.Fatalf("round %d, listed bytes: %v", i, err)
		}
		fd.WriteAt(unlisted, 0)
		res, err := k.Exec(context.Background(), Request{Path: path})
		var d *DeniedError
		if !errors.As(err, &d) {
			t.Fatalf("round %d: unlisted bytes ran as %+v (stale cached digest)", i, res)
		}
	}
}

// TestSettled: only digests of files whose last change is older than the
// racy window are cached.
func TestSettled(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		age  time.Duration
		want bool
	}{
		{0, false}, {time.Millisecond, false}, {time.Second, false}, {RacyWindow - time.Millisecond, false},
		{RacyWindow + time.Millisecond, true}, {time.Hour, true}, {-time.Second, false},
	} {
		if got := settled(now.Add(-c.age), now); got != c.want {
			t.Errorf("changed %v before hashing: settled=%v, want %v", c.age, got, c.want)
		}
	}
}

// TestSeedHash: a child process takes its parent's digest of the file it
// is handed (runSpec.Known) only for a file the parent could have cached:
// immutable, its identity unchanged. It then does not read the file.
func TestSeedHash(t *testing.T) {
	f := newFixture(t, entry("a", identGuest(t, "seed-a"), megabinary.Resources{}), entry("b", identGuest(t, "seed-b"), megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	frozenPath, writable := f.wasm("a"), f.wasm("b")
	immutable(t, frozenPath)
	time.Sleep(RacyWindow + 100*time.Millisecond)
	open := func(p string) int {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	if knownFor(open(writable), "x") != nil {
		t.Errorf("a writable file's digest is handed on")
	}
	fd := open(frozenPath)
	known := knownFor(fd, "parent-digest")
	if known == nil {
		t.Fatal("an immutable file's digest is not handed on")
	}
	other := *known
	other.Key.Ino++
	k.seedHash(fd, &other)
	if d, _ := k.hashFD(fd); d == "parent-digest" {
		t.Errorf("a digest taken under another identity was used")
	}
	k.hashes = hashcache.New(16)
	k.seedHash(fd, known)
	if d, _ := k.hashFD(fd); d != "parent-digest" {
		t.Errorf("digest %q: the parent's was not taken", d)
	}
}
