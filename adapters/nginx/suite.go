package nginx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/prepare"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
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

// Files lists the test files of the module suites of b as "module/file.t",
// for the profile "quick" (QuickFiles) or "full" (all).
func Files(b *wasmbuild.Build, profile string) ([]string, error) {
	switch profile {
	case "quick":
		return QuickFiles, nil
	case "full":
	default:
		return nil, fmt.Errorf("nginx: unknown profile %q (quick or full)", profile)
	}
	var files []string
	for _, m := range Modules {
		ts, err := filepath.Glob(b.Path("tests", m, "t", "*.t"))
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

// nginxTestsUnits returns the files of the checkout dir to run: those
// named (as "file.t" or "nginx-tests/file.t"), each of which must be a
// top-level .t file of the checkout, or all of them.
func nginxTestsUnits(dir string, names []string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, "lib", "Test", "Nginx.pm")); err != nil {
		return nil, fmt.Errorf("nginx-tests: %s is not an nginx-tests checkout (no lib/Test/Nginx.pm): %w", dir, err)
	}
	all, err := NginxTestsFiles(dir)
	if err != nil || len(names) == 0 {
		return all, err
	}
	files := make([]string, len(names))
	for i, n := range names {
		files[i] = strings.TrimPrefix(n, nginxTestsUnit)
	}
	if err := runners.UnknownUnits(Name, names, func(n string) bool {
		return slices.Contains(all, strings.TrimPrefix(n, nginxTestsUnit))
	}, fmt.Sprintf("with -suite-dir, units are the checkout's top-level .t files, such as %q", all[0])); err != nil {
		return nil, err
	}
	return files, nil
}

// Options says which build and which tests a Suite runs.
type Options struct {
	// SuiteConfig names the build, a directory made by
	// images/nginx/build-wasm.sh (nginx.wasm, the module suites in
	// tests/, Debian's autopkgtests in debian-tests/, build-info.json),
	// and picks the tests: a profile, "quick" or "full", of the module
	// suites' files (see Files) and Debian's autopkgtests (see
	// DebianTestNames); or units, "module/file.t" for a Test::Nginx file,
	// "debian/tests/NAME" for an autopkgtest, or with NginxTests a file of
	// the checkout ("file.t"). Test::Nginx's library is found under its
	// Cache.
	runners.SuiteConfig
	// NginxTests, if set, is an nginx-tests checkout whose files run
	// instead of the module suites (HarnessNginxTests).
	NginxTests string
}

// The kinds of unit a Suite runs (runners.Unit.Kind): a Test::Nginx or
// nginx-tests file is the plain kind.
const (
	// KindAutopkgtest units are Debian's autopkgtests.
	KindAutopkgtest = "autopkgtest"
)

// Suite runs NGINX's test suites: the runners.Suite of "compat run -suite
// nginx". Its units are
//
//   - the module suites' .t files with Test::Nginx: on the vkernel, prove
//     runs on the host and Test::Nginx starts nginx through the shim
//     (TEST_NGINX_BINARY), which runs nginx.wasm in a vkernel of its own
//     from the pipeline's megabinary (Test::Nginx starts nginx as a
//     program); on the reference, prove runs in the reference image
//     (Docker) against Debian's nginx, the modules loaded with
//     TEST_NGINX_LOAD_MODULES. Both get TEST_NGINX_NO_SHUFFLE=1 (stable
//     order) and TEST_NGINX_IGNORE_MISSING_DIRECTIVES=1 (a block using a
//     directive the build lacks is a skip, not the end of the file);
//   - Debian's autopkgtests of nginx, each in a container of its own (see
//     DebianTest);
//   - or, with an nginx-tests checkout, upstream's nginx-tests: prove in
//     the checkout with TEST_NGINX_BINARY the shim (vkernel) or Debian's
//     /usr/sbin/nginx (reference, TEST_NGINX_MODULES read from its
//     nginx -V), as nobody on both (user.go), the checkout mounted as it
//     is (nginx-tests writes to temporary directories).
//
// Files run one at a time: the files of a target share its port. Each
// streams its TAP, so a file killed by its timeout keeps what it reported,
// and whatever it started is torn down when it ends (runFile).
type Suite struct {
	build *wasmbuild.Build
	// harness is HarnessTestNginx or HarnessNginxTests; dir the
	// nginx-tests checkout.
	harness, dir string
	units        []runners.Unit

	// For tests: the command that runs ShimMain (default this
	// executable's nginx-shim verb), and the compat executable the
	// vkernel's autopkgtest containers run as nginx (default this
	// executable).
	shim []string
	exe  string
}

