package hostabi

import "fmt"

// Residue lists what of the process's host state a snapshot of its guest
// (linear memory and globals, vkernel/ABI.md "Snapshots") would not carry
// to a process started from it: fds beyond stdio and the preopened
// mounts, child processes, an armed interval timer, saved setjmp points.
// A process started from a snapshot has stdio and its mounts' preopens at
// the same numbers, and nothing else; signal dispositions are the guest's
// to tell its new host again. Empty means the state can be captured.
func (p *Process) Residue() []string {
	var out []string
	for fd, f := range p.fds.files {
		if f == nil {
			continue
		}
		switch {
		case fd <= 2:
			// stdio: the new process has its own at the same numbers.
		case f.preopen != "" && fd-3 < len(p.mounts) && f.mount == p.mounts[fd-3] && f.rel == ".":
			// a mount's preopen, at the number it gets in every process.
		default:
			out = append(out, fmt.Sprintf("fd %d is open (%s)", fd, describeFile(f)))
		}
	}
	if n := len(p.kids.pids()); n > 0 {
		out = append(out, fmt.Sprintf("%d child process(es) are running", n))
	}
	if p.timer.armed() {
		out = append(out, "an interval timer is armed")
	}
	if len(p.jumps) > 0 {
		out = append(out, fmt.Sprintf("%d setjmp point(s) are saved", len(p.jumps)))
	}
	return out
}

// describeFile names an fd's kind for Residue.
func describeFile(f *file) string {
	switch {
	case f.mount != nil && f.filetype == filetypeDirectory:
		return "a directory under " + f.mount.guest
	case f.mount != nil:
		return "a file under " + f.mount.guest
	case f.pipe:
		return "a pipe"
	case f.isSocket():
		return "a socket"
	}
	return fmt.Sprintf("file type %d", f.filetype)
}

// armed reports whether the timer is set to fire.
func (t *itimer) armed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.timer != nil
}
