package vkernel

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compat-project/compat/vkernel/internal/hostabi"
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

// HostCallsFile is what one exec writes to the host calls directory: how
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

// hostCallsSuffix ends the name of every finished file; a file being
// written has another name until it is complete.
const hostCallsSuffix = ".hostcalls.json"

// WriteHostCalls writes counts (indexed as HostFunctions lists the
// functions) to a new file in dir, named uniquely, complete or not at
// all: it is written under a temporary name and renamed, so that a reader
// of the directory never sees half a file.
func WriteHostCalls(dir, entry string, counts []uint64) error {
	names := HostFunctions()
	if counts != nil && len(counts) != len(names) {
		return fmt.Errorf("%d counts for %d host functions", len(counts), len(names))
	}
	rec := HostCallsFile{Entry: entry, Pid: os.Getpid(), Calls: map[string]uint64{}}
	for i, n := range counts {
		if n > 0 {
			rec.Calls[names[i]] = n
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".writing-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	// The temporary name is already unique in dir; the final one keeps
	// its random part.
	final := filepath.Join(dir, strings.TrimPrefix(filepath.Base(tmp), ".writing-")+hostCallsSuffix)
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// ReadHostCalls reads every file the execs wrote to dir (WriteHostCalls)
// and returns them; files still being written are not read. An unreadable
// or malformed file is an error naming it.
func ReadHostCalls(dir string) ([]HostCallsFile, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*"+hostCallsSuffix))
	if err != nil {
		return nil, err
	}
	var out []HostCallsFile
	var errs []error
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var rec HostCallsFile
		if err := json.Unmarshal(data, &rec); err != nil {
			errs = append(errs, fmt.Errorf("host calls file %s: %w", name, err))
			continue
		}
		out = append(out, rec)
	}
	return out, errors.Join(errs...)
}
