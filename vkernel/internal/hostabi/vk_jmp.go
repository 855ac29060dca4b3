package hostabi

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// jumpPoint is what setjmp saved for one jmp_buf.
type jumpPoint struct {
	snapshot     experimental.Snapshot
	stackPointer uint64
}

// vkSetjmp is vkernel.setjmp(env) -> i32: saves the execution state
// (wazero's snapshot of the call stack and the guest's __stack_pointer) under
// the jmp_buf address env and returns 0; returns again with longjmp's value.
// One state is kept per jmp_buf address, so a loop of setjmp calls does not
// grow memory. The guest must export __stack_pointer (link with
// --export=__stack_pointer); otherwise the call traps with that message.
var vkSetjmp = &hostFunc{
	module: ModuleVkernel, name: "setjmp",
	params: []string{"env"}, types: []api.ValueType{i32}, results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		sp := stackPointer(mod)
		if p.jumps == nil {
			p.jumps = map[uint32]jumpPoint{}
		}
		p.jumps[uint32(s[0])] = jumpPoint{
			snapshot:     experimental.GetSnapshotter(ctx).Snapshot(),
			stackPointer: sp.Get(),
		}
		return 0
	},
}

// vkLongjmp is vkernel.longjmp(env, val): returns to the setjmp that saved
// env, making it return val (1 when val is 0), with the guest's
// __stack_pointer restored. A jmp_buf that setjmp never saved traps.
var vkLongjmp = &hostFunc{
	module: ModuleVkernel, name: "longjmp",
	params: []string{"env", "val"}, types: []api.ValueType{i32, i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		jp, ok := p.jumps[uint32(s[0])]
		if !ok {
			panic(fmt.Errorf("vkernel.longjmp: jmp_buf %#x was not saved by setjmp", uint32(s[0])))
		}
		val := uint32(s[1])
		if val == 0 {
			val = 1
		}
		stackPointer(mod).Set(jp.stackPointer)
		jp.snapshot.Restore([]uint64{uint64(val)})
		return 0
	},
}

func stackPointer(mod api.Module) api.MutableGlobal {
	g, ok := mod.ExportedGlobal("__stack_pointer").(api.MutableGlobal)
	if !ok {
		panic(fmt.Errorf("vkernel.setjmp: the guest does not export a mutable __stack_pointer (link with --export=__stack_pointer)"))
	}
	return g
}
