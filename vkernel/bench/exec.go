package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// ExecOptions configure the exec-latency benchmark.
type ExecOptions struct {
	// Runs is the number of execs measured per mode.
	Runs int
	// Dir holds the benchmark's megabinary, guest files and AOT cache; it is
	// reused across runs.
	Dir string
}

// ExecReport holds the exec-latency figures. Latency is the time from the
// exec call to the guest's (or native program's) first instruction, which
// reads CLOCK_MONOTONIC.
type ExecReport struct {
	// LoadCompile is the time to open the megabinary with an empty AOT
	// cache; LoadCached with the cache filled.
	LoadCompile time.Duration `json:"load_compile_ns"`
	LoadCached  time.Duration `json:"load_cached_ns"`
	// Warm: hash cached, module compiled. Cold: first exec of a new file
	// (its hash is computed), module compiled.
	Warm   Stats `json:"warm"`
	Cold   Stats `json:"cold"`
	Native Stats `json:"native"`
	// WarmExit is exec call to exit, warm.
	WarmExit Stats `json:"warm_exit"`
	// Ratio is Warm.P50 / Native.P50.
	Ratio float64 `json:"ratio_warm_to_native_p50"`
}

// Exec runs the exec-latency benchmark: the firstinsn guest in the vkernel
// (warm and cold) and the same program built natively, started with
// fork+exec, in the same run.
func Exec(ctx context.Context, opts ExecOptions) (*ExecReport, error) {
	if opts.Runs <= 0 {
		opts.Runs = 1000
	}
	wasm, err := guests.WAT(mustSource("firstinsn.wat"))
	if err != nil {
		return nil, err
	}
	native, err := guests.NativeC("firstinsn.c")
	if err != nil {
		return nil, err
	}
	ws, err := newWorkspace(filepath.Join(opts.Dir, "exec"), map[string][]byte{"firstinsn": wasm}, megabinary.Resources{})
	if err != nil {
		return nil, err
	}
	rep := &ExecReport{}
	aot, err := os.MkdirTemp(opts.Dir, "aot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(aot)
	start := time.Now()
	k, err := ws.open(ctx, aot)
	if err != nil {
		return nil, err
	}
	rep.LoadCompile = time.Since(start)
	k.Close(ctx)
	start = time.Now()
	k, err = ws.open(ctx, aot)
	if err != nil {
		return nil, err
	}
	rep.LoadCached = time.Since(start)
	defer k.Close(ctx)

	path := filepath.Join(ws.dir, "firstinsn.wasm")
	if err := settle(path, vkernel.RacyWindow); err != nil {
		return nil, err
	}
	var warm, warmExit, cold, nat []time.Duration
	for i := 0; i < opts.Runs+opts.Runs/10; i++ { // the first tenth warms up
		first, exit, err := vkExec(ctx, k, path)
		if err != nil {
			return nil, err
		}
		if i >= opts.Runs/10 {
			warm, warmExit = append(warm, first), append(warmExit, exit)
		}
	}
	coldDir, err := os.MkdirTemp(opts.Dir, "cold-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(coldDir)
	for i := 0; i < opts.Runs; i++ {
		p := filepath.Join(coldDir, fmt.Sprintf("copy-%d.wasm", i))
		if err := os.WriteFile(p, wasm, 0o755); err != nil {
			return nil, err
		}
		first, _, err := vkExec(ctx, k, p)
		if err != nil {
			return nil, err
		}
		cold = append(cold, first)
		os.Remove(p)
	}
	for i := 0; i < opts.Runs+opts.Runs/10; i++ {
		first, err := nativeExec(native)
		if err != nil {
			return nil, err
		}
		if i >= opts.Runs/10 {
			nat = append(nat, first)
		}
	}
	rep.Warm, rep.WarmExit, rep.Cold, rep.Native = Summarize(warm), Summarize(warmExit), Summarize(cold), Summarize(nat)
	rep.Ratio = float64(rep.Warm.P50) / float64(rep.Native.P50)
	return rep, nil
}

func vkExec(ctx context.Context, k *vkernel.Kernel, path string) (first, exit time.Duration, err error) {
	var out bytes.Buffer
	t0 := monotonic()
	if _, err := k.Exec(ctx, vkernel.Request{Path: path, Stdout: &out}); err != nil {
		return 0, 0, err
	}
	t1 := monotonic()
	ts, err := stamp(out.Bytes())
	if err != nil {
		return 0, 0, err
	}
	return time.Duration(ts - t0), time.Duration(t1 - t0), nil
}

func nativeExec(bin string) (time.Duration, error) {
	var out bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Stdout = &out
	t0 := monotonic()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("native %s: %w", bin, err)
	}
	ts, err := stamp(out.Bytes())
	return time.Duration(ts - t0), err
}

func stamp(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("firstinsn wrote %d bytes, want an 8-byte timestamp", len(b))
	}
	return int64(binary.LittleEndian.Uint64(b)), nil
}

func mustSource(name string) string {
	b, err := guests.Source(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Write prints the report for people.
func (r *ExecReport) Write(w io.Writer) {
	fmt.Fprintf(w, "megabinary load: %s compiling, %s from the AOT cache\n", ms(r.LoadCompile), ms(r.LoadCached))
	fmt.Fprintf(w, "exec -> first instruction (target < 10 ms):\n")
	fmt.Fprintf(w, "  vkernel warm   %s\n", r.Warm)
	fmt.Fprintf(w, "  vkernel cold   %s\n", r.Cold)
	fmt.Fprintf(w, "  native fork+exec %s\n", r.Native)
	fmt.Fprintf(w, "exec -> exit, vkernel warm: %s\n", r.WarmExit)
	fmt.Fprintf(w, "warm p50 / native p50 = %.2f\n", r.Ratio)
}
