package vkernel

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/compat-project/compat/vkernel/megabinary"
	"golang.org/x/sync/errgroup"
)

// TestDispatcherConcurrentRouting runs 3 different guests 200 times each,
// all at once on one kernel, and checks that every instance printed its own
// guest's identity: zero misroutes, and no instance saw another's output.
func TestDispatcherConcurrentRouting(t *testing.T) {
	const guestsN, perGuest = 3, 200
	var entries []testEntry
	for i := 0; i < guestsN; i++ {
		entries = append(entries, entry(fmt.Sprintf("g%d", i), identGuest(t, fmt.Sprintf("identity-%d", i)), megabinary.Resources{}))
	}
	f := newFixture(t, entries...)
	k, _ := f.open(t, Options{})
	var misroutes atomic.Int64
	var g errgroup.Group
	for n := 0; n < guestsN*perGuest; n++ {
		i := n % guestsN
		g.Go(func() error {
			var out bytes.Buffer
			res, err := k.Exec(context.Background(), Request{Path: f.wasm(fmt.Sprintf("g%d", i)), Stdout: &out})
			if err != nil {
				return err
			}
			if want := fmt.Sprintf("identity-%d\n", i); out.String() != want || res.Entry != fmt.Sprintf("g%d", i) {
				misroutes.Add(1)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if m := misroutes.Load(); m != 0 {
		t.Fatalf("%d of %d execs misrouted", m, guestsN*perGuest)
	}
}

// TestInstancesAreIsolated runs two instances of the same module at once:
// each has its own fd table and memory, so one's files and writes are not
// visible to the other.
func TestInstancesAreIsolated(t *testing.T) {
	f := newFixture(t, entry("probe", cGuest(t, "probe.c"), megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}}))
	k, _ := f.open(t, Options{})
	var g errgroup.Group
	outs := make([]string, 8)
	for i := range outs {
		g.Go(func() error {
			var out bytes.Buffer
			// Each instance gets its own root; all create /work/a.txt.
			_, err := k.Exec(context.Background(), Request{
				Path: f.wasm("probe"), Args: []string{"probe", "fs"}, Stdout: &out,
				Mounts: []Mount{{Guest: "/", Host: t.TempDir()}},
			})
			outs[i] = out.String()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, out := range outs {
		if field(out, "create") != "1" || field(out, "data") != "hello" || field(out, "rmdir") != "0" {
			t.Errorf("instance %d: %q", i, out)
		}
	}
}
