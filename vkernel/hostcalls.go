package vkernel

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/compat-project/compat/vkernel/internal/hostabi"
	"golang.org/x/sys/unix"
)

// EnvHostCallsDir names the directory a kernel writes its execs' host call
// counts to when Options.HostCallsDir is empty. A runner sets it on the
// processes of one unit of a suite (compat exec, the shims, the harnesses
// that start them), and every kernel among them and their child processes
// writes there.
const EnvHostCallsDir = "COMPAT_HOSTCALLS_DIR"

// HostFunctions lists every host function the vkernel gives guests, as
// "module.name" (such as "wasi_snapshot_preview1.fd_write" or
// "vkernel.proc_spawn"), in the ABI's order: read from the host modules'
// definitions, so a coverage map's list of functions is the surface
// itself.
func HostFunctions() []string {
	fs := hostabi.Functions()
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Module + "." + f.Name
	}
	return names
}

// HostCallsFile is what one exec leaves in the host calls directory: how
// often its guest called each host function it called.
type HostCallsFile struct {
	// Entry is the manifest entry that ran.
	Entry string `json:"entry"`
	// Pid is the host process the guest ran in.
	Pid int `json:"pid"`
	// Calls maps "module.name" (HostFunctions) to the guest's calls of
	// it; functions it did not call are left out.
	Calls map[string]uint64 `json:"calls"`
}

// A host calls file is, in this order: hostCallsMagic; the number n of
// counters (little-endian uint64); the n counters (uint64 in the host's
// byte order, for it alone reads them: the guest's process counts in them
// while it runs, through a shared mapping of the file); then JSON naming
// the exec and the counters' functions (hostCallsMeta). Its name ends in
// hostCallsSuffix once it is complete but for the counts, which are
// correct whenever the process is not running, however it ended.
const (
	hostCallsMagic  = "VKHCALL1"
	hostCallsSuffix = ".hostcalls"
)

// hostCallsMeta is the JSON after the counters.
type hostCallsMeta struct {
	Entry     string   `json:"entry"`
	Pid       int      `json:"pid"`
	Functions []string `json:"functions"`
}

// hostCalls is an exec's host calls file, mapped.
type hostCalls struct {
	name   string
	mapped []byte
	// counts are the counters within mapped, one per host function in
	// hostabi.Functions' order.
	counts []uint64
}

// mapHostCalls makes a new host calls file in dir for an exec of entry,
// with every counter zero, and maps its counters.
func mapHostCalls(dir, entry string) (*hostCalls, error) {
	names := HostFunctions()
	meta, err := json.Marshal(hostCallsMeta{Entry: entry, Pid: os.Getpid(), Functions: names})
	if err != nil {
		return nil, err
	}
	size := 16 + 8*len(names)
	data := make([]byte, size, size+len(meta))
	copy(data, hostCallsMagic)
	binary.LittleEndian.PutUint64(data[8:], uint64(len(names)))
	data = append(data, meta...)
	f, err := os.CreateTemp(dir, ".making-*")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	defer f.Close()
	fail := func(err error) (*hostCalls, error) {
		os.Remove(tmp)
		return nil, fmt.Errorf("host calls file %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	mapped, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail(err)
	}
	// The temporary name is already unique in dir; the final one keeps
	// its random part. Readers see the file only once it is whole.
	final := filepath.Join(dir, strings.TrimPrefix(filepath.Base(tmp), ".making-")+hostCallsSuffix)
	if err := os.Rename(tmp, final); err != nil {
		unix.Munmap(mapped)
		return fail(err)
	}
	// The mapping is page-aligned, so the counters at offset 16 are
	// aligned for uint64.
	counts := unsafe.Slice((*uint64)(unsafe.Pointer(&mapped[16])), len(names))
	return &hostCalls{name: final, mapped: mapped, counts: counts}, nil
}

// close unmaps the counters; the file keeps them.
func (h *hostCalls) close() {
	h.counts = nil
	unix.Munmap(h.mapped)
}

// WriteHostCalls writes a complete host calls file to dir, as an exec of
// entry whose guest made counts calls (indexed as HostFunctions lists the
// functions) leaves it: for programs that count host calls of their own,
// and for tests.
func WriteHostCalls(dir, entry string, counts []uint64) error {
	if len(counts) != len(HostFunctions()) {
		return fmt.Errorf("%d counts for %d host functions", len(counts), len(HostFunctions()))
	}
	h, err := mapHostCalls(dir, entry)
	if err != nil {
		return err
	}
	copy(h.counts, counts)
	h.close()
	return nil
}

// ReadHostCalls reads every host calls file the execs left in dir and
// returns them; files still being made are not read, and the counts of
// a process still running are those so far. A file that cannot be read or
// parsed is an error naming it; the others are returned all the same.
func ReadHostCalls(dir string) ([]HostCallsFile, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*"+hostCallsSuffix))
	if err != nil {
		return nil, err
	}
	var out []HostCallsFile
	var errs []error
	for _, name := range names {
		rec, err := readHostCalls(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("host calls file %s: %w", name, err))
			continue
		}
		out = append(out, rec)
	}
	return out, errors.Join(errs...)
}

func readHostCalls(name string) (HostCallsFile, error) {
	var rec HostCallsFile
	data, err := os.ReadFile(name)
	if err != nil {
		return rec, err
	}
	if len(data) < 16 || !bytes.Equal(data[:8], []byte(hostCallsMagic)) {
		return rec, errors.New("not a host calls file")
	}
	n := binary.LittleEndian.Uint64(data[8:])
	if n > uint64(len(data)-16)/8 {
		return rec, fmt.Errorf("%d counters in %d bytes", n, len(data))
	}
	end := 16 + 8*int(n)
	var meta hostCallsMeta
	if err := json.Unmarshal(data[end:], &meta); err != nil {
		return rec, err
	}
	if len(meta.Functions) != int(n) {
		return rec, fmt.Errorf("%d counters for %d functions", n, len(meta.Functions))
	}
	rec = HostCallsFile{Entry: meta.Entry, Pid: meta.Pid, Calls: map[string]uint64{}}
	for i, f := range meta.Functions {
		if c := binary.NativeEndian.Uint64(data[16+8*i:]); c > 0 {
			rec.Calls[f] += c
		}
	}
	return rec, nil
}
