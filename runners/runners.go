// Package runners is compat's test runner, split the way LLVM lit splits
// its own: the framework owns the loop over a suite's units
// (runners/pipeline: parallelism, timeouts, progress, reruns, unit errors,
// reports), a test format only lists its units and runs one of them (a
// Suite: one package per upstream suite under adapters/), and a target is
// the place where a unit's processes run (runners/vktarget: the vkernel;
// runners/docker: a container of the native reference build;
// runners/local: the host itself).
//
// This package holds the two contracts between those parts: Suite, with
// Session, Plan, Unit and Report, between the pipeline and a format; and
// Target, with Process and Exit, between a format and a place. TargetSpec
// tells a format which place it runs on, so that no format has to guess it
// from a target's type or name.
//
// Formats only start processes and read the files those processes write,
// so a target needs to do little: run one process to completion with the
// arguments, environment, working directory and standard streams it is
// given, say how it exited, and say how to run the same process by hand.
package runners

import (
	"context"
	"fmt"
	"io"
	"syscall"
)

// Target runs processes in one place of execution. Its methods may be
// called from several goroutines at once.
type Target interface {
	// Name names the target in reports, such as "vkernel" or
	// "reference".
	Name() string

	// Run runs p to completion and reports how it exited.
	//
	// The program's own failures are not errors: a non-zero exit status, a
	// signal or a WebAssembly trap is described by Exit with a nil error.
	// An error means the target could not run the process or lost track
	// of it (the container is gone, the module would not compile, a
	// program was not found), so that a caller can tell a broken
	// environment from a broken program.
	//
	// When ctx is done before the process exits, Run stops the process,
	// waits for it, and returns an error that wraps ctx.Err(), so
	// errors.Is(err, context.DeadlineExceeded) tells a timeout. The
	// output written so far has been passed to p.Stdout and p.Stderr.
	Run(ctx context.Context, p Process) (Exit, error)

	// Properties describes the target for reports: digests, image id,
	// versions (see the compat.Prop constants).
	Properties() map[string]string

	// Command returns a shell command line that runs p the way Run
	// would, for a person reproducing a failure by hand (lit's
	// "Script:"): "docker run ... IMAGE ARGS", "compat exec ... ARGS".
	// It names the host directories the target mounts; those that were
	// scratch space may be gone by the time it is read.
	Command(p Process) string

	// Close releases the target (stops its container, frees its
	// runtime). It may be called more than once; calls after the first
	// return nil and Run fails after Close.
	Close() error
}

// Process is one program to run on a Target. Paths (Args, Dir, Env values)
// are as the program sees them: guest paths, which the target's mounts map
// to host paths.
type Process struct {
	// Args is the program and its arguments. Args[0] is looked up on the
	// target's PATH when it has no slash.
	Args []string
	// Env holds "KEY=value" entries added to the target's own
	// environment, replacing entries with the same key.
	Env []string
	// Dir is the working directory; empty means the target's default.
	Dir string
	// Stdin is the standard input; nil means empty.
	Stdin io.Reader
	// Stdout and Stderr receive the standard output and error; nil
	// discards them. They may be the same writer. A target writes to each
	// from one goroutine at a time, but to Stdout and Stderr concurrently,
	// so one writer shared by both must be safe for that.
	Stdout, Stderr io.Writer
}

// Mount makes a host directory visible to the processes of a target.
// Mounts are given when a target is created: a container's binds cannot
// change once it runs.
type Mount struct {
	// Host is the directory on the host.
	Host string
	// Guest is where the program sees it, an absolute path.
	Guest string
	// ReadOnly forbids the program to change it.
	ReadOnly bool
}

// Exit is how a process ended.
type Exit struct {
	// Code is the exit status; -1 when the process did not exit by
	// itself (see Crash).
	Code int
	// Crash says why the process stopped without exiting: "signal:
	// segmentation fault", "wasm trap: out of bounds memory access".
	// Empty when it exited with Code.
	Crash string
}

// OK reports whether the process exited with status 0.
func (e Exit) OK() bool { return e.Code == 0 && e.Crash == "" }

// String describes the exit the way os/exec does: "exit status 3",
// "signal: killed".
func (e Exit) String() string {
	if e.Crash != "" {
		return e.Crash
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// SignalExit returns the Exit of a process killed by sig, in the form every
// native target uses.
func SignalExit(sig syscall.Signal) Exit {
	return Exit{Code: -1, Crash: "signal: " + sig.String()}
}
