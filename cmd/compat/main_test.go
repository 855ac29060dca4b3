package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	root "github.com/compat-project/compat"

	"github.com/compat-project/compat/runners/testenv"

	"github.com/compat-project/compat/vkernel/guests"
	"github.com/compat-project/compat/vkernel/megabinary"
)

// compat runs the CLI in-process and returns its exit code and output.
func compat(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func buildGuest(t *testing.T, id string) []byte {
	b, err := guests.Ident(id)
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMegabinaryLifecycle: keygen, build, inspect, verify, sign, exec, and
// the exit codes of each failure the README promises.
func TestMegabinaryLifecycle(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COMPAT_CACHE", filepath.Join(dir, "cache"))
	hello := buildGuest(t, "hello from the vkernel")
	os.WriteFile(filepath.Join(dir, "hello.wasm"), hello, 0o755)
	os.WriteFile(filepath.Join(dir, "spec.json"), []byte(`{"entries": [{"name": "hello", "wasm": "hello.wasm"}]}`), 0o644)
	key := filepath.Join(dir, "key")

	if code, _, errOut := compat(t, "keygen", "-out", key); code != 0 {
		t.Fatalf("keygen: %d %s", code, errOut)
	}
	mb := filepath.Join(dir, "hello.vkmb")
	if code, _, errOut := compat(t, "megabinary", "build", "-spec", filepath.Join(dir, "spec.json"), "-out", mb); code != 0 {
		t.Fatalf("build: %d %s", code, errOut)
	}
	// Unsigned: verify passes structurally, exec refuses to load it.
	if code, out, _ := compat(t, "megabinary", "verify", mb); code != 0 || !strings.Contains(out, "unsigned") {
		t.Fatalf("verify unsigned: %d %q", code, out)
	}
	if code, _, errOut := compat(t, "exec", "-megabinary", mb, "-pubkey", key+".pub", filepath.Join(dir, "hello.wasm")); code != exitUsage || !strings.Contains(errOut, "not signed") {
		t.Fatalf("exec of an unsigned megabinary: %d %q", code, errOut)
	}
	if code, _, errOut := compat(t, "megabinary", "sign", "-key", key, mb); code != 0 {
		t.Fatalf("sign: %d %s", code, errOut)
	}
	if code, out, _ := compat(t, "megabinary", "verify", "-pubkey", key+".pub", mb); code != 0 || !strings.Contains(out, "signature verified") {
		t.Fatalf("verify signed: %d %q", code, out)
	}
	code, out, _ := compat(t, "megabinary", "inspect", "-json", mb)
	var inspected struct {
		Digest   string
		Manifest struct{ Entries []struct{ Name string } }
	}
	if code != 0 || json.Unmarshal([]byte(out), &inspected) != nil || inspected.Manifest.Entries[0].Name != "hello" {
		t.Fatalf("inspect -json: %d %q", code, out)
	}

	// Exec: the listed file runs; anything else exits 126 naming path and hash.
	if code, out, errOut := compat(t, "exec", "-megabinary", mb, "-pubkey", key+".pub", filepath.Join(dir, "hello.wasm")); code != 0 || out != "hello from the vkernel\n" {
		t.Fatalf("exec: %d %q %q", code, out, errOut)
	}
	script := filepath.Join(dir, "script.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho pwned\n"), 0o755)
	code, out, errOut := compat(t, "exec", "-megabinary", mb, "-pubkey", key+".pub", script)
	if code != exitDenied || out != "" || !strings.Contains(errOut, script) || !strings.Contains(errOut, "sha256") {
		t.Fatalf("exec of a script: %d %q %q", code, out, errOut)
	}
	audit, _ := os.ReadFile(filepath.Join(dir, "cache", "audit.jsonl"))
	if !strings.Contains(string(audit), `"decision":"deny"`) || !strings.Contains(string(audit), script) {
		t.Fatalf("audit log: %s", audit)
	}

	// Tampering, a wrong key and usage errors exit 2 with a message.
	data, _ := os.ReadFile(mb)
	data[len(data)/2] ^= 1
	bad := filepath.Join(dir, "bad.vkmb")
	os.WriteFile(bad, data, 0o644)
	if code, _, errOut := compat(t, "exec", "-megabinary", bad, "-pubkey", key+".pub", filepath.Join(dir, "hello.wasm")); code != exitUsage || errOut == "" {
		t.Fatalf("tampered megabinary: %d %q", code, errOut)
	}
	compat(t, "keygen", "-out", filepath.Join(dir, "other"))
	if code, _, errOut := compat(t, "megabinary", "verify", "-pubkey", filepath.Join(dir, "other.pub"), mb); code != exitUsage || !strings.Contains(errOut, "not among") {
		t.Fatalf("wrong key: %d %q", code, errOut)
	}
	if code, _, _ := compat(t, "exec"); code != exitUsage {
		t.Fatalf("exec without arguments: %d", code)
	}
	if code, _, _ := compat(t, "no-such-verb"); code != exitUsage {
		t.Fatalf("unknown verb: %d", code)
	}
	if code, out, _ := compat(t, "help"); code != 0 || !strings.Contains(out, "126") {
		t.Fatalf("help: %d", code)
	}
}

// TestSignRefusesUnverifiable: a module importing outside the host surface
// is built (the spec is fine) but sign refuses it.
func TestSignRefusesUnverifiable(t *testing.T) {
	dir := t.TempDir()
	wasm, err := guests.WAT(`(module (import "env" "jit" (func)) (memory (export "memory") 1) (func (export "_start")))`)
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	os.WriteFile(filepath.Join(dir, "bad.wasm"), wasm, 0o644)
	os.WriteFile(filepath.Join(dir, "spec.json"), []byte(`{"entries": [{"name": "bad", "wasm": "bad.wasm"}]}`), 0o644)
	compat(t, "keygen", "-out", filepath.Join(dir, "key"))
	mb := filepath.Join(dir, "bad.vkmb")
	if code, _, errOut := compat(t, "megabinary", "build", "-spec", filepath.Join(dir, "spec.json"), "-out", mb); code != 0 {
		t.Fatal(errOut)
	}
	code, _, errOut := compat(t, "megabinary", "sign", "-key", filepath.Join(dir, "key"), mb)
	if code != exitUsage || !strings.Contains(errOut, "refusing to sign") || !strings.Contains(errOut, "env.jit") {
		t.Fatalf("sign: %d %q", code, errOut)
	}
}

// TestHelpFlag: -h on every verb prints the verb's usage once and exits 0,
// as Go's flag package does by default.
func TestHelpFlag(t *testing.T) {
	for _, verb := range [][]string{
		{"keygen"}, {"megabinary", "build"}, {"megabinary", "verify"}, {"megabinary", "sign"},
		{"megabinary", "inspect"}, {"exec"}, {"bench", "exec"}, {"bench", "python"}, {"run"}, {"baseline", "update"},
	} {
		code, out, errOut := compat(t, append(verb, "-h")...)
		all := out + errOut
		if code != exitOK || strings.Count(all, "usage: compat "+strings.Join(verb, " ")) != 1 {
			t.Errorf("compat %s -h: exit %d, want 0 and the usage once:\n%s", strings.Join(verb, " "), code, all)
		}
	}
	if code, _, errOut := compat(t, "keygen"); code != exitUsage || strings.Count(errOut, "usage:") != 1 {
		t.Errorf("compat keygen without -out: exit %d, want 2 and the usage once:\n%s", code, errOut)
	}
}

// TestBaselineUpdateEverySuite: without -suite, baseline update takes every
// suite the run wrote, not only Python's.
func TestBaselineUpdateEverySuite(t *testing.T) {
	dir := t.TempDir()
	out, base := filepath.Join(dir, "out"), filepath.Join(dir, "baselines")
	os.Mkdir(out, 0o755)
	for _, name := range []string{"python-vkernel", "redis-reference", "nginx-vkernel"} {
		suite, target, _ := strings.Cut(name, "-")
		run := root.Run{Suite: suite, Target: target, Results: []root.Result{
			{Suite: suite, Unit: "u", Test: "u.t1", Status: root.Pass},
			{Suite: suite, Unit: "u", Test: "u.t2", Status: root.Skip, Message: "needs a thing"},
		}}
		data, _ := json.Marshal(run)
		os.WriteFile(filepath.Join(out, name+".json"), data, 0o644)
	}
	// Files that are not runs of a target are left alone.
	os.WriteFile(filepath.Join(out, "bench.json"), []byte(`{}`), 0o644)
	code, stdout, errOut := compat(t, "baseline", "update", "-out", out, "-baselines", base)
	if code != exitOK {
		t.Fatalf("baseline update: exit %d\n%s%s", code, stdout, errOut)
	}
	for _, name := range []string{"python-vkernel", "redis-reference", "nginx-vkernel"} {
		data, err := os.ReadFile(filepath.Join(base, name+".txt"))
		if err != nil || !strings.Contains(string(data), "pass  u.t1") || !strings.Contains(string(data), "skip  u.t2  # needs a thing") {
			t.Errorf("%s: baseline %q, %v", name, data, err)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "bench.txt")); err == nil {
		t.Error("bench.json was taken for a run")
	}
	if code, _, errOut := compat(t, "baseline", "update", "-out", filepath.Join(dir, "empty"), "-baselines", base); code != exitUsage || !strings.Contains(errOut, "no run found") {
		t.Errorf("update from an empty directory: exit %d %q", code, errOut)
	}
}

// TestIntegrityExitCodes: the attacks of issue 10 through the CLI. Compiled
// code swapped between two entries in the AOT cache fails the load (exit
// 2, audit record); a mount that shows the AOT cache to the guest is denied
// (exit 126, audit record); a spec with data after its object does not
// build (exit 2, nothing written).
func TestIntegrityExitCodes(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	t.Setenv("COMPAT_CACHE", cache)
	os.WriteFile(filepath.Join(dir, "a.wasm"), buildGuest(t, "entry a"), 0o755)
	os.WriteFile(filepath.Join(dir, "b.wasm"), buildGuest(t, "entry b"), 0o755)
	spec := `{"entries": [
		{"name": "a", "wasm": "a.wasm", "resources": {"mounts": [{"guest": "/"}]}},
		{"name": "b", "wasm": "b.wasm"}]}`
	os.WriteFile(filepath.Join(dir, "spec.json"), []byte(spec), 0o644)
	key := filepath.Join(dir, "key")
	compat(t, "keygen", "-out", key)
	mb := filepath.Join(dir, "two.vkmb")
	if code, _, errOut := compat(t, "megabinary", "build", "-spec", filepath.Join(dir, "spec.json"), "-out", mb, "-key", key); code != 0 {
		t.Fatalf("build: %d %s", code, errOut)
	}
	exec := func(args ...string) (int, string, string) {
		return compat(t, append([]string{"exec", "-megabinary", mb, "-pubkey", key + ".pub"}, args...)...)
	}
	if code, out, errOut := exec(filepath.Join(dir, "a.wasm")); code != 0 || out != "entry a\n" {
		t.Fatalf("exec a: %d %q %q", code, out, errOut)
	}
	auditLog := func() string { b, _ := os.ReadFile(filepath.Join(cache, "audit.jsonl")); return string(b) }

	code, _, errOut := exec("-mount", "/="+cache, filepath.Join(dir, "a.wasm"))
	if code != exitDenied || !strings.Contains(errOut, "AOT cache") {
		t.Fatalf("mount over the cache: %d %q", code, errOut)
	}
	if !strings.Contains(auditLog(), `"decision":"deny","reason":"mount of `+cache) {
		t.Fatalf("no audit record of the refused mount:\n%s", auditLog())
	}

	files, _ := filepath.Glob(filepath.Join(cache, "aot", "wazero-*", "*", "*.aot"))
	if len(files) != 2 {
		t.Fatalf("AOT cache holds %v, want two entries", files)
	}
	a, _ := os.ReadFile(files[0])
	b, _ := os.ReadFile(files[1])
	os.WriteFile(files[0], b, 0o600)
	os.WriteFile(files[1], a, 0o600)
	code, out, errOut := exec(filepath.Join(dir, "a.wasm"))
	if code != exitUsage || out != "" || !strings.Contains(errOut, "compiled code") || !strings.Contains(errOut, "remove the file") {
		t.Fatalf("swapped AOT entries: %d %q %q", code, out, errOut)
	}
	if !strings.Contains(auditLog(), `"action":"load"`) {
		t.Fatalf("no audit record of the refused load:\n%s", auditLog())
	}

	os.WriteFile(filepath.Join(dir, "trailing.json"), []byte(spec+`{"x":1}`), 0o644)
	out2 := filepath.Join(dir, "trailing.vkmb")
	if code, _, errOut := compat(t, "megabinary", "build", "-spec", filepath.Join(dir, "trailing.json"), "-out", out2); code != exitUsage || !strings.Contains(errOut, "after the JSON object") {
		t.Fatalf("spec with trailing data: %d %q", code, errOut)
	}
	if _, err := os.Stat(out2); err == nil {
		t.Fatal("a megabinary was written from a spec with trailing data")
	}
	if log := auditLog(); !strings.Contains(log, `"action":"build"`) || !strings.Contains(log, `"hash":"`+megabinary.SHA256([]byte(spec+`{"x":1}`))+`"`) || !strings.Contains(log, "trailing.json") {
		t.Fatalf("no audit record of the refused spec naming it and its hash:\n%s", log)
	}
}

// TestBenchPythonUsage: an unknown workload is refused, naming it and the
// workloads there are, before anything runs.
func TestBenchPythonUsage(t *testing.T) {
	t.Setenv("COMPAT_CACHE", t.TempDir())
	code, _, errOut := compat(t, "bench", "python", "-workloads", "arith,nope", "-wasm", "/nonexistent/python.wasm")
	if code != exitUsage || !strings.Contains(errOut, `unknown workload "nope"`) || !strings.Contains(errOut, "arith,calls,dicts") {
		t.Errorf("exit %d, stderr %q; want 2 naming the workload and the list", code, errOut)
	}
	code, _, errOut = compat(t, "bench", "python")
	if code != exitUsage || !strings.Contains(errOut, "no complete build under") {
		t.Errorf("with an empty cache: exit %d, stderr %q; want 2 saying there is no build", code, errOut)
	}
}

// compat bench redis and nginx refuse bad flags with the usage, exit 2,
// before starting anything.
func TestBenchServerUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench"}, {"bench", "redis", "-c", "x"}, {"bench", "redis", "-n", "0"}, {"bench", "redis", "extra"},
		{"bench", "nginx", "-d", "10ms"}, {"bench", "nginx", "-c", "1,2"}, {"bench", "nginx", "-n", "5"},
	} {
		code, _, errOut := compat(t, args...)
		if code != exitUsage || !strings.Contains(errOut, "usage: compat bench") {
			t.Errorf("compat %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
		}
	}
}

