package vktarget

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

func newTarget(t *testing.T) (*Target, string) {
	probe, err := guests.C("probe.c")
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	trap, err := guests.WAT(`(module (memory (export "memory") 1) (func (export "_start") unreachable))`)
	if err != nil {
		t.Fatal(err)
	}
	spin, err := guests.WAT(`(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))`)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "spin.wasm"), spin, 0o755)
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "probe"), probe, 0o755)
	os.WriteFile(filepath.Join(dir, "trap.wasm"), trap, 0o755)
	os.WriteFile(filepath.Join(root, "bin", "unlisted"), []byte("#!/bin/sh\n"), 0o755)
	res := megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}, Listeners: 2}
	mb, key, cache, k := signedKernel(t, dir, []megabinary.Entry{
		{Name: "probe", Hashes: []string{megabinary.SHA256(probe)}, Module: megabinary.SHA256(probe), Resources: res},
		{Name: "trap", Hashes: []string{megabinary.SHA256(trap)}, Module: megabinary.SHA256(trap), Resources: res},
		{Name: "spin", Hashes: []string{megabinary.SHA256(spin)}, Module: megabinary.SHA256(spin), Resources: res},
	}, map[string][]byte{megabinary.SHA256(probe): probe, megabinary.SHA256(trap): trap, megabinary.SHA256(spin): spin})
	tgt, err := New(Options{Kernel: k, Mounts: []runners.Mount{{Host: root, Guest: "/"}},
		Programs: map[string]string{"trap": filepath.Join(dir, "trap.wasm"), "spin": filepath.Join(dir, "spin.wasm")}, Env: []string{"PROBE_VAR=target"},
		Megabinary: mb, PublicKey: key + ".pub", Exec: testenv.CompatExec(t), Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tgt.Close()
		k.Close(context.Background())
	})
	return tgt, root
}

