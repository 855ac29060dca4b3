package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/runners/vktarget"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// stopFixture signs a megabinary of a guest that spins without host calls
// and one that waits in poll_oneoff, and returns the compat binary and the
// exec flags for it.
func stopFixture(t *testing.T) (compatBin string, flags []string, dir string) {
	t.Helper()
	vkprobe, err := guests.C("vkprobe.c")
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	spin, err := guests.WAT(`(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))`)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "spin.wasm"), spin, 0o755)
	os.WriteFile(filepath.Join(dir, "wait.wasm"), vkprobe, 0o755)
	spec := `{"entries": [{"name": "spin", "wasm": "spin.wasm"}, {"name": "wait", "wasm": "wait.wasm"}]}`
	os.WriteFile(filepath.Join(dir, "spec.json"), []byte(spec), 0o644)
	key := filepath.Join(dir, "key")
	if _, err := megabinary.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	mb := filepath.Join(dir, "stop.vkmb")
	t.Setenv("COMPAT_CACHE", filepath.Join(dir, "cache"))
	if code, _, errOut := compat(t, "megabinary", "build", "-spec", filepath.Join(dir, "spec.json"), "-out", mb, "-key", key); code != 0 {
		t.Fatalf("build: %d %s", code, errOut)
	}
	return testenv.CompatExec(t)[0], []string{"exec", "-megabinary", mb, "-pubkey", key + ".pub", "-cache", filepath.Join(dir, "cache")}, dir
}

// TestExecTimeout: -timeout stops a guest waiting in a host call and one
// computing without host calls, with exit 125, the -result-fd report
// saying so.
func TestExecTimeout(t *testing.T) {
	bin, flags, dir := stopFixture(t)
	for _, tc := range []struct {
		guest   []string
		within  time.Duration
		message string
	}{
		{[]string{filepath.Join(dir, "wait.wasm"), "signals"}, 2 * time.Second, "context deadline exceeded"},
		{[]string{filepath.Join(dir, "spin.wasm")}, 2 * time.Second, "context deadline exceeded"},
	} {
		r, w, _ := os.Pipe()
		args := append(append(append([]string(nil), flags...), "-timeout", "300ms", "-result-fd", "3"), tc.guest...)
		cmd := exec.Command(bin, args...)
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		cmd.ExtraFiles = []*os.File{w}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%s: still running 60 s after a 300ms -timeout", tc.guest[0])
		}
		took := time.Since(start)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitTrap || !strings.Contains(errOut.String(), tc.message) {
			t.Fatalf("%s: %v, stderr %q; want exit %d saying %q", tc.guest[0], err, errOut.String(), exitTrap, tc.message)
		}
		var res vktarget.ExecResult
		b, _ := readAll(r)
		if json.Unmarshal(b, &res) != nil || res.Trap == "" {
			t.Fatalf("%s: -result-fd gave %q, want a trap", tc.guest[0], b)
		}
		// The bound is loose on purpose (a slow machine); what matters is
		// that it ends, and the figure is logged.
		t.Logf("%s stopped %v after its start", filepath.Base(tc.guest[0]), took)
		if took > tc.within+5*time.Second {
			t.Errorf("%s took %v to stop", tc.guest[0], took)
		}
	}
}

// TestExecInterrupt: compat exec dies of SIGINT at once, as a native
// program without handlers does, even while its guest computes.
func TestExecInterrupt(t *testing.T) {
	bin, flags, dir := stopFixture(t)
	cmd := exec.Command(bin, append(flags, filepath.Join(dir, "spin.wasm"))...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
			t.Fatalf("after SIGINT: %v, want death by SIGINT", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("compat exec still running 30 s after SIGINT")
	}
}

// TestExecInterruptTakesChildren: the child processes of a guest (a chain
// of two) end with compat exec when SIGINT kills it.
func TestExecInterruptTakesChildren(t *testing.T) {
	posix, err := guests.CPosix("posix.c", guests.Clang14)
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	os.WriteFile(filepath.Join(root, "posix.wasm"), posix, 0o755)
	spec := `{"entries": [{"name": "posix", "wasm": "root/posix.wasm", "resources": {"mounts": [{"guest": "/"}], "processes": 4}}]}`
	os.WriteFile(filepath.Join(dir, "spec.json"), []byte(spec), 0o644)
	key := filepath.Join(dir, "key")
	if _, err := megabinary.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	mb := filepath.Join(dir, "p.vkmb")
	t.Setenv("COMPAT_CACHE", filepath.Join(dir, "cache"))
	if code, _, errOut := compat(t, "megabinary", "build", "-spec", filepath.Join(dir, "spec.json"), "-out", mb, "-key", key); code != 0 {
		t.Fatalf("build: %d %s", code, errOut)
	}
	cmd := exec.Command(testenv.CompatExec(t)[0], "exec", "-megabinary", mb, "-pubkey", key+".pub", "-cache", filepath.Join(dir, "cache"),
		"-mount", "/="+root, filepath.Join(root, "posix.wasm"), "tree", "/posix.wasm", "2")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var pids []int
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "leaf" {
		if v, ok := strings.CutPrefix(sc.Text(), "tree_pid="); ok {
			pid, _ := strconv.Atoi(v)
			pids = append(pids, pid)
		}
	}
	if len(pids) != 3 || pids[0] != cmd.Process.Pid {
		t.Fatalf("tree pids %v: want compat exec's (%d) and two children's", pids, cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGINT)
	go io.Copy(io.Discard, out)
	if err := cmd.Wait(); err == nil {
		t.Fatal("compat exec survived SIGINT")
	}
	for _, pid := range pids[1:] {
		deadline := time.Now().Add(10 * time.Second)
		for running(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("child process %d still runs after compat exec died of SIGINT", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// running reports whether pid is a process that has not ended. The
// children of a process killed outright are the host init's to reap, and
// some inits never do: a zombie has ended.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestExecCPUProfile: -cpuprofile writes a Go CPU profile when SIGTERM
// ends compat exec, which still dies of the signal.
func TestExecCPUProfile(t *testing.T) {
	bin, flags, dir := stopFixture(t)
	prof := filepath.Join(dir, "cpu.prof")
	cmd := exec.Command(bin, append(append(flags, "-cpuprofile", prof), filepath.Join(dir, "wait.wasm"), "signals")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Fatalf("after SIGTERM: %v, want death by SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("compat exec still running 30 s after SIGTERM")
	}
	f, err := os.Open(prof)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A profile is a gzipped protocol buffer.
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s is not a profile: %v", prof, err)
	}
	b, err := io.ReadAll(z)
	if err != nil || len(b) == 0 {
		t.Fatalf("%s: %d bytes, %v", prof, len(b), err)
	}
}

func readAll(f *os.File) ([]byte, error) {
	defer f.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(f)
	return b.Bytes(), err
}
