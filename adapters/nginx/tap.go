package nginx

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/compat-project/compat"
)

var (
	tapPlan = regexp.MustCompile(`^1\.\.(\d+)(?:\s*#\s*(?i:skip)\S*\s*(.*))?$`)
	// Numbered test lines only: prove -v ends a file with a bare "ok".
	tapTest = regexp.MustCompile(`^(not )?ok (\d+)\b\s*(?:-\s*)?(.*)$`)
	// A directive after the description: "# SKIP reason", "# TODO why".
	tapDirective = regexp.MustCompile(`(?:^|\s+)#\s*((?i:skip|todo))\S*\s*(.*)$`)
	// Test::More's diagnostic of a failure starts with the test's name.
	tapFailed = regexp.MustCompile(`^#\s+Failed (?:\(TODO\) )?test '(.*?)'?$`)
	tapBail   = regexp.MustCompile(`^(?:Bail out!|FAILED--Further testing stopped:)\s*(.*)$`)
	// prove's line for a file that skips all ("plan skip_all"): prove -v
	// shows it instead of the "1..0 # SKIP" plan.
	tapSkipAll = regexp.MustCompile(`^\S+ \.+ skipped: (.*)$`)

	// Test::Nginx puts what it got into some test names (the response of
	// a response_body_like check, the log line that matched a forbidden
	// pattern), and names a failing log check unlike a passing one. Ids
	// use the passing wording without what was got, so they stay the same
	// from run to run and from target to target.
	tapLikeGot  = regexp.MustCompile(`^(.* - response is expected) \((.*)\)$`)
	tapLogNoHit = regexp.MustCompile(`^(.* - pattern ".*?") should not match any line in (\w+\.log) but matches line .*?( \(req \d+\))?$`)
	tapLogHit   = regexp.MustCompile(`^(.* - pattern ".*?") should match a line in (\w+\.log)( \(req \d+\))?$`)
)

// stableDesc is a test's description in its passing wording, without what
// the test got.
func stableDesc(d string) string {
	if m := tapLikeGot.FindStringSubmatch(d); m != nil && !strings.HasPrefix(m[2], "repeated req ") {
		return m[1]
	}
	if m := tapLogNoHit.FindStringSubmatch(d); m != nil {
		return m[1] + " does not match a line in " + m[2] + m[3]
	}
	if m := tapLogHit.FindStringSubmatch(d); m != nil {
		return m[1] + " matches a line in " + m[2] + m[3]
	}
	return d
}

