package nginx

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/compat-project/compat/runners"
)

// nginx-tests runs unprivileged on both targets, as the same user.
//
// Why not root: as root, a native nginx switches its workers to "nobody",
// which cannot read the 0700 temporary directories the harness makes as
// root, so nearly every file fails on the reference for a reason that is
// the harness's, not nginx's; nginx-tests is meant to be run as an
// ordinary user. nginx.wasm is unprivileged too (its geteuid() is not 0).
// And why the same user on both: the harness and the tests decide what to
// run and skip by the user they run as (Perl's $>, what files they can
// read), and on the vkernel the shim's file access is the host process's,
// so a root prove there could read what the reference's nobody cannot.
// Results would differ for reasons that are not the build's.
//
// So prove runs as unprivUser/unprivGroup: in the reference container
// (docker exec runs as root there), and on the host when compat runs as
// root. When compat itself runs unprivileged, the host's prove runs as
// that user, which is as unprivileged as nobody.
const (
	unprivUser  = "nobody"
	unprivGroup = "nogroup"
)

// dropToUnpriv is the command prefix that runs a command as unprivUser.
var dropToUnpriv = []string{"setpriv", "--reuid=" + unprivUser, "--regid=" + unprivGroup, "--clear-groups"}

// asUser returns the prefix that runs prove as nginx-tests' user on the
// session's target (see above); nil for the Test::Nginx harness, whose
// module suites keep running as the targets' own users (root in the
// container, and on the host when compat runs as root).
func (ss *session) asUser() []string {
	if ss.suite.harness != HarnessNginxTests {
		return nil
	}
	if ss.spec.Kind == runners.Reference || os.Geteuid() == 0 {
		return dropToUnpriv
	}
	return nil
}

// unprivileged is what the shim of an unprivileged prove on the host runs
// from: copies, readable by unprivUser, of everything the shim's script
// names, which otherwise lives in places only the user running compat may
// read (the build and the AOT cache in root's home, the run's output
// directory, a 0700 scratch directory).
type unprivileged struct {
	self []string           // the compat executable (copied) and its verb
	spec runners.TargetSpec // Megabinary, PublicKey and Cache copied
	wasm string             // nginx.wasm, copied
}

// shareWithUnpriv copies the shim's files into dir, a directory whose
// parents others may traverse, and opens dir to them: the executable self[0], the megabinary and its public key,
// nginx.wasm (the exec is routed by its hash), and a new AOT cache owned
// by unprivUser (the shared one is root's; this one starts empty, so the
// first start of nginx.wasm in the session compiles it).
func shareWithUnpriv(dir string, self []string, spec runners.TargetSpec, wasm string) (*unprivileged, error) {
	if len(self) == 0 || spec.Megabinary == "" || spec.PublicKey == "" {
		return nil, fmt.Errorf("nginx shim: no command to run it or no megabinary to run (%q, %q)", self, spec.Megabinary)
	}
	u, err := user.Lookup(unprivUser)
	if err != nil {
		return nil, fmt.Errorf("nginx-tests runs as %s: %w", unprivUser, err)
	}
	g, err := user.LookupGroup(unprivGroup)
	if err != nil {
		return nil, fmt.Errorf("nginx-tests runs as %s:%s: %w", unprivUser, unprivGroup, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("nginx-tests: letting %s into %s: %w", unprivUser, dir, err)
	}
	out := &unprivileged{spec: spec}
	copies := []struct {
		from, to *string
		name     string
		mode     os.FileMode
	}{
		{&self[0], new(string), "compat", 0o755},
		{&spec.Megabinary, &out.spec.Megabinary, "compat.vkmb", 0o644},
		{&spec.PublicKey, &out.spec.PublicKey, "run-key.pub", 0o644},
		{&wasm, &out.wasm, "nginx.wasm", 0o644},
	}
	for i, c := range copies {
		to := filepath.Join(dir, c.name)
		if err := copyFile(*c.from, to, c.mode); err != nil {
			return nil, fmt.Errorf("nginx-tests: sharing %s with %s: %w", *c.from, unprivUser, err)
		}
		*c.to = to
		if i == 0 {
			out.self = append([]string{to}, self[1:]...)
		}
	}
	out.spec.Cache = filepath.Join(dir, "cache")
	if err := os.MkdirAll(out.spec.Cache, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chown(out.spec.Cache, uid, gid); err != nil {
		return nil, fmt.Errorf("nginx-tests: an AOT cache for %s: %w", unprivUser, err)
	}
	return out, nil
}

// copyFile copies the file from to the new file to, with mode.
func copyFile(from, to string, mode os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Chmod(to, mode)
}
