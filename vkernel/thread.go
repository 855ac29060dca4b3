package vkernel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/compat-project/compat/vkernel/internal/hostabi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// Threads (ABI.md, "Threads"): a module built for wasm32-wasi-threads
// imports its memory, shared, as env.memory, imports wasi.thread-spawn and
// exports wasi_thread_start. Each process of it gets a shared memory of
// its own, made from a module that defines and exports only that memory
// (compiled when the megabinary is loaded, like every module), and each
// thread is another instance of the guest's module over it.

// sharedMemory is a module's import of a shared memory: its limits in
// pages.
type sharedMemory struct {
	min, max uint32
}

// threadSpec is a threaded module's: its memory import and the compiled
// module that defines such a memory.
type threadSpec struct {
	mem    sharedMemory
	memory wazero.CompiledModule
}

// memoryImport reads a module's imported memories from its binary. It
// answers the one import the ABI allows, env.memory shared with a
// maximum, or an error naming what else was found; ok is false when the
// module imports no memory.
func memoryImport(wasm []byte) (mem sharedMemory, ok bool, err error) {
	r := bytes.NewReader(wasm)
	var head [8]byte
	if _, err := r.Read(head[:]); err != nil || !bytes.Equal(head[:4], []byte("\x00asm")) {
		return mem, false, errors.New("not a WebAssembly binary")
	}
	for r.Len() > 0 {
		id, err := r.ReadByte()
		if err != nil {
			return mem, false, err
		}
		size, err := binary.ReadUvarint(r)
		if err != nil || size > uint64(r.Len()) {
			return mem, false, errors.New("truncated section")
		}
		body := make([]byte, size)
		_, _ = r.Read(body)
		if id != 2 { // the import section
			continue
		}
		return importedMemory(bytes.NewReader(body))
	}
	return mem, false, nil
}

// importedMemory scans an import section's entries for memories.
func importedMemory(r *bytes.Reader) (mem sharedMemory, ok bool, err error) {
	bad := errors.New("malformed import section")
	count, err := binary.ReadUvarint(r)
	if err != nil {
		return mem, false, bad
	}
	name := func() (string, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > uint64(r.Len()) {
			return "", bad
		}
		b := make([]byte, n)
		_, _ = r.Read(b)
		return string(b), nil
	}
	limits := func() (flags byte, min, max uint64, err error) {
		if flags, err = r.ReadByte(); err != nil {
			return 0, 0, 0, bad
		}
		if min, err = binary.ReadUvarint(r); err != nil {
			return 0, 0, 0, bad
		}
		if flags&1 != 0 {
			if max, err = binary.ReadUvarint(r); err != nil {
				return 0, 0, 0, bad
			}
		}
		return flags, min, max, nil
	}
	for i := uint64(0); i < count; i++ {
		mod, err := name()
		if err != nil {
			return mem, false, err
		}
		field, err := name()
		if err != nil {
			return mem, false, err
		}
		kind, err := r.ReadByte()
		if err != nil {
			return mem, false, bad
		}
		switch kind {
		case 0: // func: a type index
			if _, err := binary.ReadUvarint(r); err != nil {
				return mem, false, bad
			}
		case 1: // table: reftype, limits
			if _, err := r.ReadByte(); err != nil {
				return mem, false, bad
			}
			if _, _, _, err := limits(); err != nil {
				return mem, false, err
			}
		case 2: // memory
			flags, min, max, err := limits()
			if err != nil {
				return mem, false, err
			}
			switch {
			case ok:
				return mem, false, errors.New("imports more than one memory")
			case mod != "env" || field != "memory":
				return mem, false, fmt.Errorf("imports memory %s.%s; a shared memory is imported as env.memory", mod, field)
			case flags&2 == 0:
				return mem, false, fmt.Errorf("imports memory %s.%s not shared; guests define their own memory, or import a shared one", mod, field)
			case flags&4 != 0:
				return mem, false, fmt.Errorf("imports memory %s.%s with 64-bit addresses", mod, field)
			case flags&1 == 0:
				return mem, false, fmt.Errorf("imports shared memory %s.%s without a maximum", mod, field)
			case max > 65536 || min > max:
				return mem, false, fmt.Errorf("imports shared memory %s.%s with limits %d..%d pages (at most 65536)", mod, field, min, max)
			}
			mem, ok = sharedMemory{min: uint32(min), max: uint32(max)}, true
		case 3: // global: valtype, mutability
			if _, err := r.ReadByte(); err != nil {
				return mem, false, bad
			}
			if _, err := r.ReadByte(); err != nil {
				return mem, false, bad
			}
		default:
			return mem, false, fmt.Errorf("imports %s.%s of kind %d", mod, field, kind)
		}
	}
	return mem, ok, nil
}

// memoryModule is the binary of a module that defines a shared memory
// with limits m and exports it as "memory".
func memoryModule(m sharedMemory) []byte {
	var mem []byte
	mem = append(mem, 1, 3) // one memory: a maximum, shared
	mem = binary.AppendUvarint(mem, uint64(m.min))
	mem = binary.AppendUvarint(mem, uint64(m.max))
	exp := append([]byte{1, 6}, "memory"...)
	exp = append(exp, 2, 0) // a memory, index 0
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range []struct {
		id   byte
		body []byte
	}{{5, mem}, {7, exp}} {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out
}

// checkThreadImports checks a module that imports a shared memory: it must
// import thread-spawn and export wasi_thread_start with their signatures,
// and thread-spawn without a shared memory is refused.
func checkThreadImports(cm wazero.CompiledModule, shared bool) error {
	spawn := false
	for _, def := range cm.ImportedFunctions() {
		if mod, name, _ := def.Import(); mod == hostabi.ModuleWasi && name == "thread-spawn" {
			spawn = true
		}
	}
	switch {
	case spawn && !shared:
		return errors.New("imports wasi.thread-spawn without a shared memory (env.memory)")
	case !shared:
		return nil
	}
	start, ok := cm.ExportedFunctions()[hostabi.ThreadStartExport]
	if spawn && !ok {
		return fmt.Errorf("imports wasi.thread-spawn but exports no %s", hostabi.ThreadStartExport)
	}
	if ok && (!sameTypes(start.ParamTypes(), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}) || len(start.ResultTypes()) != 0) {
		return fmt.Errorf("exports %s with signature %s, want (i32,i32)->()", hostabi.ThreadStartExport,
			signature(start.ParamTypes(), start.ResultTypes()))
	}
	return nil
}

