// Package shim runs a wasm build in a vkernel of its own, inside the
// calling process, as the stand-in for a native program that an upstream
// harness starts itself (runtest's src/redis-server, Test::Nginx's
// TEST_NGINX_BINARY). The harness takes the shim process's pid for the
// program's and signals it: the shim hands the instance the listening
// sockets it bound for it and passes the signals on, which the guest takes
// with vkernel.proc_signals (vkernel/ABI.md, "Signals").
//
// What every shim does is here: the environment a prepared script hands
// it (Config), opening the signed megabinary (Open), and running one
// instance with its mounts, listeners and signals, its end mapped to the
// exit status a native process would have (Kernel.Run). What a program
// does its own way stays in its adapter: which sockets its configuration
// asks for, its command line, its pid file, daemon mode and reloads.
package shim

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// The environment a shim reads (FromEnv) and a prepared script sets
// (Config.Env).
const (
	// EnvMegabinary is the signed megabinary holding the build's entry.
	EnvMegabinary = "COMPAT_SHIM_MEGABINARY"
	// EnvPublicKey is the file holding the public key the megabinary is
	// signed with.
	EnvPublicKey = "COMPAT_SHIM_PUBKEY"
	// EnvWasm is the wasm file whose SHA-256 routes the exec to the entry.
	EnvWasm = "COMPAT_SHIM_WASM"
	// EnvCache is the AOT compilation cache root (optional).
	EnvCache = compat.EnvCache
	// EnvEntry names the manifest entry the shim runs (optional): only
	// its module is loaded, not every program of the run's megabinary.
	EnvEntry = "COMPAT_SHIM_ENTRY"
	// EnvMounts lists extra mounts, "GUEST=HOST" pairs of absolute paths
	// separated by commas (optional).
	EnvMounts = "COMPAT_SHIM_MOUNTS"
)

// TrapStatus is the exit status of an instance that trapped: that of a
// native program killed by SIGABRT (128+6) after its crash report, which
// is what harnesses know how to report.
const TrapStatus = 134

// Config is what a shim needs to run a build: the prepared script passes
// it to the shim process in the environment.
type Config struct {
	// Megabinary is the signed megabinary holding the build's entry.
	Megabinary string
	// PublicKey is the file holding the key Megabinary is signed with.
	PublicKey string
	// Wasm is the file the exec is routed by (its SHA-256).
	Wasm string
	// Cache is the AOT compilation cache root; "" compiles on every start.
	Cache string
	// Entry names the manifest entry to load (vkernel.Options.Entries);
	// "" loads them all.
	Entry string
	// Mounts are mounts every instance gets, before the ones the shim
	// adds for the program's own paths.
	Mounts []vkernel.Mount
}

// Env returns c as the NAME, VALUE pairs FromEnv reads, in the order a
// script exports them (prepare.WriteScript takes them as they are).
func (c *Config) Env() [][2]string {
	env := [][2]string{{EnvMegabinary, c.Megabinary}, {EnvPublicKey, c.PublicKey}, {EnvWasm, c.Wasm}, {EnvCache, c.Cache}}
	if c.Entry != "" {
		env = append(env, [2]string{EnvEntry, c.Entry})
	}
	if len(c.Mounts) > 0 {
		pairs := make([]string, len(c.Mounts))
		for i, m := range c.Mounts {
			pairs[i] = m.Guest + "=" + m.Host
		}
		env = append(env, [2]string{EnvMounts, strings.Join(pairs, ",")})
	}
	return env
}

// FromEnv reads the Config of this process's environment. A required
// variable that is missing or empty, or a malformed EnvMounts, is an error
// naming the variable.
func FromEnv() (*Config, error) {
	c := &Config{Megabinary: os.Getenv(EnvMegabinary), PublicKey: os.Getenv(EnvPublicKey), Wasm: os.Getenv(EnvWasm), Cache: os.Getenv(EnvCache), Entry: os.Getenv(EnvEntry)}
	for _, v := range []struct{ name, val string }{{EnvMegabinary, c.Megabinary}, {EnvPublicKey, c.PublicKey}, {EnvWasm, c.Wasm}} {
		if v.val == "" {
			return nil, fmt.Errorf("the vkernel shim needs %s in its environment (the script prepared for it sets it)", v.name)
		}
	}
	if list := os.Getenv(EnvMounts); list != "" {
		for _, kv := range strings.Split(list, ",") {
			guest, host, ok := strings.Cut(kv, "=")
			if !ok || !filepath.IsAbs(guest) || !filepath.IsAbs(host) {
				return nil, fmt.Errorf("%s: %q is not GUEST=HOST with absolute paths", EnvMounts, kv)
			}
			c.Mounts = append(c.Mounts, vkernel.Mount{Guest: filepath.Clean(guest), Host: filepath.Clean(host)})
		}
	}
	return c, nil
}

