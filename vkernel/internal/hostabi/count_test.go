package hostabi

import (
	"context"
	"fmt"
	"testing"

	"github.com/tetratelabs/wazero"
)

// TestFunctionsAreTheSurface: Functions lists each host function the
// modules export once, with the signature Signature gives it, in the
// order the counts use.
func TestFunctionsAreTheSurface(t *testing.T) {
	fs := Functions()
	if len(fs) != len(functions()) {
		t.Fatalf("Functions lists %d functions, the ABI defines %d", len(fs), len(functions()))
	}
	seen := map[Function]bool{}
	for i, f := range fs {
		if seen[f] {
			t.Errorf("%s.%s listed twice", f.Module, f.Name)
		}
		seen[f] = true
		if f.Module != ModulePreview1 && f.Module != ModuleVkernel && f.Module != ModuleWasi {
			t.Errorf("%s.%s: unknown module", f.Module, f.Name)
		}
		if _, _, ok := Signature(f.Module, f.Name); !ok || functions()[i].name != f.Name {
			t.Errorf("function %d, %s.%s, is not the ABI's function %d", i, f.Module, f.Name, i)
		}
	}
}

// TestCallCounts: a counting process counts each call of a real guest to
// the function it called, and the counts add up to HostTime's; a process
// not asked to count has no counts.
func TestCallCounts(t *testing.T) {
	h := newHarness(t)
	index := map[string]int{}
	for i, f := range Functions() {
		index[f.Module+"."+f.Name] = i
	}
	calls := map[string]int{ // function -> times the guest calls it
		ModulePreview1 + ".clock_time_get": 5,
		ModulePreview1 + ".args_sizes_get": 2,
		ModuleVkernel + ".proc_id":         3,
	}
	for _, count := range []bool{true, false} {
		t.Run(fmt.Sprint("count=", count), func(t *testing.T) {
			p, err := NewProcess(Config{Args: []string{"count"}, Counts: counters(count)})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ctx := WithProcess(context.Background(), p)
			mod, err := h.r.InstantiateModule(ctx, h.compiled, wazero.NewModuleConfig().WithName(""))
			if err != nil {
				t.Fatal(err)
			}
			defer mod.Close(ctx)
			for name, n := range calls {
				i, ok := index[name]
				if !ok {
					t.Fatalf("%s is not a host function", name)
				}
				f := functions()[i]
				args := make([]uint64, len(f.types))
				for j := range args {
					args[j] = 64 + uint64(j)*16 // in memory, apart
				}
				for range n {
					if _, err := mod.ExportedFunction(fmt.Sprintf("t%d", i)).Call(ctx, args...); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				}
			}
			counts := p.CallCounts()
			if !count {
				if counts != nil {
					t.Fatalf("a process not counting gave counts %v", counts)
				}
				return
			}
			if len(counts) != len(Functions()) {
				t.Fatalf("%d counts for %d functions", len(counts), len(Functions()))
			}
			var sum uint64
			for i, got := range counts {
				f := Functions()[i]
				if want := calls[f.Module+"."+f.Name]; got != uint64(want) {
					t.Errorf("%s.%s: %d calls counted, the guest made %d", f.Module, f.Name, got, want)
				}
				sum += got
			}
			if _, total := p.HostTime(); sum != uint64(total) {
				t.Errorf("counts add up to %d, HostTime counted %d calls", sum, total)
			}
		})
	}
}

// counters returns memory to count every host function's calls in, or nil.
func counters(count bool) []uint64 {
	if !count {
		return nil
	}
	return make([]uint64, len(Functions()))
}

// TestCountersLength: counters of another length than the surface's are
// refused, naming both.
func TestCountersLength(t *testing.T) {
	_, err := NewProcess(Config{Counts: make([]uint64, 3)})
	if err == nil || err.Error() != fmt.Sprintf("3 call counters for %d host functions", len(Functions())) {
		t.Fatalf("3 counters: %v", err)
	}
}
