package megabinary

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// Manifest is the signed table of contents of a megabinary: the modules it
// stores and the entries that executable hashes route to.
type Manifest struct {
	// Format is the megabinary format version the manifest was written for.
	Format int `json:"format"`
	// Modules lists every stored module once, in storage order.
	Modules []Module `json:"modules"`
	// Entries are the programs an exec request can route to.
	Entries []Entry `json:"entries"`
}

// Module describes one stored WebAssembly module.
type Module struct {
	// Digest is the lowercase hex SHA-256 of the module's bytes.
	Digest string `json:"digest"`
	// Size is the module's length in bytes.
	Size int64 `json:"size"`
}

// Entry is one program: the hashes that route to it and how it starts.
type Entry struct {
	// Name identifies the entry in audit records and listings, e.g. "python".
	Name string `json:"name"`
	// Hashes are the lowercase hex SHA-256 digests of every executable file
	// that routes to this entry: the recompiled module itself and aliases
	// such as the native Debian binary it replaces.
	Hashes []string `json:"hashes"`
	// Paths pins the entry to these absolute paths under the path+hash
	// policy. The hash policy ignores them.
	Paths []string `json:"paths,omitempty"`
	// Module is the digest of the stored module the entry runs.
	Module string `json:"module"`
	// Export is the function called to start the program; "_start" when empty.
	Export string `json:"export,omitempty"`
	// Args are prepended to the exec request's arguments (after argv[0]).
	Args []string `json:"args,omitempty"`
	// Env holds KEY=VALUE pairs set before the exec request's own.
	Env []string `json:"env,omitempty"`
	// Resources bounds what an exec request may hand the program.
	Resources Resources `json:"resources"`
	// Snapshot, when set, lets an exec of the entry start from a snapshot
	// of the program already initialised instead of from Export.
	Snapshot *Snapshot `json:"snapshot,omitempty"`
}

// Snapshot is an entry's snapshot start (vkernel/ABI.md, "Snapshots"): a
// module made from the entry's own by running its initialisation function
// once, when the megabinary was built, whose memory and globals start as
// that run left them. An exec that qualifies (its arguments of the form
// Form names, the same argv[0], the environment variables that change
// initialisation and the mounts as the capture's) instantiates it and
// calls Export; any other runs the entry as usual.
type Snapshot struct {
	// Module is the digest of the stored snapshot module.
	Module string `json:"module"`
	// Source is the digest of the module it was made from: the entry's.
	Source string `json:"source"`
	// Init is the function the capture ran (the snapshot module no longer
	// exports it); Export the one a start from the snapshot calls. Both
	// take and return nothing.
	Init   string `json:"init"`
	Export string `json:"export"`
	// Form names the rule an exec's arguments must follow to start from
	// the snapshot, and which environment variables must be the
	// capture's: "python" (vkernel/ABI.md, "Snapshots").
	Form string `json:"form"`
	// Argv0, Args and Env are what the capture ran with: argv[0], the
	// arguments after the entry's own, and the environment after the
	// entry's (the guest saw the entry's merged with these).
	Argv0 string   `json:"argv0"`
	Args  []string `json:"args,omitempty"`
	Env   []string `json:"env,omitempty"`
	// Mounts are the guest paths of the capture's mounts, in order, and
	// whether each was read-only: an exec starts from the snapshot only
	// with the same.
	Mounts []MountRule `json:"mounts,omitempty"`
	// Wazero is the wazero version the capture ran on. A vkernel built
	// with another refuses the megabinary.
	Wazero string `json:"wazero"`
}

// SnapshotForms are the values Snapshot.Form may take.
var SnapshotForms = []string{"python"}

// Resources bounds what an exec request may give an entry's instance.
type Resources struct {
	// Mounts lists the guest paths that may be mounted, each with whether it
	// must be read-only. An empty list allows no mounts.
	Mounts []MountRule `json:"mounts,omitempty"`
	// Listeners is the largest number of listening sockets the instance may
	// be handed.
	Listeners int `json:"listeners,omitempty"`
	// Connect lists the CIDR prefixes the instance may connect sockets
	// to (TCP and UDP, sock_connect and the POSIX socket calls) and send
	// datagrams to. Empty means loopback only (127.0.0.0/8 and ::1/128);
	// "none" alone allows nothing.
	Connect []string `json:"connect,omitempty"`
	// Bind lists the CIDR prefixes the instance may bind its own sockets
	// to; the wildcard address is the prefix 0.0.0.0/32 or ::/128 (a /0
	// allows it too). Empty means loopback only; "none" alone allows
	// nothing. Unix-domain sockets are bounded by the mounts instead, and
	// handed-over listeners by Listeners.
	Bind []string `json:"bind,omitempty"`
	// Processes is how many child processes the instance may have at once
	// (spawned or forked, not yet waited for); 0 allows none. It also
	// bounds the live processes of the whole tree the instance is the top
	// of. Every child exec is still routed by hash (vkernel/ABI.md,
	// "Processes").
	Processes int `json:"processes,omitempty"`
	// Threads is how many threads (wasi.thread-spawn) the instance may
	// have running at once besides its main one; 0 allows none. Only a
	// module that imports a shared memory can start threads
	// (vkernel/ABI.md, "Threads").
	Threads int `json:"threads,omitempty"`
}

