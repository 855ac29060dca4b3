package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	root "github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/python"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/testenv"
)

// TestInterruptedRunIsPartial is issue 15's report through the CLI: a quick
// run interrupted (SIGINT) after its first module reported the modules it
// never reached as regressions ("missing"). Against a baseline of a whole
// run, the interrupted run exits 2 and says it is partial, with no
// regressions and the unreached tests not run, in summary.md, the JUnit
// file and report.html. The Python suite's reference on this host keeps it
// to seconds.
func TestInterruptedRunIsPartial(t *testing.T) {
	testenv.Command(t, "python3.11", "python3.11")
	if _, err := python.New(runners.SuiteConfig{Cache: root.CacheRoot(), Profile: "quick"}); err != nil {
		testenv.Missing(t, "the python suite: %v (make images builds it)", err)
	}
	compatBin := testenv.CompatExec(t)[0]
	dir := t.TempDir()
	base := filepath.Join(dir, "baselines")
	args := func(out string) []string {
		return []string{"run", "-suite", "python", "-target", "reference", "-reference", "local", "-profile", "quick",
			"-parallel", "1", "-baselines", base, "-timings", filepath.Join(dir, "timings.json"), "-out", out}
	}
	whole := filepath.Join(dir, "whole")
	if out, err := exec.Command(compatBin, args(whole)...).CombinedOutput(); err != nil {
		t.Fatalf("whole run: %v\n%s", err, out)
	}
	if out, err := exec.Command(compatBin, "baseline", "update", "-out", whole, "-baselines", base).CombinedOutput(); err != nil {
		t.Fatalf("baseline update: %v\n%s", err, out)
	}

	out := filepath.Join(dir, "stopped")
	cmd := exec.Command(compatBin, args(out)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	sc := bufio.NewScanner(stdout)
	signalled := false
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if !signalled && regexp.MustCompile(` 1/12: `).MatchString(sc.Text()) {
			cmd.Process.Signal(syscall.SIGINT)
			signalled = true
		}
	}
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitUsage || !signalled {
		t.Fatalf("interrupted run: exit %d (%v), signalled %v, want 2\n%s", code, err, signalled, log.String())
	}
	summary, err := os.ReadFile(filepath.Join(out, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`\*\*Partial run\*\*: \d+ unit\(s\) in 1 run\(s\) did not run to their end.* Among the tests that ran: no regressions`,
		`not run: [1-9]\d*, known failures`,
		"\\| `test_\\w+` \\| not started: the run was stopped \\(interrupt",
	} {
		if !regexp.MustCompile(re).Match(summary) {
			t.Errorf("summary.md does not match %s:\n%s", re, summary)
		}
	}
	junit, _ := os.ReadFile(filepath.Join(out, "python-reference.xml"))
	if !strings.Contains(string(junit), `<property name="partial" value="`) {
		t.Error("the JUnit file has no partial property")
	}
	page, _ := os.ReadFile(filepath.Join(out, "report.html"))
	if !strings.Contains(string(page), `class="partial">Partial run`) {
		t.Error("report.html does not say the run is partial")
	}
}
