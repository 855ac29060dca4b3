package vkernel

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/megabinary"
)

// BenchmarkExecWarm measures a whole exec of a tiny guest whose hash is
// cached (the file is immutable): open, route, instantiate, run to exit,
// clean up.
func BenchmarkExecWarm(b *testing.B) {
	f := newFixture(b, entry("a", identGuest(b, "bench"), megabinary.Resources{}))
	k, _ := f.open(b, Options{Audit: discard{}})
	immutable(b, f.wasm("a"))
	time.Sleep(RacyWindow + 100*time.Millisecond)
	ctx := context.Background()
	for b.Loop() {
		if _, err := k.Exec(ctx, Request{Path: f.wasm("a")}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRehash9MiB measures what an exec of a python.wasm-sized file
// that can still be written costs for its hash: it is read and hashed on
// every exec. The file is listed as an alias of a tiny guest, so the rest
// of the exec is as small as it gets.
func BenchmarkRehash9MiB(b *testing.B) {
	big := make([]byte, 9<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	e := entry("a", identGuest(b, "rehash"), megabinary.Resources{})
	e.Hashes = []string{megabinary.SHA256(big)}
	f := newFixture(b, e)
	p := f.dir + "/big"
	os.WriteFile(p, big, 0o755)
	k, _ := f.open(b, Options{Audit: discard{}})
	ctx := context.Background()
	b.SetBytes(int64(len(big)))
	for b.Loop() {
		if _, err := k.Exec(ctx, Request{Path: p}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExecCold measures an exec whose file must be hashed first.
func BenchmarkExecCold(b *testing.B) {
	wasm := cGuest(b, "probe.c")
	f := newFixture(b, entry("probe", wasm, megabinary.Resources{}))
	k, _ := f.open(b, Options{Audit: discard{}})
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		p := f.dir + "/copy"
		os.Remove(p)
		os.WriteFile(p, wasm, 0o755)
		b.StartTimer()
		if _, err := k.Exec(ctx, Request{Path: p, Args: []string{"probe", "exit", "0"}}); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
