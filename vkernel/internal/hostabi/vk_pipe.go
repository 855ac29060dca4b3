package hostabi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// Rights of the ends of a pipe.
const (
	pipeReadRights  = rightFDRead | rightPollFDReadwrite | rightFDFdstatSetFlags | rightFDFilestatGet
	pipeWriteRights = rightFDWrite | rightPollFDReadwrite | rightFDFdstatSetFlags | rightFDFilestatGet
)

// vkFdPipe is vkernel.fd_pipe(result.fds) -> errno: creates a host pipe
// and writes the read end's fd, then the write end's (two u32). Both are
// blocking for the guest (fd_fdstat_set_flags NONBLOCK makes them answer
// EAGAIN) and usable in poll_oneoff. Preview1 has no FIFO file type: the
// ends report filetype unknown (0). A write with no reader left answers
// EPIPE and sends the writer SIGPIPE. EMFILE, ENFILE, EFAULT.
var vkFdPipe = &hostFunc{
	module: ModuleVkernel, name: "fd_pipe",
	params: []string{"result.fds"}, types: []api.ValueType{i32}, results: []api.ValueType{i32},
	call: func(_ context.Context, p *Process, mod api.Module, s []uint64) Errno {
		b, ok := view(mod.Memory(), uint32(s[0]), 8)
		if !ok {
			return EFAULT
		}
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			return errnoOf(err)
		}
		r, errno := p.fds.insert(&file{filetype: filetypeUnknown, hostFD: fds[0], pipe: true, rights: pipeReadRights})
		if errno != ESUCCESS {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return errno
		}
		w, errno := p.fds.insert(&file{filetype: filetypeUnknown, hostFD: fds[1], pipe: true, rights: pipeWriteRights})
		if errno != ESUCCESS {
			p.fds.remove(r).closeHost()
			unix.Close(fds[1])
			return errno
		}
		put32(b, r)
		put32(b[4:], w)
		return ESUCCESS
	},
}
