package shim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compat-project/compat/adapters/internal/prepare"
	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

func TestConfigEnvRoundTrip(t *testing.T) {
	want := &Config{
		Megabinary: "/run/x/test.vkmb",
		PublicKey:  "/run/x/test-key.pub",
		Wasm:       "/cache/build/prog.wasm",
		Cache:      "/cache",
		Mounts:     []vkernel.Mount{{Guest: "/", Host: "/"}, {Guest: "/srv", Host: "/tmp/srv"}},
	}
	env := want.Env()
	for _, kv := range env {
		t.Setenv(kv[0], kv[1])
	}
	got, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FromEnv after Env %q:\n got %+v\nwant %+v", env, got, want)
	}

	// No mounts: no variable for them, and none read back.
	want.Mounts = nil
	env = want.Env()
	for _, kv := range env {
		if kv[0] == EnvMounts {
			t.Fatalf("Env without mounts sets %s=%q", kv[0], kv[1])
		}
	}
	os.Unsetenv(EnvMounts)
	if got, err := FromEnv(); err != nil || got.Mounts != nil {
		t.Fatalf("FromEnv without %s: mounts %v, %v", EnvMounts, got.Mounts, err)
	}
}

// TestFromEnvErrors: a missing variable or a malformed mount list is an
// error that names the variable.
func TestFromEnvErrors(t *testing.T) {
	set := func() {
		t.Setenv(EnvMegabinary, "/x.vkmb")
		t.Setenv(EnvPublicKey, "/x.pub")
		t.Setenv(EnvWasm, "/x.wasm")
		t.Setenv(EnvMounts, "")
	}
	for _, name := range []string{EnvMegabinary, EnvPublicKey, EnvWasm} {
		set()
		t.Setenv(name, "")
		if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("without %s: error %v, want one naming it", name, err)
		}
	}
	for _, bad := range []string{"/srv", "srv=/tmp", "/srv=tmp", "/a=/b,,/c=/d"} {
		set()
		t.Setenv(EnvMounts, bad)
		if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), EnvMounts) {
			t.Errorf("%s=%q: error %v, want one naming it", EnvMounts, bad, err)
		}
	}
}

func TestAddDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	base := []vkernel.Mount{{Guest: "/elsewhere", Host: "/tmp"}}
	for _, c := range []struct {
		dir  string
		want []vkernel.Mount
	}{
		{"relative/dir", base},
		{filepath.Join(dir, "missing"), base},
		{file, base},
		{dir + "/./sub/", append(base[:1:1], vkernel.Mount{Guest: sub, Host: sub})},
	} {
		if got := AddDir(base, c.dir); !reflect.DeepEqual(got, c.want) {
			t.Errorf("AddDir(%v, %q) = %v, want %v", base, c.dir, got, c.want)
		}
	}
	// A directory a mount already holds is not mounted again.
	held := []vkernel.Mount{{Guest: dir, Host: dir}}
	if got := AddDir(held, sub); !reflect.DeepEqual(got, held) {
		t.Errorf("AddDir under a mount: %v, want %v", got, held)
	}
}

// guestWasm builds a test guest of vkernel/guests; a missing build tool
// stops the test through testenv.Missing.
func guestWasm(t *testing.T, build func() ([]byte, error)) []byte {
	t.Helper()
	wasm, err := build()
	switch {
	case errors.Is(err, guests.ErrToolMissing):
		testenv.Missing(t, "cannot build the test guest: %v", err)
	case err != nil:
		t.Fatalf("building the test guest: %v", err)
	}
	return wasm
}

// testKernel signs a megabinary of the guests named in wasm (name to
// module bytes) with prepare.Sign, as the adapters do, and opens it
// through the environment FromEnv reads. It returns the kernel and the
// directory holding NAME.wasm for each guest.
func testKernel(t *testing.T, wasm map[string][]byte) (*Kernel, string) {
	t.Helper()
	dir := t.TempDir()
	var entries []megabinary.SpecEntry
	for name, b := range wasm {
		p := filepath.Join(dir, name+".wasm")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, megabinary.SpecEntry{Name: name, Wasm: p, Resources: megabinary.Resources{Listeners: 4, Mounts: []megabinary.MountRule{{Guest: "/"}}}})
	}
	signed, err := prepare.Sign(dir, "test", entries)
	if err != nil {
		t.Fatal(err)
	}
	// Wasm names the first guest; Run's callers route with Kernel.wasm.
	c := &Config{Megabinary: signed.Path, PublicKey: signed.PublicKey, Wasm: entries[0].Wasm}
	for _, kv := range c.Env() {
		t.Setenv(kv[0], kv[1])
	}
	cfg, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	k, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Error(err)
		}
	})
	return k, dir
}

// TestRunExitStatus: the guest's own exit status is Run's.
func TestRunExitStatus(t *testing.T) {
	k, _ := testKernel(t, map[string][]byte{"probe": guestWasm(t, func() ([]byte, error) { return guests.C("probe.c") })})
	for _, want := range []int{0, 7, 200} {
		var stderr bytes.Buffer
		code, err := k.Run(context.Background(), Instance{Args: []string{"probe", "exit", fmt.Sprint(want)}, Stderr: &stderr})
		if err != nil || code != want {
			t.Errorf("probe exit %d: Run = %d, %v (stderr %q)", want, code, err, stderr.String())
		}
	}
}

