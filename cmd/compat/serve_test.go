package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// serveFixture starts `compat serve` (the real binary) with a megabinary
// of the posix guest (vkernel/guests/src/posix.c) and returns the binary,
// the socket, the directory holding posix.wasm and an unlisted copy, and
// the service's audit log. The service is stopped with the test.
func serveFixture(t *testing.T) (bin, sock, dir, audit string, srv *exec.Cmd) {
	t.Helper()
	wasm, err := guests.CPosix("posix.c", guests.Clang14)
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "posix.wasm"), wasm, 0o755)
	os.WriteFile(filepath.Join(dir, "unlisted.wasm"), append(append([]byte(nil), wasm...), 0), 0o755)
	os.WriteFile(filepath.Join(dir, "spec.json"), []byte(`{"entries": [{"name": "posix", "wasm": "posix.wasm"}]}`), 0o644)
	key := filepath.Join(dir, "key")
	if _, err := megabinary.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	mb := filepath.Join(dir, "serve.vkmb")
	cache := filepath.Join(dir, "cache")
	t.Setenv("COMPAT_CACHE", cache)
	if code, _, errOut := compat(t, "megabinary", "build", "-spec", filepath.Join(dir, "spec.json"), "-out", mb, "-key", key); code != 0 {
		t.Fatalf("build: %d %s", code, errOut)
	}
	bin = testenv.CompatExec(t)[0]
	sock = filepath.Join(dir, "serve.sock")
	audit = filepath.Join(dir, "audit.jsonl")
	srv = exec.Command(bin, "serve", "-megabinary", mb, "-pubkey", key+".pub", "-cache", cache, "-audit", audit,
		"-socket", sock, "-prewarm", "posix")
	errR, errW, _ := os.Pipe()
	srv.Stderr = errW
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	errW.Close()
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(errR)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				ready <- true
			}
			t.Logf("serve: %s", sc.Text())
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("compat serve ended before listening")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("compat serve is not listening after 30 s")
	}
	return bin, sock, dir, audit, srv
}

// via runs compat exec -via and returns its exit status and output.
func via(t *testing.T, bin, sock string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"exec", "-via", sock}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// TestServeCLI: compat exec -via runs a listed file with the guest's exit
// status and output, exits 126 for an unlisted one with an audit record,
// dies of the signal it forwards to its guest, and a stopped compat serve
// lets the request in flight finish.
func TestServeCLI(t *testing.T) {
	bin, sock, dir, audit, srv := serveFixture(t)
	if code, out, errOut := via(t, bin, sock, filepath.Join(dir, "posix.wasm"), "echo", "hello"); code != 0 || out != "hello\n" {
		t.Errorf("echo: exit %d, %q, %s", code, out, errOut)
	}
	if code, _, errOut := via(t, bin, sock, filepath.Join(dir, "posix.wasm"), "exit", "7"); code != 7 {
		t.Errorf("exit 7: exit %d, %s", code, errOut)
	}
	code, _, errOut := via(t, bin, sock, filepath.Join(dir, "unlisted.wasm"), "echo", "x")
	if code != exitDenied || !strings.Contains(errOut, "not in the signed manifest") {
		t.Errorf("unlisted: exit %d, %s", code, errOut)
	}
	log, _ := os.ReadFile(audit)
	if !strings.Contains(string(log), `"decision":"deny","reason":"not in the signed manifest`) || !strings.Contains(string(log), `"peer":"uid=`) {
		t.Errorf("audit log lacks the denial naming the peer:\n%s", log)
	}
	if code, _, errOut := via(t, bin, sock, "-megabinary", "x", filepath.Join(dir, "posix.wasm")); code != exitUsage || !strings.Contains(errOut, "-megabinary cannot be given with -via") {
		t.Errorf("-via with -megabinary: exit %d, %s", code, errOut)
	}

	// SIGTERM to the client reaches the guest, which dies of it; so
	// does the client.
	cmd := exec.Command(bin, "exec", "-via", sock, filepath.Join(dir, "posix.wasm"), "write-later", "20000", "x")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("client sent SIGTERM: %v, want killed by SIGTERM", cmd.ProcessState)
	}

	// Stopping the service with a request in flight: it runs to its end.
	inflight := exec.Command(bin, "exec", "-via", sock, filepath.Join(dir, "posix.wasm"), "write-later", "1000", "finished")
	var out bytes.Buffer
	inflight.Stdout = &out
	if err := inflight.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	srv.Process.Signal(syscall.SIGTERM)
	if err := inflight.Wait(); err != nil || out.String() != "finished" {
		t.Errorf("request in flight when the service stopped: %v, %q", err, out.String())
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("compat serve after SIGTERM: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}
