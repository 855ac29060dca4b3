package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
	"golang.org/x/sync/errgroup"
)

// ConcurrentOptions configure the concurrency benchmark.
type ConcurrentOptions struct {
	// N is the number of invocations started at once (default 500).
	N int
	// Dir holds the benchmark's megabinary, guest files and AOT cache.
	Dir string
}

// Side is one target's figures in the concurrency benchmark.
type Side struct {
	// Wall is the time from the start signal to the last completion.
	Wall time.Duration `json:"wall_ns"`
	// Throughput is invocations per second over Wall.
	Throughput float64 `json:"throughput_per_s"`
	// Completion is each invocation's time from the start signal to its end.
	Completion Stats `json:"completion"`
	// PeakRSS is the highest resident memory during the run, in bytes: for
	// the vkernel the whole process's (VmHWM, which the kernel tracks, so
	// nothing is missed while guests hold both CPUs; Go heap, runtime and
	// every instance's linear memory), for native the sum of the live
	// processes' VmRSS, sampled every 2 ms.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// BaseRSS is the vkernel process's resident memory before the run.
	BaseRSS int64 `json:"base_rss_bytes"`
	// MaxLive is the most invocations in flight at once, and PerInstance
	// is (PeakRSS - BaseRSS) / MaxLive.
	MaxLive     int   `json:"max_live"`
	PerInstance int64 `json:"per_instance_bytes"`
	// Failures counts invocations that failed or printed the wrong answer.
	Failures int `json:"failures"`
}

// ConcurrentReport holds the concurrency figures.
type ConcurrentReport struct {
	N       int    `json:"n"`
	Guest   string `json:"guest"`
	Vkernel Side   `json:"vkernel"`
	Native  Side   `json:"native"`
	// HostTime is the vkernel instances' total time in host calls,
	// InstanceTime their total time from exec to exit.
	HostTime     time.Duration `json:"host_time_ns"`
	InstanceTime time.Duration `json:"instance_time_ns"`
}

