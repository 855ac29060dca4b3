package nginx

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners/testenv"
)

// parseWrk reads wrk's summary, its latency percentiles in any unit and
// its error lines.
func TestParseWrk(t *testing.T) {
	for _, tc := range []struct {
		file                string
		requests, errors    int64
		perSecond, p50, p99 float64
	}{
		{"wrk-keepalive.txt", 20846, 0, 18948.46, 0.388, 5.18},
		{"wrk-close-404.txt", 6863, 6863, 6839.32, 0.640, 9.37},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		f, err := parseWrk(string(b))
		if err != nil {
			t.Fatal(err)
		}
		if f.Requests != tc.requests || f.Errors != tc.errors || f.PerSecond != tc.perSecond || f.P50 != tc.p50 || f.P99 != tc.p99 {
			t.Errorf("%s: %+v", tc.file, f)
		}
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("no summary: no error")
	}
}

// TestBench runs compat bench nginx briefly: nginx.wasm in a compat exec
// process and the native nginx, both tests on both sides with figures.
// The figures themselves are for people, not asserted.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers under load; skipped with -short")
	}
	b, err := wasmbuild.Latest(compat.CacheRoot(), wasmbuild.Nginx)
	if err != nil {
		testenv.Missing(t, "nginx.wasm is not built (make images): %v", err)
	}
	testenv.Command(t, Wrk, "wrk")
	if _, err := os.Stat(NativeNginx); err != nil {
		testenv.Missing(t, "the host has no native nginx (apt-get install nginx-light)")
	}
	rep, err := Bench(context.Background(), BenchOptions{
		Build: b.Dir, Cache: compat.CacheRoot(), Dir: t.TempDir(), Exec: testenv.CompatExec(t),
		Duration: time.Second, Connections: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 {
		t.Fatalf("%d rows, want 2: %+v", len(rep.Rows), rep.Rows)
	}
	for _, r := range rep.Rows {
		if r.Native.PerSecond <= 0 || r.Vkernel.PerSecond <= 0 || r.Native.Requests <= 0 || r.Vkernel.Requests <= 0 || r.Ratio <= 0 {
			t.Errorf("%s: %+v", r.Test, r)
		}
		if r.Native.Errors != 0 || r.Vkernel.Errors != 0 {
			t.Errorf("%s: failed requests: %+v", r.Test, r)
		}
	}
	if t.Failed() || testing.Verbose() {
		var sb strings.Builder
		rep.Write(&sb)
		t.Log("\n" + sb.String())
	}
}