// The harnesses a Suite can drive.
const (
	// HarnessTestNginx is OpenResty's Test::Nginx with the module suites
	// the build carries.
	HarnessTestNginx = "test-nginx"
	// HarnessNginxTests is upstream's nginx-tests from a checkout.
	HarnessNginxTests = "nginx-tests"
)

// nginxTestsUnit starts the unit names of nginx-tests files.
const nginxTestsUnit = "nginx-tests/"

// New opens the build and picks the tests: with an nginx-tests checkout its
// files; otherwise the module suites' files and Debian's autopkgtests, of
// the profile or as listed ("debian/tests/NAME" names an autopkgtest).
func New(opts Options) (*Suite, error) {
	// The checkout and the names given are checked before the build is
	// looked for: a wrong name is the user's to fix first.
	var checkout []string
	if opts.NginxTests != "" {
		var err error
		if checkout, err = nginxTestsUnits(opts.NginxTests, opts.Units); err != nil {
			return nil, err
		}
	}
	b, err := wasmbuild.OpenOrLatest(opts.Build, opts.Cache, wasmbuild.Nginx)
	if err != nil {
		return nil, err
	}
	s := &Suite{build: b, harness: HarnessTestNginx}
	if opts.NginxTests != "" {
		s.harness, s.dir = HarnessNginxTests, opts.NginxTests
		for _, f := range checkout {
			s.units = append(s.units, runners.Unit{Name: nginxTestsUnit + f})
		}
		return s, nil
	}
	var files, autopkgtests []string
	if len(opts.Units) == 0 {
		if files, err = Files(b, opts.Profile); err != nil {
			return nil, err
		}
		if autopkgtests, err = DebianTestNames(b, opts.Profile); err != nil {
			return nil, err
		}
	} else {
		for _, u := range opts.Units {
			if name, ok := strings.CutPrefix(u, DebianTestsUnit+"/"); ok {
				autopkgtests = append(autopkgtests, name)
			} else {
				files = append(files, u)
			}
		}
		if err := known(b, files, autopkgtests); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		s.units = append(s.units, runners.Unit{Name: f})
	}
	for _, t := range autopkgtests {
		s.units = append(s.units, runners.Unit{Name: DebianTestsUnit + "/" + t, Kind: KindAutopkgtest})
	}
	return s, nil
}

// known checks that every named test file and autopkgtest is one of the
// build's.
func known(b *wasmbuild.Build, files, autopkgtests []string) error {
	var errs []error
	if len(files) > 0 {
		all, err := Files(b, "full")
		if err != nil {
			return err
		}
		errs = append(errs, runners.UnknownUnits(Name, files, func(f string) bool { return slices.Contains(all, f) },
			fmt.Sprintf("test files of the build are named like %q; an nginx-tests checkout needs -suite-dir", all[0])))
	}
	if len(autopkgtests) > 0 {
		names, err := DebianTestNames(b, "full")
		if err != nil {
			return err
		}
		units := make([]string, len(autopkgtests))
		for i, t := range autopkgtests {
			units[i] = DebianTestsUnit + "/" + t
		}
		errs = append(errs, runners.UnknownUnits(Name, units, func(t string) bool {
			return slices.Contains(names, strings.TrimPrefix(t, DebianTestsUnit+"/"))
		}, "the build's debian/tests has: "+strings.Join(names, ", ")))
	}
	return errors.Join(errs...)
}

