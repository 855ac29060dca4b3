package redis

import (
	"context"
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/runners/local"
	rvk "github.com/compat-project/compat/runners/vkernel"
	vk "github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// build finds the output of images/redis/build-wasm.sh in the cache (the
// newest complete one), or skips: the suite comes from it.
func build(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Redis servers and the Tcl suite; skipped with -short")
	}
	if _, err := exec.LookPath("tclsh"); err != nil {
		testenv.Missing(t, "tclsh is not installed (apt-get install tcl)")
	}
	root := os.Getenv("COMPAT_CACHE")
	if root == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			testenv.Missing(t, "%v", err)
		}
		root = filepath.Join(c, "compat")
	}
	dones, _ := filepath.Glob(filepath.Join(root, "redis-wasm", "*", ".done"))
	if len(dones) == 0 {
		testenv.Missing(t, "no redis-server.wasm build under %s (make -f images/images.mk redis-wasm)", root)
	}
	sort.Slice(dones, func(i, j int) bool {
		a, _ := os.Stat(dones[i])
		b, _ := os.Stat(dones[j])
		return a.ModTime().After(b.ModTime())
	})
	return filepath.Dir(dones[0])
}

// scratchSuite copies the build's suite and adds testdata/units.
func scratchSuite(t *testing.T, out string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "suite")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(out, "suite"))); err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob(filepath.Join("testdata", "units", "*.tcl"))
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tests", "unit", filepath.Base(u)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// check runs real units against target and checks what each must give:
// a unit that passes, one of every outcome, a server that crashes and a
// server that hangs, all in one bounded run.
func check(t *testing.T, target runners.Target, suite string, server []string, serverArgs []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	run, err := Run(ctx, target, Options{
		Suite:      suite,
		Units:      []string{"unit/type/incr", "unit/compat_sample", "unit/compat_crash", "unit/compat_hang"},
		Server:     server,
		ServerArgs: serverArgs,
		Args:       []string{"--skiptest", "compat skipped by --skiptest"},
		Parallel:   2,
		Timeout:    15 * time.Second,
		Progress: func(p Progress) {
			t.Logf("%s: %+v in %v (err %v)", p.Unit, p.Counts, p.Elapsed.Round(time.Millisecond), p.Err)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d results in %v", target.Name(), len(run.Results), time.Since(start).Round(time.Millisecond))
	byUnit := map[string]compat.Counts{}
	m := map[string]compat.Result{}
	for _, r := range run.Results {
		c := byUnit[r.Unit]
		c.Add(r)
		byUnit[r.Unit] = c
		m[r.Test] = r
	}
	if c := byUnit["unit/type/incr"]; c.Pass < 20 || c.Fail+c.Error != 0 {
		for _, r := range run.Results {
			if r.Unit == "unit/type/incr" && r.Status.Failed() {
				t.Logf("%s: %s\n%s", r.Test, r.Message, r.Output)
			}
		}
		t.Errorf("unit/type/incr: %+v, want only passes", c)
	}
	for test, want := range map[string]compat.Status{
		"unit/compat_sample: compat passes":                  compat.Pass,
		"unit/compat_sample: compat fails: an assertion":     compat.Fail,
		"unit/compat_sample: compat fails: a wrong result":   compat.Fail,
		"unit/compat_sample: compat skipped by --skiptest":   compat.Skip,
		"unit/compat_sample: compat ignored: a tag":          compat.Skip,
		"unit/compat_sample: compat passes after the others": compat.Pass,
		"unit/compat_crash: compat before the crash":         compat.Pass,
		"unit/compat_hang: compat before the hang":           compat.Pass,
	} {
		if r, ok := m[test]; !ok || r.Status != want {
			t.Errorf("%s: %+v, want %s", test, r, want)
		}
	}
	if r, ok := m["unit/compat_sample"]; ok {
		t.Errorf("unit/compat_sample ran to its end but has a unit error: %s", r.Message)
	}
	t.Logf("crash: %s", m["unit/compat_crash"].Message)
	if r := m["unit/compat_crash"]; r.Status != compat.Error || !strings.Contains(r.Message, "server ended in the middle of the unit") {
		t.Errorf("crash: %q %q", r.Status, r.Message)
	}
	if r := m["unit/compat_hang"]; r.Status != compat.Error || !strings.Contains(r.Message, "timed out") {
		t.Errorf("hang: %q %q", r.Status, r.Message)
	}
	if _, ok := m["unit/compat_crash: compat after the crash"]; ok {
		t.Error("a test after the crash reported")
	}
}

func TestLocalServer(t *testing.T) {
	out := build(t)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Missing(t, "the host has no redis-server (apt-get install redis-server)")
	}
	tg, err := local.New(local.Options{Name: "host"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	check(t, tg, scratchSuite(t, out), []string{bin}, []string{"--dir", t.TempDir()})
}

func TestReferenceImage(t *testing.T) {
	out := build(t)
	img := os.Getenv("COMPAT_REDIS_REFERENCE_IMAGE")
	if img == "" {
		img = "compat/redis-reference:7.0.15-1_deb12u10"
	}
	tg, err := docker.New(context.Background(), docker.Options{Image: img, HostNetwork: true})
	if err != nil {
		testenv.Missing(t, "reference image %s (images/redis/build-image.sh): %v", img, err)
	}
	defer tg.Close()
	check(t, tg, scratchSuite(t, out), []string{"redis-server"}, nil)
}

func TestVkernel(t *testing.T) {
	out := build(t)
	wasm := filepath.Join(out, "redis-server.wasm")
	mod, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	d := megabinary.SHA256(mod)
	f, err := megabinary.Build([]megabinary.Entry{{
		Name: "redis-server", Hashes: []string{d}, Module: d,
		Resources: megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}, Listeners: 1, Connect: []string{"127.0.0.0/8"}},
	}}, map[string][]byte{d: mod})
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	f.Sign(priv)
	dir := t.TempDir()
	mb := filepath.Join(dir, "redis.vkmb")
	if err := f.WriteFile(mb); err != nil {
		t.Fatal(err)
	}
	k, err := vk.Open(context.Background(), mb, vk.Options{TrustedKeys: []ed25519.PublicKey{pub}, CacheDir: filepath.Join(os.TempDir(), "compat-redis-test-aot")})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(context.Background())
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o755)
	tg, err := rvk.New(rvk.Options{Kernel: k, Mounts: []runners.Mount{{Host: data, Guest: "/"}},
		Programs: map[string]string{"redis-server": wasm}})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	check(t, tg, scratchSuite(t, out), []string{"redis-server"}, nil)
}
