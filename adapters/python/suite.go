package python

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/runners/local"
	"github.com/compat-project/compat/runners/vktarget"
	"github.com/compat-project/compat/vkernel/megabinary"
	"golang.org/x/sys/unix"
)

// Suite runs regrtest modules: the runners.Suite of CPython's test suite.
type Suite struct {
	build   *wasmbuild.Build
	modules []string

	// For tests: the command that starts the interpreter on a local
	// reference, extra regrtest arguments (before the module) and extra
	// environment.
	localPython []string
	args, env   []string
}

// New opens the build, a directory made by images/python/build-wasm.sh
// (python.wasm, lib/python3.11 with the tests, build-info.json), and picks
// the modules: the profile's (see Profile) or those named, such as
// "test_os".
func New(opts runners.SuiteConfig) (*Suite, error) {
	b, err := wasmbuild.OpenOrLatest(opts.Build, opts.Cache, wasmbuild.Python)
	if err != nil {
		return nil, err
	}
	mods := opts.Units
	if len(mods) == 0 {
		if mods, err = Profile(opts.Profile, libTest(b)); err != nil {
			return nil, err
		}
	} else {
		all, err := Modules(libTest(b))
		if err != nil {
			return nil, err
		}
		if err := runners.UnknownUnits(Name, mods, func(m string) bool { return slices.Contains(all, m) },
			fmt.Sprintf("units are the test modules of the build's Lib/test, such as %q", all[0])); err != nil {
			return nil, err
		}
	}
	return &Suite{build: b, modules: mods}, nil
}

// libTest is the build's Lib/test directory on the host.
func libTest(b *wasmbuild.Build) string { return b.Path("lib", "python3.11", "test") }

// Name implements runners.Suite: "python".
func (s *Suite) Name() string { return Name }

// Entries implements runners.Suite: python.wasm, reached also through the
// hash of the host's native /usr/bin/python3.11 when present, with the
// stdlib read-only at /usr/lib, the host's time zone data read-only at
// /usr/share/zoneinfo (zoneInfo), sockets on loopback only, and a writable
// root holding a copy of itself at /usr/bin/python3.11 (sys.executable,
// which the tests run as child processes: the vkernel routes it back to
// this entry by hash). The entry sets no environment: a child gets the one
// its parent passes, as natively, and the session gives the top-level
// interpreter its own.
func (s *Suite) Entries() []megabinary.SpecEntry {
	e := megabinary.SpecEntry{
		Name:  "python3.11",
		Wasm:  s.build.Wasm(),
		Paths: []string{guestPython},
		Resources: megabinary.Resources{
			Mounts: []megabinary.MountRule{
				{Guest: "/"}, {Guest: "/usr/lib", ReadOnly: true}, {Guest: zoneInfo, ReadOnly: true},
			},
			// The socket tests bind port 0 and connect on 127.0.0.1 and
			// ::1 (socket_helper.HOST, HOSTv4, HOSTv6): loopback only,
			// both families; the wildcard address stays refused.
			Connect:   []string{"127.0.0.0/8", "::1/128"},
			Bind:      []string{"127.0.0.0/8", "::1/128"},
			Processes: MaxProcesses,
			Threads:   MaxThreads,
		},
	}
	if _, err := os.Stat("/usr/bin/python3.11"); err == nil {
		e.AliasFiles = []string{"/usr/bin/python3.11"}
	}
	return []megabinary.SpecEntry{e}
}

// Plan implements runners.Suite: one unit per module, whose failed tests
// can run again alone.
func (s *Suite) Plan() runners.Plan {
	p := runners.Plan{Kinds: map[string]runners.Kind{"": {Rerun: true}}}
	for _, m := range s.modules {
		p.Units = append(p.Units, runners.Unit{Name: m})
	}
	return p
}

// workGuest is where every target sees the scratch directory regrtest
// writes its JUnit files to. A name no host path starts with: the local
// target maps guest paths by prefix.
const workGuest = "/compat-work"

// On the vkernel, python.wasm is the file guestPython in the guest's root,
// a copy: the root is writable, and a guest that changes its copy only
// makes its exec fail (denied by hash). It is not a mount of its own, so
// that a symbolic link to it in the root resolves (the vkernel resolves
// links within their mount). The interpreter is started by that absolute
// name, so that sys.executable is a file the guest can run again and the
// prefix (/usr) is found from it without PYTHONHOME, as natively.
const guestPython = "/usr/bin/python3.11"