// TestRunTrap: a trap is TrapStatus, reported on stderr in the caller's
// words with the build's file name.
func TestRunTrap(t *testing.T) {
	wasm := guestWasm(t, func() ([]byte, error) {
		return guests.WAT(`(module (memory (export "memory") 1) (func (export "_start") unreachable))`)
	})
	k, _ := testKernel(t, map[string][]byte{"trap": wasm})
	var stderr bytes.Buffer
	code, err := k.Run(context.Background(), Instance{Args: []string{"trap"}, Stderr: &stderr, TrapReport: "prog: [alert] "})
	if err != nil || code != TrapStatus {
		t.Fatalf("Run = %d, %v; want %d", code, err, TrapStatus)
	}
	if got := stderr.String(); !strings.HasPrefix(got, "prog: [alert] trap.wasm trapped: ") || !strings.Contains(got, "unreachable") {
		t.Errorf("stderr %q, want the report prefix, the file and the trap", got)
	}
}

// TestRunCancelled: an instance ended through its context is the
// context's cause, not a trap, and nothing is reported.
func TestRunCancelled(t *testing.T) {
	k, _ := testKernel(t, map[string][]byte{"vkprobe": guestWasm(t, func() ([]byte, error) { return guests.C("vkprobe.c") })})
	stopped := errors.New("stopped by the test")
	ctx, cancel := context.WithCancelCause(context.Background())
	out := newGuestLines()
	defer out.w.Close()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := k.Run(ctx, Instance{Args: []string{"vkprobe", "signals"}, Stdout: out.w, Stderr: &stderr})
		done <- err
	}()
	if l := out.next(t); l != "waiting" {
		t.Fatalf("first line %q, want waiting", l)
	}
	cancel(stopped)
	if err := <-done; !errors.Is(err, stopped) {
		t.Fatalf("Run after cancel: %v, want the cause %q", err, stopped)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr after cancel: %q", stderr.String())
	}
}

// TestRunSignals: signals on Instance.Signals reach the guest through
// vkernel.proc_signals (the guest prints the set it took) and SIGTERM
// ends it with status 0.
func TestRunSignals(t *testing.T) {
	k, _ := testKernel(t, map[string][]byte{"vkprobe": guestWasm(t, func() ([]byte, error) { return guests.C("vkprobe.c") })})
	sigs := make(chan os.Signal, 2)
	out := newGuestLines()
	defer out.w.Close()
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := k.Run(context.Background(), Instance{Args: []string{"vkprobe", "signals"}, Stdout: out.w, Signals: sigs})
		done <- result{code, err}
	}()
	if l := out.next(t); l != "waiting" {
		t.Fatalf("first line %q, want waiting", l)
	}
	sigs <- syscall.SIGHUP
	if l := out.next(t); !strings.HasSuffix(l, " set=0x2") {
		t.Fatalf("after SIGHUP: %q, want set 0x2 (bit 1)", l)
	}
	sigs <- syscall.SIGTERM
	if l := out.next(t); !strings.HasSuffix(l, " set=0x8000") {
		t.Fatalf("after SIGTERM: %q, want set 0x8000 (bit 15)", l)
	}
	if r := <-done; r.err != nil || r.code != 0 {
		t.Fatalf("Run = %d, %v; want 0 after SIGTERM", r.code, r.err)
	}
}

// TestRunListeners: a listener bound by the caller is the guest's, at its
// own address, and stays open for the caller after the instance ends.
func TestRunListeners(t *testing.T) {
	k, _ := testKernel(t, map[string][]byte{"vkprobe": guestWasm(t, func() ([]byte, error) { return guests.C("vkprobe.c") })})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var stdout bytes.Buffer
	// No mounts: the listener is the guest's first fd after stdio.
	code, err := k.Run(context.Background(), Instance{Args: []string{"vkprobe", "local", "3"}, Stdout: &stdout, Listeners: []net.Listener{l}})
	if err != nil || code != 0 {
		t.Fatalf("Run = %d, %v", code, err)
	}
	if want := "errno=0 local=" + l.Addr().String() + "\n"; stdout.String() != want {
		t.Fatalf("guest saw %q, want %q", stdout.String(), want)
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("the listener is closed after the instance: %v", err)
	}
	c.Close()
}

// TestOpenErrors: a bad key file or megabinary is an error naming it.
func TestOpenErrors(t *testing.T) {
	wasm := guestWasm(t, func() ([]byte, error) {
		return guests.WAT(`(module (memory (export "memory") 1) (func (export "_start")))`)
	})
	dir := t.TempDir()
	p := filepath.Join(dir, "nop.wasm")
	if err := os.WriteFile(p, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	entries := []megabinary.SpecEntry{{Name: "nop", Wasm: p}}
	signed, err := prepare.Sign(dir, "one", entries)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), &Config{Megabinary: signed.Path, PublicKey: filepath.Join(dir, "missing.pub")}); err == nil || !strings.Contains(err.Error(), EnvPublicKey) {
		t.Errorf("missing key file: %v, want an error naming %s", err, EnvPublicKey)
	}
	other, err := prepare.Sign(t.TempDir(), "other", entries)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), &Config{Megabinary: signed.Path, PublicKey: other.PublicKey}); err == nil || !strings.Contains(err.Error(), signed.Path) {
		t.Errorf("megabinary signed with another key: %v, want an error naming %s", err, signed.Path)
	}
}

// guestLines is a guest's stdout read line by line as the guest writes.
type guestLines struct {
	w     *io.PipeWriter
	lines chan string
}

func newGuestLines() *guestLines {
	r, w := io.Pipe()
	g := &guestLines{w: w, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			g.lines <- sc.Text()
		}
		close(g.lines)
	}()
	return g
}

// next waits for the guest's next line; the bound only keeps a broken
// guest from hanging the test.
func (g *guestLines) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-g.lines:
		if !ok {
			t.Fatal("the guest's output ended")
		}
		return l
	case <-time.After(time.Minute):
		t.Fatal("no line from the guest within a minute")
	}
	return ""
}
