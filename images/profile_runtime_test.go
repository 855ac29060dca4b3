package images

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// collatz is the guest of TestProfileRuntimeInTheVkernel: every step is an
// indirect call, to odd or to even, whose targets and counts the IR-level
// instrumentation records (value profiling).
const collatz = `#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) int odd(int x) { return 3 * x + 1; }
__attribute__((noinline)) int even(int x) { return x / 2; }
int (*volatile step[2])(int) = {even, odd};
int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 10;
	long steps = 0;
	for (int i = 1; i <= n; i++)
		for (int x = i; x != 1; steps++)
			x = step[x & 1](x);
	printf("%ld\n", steps);
	return 0;
}
`

// TestProfileRuntimeInTheVkernel builds LLVM's profile runtime for wasm32
// (images/lib/clang-rt-profile, as the python.wasm PGO build does), links
// an instrumented guest with it, runs the guest in the vkernel and reads
// the profile it wrote through WASI with llvm-profdata: the indirect call
// targets and their counts are the guest's. A second run into the same
// merge-pool file (%m) must not merge (WASI maps no files) but say why.
func TestProfileRuntimeInTheVkernel(t *testing.T) {
	testenv.Command(t, "bash", "bash")
	testenv.Command(t, "clang-19", "clang-19")
	testenv.Command(t, "wasm-ld-19", "lld-19")
	profdata := testenv.Command(t, "llvm-profdata-19", "llvm-19")
	if _, err := os.Stat("/usr/lib/wasm32-wasi/libc.a"); err != nil {
		testenv.Missing(t, "wasi-libc is not installed (apt-get install wasi-libc)")
	}
	root := repoRoot(t)
	build := exec.Command("bash", filepath.Join(root, "images", "lib", "clang-rt-profile", "build.sh"), "19")
	var errOut bytes.Buffer
	build.Stderr = &errOut
	out, err := build.Output()
	if err != nil {
		t.Fatalf("clang-rt-profile/build.sh: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	rt := filepath.Join(lines[len(lines)-1], "libclang_rt.profile-wasm32.a")
	if _, err := os.Stat(rt); err != nil {
		t.Fatalf("clang-rt-profile/build.sh printed %q, which has no runtime: %v", lines[len(lines)-1], err)
	}

	dir := t.TempDir()
	sysroot, err := guests.Sysroot(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "collatz.c")
	os.WriteFile(src, []byte(collatz), 0o644)
	wasmFile := filepath.Join(dir, "collatz.wasm")
	cc := exec.Command("clang-19", "--target=wasm32-wasi", "--sysroot="+sysroot, "-O2", "-fprofile-generate",
		src, rt, "-lwasi-emulated-getpid", "-o", wasmFile)
	if b, err := cc.CombinedOutput(); err != nil {
		t.Fatalf("compiling the instrumented guest: %v\n%s", err, b)
	}
	wasm, err := os.ReadFile(wasmFile)
	if err != nil {
		t.Fatal(err)
	}

	digest := megabinary.SHA256(wasm)
	f, err := megabinary.Build([]megabinary.Entry{{Name: "collatz", Hashes: []string{digest}, Module: digest,
		Resources: megabinary.Resources{Mounts: []megabinary.MountRule{{Guest: "/out"}}}}},
		map[string][]byte{digest: wasm})
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "key")
	pub, err := megabinary.GenerateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := megabinary.ReadPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f.Sign(priv)
	mb := filepath.Join(dir, "t.vkmb")
	if err := f.WriteFile(mb); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k, err := vkernel.Open(ctx, mb, vkernel.Options{TrustedKeys: []ed25519.PublicKey{pub}, CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(ctx)
	profiles := filepath.Join(dir, "profiles")
	os.MkdirAll(profiles, 0o755)
	run := func(profile string) (stdout, stderr string) {
		t.Helper()
		var o, e bytes.Buffer
		res, err := k.Exec(ctx, vkernel.Request{Path: wasmFile, Args: []string{"collatz", "30"},
			Env:    []string{"LLVM_PROFILE_FILE=" + profile},
			Mounts: []vkernel.Mount{{Guest: "/out", Host: profiles}}, Stdout: &o, Stderr: &e})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("collatz with LLVM_PROFILE_FILE=%s: %v, exit %v\n%s", profile, err, res, e.String())
		}
		return o.String(), e.String()
	}

	// The counts the guest must have made.
	calls := map[string]int{}
	steps := 0
	for i := 1; i <= 30; i++ {
		for x := i; x != 1; steps++ {
			if x&1 == 1 {
				x, calls["odd"] = 3*x+1, calls["odd"]+1
			} else {
				x, calls["even"] = x/2, calls["even"]+1
			}
		}
	}
	stdout, stderr := run("/out/collatz-%p.profraw")
	if strings.TrimSpace(stdout) != strconv.Itoa(steps) {
		t.Fatalf("collatz printed %q, want %d", stdout, steps)
	}
	if stderr != "" {
		t.Errorf("the profile runtime complained: %s", stderr)
	}
	raw, _ := filepath.Glob(filepath.Join(profiles, "collatz-*.profraw"))
	if len(raw) != 1 || strings.Contains(raw[0], "%p") {
		t.Fatalf("want one profile named by the guest's pid, got %v", raw)
	}
	merged := filepath.Join(dir, "collatz.profdata")
	if b, err := exec.Command(profdata, "merge", "-o", merged, raw[0]).CombinedOutput(); err != nil {
		t.Fatalf("llvm-profdata merge %s: %v\n%s", raw[0], err, b)
	}
	show, err := exec.Command(profdata, "show", "--all-functions", "--ic-targets", merged).CombinedOutput()
	if err != nil {
		t.Fatalf("llvm-profdata show: %v\n%s", err, show)
	}
	for name, want := range calls {
		// "[  0, odd,  123 ] (45.67%)": the call site's target and count.
		m := regexp.MustCompile(`\[\s*\d+,\s*` + name + `,\s*(\d+)\s*\]`).FindSubmatch(show)
		if m == nil || string(m[1]) != strconv.Itoa(want) {
			t.Errorf("indirect calls to %s: want %d in the profile, got %q:\n%s", name, want, m, show)
		}
	}

	// %m: the first process writes the file, the second would map it to
	// merge into it; on WASI it says it cannot and leaves the file alone.
	run("/out/pool-%m.profraw")
	pool, _ := filepath.Glob(filepath.Join(profiles, "pool-*.profraw"))
	if len(pool) != 1 {
		t.Fatalf("want one %%m profile, got %v", pool)
	}
	before, _ := os.ReadFile(pool[0])
	if _, stderr := run("/out/pool-%m.profraw"); !strings.Contains(stderr, "WASI cannot map files") {
		t.Errorf("a second %%m run: want the runtime to say WASI cannot map files, got stderr %q", stderr)
	}
	if after, _ := os.ReadFile(pool[0]); !bytes.Equal(before, after) {
		t.Errorf("a second %%m run changed %s", pool[0])
	}
}