// TestRunUnknownModules: a unit name the suite does not have is a usage
// error (exit 2) naming every unknown one, before anything is built or run.
func TestRunUnknownModules(t *testing.T) {
	t.Setenv("COMPAT_CACHE", t.TempDir())
	checkout := t.TempDir()
	os.MkdirAll(filepath.Join(checkout, "lib", "Test"), 0o755)
	os.WriteFile(filepath.Join(checkout, "lib", "Test", "Nginx.pm"), nil, 0o644)
	os.WriteFile(filepath.Join(checkout, "access.t"), nil, 0o644)
	out := filepath.Join(t.TempDir(), "out")
	code, _, errOut := compat(t, "run", "-suite", "nginx", "-suite-dir", checkout, "-modules", "nosuch.t,access.t,other.t", "-out", out)
	if code != exitUsage || !strings.Contains(errOut, `unknown unit(s) "nosuch.t", "other.t"`) || !strings.Contains(errOut, `"access.t"`) {
		t.Errorf("exit %d, stderr %q: want %d naming nosuch.t and other.t, and how units are named", code, errOut, exitUsage)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written: nothing should run", out)
	}
}

// TestMergeUsage: compat merge wants shard directories, and says which
// directory is not one (exit 2).
func TestMergeUsage(t *testing.T) {
	if code, _, errOut := compat(t, "merge"); code != exitUsage || !strings.Contains(errOut, "usage: compat merge") {
		t.Errorf("merge without directories: exit %d %q", code, errOut)
	}
	dir := t.TempDir()
	code, _, errOut := compat(t, "merge", "-out", filepath.Join(dir, "out"), dir)
	if code != exitUsage || !strings.Contains(errOut, dir+": no shard.json") {
		t.Errorf("merge of a directory that is no shard: exit %d %q", code, errOut)
	}
	if code, _, errOut := compat(t, "run", "-shard", "4/3"); code != exitUsage || !strings.Contains(errOut, "-shard 4/3") {
		t.Errorf("run -shard 4/3: exit %d %q", code, errOut)
	}
}
