package serverbench

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Both ways of reading a process's CPU time see this process's, and the
// precise one moves when it computes.
func TestCPU(t *testing.T) {
	pid := os.Getpid()
	before, err := threadsCPU(pid)
	if err != nil {
		t.Skipf("no per-thread schedstat here: %v", err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := threadsCPU(pid)
	if err != nil || after-before < 10*time.Millisecond {
		t.Fatalf("threadsCPU: %v -> %v, %v", before, after, err)
	}
	ticks, err := processCPU(pid)
	if err != nil || ticks <= 0 {
		t.Fatalf("processCPU: %v, %v", ticks, err)
	}
}

// Compare runs each test on both sides, alternating which goes first, and
// computes the ratios from the figures.
func TestCompare(t *testing.T) {
	server := func(name, addr string) *Server {
		s, err := start(name, addr, exec.Command("sleep", "60"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		return s
	}
	native, vk := server("native", "native:1"), server("vkernel", "vkernel:1")
	perSecond := map[string]float64{native.Addr: 200, vk.Addr: 150}
	var order []string
	run := func(name string) func(context.Context, string) (Figure, error) {
		return func(_ context.Context, addr string) (Figure, error) {
			order = append(order, name+"@"+addr)
			return Figure{PerSecond: perSecond[addr], Requests: 100}, nil
		}
	}
	rows, err := Compare(context.Background(), native, vk, []Test{{Name: "a", Run: run("a")}, {Name: "b", Run: run("b")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Ratio != 0.75 || rows[1].Ratio != 0.75 || rows[0].Native.PerSecond != 200 || rows[1].Vkernel.PerSecond != 150 {
		t.Fatalf("rows %+v", rows)
	}
	if got := strings.Join(order, " "); got != "a@native:1 a@vkernel:1 b@vkernel:1 b@native:1" {
		t.Fatalf("order %s", got)
	}
}
