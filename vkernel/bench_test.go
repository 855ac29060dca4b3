package vkernel

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/megabinary"
)

// BenchmarkExecWarm measures a whole exec of a tiny guest whose hash is
// cached: open, route, instantiate, run to exit, clean up.
func BenchmarkExecWarm(b *testing.B) {
	f := newFixture(b, entry("a", identGuest(b, "bench"), megabinary.Resources{}))
	k, _ := f.open(b, Options{Audit: discard{}})
	old := time.Now().Add(-time.Hour)
	os.Chtimes(f.wasm("a"), old, old)
	time.Sleep(RacyWindow + 100*time.Millisecond)
	ctx := context.Background()
	for b.Loop() {
		if _, err := k.Exec(ctx, Request{Path: f.wasm("a")}); err != nil {
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
