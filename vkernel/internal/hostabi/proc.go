package hostabi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// procExit is preview1 proc_exit(rval): ends the instance with exit status
// rval. It does not return; the exec reports the status.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-proc_exitrval-exitcode
var procExit = &hostFunc{
	module: ModulePreview1, name: "proc_exit",
	params: []string{"rval"}, types: []api.ValueType{i32},
	call: func(ctx context.Context, _ *Process, mod api.Module, s []uint64) Errno {
		code := uint32(s[0])
		_ = mod.CloseWithExitCode(ctx, code)
		panic(sys.NewExitError(code))
	},
}

// procRaise is preview1 proc_raise(sig) -> errno. Signals are not delivered
// to guests: ENOSYS. (wasi-libc's raise() emulation does not call it.)
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-proc_raisesig-signal---errno
var procRaise = &hostFunc{
	module: ModulePreview1, name: "proc_raise",
	params: []string{"sig"}, types: []api.ValueType{i32}, results: []api.ValueType{i32},
	call: func(context.Context, *Process, api.Module, []uint64) Errno { return ENOSYS },
}