// AddDir returns mounts with the host directory dir mounted at its own
// path, so that the guest finds a path of the program's command line or
// configuration where the harness put it. Nothing is added when dir is
// not an absolute path to an existing directory, or when a mount already
// holds it.
func AddDir(mounts []vkernel.Mount, dir string) []vkernel.Mount {
	if !filepath.IsAbs(dir) {
		return mounts
	}
	dir = filepath.Clean(dir)
	if _, ok := vkernel.HostPath(mounts, dir); ok {
		return mounts
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return mounts
	}
	return append(mounts, vkernel.Mount{Guest: dir, Host: dir})
}

// Kernel is the megabinary of a Config, opened and verified, ready to run
// instances of its build.
type Kernel struct {
	k    *vkernel.Kernel
	wasm string
}

// Open reads c.PublicKey and opens c.Megabinary with that key as the only
// trusted one, its compiled code cached under c.Cache. Errors name the
// file that failed.
func Open(ctx context.Context, c *Config) (*Kernel, error) {
	pub, err := megabinary.ReadPublicKey(c.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvPublicKey, err)
	}
	opts := vkernel.Options{TrustedKeys: []ed25519.PublicKey{pub}, CacheDir: c.Cache}
	// The guest's children (spawn, fork) are this executable again: the
	// shims run in cmd/compat, whose main runs vkernel.ChildMain, or in a
	// test binary whose TestMain does (shimtest.Main).
	if self, err := os.Executable(); err == nil {
		opts.ChildCommand = []string{self}
	}
	if c.Entry != "" {
		opts.Entries = []string{c.Entry}
	}
	k, err := vkernel.Open(ctx, c.Megabinary, opts)
	if err != nil {
		return nil, fmt.Errorf("opening the megabinary %s: %w", c.Megabinary, err)
	}
	return &Kernel{k: k, wasm: c.Wasm}, nil
}

// Close releases the runtime and its compiled code.
func (k *Kernel) Close() error { return k.k.Close(context.Background()) }

// Instance is one run of the build.
type Instance struct {
	// Args is argv, the program's name first.
	Args []string
	// Env holds KEY=VALUE pairs; Run adds VKERNEL_HOST_PID.
	Env []string
	// Stdin, Stdout and Stderr are the guest's fds 0-2 (nil: empty input,
	// discarded output).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Mounts are all the guest's mounts: start from Config.Mounts and add
	// the program's directories with AddDir.
	Mounts []vkernel.Mount
	// Listeners are the sockets bound for the instance; the guest takes
	// them by address (VKERNEL_LISTEN_FDS). They stay the caller's: the
	// guest gets duplicates, so a socket can serve instance after instance.
	Listeners []net.Listener
	// Signals carries host signals to the guest while it runs (see
	// vkernel.Request.Signals): the caller relays those sent to the shim
	// process, as they are or as the program's stand-in needs them.
	Signals <-chan os.Signal
	// TrapReport begins the line Run writes to Stderr when the guest
	// traps, in the program's own style of message, such as
	// "redis-server: " or "nginx: [alert] ".
	TrapReport string
}

// Run runs inst to its end and returns the status a native process would
// exit with: the guest's own, or TrapStatus after a trap, which is
// reported on inst.Stderr. The guest's pid (getpid, VKERNEL_HOST_PID) is
// this process's, so the pid a harness signals is the instance's. An exec
// the kernel refuses is an error; so is the cancellation of ctx (its
// cause), so that a caller that ended the instance itself can tell.
func (k *Kernel) Run(ctx context.Context, inst Instance) (int, error) {
	env := append(append([]string(nil), inst.Env...), "VKERNEL_HOST_PID="+strconv.Itoa(os.Getpid()))
	res, err := k.k.Exec(ctx, vkernel.Request{
		Path:      k.wasm,
		Args:      inst.Args,
		Env:       env,
		Stdin:     inst.Stdin,
		Stdout:    inst.Stdout,
		Stderr:    inst.Stderr,
		Mounts:    inst.Mounts,
		Listeners: inst.Listeners,
		Signals:   inst.Signals,
	})
	var trap *vkernel.TrapError
	switch {
	case err == nil:
		return int(res.ExitCode), nil
	case ctx.Err() != nil:
		return 0, context.Cause(ctx)
	case errors.As(err, &trap):
		if inst.Stderr != nil {
			fmt.Fprintf(inst.Stderr, "%s%s trapped: %v\n", inst.TrapReport, filepath.Base(k.wasm), trap.Err)
		}
		return TrapStatus, nil
	}
	return 0, err
}
