package megabinary

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Spec is the input of a build: the entries of a megabinary, each naming
// its module by file. It is read from JSON (see LoadSpec); relative file
// names are relative to the spec file.
type Spec struct {
	Entries []SpecEntry `json:"entries"`
}

// SpecEntry is one entry of a Spec.
type SpecEntry struct {
	// Name, Paths, Export, Args, Env and Resources are copied to the entry.
	Name      string    `json:"name"`
	Paths     []string  `json:"paths,omitempty"`
	Export    string    `json:"export,omitempty"`
	Args      []string  `json:"args,omitempty"`
	Env       []string  `json:"env,omitempty"`
	Resources Resources `json:"resources"`
	// Wasm is the module file. Its own SHA-256 routes to the entry, unless
	// an earlier entry has the same module: entries can share a module (it
	// is stored once), but a hash routes to one entry only, so the later
	// entries are reached through their aliases.
	Wasm string `json:"wasm"`
	// AliasFiles are other executables (e.g. the native Debian binary) whose
	// SHA-256 also routes to the entry. A missing file is an error.
	AliasFiles []string `json:"alias_files,omitempty"`
	// AliasHashes are SHA-256 digests that route to the entry, for files not
	// at hand when building.
	AliasHashes []string `json:"alias_hashes,omitempty"`
	// Snapshot, when set, asks for a snapshot start of the entry, made
	// when the megabinary is built (vkernel.AddSnapshot; Build leaves it
	// to the caller, which runs the module).
	Snapshot *SpecSnapshot `json:"snapshot,omitempty"`
}

// SpecSnapshot says how to make an entry's snapshot (Snapshot): the
// functions, and what the capture runs with. Mounts name host directories
// (relative to the spec file), which the megabinary does not record.
type SpecSnapshot struct {
	Init   string      `json:"init"`
	Export string      `json:"export"`
	Form   string      `json:"form"`
	Argv0  string      `json:"argv0"`
	Args   []string    `json:"args,omitempty"`
	Env    []string    `json:"env,omitempty"`
	Mounts []SpecMount `json:"mounts,omitempty"`
	// Cwd, when not empty, is the guest directory the capture starts in.
	Cwd string `json:"cwd,omitempty"`
}

// SpecMount is a mount of the snapshot's capture: a host directory at a
// guest path.
type SpecMount struct {
	Guest    string `json:"guest"`
	Host     string `json:"host"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// LoadSpec reads a JSON build spec, rejecting unknown fields and anything
// after the spec object, and resolves its relative file names against the
// spec's directory.
func LoadSpec(name string) (*Spec, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := decodeStrict(data, &s); err != nil {
		return nil, fmt.Errorf("spec %s: %w", name, err)
	}
	base := filepath.Dir(name)
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	for i := range s.Entries {
		e := &s.Entries[i]
		e.Wasm = abs(e.Wasm)
		for j := range e.AliasFiles {
			e.AliasFiles[j] = abs(e.AliasFiles[j])
		}
		if e.Snapshot != nil {
			for j := range e.Snapshot.Mounts {
				e.Snapshot.Mounts[j].Host = abs(e.Snapshot.Mounts[j].Host)
			}
		}
	}
	return &s, nil
}

// Build reads the spec's files and assembles an unsigned megabinary.
func (s *Spec) Build() (*File, error) {
	modules := map[string][]byte{}
	var entries []Entry
	for _, se := range s.Entries {
		wasm, err := os.ReadFile(se.Wasm)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", se.Name, err)
		}
		d := SHA256(wasm)
		var hashes []string
		if _, shared := modules[d]; !shared {
			hashes = append(hashes, d)
		}
		modules[d] = wasm
		for _, a := range se.AliasFiles {
			b, err := os.ReadFile(a)
			if err != nil {
				return nil, fmt.Errorf("entry %q: alias: %w", se.Name, err)
			}
			hashes = append(hashes, SHA256(b))
		}
		hashes = append(hashes, se.AliasHashes...)
		entries = append(entries, Entry{
			Name: se.Name, Hashes: dedupe(hashes), Paths: se.Paths, Module: d,
			Export: se.Export, Args: se.Args, Env: se.Env, Resources: se.Resources,
		})
	}
	return Build(entries, modules)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// decodeStrict decodes the one JSON value data holds into v. Unknown
// fields are errors, and so is anything but white space after the value:
// a second object would otherwise be ignored without a word.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("unexpected data after the JSON object at byte %d (one object expected)", end)
	}
	return nil
}
