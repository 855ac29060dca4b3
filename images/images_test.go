package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compat-project/compat/runners/testenv"
)

// pathWithout returns a PATH holding every program of /usr/bin and /bin
// but hidden, as on a machine where that package is not installed.
func pathWithout(t *testing.T, hidden ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, bin := range []string{"/usr/local/go/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		entries, err := os.ReadDir(bin)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			skip := false
			for _, h := range hidden {
				skip = skip || name == h
			}
			if skip {
				continue
			}
			// The first directory on the real PATH wins, as it would.
			os.Symlink(filepath.Join(bin, name), filepath.Join(dir, name))
		}
	}
	return dir
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestRecipeNamesMissingTool: every wasm recipe checks its toolchain before
// building, and a missing compiler stops it with the tool's name and the
// package that provides it.
func TestRecipeNamesMissingTool(t *testing.T) {
	testenv.Command(t, "bash", "bash")
	root := repoRoot(t)
	// python.wasm is compiled with clang-19; every recipe checks the shared
	// clang-14 toolchain (OpenSSL is compiled with it). OpenSSL's threads
	// build is compiled with clang-19 (its threads sysroot's recipe, run
	// first, names it).
	for _, c := range []struct{ recipe, script, tool string }{
		{"python", "build-wasm.sh", "clang-14"}, {"python", "build-wasm.sh", "clang-19"},
		{"redis", "build-wasm.sh", "clang-14"}, {"nginx", "build-wasm.sh", "clang-14"},
		{"openssl", "build-wasm.sh", "clang-14"}, {"openssl", "build-wasm-threads.sh", "clang-19"},
	} {
		t.Run(c.recipe+"/"+c.script+"/"+c.tool, func(t *testing.T) {
			cmd := exec.Command("bash", filepath.Join(root, "images", c.recipe, c.script))
			cmd.Env = append(os.Environ(), "PATH="+pathWithout(t, c.tool), "COMPAT_CACHE="+t.TempDir(), "CI=true")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("%s/%s succeeded without %s:\n%s", c.recipe, c.script, c.tool, out)
			}
			want := "'" + c.tool + "' not found; install it with: apt-get install -y " + c.tool
			if !strings.Contains(string(out), want) {
				t.Errorf("%s/%s does not name the missing tool (want %q):\n%s", c.recipe, c.script, want, out)
			}
		})
	}
}

// TestMakeStopsOnFailingRecipe: make runs recipes as $$(recipe | tail -n 1);
// without pipefail their failure would be lost and an empty path passed on.
// With clang-14 missing, "make python-wasm" must fail with the recipe's
// message and never print the success line.
func TestMakeStopsOnFailingRecipe(t *testing.T) {
	testenv.Command(t, "make", "make")
	root := repoRoot(t)
	cache := t.TempDir()
	// A deps stamp newer than its inputs: this test is about the recipe,
	// not about installing packages.
	if err := os.WriteFile(filepath.Join(cache, "deps.stamp"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-C", root, "--no-print-directory", "python-wasm", "COMPAT_CACHE="+cache)
	cmd.Env = append(os.Environ(), "PATH="+pathWithout(t, "clang-14"), "CI=true")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("make python-wasm succeeded without clang-14:\n%s", out)
	}
	if !strings.Contains(string(out), "'clang-14' not found") {
		t.Errorf("make's output does not name the missing tool:\n%s", out)
	}
	if strings.Contains(string(out), "python-wasm: ") {
		t.Errorf("make printed the success line of a failed recipe:\n%s", out)
	}
}

// TestGoTestFailsUnderCIWithoutToolchain: under CI=true a test whose
// toolchain is missing fails, naming it, instead of skipping.
func TestGoTestFailsUnderCIWithoutToolchain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs another go test; skipped with -short")
	}
	gobin := testenv.Command(t, "go", "golang-go")
	root := repoRoot(t)
	run := func(ci string) (string, error) {
		cmd := exec.Command(gobin, "test", "-count=1", "-run", "^TestBuild$", "./vkernel/guests")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "PATH="+pathWithout(t, "clang-14", "wat2wasm"), "COMPAT_CACHE="+t.TempDir(), "CI="+ci)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("true")
	if err == nil || !strings.Contains(out, "--- FAIL") || !strings.Contains(out, "not found (apt-get install") {
		t.Errorf("CI=true go test without clang-14: err %v, want a failure naming the tool:\n%s", err, out)
	}
	out, err = run("")
	if err != nil || !strings.Contains(out, "ok") {
		t.Errorf("go test without clang-14 outside CI: err %v, want a skip:\n%s", err, out)
	}
}
