package docker

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"

	dc "github.com/ory/dockertest/v3/docker"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
)

// baseImage is built by images/ (debootstrap bookworm minbase + docker
// import); the tests need nothing in it beyond sh, sleep and perl-base.
const baseImage = "compat/bookworm-base:latest"

var _ runners.Target = (*Target)(nil)

// needDocker skips the test when Docker or the base image is missing.
func needDocker(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Docker containers; skipped with -short")
	}
	p, err := pool("")
	if err != nil {
		testenv.Missing(t, "Docker is not reachable: %v", err)
	}
	if _, err := p.Client.InspectImage(baseImage); err != nil {
		testenv.Missing(t, "image %s not found (build it with `make images`): %v", baseImage, err)
	}
}

func newTarget(t *testing.T, opts Options) *Target {
	t.Helper()
	tg, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tg.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tg
}

func run(t *testing.T, tg *Target, ctx context.Context, p runners.Process) (runners.Exit, string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	p.Stdout, p.Stderr = &out, &errb
	exit, err := tg.Run(ctx, p)
	return exit, out.String(), errb.String(), err
}

func containerGone(t *testing.T, id string) bool {
	t.Helper()
	p, _ := pool("")
	_, err := p.Client.InspectContainer(id)
	var missing *dc.NoSuchContainer
	return errors.As(err, &missing)
}

