package vkernel

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/compat-project/compat/vkernel/internal/hostabi"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// forkMemory backs a child process's linear memory (wazero's
// experimental.MemoryAllocator): one reservation of the memory's largest
// size, made accessible as the guest grows it, so that a fork parent's
// snapshot can be mapped over it in place, copy-on-write. It keeps the
// memory out of the Go heap, whose growth would start collections.
type forkMemory struct {
	region []byte // the whole reservation
	size   int    // bytes accessible
	// image, when set, is mapped over the memory's start when it is
	// first made accessible (memimage.go).
	image *memImage
}

func (m *forkMemory) Allocate(capacity, maxBytes uint64) experimental.LinearMemory {
	if m.region != nil {
		panic("vkernel: an instance has one memory")
	}
	if maxBytes == 0 || maxBytes > 1<<32 {
		maxBytes = 1 << 32
	}
	region, err := unix.Mmap(-1, 0, int(maxBytes), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		panic(fmt.Errorf("vkernel: reserving %d bytes of linear memory: %w", maxBytes, err))
	}
	m.region = region
	return m
}

// Reallocate makes the first size bytes accessible.
func (m *forkMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.region)) {
		return nil
	}
	if m.image != nil && m.size == 0 {
		if int(size) < m.image.size || m.mapImage() != nil {
			return nil
		}
		m.size = m.image.size
	}
	if int(size) > m.size {
		if err := unix.Mprotect(m.region[m.size:size], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return nil
		}
		m.size = int(size)
	}
	return m.region[:size:size]
}

func (m *forkMemory) Free() {
	if m.region != nil {
		unix.Munmap(m.region)
		m.region = nil
	}
}

// mapSnapshot replaces the first size bytes of the memory with the
// parent's snapshot in the memfd fd, mapped privately: the child reads the
// parent's pages and copies one only when it writes it.
func (m *forkMemory) mapSnapshot(fd int, size uint64) error {
	if size == 0 {
		return nil
	}
	if size > uint64(m.size) {
		return fmt.Errorf("snapshot of %d bytes, memory of %d", size, m.size)
	}
	_, err := unix.MmapPtr(fd, 0, unsafe.Pointer(&m.region[0]), uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED)
	return err
}

// runFork is a forked child's guest: a new instance of the entry's module
// (pre, when not nil, instantiated ahead) whose memory is the parent's
// snapshot and whose __stack_pointer is the parent's, started at
// vkernel_fork_child(fn, arg) instead of _start.
func (k *Kernel) runFork(ctx context.Context, r *route, fs *forkSpec, pre *instance) (uint32, error) {
	own, err := k.ownModule(ctx, r)
	if err != nil {
		return 0, err
	}
	if pre != nil && pre.module != own {
		// Made ahead from the entry's snapshot: a fork copies its
		// parent's memory into an instance of the entry's own module.
		pre.close()
		pre = nil
	}
	if pre == nil {
		if pre, err = k.instantiate(ctx, r, own); err != nil {
			return exitStatus(ctx, err)
		}
	}
	defer pre.close()
	mod, mem := pre.mod, pre.mem
	m := mod.Memory()
	if m == nil {
		return 0, fmt.Errorf("fork: the module has no memory")
	}
	if want := uint32(fs.MemorySize / 65536); want > m.Size()/65536 {
		if _, ok := m.Grow(want - m.Size()/65536); !ok {
			return 0, fmt.Errorf("fork: cannot grow memory to %d pages", want)
		}
	}
	if err := mem.mapSnapshot(fs.MemoryFD, fs.MemorySize); err != nil {
		return 0, fmt.Errorf("fork: mapping the parent's memory: %w", err)
	}
	sp, ok := mod.ExportedGlobal("__stack_pointer").(api.MutableGlobal)
	if !ok {
		return 0, fmt.Errorf("fork: the module exports no mutable __stack_pointer")
	}
	sp.Set(fs.StackPointer)
	fn := mod.ExportedFunction(hostabi.ForkChildExport)
	if fn == nil {
		return 0, fmt.Errorf("fork: the module exports no %s", hostabi.ForkChildExport)
	}
	settle()
	_, err = fn.Call(ctx, uint64(fs.Fn), uint64(fs.Arg))
	return exitStatus(ctx, err)
}
