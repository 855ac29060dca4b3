package redis

import (
	"context"
	"math"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/local"
	"github.com/compat-project/compat/runners/vktarget"
)

func TestGeneratorIsDeterministic(t *testing.T) {
	stream := func(seed uint64) [][]string {
		g := newGenerator(seed, 8)
		var s [][]string
		for i := 0; i < 200; i++ {
			s = append(s, g.next())
		}
		return s
	}
	if !reflect.DeepEqual(stream(1), stream(1)) {
		t.Error("seed 1 gave two different streams")
	}
	if reflect.DeepEqual(stream(1), stream(2)) {
		t.Error("seeds 1 and 2 gave the same stream")
	}
}

func TestRenderSortsUnorderedReplies(t *testing.T) {
	if got := render([]any{"b", "a", int64(3)}, true); got != `["a", "b", 3]` {
		t.Errorf("sorted: %s", got)
	}
	if got := render([]any{"b", "a", nil}, false); got != `["b", "a", (nil)]` {
		t.Errorf("unsorted: %s", got)
	}
}

// serve starts a server on target and waits for its PONG.
func serve(t *testing.T, target runners.Server, server []string, args ...string) string {
	t.Helper()
	svc, err := target.Serve(context.Background(), 1, func(ports []int) runners.Process {
		return runners.Process{Args: append(append(append([]string(nil), server...), "--port", strconv.Itoa(ports[0])), append(append([]string(nil), ServerArgs...), args...)...)}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := waitReady(context.Background(), svc, svc.Addrs()[0], 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return svc.Addrs()[0]
}

func hostServer(t *testing.T) (runners.Server, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Redis servers; skipped with -short")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "the host has no redis-server (apt-get install redis-server)")
	}
	tg, err := local.New(local.Options{Name: "host"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg, bin
}

func TestDifferentialFindsDivergence(t *testing.T) {
	tg, bin := hostServer(t)
	a := serve(t, tg, []string{bin}, "--dir", t.TempDir())
	b := serve(t, tg, []string{bin}, "--dir", t.TempDir())
	ctx := context.Background()
	rep, err := Differential(ctx, a, b, DiffOptions{Seed: 7, Count: 3000})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Divergence != nil || rep.Commands != 3000 {
		t.Fatalf("two identical servers diverged: %v after %d commands", rep.Divergence, rep.Commands)
	}
	if r := rep.Result(); r.Status != compat.Pass || r.Test != "differential: seed 7" {
		t.Errorf("Result = %+v", r)
	}
	// A server that refuses every write differs at the first write.
	c := goredis.NewClient(&goredis.Options{Addr: b, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	rep, err = Differential(ctx, a, b, DiffOptions{Seed: 7, Count: 3000})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Divergence
	if d == nil || !strings.Contains(d.B, "OOM") || d.Index != rep.Commands {
		t.Fatalf("divergence %v after %d commands", d, rep.Commands)
	}
	r := rep.Result()
	if r.Status != compat.Fail || !strings.Contains(r.Message, strings.Join(d.Command, " ")) {
		t.Errorf("Result = %+v", r)
	}
	t.Logf("found: %v", d)
}

func TestDifferentialVkernelAgainstHost(t *testing.T) {
	tg, bin := hostServer(t)
	build := testBuild(t)
	spec := testKernel(t, build)
	vt, err := vktarget.New(vktarget.Options{Kernel: spec.Kernel, Mounts: []runners.Mount{{Host: spec.Scratch, Guest: "/"}},
		Programs: map[string]string{"redis-server": build.Wasm()}, Megabinary: spec.Megabinary, PublicKey: spec.PublicKey,
		Exec: spec.Exec, Cache: spec.Cache})
	if err != nil {
		t.Fatal(err)
	}
	defer vt.Close()
	a := serve(t, tg, []string{bin}, "--dir", t.TempDir())
	b := serve(t, vt, []string{"redis-server"})
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		rep, err := Differential(context.Background(), a, b, DiffOptions{Seed: seed, Count: 5000, Timeout: time.Minute, Leave: KnownDivergences})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: %d commands agreed in %v", seed, rep.Commands, rep.Duration.Round(time.Millisecond))
		if rep.Divergence != nil {
			t.Errorf("seed %d: native and wasm differ at %v", seed, rep.Divergence)
		}
	}
	// With the long-double commands in, they are where the two differ,
	// and only in the last digits.
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		rep, err := Differential(context.Background(), a, b, DiffOptions{Seed: seed, Count: 5000, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		d := rep.Divergence
		if d == nil {
			continue
		}
		t.Logf("seed %d, known divergence: %v", seed, d)
		x, errA := strconv.ParseFloat(strings.Trim(d.A, `"`), 64)
		y, errB := strconv.ParseFloat(strings.Trim(d.B, `"`), 64)
		if !slices.Contains(KnownDivergences, d.Command[0]) || errA != nil || errB != nil || math.Abs(x-y) > 1e-9*math.Max(1, math.Abs(x)) {
			t.Errorf("seed %d: an unexpected divergence: %v", seed, d)
		}
	}
}
