package redis

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/compat-project/compat"
)

// ansi matches the colour escapes runtest prints.
var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// StripANSI removes terminal colour escapes from s.
func StripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// okLine is "[ok]: NAME (N ms)".
var okLine = regexp.MustCompile(`^\[ok\]: (.*) \((\d+) ms\)$`)

// ignoreReasons start the reasons runtest gives for tests it leaves out by
// tag (tags_acceptable in tests/support/util.tcl).
var ignoreReasons = []string{"Not supported ", "Tag: ", "large memory flag"}

// Parsed is what one runtest run of one unit reported.
type Parsed struct {
	// Results holds the tests in the order they reported, ids made unique
	// within the unit.
	Results []compat.Result
	// Exception is the "[exception]: ..." line's text and the stack trace
	// after it, when the unit aborted; empty otherwise.
	Exception string
	// Done reports whether runtest printed the unit's "[1/1 done]" line,
	// that is, the unit ran to its end.
	Done bool
}

// Parse reads runtest's output for unit (such as "unit/type/list"), with
// or without colours. Test ids are "UNIT: NAME"; a test name that repeats
// within the unit gets " (2)", " (3)"... A tag that leaves out a whole
// group of tests reports no names: such a group is one skip result,
// "UNIT: [ignored group N]". The failure summary runtest repeats at the
// end ("*** [err]: ...") is not counted twice.
func Parse(output, unit string) Parsed {
	var p Parsed
	seen := map[string]int{}
	folded := map[string]int{} // folded test id -> index in p.Results
	groups := 0
	add := func(name string, r compat.Result) {
		if f := foldOf(unit, name); f != nil {
			id := unit + ": " + f.Name
			i, ok := folded[id]
			if !ok {
				folded[id] = len(p.Results)
				r.Suite, r.Unit, r.Test = Name, unit, id
				if r.Status != compat.Pass && r.Status != compat.Skip {
					r.Message = name + ": " + r.Message
				}
				p.Results = append(p.Results, r)
				return
			}
			p.Results[i] = mergeFolded(p.Results[i], name, r)
			return
		}
		id := unit + ": " + name
		seen[id]++
		if n := seen[id]; n > 1 {
			id = fmt.Sprintf("%s (%d)", id, n)
		}
		r.Suite, r.Unit, r.Test = Name, unit, id
		p.Results = append(p.Results, r)
	}
	lines := strings.Split(StripANSI(strings.ReplaceAll(output, "\r\n", "\n")), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case strings.HasPrefix(line, "[ok]: "):
			if m := okLine.FindStringSubmatch(line); m != nil {
				ms, _ := strconv.Atoi(m[2])
				add(m[1], compat.Result{Status: compat.Pass, Duration: time.Duration(ms) * time.Millisecond})
			} else {
				add(strings.TrimPrefix(line, "[ok]: "), compat.Result{Status: compat.Pass})
			}
		case strings.HasPrefix(line, "[err]: "):
			name := strings.TrimPrefix(line, "[err]: ")
			if j := strings.LastIndex(name, " in tests/"); j >= 0 {
				name = name[:j]
			}
			// The detail runs to the next status line; usually one line.
			var detail []string
			for i+1 < len(lines) && !isStatusLine(lines[i+1]) {
				i++
				detail = append(detail, lines[i])
			}
			for len(detail) > 0 && strings.TrimSpace(detail[len(detail)-1]) == "" {
				detail = detail[:len(detail)-1]
			}
			msg := "failed"
			if len(detail) > 0 {
				msg = detail[0]
			}
			add(name, compat.Result{Status: compat.Fail, Message: msg, Output: strings.Join(detail, "\n")})
		case strings.HasPrefix(line, "[skip]: "):
			add(strings.TrimPrefix(line, "[skip]: "), compat.Result{Status: compat.Skip, Message: "skipped by runtest --skiptest or --only"})
		case strings.HasPrefix(line, "[ignore]: "):
			data := strings.TrimPrefix(line, "[ignore]: ")
			name, reason := splitIgnore(data)
			if name == "" {
				groups++
				name = fmt.Sprintf("[ignored group %d]", groups)
			}
			add(name, compat.Result{Status: compat.Skip, Message: reason})
		case strings.HasPrefix(line, "[exception]: "):
			trace := []string{strings.TrimPrefix(line, "[exception]: ")}
			for i+1 < len(lines) && !isStatusLine(lines[i+1]) && !strings.HasPrefix(lines[i+1], "Cleanup: ") {
				i++
				trace = append(trace, lines[i])
			}
			p.Exception = strings.TrimRight(strings.Join(trace, "\n"), "\n ")
		case strings.HasPrefix(line, "[TIMEOUT]: "):
			// runtest's own watchdog: no progress for its --timeout.
			p.Exception = "runtest timed out: " + strings.TrimPrefix(line, "[TIMEOUT]: ")
		case strings.HasPrefix(line, "[") && strings.Contains(line, " done]: "+unit+" ("):
			p.Done = true
		}
	}
	return p
}

