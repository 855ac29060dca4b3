package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/internal/hashcache"
	"github.com/compat-project/compat/vkernel/megabinary"
	"github.com/compat-project/compat/vkernel/serve"
)

// AgentOptions configure the agent benchmark.
type AgentOptions struct {
	// Runs is the number of calls measured per row (default 100).
	Runs int
	// Dir holds the benchmark's megabinary, keys, scratch root and AOT
	// cache.
	Dir string
	// Compat is the compat executable: the client process of each call
	// (compat exec -via, and plain compat exec), and the service's child
	// command.
	Compat string
	// Pause is the time between one call's end and the next call: an
	// agent's think time, in which the service starts the next instance
	// ahead of need. 0: back to back.
	Pause time.Duration
	// Concurrent, when above 0, adds the concurrent rows: that many
	// `python3.11 -c pass` calls started at once through the service (Go
	// library), and as native processes.
	Concurrent int
	// Share is the services' vkernel.Options.StartShare: requests one
	// child process runs at once (0: the default; 1: a process per
	// request).
	Share int
	// PythonWasm is a python.wasm build (its stdlib in lib/ beside it);
	// empty leaves the python rows out. NativePython is the native
	// interpreter (default /usr/bin/python3.11), whose hash routes to it.
	PythonWasm, NativePython string
}

// AgentRow is one way of making the same call: latency from the client's
// exec (or the library call) to the guest's first instruction, when the
// program reports it, and to its exit.
type AgentRow struct {
	Name  string `json:"name"`
	First Stats  `json:"first_instruction"`
	Exit  Stats  `json:"exit"`
}

// AgentReport holds the agent benchmark's figures.
type AgentReport struct {
	Runs  int           `json:"runs"`
	Pause time.Duration `json:"pause_ns"`
	// Tool rows: the firstinsn guest, a C program whose first instruction
	// reads CLOCK_MONOTONIC, and its native build.
	Tool []AgentRow `json:"tool"`
	// Python rows: `python3.11 -c pass`; exit only.
	Python            []AgentRow `json:"python,omitempty"`
	PythonUnavailable string     `json:"python_unavailable,omitempty"`
	// ConcurrentService and ConcurrentNative are the concurrent rows:
	// for the service, PeakRSS sums the service process and its
	// instances (sampled), for native the live processes.
	ConcurrentService *Side `json:"concurrent_service,omitempty"`
	ConcurrentNative  *Side `json:"concurrent_native,omitempty"`
	// ServiceStats are the service kernel's counters at the end
	// (instances started on request and ahead of need);
	// ColdServiceStats those of the service without snapshots.
	ServiceStats     vkernel.Stats `json:"service_stats"`
	ColdServiceStats vkernel.Stats `json:"cold_service_stats"`
	// SnapshotMade is how long making python's snapshot start took (the
	// instrumented module compiled in memory, the capture, the rewrite),
	// SnapshotBytes the snapshot module's size.
	SnapshotMade  time.Duration `json:"snapshot_made_ns,omitempty"`
	SnapshotBytes int           `json:"snapshot_bytes,omitempty"`
	// PythonFile is the file the python rows ask the service to run;
	// PythonFileFrozen whether it is immutable (its digest cached).
	PythonFile       string `json:"python_file,omitempty"`
	PythonFileFrozen bool   `json:"python_file_frozen,omitempty"`
}

// frozenCopy makes dst an immutable copy of src and returns it; where the
// filesystem or the privileges do not allow the attribute, it returns src
// itself and false.
func frozenCopy(src, dst string) (string, bool) {
	want, err := os.ReadFile(src)
	if err != nil {
		return src, false
	}
	hashcache.SetImmutable(dst, false)
	os.Remove(dst)
	if os.WriteFile(dst, want, 0o755) != nil || hashcache.SetImmutable(dst, true) != nil {
		os.Remove(dst)
		return src, false
	}
	// Only a file whose last change is older than the racy window has
	// its digest cached.
	time.Sleep(vkernel.RacyWindow + 100*time.Millisecond)
	return dst, true
}

