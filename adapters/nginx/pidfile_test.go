package nginx

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPrivatePid: the instance's pid directive is moved to the shim's
// private path wherever the shim can move it, and nowhere else.
func TestPrivatePid(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	text := "pid " + dir + "/nginx.pid;\nerror_log x;\nevents {\n}\n"
	os.WriteFile(conf, []byte(text), 0o644)
	cmd := func(globals string) *cmdline {
		args := []string{"-p", dir + "/", "-c", "nginx.conf"}
		if globals != "" {
			args = append(args, "-g", globals)
		}
		cl, err := parseCmdline(args)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	read := func(cl *cmdline, text string) *serverConf {
		sc, err := readServerConf(text, cl.globals, dir)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}

	// In the configuration (nginx-tests' %%TEST_GLOBALS%%): a copy beside
	// it, with the same lines.
	cl := cmd("")
	args, copied, ok, err := privatePid(cl, read(cl, text), text)
	if err != nil || !ok || copied != filepath.Join(dir, ".nginx.conf.compat-shim") || !slices.Equal(args[len(args)-2:], []string{"-c", copied}) {
		t.Fatalf("pid in the configuration: %q %q %v %v", args, copied, ok, err)
	}
	data, _ := os.ReadFile(copied)
	if want := strings.Replace(text, dir+"/nginx.pid", shimPidGuest, 1); string(data) != want {
		t.Errorf("copy:\n%s\nwant:\n%s", data, want)
	}

	// In -g (nginx-tests without %%TEST_GLOBALS%%): -g again, rewritten.
	plain := "events {\n}\n"
	cl = cmd("pid " + dir + "/nginx.pid; error_log " + dir + "/error.log debug;")
	args, copied, ok, err = privatePid(cl, read(cl, plain), plain)
	if err != nil || !ok || copied != "" || !slices.Equal(args[len(args)-2:], []string{"-g", "pid " + shimPidGuest + "; error_log " + dir + "/error.log debug;"}) {
		t.Errorf("pid in -g: %q %q %v %v", args, copied, ok, err)
	}

	// Nowhere: added to -g.
	cl = cmd("error_log x;")
	args, _, ok, _ = privatePid(cl, read(cl, plain), plain)
	if !ok || args[len(args)-1] != "error_log x; pid "+shimPidGuest+";" {
		t.Errorf("no pid: %q", args)
	}

	// In an included file: left alone.
	os.WriteFile(filepath.Join(dir, "main.conf"), []byte("pid /run/x.pid;\n"), 0o644)
	inc := "include main.conf;\nevents {\n}\n"
	cl = cmd("")
	args, copied, ok, err = privatePid(cl, read(cl, inc), inc)
	if err != nil || ok || copied != "" || !slices.Equal(args, cl.args) {
		t.Errorf("pid in an include: %q %q %v %v", args, copied, ok, err)
	}

	if got := setPid(`pid "/a b/n.pid"; # pid x;`, "/p"); got != `pid /p; # pid x;` {
		t.Errorf("setPid with a quoted path: %q", got)
	}
}

// TestPidPublisher: the public pid file appears once the instance wrote its
// private one and stays while the private one comes and goes; it is
// replaced, never removed, and removeOwnPid removes it.
func TestPidPublisher(t *testing.T) {
	dir := t.TempDir()
	p := &pidPublisher{private: filepath.Join(dir, "private.pid"), public: filepath.Join(dir, "nginx.pid")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx) }()
	own := strconv.Itoa(os.Getpid()) + "\n"
	wait := func(cond func() bool, what string) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	public := func() string { data, _ := os.ReadFile(p.public); return string(data) }
	os.WriteFile(p.private, []byte(own), 0o644)
	wait(func() bool { return public() == own }, "the first publication")
	// A reload: the instance removes its file, a new one writes it. The
	// public file is read all along and never found missing.
	stop := make(chan struct{})
	missing := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				missing <- n
				return
			default:
			}
			if _, err := os.Stat(p.public); err != nil {
				n++
			}
		}
	}()
	for i := 0; i < 20; i++ {
		os.Remove(p.private)
		time.Sleep(3 * time.Millisecond)
		os.WriteFile(p.private, []byte(own), 0o644)
		time.Sleep(3 * time.Millisecond)
	}
	close(stop)
	if n := <-missing; n != 0 {
		t.Errorf("the public pid file was missing %d times during reloads", n)
	}
	cancel()
	<-done
	removeOwnPid(p.public)
	if _, err := os.Stat(p.public); !os.IsNotExist(err) {
		t.Errorf("pid file not removed: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.compat-shim.*")); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
}
