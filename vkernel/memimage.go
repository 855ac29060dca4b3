package vkernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/compat-project/compat/vkernel/internal/aotcache"
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
// memory image and the module without data: split from the signed bytes
// (wasmsnap.SplitData), or read from the kernel's split cache, where a
// split of this module made before is kept sealed (splitCache).
func (k *Kernel) compileSnapshot(ctx context.Context, digest string) (wazero.CompiledModule, *memImage, error) {
	s, err := k.cachedSplit(digest)
	if err != nil {
		return nil, nil, err
	}
	if s == nil {
		if s, err = splitModule(k.file.Module(digest)); err != nil {
			return nil, nil, fmt.Errorf("snapshot module %s: %w", short(digest), err)
		}
		k.storeSplit(digest, s)
	}
	fd, err := imageMemfd(s.size, s.runs)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot module %s: memory image: %w", short(digest), err)
	}
	img := &memImage{fd: fd, size: s.size}
	cm, err := k.compileBytes(ctx, digest, s.stripped, s.digest)
	if err != nil {
		img.close()
		return nil, nil, err
	}
	return cm, img, nil
}

// The split cache. Splitting python's snapshot module (parsing it,
// laying its data out as its memory, writing the module again without
// it, hashing that) cost every exec about 0.15 s. A kernel with a cache
// directory keeps each split it makes, in CACHE/aot/wazero-VERSION/split,
// one file per signed module digest, sealed with the AOT cache's host key
// (aotcache.SealFile) and bound to the module's digest and the wazero
// version, and written atomically. It holds the module without data, its
// digest, and the memory image's size and non-zero pages. What runs is
// still what was signed: a split is made only from the signed bytes (the
// megabinary's verified module), and a kernel uses a cached one only when
// its seal opens for that digest, which no one without the host key can
// make for other bytes; the code compiled from the stripped module is
// sealed to the stripped module's digest in its turn (compileBytes). A
// cached split that fails its check fails the load (*AOTError, exit 2,
// an audit record), as a tampered AOT entry does: it is never silently
// made again.

// splitKind names the format of a sealed split.
const splitKind = "vkernel snapshot split v1"

// imagePage is the granularity at which a memory image's zero pages are
// left out (holes in its memfd).
const imagePage = 4096

// split is a snapshot module split into its memory image and the module
// without data.
type split struct {
	stripped []byte
	digest   string // the stripped module's SHA-256, hex
	size     int    // the image's size
	runs     []imageRun
}

// imageRun is a run of the image's pages that are not all zero.
type imageRun struct {
	off  int
	data []byte
}

// splitModule splits a snapshot module's bytes.
func splitModule(b []byte) (*split, error) {
	m, err := wasmsnap.Parse(b)
	if err != nil {
		return nil, err
	}
	image, stripped, err := m.SplitData()
	if err != nil {
		return nil, err
	}
	return &split{stripped: stripped, digest: megabinary.SHA256(stripped), size: len(image), runs: nonZeroRuns(image)}, nil
}

// nonZeroRuns returns the runs of image's pages that hold a non-zero byte.
func nonZeroRuns(image []byte) []imageRun {
	var runs []imageRun
	zero := make([]byte, imagePage)
	start := -1
	for off := 0; off < len(image); off += imagePage {
		page := image[off:min(off+imagePage, len(image))]
		if !bytes.Equal(page, zero[:len(page)]) {
			if start < 0 {
				start = off
			}
			continue
		}
		if start >= 0 {
			runs = append(runs, imageRun{off: start, data: image[start:off]})
			start = -1
		}
	}
	if start >= 0 {
		runs = append(runs, imageRun{off: start, data: image[start:]})
	}
	return runs
}

