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
	// Action is what was asked: exec, spawn, mmap, mprotect, connect, or
	// load (compiled code from the AOT cache that failed its check).
	Action string `json:"action"`
	// Path is the file an exec named, as the caller gave it; for an exec a
	// guest asked for (proc_spawn), the host file its path resolved to.
	Path string `json:"path,omitempty"`
	// GuestPath is the path a guest gave proc_spawn.
	GuestPath string `json:"guest_path,omitempty"`
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
}

// auditLog writes records as JSON lines. The first write error is kept and
// reported by Kernel.Close, so a lost record is never silent.
type auditLog struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

func newAuditLog(w io.Writer) *auditLog {
	if w == nil {
		return &auditLog{}
	}
	return &auditLog{enc: json.NewEncoder(w)}
}

func (a *auditLog) write(r AuditRecord) {
	if a.enc == nil {
		return
	}
	r.Time = time.Now().UTC()
	a.mu.Lock()
	if err := a.enc.Encode(&r); err != nil && a.err == nil {
		a.err = err
	}
	a.mu.Unlock()
}
