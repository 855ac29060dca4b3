package nginx

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// The pid file through a reload.
//
// A native nginx's master keeps its pid file while it reloads. The shim
// reloads by ending the instance and starting another (ShimMain), and an
// instance removes its pid file when it ends, as nginx does on exit: in the
// gap before the next instance wrote it again, a harness reading the file
// (nginx-tests' stop() after a reload; it dies when the file is missing and
// never stops nginx) found nothing.
//
// So the instance writes a private pid file, shimPidGuest in a directory
// of the shim's own, and the shim publishes its content at the pid file's
// real path (atomically: a new file renamed over the old), keeps it
// there while instances come and go, and removes it when it exits itself.
// The instance is told the private path by rewriting its pid directive:
// in -g when it is there, else in a copy of the configuration beside the
// original (same directory, so relative includes resolve alike), or by
// adding one to -g when neither names it. A pid directive in an included
// file is left alone, and the instance manages the real file as before.
const (
	// shimRunGuest is where an instance sees the shim's private directory.
	shimRunGuest = "/compat-shim-run"
	// shimPidGuest is the instance's private pid file.
	shimPidGuest = shimRunGuest + "/nginx.pid"
	// confCopySuffix ends the name of the configuration copy, a hidden
	// file beside the original: ".nginx.conf" + confCopySuffix.
	confCopySuffix = ".compat-shim"
)

// Where a configuration sets "pid" (serverConf.PidIn).
const (
	pidInGlobals = "globals"
	pidInConf    = "conf"
	pidInInclude = "include"
)

// pidArg matches a pid directive at the start of a line or after ";", "{"
// or "}", its argument in $2 (quoted or not).
var pidArg = regexp.MustCompile(`(?m)((?:^|[;{}])\s*pid\s+)("[^"]*"|'[^']*'|[^\s;]+)(\s*;)`)

// setPid replaces the argument of every pid directive in text with p.
func setPid(text, p string) string {
	return pidArg.ReplaceAllString(text, "${1}"+quoteConf(p)+"${3}")
}

// quoteConf quotes p for an nginx configuration when it needs it.
func quoteConf(p string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./-]+$`).MatchString(p) {
		return p
	}
	return strconv.Quote(p)
}

// privatePid returns the command line an instance runs with so that it
// writes its pid to shimPidGuest: cl's arguments with a -g or -c appended
// (nginx takes the last of each), and the configuration copy it wrote
// (""), for the configuration text conf read from cl.conf whose pid is set
// where sc.PidIn says. ok is false when the pid directive cannot be moved
// (it is in an included file): the instance then runs with cl's arguments.
func privatePid(cl *cmdline, sc *serverConf, conf string) (args []string, copied string, ok bool, err error) {
	args = append([]string(nil), cl.args...)
	switch sc.PidIn {
	case pidInGlobals:
		return append(args, "-g", setPid(cl.globals, shimPidGuest)), "", true, nil
	case pidInConf:
		copied = filepath.Join(filepath.Dir(cl.conf), "."+filepath.Base(cl.conf)+confCopySuffix)
		if err := os.WriteFile(copied, []byte(setPid(conf, shimPidGuest)), 0o644); err != nil {
			return nil, "", false, fmt.Errorf("writing the configuration with the shim's pid path: %w", err)
		}
		return append(args, "-c", copied), copied, true, nil
	case "":
		g := "pid " + quoteConf(shimPidGuest) + ";"
		if cl.globals != "" {
			g = cl.globals + " " + g
		}
		return append(args, "-g", g), "", true, nil
	}
	return cl.args, "", false, nil
}

// pidPublisher copies an instance's private pid file to the real one.
type pidPublisher struct {
	private, public string
}

// publishEvery is how often the private pid file is looked at.
const publishEvery = 5 * time.Millisecond

// run publishes until ctx ends: whenever the private file holds a pid that
// the public one does not, the public one is replaced by a copy, renamed
// into place so that a reader finds the old content or the new, never
// none. The private file going away (an instance ending) changes nothing.
func (p *pidPublisher) run(ctx context.Context) {
	tick := time.NewTicker(publishEvery)
	defer tick.Stop()
	for {
		p.publish()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// publish does one step of run.
func (p *pidPublisher) publish() {
	data, err := os.ReadFile(p.private)
	if err != nil || len(bytes.TrimSpace(data)) == 0 {
		return
	}
	if old, err := os.ReadFile(p.public); err == nil && bytes.Equal(old, data) {
		return
	}
	tmp := p.public + ".compat-shim." + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return
	}
	if err := os.Rename(tmp, p.public); err != nil {
		os.Remove(tmp)
	}
}

// removeOwnPid removes the pid file if it holds this process's pid, as
// nginx removes its pid file when it exits.
func removeOwnPid(pidFile string) {
	if pid, err := readPid(pidFile); err == nil && pid == os.Getpid() {
		os.Remove(pidFile)
	}
}