// Name implements runners.Suite: "nginx".
func (s *Suite) Name() string { return Name }

// Entries implements runners.Suite: the build's entry, which the shims run
// from the pipeline's megabinary.
func (s *Suite) Entries() []megabinary.SpecEntry { return []megabinary.SpecEntry{entry(s.build)} }

// Plan implements runners.Suite: files and autopkgtests one at a time.
func (s *Suite) Plan() runners.Plan {
	return runners.Plan{Units: s.units, Kinds: map[string]runners.Kind{
		"":              {Serial: true},
		KindAutopkgtest: {Serial: true},
	}}
}

// refWork is where the reference container sees the work directory.
const refWork = "/compat-work"

// refModules are Debian's dynamic modules the reference loads.
var refModules = []string{"ndk_http_module", "ngx_http_echo_module", "ngx_http_headers_more_filter_module", "ngx_http_set_misc_module"}

// session runs units on one target.
type session struct {
	suite *Suite
	spec  runners.TargetSpec
	// target runs prove in work.Guest, where the test files are.
	target runners.Target
	work   runners.Mount
	// debianShim is the shim the vkernel's autopkgtest containers run as
	// /usr/sbin/nginx.
	debianShim *Shim
	// debianSSL says whether that nginx.wasm has ngx_http_ssl_module
	// (BuildHasSSL): the autopkgtests that serve TLS run only then.
	debianSSL bool
	// env is added to the environment of every test file's prove.
	env []string
	// cleanup runs at Close.
	cleanup []func()
}

// Open implements runners.Suite. The work directory holds a copy of the
// build's tests/ (Test::Nginx writes t/servroot beside the .t files), or
// is the nginx-tests checkout.
func (s *Suite) Open(ctx context.Context, spec runners.TargetSpec) (runners.Session, error) {
	if spec.Kind == runners.Reference && spec.Reference != runners.Docker {
		return nil, fmt.Errorf("nginx: reference %q: the reference is Debian's nginx with its module packages, in Docker (use -reference docker)", spec.Reference)
	}
	ss := &session{suite: s, spec: spec}
	nginxTests := s.harness == HarnessNginxTests
	work := s.dir
	if !nginxTests {
		work = filepath.Join(spec.Scratch, "work")
		if err := os.CopyFS(work, os.DirFS(s.build.Path("tests"))); err != nil {
			return nil, fmt.Errorf("nginx: copying the test files: %w", err)
		}
	}
	props := map[string]string{compat.PropVersionPrefix + "nginx": s.build.Version}
	env := []string{"TEST_NGINX_NO_SHUFFLE=1", "TEST_NGINX_IGNORE_MISSING_DIRECTIVES=1"}
	var err error
	switch {
	case spec.Kind == runners.Vkernel:
		if spec.Kernel == nil {
			return nil, errors.New("nginx: the vkernel target has no kernel")
		}
		// Guest paths are host paths: Test::Nginx writes them into the
		// configuration, and the shim mounts them at the same place.
		ss.work = runners.Mount{Host: work, Guest: work}
		if env, err = s.vkernelEnv(ss, env); err != nil {
			return nil, err
		}
		props[compat.PropMegabinaryDigest] = spec.Kernel.Digest()
		props[compat.PropModuleDigest] = moduleDigest(spec.Kernel, "nginx")
		props[compat.PropVersionPrefix+"wazero"] = vkernel.WazeroVersion()
		ss.target, err = local.New(local.Options{Name: runners.Vkernel, Mounts: []runners.Mount{ss.work}, Env: env, Properties: props})
		if err == nil && s.has(KindAutopkgtest) {
			// In the container the shim runs as nginx (shimAsNginx), so
			// that start-stop-daemon --name nginx finds its processes.
			var dir string
			if dir, err = spec.Dir("debian-shim"); err == nil {
				// The shim there sees the container's whole file system
				// ("/"), and the vkernel refuses a mount that would show
				// an AOT cache (compiled code and its sealing key) to a
				// guest: the container gets no cache, and nginx.wasm is
				// compiled in memory at each start (about 0.7 s).
				inContainer := spec
				inContainer.Cache = ""
				ss.debianShim, err = PrepareShim(dir, s.build, []string{shimAsNginx, "nginx-shim"}, inContainer)
			}
			if err == nil {
				ss.debianSSL, err = BuildHasSSL(s.build)
			}
		}
	case nginxTests:
		ss.work = runners.Mount{Host: work, Guest: refWork}
		ss.target, err = docker.New(ctx, docker.Options{
			Image:      s.build.ReferenceImage(),
			Mounts:     []runners.Mount{ss.work},
			Env:        []string{"TEST_NGINX_BINARY=" + refNginx},
			Properties: props,
		})
		if err == nil {
			var mods string
			if mods, err = refModulesDir(ctx, ss.target); err == nil {
				ss.env = append(ss.env, "TEST_NGINX_MODULES="+mods)
			}
		}
		if err != nil {
			err = fmt.Errorf("%w (build the image: make -f images/images.mk nginx-image)", err)
		}
	default:
		mods := make([]string, len(refModules))
		for i, m := range refModules {
			mods[i] = "/usr/lib/nginx/modules/" + m + ".so"
		}
		ss.work = runners.Mount{Host: work, Guest: refWork}
		ss.target, err = docker.New(ctx, docker.Options{
			Image:      s.build.ReferenceImage(),
			Mounts:     []runners.Mount{ss.work},
			Env:        append(env, "TEST_NGINX_LOAD_MODULES="+strings.Join(mods, " ")),
			Properties: props,
		})
		if err != nil {
			err = fmt.Errorf("%w (build the image: make -f images/images.mk nginx-image)", err)
		}
	}
	if err != nil {
		for _, f := range ss.cleanup {
			f()
		}
		if ss.target != nil {
			ss.target.Close()
		}
		return nil, err
	}
	return ss, nil
}

