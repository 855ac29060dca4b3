package vkernel

// Warm children. Most of a child's start is its own: starting the host
// process (the Go runtime, the program's package initialisation), opening
// the megabinary and checking it, and loading the entry's compiled code
// (for python.wasm, reading and checking tens of MiB of it). None of that
// depends on what the child will run, so an exec that has started two
// children of an entry keeps one more of that entry started ahead of need:
// it has done all that and waits on its request socket. The next spawn or
// fork of the entry hands it its runSpec and does not wait for a start.
//
// A warm child is bounded (at most one per entry per exec, and only for an
// entry this exec has started two children of), never given two requests
// (it runs one and ends), and ended with the exec that started it, or when
// EndChildProcesses runs. It changes nothing that a child checks: it opens
// and verifies the signed megabinary itself, loads only its entry's code
// from it, and routes the file it is handed by its SHA-256 as any child
// does; a file that routes to another entry is denied in the child. It is
// not in the tree's process table until it is given a request.

// warmAfter is how many children of an entry an exec starts before it
// keeps one warm: a process that starts one child pays for no extra start.
const warmAfter = 2

// takeWarm takes entry's warm child, which becomes one of c.kids, or
// returns nil when there is none.
func (c *procCtl) takeWarm(entry string) *child {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.warm[entry]
	if w == nil {
		return nil
	}
	delete(c.warm, entry)
	if c.kids == nil {
		c.kids = map[int]*childRec{}
	}
	c.kids[w.pid] = &childRec{lifeline: w.lifeline}
	return w
}

// prewarm counts a child of entry started, and once warmAfter have been,
// starts a warm one of the entry unless one is warm already. Only the
// host process is started here (a vfork and exec); the child opens the
// megabinary and loads the entry's code while the guest goes on.
func (c *procCtl) prewarm(entry string, table *procTable) {
	c.mu.Lock()
	if c.started == nil {
		c.started = map[string]int{}
	}
	c.started[entry]++
	skip := c.started[entry] < warmAfter || c.warm[entry] != nil
	c.mu.Unlock()
	if skip {
		return
	}
	// A child that does not start leaves the next request a start of its
	// own, which reports the failure.
	if _, err := c.boot(entry, table, true); err == nil {
		c.k.warmStarts.Add(1)
	}
}
