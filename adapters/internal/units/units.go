// Package units runs the units of an upstream suite (regrtest modules,
// Redis test files) a bounded number at a time, the way every adapter
// does: results gathered as units finish, progress reported one unit at a
// time, and a stopped run reported with how far it got.
package units

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/compat-project/compat"
)

// Finished describes one unit that has finished.
type Finished struct {
	Unit        string
	Done, Total int
	Counts      compat.Counts
	Elapsed     time.Duration
	Err         error
}

// Run runs every unit with run, at most parallel at once, and returns all
// their results. progress, if not nil, is called once per finished unit,
// never concurrently. The error joins the units' errors and, when ctx ended
// early, says after how many of how many units (kind names them in that
// message, e.g. "modules").
func Run(ctx context.Context, names []string, parallel int, kind string,
	run func(ctx context.Context, unit string) ([]compat.Result, error),
	progress func(Finished)) ([]compat.Result, error) {
	var (
		mu         sync.Mutex
		results    []compat.Result
		errs       []error
		done       int
		progressMu sync.Mutex
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for _, unit := range names {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if gctx.Err() != nil {
				return nil
			}
			start := time.Now()
			rs, err := run(gctx, unit)
			mu.Lock()
			results = append(results, rs...)
			if err != nil {
				errs = append(errs, err)
			}
			done++
			f := Finished{Unit: unit, Done: done, Total: len(names), Elapsed: time.Since(start), Err: err}
			mu.Unlock()
			for _, r := range rs {
				f.Counts.Add(r)
			}
			if progress != nil {
				progressMu.Lock()
				progress(f)
				progressMu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	compat.SortResults(results)
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("stopped after %d of %d %s: %w", done, len(names), kind, err))
	}
	return results, errors.Join(errs...)
}

// Buffer collects output that two goroutines may write at once (a
// program's stdout and stderr).
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
