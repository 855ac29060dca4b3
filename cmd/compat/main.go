// Command compat runs upstream test suites against programs recompiled to
// WebAssembly and run by the vkernel, and manages the vkernel's signed
// megabinaries. Run "compat help" for the verbs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/compat-project/compat/vkernel"
)

// Exit codes.
const (
	exitOK          = 0
	exitRegressions = 1   // compat run, merge: regressions against the baseline
	exitUsage       = 2   // usage, bad input or infrastructure failure
	exitTrap        = 125 // compat exec: the guest trapped or was stopped
	exitDenied      = 126 // compat exec: the vkernel refused the exec
)

const usage = `compat: upstream test-suite compatibility runner for the vkernel

Usage:
  compat run [-suite python,redis,nginx] [-target vkernel,reference] [-reference docker|local]
             [-profile quick|full] [-modules M,...] [-suite-dir DIR] [-out DIR] [-baselines DIR] [FLAG...]
                                              run the suites on the vkernel and the native reference,
                                              diff against baselines, write JUnit, summary.md and
                                              report.html (compat run -h lists every flag; -shard i/n
                                              runs one shard of the units, balanced by recorded unit
                                              times; -history DIR keeps the trend over runs)
  compat merge [-out DIR] [-baselines DIR] [-history DIR] SHARD_DIR...
                                              merge the out/ directories of every shard of a run into
                                              one run, diffed against the baselines as one; refuses
                                              shards of different runs (exit 2, naming a missing or
                                              duplicated shard)
  compat baseline update [-out DIR] [-baselines DIR] [-suite S,...] [-target T,...]
                                              rewrite the baselines of every suite the run in -out
                                              wrote (or of -suite's); prints the changes
  compat keygen -out KEY                      new ed25519 key pair: KEY and KEY.pub (PEM)
  compat megabinary build -spec SPEC -out MB [-key KEY]
                                              build a megabinary from a JSON spec (signed with -key)
  compat megabinary verify [-pubkey PUB] MB   hash-routing verification (and signature, with -pubkey)
  compat megabinary sign -key KEY [-out OUT] MB
                                              sign a megabinary; refuses one that does not verify
  compat megabinary inspect [-json] MB        print the manifest
  compat exec -megabinary MB -pubkey PUB [flags] PATH [ARG...]
                                              run PATH in the vkernel, routed by its SHA-256
  compat exec -via SOCKET [flags] PATH [ARG...]
                                              the same, run by the compat serve on SOCKET: PATH and
                                              stdio are passed as fds, signals forwarded
  compat serve -megabinary MB -pubkey PUB -socket PATH [-max N] [-warm N] [-prewarm ENTRY]
             [-share N] [-drain D] [-allow-uid UID] [-allow-gid GID] [-mode 0600]
                                              exec service: one verified megabinary, each request in
                                              an instance of its own, up to -share at once in one
                                              vkernel process started ahead of need;
                                              SIGTERM stops it once running requests end
  compat bench exec [-n N]                    exec-to-first-instruction latency, vkernel vs native
  compat bench concurrent [-n N]              N concurrent tool invocations, vkernel vs native
  compat bench agent [-n N] [-pause D] [-c N] [-share N]
                                              tool calls as an agent makes them, one process per call:
                                              compat exec -via, the Go client, plain compat exec and
                                              native, p50/p95/p99 to first instruction and exit;
                                              -c N: N python calls at once, memory and calls/s
  compat bench python [-n N] [-workloads W,...] [-python PATH] [-wasm PATH]
                                              CPU-bound Python workloads, python.wasm in the
                                              vkernel vs native python3.11: medians, ratios
  compat bench redis [-n N] [-c C,...]        redis-benchmark against redis-server.wasm in the vkernel
                                              and the native redis-server, side by side: req/s, CPU per
                                              request and their ratios (-cpuprofile FILE: profile the vkernel)
  compat bench nginx [-d D] [-c N]            wrk (keep-alive, new connections) against nginx.wasm in the
                                              vkernel and the native nginx, a 4 KiB static file, side by side
  compat nginx-shim NGINX-ARGS...             nginx's command line, run in the vkernel (the
                                              TEST_NGINX_BINARY the NGINX harnesses use)
  compat redis-shim NAME ARGS...              redis-server (or redis-check-aof, -rdb) run in the
                                              vkernel: the Redis suite's src/ programs in spawn mode
  compat help                                 this text

Exit codes:
  0    success (compat exec: the guest exited 0)
  1-124, 127-255
       compat exec: the guest's own exit status
  1    compat run, compat merge: regressions against the baseline
  2    usage, bad input (corrupt or unsigned megabinary, bad spec, shards of different runs, a
       missing shard) or infrastructure failure; an interrupted run (its results are partial)
  125  compat exec: the guest trapped or was stopped (timeout, interrupt); with -via a
       guest that trapped dies of SIGABRT (134), as a vkernel child process does
  126  compat exec: denied by the vkernel (hash not in the signed manifest, path not pinned,
       resources not allowed); the path and hash are printed and written to the audit log

Policies (compat exec -policy):
  hash       route by content alone: a listed file runs wherever it is (default)
  path+hash  also require the opened file's real path to be one the entry is pinned to

Environment:
  COMPAT_CACHE   cache root (default $XDG_CACHE_HOME/compat or ~/.cache/compat): AOT-compiled
                 code, built guests and images, the default audit log (audit.jsonl) and
                 the recorded unit times (timings.json)
  COMPAT_RUNNER_IMAGE
                 the runner image compat runs in (images/runner sets it): every run's
                 runner.image property
  COMPAT_HOSTCALLS_DIR
                 directory where every vkernel (compat exec, the shims, their children)
                 leaves its guests' host call counts, one file per exec; compat run sets
                 it per unit for the polyfill coverage map (hostcalls.json)
  COMPAT_SNAPSHOT
                 off: compat exec and compat serve start every exec the usual way, never from
                 an entry's snapshot (as -snapshot=false; vkernel/ABI.md, "Snapshots")

The megabinary format is documented in vkernel/megabinary/FORMAT.md, the guests' host ABI in
vkernel/ABI.md.
`

func main() {
	// A guest's spawn or fork starts this executable again as a vkernel
	// child process (compat exec sets it as the kernel's ChildCommand).
	vkernel.ChildMain()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	verbs := map[string]func([]string, io.Writer, io.Writer) int{
		"keygen":     keygen,
		"megabinary": megabinaryCmd,
		"exec":       execCmd,
		"serve":      serveCmd,
		"bench":      benchCmd,
		"run":        runCmd,
		"baseline":   baselineCmd,
		"merge":      mergeCmd,
		"nginx-shim": nginxShim,
		"redis-shim": redisShim,
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	verb, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "compat: unknown command %q (run: compat help)\n", args[0])
		return exitUsage
	}
	return verb(args[1:], stdout, stderr)
}

// newFlags returns a flag set for a verb whose errors go to stderr.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: compat %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// usageError ends a verb whose flags did not parse (err) or whose arguments
// are wrong (err nil). The flag package has already printed the usage for
// a parse error and for -h, which is a request, not an error: exit 0, as
// Go's flag package does by default.
func usageError(fs *flag.FlagSet, err error) int {
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err == nil:
		fs.Usage()
	}
	return exitUsage
}

// fail prints err for the user and returns the usage exit code.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "compat: %v\n", err)
	return exitUsage
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
