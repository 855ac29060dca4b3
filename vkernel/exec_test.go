package vkernel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat/vkernel/megabinary"
	"golang.org/x/sys/unix"
)

func TestExecRoutesByHash(t *testing.T) {
	f := newFixture(t, entry("a", identGuest(t, "guest-a"), megabinary.Resources{}))
	k, audit := f.open(t, Options{})
	out, res := run(t, k, Request{Path: f.wasm("a")})
	if out != "guest-a\n" || res.Entry != "a" || res.ExitCode != 0 {
		t.Fatalf("got %q entry %q exit %d", out, res.Entry, res.ExitCode)
	}
	var rec AuditRecord
	if err := json.Unmarshal([]byte(strings.SplitN(audit.String(), "\n", 2)[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Decision != "allow" || rec.Entry != "a" || rec.Hash != megabinary.SHA256(identGuest(t, "guest-a")) {
		t.Fatalf("audit record %+v", rec)
	}
}

func TestExecAlias(t *testing.T) {
	// A native file listed as an alias routes to the entry; its own bytes
	// never run.
	native := []byte("\x7fELF pretend native binary")
	e := entry("a", identGuest(t, "guest-a"), megabinary.Resources{})
	e.Hashes = []string{megabinary.SHA256(native)}
	f := newFixture(t, e)
	path := filepath.Join(f.dir, "native-a")
	os.WriteFile(path, native, 0o755)
	k, _ := f.open(t, Options{})
	if out, _ := run(t, k, Request{Path: path}); out != "guest-a\n" {
		t.Fatalf("alias ran %q", out)
	}
}

func TestExecDeniesUnlisted(t *testing.T) {
	f := newFixture(t, entry("a", identGuest(t, "guest-a"), megabinary.Resources{}))
	k, audit := f.open(t, Options{})
	write := func(name string, data []byte) string {
		p := filepath.Join(f.dir, name)
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	elf, err := os.ReadFile("/bin/true")
	if err != nil {
		testenv.Missing(t, "no /bin/true to copy as a native ELF (coreutils)")
	}
	random := make([]byte, 4096)
	rand.New(rand.NewSource(1)).Read(random)
	fifo := filepath.Join(f.dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	other := identGuest(t, "not-listed")
	cases := []struct {
		name, path, reason string
	}{
		{"script", write("script.sh", []byte("#!/bin/sh\necho hi\n")), "#! script"},
		{"native ELF", write("true", elf), "native ELF"},
		{"random bytes", write("random", random), "unknown content"},
		{"empty file", write("empty", nil), "empty file"},
		{"unlisted wasm", write("other.wasm", other), "WebAssembly module that is not in the signed megabinary"},
		{"directory", f.dir, "is a directory"},
		{"FIFO", fifo, "is a FIFO"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			done := make(chan struct{})
			var res *Result
			go func() {
				res, err = k.Exec(context.Background(), Request{Path: c.path, Stdout: &out})
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("exec did not return")
			}
			var denied *DeniedError
			if !errors.As(err, &denied) || res != nil {
				t.Fatalf("err = %v, res = %+v; want a DeniedError", err, res)
			}
			if !strings.Contains(denied.Reason, c.reason) {
				t.Errorf("reason %q does not say %q", denied.Reason, c.reason)
			}
			if out.Len() != 0 {
				t.Errorf("denied exec wrote %q", out.String())
			}
			if !strings.Contains(audit.String(), `"path":"`+c.path+`"`) {
				t.Errorf("no audit record for %s", c.path)
			}
		})
	}
	if _, err := k.Exec(context.Background(), Request{Path: filepath.Join(f.dir, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// flipDenied checks that every flipped variant of a listed guest is denied.
func flipDenied(t *testing.T, k *Kernel, path string, orig []byte, bits []int) {
	t.Helper()
	fd, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	for _, bit := range bits {
		b := []byte{orig[bit/8] ^ 1<<(bit%8)}
		if _, err := fd.WriteAt(b, int64(bit/8)); err != nil {
			t.Fatal(err)
		}
		_, err := k.Exec(context.Background(), Request{Path: path})
		var denied *DeniedError
		if !errors.As(err, &denied) {
			t.Fatalf("bit %d flipped: exec was not denied: %v", bit, err)
		}
		if _, err := fd.WriteAt(orig[bit/8:bit/8+1], int64(bit/8)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBitFlipsSmallGuestExhaustive(t *testing.T) {
	wasm := identGuest(t, "small")
	f := newFixture(t, entry("small", wasm, megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	bits := make([]int, len(wasm)*8)
	for i := range bits {
		bits[i] = i
	}
	flipDenied(t, k, f.wasm("small"), wasm, bits)
	// The unflipped file still runs: the flips were denied for their hash.
	if out, _ := run(t, k, Request{Path: f.wasm("small")}); out != "small\n" {
		t.Fatalf("original guest printed %q", out)
	}
	t.Logf("%d single-bit flips of a %d-byte guest denied", len(bits), len(wasm))
}

func TestBitFlipsLargeGuestSampled(t *testing.T) {
	wasm := cGuest(t, "probe.c")
	f := newFixture(t, entry("probe", wasm, megabinary.Resources{}))
	k, _ := f.open(t, Options{})
	n := 10000
	if testing.Short() {
		n = 1000
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	bits := make([]int, n)
	for i := range bits {
		bits[i] = rng.Intn(len(wasm) * 8)
	}
	flipDenied(t, k, f.wasm("probe"), wasm, bits)
	t.Logf("%d sampled single-bit flips of a %d-byte guest denied", n, len(wasm))
}

func TestPolicyMovedFile(t *testing.T) {
	wasm := identGuest(t, "pinned")
	e := entry("pinned", wasm, megabinary.Resources{})
	dir := t.TempDir()
	pinned := filepath.Join(dir, "bin", "pinned")
	e.Paths = []string{pinned}
	f := newFixture(t, e)
	os.MkdirAll(filepath.Dir(pinned), 0o755)
	if err := os.WriteFile(pinned, wasm, 0o755); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(dir, "elsewhere")
	if err := os.Rename(f.wasm("pinned"), moved); err != nil {
		t.Fatal(err)
	}

	hash, _ := f.open(t, Options{Policy: PolicyHash})
	if out, _ := run(t, hash, Request{Path: moved}); out != "pinned\n" {
		t.Fatalf("hash policy, moved file: %q", out)
	}

	pathHash, _ := f.open(t, Options{Policy: PolicyPathHash})
	if out, _ := run(t, pathHash, Request{Path: pinned}); out != "pinned\n" {
		t.Fatalf("path+hash policy, pinned path: %q", out)
	}
	_, err := pathHash.Exec(context.Background(), Request{Path: moved})
	var denied *DeniedError
	if !errors.As(err, &denied) || !strings.Contains(denied.Reason, "not pinned") {
		t.Fatalf("path+hash policy, moved file: %v", err)
	}
	// A symlink at another path to the pinned file resolves to the pinned
	// file, which is what runs.
	link := filepath.Join(dir, "link")
	os.Symlink(pinned, link)
	if out, _ := run(t, pathHash, Request{Path: link}); out != "pinned\n" {
		t.Fatalf("path+hash policy via symlink: %q", out)
	}
}

func TestExitCodeArgsEnv(t *testing.T) {
	probe := cGuest(t, "probe.c")
	withArgs := entry("probe-args", probe, megabinary.Resources{})
	withArgs.Args = []string{"args"}
	withArgs.Env = []string{"PROBE_VAR=from-entry"}
	f := newFixture(t, withArgs)
	k, _ := f.open(t, Options{})
	out, _ := run(t, k, Request{Path: f.wasm("probe-args"), Args: []string{"probe", "x", "y z"}})
	want := "arg0=probe\narg1=args\narg2=x\narg3=y z\nenv=from-entry\n"
	if out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	out, _ = run(t, k, Request{Path: f.wasm("probe-args"), Env: []string{"PROBE_VAR=from-request"}})
	if field(out, "env") != "from-request" {
		t.Fatalf("request env did not override the entry's: %q", out)
	}

	plain := newFixture(t, entry("probe", probe, megabinary.Resources{}))
	k2, _ := plain.open(t, Options{})
	_, res := run(t, k2, Request{Path: plain.wasm("probe"), Args: []string{"probe", "exit", "7"}})
	if res.ExitCode != 7 {
		t.Fatalf("exit code %d, want 7", res.ExitCode)
	}
}

// TestOpenEntries: a kernel opened for some entries compiles only their
// modules, runs them, denies an exec routed to another entry of the same
// signed manifest, and refuses an entry name the manifest lacks.
func TestOpenEntries(t *testing.T) {
	f := newFixture(t,
		entry("a", identGuest(t, "guest-a"), megabinary.Resources{}),
		entry("b", identGuest(t, "guest-b"), megabinary.Resources{}))
	k, audit := f.open(t, Options{Entries: []string{"a"}})
	if out, _ := run(t, k, Request{Path: f.wasm("a")}); out != "guest-a\n" {
		t.Errorf("entry a printed %q", out)
	}
	_, err := k.Exec(context.Background(), Request{Path: f.wasm("b"), Stdout: io.Discard, Stderr: io.Discard})
	var denied *DeniedError
	if !errors.As(err, &denied) || !strings.Contains(denied.Reason, `entry "b" is in the signed manifest but not loaded`) {
		t.Fatalf("exec of an entry not loaded: %v, want a denial naming it", err)
	}
	if !strings.Contains(audit.String(), `"decision":"deny"`) {
		t.Errorf("no deny record in the audit log:\n%s", audit)
	}
	if _, err := Open(context.Background(), f.mb, Options{TrustedKeys: []ed25519.PublicKey{f.pub}, Entries: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `"nope" is not in the megabinary's manifest`) {
		t.Errorf("Open with an unknown entry: %v", err)
	}
}

// TestGCIdleAfterCollection: right after a collection, with nothing
// allocated since, settle sees no collection under way (the runtime
// metrics it reads exist, and say so).
func TestGCIdleAfterCollection(t *testing.T) {
	runtime.GC()
	if !gcIdle() {
		t.Fatal("gcIdle is false right after a collection")
	}
}
