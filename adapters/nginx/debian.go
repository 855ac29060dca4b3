package nginx

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/shim"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/vkernel"
)

// Debian's autopkgtests of nginx (debian/tests in its source, copied into
// the build as debian-tests/) check the packaged service rather than the
// server's features: nginx started by its init script, reloaded and
// restarted with invoke-rc.d, serving http://127.0.0.1/. They want root and
// a machine of their own (isolation-container), so each runs in a fresh
// container of the reference image, which holds what they depend on:
//
//   - "reference": the image as it is, Debian's nginx and its modules;
//   - "vkernel": the same system with nginx.wasm as /usr/sbin/nginx: the
//     shim, run under the name nginx so that start-stop-daemon --name finds
//     it, with the whole container file system mounted for the instance.
//     The image's dynamic modules are not enabled (nginx.wasm has its
//     modules built in and loads none). A build without
//     ngx_http_ssl_module (one made before images/openssl) has the ssl_*
//     lines of Debian's nginx.conf commented out, which would stop every
//     test at its configuration check rather than test the service, and
//     skips the tests that serve TLS; a build with it (BuildHasSSL) runs
//     them as the reference does.
//
// A test's result is its script's exit status; the output and, on failure,
// nginx's error.log are kept in the result.

// DebianTestsUnit starts the names of the autopkgtest units:
// "debian/tests/NAME", each a unit of its own.
const DebianTestsUnit = "debian/tests"

// QuickDebianTests is the quick profile's part: the SSI test restarts the
// service and fetches a page through two modules, in seconds.
var QuickDebianTests = []string{"ssi-module-test"}

// DebianTest is one stanza of debian/tests/control.
type DebianTest struct {
	Name         string
	Depends      []string
	Restrictions []string
}

// DebianTests reads the build's debian-tests/control, in its order.
func DebianTests(b *wasmbuild.Build) ([]DebianTest, error) {
	name := b.Path("debian-tests", "control")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("nginx autopkgtests: %w (rebuild: make -f images/images.mk nginx-wasm)", err)
	}
	tests, err := parseControl(data)
	if err != nil {
		return nil, fmt.Errorf("nginx autopkgtests: %s: %w", name, err)
	}
	return tests, nil
}

// DebianTestNames returns the autopkgtests of the profile "quick"
// (QuickDebianTests) or "full" (every test in control) of b.
func DebianTestNames(b *wasmbuild.Build, profile string) ([]string, error) {
	switch profile {
	case "quick":
		return QuickDebianTests, nil
	case "full":
	default:
		return nil, fmt.Errorf("nginx: unknown profile %q (quick or full)", profile)
	}
	tests, err := DebianTests(b)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range tests {
		names = append(names, t.Name)
	}
	return names, nil
}

