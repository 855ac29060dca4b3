// Package baselines reads, compares and rewrites the stored expectations of
// each suite on each target: which tests pass, which fail and why.
//
// The files live beside this package, one per suite and target, named
// SUITE-TARGET.txt (see [File]), for example python-vkernel.txt. Each line
// states one expectation:
//
//	# python on the vkernel: CPython 3.11.2 regrtest
//	pass  test_bool.BoolTest.test_and
//	fail  test_os.FileTests.test_blocking  # WASI: non-blocking mode on a regular file
//	skip  test_winreg  # no winreg on Linux
//	flaky test_time.TimeTestCase.test_monotonic  # host load; see issue 12
//
// A line is an expectation (pass, fail, skip or flaky), spaces, the test id
// and, after a space and '#', a reason. Every expectation but pass needs a
// reason: a known failure nobody can explain is a regression nobody has
// looked at. "fail" covers both failures and errors. "flaky" accepts either
// a pass or a failure.
//
// Lines starting with '#' and blank lines are comments. The comment lines
// before the first expectation are the file's header, which [Baseline.WriteTo]
// keeps; comments between expectations are not kept, so explanations belong
// in reasons.
//
// The format is chosen for review in git: one test per line, lines sorted by
// test id (byte order) so a test keeps its place when its expectation
// changes and a diff shows exactly that line; the expectation is padded to
// five columns and the reason follows two spaces, with no column alignment
// that would make one long new id rewrite every line.
//
// A test id that contains " #", begins with '"' or a space, ends with a
// space, or holds control characters is written as a Go string literal
// ("...") so that every id survives a round trip.
package baselines

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/compat-project/compat"
)

// Entry is one line of a baseline.
type Entry struct {
	// Expect is the expected outcome.
	Expect compat.Expectation
	// Test is the test's id.
	Test string
	// Reason says why the test does not simply pass; required unless
	// Expect is pass.
	Reason string
	// Line is the entry's line number in the file it was read from, zero
	// for entries that were not read.
	Line int
}

// Baseline is the expectations of one suite on one target.
type Baseline struct {
	// Name is where the baseline came from, used in error messages, such
	// as "baselines/python-vkernel.txt".
	Name string
	// Header holds the comment lines before the first entry, each
	// including its '#'.
	Header []string
	// Entries holds the expectations, sorted by test id.
	Entries []Entry
}

// File returns the path of the baseline of suite on target in dir.
func File(dir, suite, target string) string {
	return filepath.Join(dir, suite+"-"+target+".txt")
}

// Load reads and parses the baseline file at path. A file that does not
// exist gives an error that satisfies errors.Is(err, fs.ErrNotExist), so a
// caller can start from an empty baseline.
func Load(path string) (*Baseline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(path, f)
}

// ParseError is a problem in a baseline file.
type ParseError struct {
	// File and Line locate the problem.
	File string
	Line int
	// Msg says what is wrong and how to fix it.
	Msg string
}

// Error returns "FILE:LINE: message".
func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Parse reads a baseline in the format described in the package
// documentation. name is used in error messages. Every problem in the file
// is reported, one ParseError per line, joined with errors.Join.
func Parse(name string, r io.Reader) (*Baseline, error) {
	b := &Baseline{Name: name}
	seen := map[string]int{}
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, &ParseError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || trimmed[0] == '#' {
			if len(b.Entries) == 0 && len(errs) == 0 && trimmed != "" {
				b.Header = append(b.Header, trimmed)
			}
			continue
		}
		if !utf8.ValidString(line) {
			bad(n, "line is not valid UTF-8")
			continue
		}
		e, msg := parseLine(line)
		if msg != "" {
			bad(n, "%s", msg)
			continue
		}
		e.Line = n
		if first, ok := seen[e.Test]; ok {
			bad(n, "test %s is listed again (first on line %d): keep one line per test", e.Test, first)
			continue
		}
		seen[e.Test] = n
		b.Entries = append(b.Entries, e)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s:%d: %w", name, n+1, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b.sort()
	return b, nil
}

