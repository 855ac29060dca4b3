// Package testenv tells a test whether the machine has what the test needs
// (a tool, a build, an image, a service) and what to do when it does not.
//
// Outside CI a missing prerequisite skips the test with a message naming
// it and how to get it. Under CI=true (as .ci/run sets) it fails the test
// instead: CI has installed and built everything (make test does), so a
// missing toolchain, build or image there is a defect, never a skip.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// CI reports whether the tests run under CI, that is whether the CI
// environment variable is set to a true value ("true", "1").
func CI() bool {
	ok, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ok
}

// Missing stops t because a prerequisite is missing: a skip outside CI, a
// failure under CI. The message names the missing thing and how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("missing under CI=true (make test installs and builds it): %s", msg)
	}
	t.Skipf("missing: %s", msg)
}

// Check stops t through Missing when err is not nil, prefixing what.
func Check(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		Missing(t, "%s: %v", what, err)
	}
}

// Command returns the path of the named program, or stops t through
// Missing, naming the Debian package that provides it.
func Command(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not found on PATH (apt-get install %s, or make deps)", name, debianPackage)
	}
	return p
}

var compatBuild struct {
	once sync.Once
	path string
	err  error
}

// CompatExec returns the command that runs `compat exec` (the vkernel
// target's processes, vktarget.Options.Exec): the compat command built from
// this module's cmd/compat once per test binary. A build failure fails t.
func CompatExec(t testing.TB) []string {
	t.Helper()
	compatBuild.once.Do(func() {
		// Beside the test binary: go test removes its directory after
		// the run.
		self, err := os.Executable()
		if err != nil {
			compatBuild.err = err
			return
		}
		out := filepath.Join(filepath.Dir(self), "compat")
		cmd := exec.Command("go", "build", "-o", out, "github.com/compat-project/compat/cmd/compat")
		if b, err := cmd.CombinedOutput(); err != nil {
			compatBuild.err = fmt.Errorf("go build cmd/compat: %v\n%s", err, b)
			return
		}
		compatBuild.path = out
	})
	if compatBuild.err != nil {
		t.Fatalf("building compat for its exec verb: %v", compatBuild.err)
	}
	return []string{compatBuild.path, "exec"}
}
