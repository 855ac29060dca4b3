package compat

import (
	"os"
	"path/filepath"
)

// EnvCache names the environment variable that sets the cache root.
const EnvCache = "COMPAT_CACHE"

// CacheRoot is the cache root: $COMPAT_CACHE, else $XDG_CACHE_HOME/compat,
// else ~/.cache/compat. It holds the AOT-compiled code, the wasm builds,
// the test guests and the default audit log.
func CacheRoot() string {
	if d := os.Getenv(EnvCache); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "compat")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "compat-cache")
	}
	return filepath.Join(home, ".cache", "compat")
}
