package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/vkernel"
)

var _ runners.Target = (*Target)(nil)

func newTarget(t *testing.T, mounts ...runners.Mount) *Target {
	t.Helper()
	tg, err := New(Options{Name: "host", Mounts: mounts, Env: []string{"COMPAT_BASE=base"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func run(t *testing.T, tg *Target, ctx context.Context, p runners.Process) (runners.Exit, string, error) {
	t.Helper()
	var out bytes.Buffer
	p.Stdout, p.Stderr = &out, &out
	exit, err := tg.Run(ctx, p)
	return exit, out.String(), err
}

func TestExitStatuses(t *testing.T) {
	tg := newTarget(t)
	tests := []struct {
		script string
		want   runners.Exit
		out    string
	}{
		{"echo hello", runners.Exit{}, "hello\n"},
		{"echo oops >&2; exit 3", runners.Exit{Code: 3}, "oops\n"},
		{"kill -SEGV $$", runners.Exit{Code: -1, Crash: "signal: segmentation fault"}, ""},
		{"echo $COMPAT_BASE $COMPAT_X", runners.Exit{}, "base over\n"},
		{"cat", runners.Exit{}, "from stdin"},
	}
	for _, tt := range tests {
		p := runners.Process{Args: []string{"sh", "-c", tt.script}, Env: []string{"COMPAT_X=x", "COMPAT_X=over"}, Stdin: strings.NewReader("from stdin")}
		exit, out, err := run(t, tg, context.Background(), p)
		if err != nil {
			t.Errorf("%s: error %v", tt.script, err)
			continue
		}
		if exit != tt.want || out != tt.out {
			t.Errorf("%s: exit %v output %q, want %v %q", tt.script, exit, out, tt.want, tt.out)
		}
		if exit.OK() != (tt.want == runners.Exit{}) {
			t.Errorf("%s: OK() = %v", tt.script, exit.OK())
		}
	}
}

func TestMountsMapPaths(t *testing.T) {
	host := t.TempDir()
	inner := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in.txt"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t, runners.Mount{Host: host, Guest: "/work"}, runners.Mount{Host: inner, Guest: "/work/out"})
	p := runners.Process{
		Args: []string{"sh", "-c", `cat in.txt > "$1"; echo "$OUT" "$2"`, "sh", "/work/out/copy.txt", "--flag=/work/out/x"},
		Env:  []string{"OUT=/work/out"},
		Dir:  "/work",
	}
	exit, out, err := run(t, tg, context.Background(), p)
	if err != nil || !exit.OK() {
		t.Fatalf("exit %v, err %v, output %q", exit, err, out)
	}
	if want := inner + " --flag=" + inner + "/x\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	got, err := os.ReadFile(filepath.Join(inner, "copy.txt"))
	if err != nil || string(got) != "data" {
		t.Errorf("copy.txt in the inner mount: %q, %v", got, err)
	}
	if h, ok := tg.HostPath("/elsewhere"); ok || h != "/elsewhere" {
		t.Errorf("HostPath(/elsewhere) = %q, %v; want it unchanged and false", h, ok)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	tg := newTarget(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "child-alive")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The child outlives the shell unless the whole group is killed.
	script := `(sleep 1; touch ` + marker + `) & sleep 30`
	_, _, err := run(t, tg, ctx, runners.Process{Args: []string{"sh", "-c", script}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run returned after %v, want soon after the 300ms timeout", d)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Error("the child survived the timeout: the process group was not killed")
	}
}

func TestInfrastructureErrors(t *testing.T) {
	tg := newTarget(t)
	if _, _, err := run(t, tg, context.Background(), runners.Process{Args: []string{"/no/such/program"}}); err == nil {
		t.Error("a missing program gave no error")
	}
	if _, _, err := run(t, tg, context.Background(), runners.Process{}); err == nil {
		t.Error("no Args gave no error")
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := run(t, tg, context.Background(), runners.Process{Args: []string{"true"}}); err == nil {
		t.Error("Run after Close gave no error")
	}
	if _, err := New(Options{Mounts: []runners.Mount{{Host: "/no/such/dir", Guest: "/x"}}}); err == nil {
		t.Error("New with a missing mount directory gave no error")
	}
	if _, err := New(Options{Mounts: []runners.Mount{{Host: t.TempDir(), Guest: "rel"}}}); err == nil {
		t.Error("New with a relative guest path gave no error")
	}
	if p := tg.Properties(); p["host.os"] == "" {
		t.Errorf("Properties() = %v, want host.os", p)
	}
}

// TestHostCallsDir: a process run under a context naming a host calls
// directory (a unit's harness, which starts shims) has it in
// COMPAT_HOSTCALLS_DIR, over an inherited value and the process's own;
// otherwise it keeps what it inherits.
func TestHostCallsDir(t *testing.T) {
	t.Setenv(vkernel.EnvHostCallsDir, "/inherited")
	tg := newTarget(t)
	p := runners.Process{Args: []string{"sh", "-c", `echo "dir=$` + vkernel.EnvHostCallsDir + `"`}, Env: []string{vkernel.EnvHostCallsDir + "=/own"}}
	dir := t.TempDir()
	if _, out, err := run(t, tg, runners.WithHostCallsDir(context.Background(), dir), p); err != nil || out != "dir="+dir+"\n" {
		t.Errorf("under the unit's context: %q, %v; want dir=%s", out, err, dir)
	}
	p.Env = nil
	if _, out, err := run(t, tg, context.Background(), p); err != nil || out != "dir=/inherited\n" {
		t.Errorf("without one: %q, %v; want the inherited dir=/inherited", out, err)
	}
}
