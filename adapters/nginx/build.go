// Package nginx runs NGINX test suites against nginx.wasm in the vkernel
// and against Debian's native nginx in the reference image.
//
// Harnesses of NGINX suites start nginx themselves, as a program given in
// TEST_NGINX_BINARY: the adapter gives them the shim (ShimMain), a host
// program that runs nginx.wasm in the vkernel with a native nginx's
// command line, listening sockets, pid file and signals. Two harnesses:
//
//   - OpenResty's Test::Nginx (Test::Nginx::Socket) driving the .t files of
//     the nginx modules Debian packages (echo, headers-more, set-misc);
//     its TAP output is parsed per test (ParseTAP). This is what CI runs.
//   - nginx-tests, upstream's own suite (lib/Test/Nginx.pm), from a
//     checkout the user points at: the same shim, in nginx-tests' terms.
package nginx

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compat-project/compat/adapters/internal/prepare"
	"github.com/compat-project/compat/adapters/internal/shim"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// SuiteName is the suite's name in reports and baselines.
const SuiteName = "nginx"

// Build is an nginx.wasm build made by images/nginx/build-wasm.sh: a
// directory holding nginx.wasm and build-info.json.
type Build struct {
	Dir string
	// Version is the Debian source version it was built from, such as
	// "1.22.1-9+deb12u9".
	Version string
}

// OpenBuild opens a build directory, reading its build-info.json.
func OpenBuild(dir string) (*Build, error) {
	v, err := wasmbuild.SourceVersion(dir)
	if err != nil {
		return nil, fmt.Errorf("nginx.wasm build: %w", err)
	}
	b := &Build{Dir: dir, Version: v}
	if _, err := os.Stat(b.Wasm()); err != nil {
		return nil, fmt.Errorf("nginx.wasm build %s: %w (run: make -f images/images.mk nginx-wasm)", dir, err)
	}
	return b, nil
}

// LatestBuild opens the newest complete build under a cache root
// (CACHE/nginx-wasm/KEY).
func LatestBuild(cache string) (*Build, error) {
	dir, err := wasmbuild.Latest(cache, "nginx-wasm")
	if err != nil {
		return nil, fmt.Errorf("nginx.wasm: %w", err)
	}
	return OpenBuild(dir)
}

// Wasm is the nginx module.
func (b *Build) Wasm() string { return filepath.Join(b.Dir, "nginx.wasm") }

// ReferenceImage is the Docker image of Debian's native nginx of the same
// version (images/nginx/build-image.sh).
func (b *Build) ReferenceImage() string {
	return "compat/nginx-reference:" + strings.NewReplacer("+", "_", "~", "_", ":", "-").Replace(b.Version)
}

// MaxListeners is how many listening sockets an instance may be handed.
const MaxListeners = 16

// Entry is the megabinary entry for the build: nginx.wasm with any mount
// (the shim mounts the test's own directories), up to MaxListeners
// listeners, and outgoing connections to loopback only (proxy_pass and
// subrequests to the test's own servers).
func (b *Build) Entry() megabinary.SpecEntry {
	return megabinary.SpecEntry{
		Name: "nginx",
		Wasm: b.Wasm(),
		Resources: megabinary.Resources{
			Mounts:    []megabinary.MountRule{{Guest: "/"}},
			Listeners: MaxListeners,
			Connect:   []string{"127.0.0.0/8", "::1/128"},
		},
	}
}

// Shim is a prepared TEST_NGINX_BINARY: an executable script named nginx
// that runs ShimMain with the environment it needs, and the signed
// megabinary it runs.
type Shim struct {
	// Binary is the script, to give harnesses as TEST_NGINX_BINARY.
	Binary string
	// Megabinary is the signed megabinary holding the build's entry.
	Megabinary string
	// Digest is the megabinary's digest.
	Digest string
}

// PrepareShim writes into dir (which must exist) a megabinary holding only
// b's entry, signed with a key made for it, and the script nginx that runs
// self (the command that calls ShimMain, such as {"/usr/bin/compat",
// "nginx-shim"}) with the shim's environment set. cache is the AOT cache
// root ("" compiles on every start).
func PrepareShim(dir string, b *Build, self []string, cache string) (*Shim, error) {
	if len(self) == 0 {
		return nil, fmt.Errorf("nginx shim: no command to run it")
	}
	if err := b.takesSignals(); err != nil {
		return nil, fmt.Errorf("nginx shim: %w", err)
	}
	signed, err := prepare.Sign(dir, "nginx", []megabinary.SpecEntry{b.Entry()})
	if err != nil {
		return nil, fmt.Errorf("nginx shim: %w", err)
	}
	bin := filepath.Join(dir, "nginx")
	env := (&shim.Config{Megabinary: signed.Path, PublicKey: signed.PublicKey, Wasm: b.Wasm(), Cache: cache}).Env()
	if err := prepare.WriteScript(bin, "nginx.wasm in the vkernel with a native nginx's command line (compat adapters/nginx).", env, self); err != nil {
		return nil, fmt.Errorf("nginx shim: %w", err)
	}
	return &Shim{Binary: bin, Megabinary: signed.Path, Digest: signed.Digest}, nil
}

// takesSignals checks that the build takes its signals from
// vkernel.proc_signals, as the shim passes them on. Builds made before
// (their port read signal letters from a control listener instead) would
// ignore every signal: QUIT and TERM would not stop them.
func (b *Build) takesSignals() error {
	imports, err := wasmbuild.Imports(b.Dir)
	if err != nil {
		return err
	}
	if !slices.Contains(imports["vkernel"], "proc_signals") {
		return fmt.Errorf("%s does not import vkernel.proc_signals: it predates signal delivery through the vkernel, which the shim relies on; rebuild (images/nginx/build-wasm.sh prints the build directory) and run with -nginx-build DIR, or remove the older build from the cache (the newest complete one is the default)", b.Wasm())
	}
	return nil
}