// parseLine parses one non-comment line, returning a message for the user
// when it is malformed.
func parseLine(line string) (Entry, string) {
	word, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimLeft(rest, " \t")
	exp := compat.Expectation(word)
	if !exp.Valid() {
		return Entry{}, fmt.Sprintf("line starts with %q: want pass, fail, skip or flaky, then the test id", word)
	}
	if rest == "" || rest[0] == '#' {
		return Entry{}, fmt.Sprintf("%s without a test id: write %q", word, word+" test_x.Class.test_y")
	}
	var test, after string
	if rest[0] == '"' {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return Entry{}, fmt.Sprintf("test id starts with '\"' but is not a valid Go string literal: %v", err)
		}
		test, _ = strconv.Unquote(q)
		after = rest[len(q):]
		if after != "" && after[0] != ' ' && after[0] != '\t' {
			return Entry{}, fmt.Sprintf("text %q follows the quoted test id: put a reason after \"  # \"", after)
		}
		after = strings.TrimLeft(after, " \t")
		if after != "" && after[0] != '#' {
			return Entry{}, fmt.Sprintf("text %q follows the quoted test id: put a reason after \"  # \"", after)
		}
	} else {
		i := reasonStart(rest)
		test = strings.TrimRight(rest[:i], " \t")
		after = rest[i:]
	}
	reason := ""
	if after != "" {
		reason = strings.TrimSpace(after[1:])
	}
	if reason == "" && exp != compat.ExpectPass {
		return Entry{}, fmt.Sprintf("%s %s has no reason: add \"  # why\" after the test id (every expectation but pass needs one)", exp, test)
	}
	return Entry{Expect: exp, Test: test, Reason: reason}, ""
}

// reasonStart returns the index of the '#' that starts the reason in s (a
// '#' after a space or tab), or len(s).
func reasonStart(s string) int {
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			return i
		}
	}
	return len(s)
}

func (b *Baseline) sort() {
	sort.SliceStable(b.Entries, func(i, j int) bool { return b.Entries[i].Test < b.Entries[j].Test })
}

// WriteTo writes b in the baseline format, header first and entries sorted
// by test id.
func (b *Baseline) WriteTo(w io.Writer) (int64, error) {
	b.sort()
	var buf bytes.Buffer
	for _, h := range b.Header {
		if !strings.HasPrefix(h, "#") {
			h = "# " + h
		}
		buf.WriteString(h)
		buf.WriteByte('\n')
	}
	for _, e := range b.Entries {
		buf.WriteString(formatEntry(e))
		buf.WriteByte('\n')
	}
	return buf.WriteTo(w)
}

// Save writes b to path, replacing the file only once it is complete.
func (b *Baseline) Save(path string) error {
	var buf bytes.Buffer
	if _, err := b.WriteTo(&buf); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("saving baseline %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("saving baseline %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving baseline %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("saving baseline %s: %w", path, err)
	}
	return nil
}

// formatEntry renders e as one line of the file.
func formatEntry(e Entry) string {
	s := fmt.Sprintf("%-5s %s", e.Expect, formatTest(e.Test))
	if e.Reason != "" {
		s += "  # " + oneLine(e.Reason)
	}
	return s
}

// formatTest quotes test ids that the plain form cannot carry.
func formatTest(test string) string {
	plain := test != "" && test[0] != '"' && test[0] != '#' &&
		!unicode.IsSpace(rune(test[0])) && !unicode.IsSpace(rune(test[len(test)-1])) &&
		reasonStart(test) == len(test) && utf8.ValidString(test)
	for _, r := range test {
		if unicode.IsControl(r) {
			plain = false
		}
	}
	if plain {
		return test
	}
	return strconv.Quote(test)
}

// oneLine makes s fit on one line of the file: control characters,
// newlines among them, become spaces.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
