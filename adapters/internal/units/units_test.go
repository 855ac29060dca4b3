package units

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/compat-project/compat"
)

func TestRunBoundsParallelismAndReports(t *testing.T) {
	var live, peak atomic.Int64
	var calls []string
	results, err := Run(context.Background(), []string{"b", "a", "c", "d"}, 2, "units",
		func(_ context.Context, unit string) ([]compat.Result, error) {
			n := live.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(20 * time.Millisecond)
			live.Add(-1)
			if unit == "c" {
				return []compat.Result{{Unit: unit, Test: unit, Status: compat.Error}}, errors.New("c broke")
			}
			return []compat.Result{{Unit: unit, Test: unit + ".t", Status: compat.Pass}}, nil
		},
		func(f Finished) { calls = append(calls, f.Unit) })
	if peak.Load() != 2 {
		t.Errorf("peak parallelism %d, want 2", peak.Load())
	}
	if len(results) != 4 || results[0].Test != "a.t" {
		t.Errorf("results %+v, want 4 sorted", results)
	}
	if err == nil || !strings.Contains(err.Error(), "c broke") {
		t.Errorf("err %v", err)
	}
	if len(calls) != 4 {
		t.Errorf("progress called %d times", len(calls))
	}
}

func TestRunStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Run(ctx, []string{"a", "b", "c"}, 1, "modules",
		func(context.Context, string) ([]compat.Result, error) { cancel(); return nil, nil }, nil)
	if err == nil || !strings.Contains(err.Error(), "stopped after 1 of 3 modules") {
		t.Fatalf("err %v", err)
	}
}
