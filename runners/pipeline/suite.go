package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/vkernel"
)

// Options say how RunSuite runs a suite's units.
type Options struct {
	// Parallel is how many units run at once, of kinds that are not
	// Serial; default 1.
	Parallel int
	// Timeout, if not zero, bounds every unit, in place of the timeouts
	// of the suite's kinds (runners.Kind.Timeout, runners.DefaultTimeout).
	Timeout time.Duration
	// Rerun runs the failed tests of each unit once more, for the kinds
	// that can (runners.Kind.Rerun): a test that then passes is flaky.
	Rerun bool
	// Progress, if set, receives one line per finished unit: the units
	// done of the total, the unit's counts and time, the units still
	// running and an ETA. Calls do not overlap.
	Progress func(line string)
	// Heartbeat, if not zero, is how often Progress also gets a line
	// naming the running units and the ETA, for units that run long.
	Heartbeat time.Duration
	// Estimates are the units' recorded times on this target (Timings),
	// for the ETA; without them the ETA is the mean time of the units
	// done so far.
	Estimates map[string]time.Duration
}

// Output kept in a unit's error result: the last lines, at most so many
// bytes.
const (
	tailLines = 60
	tailBytes = 8000
)

// RunSuite opens s on the target spec describes, runs every unit of its
// plan and returns the run, its results sorted by test id. A unit that did
// not run to its end (its Report.Err, a timeout) gets one error result
// (Test == Unit) beside the tests it did report, with the command that
// reproduces it and the tail of its output; the other units still run.
//
// A run stopped from outside (ctx ends) and a unit stopped by its timeout
// make the run partial: such units, and those never started, are listed
// in compat.Run.Incomplete, so that the tests they did not reach count as
// not run, never as regressions. A unit the run was stopped in gets no
// error result, and keeps only its passes and skips: whether a failure
// was the stop's doing cannot be told.
//
// The run is nil when s could not be opened on the target. The error is
// not nil when ctx ended before every unit ran (the results so far are
// returned) or when the target failed to run some unit (runners.ErrTarget).
func RunSuite(ctx context.Context, s runners.Suite, spec runners.TargetSpec, opts Options) (*compat.Run, error) {
	if err := spec.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name(), err)
	}
	plan := s.Plan()
	start := time.Now()
	sess, err := s.Open(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("starting %s on the %s target: %w", s.Name(), spec.Kind, err)
	}
	defer sess.Close()
	l := &loop{suite: s.Name(), target: spec.Kind, sess: sess, plan: plan, opts: opts, total: len(plan.Units),
		cut: map[string]string{}}
	if spec.Kind == runners.Vkernel {
		// The polyfill coverage map: each unit's vkernel processes write
		// their host call counts to a directory of the unit's own.
		root, err := os.MkdirTemp(spec.Scratch, "hostcalls-")
		if err != nil {
			return nil, fmt.Errorf("%s: host calls directory: %w", s.Name(), err)
		}
		defer os.RemoveAll(root)
		l.hostCallsRoot, l.hostCalls = root, compat.NewHostCalls(hostFunctions())
	}
	l.run(ctx)
	compat.SortResults(l.results)
	run := &compat.Run{Suite: s.Name(), Target: spec.Kind, Start: start, Duration: time.Since(start),
		Results: l.results, Properties: sess.Properties(), UnitTimes: l.times}
	if l.hostCalls != nil && l.hostCalls.Units > 0 {
		run.HostCalls = l.hostCalls
	}
	for _, u := range plan.Units {
		why, ok := l.cut[u.Name]
		if !ok && !l.started[u.Name] {
			why, ok = "not started: the run was stopped ("+fmt.Sprint(context.Cause(ctx))+")", true
		}
		if ok {
			run.Incomplete = append(run.Incomplete, compat.Incomplete{Unit: u.Name, Reason: why})
		}
	}
	var errs []error
	if n := len(l.targetErrs); n > 0 {
		errs = append(errs, fmt.Errorf("%s: %d unit(s) could not run on the %s target (their error results say why); the first: %w",
			s.Name(), n, spec.Kind, l.targetErrs[0]))
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: stopped after %d of %d units: %w", s.Name(), l.done, l.total, err))
	}
	return run, errors.Join(errs...)
}

