package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/compat-project/compat/runners/testenv"
)

// newestPythonWasm finds the newest complete python.wasm build under the
// cache, or stops t through testenv.Missing.
func newestPythonWasm(t *testing.T) string {
	t.Helper()
	root := os.Getenv("COMPAT_CACHE")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "compat")
	}
	stamps, _ := filepath.Glob(filepath.Join(root, "python-wasm", "*", ".done"))
	sort.Slice(stamps, func(i, j int) bool {
		a, _ := os.Stat(stamps[i])
		b, _ := os.Stat(stamps[j])
		return a != nil && b != nil && a.ModTime().After(b.ModTime())
	})
	for _, s := range stamps {
		if w := filepath.Join(filepath.Dir(s), "python.wasm"); fileExists(w) {
			return w
		}
	}
	testenv.Missing(t, "no python.wasm build under %s (make images)", filepath.Join(root, "python-wasm"))
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestPythonBench runs two workloads, small, on the real python.wasm in the
// vkernel and on the host's python3.11: both sides must print the same
// checksums and every ratio must be positive. The figures themselves are
// for people, not asserted.
func TestPythonBench(t *testing.T) {
	wasm := newestPythonWasm(t)
	if _, err := exec.LookPath("/usr/bin/python3.11"); err != nil {
		testenv.Missing(t, "/usr/bin/python3.11 not installed (apt-get install python3.11, or make deps)")
	}
	rep, err := Python(context.Background(), PythonOptions{Runs: 2, Workloads: []string{"arith", "json"}, Wasm: wasm, Dir: t.TempDir(), Scale: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Workloads) != 2 || rep.Workloads[0].Name != "arith" || rep.Workloads[1].Name != "json" {
		t.Fatalf("workloads %+v", rep.Workloads)
	}
	for _, w := range rep.Workloads {
		if w.Checksum == "" || len(w.Native.WorkRuns) != 2 || len(w.Vkernel.WallRuns) != 2 {
			t.Errorf("workload %s: %+v", w.Name, w)
		}
		if w.WorkRatio <= 0 || w.WallRatio <= 0 {
			t.Errorf("workload %s: ratios %v %v, want positive", w.Name, w.WorkRatio, w.WallRatio)
		}
	}
	if rep.GeomeanWork <= 0 || rep.GeomeanWall <= 0 || rep.NativeVersion == "" || minor(rep.NativeVersion) != minor(rep.WasmVersion) {
		t.Fatalf("report %+v", rep)
	}
}

// TestPythonBenchChecksumMismatch runs a copy of the build whose print adds
// a word to every checksum line (a sitecustomize module): the benchmark must
// fail naming the workload.
func TestPythonBenchChecksumMismatch(t *testing.T) {
	wasm := newestPythonWasm(t)
	if _, err := exec.LookPath("/usr/bin/python3.11"); err != nil {
		testenv.Missing(t, "/usr/bin/python3.11 not installed (apt-get install python3.11, or make deps)")
	}
	dir := t.TempDir()
	build := filepath.Join(dir, "build")
	if err := os.Mkdir(build, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-al", filepath.Join(filepath.Dir(wasm), "lib"), filepath.Join(build, "lib")).CombinedOutput(); err != nil {
		t.Fatalf("copying the stdlib: %v\n%s", err, out)
	}
	if err := os.Link(wasm, filepath.Join(build, "python.wasm")); err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(build, "lib", "python3.11", "sitecustomize.py")
	broken := "import builtins\n_print = builtins.print\n" +
		"def print(*args, **kwargs):\n    if args and args[0] == 'checksum':\n        args += ('broken',)\n    _print(*args, **kwargs)\n" +
		"builtins.print = print\n"
	if err := os.WriteFile(site, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Python(context.Background(), PythonOptions{Runs: 1, Workloads: []string{"calls"}, Wasm: filepath.Join(build, "python.wasm"), Dir: filepath.Join(dir, "bench"), Scale: 0.02})
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Workload != "calls" || ce.Native == ce.Vkernel {
		t.Fatalf("got %v, want a checksum error naming workload calls", err)
	}
}
