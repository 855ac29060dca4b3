package python

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/pipeline"
	"github.com/compat-project/compat/runners/testenv"
)

// withTestModule makes a copy of build whose Lib/test holds the module
// file src as well.
func withTestModule(t *testing.T, build *wasmbuild.Build, src string) *wasmbuild.Build {
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	return copyBuild(t, build, map[string][]byte{filepath.Join("test", filepath.Base(src)): data})
}

// TestProcessesOnTheVkernel runs testdata/proc/test_compat_processes.py on
// the real python.wasm in the vkernel, through the pipeline as compat run
// does: child processes of sys.executable with pipes, environment, cwd,
// fds, /dev/null and argv that is not UTF-8, os.spawnv, exec errors
// reported as natively, an unlisted file denied, #! scripts run through a
// listed interpreter only, os.dup and os.dup2, posix_spawn's signal mask,
// no /dev/tty to open, kill and wait statuses,
// and signal handlers run on kill (a grandchild's to its parent too), on
// the itimer and while blocked in a read, and multiprocessing's "spawn"
// start method (Process, Pipe, exit codes, terminate). Every test must
// pass.
func TestProcessesOnTheVkernel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python.wasm; skipped with -short")
	}
	build, err := wasmbuild.Latest(compat.CacheRoot(), wasmbuild.Python)
	if err != nil {
		testenv.Missing(t, "needs a python.wasm build (make images): %v", err)
	}
	imports, err := wasmbuild.Imports(build.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(imports["vkernel"], "proc_spawn") {
		testenv.Missing(t, "python.wasm in %s predates processes (no vkernel.proc_spawn import): rebuild it (make images)", build.Dir)
	}
	b := withTestModule(t, build, filepath.Join("testdata", "proc", "test_compat_processes.py"))
	cfg := pipeline.Config{
		Suites:  []runners.Suite{&Suite{build: b, modules: []string{"test_compat_processes"}}},
		Targets: []string{runners.Vkernel}, Out: t.TempDir(), Baselines: t.TempDir(),
		Cache: compat.CacheRoot(), Exec: testenv.CompatExec(t), Options: pipeline.Options{Parallel: 1},
	}
	o, err := pipeline.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const tests = 23
	c := o.Runs[0].Counts()
	if c.Pass != tests || c.Fail+c.Error+c.Skip != 0 {
		for _, r := range o.Runs[0].Results {
			if r.Status != compat.Pass {
				t.Logf("%s: %s %s\n%s", r.Test, r.Status, r.Message, r.Output)
			}
		}
		t.Fatalf("want %d passes and nothing else, got %+v", tests, c)
	}
}

// TestSocketsOnTheVkernel runs testdata/sock/test_compat_sockets.py on the
// real python.wasm in the vkernel, through the pipeline as compat run does,
// with the entry's resources (Entries): TCP over 127.0.0.1 and ::1, UDP
// over ::1, socketpair's AF_UNIX, a unix socket under /tmp, gethostname and
// the service names of the guest's /etc/services; binding the wildcard
// address and connecting outside loopback are refused. Every test must
// pass.
func TestSocketsOnTheVkernel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python.wasm; skipped with -short")
	}
	build, err := wasmbuild.Latest(compat.CacheRoot(), wasmbuild.Python)
	if err != nil {
		testenv.Missing(t, "needs a python.wasm build (make images): %v", err)
	}
	info, err := os.ReadFile(build.Path("build-info.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(info), `"--enable-ipv6"`) {
		testenv.Missing(t, "python.wasm in %s predates its sockets (configured without --enable-ipv6): rebuild it (make images)", build.Dir)
	}
	if _, err := os.Stat(hostServices); err != nil {
		testenv.Missing(t, "needs the host's %s (apt-get install netbase)", hostServices)
	}
	b := withTestModule(t, build, filepath.Join("testdata", "sock", "test_compat_sockets.py"))
	cfg := pipeline.Config{
		Suites:  []runners.Suite{&Suite{build: b, modules: []string{"test_compat_sockets"}}},
		Targets: []string{runners.Vkernel}, Out: t.TempDir(), Baselines: t.TempDir(),
		Cache: compat.CacheRoot(), Exec: testenv.CompatExec(t), Options: pipeline.Options{Parallel: 1},
	}
	o, err := pipeline.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const tests = 8
	c := o.Runs[0].Counts()
	if c.Pass != tests || c.Fail+c.Error+c.Skip != 0 {
		for _, r := range o.Runs[0].Results {
			if r.Status != compat.Pass {
				t.Logf("%s: %s %s\n%s", r.Test, r.Status, r.Message, r.Output)
			}
		}
		t.Fatalf("want %d passes and nothing else, got %+v", tests, c)
	}
}