// refNginx is Debian's nginx in the reference image.
const refNginx = "/usr/sbin/nginx"

// dynamicModules maps the configure options of nginx's own dynamic modules
// to the files nginx-tests' harness loads for them (load_module lines it
// writes when "nginx -V" says "--with-X=dynamic").
var dynamicModules = map[string]string{
	"http_geoip_module":        "ngx_http_geoip_module.so",
	"http_image_filter_module": "ngx_http_image_filter_module.so",
	"http_perl_module":         "ngx_http_perl_module.so",
	"http_xslt_module":         "ngx_http_xslt_filter_module.so",
	"mail":                     "ngx_mail_module.so",
	"stream":                   "ngx_stream_module.so",
	"stream_geoip_module":      "ngx_stream_geoip_module.so",
}

// modulesFromV reads "nginx -V" output: the modules directory
// (--modules-path, or PREFIX/modules, nginx's default) and the files of
// the dynamic modules nginx-tests will load from it, sorted.
func modulesFromV(v string) (dir string, files []string, err error) {
	prefix := ""
	for _, f := range strings.Fields(v) {
		switch {
		case strings.HasPrefix(f, "--modules-path="):
			dir = strings.TrimPrefix(f, "--modules-path=")
		case strings.HasPrefix(f, "--prefix="):
			prefix = strings.TrimPrefix(f, "--prefix=")
		case strings.HasPrefix(f, "--with-") && strings.HasSuffix(f, "=dynamic"):
			if so, ok := dynamicModules[strings.TrimSuffix(strings.TrimPrefix(f, "--with-"), "=dynamic")]; ok {
				files = append(files, so)
			}
		}
	}
	if !strings.Contains(v, "configure arguments:") {
		return "", nil, fmt.Errorf("no \"configure arguments:\" in nginx -V's output %q", runners.Tail(v, 5, 400))
	}
	if dir == "" && prefix != "" {
		dir = path.Join(prefix, "modules")
	}
	if dir == "" {
		return "", nil, errors.New("nginx -V names neither --modules-path nor --prefix")
	}
	sort.Strings(files)
	return dir, files, nil
}

