package hostabi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// environGet is preview1 environ_get(environ, environ_buf) -> errno: it
// writes a pointer to each NUL-terminated KEY=VALUE string at environ and the
// strings at environ_buf. EFAULT when either area is outside memory.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-environ_getenviron-pointerpointeru8-environ_buf-pointeru8---errno
var environGet = &hostFunc{
	module: ModulePreview1, name: "environ_get", untimed: true,
	params: []string{"environ", "environ_buf"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		return writeStrings(mod.Memory(), p.env, uint32(s[0]), uint32(s[1]))
	},
}

// environSizesGet is preview1 environ_sizes_get(result.environc,
// result.environ_buf_len) -> errno.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-environ_sizes_get---errno-size-size
var environSizesGet = &hostFunc{
	module: ModulePreview1, name: "environ_sizes_get", untimed: true,
	params: []string{"result.environc", "result.environ_buf_len"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		return writeSizes(mod.Memory(), p.env, uint32(s[0]), uint32(s[1]))
	},
}