// threadedProcess is one process's shared memory and what its instances
// are made under.
type threadedProcess struct {
	memory api.Module
	region *sharedRegion
}

// sharedRegion backs a process's shared memory (wazero's
// experimental.MemoryAllocator): one anonymous mapping of the memory's
// maximum, readable and writable, outside the Go heap. Without an
// allocator wazero makes a shared memory with make([]byte, min, max): the
// Go heap then holds the whole maximum (python.wasm's 1 GiB), and when
// that span reuses pages the heap had freed (a child process frees what
// loading the megabinary took, before its exec) the runtime zeroes all of
// it, which made a child of the threaded python commit 1.1 GB and spend
// seconds before its first instruction. Fresh anonymous pages are zero
// already: only the pages the guest writes are committed.
//
// The slice given to wazero has the whole mapping as its capacity, as
// make's had, and no page of it is ever inaccessible: wazero calls Free,
// and forgets the allocator, when any instance whose memory it is closes
// (every thread's instance imports it), and grows the memory within its
// capacity from then on. Free therefore does nothing; release unmaps the
// region, once the memory module is closed and no thread runs
// (threadedProcess.close). The guest's accesses are bounds-checked
// against the memory's current size, not by page protection.
type sharedRegion struct{ region []byte }

// Allocate implements experimental.MemoryAllocator.
func (m *sharedRegion) Allocate(capacity, maxBytes uint64) experimental.LinearMemory {
	if m.region != nil {
		panic("vkernel: a process has one shared memory")
	}
	region, err := unix.Mmap(-1, 0, int(maxBytes), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		panic(fmt.Errorf("vkernel: reserving %d bytes of shared memory: %w", maxBytes, err))
	}
	m.region = region
	return m
}

// Reallocate implements experimental.LinearMemory: the first size bytes,
// at the same address always (a shared memory never moves).
func (m *sharedRegion) Reallocate(size uint64) []byte {
	if size > uint64(len(m.region)) {
		return nil
	}
	return m.region[:size:len(m.region)]
}

// Free implements experimental.LinearMemory: it leaves the region mapped
// (see sharedRegion).
func (m *sharedRegion) Free() {}

// release unmaps the region.
func (m *sharedRegion) release() {
	if m.region != nil {
		_ = unix.Munmap(m.region)
		m.region = nil
	}
}

// newThreadedProcess instantiates the route's shared memory for one
// process, and the hostabi.Threads its process is made with.
func (k *Kernel) newThreadedProcess(ctx context.Context, r *route) (*threadedProcess, *hostabi.Threads, error) {
	region := &sharedRegion{}
	mem, err := k.runtime.InstantiateModule(experimental.WithMemoryAllocator(ctx, region), r.threads.memory, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		region.release()
		return nil, nil, fmt.Errorf("shared memory of %d..%d pages: %w", r.threads.mem.min, r.threads.mem.max, err)
	}
	return &threadedProcess{memory: mem, region: region}, &hostabi.Threads{
		Runtime: k.runtime, Module: r.module, Memory: mem, Max: r.entry.Resources.Threads,
	}, nil
}

// close closes the shared memory and unmaps it: only when no instance over
// it runs any more.
func (tp *threadedProcess) close() {
	tp.memory.Close(context.Background())
	tp.region.release()
}

// resolve gives every instance of the process the shared memory as
// env.memory.
func (tp *threadedProcess) resolve(ctx context.Context) context.Context {
	return experimental.WithImportResolver(ctx, func(name string) api.Module {
		if name == "env" {
			return tp.memory
		}
		return nil
	})
}

// runThreaded runs a threaded route's main instance: in a goroutine, so
// that the exec ends when a thread ends the process (proc_exit, a trap)
// even while the main instance waits on the shared memory.
func (k *Kernel) runThreaded(ctx context.Context, r *route, proc *hostabi.Process, tp *threadedProcess) (uint32, error) {
	ctx, cancel := context.WithCancel(tp.resolve(ctx))
	defer cancel()
	mod, err := k.runtime.InstantiateModule(ctx, r.module, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		tp.close()
		return exitStatus(ctx, err)
	}
	proc.StartThreads(ctx, cancel, mod)
	type outcome struct {
		code uint32
		err  error
	}
	done := make(chan outcome, 1)
	mainDone := make(chan struct{})
	go func() {
		defer close(mainDone)
		settle()
		_, err := mod.ExportedFunction(r.entry.StartExport()).Call(ctx)
		code, err := exitStatus(ctx, err)
		done <- outcome{code, err}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-proc.Ended():
		// A thread ended the process: the main instance stops at its
		// next host call (or loop header), woken if it waits.
	case <-ctx.Done():
		out.err = fmt.Errorf("stopped: %w", context.Cause(ctx))
	}
	if code, trap, ok := proc.ThreadExit(); ok {
		out = outcome{code, trap}
	}
	if proc.EndThreads(out.code, mainDone) {
		mod.Close(context.Background())
		tp.close()
	}
	return out.code, out.err
}
