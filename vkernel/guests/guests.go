// Package guests builds the small WebAssembly programs the vkernel's tests
// and benchmarks run, from the sources in src/, with Debian's wabt
// (wat2wasm) and clang-14 for wasm32-wasi. Nothing is committed as a
// binary: each build is cached by the hash of its source and command line.
package guests

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/compat-project/compat/images/lib/vkposix"
)

//go:embed src
var sources embed.FS

// ErrToolMissing reports a build tool that is not installed; the message
// names the tool and the package to install.
var ErrToolMissing = errors.New("guest build tool missing")

// Source returns the text of a source file in src/.
func Source(name string) ([]byte, error) { return sources.ReadFile("src/" + name) }

// Ident returns the ident guest that prints "<id>\n".
func Ident(id string) ([]byte, error) {
	src, err := Source("ident.wat")
	if err != nil {
		return nil, err
	}
	text := strings.Replace(string(src), "IDENT\\n", id+"\\n", 1)
	text = strings.Replace(text, "LEN", fmt.Sprint(len(id)+1), 1)
	return WAT(text)
}

// WAT assembles WebAssembly text with wat2wasm.
func WAT(text string) ([]byte, error) {
	return cached("wat", text, func(dir, out string) error {
		in := filepath.Join(dir, "in.wat")
		if err := os.WriteFile(in, []byte(text), 0o644); err != nil {
			return err
		}
		return run("wat2wasm", "wabt", in, "-o", out)
	})
}

// WATThreads assembles WebAssembly text that uses the threads proposal
// (shared memory, atomics) with wat2wasm --enable-threads.
func WATThreads(text string) ([]byte, error) {
	return cached("wat-threads", text, func(dir, out string) error {
		in := filepath.Join(dir, "in.wat")
		if err := os.WriteFile(in, []byte(text), 0o644); err != nil {
			return err
		}
		return run("wat2wasm", "wabt", "--enable-threads", in, "-o", out)
	})
}

// C compiles one C source from src/ for wasm32-wasi with clang-14 and
// wasi-libc, exporting __stack_pointer (vkernel.setjmp needs it).
func C(name string) ([]byte, error) {
	src, err := Source(name)
	if err != nil {
		return nil, err
	}
	return cached("c", string(src), func(dir, out string) error {
		sysroot, err := Sysroot(dir)
		if err != nil {
			return err
		}
		in := filepath.Join(dir, name)
		if err := os.WriteFile(in, src, 0o644); err != nil {
			return err
		}
		return run("clang-14", "clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32",
			"--target=wasm32-wasi", "--sysroot="+sysroot, "-O2", "-Wall", "-mmutable-globals",
			"-Wl,--export=__stack_pointer", "-o", out, in)
	})
}

// Compilers the guests build with: clang-14, the default, and clang-19,
// which python.wasm uses.
const (
	Clang14 = "clang-14"
	Clang19 = "clang-19"
)

// CPosix compiles one C source from src/ like C, with the given compiler
// (Clang14 or Clang19), linked with the vkposix library
// (images/lib/vkposix): its include directory first, its sources and its
// link flags.
func CPosix(name, compiler string) ([]byte, error) {
	src, err := Source(name)
	if err != nil {
		return nil, err
	}
	ver := strings.TrimPrefix(compiler, "clang-")
	if ver == compiler {
		return nil, fmt.Errorf("compiler %q: want clang-14 or clang-19", compiler)
	}
	var key strings.Builder
	key.WriteString(compiler + "\x00" + string(src))
	err = fs.WalkDir(vkposix.Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(vkposix.Files(), p)
		key.WriteString("\x00" + p + "\x00" + string(b))
		return err
	})
	if err != nil {
		return nil, err
	}
	return cached("posix", key.String(), func(dir, out string) error {
		sysroot, err := Sysroot(dir)
		if err != nil {
			return err
		}
		lib := filepath.Join(dir, "vkposix")
		if err := vkposix.WriteTo(lib); err != nil {
			return err
		}
		in := filepath.Join(dir, name)
		if err := os.WriteFile(in, src, 0o644); err != nil {
			return err
		}
		args := []string{"--target=wasm32-wasi", "--sysroot=" + sysroot, "-O2", "-Wall", "-mmutable-globals",
			"-I" + filepath.Join(lib, "include"), "-o", out, in}
		for _, s := range vkposix.Sources() {
			args = append(args, filepath.Join(lib, filepath.FromSlash(s)))
		}
		args = append(args, vkposix.LDFlags()...)
		return run(compiler, compiler+" lld-"+ver+" wasi-libc libclang-rt-"+ver+"-dev-wasm32", args...)
	})
}

