package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissingUnderCI runs this test binary again with CI set and unset and
// checks that a missing prerequisite fails under CI and skips otherwise.
func TestMissingUnderCI(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Command(t, "compat-no-such-tool", "compat-no-such-package")
		return
	}
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"true", true, "--- FAIL"},
		{"", false, "--- SKIP"},
		{"false", false, "--- SKIP"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingUnderCI$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.wantFail {
			t.Errorf("CI=%q: exit error %v, want failure %v\n%s", tc.ci, err, tc.wantFail, out)
		}
		if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "compat-no-such-tool not found on PATH (apt-get install compat-no-such-package") {
			t.Errorf("CI=%q: output lacks %q and the tool's name:\n%s", tc.ci, tc.want, out)
		}
	}
}
