package hostabi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// TestWakeAllFindsWaiters: wakeAll finds wazero's table of waiters on a
// shared memory (waitersOf) and wakes a thread blocked in
// memory.atomic.wait32 with no timeout, which nothing else would.
func TestWakeAllFindsWaiters(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCoreFeatures(api.CoreFeaturesV2|experimental.CoreFeaturesThreads))
	defer r.Close(ctx)
	build := func(text string) api.Module {
		t.Helper()
		wasm, err := guests.WATThreads(text)
		if errors.Is(err, guests.ErrToolMissing) {
			testenv.Missing(t, "cannot build the guest: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	mem := build(`(module (memory (export "memory") 1 1 shared))`)
	if waitersOf(mem.ExportedMemory("memory")) == nil {
		t.Fatal("waitersOf found no table of waiters in wazero's shared memory")
	}
	rctx := experimental.WithImportResolver(ctx, func(name string) api.Module {
		if name == "env" {
			return mem
		}
		return nil
	})
	wasm, err := guests.WATThreads(`(module (import "env" "memory" (memory 1 1 shared))
		(func (export "wait") (drop (memory.atomic.wait32 (i32.const 64) (i32.const 0) (i64.const -1)))))`)
	if err != nil {
		t.Fatal(err)
	}
	waiter, err := r.InstantiateWithConfig(rctx, wasm, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	woken := make(chan error, 1)
	go func() {
		_, err := waiter.ExportedFunction("wait").Call(ctx)
		woken <- err
	}()
	// Wait until the waiter is in the table, then wake it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		found := false
		waitersOf(mem.ExportedMemory("memory")).Range(func(k, _ any) bool {
			found = found || k == uint32(64)
			return true
		})
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiter never appeared in wazero's table of waiters at address 64")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-woken:
		t.Fatal("the waiter returned before it was woken")
	case <-time.After(50 * time.Millisecond):
	}
	wakeAll(mem)
	select {
	case err := <-woken:
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wakeAll did not wake the waiter")
	}
}