// ThreadsSysroot finds a wasm32-wasi-threads sysroot (wasi-libc built with
// THREAD_MODEL=posix by images/wasi-libc-threads/build-wasm.sh): the
// directory COMPAT_WASI_THREADS_SYSROOT names, else the newest complete
// build of that recipe in the compat cache. None: an ErrToolMissing error
// naming the recipe.
func ThreadsSysroot() (string, error) {
	if d := os.Getenv("COMPAT_WASI_THREADS_SYSROOT"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "lib", "wasm32-wasi-threads", "libc.a")); err != nil {
			return "", fmt.Errorf("COMPAT_WASI_THREADS_SYSROOT=%s: %w", d, err)
		}
		return d, nil
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	done, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "wasi-libc-threads", "*", ".done"))
	best, bestTime := "", int64(0)
	for _, d := range done {
		if st, err := os.Stat(d); err == nil && st.ModTime().UnixNano() > bestTime {
			best, bestTime = filepath.Join(filepath.Dir(d), "sysroot"), st.ModTime().UnixNano()
		}
	}
	if best == "" {
		return "", fmt.Errorf("%w: no wasm32-wasi-threads sysroot (run images/wasi-libc-threads/build-wasm.sh or set COMPAT_WASI_THREADS_SYSROOT)", ErrToolMissing)
	}
	return best, nil
}

// CThreads compiles one C source from src/ for wasm32-wasi-threads with
// clang-19 -pthread against sysroot (ThreadsSysroot), linked as the
// vkernel's threads ABI wants it: an imported shared memory with a
// maximum of maxPages 64 KiB pages.
func CThreads(name, sysroot string, maxPages int) ([]byte, error) {
	src, err := Source(name)
	if err != nil {
		return nil, err
	}
	// The key: the source, the memory and the libc (its archive and the
	// start file a command links).
	h := sha256.New()
	for _, f := range []string{"libc.a", "crt1-command.o"} {
		b, err := os.ReadFile(filepath.Join(sysroot, "lib", "wasm32-wasi-threads", f))
		if err != nil {
			return nil, err
		}
		h.Write(b)
	}
	key := fmt.Sprintf("%s\x00%d\x00%x", src, maxPages, h.Sum(nil))
	return cached("c-threads", key, func(dir, out string) error {
		in := filepath.Join(dir, name)
		if err := os.WriteFile(in, src, 0o644); err != nil {
			return err
		}
		return run("clang-19", "clang-19 lld-19 libclang-rt-19-dev-wasm32",
			"--target=wasm32-wasi-threads", "-pthread", "--sysroot="+sysroot, "-O2", "-Wall",
			"-Wl,--import-memory,--shared-memory,--max-memory="+fmt.Sprint(maxPages*65536),
			"-o", out, in)
	})
}

// NativeC compiles one C source from src/ for the host with cc, statically
// when the host's libc allows, so that its start-up is comparable.
func NativeC(name string) (string, error) {
	src, err := Source(name)
	if err != nil {
		return "", err
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "native-"+digest("native", string(src)))
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	in := filepath.Join(tmp, name)
	if err := os.WriteFile(in, src, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(tmp, "a.out")
	if err := run("cc", "gcc", "-O2", "-static", "-o", bin, in); err != nil {
		if err := run("cc", "gcc", "-O2", "-o", bin, in); err != nil {
			return "", err
		}
	}
	return out, os.Rename(bin, out)
}

// Sysroot makes a wasm32-wasi sysroot under dir holding only wasi-libc, so
// clang cannot fall back to the host's glibc headers in /usr/include.
func Sysroot(dir string) (string, error) {
	root := filepath.Join(dir, "sysroot")
	for _, sub := range []string{"include", "lib"} {
		src := filepath.Join("/usr", sub, "wasm32-wasi")
		if _, err := os.Stat(src); err != nil {
			return "", fmt.Errorf("%w: %s not found (apt-get install wasi-libc)", ErrToolMissing, src)
		}
		if err := os.MkdirAll(filepath.Join(root, sub), 0o755); err != nil {
			return "", err
		}
		link := filepath.Join(root, sub, "wasm32-wasi")
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(src, link); err != nil {
				return "", err
			}
		}
	}
	return root, nil
}

func cached(kind, text string, build func(dir, out string) error) ([]byte, error) {
	dir, err := cacheDir()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, kind+"-"+digest(kind, text)+".wasm")
	if b, err := os.ReadFile(out); err == nil {
		return b, nil
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	wasm := filepath.Join(tmp, "out.wasm")
	if err := build(tmp, wasm); err != nil {
		return nil, err
	}
	if err := os.Rename(wasm, out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

func run(tool, pkg string, args ...string) error {
	if _, err := exec.LookPath(tool); err != nil {
		return fmt.Errorf("%w: %s not found (apt-get install %s)", ErrToolMissing, tool, pkg)
	}
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return nil
}

// compilerID keys the cache to the toolchain, so an upgrade rebuilds.
const compilerID = "clang-14/wasi-libc-0.0~git20220510/wabt"

func digest(kind, text string) string {
	sum := sha256.Sum256([]byte(compilerID + "\x00" + kind + "\x00" + text))
	return hex.EncodeToString(sum[:16])
}

func cacheDir() (string, error) {
	root := os.Getenv("COMPAT_CACHE")
	if root == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		root = filepath.Join(c, "compat")
	}
	dir := filepath.Join(root, "guests")
	return dir, os.MkdirAll(dir, 0o755)
}
