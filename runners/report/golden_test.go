package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compat-project/compat"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from the current output")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with: go test ./runners/report -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (review, then: go test ./runners/report -run %s -update)\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

// sampleDiff is the vkernel run's diff against a baseline with one change of
// every class.
func sampleDiff() compat.Diff {
	return compat.Diff{
		Suite: "python", Target: "vkernel", Matched: 1,
		Expected: compat.Counts{Pass: 3, Fail: 1, Skip: 1},
		Changes: []compat.Change{
			{Class: compat.Regression, Test: "test_os.FileTests.test_blocking", Want: compat.ExpectPass, Got: compat.Fail, Message: "OSError: [Errno 58] | pipe\nsecond line"},
			{Class: compat.Regression, Test: "test_crash.T.test_gone", Want: compat.ExpectPass},
			{Class: compat.UnexpectedPass, Test: "test_x.A.test_fixed", Want: compat.ExpectFail, Got: compat.Pass, Reason: "known bug"},
			{Class: compat.Flaky, Test: "test_time.T.test_monotonic", Want: compat.ExpectPass, Got: compat.Pass},
			{Class: compat.NewTest, Test: "test_crash", Got: compat.Error, Message: "exit status 139"},
			{Class: compat.RemovedTest, Test: "test_os.Old.test_old", Want: compat.ExpectPass},
			{Class: compat.KnownFailure, Test: "test_x.A.test_rerun_fail", Want: compat.ExpectFail, Got: compat.Fail, Reason: "WASI: no threads"},
		},
	}
}

// TestJUnitGolden pins the whole JUnit document: element order, counts,
// classnames, rerun elements, cleaned control characters.
func TestJUnitGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, sampleRuns()...); err != nil {
		t.Fatal(err)
	}
	golden(t, "junit.xml", buf.Bytes())
}

// TestSummaryGolden pins the sign-off summary of a run with every kind of
// change, then of a clean one.
func TestSummaryGolden(t *testing.T) {
	runs := sampleRuns()
	var buf bytes.Buffer
	if err := WriteSummary(&buf, Section{Run: runs[0], Reference: &runs[1], Diff: sampleDiff()}); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.md", buf.Bytes())
	buf.Reset()
	if err := WriteSummary(&buf, Section{Run: runs[1], Diff: compat.Diff{Suite: "python", Target: "reference", Matched: 2}}); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary-clean.md", buf.Bytes())
}

// TestNoSkippedOnTestsuites: Jenkins xUnit's junit-10.xsd has no skipped
// attribute on <testsuites> (only on each <testsuite>), so WriteJUnit does
// not sum it there. This proves the schema still says so: the same document
// with the sum added must be rejected.
func TestNoSkippedOnTestsuites(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, sampleRuns()...); err != nil {
		t.Fatal(err)
	}
	doc := buf.String()
	if !strings.Contains(doc, `skipped="1"`) {
		t.Fatalf("the sample's testsuite carries no skipped count:\n%s", doc)
	}
	withSum := strings.Replace(doc, `<testsuites name="compat"`, `<testsuites name="compat" skipped="1"`, 1)
	if withSum == doc {
		t.Fatalf("no <testsuites name=\"compat\" in:\n%s", doc)
	}
	path := filepath.Join(t.TempDir(), "summed.xml")
	if err := os.WriteFile(path, []byte(withSum), 0o644); err != nil {
		t.Fatal(err)
	}
	if xmllintErr(t, path) == nil {
		t.Fatal("junit-10.xsd accepts skipped on <testsuites> now: sum it in build()")
	}
}