// Fold makes one result of the tests of a unit whose names match Pattern.
type Fold struct {
	Pattern *regexp.Regexp
	// Name is the folded result's test name.
	Name string
}

// Folds lists, per unit, tests whose names carry random values or that
// repeat as often as a time budget allows: integration/psync2 runs as many
// cycles as fit in 40 s, each with a topology and a key count drawn at
// random; integration/psync2-reg kills replicas for as many rounds as fit
// in its time. Each Fold makes one
// result of them, which fails when any of them failed (its message names
// the first that did), so that a test id means the same in every run.
var Folds = map[string][]Fold{
	"integration/psync2": {
		{regexp.MustCompile(`^PSYNC2: --- CYCLE \d+ ---$`), "PSYNC2: --- CYCLE N --- (every cycle)"},
		{regexp.MustCompile(`^PSYNC2: \[NEW LAYOUT\] Set #\d+ as master$`), "PSYNC2: [NEW LAYOUT] Set #N as master (every cycle)"},
		{regexp.MustCompile(`^PSYNC2: Set #\d+ to replicate from #\d+$`), "PSYNC2: Set #N to replicate from #M (every cycle)"},
		{regexp.MustCompile(`^PSYNC2: cluster is consistent after failover$`), "PSYNC2: cluster is consistent after failover (every cycle)"},
		{regexp.MustCompile(`^PSYNC2: generate load while killing replication links$`), "PSYNC2: generate load while killing replication links (every cycle)"},
		{regexp.MustCompile(`^PSYNC2: cluster is consistent after load \(x = \d+\)$`), "PSYNC2: cluster is consistent after load (every cycle)"},
		{regexp.MustCompile(`^PSYNC2: total sum of full synchronizations is exactly 4$`), "PSYNC2: total sum of full synchronizations is exactly 4 (every cycle)"},
	},
	"integration/psync2-reg": {
		{regexp.MustCompile(`^PSYNC2 #3899 regression: kill chained replica$`), "PSYNC2 #3899 regression: kill chained replica (every round)"},
		{regexp.MustCompile(`^PSYNC2 #3899 regression: kill first replica$`), "PSYNC2 #3899 regression: kill first replica (every round)"},
	},
}

func foldOf(unit, name string) *Fold {
	for i, f := range Folds[unit] {
		if f.Pattern.MatchString(name) {
			return &Folds[unit][i]
		}
	}
	return nil
}

// mergeFolded adds the result r of the test name to the folded result
// acc: durations add up, and the worst status wins (error, then fail, then
// pass, then skip), keeping the message of the first test that had it.
func mergeFolded(acc compat.Result, name string, r compat.Result) compat.Result {
	acc.Duration += r.Duration
	rank := map[compat.Status]int{compat.Skip: 0, compat.Pass: 1, compat.Fail: 2, compat.Error: 3}
	if rank[r.Status] > rank[acc.Status] {
		acc.Status, acc.Message, acc.Output = r.Status, name+": "+r.Message, r.Output
	}
	return acc
}

// statusLine matches the lines runtest starts a report with.
var statusLine = regexp.MustCompile(`^\[(ok|err|skip|ignore|exception|ready|TIMEOUT|\d+/\d+ done)\]: `)

// isStatusLine reports whether line starts a new report of runtest (a
// status line, the failure summary or the closing text), which ends a
// detail or a stack trace.
func isStatusLine(line string) bool {
	return statusLine.MatchString(line) || strings.HasPrefix(line, "*** ") ||
		strings.HasPrefix(line, "!!! WARNING") || strings.TrimSpace(line) == "The End"
}

// splitIgnore splits an "[ignore]: " payload into the test name and the
// reason; the name is empty when a tag left out a whole group.
func splitIgnore(data string) (name, reason string) {
	for _, r := range ignoreReasons {
		if strings.HasPrefix(data, r) {
			return "", data
		}
	}
	best := -1
	for _, r := range ignoreReasons {
		if j := strings.LastIndex(data, ": "+r); j > best {
			best = j
		}
	}
	if best < 0 {
		// An unknown reason: runtest joins "NAME: REASON".
		if j := strings.LastIndex(data, ": "); j >= 0 {
			return data[:j], data[j+2:]
		}
		return "", data
	}
	return data[:best], data[best+2:]
}
