package runners

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// The kinds of target a suite runs on (TargetSpec.Kind), which are also the
// target names of its runs and baselines.
const (
	// Vkernel is the program recompiled to WebAssembly, run by the
	// pipeline's kernel from its signed megabinary.
	Vkernel = "vkernel"
	// Reference is Debian's native build of the same version.
	Reference = "reference"
)

// The ways a Reference target runs (TargetSpec.Reference).
const (
	// Docker runs the reference in a container of the suite's reference
	// image (images/*/build-image.sh).
	Docker = "docker"
	// Local runs the host's own installed build.
	Local = "local"
)

// Suite is an upstream test suite as the pipeline drives it: lit's test
// format. It says which units there are (Plan) and, once opened on a
// target, runs one unit at a time (Session.Run). Everything around a unit
// is the pipeline's: the order and parallelism of units, their timeouts,
// progress lines, reruns of failed tests, and the error result of a unit
// that did not run to its end.
type Suite interface {
	// Name names the suite in reports, file names and baselines, such as
	// "python".
	Name() string
	// Entries are the megabinary entries the suite's programs need on
	// the Vkernel target; the pipeline builds one megabinary of every
	// suite's entries.
	Entries() []megabinary.SpecEntry
	// Plan returns the units to run, chosen when the suite was made (a
	// profile or the user's list), and how each kind of unit runs.
	Plan() Plan
	// Open starts what the suite needs on the target spec describes (a
	// container, a copy of the suite's files, shims) and returns the
	// session that runs the units there. The session's Close undoes it.
	Open(ctx context.Context, spec TargetSpec) (Session, error)
}

// Session runs one suite's units on one target. Run may be called from
// several goroutines at once for units of kinds that are not Serial.
type Session interface {
	// Properties describe the target for the run's report: digests,
	// image id, versions (see the compat.Prop constants).
	Properties() map[string]string
	// Run runs unit and reports what it gave. With tests not empty it
	// runs only those tests of the unit (ids as its results give them):
	// the pipeline's rerun of failed tests, asked only of kinds with
	// Rerun set.
	//
	// ctx carries the unit's timeout: when it ends, Run stops the unit's
	// processes and returns what they reported so far; the pipeline
	// tells a timeout from a stopped run and says so in the unit's error
	// result.
	Run(ctx context.Context, unit Unit, tests []string) Report
	// Close stops the target and removes what Open made.
	Close() error
}

// Unit is one part of a suite that runs on its own: a regrtest module
// ("test_os"), a Redis test file ("unit/type/list"), a Test::Nginx file
// ("echo/echo.t"). Test ids of its results start with Name (see
// compat.InUnit).
type Unit struct {
	// Name is the unit's name, as a user selects it and as its results'
	// compat.Result.Unit give it.
	Name string
	// Kind names the unit's class within its suite, such as "spawn" for
	// Redis units whose harness starts its own servers; "" is the
	// suite's plain kind. Plan.Kinds says how each kind runs.
	Kind string
}

// Plan is what a suite will run.
type Plan struct {
	// Units are the units in the order they run. Consecutive units of
	// one kind run as a batch, at most the pipeline's parallelism at once
	// (one at a time for a Serial kind); batches run one after another.
	Units []Unit
	// Kinds says how each kind of unit runs; a kind not listed runs with
	// the zero Kind.
	Kinds map[string]Kind
}

// Kind says how the units of one kind run.
type Kind struct {
	// Timeout bounds one unit of the kind; zero means the pipeline's
	// default (DefaultTimeout). A timeout the user gives the pipeline
	// overrides it.
	Timeout time.Duration
	// Serial runs the units one at a time, for harnesses that share a
	// port or a port range.
	Serial bool
	// Rerun says Session.Run can run a unit's named tests alone, so the
	// pipeline runs a unit's failed tests once more to tell flaky ones
	// (compat.Result.Flaky).
	Rerun bool
}

// DefaultTimeout bounds a unit whose kind gives no timeout.
const DefaultTimeout = 20 * time.Minute

