package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat"
)

// schemaPath finds the Surefire JUnit schema in ../shared/schemas beside
// the module root.
func schemaPath(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			testenv.Missing(t, "module root (go.mod) not found above the test directory, so neither is ../shared/schemas/junit-10.xsd")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "schemas", "junit-10.xsd")
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "JUnit schema not found at %s: %v", p, err)
	}
	return p
}

// xmllint validates the file at path against the schema.
func xmllint(t *testing.T, path string) {
	t.Helper()
	if err := xmllintErr(t, path); err != nil {
		data, _ := os.ReadFile(path)
		t.Fatalf("xmllint rejected %s: %v\nfile:\n%s", path, err, data)
	}
}

// xmllintErr validates the file at path against the schema and returns
// xmllint's complaint, if any.
func xmllintErr(t *testing.T, path string) error {
	t.Helper()
	schema := schemaPath(t)
	testenv.Command(t, "xmllint", "libxml2-utils")
	out, err := exec.Command("xmllint", "--noout", "--schema", schema, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

func sampleRuns() []compat.Run {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	vk := compat.Run{
		Suite: "python", Target: "vkernel", Start: start, Duration: 90 * time.Second,
		Properties: map[string]string{
			compat.PropMegabinaryDigest: "sha256:abc",
			compat.PropModuleDigest:     "sha256:def",
			"version.python":            "3.11.2\x00",
		},
		Results: []compat.Result{
			{Suite: "python", Unit: "test_os", Test: "test_os.FileTests.test_blocking", Status: compat.Fail, Duration: 1500 * time.Millisecond,
				Message: "OSError: [Errno 58]\x01 Not supported", Output: "Traceback:\n\x01\x02\x03\x07\x08\x0b\x0c\x1b[31mred\x1b[0m ]]> \xff\xfe end\ufffe"},
			{Suite: "python", Unit: "test_os", Test: "test_os.FileTests.test_read", Status: compat.Pass, Duration: 250 * time.Millisecond},
			{Suite: "python", Unit: "test_time", Test: "test_time.T.test_monotonic", Status: compat.Pass, Duration: time.Second,
				Previous: []compat.Result{{Status: compat.Fail, Message: "too slow\x1f", Output: "out\x00put"}, {Status: compat.Error, Message: "boom"}}},
			{Suite: "python", Unit: "test_x", Test: "test_x.A.test_rerun_fail", Status: compat.Fail, Message: "again",
				Previous: []compat.Result{{Status: compat.Fail, Message: "first"}, {Status: compat.Error, Message: "second"}}},
			{Suite: "python", Unit: "test_winreg", Test: "test_winreg", Status: compat.Skip, Message: "No module named 'winreg'"},
			{Suite: "python", Unit: "test_crash", Test: "test_crash", Status: compat.Error, Message: "exit status 139 without JUnit XML", Output: "Fatal Python error: Segmentation fault\x00"},
		},
	}
	ref := compat.Run{
		Suite: "python", Target: "reference", Start: start,
		Properties: map[string]string{compat.PropImageID: "sha256:123"},
		Results: []compat.Result{
			{Suite: "python", Unit: "test_os", Test: "test_os.FileTests.test_blocking", Status: compat.Pass, Duration: 2 * time.Second},
			{Suite: "python", Unit: "test_os", Test: "test_os.FileTests.test_read", Status: compat.Pass, Duration: 500 * time.Millisecond},
		},
	}
	return []compat.Run{vk, ref}
}

// parsed mirrors the parts of the written file the tests check.
type parsed struct {
	Name   string `xml:"name,attr"`
	Time   string `xml:"time,attr"`
	Tests  int    `xml:"tests,attr"`
	Fails  int    `xml:"failures,attr"`
	Errors int    `xml:"errors,attr"`
	Suites []struct {
		Name    string `xml:"name,attr"`
		Time    string `xml:"time,attr"`
		Tests   int    `xml:"tests,attr"`
		Fails   int    `xml:"failures,attr"`
		Errors  int    `xml:"errors,attr"`
		Skipped int    `xml:"skipped,attr"`
		Props   []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Time      string `xml:"time,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Data    string `xml:",chardata"`
			} `xml:"failure"`
			Error   *struct{} `xml:"error"`
			Skipped *struct{} `xml:"skipped"`
			Flaky   []struct {
				Message    string `xml:"message,attr"`
				StackTrace string `xml:"stackTrace"`
			} `xml:"flakyFailure"`
			FlakyErrors   []struct{} `xml:"flakyError"`
			RerunFailures []struct{} `xml:"rerunFailure"`
			RerunErrors   []struct{} `xml:"rerunError"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestJUnitValidatesAgainstSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junit.xml")
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, sampleRuns()...); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	xmllint(t, path)
}

func TestJUnitEmptyValidates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.xml")
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, compat.Run{Suite: "python", Target: "vkernel"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, buf.Bytes(), 0o644)
	xmllint(t, path)
}

func TestJUnitContent(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, sampleRuns()...); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), xml.Header) {
		t.Errorf("output does not start with the XML header: %.60q", buf.String())
	}
	var doc parsed
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("Go's XML parser rejects the output: %v", err)
	}
	// Suite times: the run's duration, or the sum of its tests'; the
	// document's: the sum of the suites'.
	if len(doc.Suites) != 2 || doc.Suites[0].Time != "90.000" || doc.Suites[1].Time != "2.500" || doc.Time != "92.500" {
		t.Fatalf("times: document %s, suites %+v", doc.Time, doc.Suites)
	}
	vk := doc.Suites[0]
	if vk.Name != "python/vkernel" || vk.Tests != 6 || vk.Fails != 2 || vk.Errors != 1 || vk.Skipped != 1 {
		t.Errorf("vkernel suite: name %q tests %d failures %d errors %d skipped %d; want python/vkernel 6 2 1 1",
			vk.Name, vk.Tests, vk.Fails, vk.Errors, vk.Skipped)
	}
	if doc.Tests != 8 || doc.Fails != 2 || doc.Errors != 1 {
		t.Errorf("document counts: tests %d failures %d errors %d, want 8 2 1", doc.Tests, doc.Fails, doc.Errors)
	}
	props := map[string]string{}
	for _, p := range vk.Props {
		props[p.Name] = p.Value
	}
	want := map[string]string{"suite": "python", "target": "vkernel", "megabinary.digest": "sha256:abc", "module.digest": "sha256:def", "version.python": `3.11.2\x00`}
	for k, v := range want {
		if props[k] != v {
			t.Errorf("property %s = %q, want %q", k, props[k], v)
		}
	}
	if got := doc.Suites[1].Props; len(got) != 3 || got[2].Name != "image.id" {
		t.Errorf("reference properties = %+v, want suite, target, image.id", got)
	}
	byName := map[string]int{}
	for i, c := range vk.Cases {
		byName[c.Classname+" "+c.Name] = i
	}
	blocking := vk.Cases[byName["python.vkernel.test_os FileTests.test_blocking"]]
	if blocking.Failure == nil || blocking.Time != "1.500" {
		t.Fatalf("test_blocking: %+v", blocking)
	}
	if blocking.Failure.Message != `OSError: [Errno 58]\x01 Not supported` ||
		!strings.Contains(blocking.Failure.Data, `\x01\x02\x03\x07\x08\x0b\x0c\x1b[31mred\x1b[0m ]]> \xff\xfe end\uFFFE`) {
		t.Errorf("sanitised failure: message %q, data %q", blocking.Failure.Message, blocking.Failure.Data)
	}
	mono := vk.Cases[byName["python.vkernel.test_time T.test_monotonic"]]
	if mono.Failure != nil || mono.Error != nil || len(mono.Flaky) != 1 || len(mono.FlakyErrors) != 1 ||
		mono.Flaky[0].Message != `too slow\x1f` || mono.Flaky[0].StackTrace != `out\x00put` {
		t.Errorf("flaky test: %+v, want a passing testcase with one flakyFailure and one flakyError", mono)
	}
	rr := vk.Cases[byName["python.vkernel.test_x A.test_rerun_fail"]]
	if rr.Failure == nil || len(rr.RerunFailures) != 1 || len(rr.RerunErrors) != 1 {
		t.Errorf("failed reruns: %+v, want a failure with rerunFailure and rerunError", rr)
	}
	if _, ok := byName["python.vkernel.test_winreg test_winreg"]; !ok {
		t.Errorf("unit-level result not named by its unit: %v", byName)
	}
}

