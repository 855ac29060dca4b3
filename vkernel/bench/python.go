package bench

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// workloadFS holds the Python workloads, one script per workload:
// workloads/bench_NAME.py. Each runs its work loop once, timed with
// time.perf_counter, and prints "checksum VALUE" and "seconds TIME"; an
// optional first argument scales the work (1 is the default size).
//
//go:embed workloads/bench_*.py
var workloadFS embed.FS

// PythonWorkloads lists the workloads of the Python benchmark, in the order
// they run.
var PythonWorkloads = []string{"arith", "calls", "dicts", "strings", "sort", "regex", "json", "objects", "bigint"}

// The guest paths of the Python benchmark: the scripts, read-only, and the
// build's stdlib, read-only, as the Python suite mounts it.
const (
	pyGuestScripts = "/bench"
	pyGuestLib     = "/usr/lib"
)

// PythonOptions configure the Python benchmark.
type PythonOptions struct {
	// Runs is the number of measured runs per workload and side (default 5).
	Runs int
	// Workloads names the workloads to run; empty means all of
	// PythonWorkloads.
	Workloads []string
	// Python is the native interpreter (default /usr/bin/python3.11).
	Python string
	// Wasm is python.wasm; its stdlib is lib/python3.11 beside it, as a
	// build of images/python leaves it.
	Wasm string
	// Dir holds the benchmark's megabinary, scripts and scratch root.
	Dir string
	// Scale multiplies every workload's work (default 1: about 0.2-0.5 s
	// natively each). Tests use a small one.
	Scale float64
}

// PythonSide is one workload's figures on one side: medians over the runs.
type PythonSide struct {
	// Work is the time the script measured for its own work loop, which
	// excludes interpreter start-up; Wall is from the exec (or fork+exec)
	// to exit.
	Work time.Duration `json:"work_ns"`
	Wall time.Duration `json:"wall_ns"`
	// WorkRuns and WallRuns are every run's figures, in run order.
	WorkRuns []time.Duration `json:"work_runs_ns"`
	WallRuns []time.Duration `json:"wall_runs_ns"`
}

// PythonResult is one workload's figures.
type PythonResult struct {
	Name string `json:"name"`
	// Checksum is what the script printed, the same on both sides.
	Checksum string     `json:"checksum"`
	Native   PythonSide `json:"native"`
	Vkernel  PythonSide `json:"vkernel"`
	// WorkRatio is Vkernel.Work / Native.Work, WallRatio the same of Wall.
	WorkRatio float64 `json:"work_ratio"`
	WallRatio float64 `json:"wall_ratio"`
}

// PythonReport holds the Python benchmark's figures.
type PythonReport struct {
	Runs  int     `json:"runs"`
	Scale float64 `json:"scale"`
	// Native and Wasm are the interpreters, with the versions they
	// report (sys.version).
	Native        string `json:"native"`
	NativeVersion string `json:"native_version"`
	Wasm          string `json:"wasm"`
	WasmVersion   string `json:"wasm_version"`
	// Load is the time to open the bench megabinary, compiling python.wasm.
	Load      time.Duration  `json:"load_ns"`
	Workloads []PythonResult `json:"workloads"`
	// GeomeanWork and GeomeanWall are the geometric means of the
	// workloads' ratios.
	GeomeanWork float64 `json:"geomean_work_ratio"`
	GeomeanWall float64 `json:"geomean_wall_ratio"`
}

// ChecksumError says a workload printed different checksums natively and
// in the vkernel.
type ChecksumError struct {
	Workload        string
	Native, Vkernel string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("workload %s: checksums differ: native %q, vkernel %q", e.Workload, e.Native, e.Vkernel)
}