func TestTarget(t *testing.T) {
	tgt, _ := newTarget(t)
	ctx := context.Background()
	var out bytes.Buffer
	exit, err := tgt.Run(ctx, runners.Process{Args: []string{"/bin/probe", "args"}, Stdout: &out})
	if err != nil || !exit.OK() || !strings.Contains(out.String(), "env=target") {
		t.Fatalf("probe: %v %v %q", exit, err, out.String())
	}
	exit, err = tgt.Run(ctx, runners.Process{Args: []string{"/bin/probe", "exit", "3"}})
	if err != nil || exit.Code != 3 {
		t.Fatalf("exit 3: %v %v", exit, err)
	}
	exit, err = tgt.Run(ctx, runners.Process{Args: []string{"trap"}})
	if err != nil || exit.Code != -1 || !strings.Contains(exit.Crash, "wasm trap") {
		t.Fatalf("trap: %v %v", exit, err)
	}
	var denied *vkernel.DeniedError
	if _, err := tgt.Run(ctx, runners.Process{Args: []string{"/bin/unlisted"}}); !errors.As(err, &denied) {
		t.Fatalf("unlisted program: %v", err)
	}
	if _, err := tgt.Run(ctx, runners.Process{Args: []string{"python3"}}); err == nil {
		t.Fatal("unknown program ran")
	}
	// A guest that computes without host calls is stopped at its
	// deadline all the same: its process is ended.
	tctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := tgt.Run(tctx, runners.Process{Args: []string{"spin"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("spinning guest past its deadline: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the spinning guest ran %v past a 500ms deadline", d)
	}
	if p := tgt.Properties(); p[compat.PropMegabinaryDigest] == "" || p[compat.PropVersionPrefix+"wazero"] == "" {
		t.Fatalf("properties %v", p)
	}
	tgt.Close()
	if err := tgt.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tgt.Run(ctx, runners.Process{Args: []string{"/bin/probe"}}); err == nil {
		t.Fatal("ran after Close")
	}
	// The kernel is shared by the suites of a run: another target over it
	// still works after the first is closed.
	opts := tgt.opts
	again, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if exit, err := again.Run(ctx, runners.Process{Args: []string{"/bin/probe", "exit", "0"}}); err != nil || !exit.OK() {
		t.Fatalf("second target over the same kernel: %v %v", exit, err)
	}
}

var _ runners.Server = (*Target)(nil)

func TestServe(t *testing.T) {
	tgt, _ := newTarget(t)
	var out bytes.Buffer
	svc, err := tgt.Serve(context.Background(), 1, func(ports []int) runners.Process {
		// fd 3 is the / mount, so the listener is fd 4.
		return runners.Process{Args: []string{"/bin/probe", "echo", "4", "1"}, Stdout: &out}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	conn, err := net.DialTimeout("tcp", svc.Addrs()[0], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte("ping\n"))
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || got != "ping\n" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	conn.Close()
	exit, err := svc.Exit()
	if err != nil || !exit.OK() || !strings.Contains(out.String(), "echoed=1") {
		t.Fatalf("Exit = %v, %v; output %q", exit, err, out.String())
	}
	// The listener is closed with the guest.
	if c, err := net.DialTimeout("tcp", svc.Addrs()[0], time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts after the guest ended")
	}
}

func TestServeClose(t *testing.T) {
	tgt, _ := newTarget(t)
	svc, err := tgt.Serve(context.Background(), 2, func(ports []int) runners.Process {
		if len(ports) != 2 || ports[0] == ports[1] {
			t.Errorf("ports %v", ports)
		}
		return runners.Process{Args: []string{"/bin/probe", "echo", "4", "5"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range svc.Addrs() {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("Addrs[%d] = %q", i, a)
		}
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Exit(); !errors.Is(err, context.Canceled) {
		t.Errorf("Exit after Close: %v, want context.Canceled", err)
	}
}

// TestCommand: the command is compat exec on the target's megabinary with
// its mounts and environment, the program mapped to the file the exec
// hashes.
func TestCommand(t *testing.T) {
	tgt := &Target{opts: Options{Exec: []string{"compat", "exec"}, Megabinary: "/out/compat.vkmb", PublicKey: "/out/run-key.pub", Env: []string{"A=1"},
		Cache: "/c", Entries: []string{"python3.11"},
		Mounts:   []runners.Mount{{Host: "/scratch/root", Guest: "/"}, {Host: "/b/lib", Guest: "/usr/lib", ReadOnly: true}},
		Programs: map[string]string{"python3.11": "/b/python.wasm"}}}
	tgt.mounts = []vkernel.Mount{{Guest: "/", Host: "/scratch/root"}}
	got := tgt.Command(runners.Process{Args: []string{"python3.11", "-m", "test", "test_x"}, Env: []string{"B=2 3"}})
	want := "compat exec -megabinary /out/compat.vkmb -pubkey /out/run-key.pub -cache /c -entry python3.11 -mount /=/scratch/root -mount /usr/lib=/b/lib:ro -env A=1 -env 'B=2 3' -argv0 python3.11 /b/python.wasm -m test test_x"
	if got != want {
		t.Errorf("Command =\n %s\nwant\n %s", got, want)
	}
	// A guest path is mapped through the mounts; the guest still sees
	// the path it was started by as argv[0].
	if got := tgt.Command(runners.Process{Args: []string{"/bin/probe"}}); !strings.HasSuffix(got, " -argv0 /bin/probe /scratch/root/bin/probe") {
		t.Errorf("a guest path: %s", got)
	}
}

// TestRunIsCommand: what Run runs is the command a report names, so a
// failing unit can be rerun by hand exactly.
func TestRunIsCommand(t *testing.T) {
	tgt, _ := newTarget(t)
	var out bytes.Buffer
	p := runners.Process{Args: []string{"/bin/probe", "args", "x y"}}
	if exit, err := tgt.Run(context.Background(), runners.Process{Args: p.Args, Stdout: &out}); err != nil || !exit.OK() {
		t.Fatalf("run: %v %v", exit, err)
	}
	cmd := exec.Command("sh", "-c", tgt.Command(p))
	byHand, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tgt.Command(p), err)
	}
	if string(byHand) != out.String() {
		t.Fatalf("by hand:\n%s\nby Run:\n%s", byHand, out.String())
	}
}

// TestChildProcesses: a guest that compat exec runs starts child
// processes (compat exec is their child command), and a unit that is
// stopped takes its whole process tree with it.
func TestChildProcesses(t *testing.T) {
	posix, err := guests.CPosix("posix.c", guests.Clang14)
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "posix"), posix, 0o755)
	d := megabinary.SHA256(posix)
	mb, key, cache, k := signedKernel(t, dir, []megabinary.Entry{{Name: "posix", Hashes: []string{d}, Module: d,
		Resources: megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/"}}, Processes: 4}}}, map[string][]byte{d: posix})
	defer k.Close(context.Background())
	tgt, err := New(Options{Kernel: k, Mounts: []runners.Mount{{Host: root, Guest: "/"}}, Megabinary: mb, PublicKey: key + ".pub",
		Exec: testenv.CompatExec(t), Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()

	var out bytes.Buffer
	exit, err := tgt.Run(context.Background(), runners.Process{Args: []string{"/bin/posix", "capture", "/bin/posix", "echo", "from-child"}, Stdout: &out})
	if err != nil || !exit.OK() || !strings.Contains(out.String(), "captured=[from-child\n]") || !strings.Contains(out.String(), "child=exited code=0") {
		t.Fatalf("spawn in compat exec: %v %v, output %q", exit, err, out.String())
	}

	// A unit stopped at its deadline, or by the run (ctx cancelled, as
	// SIGINT to compat run does), or whose compat exec dies outright (a
	// crash): when Run returns, no process of its tree exists, not even
	// as a zombie.
	for _, how := range []string{"deadline", "cancel", "crash"} {
		ctx, cancel := context.WithCancel(context.Background())
		if how == "deadline" {
			ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
		}
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := tgt.Run(ctx, runners.Process{Args: []string{"/bin/posix", "tree", "/bin/posix", "2"}, Stdout: pw})
			pw.Close()
			done <- err
		}()
		var pids []int
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "tree_pid="); ok {
				pid, _ := strconv.Atoi(v)
				pids = append(pids, pid)
			}
			if sc.Text() == "leaf" {
				break
			}
		}
		go io.Copy(io.Discard, pr)
		if len(pids) != 3 {
			cancel()
			t.Fatalf("%s: tree pids %v, want compat exec's and two children's", how, pids)
		}
		switch how {
		case "cancel":
			cancel()
		case "crash":
			syscall.Kill(pids[0], syscall.SIGKILL)
		}
		err := <-done
		cancel()
		switch {
		case how == "deadline" && !errors.Is(err, context.DeadlineExceeded),
			how == "cancel" && !errors.Is(err, context.Canceled),
			how == "crash" && (err == nil || !strings.Contains(err.Error(), "without saying how")):
			t.Fatalf("%s: Run gave %v", how, err)
		}
		for _, pid := range pids {
			if state, ok := procState(pid); ok {
				t.Errorf("%s: process %d of the stopped unit is left, state %s", how, pid, state)
			}
		}
	}
}

// procState returns the state letter of process pid (Z for a zombie), or
// reports false when there is no such process.
func procState(pid int) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return "?", true
	}
	return s[i+2 : i+3], true
}

// TestOrphansReaped: once a Target exists, this process adopts the orphans
// of its descendants (a daemon in a session of its own here) and reaps
// them when they end, but never a child it started itself, whose status
// its exec.Cmd still gets (one in this process's group, one leading a
// group of its own).
func TestOrphansReaped(t *testing.T) {
	newTarget(t)
	var own []*exec.Cmd
	for _, setpgid := range []bool{false, true} {
		cmd := exec.Command("sh", "-c", "exit 7")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: setpgid}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		own = append(own, cmd)
	}
	daemon := exec.Command("sh", "-c", `setsid sh -c 'echo $$; exec sleep 0.2' &`)
	out, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatal("the daemon did not say its pid")
	}
	pid, _ := strconv.Atoi(sc.Text())
	go io.Copy(io.Discard, out)
	if err := daemon.Wait(); err != nil {
		t.Fatal(err)
	}
	// The daemon's end (and the other children's) made this process look
	// at its ended children more than once by now.
	deadline := time.Now().Add(30 * time.Second)
	for {
		state, ok := procState(pid)
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the orphaned daemon %d is left, state %s", pid, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, cmd := range own {
		var ee *exec.ExitError
		if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 7 {
			t.Errorf("own child (setpgid %v): %v, want exit status 7", cmd.SysProcAttr.Setpgid, err)
		}
	}
}

// signedKernel writes a megabinary of entries and modules into dir, signed
// with a new key (its public half beside it, key+".pub"), and opens a
// kernel on it with its AOT cache in dir/cache.
func signedKernel(t *testing.T, dir string, entries []megabinary.Entry, modules map[string][]byte) (mb, key, cache string, k *vkernel.Kernel) {
	t.Helper()
	f, err := megabinary.Build(entries, modules)
	if err != nil {
		t.Fatal(err)
	}
	key = filepath.Join(dir, "key")
	pub, err := megabinary.GenerateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := megabinary.ReadPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f.Sign(priv)
	mb = filepath.Join(dir, "t.vkmb")
	if err := f.WriteFile(mb); err != nil {
		t.Fatal(err)
	}
	cache = filepath.Join(dir, "cache")
	k, err = vkernel.Open(context.Background(), mb, vkernel.Options{TrustedKeys: []ed25519.PublicKey{pub}, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	return mb, key, cache, k
}
