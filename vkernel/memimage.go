package vkernel

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/compat-project/compat/vkernel/internal/wasmsnap"
	"github.com/compat-project/compat/vkernel/megabinary"
	"github.com/tetratelabs/wazero"
	"golang.org/x/sys/unix"
)

// Copy-on-write memory images. An entry's snapshot module (snapshot.go)
// holds an initialised program's memory as data segments, which wazero
// copies into every new instance: for python.wasm, megabytes written per
// start, and as many private pages per instance. A kernel that loads a
// snapshot module instead splits it (wasmsnap.SplitData) into its memory
// image, kept once in a memfd, and the module without its data, which it
// compiles (its code sealed in the AOT cache to its own digest, as any
// module the kernel derives from a signed one). Each instance's linear
// memory (forkMemory) maps the image privately: a start costs the page
// faults of the pages the guest touches, a page is copied only when
// written, and the instances of one process share the pages they only
// read.

// memImage is a snapshot module's memory image.
type memImage struct {
	fd   int
	size int
}

func (m *memImage) close() {
	if m.fd >= 0 {
		unix.Close(m.fd)
		m.fd = -1
	}
}

// compileSnapshot loads the stored snapshot module of that digest as its
// memory image and the module without data.
func (k *Kernel) compileSnapshot(ctx context.Context, digest string) (wazero.CompiledModule, *memImage, error) {
	m, err := wasmsnap.Parse(k.file.Module(digest))
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot module %s: %w", short(digest), err)
	}
	image, stripped, err := m.SplitData()
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot module %s: %w", short(digest), err)
	}
	fd, err := memfdWith("vkernel-memory-image", image)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot module %s: memory image: %w", short(digest), err)
	}
	img := &memImage{fd: fd, size: len(image)}
	cm, err := k.compileBytes(ctx, digest, stripped, megabinary.SHA256(stripped))
	if err != nil {
		img.close()
		return nil, nil, err
	}
	return cm, img, nil
}

// mapImage maps the image over the start of the memory's reservation,
// privately, readable and writable.
func (m *forkMemory) mapImage() error {
	if m.image.size == 0 {
		return nil
	}
	_, err := unix.MmapPtr(m.image.fd, 0, unsafe.Pointer(&m.region[0]), uintptr(m.image.size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED)
	return err
}