// refModulesDir finds where the reference's nginx keeps its dynamic
// modules, for nginx-tests' TEST_NGINX_MODULES: without it the harness
// looks for them beside the binary (/usr/sbin) and every file fails to
// start nginx. It reads "nginx -V" in the image rather than assuming
// Debian's path, and checks that every module the harness will load is
// there (the image installs them: images/nginx/Dockerfile).
func refModulesDir(ctx context.Context, t runners.Target) (string, error) {
	var out runners.Buffer
	if exit, err := t.Run(ctx, runners.Process{Args: []string{refNginx, "-V"}, Stdout: &out, Stderr: &out}); err != nil || !exit.OK() {
		return "", fmt.Errorf("%s -V in the reference image: %v %s: %s", refNginx, err, exit, out.String())
	}
	dir, files, err := modulesFromV(out.String())
	if err != nil {
		return "", fmt.Errorf("the reference's nginx: %w", err)
	}
	var missing runners.Buffer
	check := append([]string{"sh", "-c", `dir=$1; shift; for f; do [ -f "$dir/$f" ] || echo "$f"; done`, "sh", dir}, files...)
	if _, err := t.Run(ctx, runners.Process{Args: check, Stdout: &missing, Stderr: &missing}); err != nil {
		return "", fmt.Errorf("looking for the reference's dynamic modules in %s: %w", dir, err)
	}
	if m := strings.Fields(missing.String()); len(m) > 0 {
		return "", fmt.Errorf("the reference's nginx is built with dynamic modules that nginx-tests will load from %s, but the image lacks %s", dir, strings.Join(m, ", "))
	}
	return dir, nil
}

