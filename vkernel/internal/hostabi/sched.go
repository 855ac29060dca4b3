package hostabi

import (
	"context"
	"runtime"

	"github.com/tetratelabs/wazero/api"
)

// schedYield is preview1 sched_yield() -> errno: yields the goroutine
// running the guest.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-sched_yield---errno
var schedYield = &hostFunc{
	module: ModulePreview1, name: "sched_yield",
	types: []api.ValueType{}, results: []api.ValueType{i32},
	call: func(context.Context, *Process, api.Module, []uint64) Errno {
		runtime.Gosched()
		return ESUCCESS
	},
}