// Agent measures tool calls made as an agent makes them, one call at a
// time: a client process per call (compat exec -via SOCKET, a Go program
// started with fork+exec), a call of the Go library (serve.Client.Exec)
// from a long-lived process, plain compat exec (the megabinary loaded per
// call), and the native program, in the same run.
func Agent(ctx context.Context, opts AgentOptions) (*AgentReport, error) {
	if opts.Runs <= 0 {
		opts.Runs = 100
	}
	if opts.NativePython == "" {
		opts.NativePython = "/usr/bin/python3.11"
	}
	rep := &AgentReport{Runs: opts.Runs, Pause: opts.Pause}
	firstinsn, err := guests.WAT(mustSource("firstinsn.wat"))
	if err != nil {
		return nil, err
	}
	nativeFirst, err := guests.NativeC("firstinsn.c")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(opts.Dir, "agent")
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		return nil, err
	}
	toolPath := filepath.Join(dir, "firstinsn.wasm")
	if err := os.WriteFile(toolPath, firstinsn, 0o755); err != nil {
		return nil, err
	}
	entries := []megabinary.Entry{{Name: "firstinsn", Module: megabinary.SHA256(firstinsn), Hashes: []string{megabinary.SHA256(firstinsn)}}}
	modules := map[string][]byte{megabinary.SHA256(firstinsn): firstinsn}
	var pyMounts []vkernel.Mount
	if opts.PythonWasm == "" {
		rep.PythonUnavailable = "no python.wasm build (make images)"
	} else if native, err := os.ReadFile(opts.NativePython); err != nil {
		rep.PythonUnavailable = err.Error()
	} else {
		wasm, err := os.ReadFile(opts.PythonWasm)
		if err != nil {
			return nil, err
		}
		d := megabinary.SHA256(wasm)
		modules[d] = wasm
		entries = append(entries, megabinary.Entry{Name: "python3.11", Module: d, Hashes: []string{d, megabinary.SHA256(native)},
			Resources: megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}, {Guest: "/usr/lib", ReadOnly: true}}}})
		// sys.executable: the interpreter finds its prefix from it.
		if err := os.MkdirAll(filepath.Join(root, "usr", "bin"), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(root, "usr", "bin", "python3.11"), wasm, 0o755); err != nil {
			return nil, err
		}
		pyMounts = []vkernel.Mount{{Guest: "/", Host: root}, {Guest: "/usr/lib", Host: filepath.Join(filepath.Dir(opts.PythonWasm), "lib"), ReadOnly: true}}
	}
	f, err := megabinary.Build(entries, modules)
	if err != nil {
		return nil, err
	}
	if pyMounts != nil {
		// python's snapshot start: the interpreter initialised once, here,
		// with the mounts every call has.
		spec := megabinary.SpecSnapshot{Init: "vk_snapshot_init", Export: "vk_snapshot_main", Form: "python",
			Argv0: opts.NativePython, Args: []string{"-c", "pass"}}
		for _, m := range pyMounts {
			spec.Mounts = append(spec.Mounts, megabinary.SpecMount{Guest: m.Guest, Host: m.Host, ReadOnly: m.ReadOnly})
		}
		t0 := time.Now()
		if f, err = vkernel.AddSnapshot(ctx, f, "python3.11", spec); err != nil {
			return nil, err
		}
		rep.SnapshotMade = time.Since(t0)
		e := f.Manifest.Entry("python3.11")
		rep.SnapshotBytes = len(f.Module(e.Snapshot.Module))
	}
	key := filepath.Join(dir, "key")
	pub, err := megabinary.GenerateKey(key)
	if err != nil {
		return nil, err
	}
	priv, err := megabinary.ReadPrivateKey(key)
	if err != nil {
		return nil, err
	}
	f.Sign(priv)
	mb := filepath.Join(dir, "agent.vkmb")
	if err := f.WriteFile(mb); err != nil {
		return nil, err
	}
	cache := filepath.Join(dir, "cache")
	names := []string{"firstinsn"}
	if pyMounts != nil {
		names = append(names, "python3.11")
	}
	// Two services over the same megabinary: one starts python from its
	// snapshot, the other (NoSnapshot) as compat exec always did.
	service := func(sock string, noSnapshot bool) (*vkernel.Kernel, func(), error) {
		k, err := vkernel.Open(ctx, mb, vkernel.Options{TrustedKeys: []ed25519.PublicKey{pub}, CacheDir: cache,
			ChildCommand: []string{opts.Compat}, StartOnly: true, NoSnapshot: noSnapshot, StartShare: opts.Share})
		if err != nil {
			return nil, nil, err
		}
		l, err := serve.Listen(sock, 0)
		if err != nil {
			k.Close(ctx)
			return nil, nil, err
		}
		srv := &serve.Server{Kernel: k}
		go srv.Serve(l)
		if err := k.Prewarm(names...); err != nil {
			srv.Shutdown(ctx)
			k.Close(ctx)
			return nil, nil, err
		}
		waitReady(sock)
		return k, func() { srv.Shutdown(ctx); k.Close(ctx) }, nil
	}
	sock := filepath.Join(dir, "serve.sock")
	k, stop, err := service(sock, false)
	if err != nil {
		return nil, err
	}
	defer stop()
	coldSock := filepath.Join(dir, "serve-cold.sock")
	coldK, stopCold, err := service(coldSock, true)
	if err != nil {
		return nil, err
	}
	defer stopCold()
	time.Sleep(time.Second) // the first instances load their code

	exec0 := []string{opts.Compat, "exec", "-megabinary", mb, "-pubkey", key + ".pub", "-cache", cache, "-audit", filepath.Join(dir, "audit.jsonl")}
	via := []string{opts.Compat, "exec", "-via", sock}
	client := &serve.Client{Socket: sock}
	viaCold := []string{opts.Compat, "exec", "-via", coldSock}
	coldClient := &serve.Client{Socket: coldSock}

	tool := []struct {
		name string
		call func() (time.Duration, time.Duration, error)
	}{
		{"native fork+exec", func() (time.Duration, time.Duration, error) { return processCall([]string{nativeFirst}, true) }},
		{"compat exec -via (client process)", func() (time.Duration, time.Duration, error) {
			return processCall(append(append([]string(nil), via...), toolPath), true)
		}},
		{"serve.Client.Exec (Go library)", func() (time.Duration, time.Duration, error) {
			return libraryCall(ctx, client, toolPath, nil, nil, true)
		}},
		{"compat exec (megabinary loaded per call)", func() (time.Duration, time.Duration, error) {
			return processCall(append(append([]string(nil), exec0...), "-entry", "firstinsn", toolPath), true)
		}},
	}
	for _, row := range tool {
		r, err := measureRow(row.name, opts, row.call)
		if err != nil {
			return nil, err
		}
		rep.Tool = append(rep.Tool, r)
	}
	if pyMounts != nil {
		var mountFlags []string
		for _, m := range pyMounts {
			s := "-mount=" + m.Guest + "=" + m.Host
			if m.ReadOnly {
				s += ":ro"
			}
			mountFlags = append(mountFlags, s)
		}
		pyArgs := []string{opts.NativePython, "-c", "pass"}
		// The file the service is asked to run: an immutable copy of the
		// native interpreter (same hash, same route), whose digest the
		// service caches and hands its child (README, "Integrity"), when
		// the filesystem allows; /usr/bin/python3.11 itself is read and
		// hashed twice per call (6.8 MB: about 5 ms each).
		exe, frozen := frozenCopy(opts.NativePython, filepath.Join(dir, "python3.11"))
		rep.PythonFile, rep.PythonFileFrozen = exe, frozen
		if frozen {
			// Not left immutable: a cache that cannot be removed with rm
			// -rf surprises.
			defer func() { hashcache.SetImmutable(exe, false); os.Remove(exe) }()
		}
		via := append(append([]string(nil), via...), "-argv0", opts.NativePython)
		viaCold := append(append([]string(nil), viaCold...), "-argv0", opts.NativePython)
		exeArgs := append([]string{exe}, pyArgs[1:]...)
		py := []struct {
			name string
			call func() (time.Duration, time.Duration, error)
		}{
			{"native " + opts.NativePython + " -c pass", func() (time.Duration, time.Duration, error) { return processCall(pyArgs, false) }},
			{"compat exec -via (client process), snapshot", func() (time.Duration, time.Duration, error) {
				return processCall(append(append(via, mountFlags...), exeArgs...), false)
			}},
			{"serve.Client.Exec (Go library), snapshot", func() (time.Duration, time.Duration, error) {
				return libraryCall(ctx, client, exe, pyArgs, pyMounts, false)
			}},
			{"serve.Client.Exec, snapshot, " + opts.NativePython + " hashed", func() (time.Duration, time.Duration, error) {
				return libraryCall(ctx, client, opts.NativePython, pyArgs, pyMounts, false)
			}},
			{"compat exec -via (client process), no snapshot", func() (time.Duration, time.Duration, error) {
				return processCall(append(append(viaCold, mountFlags...), exeArgs...), false)
			}},
			{"serve.Client.Exec (Go library), no snapshot", func() (time.Duration, time.Duration, error) {
				return libraryCall(ctx, coldClient, exe, pyArgs, pyMounts, false)
			}},
			{"compat exec (megabinary loaded per call), snapshot", func() (time.Duration, time.Duration, error) {
				return processCall(append(append(append([]string(nil), exec0...), append(mountFlags, "-entry", "python3.11", "-argv0", opts.NativePython)...), exeArgs...), false)
			}},
		}
		for _, row := range py {
			r, err := measureRow(row.name, opts, row.call)
			if err != nil {
				return nil, err
			}
			rep.Python = append(rep.Python, r)
		}
	}
	if pyMounts != nil && opts.Concurrent > 0 {
		pyArgs := []string{opts.NativePython, "-c", "pass"}
		self := os.Getpid()
		svc, err := measure(opts.Concurrent, func() int64 { return selfRSS() + descendantsRSS(self) }, func(int) (bool, error) {
			_, _, err := libraryCall(ctx, client, opts.NativePython, pyArgs, pyMounts, false)
			return err == nil, err
		})
		if err != nil {
			return nil, err
		}
		var pids sync.Map
		nat, err := measure(opts.Concurrent, func() int64 { return childrenRSS(&pids) }, func(int) (bool, error) {
			c := exec.Command(opts.NativePython, "-c", "pass")
			if err := c.Start(); err != nil {
				return false, err
			}
			pids.Store(c.Process.Pid, true)
			err := c.Wait()
			pids.Delete(c.Process.Pid)
			return err == nil, nil
		})
		if err != nil {
			return nil, err
		}
		rep.ConcurrentService, rep.ConcurrentNative = &svc, &nat
	}
	rep.ServiceStats = k.Stats()
	rep.ColdServiceStats = coldK.Stats()
	return rep, nil
}

