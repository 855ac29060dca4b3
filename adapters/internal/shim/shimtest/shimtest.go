// Package shimtest holds what the tests of the shims share: they start
// real servers through a shim and need what a harness has at hand.
package shimtest

import (
	"net"
	"os"
	"testing"

	"github.com/compat-project/compat/vkernel"
)

// Main is a shim adapter's TestMain. The test binary doubles as the shim
// and as the vkernel child process of its guests (vkernel.ChildMain):
// the scripts a test prepares run it with the environment variable env
// set to "1", and then Main hands the command line after the program name
// to shim and exits with its status before any test flag is parsed.
// Otherwise it runs the tests.
func Main(m *testing.M, env string, shim func(args []string) int) {
	// The shims' kernels start their guests' children as this binary.
	vkernel.ChildMain()
	if os.Getenv(env) == "1" {
		os.Exit(shim(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// configuration to name before the server that binds it starts (as
// runtest and Test::Nginx pick their ports).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
