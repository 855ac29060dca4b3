package vkernel

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compat-project/compat/vkernel/guests"
)

// TestParseShebang: the #! line by Linux's rules (checked against this
// machine's kernel when written: `#!  /bin/echo   one two  \t` runs echo
// with the one argument "one two").
func TestParseShebang(t *testing.T) {
	long := "#!/" + strings.Repeat("x", 300)
	for _, c := range []struct {
		head   string
		interp string
		arg    string
		hasArg bool
		ok     bool
	}{
		{"#!/bin/sh\necho", "/bin/sh", "", false, true},
		{"#!/bin/sh", "/bin/sh", "", false, true}, // no newline, short file
		{"#!  /bin/echo   one two  \t \nx", "/bin/echo", "one two", true, true},
		{"#!/bin/echo\tab\n", "/bin/echo", "ab", true, true},
		{"#!/usr/bin/env python3 -u\n", "/usr/bin/env", "python3 -u", true, true},
		{"#!/bin/sh\r\n", "/bin/sh\r", "", false, true},
		{"#!/bin/echo\x00junk here\n", "/bin/echo", "", false, true},
		{"#!/bin/echo a\x00b\n", "/bin/echo", "a", true, true},
		{"#!python3\n", "python3", "", false, true},
		{"#!\n", "", "", false, false},
		{"#!   \t\n", "", "", false, false},
		{"#!" + strings.Repeat(" ", 300), "", "", false, false},
		{long[:256], "", "", false, false}, // the name may be longer than what was read
		{"#!/bin/sh " + strings.Repeat("a", 300), "/bin/sh", strings.Repeat("a", 255-10), true, true},
		{"# !/bin/sh\n", "", "", false, false},
		{"\x00asm", "", "", false, false},
	} {
		got, ok := parseShebang([]byte(c.head))
		if ok != c.ok || got.interp != c.interp || got.arg != c.arg || got.hasArg != c.hasArg {
			t.Errorf("parseShebang(%q) = %+v, %v; want interp %q arg %q (%v), %v", c.head, got, ok, c.interp, c.arg, c.hasArg, c.ok)
		}
	}
}

// TestSpawnScript: a guest's spawn of an unlisted #! script runs the
// listed interpreter its line names with [interp, arg, script, argv[1:]],
// nested scripts too, up to Linux's five; the audit log names the script
// and the interpreters. An unlisted interpreter is EACCES with a denial,
// a missing one ENOENT, a script the guest may not execute EACCES, a line
// naming nothing ENOEXEC, a sixth nested script ELOOP.
func TestSpawnScript(t *testing.T) {
	w := newProcWorld(t, guests.Clang14, 8, Options{})
	script := func(name, text string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(w.root, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	script("hello", "#! /posix.wasm  echo \nthe interpreter reads the rest\n", 0o755)
	out, _ := w.run(t, "capture", "/hello", "not-printed")
	if !strings.Contains(out, "captured=[/hello\n]") {
		t.Errorf("output %q: want argv [/posix.wasm, echo, /hello, not-printed], which echoes /hello", out)
	}
	wantFields(t, out, "child", "exited", "code", "0")
	var allowed bool
	for _, r := range auditRecords(t, w.audit.String()) {
		if r.Action == "exec" && r.Decision == "allow" && r.GuestPath == "/hello" && slices.Equal(r.Interpreters, []string{"/posix.wasm"}) &&
			r.Path == filepath.Join(w.root, "posix.wasm") && r.Entry == "posix" {
			allowed = true
		}
	}
	if !allowed {
		t.Errorf("no audit record of /hello run through /posix.wasm; log:\n%s", w.audit.String())
	}

	// Nested: /outer's interpreter is the script /hello, relative to the
	// child's directory.
	script("outer", "#!hello\n", 0o755)
	out, _ = w.run(t, "capture", "/outer", "x")
	if !strings.Contains(out, "captured=[/hello\n]") {
		t.Errorf("nested: output %q: want /hello's interpreter run with [/posix.wasm, echo, /hello, /outer, x]", out)
	}
	var nested bool
	for _, r := range auditRecords(t, w.audit.String()) {
		if r.GuestPath == "/outer" && r.Decision == "allow" && slices.Equal(r.Interpreters, []string{"/hello", "/posix.wasm"}) {
			nested = true
		}
	}
	if !nested {
		t.Errorf("no audit record of /outer through /hello and /posix.wasm; log:\n%s", w.audit.String())
	}

	prev := "/hello"
	for i := 1; i <= 5; i++ {
		name := "chain" + string(rune('0'+i))
		script(name, "#!"+prev+"\n", 0o755)
		prev = "/" + name
	}
	// /chain4 is five scripts deep (chain4..chain1, hello): allowed;
	// /chain5 is six.
	out, _ = w.run(t, "capture", "/chain4")
	wantFields(t, out, "child", "exited", "code", "0")

	script("unlisted-interp", "#!/unlisted.wasm -x\n", 0o755)
	script("missing-interp", "#!/no/such/interpreter\n", 0o755)
	script("not-executable", "#!/posix.wasm echo\n", 0o644)
	script("no-interp", "#!   \n", 0o755)
	for name, errno := range map[string]string{"/unlisted-interp": "2", "/missing-interp": "44", "/not-executable": "2",
		"/no-interp": "45", "/chain5": "32"} {
		out, _ := w.run(t, "deny", name)
		if got := field(out, "spawn_errno"); got != errno {
			t.Errorf("spawn of %s: errno %s, want %s; output %q", name, got, errno, out)
		}
	}
	var denied bool
	for _, r := range auditRecords(t, w.audit.String()) {
		if r.Action == "exec" && r.Decision == "deny" && r.GuestPath == "/unlisted-interp" &&
			slices.Equal(r.Interpreters, []string{"/unlisted.wasm"}) && r.Path == filepath.Join(w.root, "unlisted.wasm") &&
			strings.Contains(r.Reason, "not in the signed manifest") {
			denied = true
		}
	}
	if !denied {
		t.Errorf("no audit denial naming /unlisted-interp and its interpreter /unlisted.wasm; log:\n%s", w.audit.String())
	}
}
