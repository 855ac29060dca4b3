package vkernel

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// guest builds a test guest or skips the test, naming the missing tool.
func guest(t testing.TB, build func() ([]byte, error)) []byte {
	t.Helper()
	b, err := build()
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "cannot build the test guest: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func identGuest(t testing.TB, id string) []byte {
	return guest(t, func() ([]byte, error) { return guests.Ident(id) })
}

func cGuest(t testing.TB, name string) []byte {
	return guest(t, func() ([]byte, error) { return guests.C(name) })
}

// testEntry is one program of a test megabinary; File is where its wasm is
// written (relative to the test's directory).
type testEntry struct {
	megabinary.Entry
	wasm []byte
}

func entry(name string, wasm []byte, res megabinary.Resources) testEntry {
	return testEntry{Entry: megabinary.Entry{Name: name, Resources: res}, wasm: wasm}
}

// fixture is a signed megabinary in a temporary directory, with every
// entry's wasm file written beside it as NAME.wasm.
type fixture struct {
	dir  string
	mb   string
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func (f *fixture) wasm(name string) string { return filepath.Join(f.dir, name+".wasm") }

func newFixture(t testing.TB, entries ...testEntry) *fixture {
	t.Helper()
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(nil)
	modules := map[string][]byte{}
	var es []megabinary.Entry
	for _, e := range entries {
		d := megabinary.SHA256(e.wasm)
		modules[d] = e.wasm
		e.Module = d
		e.Hashes = append([]string{d}, e.Hashes...)
		es = append(es, e.Entry)
		if err := os.WriteFile(filepath.Join(dir, e.Name+".wasm"), e.wasm, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f, err := megabinary.Build(es, modules)
	if err != nil {
		t.Fatal(err)
	}
	f.Sign(priv)
	mb := filepath.Join(dir, "test.vkmb")
	if err := f.WriteFile(mb); err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: dir, mb: mb, pub: pub, priv: priv}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMain lets the test binary be the kernels' child command: started as
// a vkernel child process, it runs the child and exits.
func TestMain(m *testing.M) {
	ChildMain()
	os.Exit(m.Run())
}

// selfCommand is the ChildCommand of the tests' kernels: this test binary.
func selfCommand() []string { return []string{os.Args[0]} }

func (f *fixture) open(t testing.TB, opts Options) (*Kernel, *syncBuffer) {
	t.Helper()
	audit := &syncBuffer{}
	if opts.ChildCommand == nil {
		opts.ChildCommand = selfCommand()
	}
	opts.TrustedKeys = append(opts.TrustedKeys, f.pub)
	if opts.Audit == nil {
		opts.Audit = audit
	}
	k, err := Open(context.Background(), f.mb, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return k, audit
}

// run execs and returns stdout, failing the test on any error.
func run(t testing.TB, k *Kernel, req Request) (string, *Result) {
	t.Helper()
	var out, errOut bytes.Buffer
	req.Stdout, req.Stderr = &out, &errOut
	res, err := k.Exec(context.Background(), req)
	if err != nil {
		t.Fatalf("exec %s: %v\nstderr: %s", req.Path, err, errOut.String())
	}
	return out.String(), res
}

// field returns the value of key=value in probe output ("" if absent).
func field(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				return v
			}
		}
	}
	return ""
}

func watBytes(text string) ([]byte, error) { return guests.WAT(text) }
