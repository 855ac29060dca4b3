package redis

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat"
)

func TestOpenBuild(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenBuild(dir); err == nil || !strings.Contains(err.Error(), "make images") {
		t.Fatalf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "build-info.json"), []byte(`{"source":{"version":"5:7.0.15-1~deb12u10"}}`), 0o644)
	if _, err := OpenBuild(dir); err == nil || !strings.Contains(err.Error(), "redis-server.wasm") {
		t.Fatalf("no wasm: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "redis-server.wasm"), []byte("\x00asm"), 0o644)
	os.MkdirAll(filepath.Join(dir, "suite", "tests"), 0o755)
	os.WriteFile(filepath.Join(dir, "suite", "tests", "test_helper.tcl"), nil, 0o644)
	b, err := OpenBuild(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.ReferenceImage(); got != "compat/redis-reference:7.0.15-1_deb12u10" {
		t.Errorf("ReferenceImage = %q (images/redis/build-image.sh tags it 7.0.15-1_deb12u10)", got)
	}
	e := b.Entry()
	if e.Name != "redis-server" || e.Wasm != b.Wasm() || e.Resources.Listeners != MaxListeners || len(e.Resources.Mounts) != 1 {
		t.Errorf("Entry = %+v", e)
	}
	if l, err := LatestBuild(t.TempDir()); err == nil {
		t.Errorf("LatestBuild of an empty cache = %v", l)
	}
}

func TestHarnessDifferential(t *testing.T) {
	out := build(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Missing(t, "the host has no redis-server (apt-get install redis-server)")
	}
	b, err := OpenBuild(out)
	if err != nil {
		t.Fatal(err)
	}
	h := &Harness{Build: b, Differential: 2, DiffCount: 500}
	scratch := t.TempDir()
	tg, work, err := h.Target(context.Background(), "reference", nil, "local", scratch)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	var lines []string
	run, err := h.Run(context.Background(), tg, work, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Results) != 2 || run.Results[0].Test != "differential: seed 1" || run.Results[1].Status != compat.Pass {
		t.Fatalf("results %+v", run.Results)
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "differential: pass 2,") {
		t.Errorf("progress %q", lines)
	}
}
