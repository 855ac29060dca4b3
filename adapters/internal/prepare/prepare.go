// Package prepare makes the stand-ins the adapters give harnesses that
// start a native program themselves (runtest's src/redis-server,
// Test::Nginx's TEST_NGINX_BINARY): small scripts that run compat's shim
// verb with the environment it needs to open the pipeline's megabinary.
// Sign makes a megabinary signed with a key of its own, for tests that
// run a shim without the pipeline.
package prepare

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compat-project/compat/vkernel/megabinary"
)

// Signed is a megabinary written and signed by Sign.
type Signed struct {
	// Path is the megabinary file.
	Path string
	// PublicKey is the file holding the key it is signed with.
	PublicKey string
	// Digest is the megabinary's digest.
	Digest string
}

// Sign builds a megabinary of entries into dir/name.vkmb (dir must exist)
// and signs it with a key made for it (dir/name-key, dir/name-key.pub).
func Sign(dir, name string, entries []megabinary.SpecEntry) (*Signed, error) {
	spec := megabinary.Spec{Entries: entries}
	f, err := spec.Build()
	if err != nil {
		return nil, fmt.Errorf("building the %s megabinary: %w", name, err)
	}
	key := filepath.Join(dir, name+"-key")
	if _, err := megabinary.GenerateKey(key); err != nil {
		return nil, err
	}
	priv, err := megabinary.ReadPrivateKey(key)
	if err != nil {
		return nil, err
	}
	f.Sign(priv)
	mb := filepath.Join(dir, name+".vkmb")
	if err := f.WriteFile(mb); err != nil {
		return nil, err
	}
	return &Signed{Path: mb, PublicKey: key + ".pub", Digest: f.Digest()}, nil
}

// Self returns the command that runs compat's verb (such as "redis-shim"):
// given, when not empty (a test's own binary), or this executable and verb.
func Self(given []string, verb string) ([]string, error) {
	if len(given) > 0 {
		return given, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the compat executable for %s: %w", verb, err)
	}
	return []string{exe, verb}, nil
}

// WriteScript writes an executable sh script to path that exports env
// (name, value pairs) and execs command with the script's own arguments
// appended. comment, if not empty, becomes the script's second line.
func WriteScript(path, comment string, env [][2]string, command []string) error {
	if len(command) == 0 {
		return fmt.Errorf("script %s: no command", path)
	}
	var sb strings.Builder
	sb.WriteString("#!/bin/sh\n")
	if comment != "" {
		sb.WriteString("# " + comment + "\n")
	}
	for _, kv := range env {
		fmt.Fprintf(&sb, "%s=%s\nexport %s\n", kv[0], Quote(kv[1]), kv[0])
	}
	sb.WriteString("exec")
	for _, a := range command {
		sb.WriteString(" " + Quote(a))
	}
	sb.WriteString(" \"$@\"\n")
	if err := os.WriteFile(path, []byte(sb.String()), 0o755); err != nil {
		return fmt.Errorf("script %s: %w", path, err)
	}
	return nil
}

// Quote quotes s for sh.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
