package nginx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/units"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/runners/local"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// Modules are the nginx modules whose Test::Nginx suites the build
// carries (tests/<module>/t/*.t).
var Modules = []string{"echo", "headers-more", "set-misc"}

// QuickFiles is the quick profile: a few files of each module suite.
var QuickFiles = []string{"echo/echo.t", "headers-more/sanity.t", "set-misc/base32.t"}

// Files lists the test files of the build's module suites as
// "module/file.t", for the profile "quick" (QuickFiles) or "full" (all).
func (b *Build) Files(profile string) ([]string, error) {
	switch profile {
	case "quick":
		return QuickFiles, nil
	case "full":
	default:
		return nil, fmt.Errorf("nginx: unknown profile %q (quick or full)", profile)
	}
	var files []string
	for _, m := range Modules {
		ts, err := filepath.Glob(filepath.Join(b.Dir, "tests", m, "t", "*.t"))
		if err != nil {
			return nil, err
		}
		if len(ts) == 0 {
			return nil, fmt.Errorf("nginx build %s has no tests/%s/t/*.t (rebuild it: make -f images/images.mk nginx-wasm)", b.Dir, m)
		}
		for _, t := range ts {
			files = append(files, m+"/"+filepath.Base(t))
		}
	}
	sort.Strings(files)
	return files, nil
}

// LatestTestNginx finds Test::Nginx's library under a cache root, as
// images/nginx/fetch-test-nginx.sh leaves it (CACHE/test-nginx/VERSION/lib).
func LatestTestNginx(cache string) (string, error) {
	libs, _ := filepath.Glob(filepath.Join(cache, "test-nginx", "*", "lib", "Test", "Nginx", "Socket.pm"))
	if len(libs) == 0 {
		return "", fmt.Errorf("no Test::Nginx under %s/test-nginx (run: make -f images/images.mk nginx-test-deps)", cache)
	}
	sort.Strings(libs)
	return filepath.Dir(filepath.Dir(filepath.Dir(libs[len(libs)-1]))), nil
}

// Suite runs the module suites with Test::Nginx on the pipeline's targets
// (it implements runners/pipeline's Suite):
//
//   - "vkernel": prove runs on the host, and Test::Nginx starts nginx
//     through the shim (TEST_NGINX_BINARY), which runs nginx.wasm in a
//     vkernel of its own: a megabinary holding the build's entry, signed
//     with a key made for the run (the pipeline's kernel runs in the
//     compat process, and Test::Nginx starts nginx as a program);
//   - "reference": prove runs in the reference image (Docker) against
//     Debian's nginx, the modules loaded with TEST_NGINX_LOAD_MODULES.
//
// Both get TEST_NGINX_NO_SHUFFLE=1 (stable order) and
// TEST_NGINX_IGNORE_MISSING_DIRECTIVES=1 (a block using a directive the
// build lacks is a skip, not the end of the file).
//
// With Harness set to HarnessNginxTests it runs upstream's nginx-tests
// from the checkout in Dir instead: prove in Dir with TEST_NGINX_BINARY
// the shim (vkernel) or Debian's /usr/sbin/nginx (reference, run as
// nobody as nginx-tests asks), the checkout mounted as it is (nginx-tests
// writes to temporary directories).
type Suite struct {
	Build *Build
	// Harness is HarnessTestNginx (the default) or HarnessNginxTests.
	Harness string
	// Dir is the nginx-tests checkout (HarnessNginxTests only).
	Dir string
	// Files are the test files to run: "module/file.t" for Test::Nginx,
	// "file.t" of Dir for nginx-tests.
	Files []string
	// Shim is the command that runs ShimMain, to which the shim script
	// appends nginx's arguments; default {this executable, "nginx-shim"}.
	Shim []string
	// TestNginxLib is Test::Nginx's library on the host; default: the
	// newest under Cache.
	TestNginxLib string
	// Cache is the cache root (AOT code of the shim's megabinary).
	Cache string
	// Timeout bounds one test file; default 10 minutes.
	Timeout time.Duration
	// DebianTests names the autopkgtests of the build's debian-tests/ to
	// run after Files (Test::Nginx harness only), each in a container of
	// its own; see DebianTest.
	DebianTests []string
	// Exe is the compat executable the vkernel's autopkgtest containers
	// run as nginx (its nginx-shim verb); default this executable.
	Exe string
}

// The harnesses a Suite can drive.
const (
	// HarnessTestNginx is OpenResty's Test::Nginx with the module suites
	// the build carries.
	HarnessTestNginx = "test-nginx"
	// HarnessNginxTests is upstream's nginx-tests from a checkout.
	HarnessNginxTests = "nginx-tests"
)