// parseControl reads the stanzas of a debian/tests/control file (deb822:
// "Field: value", continuation lines start with a space, stanzas end at a
// blank line). A stanza may name several tests; each gets its own entry.
func parseControl(data []byte) ([]DebianTest, error) {
	var tests []DebianTest
	fields := map[string]string{}
	last := ""
	flush := func() error {
		if len(fields) == 0 {
			return nil
		}
		names := strings.Fields(strings.ReplaceAll(fields["tests"], ",", " "))
		if len(names) == 0 {
			return fmt.Errorf("a stanza without Tests: %v", fields)
		}
		deps := splitDepends(fields["depends"])
		restr := strings.Fields(strings.ReplaceAll(fields["restrictions"], ",", " "))
		for _, n := range names {
			tests = append(tests, DebianTest{Name: n, Depends: deps, Restrictions: restr})
		}
		clear(fields)
		last = ""
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		switch {
		case strings.HasPrefix(text, "#"):
		case strings.TrimSpace(text) == "":
			if err := flush(); err != nil {
				return nil, err
			}
		case text[0] == ' ' || text[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("line %d: continuation without a field", line)
			}
			fields[last] += " " + strings.TrimSpace(text)
		default:
			k, v, ok := strings.Cut(text, ":")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is not \"Field: value\"", line, text)
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(tests) == 0 {
		return nil, fmt.Errorf("no tests")
	}
	return tests, nil
}

// splitDepends returns the package names of a Depends field, without
// version constraints or architecture lists ("pkg (>= 1) [amd64]").
func splitDepends(s string) []string {
	var deps []string
	for _, d := range strings.Split(s, ",") {
		d, _, _ = strings.Cut(d, "|") // the first alternative
		d, _, _ = strings.Cut(d, "(")
		d, _, _ = strings.Cut(d, "[")
		if d = strings.TrimSpace(d); d != "" {
			deps = append(deps, d)
		}
	}
	return deps
}

// BuildHasSSL says whether b's nginx.wasm was configured with
// ngx_http_ssl_module (its build-info.json's configure_args), as every
// build linking images/openssl's OpenSSL is.
func BuildHasSSL(b *wasmbuild.Build) (bool, error) {
	data, err := os.ReadFile(b.Path("build-info.json"))
	if err != nil {
		return false, fmt.Errorf("nginx.wasm build: %w", err)
	}
	var info struct {
		ConfigureArgs []string `json:"configure_args"`
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return false, fmt.Errorf("nginx.wasm build %s: build-info.json: %w", b.Dir, err)
	}
	return slices.Contains(info.ConfigureArgs, "--with-http_ssl_module"), nil
}

// debianSkip says why test does not run on the target kind, or "";
// ssl says whether the vkernel's nginx.wasm has ngx_http_ssl_module.
func debianSkip(test DebianTest, kind string, ssl bool) string {
	switch {
	case slices.Contains(test.Restrictions, "needs-reboot"):
		return "needs a reboot between its steps (autopkgtest-reboot), which a container run cannot give"
	case slices.Contains(test.Depends, "nginx-dev"):
		return "compares nginx-dev's headers with older releases from the archive: the source's API, not a build's behaviour"
	case kind == "vkernel" && !ssl && slices.Contains(test.Depends, "ssl-cert"):
		return "serves TLS: this nginx.wasm build has no ngx_http_ssl_module (built before images/openssl: rebuild it)"
	}
	return ""
}

// In the container.
const (
	debianTestsGuest = "/compat-debian-tests"
	autopkgtestTmp   = "/tmp/autopkgtest"
	// shimExe is the compat executable; shimAsNginx links to it so that
	// the shim's processes are named nginx (start-stop-daemon --name).
	shimExe     = "/usr/local/lib/compat/compat"
	shimAsNginx = "/usr/local/lib/compat/nginx"
)

// vkernelSystem turns a reference container into the vkernel's system:
// /usr/sbin/nginx runs the shim script, with the container's whole file
// system mounted (the comment at the top of this file says why). Its
// arguments: the shim script, the directory for host call counts ("" for
// none), and "ssl" when nginx.wasm has ngx_http_ssl_module (else the
// ssl_* lines of nginx.conf are commented out).
const vkernelSystem = `set -eu
ln -sf ` + shimExe + ` ` + shimAsNginx + `
printf '#!/bin/sh\n# nginx.wasm in the vkernel (compat adapters/nginx)\n` + shim.EnvMounts + `=/=/\nexport ` + shim.EnvMounts + `\nexec %s "$@"\n' "$1" >/usr/sbin/nginx
[ -z "${2:-}" ] || sed -i "/^exec /i export ` + vkernel.EnvHostCallsDir + `=$2" /usr/sbin/nginx
chmod 755 /usr/sbin/nginx
rm -f /etc/nginx/modules-enabled/*.conf
[ "${3:-}" = ssl ] || sed -i 's/^\([[:space:]]*ssl_\)/#\1/' /etc/nginx/nginx.conf
`

// sslArg is vkernelSystem's third argument.
func sslArg(ssl bool) string {
	if ssl {
		return "ssl"
	}
	return ""
}

// runDebianTest runs the autopkgtest test on the target kind, in a new
// container of the reference image; shim is the prepared shim of the
// vkernel kind (nil for the reference).
func (ss *session) runDebianTest(ctx context.Context, test DebianTest) runners.Report {
	s, kind := ss.suite, ss.spec.Kind
	unit := DebianTestsUnit + "/" + test.Name
	rep := runners.Report{Command: "(no container was started)"}
	r := compat.Result{Suite: Name, Unit: unit, Test: unit}
	if why := debianSkip(test, kind, ss.debianSSL); why != "" {
		r.Status, r.Message = compat.Skip, why
		rep.Results = []compat.Result{r}
		return rep
	}
	mounts := []runners.Mount{{Host: s.build.Path("debian-tests"), Guest: debianTestsGuest, ReadOnly: true}}
	if kind == runners.Vkernel {
		exe := s.exe
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				rep.Err = runners.TargetError(fmt.Errorf("finding the compat executable: %w", err))
				return rep
			}
		}
		mounts = append(mounts,
			runners.Mount{Host: exe, Guest: shimExe, ReadOnly: true},
			runners.Mount{Host: s.build.Dir, Guest: s.build.Dir, ReadOnly: true},
			runners.Mount{Host: filepath.Dir(ss.debianShim.Binary), Guest: filepath.Dir(ss.debianShim.Binary), ReadOnly: true},
			// The run's megabinary and its key, at the paths the shim
			// script names.
			runners.Mount{Host: ss.debianShim.Megabinary, Guest: ss.debianShim.Megabinary, ReadOnly: true},
			runners.Mount{Host: ss.debianShim.PublicKey, Guest: ss.debianShim.PublicKey, ReadOnly: true},
		)
		// No AOT cache: see where debianShim is prepared.
		// The unit's host call counts (the polyfill coverage map): the
		// shim's kernels write them where the pipeline reads them.
		if dir := runners.HostCallsDir(ctx); dir != "" {
			mounts = append(mounts, runners.Mount{Host: dir, Guest: dir})
		}
	}
	t, err := docker.New(ctx, docker.Options{Name: kind, Image: s.build.ReferenceImage(), Mounts: mounts})
	if err != nil {
		rep.Err = runners.TargetError(fmt.Errorf("starting the container: %w (build the image: make -f images/images.mk nginx-image)", err))
		return rep
	}
	defer t.Close()
	var (
		log    strings.Builder
		script []string
	)
	env := []string{"AUTOPKGTEST_TMP=" + autopkgtestTmp}
	step := func(title string, args ...string) (runners.Exit, string, string, error) {
		var out, errOut runners.Buffer
		p := runners.Process{Args: args, Env: env, Stdout: &out, Stderr: &errOut}
		script = append(script, runners.QuoteCommand(args...))
		rep.Command = t.Command(runners.Process{Args: []string{"sh", "-c", strings.Join(script, "\n")}, Env: env})
		exit, err := t.Run(ctx, p)
		fmt.Fprintf(&log, "=== %s (%s)\n%s%s", title, exit, out.String(), errOut.String())
		rep.Output = log.String()
		return exit, out.String(), errOut.String(), err
	}
	failed := func(err error) runners.Report {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		rep.Err = err
		return rep
	}
	// No init system runs in the container: policy-rc.d lets invoke-rc.d
	// run the init script itself instead of refusing (exit 101).
	if exit, _, _, err := step("policy-rc.d", "sh", "-c", "printf '#!/bin/sh\\nexit 0\\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d"); err != nil || !exit.OK() {
		return failed(runners.TargetError(fmt.Errorf("writing policy-rc.d failed (%v, %s)", err, exit)))
	}
	if kind == runners.Vkernel {
		if exit, _, _, err := step("vkernel system", "sh", "-c", vkernelSystem, "setup", ss.debianShim.Binary, runners.HostCallsDir(ctx), sslArg(ss.debianSSL)); err != nil || !exit.OK() {
			return failed(runners.TargetError(fmt.Errorf("preparing the vkernel system failed (%v, %s)", err, exit)))
		}
	}
	if _, _, _, err := step("mkdir", "mkdir", "-p", autopkgtestTmp); err != nil {
		return failed(runners.TargetError(err))
	}
	// The service runs once the package is installed (its postinst starts
	// it); the tests begin from there.
	step("service start (as the package's postinst)", "invoke-rc.d", "nginx", "start")
	exit, out, errOut, err := step("debian/tests/"+test.Name, interpreter(s.build.Path("debian-tests", test.Name)), filepath.Join(debianTestsGuest, test.Name))
	if err != nil {
		return failed(runners.TargetError(err))
	}
	why := ""
	switch {
	case !exit.OK():
		why = exit.String()
	case errOut != "" && !slices.Contains(test.Restrictions, "allow-stderr"):
		why = "wrote to stderr without allow-stderr"
	}
	if why == "" {
		r.Status, r.Output = compat.Pass, runners.Tail(log.String(), 100, 4000)
		rep.Results = []compat.Result{r}
		return rep
	}
	var bad []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "FAILED") {
			bad = append(bad, strings.TrimSpace(line))
		}
	}
	r.Status, r.Message = compat.Fail, why
	if len(bad) > 0 {
		r.Message += ": " + strings.Join(bad, "; ")
	}
	step("error.log", "sh", "-c", "tail -n 40 /var/log/nginx/error.log")
	r.Output = runners.Tail(log.String(), 200, 8000)
	rep.Results = []compat.Result{r}
	return rep
}

// interpreter returns the program of a script's "#!" line (sh when it has
// none): the scripts are run from a read-only mount, by their interpreter.
func interpreter(path string) string {
	data, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(data, []byte("#!")) {
		return "sh"
	}
	line, _, _ := bytes.Cut(data[2:], []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return "sh"
	}
	return fields[0]
}
