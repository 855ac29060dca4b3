package nginx

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/local"
	"github.com/compat-project/compat/runners/testenv"
)

// harnessSession is a vkernel-kind session over testdata/harness, the
// fixture files in nginx-tests' layout, run by prove on the host's perl as
// runFile runs nginx-tests files. The fixtures write what they start to the
// returned record file.
func harnessSession(t *testing.T) (*session, string) {
	t.Helper()
	if _, err := exec.LookPath("prove"); err != nil {
		testenv.Missing(t, "prove (perl) is not installed: %v", err)
	}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("setpriv"); err != nil {
			testenv.Missing(t, "setpriv (util-linux) is not installed: %v", err)
		}
	}
	dir, err := filepath.Abs("testdata/harness")
	if err != nil {
		t.Fatal(err)
	}
	// The fixtures run as nobody when the test runs as root: the record
	// must be writable by them.
	recDir, err := os.MkdirTemp("", "compat-nginx-record-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(recDir) })
	if err := os.Chmod(recDir, 0o777); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(recDir, "record")
	work := runners.Mount{Host: dir, Guest: dir}
	target, err := local.New(local.Options{Name: runners.Vkernel, Mounts: []runners.Mount{work}, Env: []string{"FIXTURE_RECORD=" + rec}})
	if err != nil {
		t.Fatal(err)
	}
	s := &Suite{harness: HarnessNginxTests, dir: dir}
	return &session{suite: s, spec: runners.TargetSpec{Kind: runners.Vkernel}, target: target, work: work}, rec
}

// recorded reads the pids and directories a fixture recorded.
func recorded(t *testing.T, rec string) (pids []int, dirs []string) {
	t.Helper()
	f, err := os.Open(rec)
	if err != nil {
		t.Fatalf("the fixture recorded nothing: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		kind, val, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "pid":
			pid, err := strconv.Atoi(val)
			if err != nil {
				t.Fatalf("record: %q", sc.Text())
			}
			pids = append(pids, pid)
		case "dir":
			dirs = append(dirs, val)
		}
	}
	return pids, dirs
}

// alive reports whether pid is a running process (a zombie is not).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "PID (COMM) STATE ...": the state follows the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// checkTornDown fails t for every recorded process still running and every
// recorded directory still there, with the unit's TMPDIR above it.
func checkTornDown(t *testing.T, rec string) {
	t.Helper()
	pids, dirs := recorded(t, rec)
	if len(pids) == 0 {
		t.Fatal("the fixture recorded no process")
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("process %d the unit started is still running", pid)
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
	}
	for _, d := range dirs {
		for _, path := range []string{d, filepath.Dir(d)} {
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the unit's temporary directory %s is left behind (%v)", path, err)
			}
		}
		if !strings.HasPrefix(filepath.Base(filepath.Dir(d)), "compat-nginx-unit-") {
			t.Errorf("the fixture's temporary directory %s is not in the unit's TMPDIR", d)
		}
	}
}

// TestHungUnitKeepsItsResults: a test file killed by its timeout keeps the
// results it reported (prove's TAP is read as it streams), and everything
// it started is torn down: its daemon in a session of its own, its
// temporary directory.
func TestHungUnitKeepsItsResults(t *testing.T) {
	ss, rec := harnessSession(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	rep := ss.Run(ctx, runners.Unit{Name: "nginx-tests/streams.t"}, nil)
	t.Logf("%s in %s:\n%s", rep.Command, time.Since(start).Round(time.Millisecond), rep.Output)
	if !errors.Is(rep.Err, context.DeadlineExceeded) {
		t.Errorf("err %v, want the timeout", rep.Err)
	}
	want := map[string]compat.Status{
		"nginx-tests/streams.t first":  compat.Pass,
		"nginx-tests/streams.t second": compat.Pass,
		"nginx-tests/streams.t status": compat.Fail,
	}
	if len(rep.Results) != len(want) {
		t.Errorf("%d results, want the %d reported before the hang: %+v", len(rep.Results), len(want), rep.Results)
	}
	for _, r := range rep.Results {
		if st, ok := want[r.Test]; !ok || st != r.Status {
			t.Errorf("result %s %s, want %v", r.Test, r.Status, want)
		}
		if r.Status == compat.Fail && r.Message != "got: '500'; expected: '200'" {
			t.Errorf("failure message %q, want Test::More's got/expected", r.Message)
		}
	}
	if !strings.Contains(rep.Command, "prove -v") {
		t.Errorf("command %q does not show prove", rep.Command)
	}
	checkTornDown(t, rec)
}

// TestOrphanDoesNotHangUnit: a file that ends but leaves a process holding
// its output (an nginx its harness failed to stop) ends the unit with it,
// not at the unit's timeout, and the process is ended. The file also checks
// that it runs unprivileged, as on the reference.
func TestOrphanDoesNotHangUnit(t *testing.T) {
	ss, rec := harnessSession(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	rep := ss.Run(ctx, runners.Unit{Name: "nginx-tests/orphan.t"}, nil)
	took := time.Since(start)
	t.Logf("%s in %s:\n%s", rep.Command, took.Round(time.Millisecond), rep.Output)
	if rep.Err != nil {
		t.Errorf("err %v", rep.Err)
	}
	if took > 20*time.Second {
		t.Errorf("the unit took %s: it waited for the process left behind", took)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("results %+v, want 2", rep.Results)
	}
	for _, r := range rep.Results {
		if r.Status != compat.Pass {
			t.Errorf("%s: %s %s", r.Test, r.Status, r.Message)
		}
	}
	checkTornDown(t, rec)
}

// TestModulesFromV reads the modules directory and the dynamic modules
// nginx-tests will load from Debian's "nginx -V".
func TestModulesFromV(t *testing.T) {
	v := `nginx version: nginx/1.22.1
built with OpenSSL 3.0.9 30 May 2023
TLS SNI support enabled
configure arguments: --with-cc-opt='-g -O2 -ffile-prefix-map=/build/nginx-AoTv4W/nginx-1.22.1=. -fstack-protector-strong' --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf --http-log-path=/var/log/nginx/access.log --modules-path=/usr/lib/nginx/modules --with-http_ssl_module --with-http_geoip_module=dynamic --with-http_image_filter_module=dynamic --with-http_perl_module=dynamic --with-http_xslt_module=dynamic --with-mail=dynamic --with-mail_ssl_module --with-stream=dynamic --with-stream_geoip_module=dynamic --with-stream_ssl_module --add-dynamic-module=/build/nginx/debian/modules/http-echo`
	dir, files, err := modulesFromV(v)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ngx_http_geoip_module.so", "ngx_http_image_filter_module.so", "ngx_http_perl_module.so", "ngx_http_xslt_filter_module.so",
		"ngx_mail_module.so", "ngx_stream_geoip_module.so", "ngx_stream_module.so"}
	if dir != "/usr/lib/nginx/modules" || strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("dir %q, files %q; want /usr/lib/nginx/modules, %q", dir, files, want)
	}
	// nginx's own default: PREFIX/modules.
	if dir, _, err := modulesFromV("configure arguments: --prefix=/opt/nginx --with-stream=dynamic"); err != nil || dir != "/opt/nginx/modules" {
		t.Errorf("without --modules-path: %q, %v", dir, err)
	}
	if _, _, err := modulesFromV("nginx: [emerg] something else"); err == nil {
		t.Error("output without configure arguments was accepted")
	}
}
