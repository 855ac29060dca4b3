package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat/vkernel/guests"
)

// TestBenchmarksRun runs both benchmarks small: they must complete with
// every invocation correct. Their figures are for people, not asserted.
func TestBenchmarksRun(t *testing.T) {
	dir := t.TempDir()
	ex, err := Exec(context.Background(), ExecOptions{Runs: 20, Dir: dir})
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if ex.Warm.N != 20 || ex.Cold.N != 20 || ex.Native.N != 20 || ex.Warm.P50 <= 0 || ex.Rehash.N != 20 || ex.RehashBytes != 9<<20 {
		t.Fatalf("exec report %+v", ex)
	}
	c, err := Concurrent(context.Background(), ConcurrentOptions{N: 20, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.Vkernel.Failures != 0 || c.Native.Failures != 0 || c.Vkernel.Completion.N != 20 {
		t.Fatalf("concurrent report %+v", c)
	}
}