// loop runs the units of one suite on one target.
type loop struct {
	suite, target string
	sess          runners.Session
	plan          runners.Plan
	opts          Options

	mu         sync.Mutex
	results    []compat.Result
	targetErrs []error
	done       int
	total      int
	started    map[string]bool
	cut        map[string]string    // unit -> why it did not run to its end
	running    map[string]time.Time // unit -> when it started
	ended      map[string]bool
	took       []time.Duration          // the finished units' times
	times      map[string]time.Duration // unit -> its time

	// hostCallsRoot holds a directory per running unit where its vkernel
	// processes write their host call counts (vkernel target only);
	// hostCalls adds them up as each unit ends.
	hostCallsRoot string
	hostCalls     *compat.HostCalls
}

// run runs the plan's units batch by batch: a batch is a run of
// consecutive units of one kind.
func (l *loop) run(ctx context.Context) {
	if l.opts.Heartbeat > 0 && l.opts.Progress != nil {
		stop := make(chan struct{})
		defer close(stop)
		go l.heartbeat(stop)
	}
	units := l.plan.Units
	for len(units) > 0 && ctx.Err() == nil {
		n := 1
		for n < len(units) && units[n].Kind == units[0].Kind {
			n++
		}
		l.batch(ctx, units[:n], l.plan.Kinds[units[0].Kind])
		units = units[n:]
	}
}

// batch runs units of one kind, as many at once as the kind allows.
func (l *loop) batch(ctx context.Context, units []runners.Unit, kind runners.Kind) {
	parallel := max(l.opts.Parallel, 1)
	if kind.Serial {
		parallel = 1
	}
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, u := range units {
		slots <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		l.mu.Lock()
		if l.started == nil {
			l.started, l.running, l.ended = map[string]bool{}, map[string]time.Time{}, map[string]bool{}
		}
		l.started[u.Name] = true
		l.running[u.Name] = time.Now()
		l.mu.Unlock()
		wg.Go(func() {
			defer func() { <-slots }()
			start := time.Now()
			results, unitErr, cut, targetErr := l.unit(ctx, u, kind)
			l.finished(u, results, unitErr, targetErr, cut, time.Since(start))
		})
	}
	wg.Wait()
}

// finished records a unit's results and reports its progress line.
func (l *loop) finished(u runners.Unit, results []compat.Result, unitErr *compat.Result, targetErr error, cut string, elapsed time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results = append(l.results, results...)
	if cut != "" {
		l.cut[u.Name] = cut
	}
	delete(l.running, u.Name)
	l.ended[u.Name] = true
	l.took = append(l.took, elapsed)
	if l.times == nil {
		l.times = map[string]time.Duration{}
	}
	l.times[u.Name] = elapsed
	if targetErr != nil {
		l.targetErrs = append(l.targetErrs, fmt.Errorf("unit %s: %w", u.Name, targetErr))
	}
	l.done++
	if l.opts.Progress == nil {
		return
	}
	var c compat.Counts
	for _, r := range results {
		c.Add(r)
	}
	line := fmt.Sprintf("%s %d/%d: pass %d, fail %d, error %d, skip %d (%s)", u.Name, l.done, l.total,
		c.Pass, c.Fail, c.Error, c.Skip, elapsed.Round(10*time.Millisecond))
	switch {
	case unitErr != nil:
		msg, _, _ := strings.Cut(unitErr.Message, "\n")
		line += ": " + msg
	case cut != "":
		line += ": " + cut
	}
	if unitErr == nil && cut != "" {
		// Stopped: no ETA for what will not run.
		l.opts.Progress(line)
		return
	}
	l.opts.Progress(line + l.status(time.Now()))
}

// heartbeat reports the running units every opts.Heartbeat until stop.
func (l *loop) heartbeat(stop <-chan struct{}) {
	t := time.NewTicker(l.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			l.mu.Lock()
			if len(l.running) > 0 {
				l.opts.Progress(fmt.Sprintf("%d/%d done", l.done, l.total) + l.status(time.Now()))
			}
			l.mu.Unlock()
		}
	}
}