func TestClean(t *testing.T) {
	tests := map[string]string{
		"plain\ttext\r\n":    "plain\ttext\r\n",
		"\x00\x01\x1f":       `\x00\x01\x1f`,
		"ok é 世界 \U0001F600": "ok é 世界 \U0001F600",
		"bad \xff\xfe utf8":  `bad \xff\xfe utf8`,
		"\ufffe\uffff":       `\uFFFE\uFFFF`,
		"\x7f":               "\x7f", // DEL is a legal XML 1.0 character
	}
	for in, want := range tests {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSummary(t *testing.T) {
	runs := sampleRuns()
	diff := sampleDiff()
	var buf bytes.Buffer
	if err := WriteSummary(&buf, Section{Run: runs[0], Reference: &runs[1], Diff: diff}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"**2 regression(s)** in 1 suite(s).",
		"## python on vkernel",
		"| vkernel | 2 | 2 | 1 | 1 | 1 | 6 | 1m30s |",
		"| reference | 2 | 0 | 0 | 0 | 0 | 2 |  |",
		"| baseline | 3 | 1 | | 1 | 0 | 5 | |",
		"regressions: 2, unexpected passes: 1, flaky: 1, new tests: 1, removed tests: 1, not run: 0, known failures: 1; as expected: 1.",
		"| `test_os.FileTests.test_blocking` | pass | fail | OSError: [Errno 58] \\| pipe |",
		"| `test_crash.T.test_gone` | pass | missing |",
		"| `test_x.A.test_fixed` | fail | pass | baseline: known bug |",
		"| `test_time.T.test_monotonic` | pass | pass on rerun |",
		"| `test_crash` | (none) | error | exit status 139 |",
		"<details><summary>Known failures (1)</summary>",
		"megabinary.digest `sha256:abc`",
		"image.id `sha256:123`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	order := []string{"### Regressions (2)", "### Unexpected passes (1)", "### Flaky (1)", "### New tests (1)", "### Removed tests (1)", "Known failures (1)"}
	last := -1
	for _, h := range order {
		i := strings.Index(out, h)
		if i <= last {
			t.Errorf("%q is missing or out of order in:\n%s", h, out)
		}
		last = i
	}
	buf.Reset()
	WriteSummary(&buf, Section{Run: runs[1], Diff: compat.Diff{Matched: 2}})
	if !strings.Contains(buf.String(), "No regressions in 1 suite(s).") || strings.Contains(buf.String(), "###") {
		t.Errorf("clean summary:\n%s", buf.String())
	}
}

// TestJUnitPartial: a partial run carries a "partial" property, and each
// incomplete unit with no result of its own is a skipped testcase saying it
// was not run; the document still validates.
func TestJUnitPartial(t *testing.T) {
	run := compat.Run{Suite: "redis", Target: "vkernel", Results: []compat.Result{
		{Unit: "unit/a", Test: "unit/a: first", Status: compat.Pass},
		{Unit: "unit/b", Test: "unit/b", Status: compat.Error, Message: "timed out after 1s"},
	}, Incomplete: []compat.Incomplete{
		{Unit: "unit/a", Reason: "the run was stopped before the unit finished (interrupt)"},
		{Unit: "unit/b", Reason: "timed out after 1s"},
		{Unit: "unit/c", Reason: "not started: the run was stopped (interrupt)"},
	}}
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, run); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "partial.xml")
	os.WriteFile(path, buf.Bytes(), 0o644)
	xmllint(t, path)
	var doc parsed
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Suites[0]
	var partial string
	for _, p := range s.Props {
		if p.Name == "partial" {
			partial = p.Value
		}
	}
	want := "3 unit(s) did not run to their end: 1 the run was stopped before the unit finished, 1 timed out after 1s, 1 not started: the run was stopped"
	if partial != want {
		t.Errorf("partial property %q, want %q", partial, want)
	}
	if s.Tests != 4 || s.Skipped != 2 || s.Errors != 1 {
		t.Errorf("tests %d skipped %d errors %d, want 4, 2 (units a and c not run), 1 (b's timeout)", s.Tests, s.Skipped, s.Errors)
	}
}
