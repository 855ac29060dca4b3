package hostabi

import (
	"context"
	"fmt"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// session is one instance of the trampoline guest with its process, for
// tests that make several host calls in a row.
type session struct {
	t   testing.TB
	p   *Process
	mod api.Module
	ctx context.Context
	idx map[string]int
}

// open instantiates the trampoline guest under a process made from cfg
// (the mounts default to the harness root at /).
func (h *harness) open(t testing.TB, cfg Config) *session {
	t.Helper()
	if cfg.Mounts == nil {
		cfg.Mounts = []Mount{{Guest: "/", Host: h.root}}
	}
	p, err := NewProcess(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx := WithProcess(context.Background(), p)
	mod, err := h.r.InstantiateModule(ctx, h.compiled, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close(context.Background()) })
	s := &session{t: t, p: p, mod: mod, ctx: ctx, idx: map[string]int{}}
	for i, f := range functions() {
		s.idx[f.module+"."+f.name] = i
	}
	return s
}

// call calls a host function ("vkernel.fd_pipe") and returns its errno.
func (s *session) call(name string, args ...uint64) (Errno, error) {
	s.t.Helper()
	i, ok := s.idx[name]
	if !ok {
		s.t.Fatalf("no host function %s", name)
	}
	res, err := s.mod.ExportedFunction(fmt.Sprintf("t%d", i)).Call(s.ctx, args...)
	if len(res) > 0 {
		return Errno(res[0]), err
	}
	return 0, err
}

// must calls and fails the test unless the call succeeds.
func (s *session) must(name string, args ...uint64) {
	s.t.Helper()
	if errno, err := s.call(name, args...); errno != ESUCCESS || err != nil {
		s.t.Fatalf("%s%v: errno %d, %v", name, args, errno, err)
	}
}

func (s *session) u32(off uint32) uint32 {
	v, ok := s.mod.Memory().ReadUint32Le(off)
	if !ok {
		s.t.Fatalf("read at %d", off)
	}
	return v
}

func (s *session) u64(off uint32) uint64 {
	v, ok := s.mod.Memory().ReadUint64Le(off)
	if !ok {
		s.t.Fatalf("read at %d", off)
	}
	return v
}

func (s *session) write(off uint32, b []byte) {
	if !s.mod.Memory().Write(off, b) {
		s.t.Fatalf("write at %d", off)
	}
}

// iovec writes one iovec at off pointing to buf (len n) and returns off.
func (s *session) iovec(off, buf, n uint32) uint64 {
	s.mod.Memory().WriteUint32Le(off, buf)
	s.mod.Memory().WriteUint32Le(off+4, n)
	return uint64(off)
}
