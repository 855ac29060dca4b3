// Package bench measures the vkernel: exec latency to the guest's first
// instruction (Exec), and many concurrent tool invocations sharing one
// compiled megabinary (Concurrent), each beside the same work done by
// native processes in the same run.
package bench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
	"golang.org/x/sys/unix"
)

// Stats summarises a sample of durations.
type Stats struct {
	N    int           `json:"n"`
	Min  time.Duration `json:"min_ns"`
	P50  time.Duration `json:"p50_ns"`
	P95  time.Duration `json:"p95_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
	Mean time.Duration `json:"mean_ns"`
}

// Summarize computes Stats over samples (which it sorts).
func Summarize(samples []time.Duration) Stats {
	if len(samples) == 0 {
		return Stats{}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	q := func(p float64) time.Duration { return samples[min(len(samples)-1, int(p*float64(len(samples))))] }
	return Stats{N: len(samples), Min: samples[0], P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: samples[len(samples)-1], Mean: sum / time.Duration(len(samples))}
}

func (s Stats) String() string {
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  (min %s, max %s, n=%d)", ms(s.P50), ms(s.P95), ms(s.P99), ms(s.Min), ms(s.Max), s.N)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

// monotonic is CLOCK_MONOTONIC in nanoseconds: the clock guests and native
// programs read at their first instruction.
func monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// workspace is a directory holding a signed megabinary of the given guests
// (written as NAME.wasm beside it) and its public key. aliases adds hashes
// of other files that route to a guest's entry.
type workspace struct {
	dir string
	mb  string
	pub ed25519.PublicKey
}

func newWorkspace(dir string, guests map[string][]byte, res megabinary.Resources, aliases map[string][]string) (*workspace, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	modules := map[string][]byte{}
	var entries []megabinary.Entry
	for name, wasm := range guests {
		d := megabinary.SHA256(wasm)
		modules[d] = wasm
		entries = append(entries, megabinary.Entry{Name: name, Hashes: append([]string{d}, aliases[name]...), Module: d, Resources: res})
		path := filepath.Join(dir, name+".wasm")
		// Keep an unchanged file as it is.
		if old, err := os.ReadFile(path); err != nil || megabinary.SHA256(old) != d {
			if err := os.WriteFile(path, wasm, 0o755); err != nil {
				return nil, err
			}
		}
	}
	f, err := megabinary.Build(entries, modules)
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	f.Sign(priv)
	mb := filepath.Join(dir, "bench.vkmb")
	if err := f.WriteFile(mb); err != nil {
		return nil, err
	}
	return &workspace{dir: dir, mb: mb, pub: pub}, nil
}

func (w *workspace) open(ctx context.Context, cacheDir string) (*vkernel.Kernel, error) {
	return vkernel.Open(ctx, w.mb, vkernel.Options{TrustedKeys: []ed25519.PublicKey{w.pub}, CacheDir: cacheDir})
}

// settle waits until the file's last change is old enough for the vkernel
// to cache its hash, so that "warm" measures a cached hash.
func settle(path string, window time.Duration) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	if wait := time.Until(time.Unix(0, st.Ctim.Nano()).Add(window + 50*time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	return nil
}
