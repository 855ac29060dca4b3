package vkernel

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// TestThreadsFeatureLeavesCode checks the claim engineConfig's comment
// makes: for a module without a shared memory, the machine code wazero
// compiles with the threads feature on is the code it compiles without it,
// byte for byte, so turning the feature on for every module costs
// single-threaded guests no speed. A wazero upgrade that breaks this fails
// here, and the guest-speed figures must then be measured again.
func TestThreadsFeatureLeavesCode(t *testing.T) {
	wasm := cGuest(t, "probe.c")
	ctx := context.Background()
	compiled := func(cfg wazero.RuntimeConfig) []byte {
		t.Helper()
		dir := t.TempDir()
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		r := wazero.NewRuntimeWithConfig(ctx, cfg.WithCompilationCache(cache))
		if _, err := r.CompileModule(ctx, wasm); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		var files []string
		err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 1 {
			t.Fatalf("compilation cache %s holds %d files after one module, want 1: %q", dir, len(files), files)
		}
		code, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	for _, interruptible := range []bool{false, true} {
		with := compiled(engineConfig(interruptible))
		without := compiled(engineConfig(interruptible).WithCoreFeatures(api.CoreFeaturesV2))
		if len(with) < 1024 {
			t.Fatalf("interruptible=%v: %d bytes of compiled code for the probe guest: not a compiled module", interruptible, len(with))
		}
		if !bytes.Equal(with, without) {
			t.Errorf("interruptible=%v: the threads feature changed the compiled code of a module without a shared memory (%d bytes with it, %d without): measure guest speed again (compat bench python) and revisit engineConfig", interruptible, len(with), len(without))
		}
	}
}
