package compat

// HostCalls is a polyfill coverage map: how the guests of a run's units
// used the host functions the vkernel gives them (WASI preview1 and its
// own "vkernel" module; vkernel/ABI.md).
type HostCalls struct {
	// Units is how many units reported host calls: those in which at
	// least one vkernel process ran its guest to the end of its exec.
	Units int
	// Functions has one entry for every host function the vkernel
	// exports, called or not, in the ABI's order (vkernel.HostFunctions).
	Functions []HostCall
}

// HostCall is one host function in a coverage map.
type HostCall struct {
	// Function is "module.name", such as "wasi_snapshot_preview1.fd_write"
	// or "vkernel.proc_spawn".
	Function string
	// Calls is how many times guests called it.
	Calls uint64
	// Units is how many units called it at least once.
	Units int
}

// NewHostCalls returns an empty map of the given host functions
// ("module.name"), in their order.
func NewHostCalls(functions []string) *HostCalls {
	h := &HostCalls{Functions: make([]HostCall, len(functions))}
	for i, f := range functions {
		h.Functions[i].Function = f
	}
	return h
}

// AddUnit adds one unit's calls, by function. A function the map does not
// list yet is added at the end.
func (h *HostCalls) AddUnit(calls map[string]uint64) {
	h.Units++
	index := h.index()
	for f, n := range calls {
		if n == 0 {
			continue
		}
		i, ok := index[f]
		if !ok {
			i = len(h.Functions)
			h.Functions = append(h.Functions, HostCall{Function: f})
			index[f] = i
		}
		h.Functions[i].Calls += n
		h.Functions[i].Units++
	}
}

// Merge adds the map of other units to h: the calls and the units add up,
// as they do for the disjoint units of a run's shards. Functions only
// other lists are added at the end.
func (h *HostCalls) Merge(other HostCalls) {
	h.Units += other.Units
	index := h.index()
	for _, c := range other.Functions {
		i, ok := index[c.Function]
		if !ok {
			i = len(h.Functions)
			h.Functions = append(h.Functions, HostCall{Function: c.Function})
			index[c.Function] = i
		}
		h.Functions[i].Calls += c.Calls
		h.Functions[i].Units += c.Units
	}
}

// Exercised counts the functions called at least once.
func (h *HostCalls) Exercised() int {
	n := 0
	for _, c := range h.Functions {
		if c.Calls > 0 {
			n++
		}
	}
	return n
}

func (h *HostCalls) index() map[string]int {
	m := make(map[string]int, len(h.Functions))
	for i, c := range h.Functions {
		m[c.Function] = i
	}
	return m
}
