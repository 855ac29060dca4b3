package runners

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuoteCommand(t *testing.T) {
	got := QuoteCommand("python3.11", "-m", "test", "--junit-xml", "/compat-work/x.xml", "", "it's", "a b", "K=v", "$HOME")
	want := `python3.11 -m test --junit-xml /compat-work/x.xml '' 'it'\''s' 'a b' K=v '$HOME'`
	if got != want {
		t.Errorf("QuoteCommand = %s\nwant          %s", got, want)
	}
}

func TestTail(t *testing.T) {
	var lines []string
	for i := 1; i <= 100; i++ {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	s := strings.Join(lines, "\n") + "\n\n"
	if got := Tail(s, 3, 1<<20); got != "line 98\nline 99\nline 100" {
		t.Errorf("last 3 lines: %q", got)
	}
	// A byte limit cuts at the start of a line, never inside one.
	if got := Tail(s, 100, 20); got != "line 99\nline 100" {
		t.Errorf("last 20 bytes: %q", got)
	}
	if got := Tail("", 3, 10); got != "" {
		t.Errorf("empty: %q", got)
	}
}

func TestTargetError(t *testing.T) {
	base := errors.New("container gone")
	err := fmt.Errorf("unit x: %w", TargetError(base))
	if !errors.Is(err, ErrTarget) || !errors.Is(err, base) || err.Error() != "unit x: container gone" {
		t.Errorf("%v: Is ErrTarget %v, Is base %v", err, errors.Is(err, ErrTarget), errors.Is(err, base))
	}
	if errors.Is(base, ErrTarget) || TargetError(nil) != nil {
		t.Error("a plain error is not a target's, and nil stays nil")
	}
}

func TestTargetSpec(t *testing.T) {
	for _, ok := range []TargetSpec{{Kind: Vkernel}, {Kind: Reference, Reference: Docker}, {Kind: Reference, Reference: Local}} {
		if err := ok.Check(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, bad := range []TargetSpec{{}, {Kind: "cloud"}, {Kind: Reference}, {Kind: Reference, Reference: "vm"}} {
		if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	spec := TargetSpec{Scratch: t.TempDir()}
	d, err := spec.Dir("a")
	if err != nil || d != filepath.Join(spec.Scratch, "a") {
		t.Fatalf("Dir = %q, %v", d, err)
	}
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		t.Errorf("not made: %v", err)
	}
	os.WriteFile(filepath.Join(spec.Scratch, "file"), nil, 0o644)
	if _, err := spec.Dir("file"); err == nil || !strings.Contains(err.Error(), "file") {
		t.Errorf("a file in the way: %v", err)
	}
}

func TestUnknownUnits(t *testing.T) {
	known := func(n string) bool { return n == "a" || n == "b" }
	if err := UnknownUnits("s", []string{"a", "b"}, known, "hint"); err != nil {
		t.Errorf("all known: %v", err)
	}
	err := UnknownUnits("s", []string{"x", "a", "y z"}, known, "units are a and b")
	if err == nil || err.Error() != `s: unknown unit(s) "x", "y z" (units are a and b)` {
		t.Errorf("unknown: %v", err)
	}
}