// vkernelEnv adds to env what the vkernel's harness needs: the shim as
// TEST_NGINX_BINARY, Test::Nginx's library and a port of its own.
func (s *Suite) vkernelEnv(ss *session, env []string) ([]string, error) {
	spec := ss.spec
	var lib string
	if s.harness != HarnessNginxTests {
		var err error
		if lib, err = LatestTestNginx(spec.Cache); err != nil {
			return nil, err
		}
	}
	self, err := prepare.Self(s.shim, "nginx-shim")
	if err != nil {
		return nil, err
	}
	dir, err := spec.Dir("shim")
	if err != nil {
		return nil, err
	}
	wasm := s.build.Wasm()
	if s.harness == HarnessNginxTests && os.Geteuid() == 0 {
		// prove runs as unprivUser (user.go): the shim runs from copies
		// that user can read, in a directory of its own (the scratch
		// directory's parents need not be open to others).
		if dir, err = os.MkdirTemp("", "compat-nginx-shim-"); err != nil {
			return nil, err
		}
		ss.cleanup = append(ss.cleanup, func() { os.RemoveAll(dir) })
		u, err := shareWithUnpriv(dir, self, spec, wasm)
		if err != nil {
			return nil, err
		}
		self, spec, wasm = u.self, u.spec, u.wasm
	}
	shim, err := prepareShim(dir, s.build, wasm, self, spec)
	if err != nil {
		return nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	return append(env, "TEST_NGINX_BINARY="+shim.Binary, "PERL5LIB="+lib, "TEST_NGINX_PORT="+strconv.Itoa(port)), nil
}

// moduleDigest is the module digest of the kernel's entry called name.
func moduleDigest(k *vkernel.Kernel, name string) string {
	for _, e := range k.Manifest().Entries {
		if e.Name == name {
			return e.Module
		}
	}
	return ""
}

// has reports whether the suite runs units of kind.
func (s *Suite) has(kind string) bool {
	for _, u := range s.units {
		if u.Kind == kind {
			return true
		}
	}
	return false
}

// Properties implements runners.Session.
func (ss *session) Properties() map[string]string { return ss.target.Properties() }

// Close implements runners.Session.
func (ss *session) Close() error {
	for _, f := range ss.cleanup {
		f()
	}
	return ss.target.Close()
}

// Run implements runners.Session: a file with "prove -v" in its
// directory, its TAP parsed, or an autopkgtest.
func (ss *session) Run(ctx context.Context, u runners.Unit, tests []string) runners.Report {
	if name, ok := strings.CutPrefix(u.Name, DebianTestsUnit+"/"); ok && u.Kind == KindAutopkgtest {
		all, err := DebianTests(ss.suite.build)
		if err != nil {
			return runners.Report{Command: "(the build's debian-tests/control)", Err: err}
		}
		for _, t := range all {
			if t.Name == name {
				return ss.runDebianTest(ctx, t)
			}
		}
		return runners.Report{Command: "(the build's debian-tests/control)", Err: fmt.Errorf("no autopkgtest %q in the build's debian-tests/control", name)}
	}
	return ss.runFile(ctx, u.Name)
}

// runFile runs one test file with prove and parses its TAP.
//
// The TAP is kept as it streams: prove's console formatter writes each
// line as the test file reports it (its default formatter, when stdout is
// no terminal, holds a file's output until the file ends, so a file killed
// by its timeout lost every result). A unit that hangs keeps what it
// reported before.
//
// Everything the unit starts is torn down when it ends, however it ends
// (see unitWrapper): processes that outlive prove (an nginx the harness
// failed to stop, its daemons, a shim in a session of its own) would keep
// prove's output open and hang the unit, or linger into the next one.
func (ss *session) runFile(ctx context.Context, unit string) runners.Report {
	dir, file := ss.work.Guest, strings.TrimPrefix(unit, nginxTestsUnit)
	if ss.suite.harness != HarnessNginxTests {
		mod, name, _ := strings.Cut(unit, "/")
		dir, file = path.Join(ss.work.Guest, mod), "t/"+name
	}
	prove := append(ss.asUser(), "prove", "-v", "--formatter", "TAP::Formatter::Console", file)
	tok, err := unitToken()
	if err != nil {
		return runners.Report{Command: runners.QuoteCommand(prove...), Err: runners.TargetError(err)}
	}
	tmp := ss.unitTemp(tok)
	var out runners.Buffer
	// The command a person reruns: prove itself (the wrapper only marks
	// and tears down).
	inner := runners.Process{Args: prove, Dir: dir}
	inner.Env = append(inner.Env, ss.env...)
	p := runners.Process{Args: append([]string{"sh", "-c", unitWrapper, "sh", tok, tmp}, prove...), Dir: dir, Env: ss.env, Stdout: &out, Stderr: &out}
	start := time.Now()
	exit, err := ss.target.Run(ctx, p)
	elapsed := time.Since(start)
	if err != nil {
		// The wrapper did not get to tear down (a timeout killed it with
		// prove): do it now.
		ss.teardown(tok, tmp)
	}
	rep := runners.Report{Command: ss.target.Command(inner), Output: out.String()}
	res, perr := ParseTAP(strings.NewReader(rep.Output), Name, unit, file)
	// ParseTAP's result for the file as a whole is the file's error (a
	// bail out, a plan not met), which the pipeline reports with the
	// command; a file that skips as a whole stays a skip.
	for _, r := range res {
		if r.Test == unit && r.Status == compat.Error {
			rep.Err = errors.New(r.Message)
			continue
		}
		rep.Results = append(rep.Results, r)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		rep.Err = ctx.Err()
	case err != nil:
		rep.Err = runners.TargetError(err)
	case perr != nil:
		rep.Err = fmt.Errorf("prove's output does not parse as TAP: %w", perr)
	case exit.Crash != "":
		rep.Err = errors.New("prove: " + exit.Crash)
	}
	// Test::Nginx times no single test: spread the file's time.
	for i := range rep.Results {
		rep.Results[i].Duration = elapsed / time.Duration(len(rep.Results))
	}
	return rep
}

// envUnit marks every process a unit starts (it is inherited through
// fork, exec and setsid alike), so that teardown finds them all.
const envUnit = "COMPAT_NGINX_UNIT"

// unitTeardown ends every process whose environment holds envUnit=$1 (in
// a few rounds: one may be starting another) and removes the unit's
// temporary directory $2. It reads /proc/PID/environ, the environment a
// process started with, so the shell running it, which only passes the
// mark on, is not among them.
const unitTeardown = `teardown() {
	for round in 1 2 3 4 5; do
		pids=$(grep -lzx "` + envUnit + `=$1" /proc/[0-9]*/environ 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p')
		[ -n "$pids" ] || break
		kill -KILL $pids 2>/dev/null
		sleep 0.1
	done
	rm -rf "$2"
}
`

// unitWrapper runs a unit's command ("$@" after the token $1 and the
// temporary directory $2) with the unit's mark and TMPDIR (where
// nginx-tests, and the shim, make their temporary directories), and tears
// down what the test file leaves behind:
//
//   - while prove runs: once prove has no live child (the test file has
//     ended, and prove is reading its output to the end), every other
//     marked process is ended, so that one holding the file's output (an
//     nginx its harness failed to stop) cannot keep prove waiting;
//   - when prove has ended: every marked process, and the directory.
//
// Which processes are prove's children is read from
// /proc/PID/task/PID/children; a kernel without it gets the second step
// only.
const unitWrapper = unitTeardown + `state() {
	read -r st 2>/dev/null < "/proc/$1/stat" || return 1
	st=${st##*) }
	echo "${st%% *}"
}
alive() {
	s=$(state "$1") && [ "$s" != Z ]
}
busy() {
	[ -r "/proc/$1/task/$1/children" ] || return 0
	read -r kids 2>/dev/null < "/proc/$1/task/$1/children"
	for k in $kids; do
		alive "$k" && return 0
	done
	return 1
}
ppid() {
	read -r pst 2>/dev/null < "/proc/$1/stat" || return 1
	pst=${pst##*) }
	set -- $pst
	echo "$2"
}
under() {
	up=$1
	while [ -n "$up" ] && [ "$up" -gt 1 ]; do
		[ "$up" = "$2" ] && return 0
		up=$(ppid "$up") || return 1
	done
	return 1
}
sweep() {
	pids=$(grep -lzx "` + envUnit + `=$1" /proc/[0-9]*/environ 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p')
	for p in $pids; do
		# Not main, nor what main started since busy looked: only what
		# has left its tree (a daemon) is swept.
		under "$p" "$2" || kill -KILL "$p" 2>/dev/null
	done
}
tok=$1 tmp=$2
shift 2
mkdir -p "$tmp" && chmod 1777 "$tmp" || exit 125
` + envUnit + `="$tok" TMPDIR="$tmp" "$@" &
main=$!
while alive "$main"; do
	busy "$main" || sweep "$tok" "$main"
	sleep 0.2
done
wait "$main"
rc=$?
teardown "$tok" "$tmp"
exit $rc
`

// teardownTimeout bounds the teardown of a unit that was killed.
const teardownTimeout = 30 * time.Second

// teardown runs unitTeardown on the target for the unit tok, whose
// wrapper was killed before it could.
func (ss *session) teardown(tok, tmp string) {
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	_, _ = ss.target.Run(ctx, runners.Process{Args: []string{"sh", "-c", unitTeardown + `teardown "$1" "$2"`, "sh", tok, tmp}})
}

// unitToken returns a new random mark for a unit's processes.
func unitToken() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("nginx: making a unit token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// unitTemp is the unit's temporary directory on the target.
func (ss *session) unitTemp(tok string) string {
	dir := "/tmp"
	if ss.spec.Kind == runners.Vkernel {
		dir = os.TempDir()
	}
	return path.Join(dir, "compat-nginx-unit-"+tok)
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("nginx: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
