package vkernel

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/compat-project/compat/vkernel/megabinary"
)

// spinWAT loops forever without calling the host.
const spinWAT = `(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))`

// yieldWAT loops forever calling sched_yield, a host call that returns at
// once, so only the checks at host calls can stop it.
const yieldWAT = `(module
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (drop (call $yield)) (br $l))))`

// stopWithin runs path under a context that ends after 200 ms and checks
// the exec ends within seconds, as stopped for its deadline.
func stopWithin(t *testing.T, k *Kernel, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := k.Exec(ctx, Request{Path: path})
		done <- err
	}()
	select {
	case err := <-done:
		var te *TrapError
		if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("exec ended with %v, want a TrapError for the deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the guest still ran 30 s after its context ended")
	}
}

// A kernel without Interruptible stops a guest at its next host call.
func TestStopAtHostCall(t *testing.T) {
	yield := guest(t, func() ([]byte, error) { return watBytes(yieldWAT) })
	f := newFixture(t, entry("yield", yield, megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	stopWithin(t, k, f.wasm("yield"))
	// The compiled module is not left closed: the next exec runs and
	// stops the same way.
	stopWithin(t, k, f.wasm("yield"))
}

// An Interruptible kernel stops a guest that never calls the host.
func TestInterruptibleStopsSpin(t *testing.T) {
	spin := guest(t, func() ([]byte, error) { return watBytes(spinWAT) })
	f := newFixture(t, entry("spin", spin, megabinary.Resources{}))
	k, _ := f.open(t, Options{Interruptible: true})
	stopWithin(t, k, f.wasm("spin"))
}