// Python runs each workload natively and in the vkernel, alternating the
// two sides run by run, and reports the median times and their ratios.
func Python(ctx context.Context, opts PythonOptions) (*PythonReport, error) {
	if opts.Runs <= 0 {
		opts.Runs = 5
	}
	if opts.Python == "" {
		opts.Python = "/usr/bin/python3.11"
	}
	if opts.Scale <= 0 {
		opts.Scale = 1
	}
	names := opts.Workloads
	if len(names) == 0 {
		names = PythonWorkloads
	}
	for _, n := range names {
		if !contains(PythonWorkloads, n) {
			return nil, fmt.Errorf("unknown workload %q (workloads: %s)", n, strings.Join(PythonWorkloads, ","))
		}
	}
	if opts.Wasm == "" {
		return nil, fmt.Errorf("no python.wasm given")
	}
	wasm, err := os.ReadFile(opts.Wasm)
	if err != nil {
		return nil, fmt.Errorf("python.wasm: %w", err)
	}
	lib := filepath.Join(filepath.Dir(opts.Wasm), "lib")
	if _, err := os.Stat(filepath.Join(lib, "python3.11", "os.py")); err != nil {
		return nil, fmt.Errorf("python.wasm %s: no stdlib beside it (want %s): %w", opts.Wasm, filepath.Join(lib, "python3.11"), err)
	}
	native, err := exec.LookPath(opts.Python)
	if err != nil {
		return nil, fmt.Errorf("native python: %w", err)
	}

	dir := filepath.Join(opts.Dir, "python")
	scripts := filepath.Join(dir, "scripts")
	root := filepath.Join(dir, "root")
	for _, d := range []string{scripts, filepath.Join(root, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	for _, n := range PythonWorkloads {
		b, err := workloadFS.ReadFile(path.Join("workloads", scriptName(n)))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(scripts, scriptName(n)), b, 0o644); err != nil {
			return nil, err
		}
	}
	ws, err := newWorkspace(dir, map[string][]byte{"python3.11": wasm}, megabinary.Resources{
		Mounts: []megabinary.MountRule{{Guest: "/"}, {Guest: pyGuestLib, ReadOnly: true}, {Guest: pyGuestScripts, ReadOnly: true}},
	}, nil)
	if err != nil {
		return nil, err
	}
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
	defer k.Close(ctx)
	rep := &PythonReport{Runs: opts.Runs, Scale: opts.Scale, Native: native, Wasm: opts.Wasm, Load: time.Since(start)}

	py := &pyRunner{
		kernel: k, guest: filepath.Join(ws.dir, "python3.11.wasm"), native: native, scripts: scripts,
		mounts: []vkernel.Mount{
			{Guest: "/", Host: root},
			{Guest: pyGuestLib, Host: lib, ReadOnly: true},
			{Guest: pyGuestScripts, Host: scripts, ReadOnly: true},
		},
	}
	// The version check also warms both sides up (page cache, lazily
	// faulted code) before anything is timed.
	versionScript := []string{"-c", "import sys; print(sys.version.split()[0])"}
	nv, err := py.runNative(versionScript)
	if err != nil {
		return nil, err
	}
	wv, err := py.runVkernel(ctx, versionScript)
	if err != nil {
		return nil, err
	}
	rep.NativeVersion, rep.WasmVersion = strings.TrimSpace(nv.out), strings.TrimSpace(wv.out)
	if minor(rep.NativeVersion) != minor(rep.WasmVersion) {
		return nil, fmt.Errorf("native %s is Python %s, python.wasm is %s: compare the same version (-python)", native, rep.NativeVersion, rep.WasmVersion)
	}

	scale := strconv.FormatFloat(opts.Scale, 'g', -1, 64)
	for _, name := range names {
		res := PythonResult{Name: name}
		var nWork, nWall, vWork, vWall []time.Duration
		for i := 0; i < opts.Runs; i++ {
			args := []string{pyGuestScripts + "/" + scriptName(name), scale}
			nr, err := py.runNative([]string{filepath.Join(scripts, scriptName(name)), scale})
			if err != nil {
				return nil, fmt.Errorf("workload %s: %w", name, err)
			}
			vr, err := py.runVkernel(ctx, args)
			if err != nil {
				return nil, fmt.Errorf("workload %s: %w", name, err)
			}
			nsum, nsec, err := parseWorkload(nr.out)
			if err != nil {
				return nil, fmt.Errorf("workload %s, native: %w", name, err)
			}
			vsum, vsec, err := parseWorkload(vr.out)
			if err != nil {
				return nil, fmt.Errorf("workload %s, vkernel: %w", name, err)
			}
			if nsum != vsum {
				return nil, &ChecksumError{Workload: name, Native: nsum, Vkernel: vsum}
			}
			res.Checksum = nsum
			nWork, nWall = append(nWork, nsec), append(nWall, nr.wall)
			vWork, vWall = append(vWork, vsec), append(vWall, vr.wall)
		}
		res.Native = PythonSide{Work: median(nWork), Wall: median(nWall), WorkRuns: nWork, WallRuns: nWall}
		res.Vkernel = PythonSide{Work: median(vWork), Wall: median(vWall), WorkRuns: vWork, WallRuns: vWall}
		res.WorkRatio = ratio(res.Vkernel.Work, res.Native.Work)
		res.WallRatio = ratio(res.Vkernel.Wall, res.Native.Wall)
		rep.Workloads = append(rep.Workloads, res)
	}
	var work, wall []float64
	for _, r := range rep.Workloads {
		work, wall = append(work, r.WorkRatio), append(wall, r.WallRatio)
	}
	rep.GeomeanWork, rep.GeomeanWall = Geomean(work), Geomean(wall)
	return rep, nil
}

func scriptName(workload string) string { return "bench_" + workload + ".py" }

// pyRunner runs the interpreter on either side.
type pyRunner struct {
	kernel  *vkernel.Kernel
	guest   string
	native  string
	scripts string
	mounts  []vkernel.Mount
}

type pyRun struct {
	out  string
	wall time.Duration
}

// pyEnv is the environment of both sides, besides the guest's PYTHONHOME:
// fixed string hashing, no bytecode written.
var pyEnv = []string{"PYTHONHASHSEED=0", "PYTHONDONTWRITEBYTECODE=1", "LC_ALL=C.UTF-8"}

func (p *pyRunner) runNative(args []string) (pyRun, error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(p.native, append([]string{"-s"}, args...)...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + os.TempDir()}, pyEnv...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return pyRun{}, fmt.Errorf("native %s %s: %w: %s", p.native, strings.Join(args, " "), err, tail(errOut.String()))
	}
	return pyRun{out: out.String(), wall: wall}, nil
}

