package nginx

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/internal/shim"
	"github.com/compat-project/compat/adapters/internal/units"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/docker"
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
//     modules built in and loads none), and the ssl_* lines of Debian's
//     nginx.conf are commented out: nginx.wasm has no ngx_http_ssl_module
//     (there is no OpenSSL for wasm32-wasi here), and they would stop every
//     test at its configuration check rather than test the service.
//
// A test's result is its script's exit status; the output and, on failure,
// nginx's error.log are kept in the result.

// DebianTestsUnit is the unit of the autopkgtest results.
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
func (b *Build) DebianTests() ([]DebianTest, error) {
	name := filepath.Join(b.Dir, "debian-tests", "control")
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
// (QuickDebianTests) or "full" (every test in control).
func (b *Build) DebianTestNames(profile string) ([]string, error) {
	switch profile {
	case "quick":
		return QuickDebianTests, nil
	case "full":
	default:
		return nil, fmt.Errorf("nginx: unknown profile %q (quick or full)", profile)
	}
	tests, err := b.DebianTests()
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

// debianSkip says why test does not run on the target kind, or "".
func debianSkip(test DebianTest, kind string) string {
	switch {
	case slices.Contains(test.Restrictions, "needs-reboot"):
		return "needs a reboot between its steps (autopkgtest-reboot), which a container run cannot give"
	case slices.Contains(test.Depends, "nginx-dev"):
		return "compares nginx-dev's headers with older releases from the archive: the source's API, not a build's behaviour"
	case kind == "vkernel" && slices.Contains(test.Depends, "ssl-cert"):
		return "serves TLS: nginx.wasm has no ngx_http_ssl_module (no OpenSSL for wasm32-wasi)"
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
// system mounted (the comment at the top of this file says why).
const vkernelSystem = `set -eu
ln -sf ` + shimExe + ` ` + shimAsNginx + `
printf '#!/bin/sh\n# nginx.wasm in the vkernel (compat adapters/nginx)\n` + shim.EnvMounts + `=/=/\nexport ` + shim.EnvMounts + `\nexec %s "$@"\n' "$1" >/usr/sbin/nginx
chmod 755 /usr/sbin/nginx
rm -f /etc/nginx/modules-enabled/*.conf
sed -i 's/^\([[:space:]]*ssl_\)/#\1/' /etc/nginx/nginx.conf
`

// runDebianTests runs the named autopkgtests for the target kind, each in
// a new container; shim is the prepared shim of the vkernel kind (nil for
// the reference).
func (s *Suite) runDebianTests(ctx context.Context, kind string, shim *Shim, progress func(string)) ([]compat.Result, error) {
	all, err := s.Build.DebianTests()
	if err != nil {
		return nil, err
	}
	byName := map[string]DebianTest{}
	for _, t := range all {
		byName[t.Name] = t
	}
	var results []compat.Result
	for _, name := range s.DebianTests {
		if ctx.Err() != nil {
			return results, fmt.Errorf("nginx: stopped before autopkgtest %s: %w", name, context.Cause(ctx))
		}
		test, ok := byName[name]
		if !ok {
			return results, fmt.Errorf("nginx: no autopkgtest %q in the build's debian-tests/control", name)
		}
		start := time.Now()
		r := compat.Result{Suite: SuiteName, Unit: DebianTestsUnit, Test: DebianTestsUnit + "/" + name}
		if why := debianSkip(test, kind); why != "" {
			r.Status, r.Message = compat.Skip, why
		} else {
			r = s.runDebianTest(ctx, kind, shim, test, r)
		}
		r.Duration = time.Since(start)
		results = append(results, r)
		if progress != nil {
			progress(fmt.Sprintf("%s: %s (%s)", r.Test, r.Status, r.Duration.Round(time.Millisecond)))
		}
	}
	return results, nil
}

func (s *Suite) runDebianTest(ctx context.Context, kind string, shim *Shim, test DebianTest, r compat.Result) compat.Result {
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	mounts := []runners.Mount{{Host: filepath.Join(s.Build.Dir, "debian-tests"), Guest: debianTestsGuest, ReadOnly: true}}
	if kind == "vkernel" {
		exe := s.Exe
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return errorResult(r, "finding the compat executable: "+err.Error(), "")
			}
		}
		mounts = append(mounts,
			runners.Mount{Host: exe, Guest: shimExe, ReadOnly: true},
			runners.Mount{Host: s.Build.Dir, Guest: s.Build.Dir, ReadOnly: true},
			runners.Mount{Host: filepath.Dir(shim.Binary), Guest: filepath.Dir(shim.Binary), ReadOnly: true},
		)
		if s.Cache != "" {
			// The shim's compiled code, kept between containers.
			aot := filepath.Join(s.Cache, "aot")
			if err := os.MkdirAll(aot, 0o755); err != nil {
				return errorResult(r, err.Error(), "")
			}
			mounts = append(mounts, runners.Mount{Host: aot, Guest: aot})
		}
	}
	t, err := docker.New(ctx, docker.Options{Name: kind, Image: s.Build.ReferenceImage(), Mounts: mounts})
	if err != nil {
		return errorResult(r, fmt.Sprintf("starting the container: %v (build the image: make -f images/images.mk nginx-image)", err), "")
	}
	defer t.Close()
	var log bytes.Buffer
	step := func(title string, args ...string) (runners.Exit, string, string, error) {
		var out, errOut units.Buffer
		exit, err := t.Run(ctx, runners.Process{Args: args, Env: []string{"AUTOPKGTEST_TMP=" + autopkgtestTmp},
			Stdout: &out, Stderr: &errOut})
		fmt.Fprintf(&log, "=== %s (%s)\n%s%s", title, exit, out.String(), errOut.String())
		return exit, out.String(), errOut.String(), err
	}
	// No init system runs in the container: policy-rc.d lets invoke-rc.d
	// run the init script itself instead of refusing (exit 101).
	if exit, _, _, err := step("policy-rc.d", "sh", "-c", "printf '#!/bin/sh\\nexit 0\\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d"); err != nil || !exit.OK() {
		return errorResult(r, fmt.Sprintf("writing policy-rc.d failed (%v, %s)", err, exit), log.String())
	}
	if kind == "vkernel" {
		if exit, _, _, err := step("vkernel system", "sh", "-c", vkernelSystem, "setup", shim.Binary); err != nil || !exit.OK() {
			return errorResult(r, fmt.Sprintf("preparing the vkernel system failed (%v, %s)", err, exit), log.String())
		}
	}
	if _, _, _, err := step("mkdir", "mkdir", "-p", autopkgtestTmp); err != nil {
		return errorResult(r, err.Error(), log.String())
	}
	// The service runs once the package is installed (its postinst starts
	// it); the tests begin from there.
	step("service start (as the package's postinst)", "invoke-rc.d", "nginx", "start")
	script := filepath.Join(debianTestsGuest, test.Name)
	exit, out, errOut, err := step("debian/tests/"+test.Name, interpreter(filepath.Join(s.Build.Dir, "debian-tests", test.Name)), script)
	switch {
	case err != nil && ctx.Err() != nil:
		return errorResult(r, fmt.Sprintf("timed out after %s", timeout), log.String())
	case err != nil:
		return errorResult(r, err.Error(), log.String())
	}
	failed := ""
	switch {
	case !exit.OK():
		failed = exit.String()
	case errOut != "" && !slices.Contains(test.Restrictions, "allow-stderr"):
		failed = "wrote to stderr without allow-stderr"
	}
	if failed == "" {
		r.Status, r.Output = compat.Pass, tail(log.String(), 4000)
		return r
	}
	var bad []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "FAILED") {
			bad = append(bad, strings.TrimSpace(line))
		}
	}
	r.Status = compat.Fail
	r.Message = failed
	if len(bad) > 0 {
		r.Message += ": " + strings.Join(bad, "; ")
	}
	step("error.log", "sh", "-c", "tail -n 40 /var/log/nginx/error.log")
	r.Output = tail(log.String(), 8000)
	return r
}

func errorResult(r compat.Result, msg, output string) compat.Result {
	r.Status, r.Message, r.Output = compat.Error, msg, tail(output, 8000)
	return r
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