// zoneInfo is where the guest finds the time zone database, the host's
// own (Debian's tzdata), read-only when the host has it: the reference
// image has tzdata there, and zoneinfo and datetime's ZoneInfoTest read
// it by name (without it they skip: "No such file or directory:
// '/usr/share/zoneinfo/America/New_York'").
const zoneInfo = "/usr/share/zoneinfo"

// MaxProcesses bounds the live child processes of one interpreter on the
// vkernel, and of the tree below it (the entry's resources.processes):
// regrtest modules run a few children at a time (test_subprocess has at
// most a handful alive), each a host process of its own.
const MaxProcesses = 16

// MaxThreads bounds the threads one interpreter may have running besides
// its main one (the entry's resources.threads), when python.wasm is built
// with threads (images/python/build-wasm.sh COMPAT_PY_THREADS=yes; a build
// without them never spawns one). regrtest's thread tests start up to 100
// at once (test_queue's test_many_threads_nonblock: 50 feeders and 50
// consumers; test_threading's and test_thread's barriers and semaphores:
// 10 to 20; a ThreadPoolExecutor: min(32, cpus+4)); each takes a 1 MiB
// stack from the heap, 128 MiB at most of the 1 GiB memory.
const MaxThreads = 128

// vkernelEnv is the top-level interpreter's environment on the vkernel.
// Bytecode is written as on the reference (which sets only LC_ALL): the
// children the tests start inherit the environment, and with
// PYTHONDONTWRITEBYTECODE they did not write the .pyc files the tests look
// for (test_compileall's hardlink dedup). The stdlib mount is read-only,
// which importlib takes as "cannot cache" and ignores.
var vkernelEnv = []string{"TMPDIR=/tmp", "HOME=/tmp", "LC_ALL=C.UTF-8"}

// session runs modules on one target.
type session struct {
	suite  *Suite
	target runners.Target
	work   runners.Mount
	python []string
}

// Open implements runners.Suite: on the vkernel the pipeline's kernel runs
// python.wasm with a root in scratch space and the build's stdlib at
// /usr/lib; the docker reference runs Debian's python3.11 in the reference
// image, the local one the host's /usr/bin/python3.11.
func (s *Suite) Open(ctx context.Context, spec runners.TargetSpec) (runners.Session, error) {
	ss := &session{suite: s, python: []string{"python3.11"},
		work: runners.Mount{Host: filepath.Join(spec.Scratch, "work"), Guest: workGuest}}
	props := map[string]string{compat.PropVersionPrefix + "python3.11": s.build.Version}
	var err error
	switch {
	case spec.Kind == runners.Vkernel:
		root := filepath.Join(spec.Scratch, "root")
		ss.work.Host = filepath.Join(root, strings.TrimPrefix(workGuest, "/"))
		for _, d := range []string{filepath.Join(root, "tmp"), filepath.Join(root, "usr", "lib"), filepath.Join(root, "usr", "bin"), ss.work.Host} {
			if err := os.MkdirAll(d, 0o777); err != nil {
				return nil, err
			}
		}
		if err := devNull(filepath.Join(root, "dev")); err != nil {
			return nil, err
		}
		if err := noTTY(filepath.Join(root, "dev")); err != nil {
			return nil, err
		}
		if err := etcServices(filepath.Join(root, "etc")); err != nil {
			return nil, err
		}
		exe := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(guestPython, "/")))
		if err := copyFile(s.build.Wasm(), exe); err != nil {
			return nil, fmt.Errorf("python: placing python.wasm at %s for the guest: %w", guestPython, err)
		}
		ss.python = []string{guestPython}
		mounts := []runners.Mount{
			{Host: root, Guest: "/"},
			{Host: s.build.Path("lib"), Guest: "/usr/lib", ReadOnly: true},
		}
		if st, err := os.Stat(zoneInfo); err == nil && st.IsDir() {
			if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(zoneInfo, "/"))), 0o755); err != nil {
				return nil, err
			}
			mounts = append(mounts, runners.Mount{Host: zoneInfo, Guest: zoneInfo, ReadOnly: true})
		}
		ss.target, err = vktarget.New(vktarget.Options{
			Kernel:     spec.Kernel,
			Mounts:     mounts,
			Programs:   map[string]string{guestPython: exe},
			Env:        vkernelEnv,
			Properties: props,
			Megabinary: spec.Megabinary, PublicKey: spec.PublicKey,
			Exec: spec.Exec, Cache: spec.Cache, Entries: []string{s.Entries()[0].Name},
		})
	case spec.Reference == runners.Docker:
		if err := os.MkdirAll(ss.work.Host, 0o777); err != nil {
			return nil, err
		}
		ss.target, err = docker.New(ctx, docker.Options{
			Name: runners.Reference, Image: s.build.ReferenceImage(),
			Mounts: []runners.Mount{ss.work}, Env: []string{"LC_ALL=C.UTF-8"}, Properties: props,
		})
	default:
		if err := os.MkdirAll(ss.work.Host, 0o777); err != nil {
			return nil, err
		}
		ss.python = s.localPython
		if len(ss.python) == 0 {
			if _, err := os.Stat("/usr/bin/python3.11"); err != nil {
				return nil, errors.New("local reference: /usr/bin/python3.11 is not installed (apt-get install python3.11 libpython3.11-testsuite)")
			}
			ss.python = []string{"/usr/bin/python3.11"}
		}
		ss.target, err = local.New(local.Options{Name: runners.Reference, Mounts: []runners.Mount{ss.work}, Properties: props})
	}
	if err != nil {
		return nil, err
	}
	return ss, nil
}