// MountRule allows a mount at a guest path.
type MountRule struct {
	// Guest is the absolute guest path, e.g. "/" or "/usr/lib/python3.11".
	Guest string `json:"guest"`
	// ReadOnly forces the mount read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// StartExport returns the export that starts the entry.
func (e *Entry) StartExport() string {
	if e.Export == "" {
		return "_start"
	}
	return e.Export
}

// Validate checks the manifest's internal consistency: known format, well
// formed digests, unique module digests and entry names, entries that name a
// stored module, absolute pinned paths, and every executable hash routing to
// exactly one entry.
func (m *Manifest) Validate() error {
	if m.Format != Version {
		return fmt.Errorf("manifest format %d, want %d", m.Format, Version)
	}
	modules := make(map[string]bool, len(m.Modules))
	for i, mod := range m.Modules {
		if err := checkDigest(mod.Digest); err != nil {
			return fmt.Errorf("module %d: %w", i, err)
		}
		if mod.Size <= 0 {
			return fmt.Errorf("module %s: size %d", mod.Digest, mod.Size)
		}
		if modules[mod.Digest] {
			return fmt.Errorf("module %s is stored twice", mod.Digest)
		}
		modules[mod.Digest] = true
	}
	if len(m.Entries) == 0 {
		return fmt.Errorf("manifest has no entries")
	}
	names := map[string]bool{}
	routes := map[string]string{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Name == "" || strings.ContainsAny(e.Name, " \t\n/") {
			return fmt.Errorf("entry %d: name %q must be non-empty without spaces or slashes", i, e.Name)
		}
		if names[e.Name] {
			return fmt.Errorf("entry %q is listed twice", e.Name)
		}
		names[e.Name] = true
		if !modules[e.Module] {
			return fmt.Errorf("entry %q: module %q is not stored in the megabinary", e.Name, e.Module)
		}
		if len(e.Hashes) == 0 {
			return fmt.Errorf("entry %q: no executable hashes route to it", e.Name)
		}
		for _, h := range e.Hashes {
			if err := checkDigest(h); err != nil {
				return fmt.Errorf("entry %q: %w", e.Name, err)
			}
			if other, dup := routes[h]; dup {
				return fmt.Errorf("hash %s routes to both %q and %q", h, other, e.Name)
			}
			routes[h] = e.Name
		}
		for _, p := range e.Paths {
			if !path.IsAbs(p) || path.Clean(p) != p {
				return fmt.Errorf("entry %q: pinned path %q must be absolute and clean", e.Name, p)
			}
		}
		for _, r := range e.Resources.Mounts {
			if !path.IsAbs(r.Guest) || path.Clean(r.Guest) != r.Guest {
				return fmt.Errorf("entry %q: mount %q must be an absolute clean guest path", e.Name, r.Guest)
			}
		}
		if e.Resources.Listeners < 0 {
			return fmt.Errorf("entry %q: negative listener count", e.Name)
		}
		if e.Resources.Threads < 0 {
			return fmt.Errorf("entry %q: negative thread count", e.Name)
		}
		for _, env := range e.Env {
			if !strings.Contains(env, "=") {
				return fmt.Errorf("entry %q: env %q is not KEY=VALUE", e.Name, env)
			}
		}
		if err := e.Snapshot.validate(modules, e.Module); err != nil {
			return fmt.Errorf("entry %q: snapshot: %w", e.Name, err)
		}
	}
	return nil
}

func (s *Snapshot) validate(modules map[string]bool, source string) error {
	if s == nil {
		return nil
	}
	if !modules[s.Module] {
		return fmt.Errorf("module %q is not stored in the megabinary", s.Module)
	}
	if s.Source != source {
		return fmt.Errorf("made from module %q, not the entry's %q", s.Source, source)
	}
	if s.Module == source {
		return errors.New("the snapshot module is the entry's own")
	}
	if s.Init == "" || s.Export == "" || s.Init == s.Export {
		return fmt.Errorf("init %q and export %q must be two function names", s.Init, s.Export)
	}
	if !slices.Contains(SnapshotForms, s.Form) {
		return fmt.Errorf("form %q is not one of %v", s.Form, SnapshotForms)
	}
	if s.Argv0 == "" {
		return errors.New("no argv0")
	}
	if s.Wazero == "" {
		return errors.New("no wazero version")
	}
	for _, env := range s.Env {
		if !strings.Contains(env, "=") {
			return fmt.Errorf("env %q is not KEY=VALUE", env)
		}
	}
	for _, r := range s.Mounts {
		if !path.IsAbs(r.Guest) || path.Clean(r.Guest) != r.Guest {
			return fmt.Errorf("mount %q must be an absolute clean guest path", r.Guest)
		}
	}
	return nil
}

// Routes returns the routing table: executable hash to entry index.
func (m *Manifest) Routes() map[string]int {
	routes := make(map[string]int)
	for i, e := range m.Entries {
		for _, h := range e.Hashes {
			routes[h] = i
		}
	}
	return routes
}

// Entry returns the entry with the given name, or nil.
func (m *Manifest) Entry(name string) *Entry {
	for i := range m.Entries {
		if m.Entries[i].Name == name {
			return &m.Entries[i]
		}
	}
	return nil
}

// canonical encodes the manifest deterministically: entries and their hash
// lists sorted, so that the same inputs always sign the same bytes.
func (m *Manifest) canonical() ([]byte, error) {
	c := *m
	c.Entries = append([]Entry(nil), m.Entries...)
	for i := range c.Entries {
		c.Entries[i].Hashes = sortedCopy(c.Entries[i].Hashes)
		c.Entries[i].Paths = sortedCopy(c.Entries[i].Paths)
	}
	sort.Slice(c.Entries, func(i, j int) bool { return c.Entries[i].Name < c.Entries[j].Name })
	return json.Marshal(&c)
}

func sortedCopy(s []string) []string {
	if s == nil {
		return nil
	}
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func checkDigest(d string) error {
	if len(d) != 64 || strings.ToLower(d) != d {
		return fmt.Errorf("digest %q is not 64 lowercase hex digits", d)
	}
	if _, err := hex.DecodeString(d); err != nil {
		return fmt.Errorf("digest %q is not hex", d)
	}
	return nil
}