// NginxTestsFiles lists the test files of an nginx-tests checkout (its
// top-level *.t files, beside lib/Test/Nginx.pm).
func NginxTestsFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.t"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("nginx-tests: no *.t files in %s", dir)
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	sort.Strings(files)
	return files, nil
}

// Name implements the pipeline's Suite: "nginx".
func (s *Suite) Name() string { return SuiteName }

// Entries are the megabinary entries of the pipeline's kernel: the build's
// entry, so that the pipeline verifies nginx.wasm with the rest.
func (s *Suite) Entries() []megabinary.SpecEntry { return []megabinary.SpecEntry{s.Build.Entry()} }

// refWork is where the reference container sees the work directory.
const refWork = "/compat-work"

// refModules are Debian's dynamic modules the reference loads.
var refModules = []string{"ndk_http_module", "ngx_http_echo_module", "ngx_http_headers_more_filter_module", "ngx_http_set_misc_module"}

// Target starts the named target: "vkernel", or "reference" run by Docker.
// k, the pipeline's kernel, is not used (see Suite). The work directory
// holds a copy of the build's tests/ (Test::Nginx writes t/servroot
// beside the .t files).
func (s *Suite) Target(ctx context.Context, kind string, k *vkernel.Kernel, reference, scratch string) (runners.Target, runners.Mount, error) {
	nginxTests := s.Harness == HarnessNginxTests
	var work string
	switch {
	case nginxTests && s.Dir == "":
		return nil, runners.Mount{}, errors.New("nginx-tests: no checkout given (Suite.Dir)")
	case nginxTests:
		work = s.Dir
	default:
		work = filepath.Join(scratch, "work")
		if err := os.CopyFS(work, os.DirFS(filepath.Join(s.Build.Dir, "tests"))); err != nil {
			return nil, runners.Mount{}, fmt.Errorf("nginx: copying the test files: %w", err)
		}
	}
	props := map[string]string{compat.PropVersionPrefix + "nginx": s.Build.Version}
	env := []string{"TEST_NGINX_NO_SHUFFLE=1", "TEST_NGINX_IGNORE_MISSING_DIRECTIVES=1"}
	switch {
	case kind == "vkernel":
		lib := s.TestNginxLib
		if lib == "" && !nginxTests {
			var err error
			if lib, err = LatestTestNginx(s.Cache); err != nil {
				return nil, runners.Mount{}, err
			}
		}
		self := s.Shim
		if len(self) == 0 {
			exe, err := os.Executable()
			if err != nil {
				return nil, runners.Mount{}, fmt.Errorf("nginx: finding the compat executable for the shim: %w", err)
			}
			self = []string{exe, "nginx-shim"}
		}
		dir := filepath.Join(scratch, "shim")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, runners.Mount{}, err
		}
		shim, err := PrepareShim(dir, s.Build, self, s.Cache)
		if err != nil {
			return nil, runners.Mount{}, err
		}
		sum, err := fileSHA256(s.Build.Wasm())
		if err != nil {
			return nil, runners.Mount{}, err
		}
		props[compat.PropMegabinaryDigest] = shim.Digest
		props[compat.PropModuleDigest] = sum
		props[compat.PropVersionPrefix+"wazero"] = vkernel.WazeroVersion()
		port, err := freeLoopbackPort()
		if err != nil {
			return nil, runners.Mount{}, err
		}
		// Guest paths are host paths: Test::Nginx writes them into the
		// configuration, and the shim mounts them at the same place.
		m := runners.Mount{Host: work, Guest: work}
		t, err := local.New(local.Options{
			Name:       "vkernel",
			Mounts:     []runners.Mount{m},
			Env:        append(env, "TEST_NGINX_BINARY="+shim.Binary, "PERL5LIB="+lib, "TEST_NGINX_PORT="+strconv.Itoa(port)),
			Properties: props,
		})
		return t, m, err
	case kind == "reference" && reference == "docker" && nginxTests:
		m := runners.Mount{Host: work, Guest: refWork}
		t, err := docker.New(ctx, docker.Options{
			Image:      s.Build.ReferenceImage(),
			Mounts:     []runners.Mount{m},
			Env:        []string{"TEST_NGINX_BINARY=/usr/sbin/nginx"},
			Properties: props,
		})
		return t, m, err
	case kind == "reference" && reference == "docker":
		mods := make([]string, len(refModules))
		for i, m := range refModules {
			mods[i] = "/usr/lib/nginx/modules/" + m + ".so"
		}
		m := runners.Mount{Host: work, Guest: refWork}
		t, err := docker.New(ctx, docker.Options{
			Image:      s.Build.ReferenceImage(),
			Mounts:     []runners.Mount{m},
			Env:        append(env, "TEST_NGINX_LOAD_MODULES="+strings.Join(mods, " ")),
			Properties: props,
		})
		if err != nil {
			return nil, m, fmt.Errorf("%w (build the image: make -f images/images.mk nginx-image)", err)
		}
		return t, m, nil
	case kind == "reference":
		return nil, runners.Mount{}, fmt.Errorf("nginx: reference %q: the reference is Debian's nginx with its module packages, in Docker (use -reference docker)", reference)
	}
	return nil, runners.Mount{}, fmt.Errorf("nginx: unknown target kind %q", kind)
}