// imageMemfd returns a memfd of size bytes holding the runs, zero
// elsewhere (holes: no memory is spent on the zero pages).
func imageMemfd(size int, runs []imageRun) (int, error) {
	fd, err := unix.MemfdCreate("vkernel-memory-image", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, err
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return -1, err
	}
	for _, r := range runs {
		if err := pwriteAll(fd, r.data, int64(r.off)); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// encode is the split's sealed body: the stripped module's digest (32
// bytes), its length (8) and bytes, the image's size (8), the number of
// runs (8), then each run's offset (8), length (8) and bytes; integers
// little-endian.
func (s *split) encode() []byte {
	n := 32 + 8 + len(s.stripped) + 16
	for _, r := range s.runs {
		n += 16 + len(r.data)
	}
	b := make([]byte, 0, n)
	sum, _ := hex.DecodeString(s.digest)
	b = append(b, sum...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s.stripped)))
	b = append(b, s.stripped...)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.size))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s.runs)))
	for _, r := range s.runs {
		b = binary.LittleEndian.AppendUint64(b, uint64(r.off))
		b = binary.LittleEndian.AppendUint64(b, uint64(len(r.data)))
		b = append(b, r.data...)
	}
	return b
}

// decodeSplit reads a sealed body that encode wrote (its slices point
// into b). The seal was checked before: a body that does not parse was
// sealed by a kernel with another format, and is an error.
func decodeSplit(b []byte) (*split, error) {
	bad := errors.New("sealed split does not parse")
	u64 := func() (int, bool) {
		if len(b) < 8 {
			return 0, false
		}
		v := binary.LittleEndian.Uint64(b)
		b = b[8:]
		return int(v), v <= 1<<40
	}
	if len(b) < 32 {
		return nil, bad
	}
	s := &split{digest: hex.EncodeToString(b[:32])}
	b = b[32:]
	n, ok := u64()
	if !ok || n > len(b) {
		return nil, bad
	}
	s.stripped, b = b[:n], b[n:]
	if s.size, ok = u64(); !ok {
		return nil, bad
	}
	runs, ok := u64()
	if !ok {
		return nil, bad
	}
	for i := 0; i < runs; i++ {
		off, ok1 := u64()
		n, ok2 := u64()
		if !ok1 || !ok2 || n > len(b) || off+n > s.size {
			return nil, bad
		}
		s.runs = append(s.runs, imageRun{off: off, data: b[:n]})
		b = b[n:]
	}
	if len(b) != 0 {
		return nil, bad
	}
	return s, nil
}

// splitPath is the cache file of the split of the module of that digest,
// or "" when the kernel has no cache.
func (k *Kernel) splitPath(digest string) string {
	if k.splitDir == "" {
		return ""
	}
	return filepath.Join(k.splitDir, digest+".split")
}

// cachedSplit returns the cached split of the module of that digest, nil
// when there is none, or an *AOTError (audited) when the file there fails
// its check.
func (k *Kernel) cachedSplit(digest string) (*split, error) {
	path := k.splitPath(digest)
	if path == "" {
		return nil, nil
	}
	data, err := aotcache.ReadSealed(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	b := aotcache.Binding{Module: digest, Wazero: WazeroVersion()}
	var s *split
	if err == nil {
		var body []byte
		if body, err = aotcache.OpenFile(k.hostKey, splitKind, b, data); err == nil {
			s, err = decodeSplit(body)
		}
	}
	if err != nil {
		var names []string
		for _, e := range k.file.Manifest.Entries {
			if e.Snapshot != nil && e.Snapshot.Module == digest {
				names = append(names, e.Name)
			}
		}
		e := &AOTError{Entry: strings.Join(names, ","), Module: digest, Path: path, Reason: "snapshot split: " + err.Error()}
		if data != nil {
			sum := sha256.Sum256(data)
			e.Hash = hex.EncodeToString(sum[:])
		}
		k.audit.write(AuditRecord{Action: "load", Path: e.Path, Hash: e.Hash, Entry: e.Entry, Decision: "deny", Reason: e.Reason})
		return nil, e
	}
	k.splitsCached.Add(1)
	return s, nil
}

// storeSplit keeps a split in the cache. A split that cannot be written
// is made again by the next kernel: the error is said on stderr only.
func (k *Kernel) storeSplit(digest string, s *split) {
	path := k.splitPath(digest)
	if path == "" {
		return
	}
	data := aotcache.SealFile(k.hostKey, splitKind, aotcache.Binding{Module: digest, Wazero: WazeroVersion()}, s.encode())
	if err := aotcache.WriteSealed(path, data); err != nil {
		fmt.Fprintf(os.Stderr, "vkernel: keeping the split of snapshot module %s: %v\n", short(digest), err)
		return
	}
	k.splitsMade.Add(1)
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
