// Package vkposix holds the sources of the vkposix C library (README.md
// beside this file: POSIX processes, pipes, signals and file modes for
// vkernel guests),
// for Go code that builds guests with it, such as vkernel/guests. The
// recipes build it with build.sh.
package vkposix

import (
	"embed"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

//go:embed all:include src ldflags
var files embed.FS

// Files returns the library's headers (include/), sources (src/, with the
// link flags of each part in src/*.ldflags) and link flags (ldflags).
func Files() fs.FS { return files }

// LDFlags returns the flags a program that links the library needs: those
// of ldflags, then those of src/*.ldflags (each part of the library keeps
// its own, as build.sh joins them).
func LDFlags() []string {
	names, _ := fs.Glob(files, "src/*.ldflags")
	var flags []string
	for _, name := range append([]string{"ldflags"}, names...) {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err)
		}
		flags = append(flags, strings.Fields(string(b))...)
	}
	return flags
}

// Sources returns the names of the library's C sources, relative to the
// root of Files: those of libvkposix.a, without src/net_signals.c (the
// weak signal hooks of the net part alone, which signal.c defines).
func Sources() []string {
	names, _ := fs.Glob(files, "src/*.c")
	out := names[:0]
	for _, n := range names {
		if n != "src/net_signals.c" {
			out = append(out, n)
		}
	}
	return out
}

// WriteTo copies the headers and sources under dir, as in Files.
func WriteTo(dir string) error {
	return fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
