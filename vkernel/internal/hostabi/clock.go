package hostabi

import (
	"context"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Preview1 clock ids.
const (
	clockRealtime         = 0
	clockMonotonic        = 1
	clockProcessCPUTimeID = 2
	clockThreadCPUTimeID  = 3
)

// clockResGet is preview1 clock_res_get(id, result.resolution) -> errno.
// Realtime and monotonic clocks are the host's, resolution 1 ns; the CPU-time
// clocks measure the instance's wall time since it started, since instances
// share host threads. EINVAL for an unknown clock, EFAULT for a result
// outside memory.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-clock_res_getid-clockid---errno-timestamp
var clockResGet = &hostFunc{
	module: ModulePreview1, name: "clock_res_get", untimed: true,
	params: []string{"id", "result.resolution"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		if uint32(s[0]) > clockThreadCPUTimeID {
			return EINVAL
		}
		return putU64(mod.Memory(), uint32(s[1]), 1)
	},
}

// clockTimeGet is preview1 clock_time_get(id, precision, result.timestamp)
// -> errno: real host time in nanoseconds (wazero's default is a fake clock).
// The monotonic clock is the host's CLOCK_MONOTONIC, so guest and native
// timestamps compare. EINVAL for an unknown clock.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-clock_time_getid-clockid-precision-timestamp---errno-timestamp
var clockTimeGet = &hostFunc{
	module: ModulePreview1, name: "clock_time_get", untimed: true,
	params: []string{"id", "precision", "result.timestamp"}, types: []api.ValueType{i32, i64, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		t, errno := p.now(uint32(s[0]))
		if errno != ESUCCESS {
			return errno
		}
		return putU64(mod.Memory(), uint32(s[2]), uint64(t))
	},
}

// now reads a clock. Both host clocks are read through the vDSO (Go's
// time.Now and the runtime's monotonic clock), as a native program reads
// them, not with a system call.
func (p *Process) now(id uint32) (int64, Errno) {
	switch id {
	case clockRealtime:
		return time.Now().UnixNano(), ESUCCESS
	case clockMonotonic:
		return nanotime(), ESUCCESS
	case clockProcessCPUTimeID, clockThreadCPUTimeID:
		return int64(time.Since(p.start)), ESUCCESS
	}
	return 0, EINVAL
}