func (p *pyRunner) runVkernel(ctx context.Context, args []string) (pyRun, error) {
	var out, errOut bytes.Buffer
	start := time.Now()
	res, err := p.kernel.Exec(ctx, vkernel.Request{
		Path:   p.guest,
		Args:   append([]string{"python3.11", "-s"}, args...),
		Env:    append([]string{"PYTHONHOME=/usr", "HOME=/tmp", "TMPDIR=/tmp"}, pyEnv...),
		Stdout: &out, Stderr: &errOut,
		Mounts: p.mounts,
	})
	wall := time.Since(start)
	if err != nil {
		return pyRun{}, fmt.Errorf("vkernel %s %s: %w: %s", p.guest, strings.Join(args, " "), err, tail(errOut.String()))
	}
	if res.ExitCode != 0 {
		return pyRun{}, fmt.Errorf("vkernel %s %s: exit status %d: %s", p.guest, strings.Join(args, " "), res.ExitCode, tail(errOut.String()))
	}
	return pyRun{out: out.String(), wall: wall}, nil
}

// parseWorkload reads a workload's "checksum" and "seconds" lines.
func parseWorkload(out string) (checksum string, work time.Duration, err error) {
	var sawSum, sawSec bool
	for _, line := range strings.Split(out, "\n") {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "checksum":
			checksum, sawSum = val, true
		case "seconds":
			s, err := strconv.ParseFloat(val, 64)
			if err != nil || s < 0 {
				return "", 0, fmt.Errorf("bad seconds line %q", line)
			}
			work, sawSec = time.Duration(s*1e9), true
		}
	}
	if !sawSum || !sawSec {
		return "", 0, fmt.Errorf("output lacks its checksum or seconds line: %q", tail(out))
	}
	return checksum, work, nil
}

// minor is "3.11" of "3.11.2".
func minor(version string) string {
	f := strings.SplitN(version, ".", 3)
	if len(f) < 2 {
		return version
	}
	return f[0] + "." + f[1]
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Geomean is the geometric mean of positive values; 0 when there are none
// or one is not positive.
func Geomean(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	var sum float64
	for _, v := range values {
		if v <= 0 {
			return 0
		}
		sum += math.Log(v)
	}
	return math.Exp(sum / float64(len(values)))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// tail is the end of a program's output, for errors.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}

// Write prints the report for people.
func (r *PythonReport) Write(w io.Writer) {
	fmt.Fprintf(w, "Python workloads, native %s (%s) vs python.wasm %s in the vkernel (%s)\n", r.Native, r.NativeVersion, r.Wasm, r.WasmVersion)
	fmt.Fprintf(w, "medians of %d runs per side, alternating native and vkernel; loading the megabinary took %.1f s\n", r.Runs, r.Load.Seconds())
	fmt.Fprintf(w, "work: the script's own timing of its work loop (no start-up); wall: exec to exit, interpreter start-up included\n\n")
	fmt.Fprintf(w, "%-9s %10s %10s %7s   %10s %10s %7s\n", "workload", "native s", "vkernel s", "ratio", "wall nat", "wall vk", "ratio")
	for _, x := range r.Workloads {
		fmt.Fprintf(w, "%-9s %10.3f %10.3f %6.2fx   %10.3f %10.3f %6.2fx\n", x.Name,
			x.Native.Work.Seconds(), x.Vkernel.Work.Seconds(), x.WorkRatio,
			x.Native.Wall.Seconds(), x.Vkernel.Wall.Seconds(), x.WallRatio)
	}
	fmt.Fprintf(w, "%-9s %10s %10s %6.2fx   %10s %10s %6.2fx\n", "geomean", "", "", r.GeomeanWork, "", "", r.GeomeanWall)
	fmt.Fprintf(w, "checksums identical on both sides for every workload\n")
}
