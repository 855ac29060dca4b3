// Package wasmbuild opens the WebAssembly builds that the images/ recipes
// leave in the cache: CACHE/NAME-wasm/KEY, where KEY hashes the recipe, a
// build being complete once it holds a .done stamp, described by its
// build-info.json. It is the one place that knows a build's layout and the
// reference image of the same version.
package wasmbuild

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Recipe describes one images/ recipe's builds.
type Recipe struct {
	// Name is the recipe's directory under the cache root and its make
	// target, such as "python-wasm".
	Name string
	// Wasm is the module's file name in a build, such as "python.wasm".
	Wasm string
	// Image is the repository of the reference image of the same
	// version, such as "compat/python-reference".
	Image string
	// ImageEnv names the variable that overrides the reference image, as
	// it does for the recipe (build-image.sh), such as
	// "COMPAT_PY_REFERENCE_IMAGE".
	ImageEnv string
}

// The recipes of the three builds.
var (
	Python = Recipe{Name: "python-wasm", Wasm: "python.wasm", Image: "compat/python-reference", ImageEnv: "COMPAT_PY_REFERENCE_IMAGE"}
	Redis  = Recipe{Name: "redis-wasm", Wasm: "redis-server.wasm", Image: "compat/redis-reference", ImageEnv: "COMPAT_REDIS_REFERENCE_IMAGE"}
	Nginx  = Recipe{Name: "nginx-wasm", Wasm: "nginx.wasm", Image: "compat/nginx-reference", ImageEnv: "COMPAT_NGINX_REFERENCE_IMAGE"}
)

// Info is what Go reads of a build's build-info.json.
type Info struct {
	Source struct {
		// Version is the Debian source version the build was made from,
		// such as "3.11.2-6+deb12u8".
		Version string `json:"version"`
	} `json:"source"`
	// ReferenceImage is the reference image of the same version, as the
	// recipe tags it ("compat/python-reference:3.11.2-6_deb12u8").
	ReferenceImage string `json:"reference_image"`
}

// Build is one complete build of a recipe.
type Build struct {
	// Dir is the build's directory.
	Dir string
	// Version is the Debian source version it was built from.
	Version string
	// Info is its build-info.json.
	Info Info
	// Recipe is the recipe that made it.
	Recipe Recipe
}

// Open opens the build of r in dir, reading its build-info.json and
// checking that it holds the module.
func Open(dir string, r Recipe) (*Build, error) {
	data, err := os.ReadFile(filepath.Join(dir, "build-info.json"))
	if err != nil {
		return nil, fmt.Errorf("%s build: %w (build it: make -f images/images.mk %s)", r.Wasm, err, r.Name)
	}
	b := &Build{Dir: dir, Recipe: r}
	if err := json.Unmarshal(data, &b.Info); err != nil {
		return nil, fmt.Errorf("%s build %s: build-info.json: %w", r.Wasm, dir, err)
	}
	if b.Version = b.Info.Source.Version; b.Version == "" {
		return nil, fmt.Errorf("%s build %s: build-info.json names no source version", r.Wasm, dir)
	}
	if _, err := os.Stat(b.Wasm()); err != nil {
		return nil, fmt.Errorf("%s build %s: %w (rebuild it: make -f images/images.mk %s)", r.Wasm, dir, err, r.Name)
	}
	return b, nil
}

// Latest opens the newest complete build of r under the cache root.
func Latest(cache string, r Recipe) (*Build, error) {
	stamps, _ := filepath.Glob(filepath.Join(cache, r.Name, "*", ".done"))
	if len(stamps) == 0 {
		return nil, fmt.Errorf("%s: no complete build under %s (build it: make images)", r.Wasm, filepath.Join(cache, r.Name))
	}
	mtime := func(p string) int64 {
		st, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return st.ModTime().UnixNano()
	}
	sort.Slice(stamps, func(i, j int) bool { return mtime(stamps[i]) > mtime(stamps[j]) })
	return Open(filepath.Dir(stamps[0]), r)
}

// OpenOrLatest opens the build in dir, or the newest under the cache root
// when dir is empty: what a suite's -build flag means.
func OpenOrLatest(dir, cache string, r Recipe) (*Build, error) {
	if dir != "" {
		return Open(dir, r)
	}
	return Latest(cache, r)
}

// Wasm is the build's module.
func (b *Build) Wasm() string { return filepath.Join(b.Dir, b.Recipe.Wasm) }

// Path is a file or directory of the build, elem joined to its directory.
func (b *Build) Path(elem ...string) string {
	return filepath.Join(append([]string{b.Dir}, elem...)...)
}

// ReferenceImage is the Docker image of Debian's native build of the same
// version: the recipe's variable (Recipe.ImageEnv) when set, else the image
// build-info.json records.
func (b *Build) ReferenceImage() string {
	if img := os.Getenv(b.Recipe.ImageEnv); img != "" {
		return img
	}
	if b.Info.ReferenceImage != "" {
		return b.Info.ReferenceImage
	}
	// Builds made before the recipes recorded the image: tag it as
	// build-image.sh does, the version without its epoch and with the
	// characters a Docker tag cannot hold mapped (tr '+~:' '__-').
	v := b.Version
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	return b.Recipe.Image + ":" + strings.NewReplacer("+", "_", "~", "_", ":", "-").Replace(v)
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