// Properties implements runners.Session.
func (ss *session) Properties() map[string]string { return ss.target.Properties() }

// Run implements runners.Session: regrtest on one module.
func (ss *session) Run(ctx context.Context, u runners.Unit, tests []string) runners.Report {
	return ss.runModule(ctx, u.Name, tests)
}

// Close implements runners.Session.
func (ss *session) Close() error { return ss.target.Close() }

// devNull makes dir/null the host's null device (character device 1:3),
// the guest's /dev/null: subprocess.DEVNULL and os.devnull open it, as do
// many tests. Making a device node needs CAP_MKNOD; without it the guest
// has no /dev/null, which the tests that need one report as such.
func devNull(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	null := filepath.Join(dir, "null")
	if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		if errors.Is(err, os.ErrExist) || errors.Is(err, unix.EPERM) {
			return nil
		}
		return fmt.Errorf("python: making the guest's /dev/null: %w", err)
	}
	return os.Chmod(null, 0o666)
}

// noTTY makes dir/tty a name that cannot be opened as a file. Natively
// /dev/tty exists, and opening it without a controlling terminal (the
// reference's case, and the vkernel's: its stdio are never terminals) fails
// with ENXIO; tests take that as "no terminal" (test_fileio testAbles opens
// it with mode "a"). In the guest's root, which is writable scratch space,
// such an open would instead create a regular file /dev/tty. A directory
// there makes the open fail (EISDIR) as the missing terminal does.
func noTTY(dir string) error {
	if err := os.Mkdir(filepath.Join(dir, "tty"), 0o555); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("python: making the guest's /dev/tty: %w", err)
	}
	return nil
}

// hostServices is the service name database the guest's /etc/services is a
// copy of.
const hostServices = "/etc/services"

// etcServices gives the guest the host's /etc/services (Debian's netbase),
// which the reference image has too: vkposix's getservbyname and
// getaddrinfo read service names from the guest's /etc/services
// (test_socket's testGetServBy, getaddrinfo(host, "http")). A host
// without one leaves the guest without one, as natively.
func etcServices(dir string) error {
	if _, err := os.Stat(hostServices); err != nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := copyFile(hostServices, filepath.Join(dir, "services")); err != nil {
		return fmt.Errorf("python: copying %s into the guest's /etc: %w", hostServices, err)
	}
	return nil
}

// copyFile makes dst a copy of src (a hard link would let a guest that
// writes to it change the build).
func copyFile(src, dst string) error {
	os.Remove(dst)
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o555)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// LatestWasm returns the python.wasm of the newest complete build under
// the cache root, or an error saying how to build one.
func LatestWasm(cache string) (string, error) {
	b, err := wasmbuild.Latest(cache, wasmbuild.Python)
	if err != nil {
		return "", err
	}
	return b.Wasm(), nil
}