func TestTargetRun(t *testing.T) {
	needDocker(t)
	rw, ro := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ro, "in.txt"), []byte("read me"), 0o644)
	tg := newTarget(t, Options{
		Name:       "ref",
		Image:      baseImage,
		Env:        []string{"COMPAT_BASE=base"},
		Mounts:     []runners.Mount{{Host: rw, Guest: "/out"}, {Host: ro, Guest: "/in", ReadOnly: true}},
		Properties: map[string]string{"version.python": "3.11.2"},
	})
	if tg.Name() != "ref" {
		t.Errorf("Name() = %q", tg.Name())
	}
	props := tg.Properties()
	if !strings.HasPrefix(props[compat.PropImageID], "sha256:") || props["image"] != baseImage || props["version.python"] != "3.11.2" {
		t.Errorf("Properties() = %v", props)
	}
	tests := []struct {
		name     string
		p        runners.Process
		want     runners.Exit
		out, err string
	}{
		{"output and env", runners.Process{Args: []string{"sh", "-c", `echo "$COMPAT_BASE $COMPAT_X"; echo to-err >&2`}, Env: []string{"COMPAT_X=x"}},
			runners.Exit{}, "base x\n", "to-err\n"},
		{"exit status", runners.Process{Args: []string{"sh", "-c", "exit 3"}}, runners.Exit{Code: 3}, "", ""},
		{"signal", runners.Process{Args: []string{"sh", "-c", "kill -SEGV $$"}}, runners.Exit{Code: -1, Crash: "signal: segmentation fault"}, "", ""},
		{"stdin", runners.Process{Args: []string{"cat"}, Stdin: strings.NewReader("piped in")}, runners.Exit{}, "piped in", ""},
		{"working directory", runners.Process{Args: []string{"pwd"}, Dir: "/in"}, runners.Exit{}, "/in\n", ""},
		{"read-only mount", runners.Process{Args: []string{"sh", "-c", "cat /in/in.txt; touch /in/x 2>/dev/null || echo ' refused'"}},
			runners.Exit{}, "read me refused\n", ""},
		{"writable mount", runners.Process{Args: []string{"sh", "-c", "echo written > /out/file"}}, runners.Exit{}, "", ""},
	}
	for _, tt := range tests {
		exit, out, errOut, err := run(t, tg, context.Background(), tt.p)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if exit != tt.want || out != tt.out || errOut != tt.err {
			t.Errorf("%s: exit %v, stdout %q, stderr %q; want %v, %q, %q", tt.name, exit, out, errOut, tt.want, tt.out, tt.err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(rw, "file")); err != nil || string(b) != "written\n" {
		t.Errorf("file written to the mount: %q, %v", b, err)
	}
	// Failures of the environment are errors, not exit statuses.
	if _, _, _, err := run(t, tg, context.Background(), runners.Process{Args: []string{"no-such-program"}}); err == nil || !strings.Contains(err.Error(), "program no-such-program not found") {
		t.Errorf("missing program: err = %v", err)
	}
	if _, _, _, err := run(t, tg, context.Background(), runners.Process{Args: []string{"true"}, Dir: "/no/such/dir"}); err == nil || !strings.Contains(err.Error(), "working directory /no/such/dir does not exist") {
		t.Errorf("missing directory: err = %v", err)
	}
	// A program of the container's that exits 127 by itself is not
	// mistaken for a missing one.
	if exit, _, _, err := run(t, tg, context.Background(), runners.Process{Args: []string{"sh", "-c", "exit 127"}}); err != nil || exit.Code != 127 {
		t.Errorf("exit 127: %v, %v", exit, err)
	}
}

func TestTargetTimeoutKillsProcessGroup(t *testing.T) {
	needDocker(t)
	tg := newTarget(t, Options{Image: baseImage})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The background child would outlive its shell if only the shell
	// were killed.
	_, _, _, err := run(t, tg, ctx, runners.Process{Args: []string{"sh", "-c", "sleep 300 & sleep 300"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run returned %v after a 500ms timeout", d)
	}
	// Only the entrypoint's sleep may be left.
	_, out, _, err := run(t, tg, context.Background(), runners.Process{Args: []string{"sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "sleep 300") {
		t.Errorf("processes left after the timeout: %q", out)
	}
}

func TestTargetClose(t *testing.T) {
	needDocker(t)
	tg, err := New(context.Background(), Options{Image: baseImage})
	if err != nil {
		t.Fatal(err)
	}
	id := tg.ContainerID()
	if tg.Name() != "reference" {
		t.Errorf("default Name() = %q", tg.Name())
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if !containerGone(t, id) {
		t.Errorf("container %.12s still exists after Close", id)
	}
	if _, _, _, err := run(t, tg, context.Background(), runners.Process{Args: []string{"true"}}); err == nil {
		t.Error("Run after Close gave no error")
	}
}

func TestMissingImage(t *testing.T) {
	needDocker(t)
	start := time.Now()
	_, err := New(context.Background(), Options{Image: "compat/no-such-image:never"})
	if err == nil || !strings.Contains(err.Error(), "compat/no-such-image:never not found locally: run `make images`") {
		t.Fatalf("err = %v, want one telling to run make images", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("New took %v for a missing image: did it try to pull?", d)
	}
}

func TestTargetPublishesNothing(t *testing.T) {
	needDocker(t)
	tg := newTarget(t, Options{Image: baseImage})
	p, _ := pool("")
	c, err := p.Client.InspectContainer(tg.ContainerID())
	if err != nil {
		t.Fatal(err)
	}
	if c.HostConfig.PublishAllPorts || len(c.HostConfig.PortBindings) != 0 {
		t.Errorf("target container publishes ports: all=%v bindings=%v", c.HostConfig.PublishAllPorts, c.HostConfig.PortBindings)
	}
	if c.Config.Labels[Label] != "1" {
		t.Errorf("labels = %v, want %s=1", c.Config.Labels, Label)
	}
}

func TestPurgeAll(t *testing.T) {
	needDocker(t)
	a, err := New(context.Background(), Options{Image: baseImage})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background(), Options{Image: baseImage})
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	if err := PurgeAll(); err != nil {
		t.Fatal(err)
	}
	for _, tg := range []*Target{a, b} {
		if !containerGone(t, tg.ContainerID()) {
			t.Errorf("container %.12s survived PurgeAll", tg.ContainerID())
		}
		if err := tg.Close(); err != nil {
			t.Errorf("Close after PurgeAll: %v", err)
		}
	}
}
