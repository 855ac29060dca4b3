package python

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/compat-project/compat"
)

// ParseJUnit reads the JUnit XML that regrtest writes for --junit-xml and
// returns one result per testcase, for the module unit. Test ids drop the
// "test." package prefix: "test.test_os.FileTests.test_blocking" becomes
// "test_os.FileTests.test_blocking".
//
// regrtest's XML differs from Surefire's: the test id is the name, with no
// classname; testcases carry status and result attributes; an expected
// failure is an <output> child (a pass) and an unexpected success an
// <outcome> child (a failure, as unittest counts it). It also writes an
// empty <testcase/> for failures it could not attribute (subtests,
// setUpClass); those are dropped here and recovered from the verbose output
// by the adapter.
func ParseJUnit(r io.Reader, unit string) ([]compat.Result, error) {
	var doc struct {
		XMLName xml.Name
		Suites  []junitSuite `xml:"testsuite"`
		Cases   []junitCase  `xml:"testcase"`
	}
	if err := xml.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("parsing regrtest JUnit XML of %s: %w", unit, err)
	}
	if n := doc.XMLName.Local; n != "testsuites" && n != "testsuite" {
		return nil, fmt.Errorf("parsing regrtest JUnit XML of %s: root element is <%s>, want <testsuites>", unit, n)
	}
	cases := doc.Cases
	for _, s := range doc.Suites {
		cases = append(cases, s.Cases...)
	}
	var out []compat.Result
	for _, c := range cases {
		if c.Name == "" {
			continue
		}
		r := compat.Result{Suite: Name, Unit: unit, Test: testID(c.Name), Status: compat.Pass}
		if secs, err := strconv.ParseFloat(c.Time, 64); err == nil {
			r.Duration = time.Duration(secs * float64(time.Second))
		}
		detail := func(d *junitDetail) {
			r.Message = firstLine(d.Message)
			if r.Message == "" {
				r.Message = firstLine(d.Type)
			}
			r.Output = d.Text
		}
		switch {
		case c.Error != nil:
			r.Status = compat.Error
			detail(c.Error)
		case c.Failure != nil:
			r.Status = compat.Fail
			detail(c.Failure)
		case strings.Contains(c.Outcome, "UNEXPECTED_SUCCESS"):
			r.Status = compat.Fail
			r.Message = "unexpected success"
		case c.Skipped != nil:
			r.Status = compat.Skip
			r.Message = firstLine(c.Skipped.Text)
			if r.Message == "" {
				r.Message = firstLine(c.Skipped.Message)
			}
		}
		if r.Status != compat.Pass {
			if out := strings.TrimSpace(c.SystemOut + c.SystemErr); out != "" {
				r.Output = strings.TrimRight(r.Output, "\n") + "\n\nOutput:\n" + out
			}
		}
		out = append(out, r)
	}
	return out, nil
}

type junitSuite struct {
	Cases  []junitCase  `xml:"testcase"`
	Suites []junitSuite `xml:"testsuite"`
}

type junitCase struct {
	Name      string       `xml:"name,attr"`
	Time      string       `xml:"time,attr"`
	Error     *junitDetail `xml:"error"`
	Failure   *junitDetail `xml:"failure"`
	Skipped   *junitDetail `xml:"skipped"`
	Outcome   string       `xml:"outcome"`
	SystemOut string       `xml:"system-out"`
	SystemErr string       `xml:"system-err"`
}