// ParseTAP reads the output of "prove -v FILE" (or of the test file
// itself) for one unit and returns one result per test line. Test ids are
// unit, a space and the description without its leading file name
// ("echo/echo.t TEST 7: name - status code ok") and without what the test
// got, in the wording of a pass (see stableDesc); a description seen again
// in the same unit gets " #2", " #3" (Test::Nginx repeats checks per
// request). "# SKIP" is a skip, "not ok ... # TODO" a skip with the TODO
// as message. A failure's Test::More diagnostics ("#   Failed test
// 'NAME'" and the "#" lines after it, matched by name since they come on
// stderr) become its Output, summed up in Message.
//
// When the plan says more tests than ran, or the harness bailed out, a
// result for the unit itself (Test == unit) has status Error and says
// why; a plan of "1..0 # SKIP reason" gives a skipped unit.
func ParseTAP(r io.Reader, suite, unit, file string) ([]compat.Result, error) {
	var (
		results []compat.Result
		seen    = map[string]int{}
		planned = -1
		bail    string
		descs   []string                // per result: its description
		diags   = map[string][]string{} // failure diagnostics by test name
		block   *string
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if m := tapPlan.FindStringSubmatch(line); m != nil {
			planned, _ = strconv.Atoi(m[1])
			if planned == 0 {
				reason := strings.TrimSpace(m[2])
				if reason == "" {
					reason = "no tests planned"
				}
				results = append(results, compat.Result{Suite: suite, Unit: unit, Test: unit, Status: compat.Skip, Message: reason})
			}
			continue
		}
		if m := tapSkipAll.FindStringSubmatch(line); m != nil && planned < 0 {
			planned = 0
			results = append(results, compat.Result{Suite: suite, Unit: unit, Test: unit, Status: compat.Skip, Message: strings.TrimSpace(m[1])})
			continue
		}
		if m := tapBail.FindStringSubmatch(line); m != nil {
			bail = strings.TrimSpace(m[1])
			continue
		}
		if m := tapTest.FindStringSubmatch(line); m != nil {
			desc := m[3]
			status := compat.Pass
			if m[1] != "" {
				status = compat.Fail
			}
			msg, directive := "", ""
			if d := tapDirective.FindStringSubmatch(desc); d != nil {
				desc = desc[:len(desc)-len(d[0])]
				directive = d[2]
				kind := strings.ToLower(d[1])
				if kind == "skip" || m[1] != "" {
					// A skipped test, or a failing TODO: neither counts.
					status = compat.Skip
					msg = strings.TrimSpace(kind + ": " + d[2])
					// Test::Nginx: "t/x.t TEST 3: name - tests skipped
					// due to REASON".
					if _, reason, ok := strings.Cut(d[2], "tests skipped due to "); ok && kind == "skip" {
						msg = "skip: " + strings.TrimSpace(reason)
					}
				}
			}
			desc = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(desc), file))
			if desc == "" && directive != "" {
				// "ok 7 # skip t/x.t TEST 3: name - reason": Test::Nginx
				// names the skipped test in the reason.
				desc = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(directive), file))
			}
			if desc == "" {
				desc = "test " + m[2]
			}
			id := unit + " " + stableDesc(desc)
			seen[id]++
			if n := seen[id]; n > 1 {
				id += " #" + strconv.Itoa(n)
			}
			results = append(results, compat.Result{Suite: suite, Unit: unit, Test: id, Status: status, Message: msg})
			for len(descs) < len(results)-1 {
				descs = append(descs, "")
			}
			descs = append(descs, desc)
			continue
		}
		// Diagnostics go to stderr, so with stdout and stderr merged they
		// need not follow their test line: they are matched by name.
		if m := tapFailed.FindStringSubmatch(line); m != nil {
			name := strings.TrimSpace(strings.TrimPrefix(m[1], file))
			diags[name] = append(diags[name], line+"\n")
			block = &diags[name][len(diags[name])-1]
			continue
		}
		if block != nil && strings.HasPrefix(line, "#") {
			*block += line + "\n"
			continue
		}
		block = nil
	}
	if err := sc.Err(); err != nil {
		return results, fmt.Errorf("reading the TAP of %s: %w", unit, err)
	}
	for i := range results {
		if results[i].Status != compat.Fail {
			continue
		}
		if i < len(descs) {
			if q := diags[descs[i]]; len(q) > 0 {
				results[i].Output = q[0]
				diags[descs[i]] = q[1:]
			}
		}
		results[i].Message = failMessage(results[i].Output)
	}
	ran := 0
	for _, r := range results {
		if r.Test != unit {
			ran++
		}
	}
	switch {
	case bail != "":
		results = append(results, compat.Result{Suite: suite, Unit: unit, Test: unit, Status: compat.Error, Message: "bailed out: " + bail})
	case planned < 0 && ran == 0:
		results = append(results, compat.Result{Suite: suite, Unit: unit, Test: unit, Status: compat.Error, Message: "no TAP output"})
	case planned > ran:
		results = append(results, compat.Result{Suite: suite, Unit: unit, Test: unit, Status: compat.Error, Message: fmt.Sprintf("planned %d tests, ran %d", planned, ran)})
	}
	return results, nil
}

// failMessage sums up Test::More's diagnostics of a failure in a line:
// "got: '500'; expected: '200'" when it compared values, else its first
// line that is not the "Failed test"/"at FILE line N" boilerplate.
func failMessage(diag string) string {
	var got, expected, first string
	for _, l := range strings.Split(diag, "\n") {
		t := strings.TrimSpace(strings.TrimPrefix(l, "#"))
		switch {
		case t == "":
		case strings.HasPrefix(t, "got:") && got == "":
			got = t
		case strings.HasPrefix(t, "expected:") && expected == "":
			expected = t
		case strings.HasPrefix(t, "Failed test"), strings.HasPrefix(t, "at ") && strings.Contains(t, " line "):
		case first == "":
			first = t
		}
	}
	switch {
	case got != "" && expected != "":
		return got + "; " + expected
	case first != "":
		return first
	}
	return "failed"
}
