package python

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/runners/local"
	vkrunner "github.com/compat-project/compat/runners/vkernel"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// Build is a python.wasm build made by images/python/build-wasm.sh: a
// directory holding python.wasm, lib/python3.11 (the stdlib with its
// tests) and build-info.json.
type Build struct {
	Dir string
	// Version is the Debian source version it was built from, such as
	// "3.11.2-6+deb12u8".
	Version string
}

// OpenBuild opens a build directory, reading its build-info.json.
func OpenBuild(dir string) (*Build, error) {
	v, err := wasmbuild.SourceVersion(dir)
	if err != nil {
		return nil, fmt.Errorf("python.wasm build: %w", err)
	}
	b := &Build{Dir: dir, Version: v}
	if _, err := os.Stat(b.Wasm()); err != nil {
		return nil, fmt.Errorf("python.wasm build %s: %w (run: make images)", dir, err)
	}
	return b, nil
}

// LatestBuild opens the newest complete build under a cache root
// (CACHE/python-wasm/KEY).
func LatestBuild(cache string) (*Build, error) {
	dir, err := wasmbuild.Latest(cache, "python-wasm")
	if err != nil {
		return nil, fmt.Errorf("python.wasm: %w", err)
	}
	return OpenBuild(dir)
}

// Wasm is the interpreter module.
func (b *Build) Wasm() string { return filepath.Join(b.Dir, "python.wasm") }

// LibTest is the build's Lib/test directory on the host.
func (b *Build) LibTest() string { return filepath.Join(b.Dir, "lib", "python3.11", "test") }

// ReferenceImage is the Docker image of Debian's native python3.11 of the
// same version (images/python/build-image.sh).
func (b *Build) ReferenceImage() string {
	return "compat/python-reference:" + strings.ReplaceAll(b.Version, "+", "_")
}

// Entry is the megabinary entry for the build: python.wasm, reached also
// through the hash of the host's native /usr/bin/python3.11 when present,
// with the stdlib read-only at /usr/lib and a writable root.
func (b *Build) Entry() megabinary.SpecEntry {
	e := megabinary.SpecEntry{
		Name:  "python3.11",
		Wasm:  b.Wasm(),
		Paths: []string{"/usr/bin/python3.11"},
		Env:   []string{"PYTHONHOME=/usr", "PYTHONDONTWRITEBYTECODE=1", "TMPDIR=/tmp", "HOME=/tmp", "LC_ALL=C.UTF-8"},
		Resources: megabinary.Resources{
			Mounts:  []megabinary.MountRule{{Guest: "/"}, {Guest: "/usr/lib", ReadOnly: true}},
			Connect: []string{"127.0.0.0/8"},
		},
	}
	if _, err := os.Stat("/usr/bin/python3.11"); err == nil {
		e.AliasFiles = []string{"/usr/bin/python3.11"}
	}
	return e
}

// Harness runs regrtest on the targets of one comparison.
type Harness struct {
	Build   *Build
	Modules []string
	// Parallel is how many modules run at once on each target.
	Parallel int
	// Timeout bounds one module on the vkernel; the reference gets the
	// same (it is about ten times faster).
	Timeout time.Duration
	// Rerun reruns failed tests once to tell flaky ones.
	Rerun bool
}

// Name implements the pipeline's suite: "python".
func (s *Harness) Name() string { return Suite }

// Entries are the megabinary entries the vkernel target needs.
func (s *Harness) Entries() []megabinary.SpecEntry { return []megabinary.SpecEntry{s.Build.Entry()} }

// workGuest is where every target sees the scratch directory the adapter
// reads JUnit files from. A name no host path starts with: the local
// target maps guest paths by prefix.
const workGuest = "/compat-work"

// Target starts the named target for this suite: "vkernel" (the kernel
// runs python.wasm, scratch holds its root), or "reference" run by Docker
// (reference "docker") or on the host ("local"). scratch is an empty
// directory the suite may use.
func (s *Harness) Target(ctx context.Context, kind string, k *vkernel.Kernel, reference, scratch string) (runners.Target, runners.Mount, error) {
	work := runners.Mount{Host: filepath.Join(scratch, "work"), Guest: workGuest}
	if err := os.MkdirAll(work.Host, 0o777); err != nil {
		return nil, work, err
	}
	props := map[string]string{compat.PropVersionPrefix + "python3.11": s.Build.Version}
	switch {
	case kind == "vkernel":
		root := filepath.Join(scratch, "root")
		for _, d := range []string{"tmp", "usr/lib", strings.TrimPrefix(workGuest, "/")} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o777); err != nil {
				return nil, work, err
			}
		}
		work.Host = filepath.Join(root, strings.TrimPrefix(workGuest, "/"))
		t, err := vkrunner.New(vkrunner.Options{
			Kernel: k,
			Mounts: []runners.Mount{
				{Host: root, Guest: "/"},
				{Host: filepath.Join(s.Build.Dir, "lib"), Guest: "/usr/lib", ReadOnly: true},
			},
			Programs:   map[string]string{"python3.11": s.Build.Wasm()},
			Properties: props,
		})
		return t, work, err
	case kind == "reference" && reference == "docker":
		t, err := docker.New(ctx, docker.Options{
			Name: "reference", Image: s.Build.ReferenceImage(),
			Mounts: []runners.Mount{work}, Env: []string{"LC_ALL=C.UTF-8"}, Properties: props,
		})
		return t, work, err
	case kind == "reference" && reference == "local":
		if _, err := os.Stat("/usr/bin/python3.11"); err != nil {
			return nil, work, errors.New("local reference: /usr/bin/python3.11 is not installed (apt-get install python3.11 libpython3.11-testsuite)")
		}
		t, err := local.New(local.Options{Name: "reference", Mounts: []runners.Mount{work}, Properties: props})
		return t, work, err
	}
	return nil, work, fmt.Errorf("python: unknown target %q (reference %q)", kind, reference)
}

// Run runs the suite's modules on t, reporting each finished module to
// progress as one line.
func (s *Harness) Run(ctx context.Context, t runners.Target, work runners.Mount, progress func(string)) (compat.Run, error) {
	python := []string{"python3.11"}
	if _, ok := t.(*local.Target); ok {
		python = []string{"/usr/bin/python3.11"}
	}
	return Run(ctx, t, Options{
		Python:   python,
		Modules:  s.Modules,
		Work:     work,
		Parallel: s.Parallel,
		Timeout:  s.Timeout,
		Rerun:    s.Rerun,
		Progress: func(p Progress) {
			if progress == nil {
				return
			}
			line := fmt.Sprintf("%s %d/%d: pass %d, fail %d, error %d, skip %d (%s)", p.Module, p.Done, p.Total,
				p.Counts.Pass, p.Counts.Fail, p.Counts.Error, p.Counts.Skip, p.Elapsed.Round(10*time.Millisecond))
			if p.Err != nil {
				line += ": " + p.Err.Error()
			}
			progress(line)
		},
	})
}