// Run runs each file with "prove -v" in its module's directory, one at a
// time (the files of a target share the port), and parses the TAP.
func (s *Suite) Run(ctx context.Context, t runners.Target, work runners.Mount, progress func(string)) (compat.Run, error) {
	run := compat.Run{Suite: SuiteName, Target: t.Name(), Start: time.Now(), Properties: t.Properties()}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	for _, f := range s.Files {
		if ctx.Err() != nil {
			return run, fmt.Errorf("nginx: stopped before %s: %w", f, context.Cause(ctx))
		}
		dir, file, unit := work.Guest, f, "nginx-tests/"+f
		if s.Harness != HarnessNginxTests {
			mod, name, ok := strings.Cut(f, "/")
			if !ok {
				return run, fmt.Errorf("nginx: test file %q is not module/file.t", f)
			}
			dir, file, unit = path.Join(work.Guest, mod), "t/"+name, f
		}
		start := time.Now()
		var out units.Buffer
		fctx, cancel := context.WithTimeout(ctx, timeout)
		args := []string{"prove", "-v", file}
		if s.Harness == HarnessNginxTests && t.Name() == "reference" {
			// nginx-tests wants an unprivileged user: as root, Debian's
			// nginx runs its workers as nobody, which cannot read the
			// harness's 0700 temporary directories.
			args = append([]string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"}, args...)
		}
		exit, err := t.Run(fctx, runners.Process{
			Args:   args,
			Dir:    dir,
			Stdout: &out,
			Stderr: &out,
		})
		cancel()
		res, perr := ParseTAP(strings.NewReader(out.String()), SuiteName, unit, file)
		if perr != nil {
			return run, perr
		}
		elapsed := time.Since(start)
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			res = append(res, compat.Result{Suite: SuiteName, Unit: unit, Test: unit, Status: compat.Error, Message: fmt.Sprintf("timed out after %s", timeout), Output: tail(out.String(), 4000)})
		case err != nil:
			return run, fmt.Errorf("nginx: %s on %s: %w", f, t.Name(), err)
		case exit.Crash != "":
			res = append(res, compat.Result{Suite: SuiteName, Unit: unit, Test: unit, Status: compat.Error, Message: "prove: " + exit.Crash, Output: tail(out.String(), 4000)})
		}
		for i := range res {
			if res[i].Test == unit && res[i].Output == "" {
				res[i].Output = tail(out.String(), 4000)
			}
		}
		// Test::Nginx times no single test: spread the file's time.
		if len(res) > 0 {
			for i := range res {
				res[i].Duration = elapsed / time.Duration(len(res))
			}
		}
		run.Results = append(run.Results, res...)
		var c compat.Counts
		for _, r := range res {
			c.Add(r)
		}
		progress(fmt.Sprintf("%s: pass %d, fail %d, error %d, skip %d (%s)", unit, c.Pass, c.Fail, c.Error, c.Skip, elapsed.Round(time.Millisecond)))
	}
	if len(s.DebianTests) > 0 && s.Harness != HarnessNginxTests {
		var shim *Shim
		if t.Name() == "vkernel" {
			dir, err := os.MkdirTemp("", "compat-nginx-debian-shim-")
			if err != nil {
				return run, err
			}
			defer os.RemoveAll(dir)
			// In the container the shim runs as nginx (shimAsNginx), so
			// that start-stop-daemon --name nginx finds its processes.
			if shim, err = PrepareShim(dir, s.Build, []string{shimAsNginx, "nginx-shim"}, s.Cache); err != nil {
				return run, err
			}
		}
		res, err := s.runDebianTests(ctx, t.Name(), shim, progress)
		run.Results = append(run.Results, res...)
		if err != nil {
			return run, err
		}
	}
	return run, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("nginx: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
