package vkernel

import (
	"os"
	"testing"
)

// BenchmarkHostCallsFile measures what counting costs an exec besides the
// calls: making, mapping and unmapping its host calls file (removed
// again, as a unit's directory holds few).
func BenchmarkHostCallsFile(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		h, err := mapHostCalls(dir, "bench")
		if err != nil {
			b.Fatal(err)
		}
		h.counts[3]++
		h.close()
		os.Remove(h.name)
	}
}