// descendantsRSS sums the resident memory of pid's live descendants.
func descendantsRSS(pid int) int64 {
	var total int64
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	for _, t := range tasks {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				total += statusField("/proc/"+f+"/status", "VmRSS:") + descendantsRSS(c)
			}
		}
	}
	return total
}

// waitReady waits (a few seconds at most) until the socket answers.
func waitReady(sock string) {
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("unixpacket", sock); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// measureRow makes a tenth more calls than measured (the first ones warm
// up) with opts.Pause between them.
func measureRow(name string, opts AgentOptions, call func() (time.Duration, time.Duration, error)) (AgentRow, error) {
	var first, exit []time.Duration
	for i := 0; i < opts.Runs+opts.Runs/10; i++ {
		f, e, err := call()
		if err != nil {
			return AgentRow{}, fmt.Errorf("%s: %w", name, err)
		}
		if i >= opts.Runs/10 {
			if f > 0 {
				first = append(first, f)
			}
			exit = append(exit, e)
		}
		time.Sleep(opts.Pause)
	}
	return AgentRow{Name: name, First: Summarize(first), Exit: Summarize(exit)}, nil
}

// processCall runs a command as a client process and times it from just
// before the fork+exec; with stamped, its stdout is the firstinsn
// guest's 8-byte timestamp.
func processCall(argv []string, stamped bool) (first, exit time.Duration, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	t0 := monotonic()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%v: %w: %s", argv, err, errOut.String())
	}
	t1 := monotonic()
	if stamped {
		ts, err := stamp(out.Bytes())
		if err != nil {
			return 0, 0, err
		}
		first = time.Duration(ts - t0)
	}
	return first, time.Duration(t1 - t0), nil
}

