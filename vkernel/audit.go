package vkernel

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// AuditRecord is one line of the audit log: a decision the vkernel made.
type AuditRecord struct {
	Time time.Time `json:"time"`
	// Action is what was asked: exec, spawn (an entry that may not start
	// processes asked to), fork, mmap, mprotect, connect, or load
	// (compiled code from the AOT cache that failed its check).
	Action string `json:"action"`
	// Path is the file an exec named, as the caller gave it; for an exec a
	// guest asked for (proc_spawn), the host file its path resolved to.
	Path string `json:"path,omitempty"`
	// GuestPath is the path a guest gave proc_spawn.
	GuestPath string `json:"guest_path,omitempty"`
	// Interpreters, for the spawn of a #! script (GuestPath), are the
	// guest paths of the interpreters its #! line led to, in order; the
	// last is the program that ran (or was refused), which Path and Hash
	// describe.
	Interpreters []string `json:"interpreters,omitempty"`
	// Parent is the entry whose instance called proc_spawn.
	Parent string `json:"parent,omitempty"`
	// Hash is the file's SHA-256, when it was read.
	Hash string `json:"hash,omitempty"`
	// Entry is the manifest entry the exec routed to, or the entry whose
	// instance made the request.
	Entry string `json:"entry,omitempty"`
	// Detail describes a non-exec request, e.g. "len=4096 prot=0x7".
	Detail string `json:"detail,omitempty"`
	// Decision is "allow" or "deny".
	Decision string `json:"decision"`
	// Reason says why a request was denied.
	Reason string `json:"reason,omitempty"`
	// Snapshot is set on an allowed exec that starts from its entry's
	// snapshot (ABI.md, "Snapshots").
	Snapshot bool `json:"snapshot,omitempty"`
	// Peer names who asked for the exec when it came from another
	// process through a service (compat serve): "uid=U gid=G pid=P" of
	// the connecting client, as the kernel reported it (SO_PEERCRED).
	Peer string `json:"peer,omitempty"`
	// Pid is the host pid of the child process an exec or fork started
	// (in the parent's record), or of the child process that made the
	// decision (in the records a child sends its parent's log).
	Pid int `json:"pid,omitempty"`
}

// auditLog writes records as JSON lines. The first write error is kept and
// reported by Kernel.Close, so a lost record is never silent.
type auditLog struct {
	mu  sync.Mutex
	w   io.Writer
	enc *json.Encoder
	err error
	// pid, in a child process, is its host pid, which its records carry.
	pid int
}

func newAuditLog(w io.Writer) *auditLog {
	if w == nil {
		return &auditLog{}
	}
	return &auditLog{w: w, enc: json.NewEncoder(w)}
}

func (a *auditLog) write(r AuditRecord) {
	if a.enc == nil {
		return
	}
	r.Time = time.Now().UTC()
	if r.Pid == 0 {
		r.Pid = a.pid
	}
	a.mu.Lock()
	if err := a.enc.Encode(&r); err != nil && a.err == nil {
		a.err = err
	}
	a.mu.Unlock()
}

// writeLine adds a record a child process wrote (one JSON line) as it is.
func (a *auditLog) writeLine(line []byte) {
	if a.w == nil || len(line) == 0 {
		return
	}
	a.mu.Lock()
	if _, err := a.w.Write(append(append([]byte(nil), line...), '\n')); err != nil && a.err == nil {
		a.err = err
	}
	a.mu.Unlock()
}