// status is the end of a progress line: the running units, longest
// running first, with their times so far, and the ETA. l.mu is held.
func (l *loop) status(now time.Time) string {
	var b strings.Builder
	if len(l.running) > 0 {
		names := make([]string, 0, len(l.running))
		for u := range l.running {
			names = append(names, u)
		}
		sort.Slice(names, func(i, j int) bool {
			a, c := l.running[names[i]], l.running[names[j]]
			if !a.Equal(c) {
				return a.Before(c)
			}
			return names[i] < names[j]
		})
		b.WriteString("; running: ")
		for i, u := range names {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s (%s)", u, now.Sub(l.running[u]).Round(time.Second))
		}
	}
	if eta, ok := l.eta(now); ok && l.done < l.total {
		fmt.Fprintf(&b, "; ETA %s", eta.Round(time.Second))
	}
	return b.String()
}

// eta estimates the time left: each unit not finished takes its recorded
// time (Estimates), or the mean of the recorded ones, or else the mean
// time of the units done so far, less the time it has run; the sum is
// shared by the units that run at once. l.mu is held.
func (l *loop) eta(now time.Time) (time.Duration, bool) {
	var mean time.Duration
	switch {
	case len(l.opts.Estimates) > 0:
		var sum time.Duration
		for _, d := range l.opts.Estimates {
			sum += d
		}
		mean = sum / time.Duration(len(l.opts.Estimates))
	case len(l.took) > 0:
		var sum time.Duration
		for _, d := range l.took {
			sum += d
		}
		mean = sum / time.Duration(len(l.took))
	default:
		return 0, false
	}
	var left time.Duration
	for _, u := range l.plan.Units {
		if l.ended[u.Name] {
			continue
		}
		d, ok := l.opts.Estimates[u.Name]
		if !ok {
			d = mean
		}
		if start, ok := l.running[u.Name]; ok {
			d = max(d-now.Sub(start), 0)
		}
		left += d
	}
	return left / time.Duration(max(l.opts.Parallel, 1)), true
}

// timeout is how long one unit of kind may take.
func (l *loop) timeout(kind runners.Kind) time.Duration {
	switch {
	case l.opts.Timeout > 0:
		return l.opts.Timeout
	case kind.Timeout > 0:
		return kind.Timeout
	}
	return runners.DefaultTimeout
}

// unit runs one unit, and its failed tests once more when the kind can,
// and returns its results: with its error result, if any, which it also
// returns alone. targetErr is the unit's error when it was the target's;
// cut, when not empty, says why the unit did not run to its end (the run
// was stopped, its time ran out): its unreached tests were not run.
func (l *loop) unit(ctx context.Context, u runners.Unit, kind runners.Kind) (results []compat.Result, unitErr *compat.Result, cut string, targetErr error) {
	if l.hostCallsRoot != "" {
		if dir, err := os.MkdirTemp(l.hostCallsRoot, "unit-"); err == nil {
			// Its reruns too: the unit counts once in the map.
			ctx = runners.WithHostCallsDir(ctx, dir)
			defer l.countHostCalls(dir)
		}
	}
	timeout := l.timeout(kind)
	start := time.Now()
	rep, timedOut := l.attempt(ctx, u, nil, timeout)
	results = rep.Results
	var msg string
	switch {
	case ctx.Err() != nil:
		// The whole run was stopped (^C, a CI deadline): say so rather
		// than blame the unit. Its passes and skips stand; a failure
		// may be the stop's doing (the test running when it came is
		// reported as one that did not finish), so failures count as
		// not run, with the tests it did not reach
		// (compat.Run.Incomplete).
		kept := results[:0]
		for _, r := range results {
			if r.Test != u.Name && !r.Status.Failed() {
				kept = append(kept, r)
			}
		}
		return kept, nil, fmt.Sprintf("the run was stopped before the unit finished (%v)", context.Cause(ctx)), nil
	case timedOut:
		msg = fmt.Sprintf("timed out after %v with %d tests reported; the rest did not run", timeout, countTests(results, u.Name))
		cut = fmt.Sprintf("timed out after %v", timeout)
	case rep.Err != nil:
		msg = rep.Err.Error()
		if errors.Is(rep.Err, runners.ErrTarget) {
			targetErr = rep.Err
		}
	}
	// A unit that crashed still reran its failed tests, as regrtest's
	// own rerun does; one whose time ran out, or whose target failed,
	// would only do the same again.
	if kind.Rerun && l.opts.Rerun && ctx.Err() == nil && !timedOut && targetErr == nil {
		results = l.rerun(ctx, u, results, timeout)
	}
	if msg == "" {
		return results, nil, "", nil
	}
	command := rep.Command
	if command == "" {
		command = "(the " + l.suite + " suite gave no command for this unit)"
	}
	ue := compat.Result{Suite: l.suite, Unit: u.Name, Test: u.Name, Status: compat.Error, Duration: time.Since(start),
		Message: msg, Output: transcript(command, rep.Output)}
	kept := results[:0]
	for _, r := range results {
		if r.Test != u.Name {
			kept = append(kept, r)
		}
	}
	return append(kept, ue), &ue, cut, targetErr
}

