package redis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/compat-project/compat/adapters/internal/shim/shimtest"
	"github.com/compat-project/compat/adapters/internal/wasmbuild"
	"github.com/compat-project/compat/runners"
)

// envTestShim makes the test binary the shim (shimtest.Main):
// shimPrograms sets it for the scripts it prepares.
const envTestShim = "COMPAT_REDIS_TEST_AS_SHIM"

func TestMain(m *testing.M) {
	shimtest.Main(m, envTestShim, func(argv []string) int { return ShimMain(argv, os.Stdout, os.Stderr) })
}

// shimPrograms prepares the spawn-mode programs for the newest
// redis-server.wasm build, on a megabinary signed for the test, or skips.
func shimPrograms(t *testing.T) (map[string]string, *wasmbuild.Build) {
	t.Helper()
	b := testBuild(t)
	t.Setenv(envTestShim, "1")
	programs, err := VkernelPrograms(t.TempDir(), b, []string{os.Args[0]}, testKernel(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return programs, b
}

func TestReadServerOptions(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "redis.conf")
	os.WriteFile(conf, []byte("# test\nport 7000\nbind 127.0.0.1 -::1\nunixsocket \"/tmp/a b/socket\"\ndir './x'\n"), 0o644)
	o, err := readServerOptions([]string{conf, "--port", "7001", "--save", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := &serverOptions{port: 7001, binds: []string{"127.0.0.1", "-::1"}, unixSocket: "/tmp/a b/socket", dir: "./x", configFile: conf}
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("options %+v, want %+v", o, want)
	}
	o, err = readServerOptions(nil)
	if err != nil || o.port != 6379 || !reflect.DeepEqual(o.binds, []string{"*", "-::*"}) {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	if o, _ := readServerOptions([]string{"--version"}); !o.info {
		t.Fatal("--version must start no listeners")
	}
	if _, err := readServerOptions([]string{"--port", "70000"}); err == nil {
		t.Fatal("port 70000 accepted")
	}
	if _, err := readServerOptions([]string{filepath.Join(dir, "missing.conf")}); err == nil {
		t.Fatal("a missing configuration file accepted")
	}
}

func TestSplitArgs(t *testing.T) {
	for line, want := range map[string][]string{
		`save ""`:             {"save", ""},
		`a "b c" 'd e' f`:     {"a", "b c", "d e", "f"},
		`x "tab\there"`:       {"x", "tab\there"},
		"  spaced\targs  ":    {"spaced", "args"},
		`requirepass 'it''s'`: {"requirepass", "it", "s"},
		`client-output-buffer-limit normal 0 0 0`: {"client-output-buffer-limit", "normal", "0", "0", "0"},
	} {
		got, err := splitArgs(line)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", line, got, err, want)
		}
	}
	if _, err := splitArgs(`bad "quote`); err == nil {
		t.Error("unbalanced quotes accepted")
	}
}

// TestShimServerLifecycle starts redis-server.wasm through the shim as
// runtest does (a config file, relative dir, a unix socket), talks to it
// over TCP and the unix socket, checks that it reports the shim's pid, and
// stops it with SIGTERM: Redis' own shutdown runs, saves the dataset
// (a save point is configured) and exits 0.
func TestShimServerLifecycle(t *testing.T) {
	programs, _ := shimPrograms(t)
	work := t.TempDir()
	dir := filepath.Join(work, "data")
	os.Mkdir(dir, 0o755)
	port := shimtest.FreePort(t)
	sock := filepath.Join(dir, "socket")
	conf := filepath.Join(work, "redis.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nbind 127.0.0.1\nunixsocket %s\ndir ./data\nsave 900 1\nalways-show-logo yes\nlogfile ''\n", port, sock)), 0o644)

	cmd, out, done := startServer(t, programs["redis-server"], work, conf)
	defer cmd.Process.Kill()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tcp := goredis.NewClient(&goredis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer tcp.Close()
	for {
		if err := tcp.Ping(ctx).Err(); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the shim exited before it answered PING: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("no PONG within a minute\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	unix := goredis.NewClient(&goredis.Options{Network: "unix", Addr: sock, Protocol: 2, DisableIdentity: true})
	defer unix.Close()
	if err := unix.Set(ctx, "k", "over the unix socket", 0).Err(); err != nil {
		t.Fatalf("SET over the unix socket: %v", err)
	}
	if v, err := tcp.Get(ctx, "k").Result(); err != nil || v != "over the unix socket" {
		t.Fatalf("GET over TCP: %q, %v", v, err)
	}
	info, err := tcp.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("process_id:%d", cmd.Process.Pid); !strings.Contains(info, want) {
		t.Fatalf("INFO server has no %s:\n%s", want, info)
	}
	if !strings.Contains(out.String(), fmt.Sprintf(" PID: %d", cmd.Process.Pid)) {
		t.Fatalf("the log has no \" PID: %d\" for runtest to wait for:\n%s", cmd.Process.Pid, out.String())
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("still running a minute after SIGTERM\n%s", out.String())
	}
	for _, want := range []string{"Received SIGTERM scheduling shutdown", "DB saved on disk", "bye bye"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the log has no %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dump.rdb")); err != nil {
		t.Errorf("no dump.rdb in the configured dir after shutdown: %v", err)
	}
}

// TestShimPortInUse: a port taken by someone else ends the start with
// Redis' own message, which runtest looks for to try another port.
func TestShimPortInUse(t *testing.T) {
	programs, _ := shimPrograms(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	out, err := exec.Command(programs["redis-server"], "--port", strconv.Itoa(port), "--bind", "127.0.0.1").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("Failed listening on port %d", port)) {
		t.Fatalf("no \"Failed listening on port\" line:\n%s", out)
	}
}

// TestShimForkAndCrashReport: the instance's BGSAVE runs in a child
// process of the shim (what runtest's get_child_pid looks for) that
// saves into the configured directory, as natively; SIGABRT to the shim
// reaches Redis' handler, which writes its crash report and then dies of
// the signal, taking its child with it.
func TestShimForkAndCrashReport(t *testing.T) {
	programs, _ := shimPrograms(t)
	work := t.TempDir()
	dir := filepath.Join(work, "data")
	os.Mkdir(dir, 0o755)
	port := shimtest.FreePort(t)
	conf := filepath.Join(work, "redis.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nbind 127.0.0.1\ndir ./data\nsave ''\nenable-debug-command yes\nlogfile ''\n", port)), 0o644)

	cmd, out, done := startServer(t, programs["redis-server"], work, conf)
	defer cmd.Process.Kill()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := goredis.NewClient(&goredis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	for c.Ping(ctx).Err() != nil {
		select {
		case err := <-done:
			t.Fatalf("the shim exited before it answered PING: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("no PONG within the test's limit\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	persistence := func(field string) string {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			t.Fatal(err)
		}
		_, v, _ := strings.Cut(info, field+":")
		v, _, _ = strings.Cut(v, "\r\n")
		return v
	}
	waitSaved := func() {
		for persistence("rdb_bgsave_in_progress") != "0" {
			select {
			case <-ctx.Done():
				t.Fatalf("BGSAVE did not end within the test's limit\n%s", out.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if err := c.Do(ctx, "DEBUG", "POPULATE", "100").Err(); err != nil {
		t.Fatal(err)
	}

	// A save that ends: its file is in the configured directory, where
	// the server (and a replica's full sync) looks for it.
	if err := c.BgSave(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	waitSaved()
	if s := persistence("rdb_last_bgsave_status"); s != "ok" {
		t.Fatalf("rdb_last_bgsave_status %q\n%s", s, out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "dump.rdb")); err != nil {
		t.Fatalf("the BGSAVE child saved no dump.rdb in the configured dir: %v\n%s", err, out.String())
	}

	// A save that takes its time: the child is the shim's child.
	if err := c.ConfigSet(ctx, "rdb-key-save-delay", "10000000").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.BgSave(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var child int
	for {
		const started = "Background saving started by pid "
		if log := out.String(); strings.Count(log, started) == 2 {
			child, _ = strconv.Atoi(strings.Fields(log[strings.LastIndex(log, started)+len(started):])[0])
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no second %q\n%s", started, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
	if err != nil {
		t.Fatalf("the BGSAVE child %d: %v\n%s", child, err, out.String())
	}
	// pid (comm) state ppid ...: the comm may hold spaces, not ')'.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if ppid, _ := strconv.Atoi(fields[1]); ppid != cmd.Process.Pid {
		t.Fatalf("the BGSAVE child %d has parent %d, want the shim %d", child, ppid, cmd.Process.Pid)
	}

	cmd.Process.Signal(syscall.SIGABRT)
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("still running after SIGABRT\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGABRT) {
		t.Errorf("exit status %d after SIGABRT, want %d (128+SIGABRT)", code, 128+int(syscall.SIGABRT))
	}
	for _, want := range []string{"crashed by signal: 6", "REDIS BUG REPORT END"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the log has no %q (Redis' crash report):\n%s", want, out.String())
		}
	}
	// The kernel takes the unwaited child down with the instance.
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", child)); os.IsNotExist(err) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the BGSAVE child %d outlived the shim", child)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startServer starts the shim program redis-server in work on the config
// file conf and returns it, its output (stdout and stderr) and a channel
// that receives its exit.
func startServer(t *testing.T, program, work, conf string) (*exec.Cmd, *runners.Buffer, <-chan error) {
	t.Helper()
	out := new(runners.Buffer)
	cmd := exec.Command(program, conf)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, out, done
}
