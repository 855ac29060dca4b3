package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/help.txt from the current compat help")

// TestHelpGolden pins compat help, and checks that the README's CLI section
// shows the same verbs and flags: the Usage part of compat help, verbatim.
func TestHelpGolden(t *testing.T) {
	code, out, _ := compat(t, "help")
	if code != exitOK {
		t.Fatalf("compat help: exit %d", code)
	}
	path := filepath.Join("testdata", "help.txt")
	if *update {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with: go test ./cmd/compat -run TestHelpGolden -update)", err)
	}
	if out != string(want) {
		t.Errorf("compat help differs from %s (review, then: go test ./cmd/compat -run TestHelpGolden -update):\n%s", path, out)
	}

	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section, ok := fencedAfter(string(readme), "### CLI")
	if !ok {
		t.Fatal("README.md has no fenced block under ### CLI")
	}
	usage, ok := between(out, "Usage:\n", "\nExit codes:")
	if !ok {
		t.Fatalf("compat help has no Usage part:\n%s", out)
	}
	if strings.TrimSpace(dedent(usage)) != strings.TrimSpace(section) {
		t.Errorf("README.md's CLI section differs from compat help's Usage; paste this into README.md:\n```\n%s\n```", strings.TrimSpace(dedent(usage)))
	}
}

// fencedAfter returns the first ``` block after heading in markdown.
func fencedAfter(markdown, heading string) (string, bool) {
	_, rest, ok := strings.Cut(markdown, "\n"+heading+"\n")
	if !ok {
		return "", false
	}
	_, rest, ok = strings.Cut(rest, "```\n")
	if !ok {
		return "", false
	}
	block, _, ok := strings.Cut(rest, "```")
	return block, ok
}

func between(s, start, end string) (string, bool) {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return "", false
	}
	mid, _, ok := strings.Cut(rest, end)
	return mid, ok
}

// dedent removes the two spaces compat help indents its Usage lines by.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "  ")
	}
	return strings.Join(lines, "\n")
}