// attempt runs the unit (or the named tests of it) under its timeout.
func (l *loop) attempt(ctx context.Context, u runners.Unit, tests []string, timeout time.Duration) (runners.Report, bool) {
	uctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rep := l.sess.Run(uctx, u, tests)
	for i := range rep.Results {
		if rep.Results[i].Suite == "" {
			rep.Results[i].Suite = l.suite
		}
		if rep.Results[i].Unit == "" {
			rep.Results[i].Unit = u.Name
		}
	}
	return rep, ctx.Err() == nil && errors.Is(uctx.Err(), context.DeadlineExceeded)
}

// rerun runs the unit's failed tests once more. A test that then passes or
// fails again replaces its first result, which it keeps as Previous (a pass
// after a failure is flaky); a test the rerun did not report keeps its
// first result.
func (l *loop) rerun(ctx context.Context, u runners.Unit, results []compat.Result, timeout time.Duration) []compat.Result {
	var failed []string
	for _, r := range results {
		if r.Status.Failed() && r.Test != u.Name {
			failed = append(failed, r.Test)
		}
	}
	if len(failed) == 0 || ctx.Err() != nil {
		return results
	}
	rep, _ := l.attempt(ctx, u, failed, timeout)
	again := map[string]compat.Result{}
	for _, r := range rep.Results {
		again[r.Test] = r
	}
	for i, r := range results {
		if !r.Status.Failed() || r.Test == u.Name {
			continue
		}
		if n, ok := again[r.Test]; ok && (n.Status == compat.Pass || n.Status.Failed()) {
			n.Previous = append(append([]compat.Result(nil), r.Previous...), r)
			results[i] = n
		}
	}
	return results
}

// countTests counts the results that are tests of unit, not the unit
// itself.
func countTests(results []compat.Result, unit string) int {
	n := 0
	for _, r := range results {
		if r.Test != unit {
			n++
		}
	}
	return n
}

// transcript shows a unit's command and the tail of its output the way a
// terminal would: each line of the command after "$ ", then the output.
func transcript(command, output string) string {
	var b strings.Builder
	for _, line := range strings.Split(command, "\n") {
		b.WriteString("$ " + line + "\n")
	}
	b.WriteString(runners.Tail(output, tailLines, tailBytes))
	return strings.TrimRight(b.String(), "\n")
}

// hostFunctions lists the host functions a coverage map covers: the
// vkernel's. The golden tests pin a short list of their own, so that a
// host function added to the ABI does not change their files.
var hostFunctions = vkernel.HostFunctions

// countHostCalls adds the host calls a unit's vkernel processes left in
// dir to the run's map, once the unit has ended, and removes dir. A
// process killed with its unit (its server, a timeout) counts the calls
// it made until then: the counters are in its file all along.
func (l *loop) countHostCalls(dir string) {
	defer os.RemoveAll(dir)
	// A file that cannot be read is left out; the others still count.
	files, _ := vkernel.ReadHostCalls(dir)
	if len(files) == 0 {
		return
	}
	calls := map[string]uint64{}
	for _, f := range files {
		for fn, n := range f.Calls {
			calls[fn] += n
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hostCalls.AddUnit(calls)
}