// libraryCall makes the call with serve.Client.Exec, its stdout a pipe.
func libraryCall(ctx context.Context, c *serve.Client, path string, args []string, mounts []vkernel.Mount, stamped bool) (first, exit time.Duration, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	out := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(r); out <- b }()
	t0 := monotonic()
	res, err := c.Exec(ctx, serve.Request{Path: path, Args: args, Mounts: mounts, Stdout: w})
	t1 := monotonic()
	w.Close()
	b := <-out
	if err != nil {
		return 0, 0, err
	}
	if res.ExitCode != 0 {
		return 0, 0, fmt.Errorf("%s exited %d", path, res.ExitCode)
	}
	if stamped {
		ts, err := stamp(b)
		if err != nil {
			return 0, 0, err
		}
		first = time.Duration(ts - t0)
	}
	return first, time.Duration(t1 - t0), nil
}

// Write prints the report for people.
func (r *AgentReport) Write(w io.Writer) {
	fmt.Fprintf(w, "agent tool calls, one at a time, %d per row, %s between calls\n", r.Runs, r.Pause)
	fmt.Fprintf(w, "\nC tool (firstinsn): client's exec -> guest's first instruction | -> exit\n")
	for _, row := range r.Tool {
		fmt.Fprintf(w, "  %-42s first %s\n  %-42s exit  %s\n", row.Name, row.First, "", row.Exit)
	}
	if r.PythonUnavailable != "" {
		fmt.Fprintf(w, "\npython rows not measured: %s\n", r.PythonUnavailable)
	} else {
		fmt.Fprintf(w, "\npython3.11 -c pass: client's exec -> exit (snapshot module %d bytes, made in %s; file run %s, immutable %v)\n",
			r.SnapshotBytes, r.SnapshotMade.Round(time.Millisecond), r.PythonFile, r.PythonFileFrozen)
		for _, row := range r.Python {
			fmt.Fprintf(w, "  %-42s exit  %s\n", row.Name, row.Exit)
		}
	}
	if c, n := r.ConcurrentService, r.ConcurrentNative; c != nil && n != nil {
		mib := func(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
		fmt.Fprintf(w, "\n%d concurrent python3.11 -c pass (service: Go library calls)\n", c.Completion.N)
		for _, x := range []struct {
			name string
			s    *Side
		}{{"service", c}, {"native", n}} {
			fmt.Fprintf(w, "  %-8s %.1f calls/s, completion %s, peak RSS %s (up to %d live), failures %d\n",
				x.name, x.s.Throughput, x.s.Completion, mib(x.s.PeakRSS), x.s.MaxLive, x.s.Failures)
		}
	}
	s := r.ServiceStats
	fmt.Fprintf(w, "\nservice: %d instances started on request, %d ahead of need, %d requests ran in one started ahead\n", s.ChildStarts, s.WarmStarts, s.WarmRuns)
	c := r.ColdServiceStats
	fmt.Fprintf(w, "service without snapshots: %d on request, %d ahead of need, %d ran in one started ahead\n", c.ChildStarts, c.WarmStarts, c.WarmRuns)
}
