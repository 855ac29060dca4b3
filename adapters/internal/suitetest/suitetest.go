// Package suitetest helps the adapters' tests run a suite on the vkernel
// the way the pipeline does: a megabinary of the suite's entries, signed,
// opened, and described by a runners.TargetSpec.
package suitetest

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/compat-project/compat/adapters/internal/prepare"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// Vkernel signs a megabinary of entries into a temporary directory, opens
// it with cache as the cache root (AOT code), and returns the vkernel
// target's spec, with a scratch directory of its own. The kernel is closed
// when the test ends.
func Vkernel(t testing.TB, cache string, entries ...megabinary.SpecEntry) runners.TargetSpec {
	t.Helper()
	signed, err := prepare.Sign(t.TempDir(), "test", entries)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := megabinary.ReadPublicKey(signed.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err := vkernel.Open(context.Background(), signed.Path, vkernel.Options{TrustedKeys: []ed25519.PublicKey{pub}, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close(context.Background()) })
	return runners.TargetSpec{Kind: runners.Vkernel, Kernel: k, Megabinary: signed.Path, PublicKey: signed.PublicKey,
		Cache: cache, Scratch: t.TempDir()}
}