// Concurrent runs N invocations of the tool guest at once, sharing one
// compiled megabinary, then N native processes of the same program.
func Concurrent(ctx context.Context, opts ConcurrentOptions) (*ConcurrentReport, error) {
	if opts.N <= 0 {
		opts.N = 500
	}
	wasm, err := guests.C("tool.c")
	if err != nil {
		return nil, err
	}
	native, err := guests.NativeC("tool.c")
	if err != nil {
		return nil, err
	}
	input := toolInput()
	cmd := exec.Command(native)
	cmd.Stdin = bytes.NewReader(input)
	want, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("native tool: %w", err)
	}
	ws, err := newWorkspace(filepath.Join(opts.Dir, "concurrent"), map[string][]byte{"tool": wasm}, megabinary.Resources{}, nil)
	if err != nil {
		return nil, err
	}
	k, err := ws.open(ctx, filepath.Join(opts.Dir, "aot"))
	if err != nil {
		return nil, err
	}
	defer k.Close(ctx)
	path := filepath.Join(ws.dir, "tool.wasm")
	rep := &ConcurrentReport{N: opts.N, Guest: "tool (wc + checksum of 16 KiB, wasm32-wasi)"}

	// vkernel
	var hostNanos, instNanos atomic.Int64
	rep.Vkernel, err = measure(opts.N, selfRSS, func(i int) (bool, error) {
		var out bytes.Buffer
		res, err := k.Exec(ctx, vkernel.Request{Path: path, Stdin: bytes.NewReader(input), Stdout: &out})
		if err != nil {
			return false, err
		}
		hostNanos.Add(int64(res.HostTime))
		instNanos.Add(int64(res.Duration))
		return bytes.Equal(out.Bytes(), want), nil
	})
	if err != nil {
		return nil, err
	}
	rep.HostTime, rep.InstanceTime = time.Duration(hostNanos.Load()), time.Duration(instNanos.Load())

	// native
	var pids sync.Map
	rep.Native, err = measure(opts.N, func() int64 { return childrenRSS(&pids) }, func(i int) (bool, error) {
		var out bytes.Buffer
		c := exec.Command(native)
		c.Stdin, c.Stdout = bytes.NewReader(input), &out
		if err := c.Start(); err != nil {
			return false, err
		}
		pids.Store(c.Process.Pid, true)
		err := c.Wait()
		pids.Delete(c.Process.Pid)
		return err == nil && bytes.Equal(out.Bytes(), want), nil
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// measure starts n invocations at once and samples memory while they run.
func measure(n int, rss func() int64, invoke func(i int) (bool, error)) (Side, error) {
	var side Side
	side.BaseRSS = rss()
	resetPeak()
	var peak, live, maxLive atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := rss(); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	startSignal := make(chan struct{})
	completions := make([]time.Duration, n)
	var failures atomic.Int64
	var g errgroup.Group
	var t0 time.Time
	for i := 0; i < n; i++ {
		g.Go(func() error {
			<-startSignal
			if l := live.Add(1); l > maxLive.Load() {
				maxLive.Store(l) // racy max: close enough for a report
			}
			ok, err := invoke(i)
			live.Add(-1)
			completions[i] = time.Since(t0)
			if err != nil || !ok {
				failures.Add(1)
			}
			return nil
		})
	}
	t0 = time.Now()
	close(startSignal)
	g.Wait()
	side.Wall = time.Since(t0)
	close(stop)
	<-sampled
	side.PeakRSS = max(peak.Load(), rssPeak(rss))
	side.MaxLive = int(max(maxLive.Load(), 1))
	side.PerInstance = (side.PeakRSS - side.BaseRSS) / int64(side.MaxLive)
	side.Throughput = float64(n) / side.Wall.Seconds()
	side.Completion = Summarize(completions)
	side.Failures = int(failures.Load())
	return side, nil
}

// selfRSS is this process's resident memory in bytes.
func selfRSS() int64 { return statusField("/proc/self/status", "VmRSS:") }

func statusField(file, key string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// rssPeak returns the kernel-tracked peak (VmHWM) when rss measures this
// process, else 0.
func rssPeak(rss func() int64) int64 {
	if reflect.ValueOf(rss).Pointer() == reflect.ValueOf(selfRSS).Pointer() {
		return statusField("/proc/self/status", "VmHWM:")
	}
	return 0
}

// resetPeak resets VmHWM to the current RSS (Linux 4.0+), so the peak
// covers only the run.
func resetPeak() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// childrenRSS sums the resident memory of the live native processes.
func childrenRSS(pids *sync.Map) int64 {
	var total int64
	pids.Range(func(k, _ any) bool {
		total += statusField("/proc/"+strconv.Itoa(k.(int))+"/status", "VmRSS:")
		return true
	})
	return total
}

func toolInput() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 16<<10; i++ {
		fmt.Fprintf(&b, "line %d of the tool's input, with a few words in it\n", i)
	}
	return b.Bytes()
}

// Write prints the report for people.
func (r *ConcurrentReport) Write(w io.Writer) {
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	kib := func(b int64) string { return fmt.Sprintf("%.0f KiB", float64(b)/1024) }
	fmt.Fprintf(w, "%d concurrent invocations of %s\n", r.N, r.Guest)
	for _, s := range []struct {
		name string
		side Side
	}{{"vkernel", r.Vkernel}, {"native", r.Native}} {
		fmt.Fprintf(w, "  %-8s wall %s  throughput %.0f/s  completion %s  failures %d\n", s.name, ms(s.side.Wall), s.side.Throughput, s.side.Completion, s.side.Failures)
	}
	fmt.Fprintf(w, "  memory: vkernel process peak RSS %s (%s before the run) with up to %d instances live: %s per instance\n",
		mib(r.Vkernel.PeakRSS), mib(r.Vkernel.BaseRSS), r.Vkernel.MaxLive, kib(r.Vkernel.PerInstance))
	fmt.Fprintf(w, "          native processes peak total RSS %s with up to %d live: %s per process\n",
		mib(r.Native.PeakRSS), r.Native.MaxLive, kib(r.Native.PerInstance))
	if r.InstanceTime > 0 {
		fmt.Fprintf(w, "  vkernel overhead: %.1f%% of instance time in host calls (%s of %s)\n", 100*float64(r.HostTime)/float64(r.InstanceTime), ms(r.HostTime), ms(r.InstanceTime))
	}
}
