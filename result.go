// Package compat holds the few types that every part of the compatibility
// runner shares: the outcome of one upstream test ([Result]), one run of a
// suite on one target ([Run]) and how a run differs from its baseline
// ([Diff]).
//
// Adapters (adapters/...) produce Runs, baselines (baselines) compare them
// with what is expected, and reports (runners/report) write them out. This
// package does no I/O so that all of them can import it without pulling in
// each other.
package compat

import (
	"sort"
	"time"
)

// Status is the outcome of one test.
type Status string

// The statuses a test can end with. Error differs from Fail the way it does
// in unittest and JUnit: the test did not get as far as checking its
// assertions (an exception, a crash, a timeout), where Fail means an
// assertion did not hold.
const (
	Pass  Status = "pass"
	Fail  Status = "fail"
	Error Status = "error"
	Skip  Status = "skip"
)

// Valid reports whether s is one of Pass, Fail, Error and Skip.
func (s Status) Valid() bool {
	switch s {
	case Pass, Fail, Error, Skip:
		return true
	}
	return false
}

// Failed reports whether s is Fail or Error.
func (s Status) Failed() bool { return s == Fail || s == Error }

// Result is the outcome of one test of an upstream suite.
type Result struct {
	// Suite names the upstream suite, such as "python" or "redis".
	Suite string
	// Unit is the part of the suite that one process runs: a regrtest
	// module ("test_os"), a Redis unit file ("unit/type/list"). Test ids
	// start with their unit (see InUnit); a result for the unit as a
	// whole, such as a crash of the process, has Test == Unit.
	Unit string
	// Test is the test's id, unique within the suite, such as
	// "test_os.FileTests.test_blocking".
	Test string
	// Status is how the (last attempt at the) test ended.
	Status Status
	// Duration is how long the test took, zero if unknown.
	Duration time.Duration
	// Message says in a line why the test did not pass: the assertion
	// message, the skip reason, "exit status 139". Empty for a pass.
	Message string
	// Output is what the test printed or the traceback, for a human to
	// read; it may hold any bytes, including control characters.
	Output string
	// Previous holds earlier attempts at the same test, oldest first, when
	// it was run again after failing. All other fields describe the last
	// attempt.
	Previous []Result
}

// Flaky reports whether r passed after failing at least once: Surefire's
// flakyFailure, which is reported but is not a regression.
func (r Result) Flaky() bool {
	if r.Status != Pass {
		return false
	}
	for _, p := range r.Previous {
		if p.Status.Failed() {
			return true
		}
	}
	return false
}

// InUnit reports whether the test id test belongs to unit: it is the unit
// itself or starts with it followed by a character that cannot continue a
// name (so "test_json.X" is in "test_json" but "test_json2" is not).
func InUnit(test, unit string) bool {
	if unit == "" || len(test) < len(unit) || test[:len(unit)] != unit {
		return false
	}
	if len(test) == len(unit) {
		return true
	}
	c := test[len(unit)]
	return !(c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z')
}

// Well-known keys of Run.Properties. Reports copy every property; these are
// the ones other parts of the runner set, named once here so they agree.
const (
	// PropMegabinaryDigest is the digest of the vkernel binary that ran
	// the suite.
	PropMegabinaryDigest = "megabinary.digest"
	// PropModuleDigest is the digest of the WebAssembly module under test.
	PropModuleDigest = "module.digest"
	// PropImageID is the id of the Docker image of a reference target.
	PropImageID = "image.id"
	// PropRunnerImage names the runner image compat ran in
	// (images/runner), from $COMPAT_RUNNER_IMAGE.
	PropRunnerImage = "runner.image"
	// PropVersionPrefix starts the keys of component versions, such as
	// "version.python" or "version.wazero".
	PropVersionPrefix = "version."
)

// Run is one run of an upstream suite on one target.
type Run struct {
	// Suite names the upstream suite, such as "python".
	Suite string
	// Target names where it ran, such as "vkernel" or "reference".
	Target string
	// Start is when the run started.
	Start time.Time
	// Duration is the run's wall-clock time; with units run in parallel
	// it is less than the sum of the results' durations.
	Duration time.Duration
	// Results holds one result per test.
	Results []Result
	// Properties describes what ran: digests, image id, versions (see the
	// Prop constants).
	Properties map[string]string
	// UnitTimes holds the wall-clock time of each unit the run started,
	// its reruns included: what the next run's shards are balanced by
	// and its ETA estimated from. (A unit's tests' own times leave out
	// its start-up.)
	UnitTimes map[string]time.Duration `json:",omitempty"`
	// Incomplete lists the units of the run's plan that did not run to
	// their end for a reason outside their tests: the run was stopped,
	// the unit's time ran out, its shard is missing from a merge. Empty
	// for a complete run. Their tests that reported nothing were not
	// run: reports say so and never count them as regressions.
	Incomplete []Incomplete `json:",omitempty"`
	// HostCalls is the run's polyfill coverage map, on the vkernel: how
	// often its units' guests called each host function of the vkernel
	// and how many units did. Nil for other targets, and when no unit
	// reported host calls.
	HostCalls *HostCalls `json:",omitempty"`
}

// Incomplete is a unit that a run did not run to its end.
type Incomplete struct {
	// Unit names the unit.
	Unit string
	// Reason says why in a line, such as "the run was stopped before the
	// unit finished (interrupt)" or "timed out after 20m0s".
	Reason string
}

// Partial reports whether some unit of the run did not run to its end
// (see Run.Incomplete).
func (r Run) Partial() bool { return len(r.Incomplete) > 0 }

// Counts counts results by status. Flaky results are counted as passes and
// also in Flaky.
type Counts struct {
	Pass, Fail, Error, Skip, Flaky int
}

// Total is the number of results counted, flaky ones once.
func (c Counts) Total() int { return c.Pass + c.Fail + c.Error + c.Skip }

// Add counts one result.
func (c *Counts) Add(r Result) {
	switch r.Status {
	case Pass:
		c.Pass++
	case Fail:
		c.Fail++
	case Error:
		c.Error++
	case Skip:
		c.Skip++
	}
	if r.Flaky() {
		c.Flaky++
	}
}

// Counts counts the run's results by status.
func (r Run) Counts() Counts {
	var c Counts
	for _, res := range r.Results {
		c.Add(res)
	}
	return c
}

// SortResults sorts results by test id, the order reports and baselines use,
// keeping results with equal ids in their current order.
func SortResults(results []Result) {
	sort.SliceStable(results, func(i, j int) bool { return results[i].Test < results[j].Test })
}
