package vkernel

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/compat-project/compat/vkernel/megabinary"
)

// FuzzExecLookup writes arbitrary bytes to a file and execs it: only the
// exact bytes of a listed guest run; everything else is denied, by hash.
func FuzzExecLookup(f *testing.F) {
	listed := identGuest(f, "fuzz-listed")
	fx := newFixture(f, entry("listed", listed, megabinary.Resources{}))
	k, _ := fx.open(f, Options{})
	f.Add(listed)
	f.Add(listed[:len(listed)-1])
	f.Add([]byte("#!/bin/sh\n"))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte) {
		p := filepath.Join(dir, "candidate")
		if err := os.WriteFile(p, content, 0o755); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		res, err := k.Exec(context.Background(), Request{Path: p, Stdout: &out})
		var denied *DeniedError
		switch {
		case bytes.Equal(content, listed):
			if err != nil || out.String() != "fuzz-listed\n" {
				t.Fatalf("listed bytes: %v %q", err, out.String())
			}
		case !errors.As(err, &denied) || res != nil || out.Len() > 0:
			t.Fatalf("unlisted bytes were not denied: res=%+v err=%v out=%q", res, err, out.String())
		}
	})
}
