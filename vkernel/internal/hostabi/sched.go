package hostabi

import (
	"context"
	"runtime"

	"github.com/tetratelabs/wazero/api"
)

// schedYield is preview1 sched_yield() -> errno: yields the goroutine
// running the guest; in a process with threads, without the process's
// lock, so that a thread spinning on sched_yield lets the others' host
// calls run.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-sched_yield---errno
var schedYield = &hostFunc{
	module: ModulePreview1, name: "sched_yield",
	types: []api.ValueType{}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, _ []uint64) Errno {
		p.unlocked(runtime.Gosched)
		return ESUCCESS
	},
}
