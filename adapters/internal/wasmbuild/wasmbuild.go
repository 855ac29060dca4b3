// Package wasmbuild finds the WebAssembly builds that the images/ recipes
// leave in the cache: CACHE/NAME-wasm/KEY, where KEY hashes the recipe, a
// build being complete once it holds a .done stamp, described by its
// build-info.json.
package wasmbuild

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Latest returns the newest complete build directory of recipe (such as
// "python-wasm") under the cache root.
func Latest(cache, recipe string) (string, error) {
	stamps, _ := filepath.Glob(filepath.Join(cache, recipe, "*", ".done"))
	if len(stamps) == 0 {
		return "", fmt.Errorf("no complete build under %s (run: make images)", filepath.Join(cache, recipe))
	}
	mtime := func(p string) int64 {
		st, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return st.ModTime().UnixNano()
	}
	sort.Slice(stamps, func(i, j int) bool { return mtime(stamps[i]) > mtime(stamps[j]) })
	return filepath.Dir(stamps[0]), nil
}

// SourceVersion reads the Debian source version a build was made from
// (build-info.json's source.version).
func SourceVersion(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "build-info.json"))
	if err != nil {
		return "", fmt.Errorf("%w (run: make images)", err)
	}
	var info struct {
		Source struct{ Version string } `json:"source"`
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return "", fmt.Errorf("%s: build-info.json: %w", dir, err)
	}
	if info.Source.Version == "" {
		return "", fmt.Errorf("%s: build-info.json names no source version", dir)
	}
	return info.Source.Version, nil
}

// Imports reads the host functions a build's module imports, by module
// ("wasi_snapshot_preview1", "vkernel"), from its build-info.json
// (wasm_imports): a runner can tell from them whether a build has a part
// of the host surface it relies on.
func Imports(dir string) (map[string][]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "build-info.json"))
	if err != nil {
		return nil, fmt.Errorf("%w (run: make images)", err)
	}
	var info struct {
		Imports map[string][]string `json:"wasm_imports"`
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("%s: build-info.json: %w", dir, err)
	}
	if len(info.Imports) == 0 {
		return nil, fmt.Errorf("%s: build-info.json lists no wasm_imports", dir)
	}
	return info.Imports, nil
}