// Report is what one run of a unit gave: its test results, and when it did
// not run to its end, why, with the command and output that show it.
type Report struct {
	// Results are the tests the unit reported. A result for the unit as
	// a whole (Test == Unit) is for endings that are the format's to
	// judge, such as a module that skips as a whole.
	Results []compat.Result
	// Command is the command line that reproduces the unit by hand, as
	// the target runs it (see Target.Command). Always set: the pipeline
	// puts it in the unit's error result, as lit prints "Script:".
	Command string
	// Output is what the unit printed; the pipeline keeps its tail in the
	// unit's error result.
	Output string
	// Err, if not nil, says why the unit did not run to its end: a
	// crash, a server that died, an exception in the harness, output that
	// does not parse. An error of the target itself (it could not run
	// the process) is wrapped by TargetError. The pipeline turns Err into
	// the unit's error result; the other units still run.
	Err error
}

// SuiteConfig is what every suite is made from: the build under test and
// which of its units to run (compat run's -*-build, -profile and -modules).
type SuiteConfig struct {
	// Build is the directory of the build under test; empty: the newest
	// under Cache.
	Build string
	// Cache is the cache root (builds, AOT code).
	Cache string
	// Profile is "quick" (a few units per suite, for CI) or "full" (the
	// whole suite).
	Profile string
	// Units are unit names, as the suite's results give them; when set,
	// the profile is not used. A name the suite does not have is an error
	// of the suite's constructor that names every unknown one
	// (UnknownUnits), which compat run reports as a usage error.
	Units []string
}

// UnknownUnits checks names against a suite's units: the error lists, in
// order, every name known reports false for, and hint says how units are
// named (such as `files of the checkout, like "access.t"`). nil when all
// are known.
func UnknownUnits(suite string, names []string, known func(string) bool, hint string) error {
	var bad []string
	for _, n := range names {
		if !known(n) {
			bad = append(bad, strconv.Quote(n))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%s: unknown unit(s) %s (%s)", suite, strings.Join(bad, ", "), hint)
}

// TargetSpec describes the target a suite is to run on. The pipeline
// makes one per suite and kind and hands it to Suite.Open: a suite starts
// its target from it instead of finding out what it runs on from a
// target's type or name.
type TargetSpec struct {
	// Kind is Vkernel or Reference.
	Kind string
	// Reference is how a Reference target runs: Docker or Local.
	Reference string
	// Kernel is the pipeline's kernel (Vkernel only). It stays the
	// pipeline's: a session must not close it.
	Kernel *vkernel.Kernel
	// Megabinary and PublicKey are the signed file Kernel was opened from
	// and the public key it is signed with (Vkernel only). Programs that
	// a harness starts as processes of their own (compat redis-shim,
	// compat nginx-shim) open this same file, so the run's
	// compat.PropMegabinaryDigest is what they ran.
	Megabinary, PublicKey string
	// Exec is the command that runs compat exec (Vkernel only), such as
	// {"/usr/bin/compat", "exec"}: every program a suite runs on the
	// vkernel runs in such a process of its own (runners/vktarget).
	Exec []string
	// Cache is the cache root (builds, AOT code).
	Cache string
	// Scratch is an empty directory the session may use until Close;
	// the pipeline removes it afterwards.
	Scratch string
}

// Dir makes the directory name in spec.Scratch and returns its path.
func (spec TargetSpec) Dir(name string) (string, error) {
	d := filepath.Join(spec.Scratch, name)
	if err := os.MkdirAll(d, 0o777); err != nil {
		return "", fmt.Errorf("scratch directory: %w", err)
	}
	return d, nil
}

// Check reports whether spec names a known kind and, for Reference, a
// known way to run it.
func (spec TargetSpec) Check() error {
	switch {
	case spec.Kind == Vkernel:
		return nil
	case spec.Kind != Reference:
		return fmt.Errorf("unknown target %q: want %s or %s", spec.Kind, Vkernel, Reference)
	case spec.Reference != Docker && spec.Reference != Local:
		return fmt.Errorf("unknown reference %q: want %s or %s", spec.Reference, Docker, Local)
	}
	return nil
}

// ErrTarget marks an error of a target (it could not run a process, a
// container is gone), as opposed to a failure of the program under test.
// Test for it with errors.Is.
var ErrTarget = errors.New("target failed")

// TargetError wraps err, an error a Target returned, so that errors.Is(err,
// ErrTarget) holds. The pipeline ends the run with an error after all units
// have run when any unit's Report.Err is one.
func TargetError(err error) error {
	if err == nil {
		return nil
	}
	return targetError{err}
}

type targetError struct{ err error }

func (e targetError) Error() string   { return e.err.Error() }
func (e targetError) Unwrap() []error { return []error{ErrTarget, e.err} }
