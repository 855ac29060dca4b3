package hostabi

import (
	"context"
	"crypto/rand"

	"github.com/tetratelabs/wazero/api"
)

// randomGet is preview1 random_get(buf, buf_len) -> errno: fills the buffer
// from the host's CSPRNG. EFAULT when the buffer is outside memory.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-random_getbuf-pointeru8-buf_len-size---errno
var randomGet = &hostFunc{
	module: ModulePreview1, name: "random_get",
	params: []string{"buf", "buf_len"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, _ *Process, mod api.Module, s []uint64) Errno {
		b, ok := view(mod.Memory(), uint32(s[0]), uint32(s[1]))
		if !ok {
			return EFAULT
		}
		if _, err := rand.Read(b); err != nil {
			return EIO
		}
		return ESUCCESS
	},
}
