package hostabi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// argsGet is preview1 args_get(argv, argv_buf) -> errno: it writes a pointer
// to each NUL-terminated argument at argv and the arguments at argv_buf.
// EFAULT when either area is outside memory. The sizes come from
// args_sizes_get.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-args_getargv-pointerpointeru8-argv_buf-pointeru8---errno
var argsGet = &hostFunc{
	module: ModulePreview1, name: "args_get", untimed: true,
	params: []string{"argv", "argv_buf"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		return writeStrings(mod.Memory(), p.args, uint32(s[0]), uint32(s[1]))
	},
}

// argsSizesGet is preview1 args_sizes_get(result.argc, result.argv_len) ->
// errno: the argument count and the bytes args_get needs for the strings,
// NULs included. EFAULT when a result is outside memory.
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-args_sizes_get---errno-size-size
var argsSizesGet = &hostFunc{
	module: ModulePreview1, name: "args_sizes_get", untimed: true,
	params: []string{"result.argc", "result.argv_len"}, types: []api.ValueType{i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		return writeSizes(mod.Memory(), p.args, uint32(s[0]), uint32(s[1]))
	},
}

// writeStrings lays out a NUL-terminated string list the way args_get and
// environ_get define it. It checks the whole destination before writing, so
// a fault leaves memory untouched.
func writeStrings(m api.Memory, list [][]byte, ptrs, buf uint32) Errno {
	total := uint32(0)
	for _, s := range list {
		total += uint32(len(s)) + 1
	}
	pv, ok := view(m, ptrs, uint32(len(list))*4)
	if !ok {
		return EFAULT
	}
	bv, ok := view(m, buf, total)
	if !ok {
		return EFAULT
	}
	off := uint32(0)
	for i, s := range list {
		put32(pv[i*4:], buf+off)
		copy(bv[off:], s)
		bv[off+uint32(len(s))] = 0
		off += uint32(len(s)) + 1
	}
	return ESUCCESS
}

func writeSizes(m api.Memory, list [][]byte, count, size uint32) Errno {
	total := uint32(0)
	for _, s := range list {
		total += uint32(len(s)) + 1
	}
	if e := putU32(m, count, uint32(len(list))); e != ESUCCESS {
		return e
	}
	return putU32(m, size, total)
}
