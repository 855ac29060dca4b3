// Package suitetest holds what the adapters' tests share: a vkernel target
// spec made the way the pipeline makes it (a megabinary of the suite's
// entries, signed and opened), recorded harness output, results by id.
package suitetest

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/prepare"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/testenv"
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
		Exec: testenv.CompatExec(t), Cache: cache, Scratch: t.TempDir()}
}

// Recorded returns testdata/recorded/NAME: output an upstream harness
// wrote, kept to test a parser on.
func Recorded(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "recorded", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ByTest indexes results by test id.
func ByTest(rs []compat.Result) map[string]compat.Result {
	m := make(map[string]compat.Result, len(rs))
	for _, r := range rs {
		m[r.Test] = r
	}
	return m
}
