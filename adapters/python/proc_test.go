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
	runCompatModule(t, build, filepath.Join("testdata", "proc", "test_compat_processes.py"), 23)
}

// TestFilesOnTheVkernel runs testdata/files/test_compat_files.py on the
// real python.wasm in the vkernel: the umask masks what is created and
// reaches child processes (inherited, and subprocess's umask=), os.chown
// for the owner, os.sendfile, os.copy_file_range and os.splice, os.fwalk,
// fd listings and shutil.rmtree's fd-based path, EBADF for a closed fd,
// and the host's time zone data. Every test must pass.
func TestFilesOnTheVkernel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python.wasm; skipped with -short")
	}
	build, err := wasmbuild.Latest(compat.CacheRoot(), wasmbuild.Python)
	if err != nil {
		testenv.Missing(t, "needs a python.wasm build (make images): %v", err)
	}
	for _, have := range []string{"HAVE_SENDFILE", "HAVE_COPY_FILE_RANGE", "HAVE_SPLICE", "HAVE_FDOPENDIR"} {
		if !configHas(t, build, have) {
			testenv.Missing(t, "python.wasm in %s was configured without %s: rebuild it (make images)", build.Dir, have)
		}
	}
	runCompatModule(t, build, filepath.Join("testdata", "files", "test_compat_files.py"), 7)
}

// configHas says whether the build's sysconfig data defines name as 1.
func configHas(t *testing.T, build *wasmbuild.Build, name string) bool {
	t.Helper()
	files, err := filepath.Glob(build.Path("lib", "python3.11", "_sysconfigdata_*.py"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no _sysconfigdata_*.py in %s: %v", build.Path("lib", "python3.11"), err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(data), "'"+name+"': 1,")
}

// runCompatModule runs the test module src, copied into a copy of build's
// Lib/test, on the vkernel through the pipeline as compat run does, and
// fails unless its tests all pass.
func runCompatModule(t *testing.T, build *wasmbuild.Build, src string, tests int) {
	t.Helper()
	b := withTestModule(t, build, src)
	name := strings.TrimSuffix(filepath.Base(src), ".py")
	cfg := pipeline.Config{
		Suites:  []runners.Suite{&Suite{build: b, modules: []string{name}}},
		Targets: []string{runners.Vkernel}, Out: t.TempDir(), Baselines: t.TempDir(),
		Cache: compat.CacheRoot(), Exec: testenv.CompatExec(t), Options: pipeline.Options{Parallel: 1},
	}
	o, err := pipeline.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
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
	runCompatModule(t, build, filepath.Join("testdata", "sock", "test_compat_sockets.py"), 8)
}
