package redis

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compat-project/compat/runners/testenv"
)

// TestBench runs compat bench redis briefly: redis-server.wasm in a compat
// exec process and the native redis-server, every test on both sides with
// figures. The figures themselves are for people, not asserted.
func TestBench(t *testing.T) {
	b := testBuild(t)
	testenv.Command(t, RedisBenchmark, "redis-tools")
	if _, err := os.Stat(NativeServer); err != nil {
		testenv.Missing(t, "the host has no redis-server (apt-get install redis-server)")
	}
	rep, err := Bench(context.Background(), BenchOptions{
		Build: b.Dir, Cache: filepath.Join(os.TempDir(), "compat-redis-test-aot"), Dir: t.TempDir(),
		Exec: testenv.CompatExec(t), Requests: 2000, Clients: []int{1, 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2*len(BenchTests) {
		t.Fatalf("%d rows, want %d: %+v", len(rep.Rows), 2*len(BenchTests), rep.Rows)
	}
	for _, r := range rep.Rows {
		for side, f := range map[string]float64{"native": r.Native.PerSecond, "vkernel": r.Vkernel.PerSecond} {
			if f <= 0 {
				t.Errorf("%s: %s req/s %v", r.Test, side, f)
			}
		}
		if r.Native.Requests != 2000 || r.Vkernel.Requests != 2000 || r.Ratio <= 0 {
			t.Errorf("%s: %+v", r.Test, r)
		}
	}
	if t.Failed() || testing.Verbose() {
		var sb strings.Builder
		rep.Write(&sb)
		t.Log("\n" + sb.String())
	}
}
