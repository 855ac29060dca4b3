// Package nginx runs NGINX test suites against nginx.wasm in the vkernel
// and against Debian's native nginx in the reference image. Its Suite is
// the runners.Suite of "compat run -suite nginx".
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
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/compat-project/compat/adapters/internal/prepare"
	"github.com/compat-project/compat/adapters/internal/shim"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// Name is the suite's name in reports and baselines.
const Name = "nginx"

// MaxListeners is how many listening sockets an instance may be handed.
const MaxListeners = 16

// entry is the megabinary entry for b: nginx.wasm with any mount (the shim
// mounts the test's own directories, where nginx may bind and connect unix
// sockets), up to MaxListeners handed-over TCP listeners, sockets of its
// own bound to loopback only (UDP and TCP listeners the shim did not hand
// over, proxy_bind) and connections and datagrams to loopback only
// (proxy_pass, the resolver, syslog: the test's own servers).
func entry(b *wasmbuild.Build) megabinary.SpecEntry {
	return megabinary.SpecEntry{
		Name: "nginx",
		Wasm: b.Wasm(),
		Resources: megabinary.Resources{
			Mounts:    []megabinary.MountRule{{Guest: "/"}},
			Listeners: MaxListeners,
			Connect:   []string{"127.0.0.0/8", "::1/128"},
			Bind:      []string{"127.0.0.0/8", "::1/128"},
		},
	}
}

// Shim is a prepared TEST_NGINX_BINARY: an executable script named nginx
// that runs ShimMain with the environment it needs.
type Shim struct {
	// Binary is the script, to give harnesses as TEST_NGINX_BINARY.
	Binary string
	// Megabinary and PublicKey are the signed megabinary it runs and its
	// key.
	Megabinary, PublicKey string
}

// PrepareShim writes into dir (which must exist) the script nginx that
// runs self (the command that calls ShimMain, such as {"/usr/bin/compat",
// "nginx-shim"}) with the shim's environment set: b's module run from the
// megabinary spec names (spec.Megabinary, signed with the key in
// spec.PublicKey: the pipeline's, so that the run's megabinary digest is
// what the harness ran), AOT code under spec.Cache ("" compiles on every
// start).
func PrepareShim(dir string, b *wasmbuild.Build, self []string, spec runners.TargetSpec) (*Shim, error) {
	return prepareShim(dir, b, b.Wasm(), self, spec)
}

// prepareShim is PrepareShim with b's nginx.wasm at the path wasm (a copy,
// such as one another user can read).
func prepareShim(dir string, b *wasmbuild.Build, wasm string, self []string, spec runners.TargetSpec) (*Shim, error) {
	if len(self) == 0 {
		return nil, errors.New("nginx shim: no command to run it")
	}
	if err := takesSignals(b); err != nil {
		return nil, fmt.Errorf("nginx shim: %w", err)
	}
	if spec.Megabinary == "" || spec.PublicKey == "" {
		return nil, errors.New("nginx shim: no megabinary to run (the vkernel target's spec names none)")
	}
	bin := filepath.Join(dir, "nginx")
	env := (&shim.Config{Megabinary: spec.Megabinary, PublicKey: spec.PublicKey, Wasm: wasm, Cache: spec.Cache, Entry: entry(b).Name}).Env()
	if err := prepare.WriteScript(bin, "nginx.wasm in the vkernel with a native nginx's command line (compat adapters/nginx).", env, self); err != nil {
		return nil, fmt.Errorf("nginx shim: %w", err)
	}
	return &Shim{Binary: bin, Megabinary: spec.Megabinary, PublicKey: spec.PublicKey}, nil
}

// takesSignals checks that the build takes its signals from
// vkernel.proc_signals, as the shim passes them on. Builds made before
// (their port read signal letters from a control listener instead) would
// ignore every signal: QUIT and TERM would not stop them.
func takesSignals(b *wasmbuild.Build) error {
	imports, err := wasmbuild.Imports(b.Dir)
	if err != nil {
		return err
	}
	if !slices.Contains(imports["vkernel"], "proc_signals") {
		return fmt.Errorf("%s does not import vkernel.proc_signals: it predates signal delivery through the vkernel, which the shim relies on; rebuild (images/nginx/build-wasm.sh prints the build directory) and run with -nginx-build DIR, or remove the older build from the cache (the newest complete one is the default)", b.Wasm())
	}
	return nil
}
