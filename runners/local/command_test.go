package local

import (
	"bytes"
	"context"
	"os/exec"
	"testing"

	"github.com/compat-project/compat/runners"
)

// TestCommand: the command maps guest paths as Run does, and running it
// in sh does what Run does.
func TestCommand(t *testing.T) {
	host := t.TempDir()
	tg := newTarget(t, runners.Mount{Host: host, Guest: "/compat/work"})
	p := runners.Process{Args: []string{"sh", "-c", "echo $COMPAT_BASE $X > out; pwd"}, Dir: "/compat/work", Env: []string{"X=it's"}}
	got := tg.Command(p)
	want := "cd " + host + " && env COMPAT_BASE=base 'X=it'\\''s' sh -c 'echo $COMPAT_BASE $X > out; pwd'"
	if got != want {
		t.Fatalf("Command =\n %s\nwant\n %s", got, want)
	}
	var viaRun, viaSh bytes.Buffer
	p.Stdout = &viaRun
	if _, err := tg.Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", got).Output()
	if err != nil {
		t.Fatal(err)
	}
	viaSh.Write(out)
	if viaRun.String() != viaSh.String() {
		t.Errorf("Run printed %q, the command %q", viaRun.String(), viaSh.String())
	}
}
