package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/compat-project/compat"
)

// TopHostCalls is how many host functions, most called first, the summary
// names per suite.
const TopHostCalls = 8

// Coverage is the polyfill coverage map of a run's suites: which host
// functions of the vkernel their guests called, and which none did. It is
// what hostcalls.json holds, for tools.
type Coverage struct {
	// Suites are the runs that have a map (compat.Run.HostCalls), in the
	// sections' order.
	Suites []SuiteCoverage
	// Functions are the host functions the maps list, each once, in the
	// order the first map lists them (the ABI's).
	Functions []string
	// BlindSpots are the functions of Functions that no suite's guests
	// called.
	BlindSpots []string
}

// SuiteCoverage is one suite's map on one target.
type SuiteCoverage struct {
	Suite, Target string
	compat.HostCalls
}

// CoverageOf gathers the maps of the sections' runs; its Suites are empty
// when no run has one.
func CoverageOf(sections ...Section) Coverage {
	var c Coverage
	seen := map[string]bool{}
	called := map[string]bool{}
	for _, s := range sections {
		h := s.Run.HostCalls
		if h == nil {
			continue
		}
		c.Suites = append(c.Suites, SuiteCoverage{Suite: s.Run.Suite, Target: s.Run.Target, HostCalls: *h})
		for _, f := range h.Functions {
			if !seen[f.Function] {
				seen[f.Function] = true
				c.Functions = append(c.Functions, f.Function)
			}
			if f.Calls > 0 {
				called[f.Function] = true
			}
		}
	}
	for _, f := range c.Functions {
		if !called[f] {
			c.BlindSpots = append(c.BlindSpots, f)
		}
	}
	return c
}

// Top returns the n functions called most, most first (ties by name), of
// those called at all.
func (s SuiteCoverage) Top(n int) []compat.HostCall {
	var calls []compat.HostCall
	for _, f := range s.Functions {
		if f.Calls > 0 {
			calls = append(calls, f)
		}
	}
	sort.SliceStable(calls, func(i, j int) bool {
		if calls[i].Calls != calls[j].Calls {
			return calls[i].Calls > calls[j].Calls
		}
		return calls[i].Function < calls[j].Function
	})
	return calls[:min(n, len(calls))]
}

// writeCoverage writes summary.md's polyfill coverage section: per suite,
// the host functions its guests called of those there are and the most
// called, then the blind spots. Nothing when no run has a map.
func writeCoverage(p func(string, ...any), c Coverage) {
	if len(c.Suites) == 0 {
		return
	}
	p("\n## Polyfill coverage\n\n")
	p("The vkernel's host functions (WASI preview1 and the `vkernel` module) the suites' guests called, counted per exec; " +
		"`hostcalls.json` and each run's JSON have every function's calls and units.\n\n")
	p("| suite | target | units | functions called | most called: calls (units) |\n|---|---|---:|---:|---|\n")
	for _, s := range c.Suites {
		var top []string
		for _, f := range s.Top(TopHostCalls) {
			top = append(top, fmt.Sprintf("`%s` %s (%d)", code(shortFunction(f.Function)), grouped(f.Calls), f.Units))
		}
		p("| %s | %s | %d | %d of %d | %s |\n", cell(s.Suite), cell(s.Target), s.Units, s.Exercised(), len(s.Functions), strings.Join(top, ", "))
	}
	if len(c.BlindSpots) == 0 {
		p("\nBlind spots: none; every host function was called by some suite.\n")
		return
	}
	names := make([]string, len(c.BlindSpots))
	for i, f := range c.BlindSpots {
		names[i] = "`" + code(shortFunction(f)) + "`"
	}
	p("\n**Blind spots**: %d of %d host functions no suite called: %s.\n", len(c.BlindSpots), len(c.Functions), strings.Join(names, ", "))
}

// shortFunction names a host function as the summary does: a WASI
// function by its name alone, a vkernel one as "vkernel.name".
func shortFunction(f string) string {
	return strings.TrimPrefix(f, "wasi_snapshot_preview1.")
}

// grouped writes n with its thousands separated by commas.
func grouped(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