type junitDetail struct {
	Type    string `xml:"type,attr"`
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// testID turns a unittest id into a compat test id.
func testID(id string) string { return strings.TrimPrefix(id, "test.") }

// The shapes of unittest's verbose (-v) lines, Python 3.11:
//
//	test_and (test.test_bool.BoolTest.test_and) ... ok
//	test_x (test.test_m.C.test_x) ... skipped 'reason'
//	  test_sub (test.test_m.C.test_sub) (i=1) ... FAIL
//	setUpClass (test.test_m.Broken) ... ERROR
//	test_doc (test.test_m.C.test_doc)
//	First line of the docstring ... ok
var (
	verboseStart = regexp.MustCompile(`^\s*(\w+) \(([\w.]+)\)( \(.*?\))?(?: \.\.\. (.*))?$`)
	verboseTail  = regexp.MustCompile(`\.\.\. (.*)$`)
	blockHeader  = regexp.MustCompile(`^(FAIL|ERROR|UNEXPECTED SUCCESS): (\w+) \(([\w.]+)\)( \(.*\))?$`)
	moduleSkip   = regexp.MustCompile(`^(test_\w+) skipped -- (.*)$`)
	// The last line of a traceback: "RuntimeError: can't start new thread".
	exceptionLine = regexp.MustCompile(`^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b(: .*)?$`)
	// test.support.run_doctest's verdict line: "doctest (test.test_m)
	// ... 117 tests with zero failures". (A doctest failure raises instead.)
	doctestPassed = regexp.MustCompile(`^\d+ tests with zero failures$`)
)

// verbose is what the adapter learns from a module's -v output.
type verbose struct {
	results []compat.Result // in order of appearance, one per test id
	skipped string          // the reason regrtest gave for skipping the whole module
	// aborted is set when regrtest says the module "failed (uncaught
	// exception)": an exception outside any test ended it; the value is
	// the exception's last line ("RuntimeError: can't start new thread"),
	// or "uncaught exception" when the output has none.
	aborted string
}

// parseVerbose recovers per-test results from regrtest's verbose output, for
// modules whose process died before writing its JUnit XML and for failures
// the XML leaves out (subtests, setUpClass). Traceback blocks at the end of
// the output supply messages.
func parseVerbose(output, unit string) verbose {
	var v verbose
	index := map[string]int{}
	set := func(id string, st compat.Status, msg string) {
		id = testID(id)
		if i, ok := index[id]; ok {
			if worse(st, v.results[i].Status) {
				v.results[i].Status, v.results[i].Message = st, msg
			}
			return
		}
		index[id] = len(v.results)
		v.results = append(v.results, compat.Result{Suite: Name, Unit: unit, Test: id, Status: st, Message: msg})
	}
	pending := ""
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := blockHeader.FindStringSubmatch(line); m != nil {
			id := fullID(m[2], m[3])
			var block []string
			j := i + 1
			if j < len(lines) && strings.HasPrefix(lines[j], "-----") {
				j++
			}
			for ; j < len(lines); j++ {
				l := lines[j]
				if strings.HasPrefix(l, "=====") || strings.HasPrefix(l, "-----") {
					break
				}
				block = append(block, l)
			}
			i = j - 1
			st := compat.Fail
			if m[1] == "ERROR" {
				st = compat.Error
			}
			msg := lastLine(block)
			if m[1] == "UNEXPECTED SUCCESS" {
				msg = "unexpected success"
			}
			if k, ok := index[testID(id)]; ok {
				r := &v.results[k]
				if r.Message == "" || r.Message == string(r.Status) {
					r.Message = msg
				}
				r.Output = strings.TrimSpace(strings.Join(append([]string{r.Output}, block...), "\n"))
			} else {
				set(id, st, msg)
				v.results[len(v.results)-1].Output = strings.TrimSpace(strings.Join(block, "\n"))
			}
			continue
		}
		if line == unit+" failed (uncaught exception)" {
			v.aborted = "uncaught exception"
			for k := i - 1; k >= 0; k-- {
				if exceptionLine.MatchString(lines[k]) {
					v.aborted = lines[k]
					break
				}
			}
			continue
		}
		if m := moduleSkip.FindStringSubmatch(line); m != nil && m[1] == unit {
			v.skipped = m[2]
			continue
		}
		if m := verboseStart.FindStringSubmatch(line); m != nil {
			id := fullID(m[1], m[2])
			if m[4] == "" && !strings.HasSuffix(line, "... ") && !strings.HasSuffix(line, "...") {
				pending = id // docstring on the next line
				continue
			}
			if st, msg, ok := outcome(m[4]); ok {
				set(id, st, msg)
				pending = ""
			} else {
				pending = id
			}
			continue
		}
		if pending == "" {
			continue
		}
		text := strings.TrimSpace(line)
		if m := verboseTail.FindStringSubmatch(line); m != nil {
			text = m[1]
		}
		if st, msg, ok := outcome(text); ok {
			set(pending, st, msg)
			pending = ""
		}
	}
	if pending != "" {
		// The output ends inside a test: that test was running when the
		// process died or was stopped.
		set(pending, compat.Error, "did not finish: the process died or was stopped while it ran")
	}
	return v
}

// fullID builds the unittest id from a verbose line's name and the id in
// parentheses: the id for test methods, the class for setUpClass and
// friends.
func fullID(name, id string) string {
	if strings.HasSuffix(id, "."+name) {
		return id
	}
	return id + "." + name
}

// outcome reads unittest's verbose verdict.
func outcome(s string) (compat.Status, string, bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "ok" || s == "expected failure" || doctestPassed.MatchString(s):
		return compat.Pass, "", true
	case s == "FAIL":
		return compat.Fail, "", true
	case s == "ERROR":
		return compat.Error, "", true
	case s == "unexpected success":
		return compat.Fail, "unexpected success", true
	case strings.HasPrefix(s, "skipped"):
		reason := strings.TrimSpace(strings.TrimPrefix(s, "skipped"))
		if u, err := strconv.Unquote(reason); err == nil {
			reason = u
		} else if len(reason) >= 2 && reason[0] == '\'' && reason[len(reason)-1] == '\'' {
			reason = reason[1 : len(reason)-1]
		}
		return compat.Skip, reason, true
	}
	return "", "", false
}

// worse reports whether status a is worse than b: error > fail > skip,
// pass.
func worse(a, b compat.Status) bool {
	rank := map[compat.Status]int{compat.Pass: 0, compat.Skip: 1, compat.Fail: 2, compat.Error: 3}
	return rank[a] > rank[b]
}

// firstLine returns the first non-blank line of s, trimmed.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// lastLine returns the last non-blank line of a traceback block, trimmed:
// the exception line. The test's captured output, which unittest appends
// after "Stdout:" or "Stderr:", is not part of the traceback.
func lastLine(lines []string) string {
	for i, l := range lines {
		if l == "Stdout:" || l == "Stderr:" {
			lines = lines[:i]
			break
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}
