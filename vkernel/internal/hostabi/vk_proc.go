package hostabi

import (
	"context"
	"path"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/sys/unix"
)

// vkProcSpawn is vkernel.proc_spawn(path, path_len, argv, argv_len,
// result.status) -> errno: runs the file at the guest path through the
// vkernel's exec, to completion, with the caller's stdio and mounts, and
// writes its exit status. argv holds NUL-separated arguments (argv[0]
// first). The file is routed by its SHA-256 like any exec: a file the guest
// wrote itself is not in the signed manifest and is refused with EACCES
// (and an audit record), so a guest cannot run code of its own making.
// EACCES also when the entry may not spawn; ENOENT, ENOEXEC, EFAULT.
var vkProcSpawn = &hostFunc{
	module: ModuleVkernel, name: "proc_spawn",
	params: []string{"path", "path_len", "argv", "argv_len", "result.status"}, types: []api.ValueType{i32, i32, i32, i32, i32}, results: []api.ValueType{i32},
	call: func(ctx context.Context, p *Process, mod api.Module, s []uint64) Errno {
		name, errno := readString(mod.Memory(), uint32(s[0]), uint32(s[1]))
		if errno != ESUCCESS {
			return errno
		}
		raw, ok := view(mod.Memory(), uint32(s[2]), uint32(s[3]))
		if !ok {
			return EFAULT
		}
		if _, ok := view(mod.Memory(), uint32(s[4]), 4); !ok {
			return EFAULT
		}
		args := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
		if p.hooks.Spawn == nil {
			p.audit("spawn", name, "deny", "this entry may not exec other programs")
			return EACCES
		}
		t, errno := p.guestPath(name)
		if errno != ESUCCESS {
			return errno
		}
		fd, err := t.open(unix.O_PATH, 0)
		if err != nil {
			return errnoOf(err)
		}
		defer unix.Close(fd)
		// The fd was resolved inside the mount; the exec opens and hashes
		// that same inode through its /proc link.
		status, errno := p.hooks.Spawn(ctx, name, "/proc/self/fd/"+strconv.Itoa(fd), args)
		if errno != ESUCCESS {
			return errno
		}
		return putU32(mod.Memory(), uint32(s[4]), status)
	},
}

// guestPath resolves an absolute guest path to the mount with the longest
// matching guest prefix.
func (p *Process) guestPath(name string) (target, Errno) {
	if !path.IsAbs(name) {
		return target{}, EINVAL
	}
	name = path.Clean(name)
	var best *mount
	for _, m := range p.mounts {
		if (m.guest == "/" || name == m.guest || strings.HasPrefix(name, m.guest+"/")) && (best == nil || len(m.guest) > len(best.guest)) {
			best = m
		}
	}
	if best == nil {
		return target{}, ENOENT
	}
	return target{mount: best, rel: JoinInMount(".", strings.TrimPrefix(name, best.guest))}, ESUCCESS
}
