package hostabi

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero/api"
)

// Memory protection bits, as in <sys/mman.h>.
const (
	ProtRead  = 1
	ProtWrite = 2
	ProtExec  = 4
)

// vkMemMap is vkernel.mem_map(len, prot, flags) -> errno: the intent check
// a port's mmap makes before it allocates in linear memory. Executable
// memory (PROT_EXEC) is refused with EPERM and an audit record: no code
// runs that was not compiled into the signed megabinary. Unknown protection
// bits answer EINVAL (audited too when PROT_EXEC is among them). Other
// requests succeed; the guest allocates the memory itself.
var vkMemMap = &hostFunc{
	module: ModuleVkernel, name: "mem_map",
	params: []string{"len", "prot", "flags"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		return p.memIntent("mmap", uint32(s[0]), uint32(s[1]))
	},
}

// vkMemProtect is vkernel.mem_protect(addr, len, prot) -> errno: as mem_map,
// for mprotect. PROT_EXEC, alone or with PROT_WRITE, is refused with EPERM
// and an audit record.
var vkMemProtect = &hostFunc{
	module: ModuleVkernel, name: "mem_protect",
	params: []string{"addr", "len", "prot"}, types: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		return p.memIntent("mprotect", uint32(s[1]), uint32(s[2]))
	},
}

// memIntent answers a mapping or protection request. Every request that
// asks for PROT_EXEC is audited, whatever else it holds: one with unknown
// bits is answered EINVAL as Linux does, but it is still an attempt at
// executable memory and is recorded as such.
func (p *Process) memIntent(call string, length, prot uint32) Errno {
	unknown := prot &^ (ProtRead | ProtWrite | ProtExec)
	if prot&ProtExec == 0 {
		if unknown != 0 {
			return EINVAL
		}
		return ESUCCESS
	}
	reason := "executable memory is refused: only code AOT-compiled into the signed megabinary runs"
	if prot&ProtWrite != 0 {
		reason = "writable and executable (W+X) memory is refused: only code AOT-compiled into the signed megabinary runs"
	}
	errno := EPERM
	if unknown != 0 {
		reason = fmt.Sprintf("unknown protection bits %#x (EINVAL); %s", unknown, reason)
		errno = EINVAL
	}
	p.audit(call, fmt.Sprintf("len=%d prot=%#x", length, prot), "deny", reason)
	return errno
}
