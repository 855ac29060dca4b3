package bench

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/guests"
)

// TestMain lets the test binary be the vkernel child processes of the
// spawn and fork latencies.
func TestMain(m *testing.M) {
	vkernel.ChildMain()
	os.Exit(m.Run())
}

// TestBenchmarksRun runs both benchmarks small: they must complete with
// every invocation correct. Their figures are for people, not asserted.
func TestBenchmarksRun(t *testing.T) {
	dir := t.TempDir()
	ex, err := Exec(context.Background(), ExecOptions{Runs: 20, Dir: dir, ChildCommand: []string{os.Args[0]}, ForkHeapMiB: 16})
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if ex.Warm.N != 20 || ex.Cold.N != 20 || ex.Native.N != 20 || ex.Warm.P50 <= 0 || ex.Rehash.N != 20 || ex.RehashBytes != 9<<20 ||
		ex.Spawn.N != 20 || ex.NativeSpawn.N != 20 || ex.Spawn.P50 <= 0 || ex.Fork.N != 5 || ex.NativeFork.N != 5 || ex.Fork.P50 <= 0 {
		t.Fatalf("exec report %+v", ex)
	}
	c, err := Concurrent(context.Background(), ConcurrentOptions{N: 20, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.Vkernel.Failures != 0 || c.Native.Failures != 0 || c.Vkernel.Completion.N != 20 {
		t.Fatalf("concurrent report %+v", c)
	}
}

// TestAgentBenchRuns runs the agent benchmark small, without the python
// rows: every call through the service, the library and plain compat
// exec must succeed and report its guest's first instruction.
func TestAgentBenchRuns(t *testing.T) {
	if _, err := guests.NativeC("firstinsn.c"); errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	rep, err := Agent(context.Background(), AgentOptions{Runs: 10, Dir: t.TempDir(), Compat: testenv.CompatExec(t)[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tool) != 4 || rep.Python != nil || rep.PythonUnavailable == "" {
		t.Fatalf("agent report %+v", rep)
	}
	for _, row := range rep.Tool {
		if row.First.N != 10 || row.Exit.N != 10 || row.First.P50 <= 0 || row.First.P50 > row.Exit.P50 {
			t.Errorf("row %s: %+v", row.Name, row)
		}
	}
	if rep.ServiceStats.WarmRuns == 0 {
		t.Errorf("no call ran in an instance started ahead of need: %+v", rep.ServiceStats)
	}
}
