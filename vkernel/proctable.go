package vkernel

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procTable bounds the live processes of a whole tree of vkernel
// processes: a shared memory file (a memfd every process of the tree
// inherits and maps) of slots, one per live process below the top. A
// slot holds the process's host pid; a slot being filled holds its
// starter's pid with reservedBit. Slots are taken and freed with atomic
// compare-and-swap, so no lock spans processes.
//
// A parent frees its child's slot when it reaps it. A process killed
// outright cannot free its children's slots (they die of the parent-death
// signal and are reaped by the host's init), so a full table is swept for
// slots whose pid no longer exists before EAGAIN is answered.
type procTable struct {
	fd    int
	mem   []byte
	slots []atomic.Uint64
}

const reservedBit = 1 << 32

// newProcTable makes a table of n slots.
func newProcTable(n int) (*procTable, error) {
	fd, err := unix.MemfdCreate("vkernel-processes", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("process table: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(n*8)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("process table: %w", err)
	}
	t, err := mapProcTable(fd, n)
	if err != nil {
		unix.Close(fd)
	}
	return t, err
}

// mapProcTable maps an inherited table; the table owns fd.
func mapProcTable(fd, n int) (*procTable, error) {
	if n <= 0 || n > 1<<16 {
		return nil, fmt.Errorf("process table: %d slots", n)
	}
	mem, err := unix.Mmap(fd, 0, n*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("process table: %w", err)
	}
	return &procTable{fd: fd, mem: mem, slots: unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(&mem[0])), n)}, nil
}

func (t *procTable) size() int { return len(t.slots) }

// reserve takes a free slot for a child about to start, or reports false
// when the tree is full.
func (t *procTable) reserve(starter int) (int, bool) {
	for sweep := 0; sweep < 2; sweep++ {
		for i := range t.slots {
			if t.slots[i].CompareAndSwap(0, reservedBit|uint64(uint32(starter))) {
				return i, true
			}
		}
		t.sweep()
	}
	return 0, false
}

// assign puts the started child's pid in its slot.
func (t *procTable) assign(slot, pid int) { t.slots[slot].Store(uint64(uint32(pid))) }

// unreserve frees a slot whose child did not start.
func (t *procTable) unreserve(slot int) { t.slots[slot].Store(0) }

// release frees the slot of pid.
func (t *procTable) release(pid int) {
	for i := range t.slots {
		if t.slots[i].CompareAndSwap(uint64(uint32(pid)), 0) {
			return
		}
	}
}

// sweep frees the slots of processes that no longer exist.
func (t *procTable) sweep() {
	for i := range t.slots {
		v := t.slots[i].Load()
		if v == 0 {
			continue
		}
		if err := unix.Kill(int(uint32(v)), 0); err == unix.ESRCH {
			t.slots[i].CompareAndSwap(v, 0)
		}
	}
}

// has reports whether pid holds a slot: a live process of the tree below
// its top.
func (t *procTable) has(pid int) bool {
	if pid <= 0 {
		return false
	}
	for i := range t.slots {
		if t.slots[i].Load() == uint64(uint32(pid)) {
			return true
		}
	}
	return false
}

func (t *procTable) close() {
	if t == nil {
		return
	}
	unix.Munmap(t.mem)
	unix.Close(t.fd)
}
