package vkernel

import (
	"bytes"
	"fmt"
	"path"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/compat-project/compat/vkernel/internal/hostabi"
)

// #! scripts. A guest's proc_spawn of a file that is not in the signed
// manifest but starts with "#!" runs the interpreter its first line names,
// as a native kernel does (Linux's binfmt_script), provided the interpreter
// is itself listed: it is routed by its own hash like any exec, and the
// script is only data it reads. See ABI.md, "Processes".

// scriptHeadSize is how much of a script the #! line is read from: Linux's
// BINPRM_BUF_SIZE.
const scriptHeadSize = 256

// maxScripts is how many #! scripts one exec may pass through before the
// program: Linux allows five interpreter rewrites and answers ELOOP to a
// sixth.
const maxScripts = 5

// shebang is a parsed #! line.
type shebang struct {
	interp string
	arg    string
	hasArg bool
}

func blank(c byte) bool { return c == ' ' || c == '\t' }

// parseShebang parses the #! line at the start of head (the file's first
// bytes, at most scriptHeadSize) by Linux's rules. ok is false when head
// does not start with "#!" or names no interpreter, which Linux answers with
// ENOEXEC:
//   - the line ends at the first newline; without one in the first 256
//     bytes it ends before the 256th byte, unless the interpreter's name
//     might be cut short there (nothing but its name up to the end), which
//     is an error, as is a line of blanks alone;
//   - blanks (space, tab) around the line are dropped; the interpreter's
//     name runs to the first blank or NUL; after a blank, the rest of the
//     line, blanks inside included, is one optional argument (to a NUL).
//
// A carriage return is not a blank: "#!/bin/sh\r" names "/bin/sh\r".
func parseShebang(head []byte) (shebang, bool) {
	if len(head) < 2 || head[0] != '#' || head[1] != '!' {
		return shebang{}, false
	}
	buf := make([]byte, scriptHeadSize)
	copy(buf, head) // the kernel's buffer: NUL padding past a short file
	var line []byte
	if nl := bytes.IndexByte(buf, '\n'); nl >= 0 {
		line = buf[2:nl]
	} else {
		rest := buf[2 : scriptHeadSize-1]
		start := bytes.IndexFunc(rest, func(r rune) bool { return r != ' ' && r != '\t' })
		if start < 0 {
			return shebang{}, false
		}
		if bytes.IndexFunc(buf[2+start:], func(r rune) bool { return r == ' ' || r == '\t' || r == 0 }) < 0 {
			return shebang{}, false // the name may go on past what was read
		}
		line = rest
	}
	for len(line) > 0 && blank(line[len(line)-1]) {
		line = line[:len(line)-1]
	}
	for len(line) > 0 && blank(line[0]) {
		line = line[1:]
	}
	if len(line) == 0 {
		return shebang{}, false
	}
	end := bytes.IndexFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == 0 })
	if end < 0 {
		return shebang{interp: string(line)}, true
	}
	sb := shebang{interp: string(line[:end])}
	if sb.interp == "" {
		return shebang{}, false
	}
	if line[end] != 0 {
		arg := line[end:]
		for len(arg) > 0 && blank(arg[0]) {
			arg = arg[1:]
		}
		if nul := bytes.IndexByte(arg, 0); nul >= 0 {
			arg = arg[:nul]
		}
		sb.arg, sb.hasArg = string(arg), true
	}
	return sb, true
}

// scriptError is resolveFD's answer, when it may take scripts, for a file
// that is not in the signed manifest and starts with "#!". Nothing about
// it has been audited yet.
type scriptError struct {
	line shebang
	ok   bool // the #! line names an interpreter
	// mayExec is false when the script's mode bits do not let the guest
	// execute it (EACCES, as natively).
	mayExec bool
	hash    string
}

func (e *scriptError) Error() string { return "a #! script" }

// asScript reports whether the open file, which is not listed, is a #!
// script, and parses it.
func asScript(fd int, hash string) (*scriptError, bool) {
	head := make([]byte, scriptHeadSize)
	n, _ := unix.Pread(fd, head, 0)
	head = head[:max(n, 0)]
	if !bytes.HasPrefix(head, []byte("#!")) {
		return nil, false
	}
	sb, ok := parseShebang(head)
	var st unix.Stat_t
	mayExec := unix.Fstat(fd, &st) == nil && hostabi.MayExecute(&st)
	return &scriptError{line: sb, ok: ok, mayExec: mayExec, hash: hash}, true
}

// scriptExec is what a spawn of a #! script runs: the interpreter's guest
// path and the argv Linux would give it.
type scriptExec struct {
	// path is the guest path of the file to run next (the interpreter),
	// absolute.
	path string
	args []string
}

// interpret turns the exec of the script at scriptPath with args into the
// exec of its interpreter: argv is the interpreter as written, its
// argument if any, the script's path, then args without args[0]. A
// relative interpreter is relative to the child's starting directory cwd.
func interpret(se *scriptError, scriptPath string, args []string, cwd string) scriptExec {
	next := []string{se.line.interp}
	if se.line.hasArg {
		next = append(next, se.line.arg)
	}
	next = append(next, scriptPath)
	if len(args) > 1 {
		next = append(next, args[1:]...)
	}
	p := se.line.interp
	if !path.IsAbs(p) {
		p = path.Join(cwd, p)
	}
	return scriptExec{path: path.Clean(p), args: next}
}

// scriptDenial is the audit reason and errno for a script that cannot run.
func scriptDenial(se *scriptError) (string, hostabi.Errno) {
	switch {
	case !se.mayExec:
		return "a #! script without execute permission for the guest", hostabi.EACCES
	case !se.ok:
		return "a #! script whose first line names no interpreter (or one longer than " +
			strconv.Itoa(scriptHeadSize) + " bytes)", hostabi.ENOEXEC
	}
	return "", hostabi.ESUCCESS
}

// tooDeep is the audit reason for a chain of scripts past maxScripts.
func tooDeep() string {
	return fmt.Sprintf("more than %d nested #! scripts (ELOOP, as Linux)", maxScripts)
}
