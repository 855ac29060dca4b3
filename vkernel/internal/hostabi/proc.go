package hostabi

import (
	"context"
	"syscall"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
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

// procRaise is preview1 proc_raise(sig) -> errno: sends the signal to the
// process itself, as vkernel.proc_kill with its own pid does. EINVAL for a
// signal outside preview1's 1-30 (numbered as preview1 numbers them). (wasi-libc's raise() emulation does not call it;
// the vkposix library's raise calls proc_kill.)
// See https://github.com/WebAssembly/WASI/blob/snapshot-01/phases/snapshot/docs.md#-proc_raisesig-signal---errno
var procRaise = &hostFunc{
	module: ModulePreview1, name: "proc_raise",
	params: []string{"sig"}, types: []api.ValueType{i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, _ api.Module, s []uint64) Errno {
		sig := uint32(s[0])
		if sig == 0 || sig >= uint32(len(preview1Signals)) {
			return EINVAL
		}
		p.Signal(preview1Signals[sig])
		return ESUCCESS
	},
}

// preview1Signals maps preview1's signal numbers, which follow Linux's only
// up to 15, to the host's.
var preview1Signals = [...]syscall.Signal{1: unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGILL, unix.SIGTRAP,
	unix.SIGABRT, unix.SIGBUS, unix.SIGFPE, unix.SIGKILL, unix.SIGUSR1, unix.SIGSEGV, unix.SIGUSR2, unix.SIGPIPE,
	unix.SIGALRM, unix.SIGTERM, unix.SIGCHLD, unix.SIGCONT, unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU,
	unix.SIGURG, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGVTALRM, unix.SIGPROF, unix.SIGWINCH, unix.SIGPOLL, unix.SIGPWR,
	unix.SIGSYS}
