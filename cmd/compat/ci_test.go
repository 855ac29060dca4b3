package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	root "github.com/compat-project/compat"
	"github.com/compat-project/compat/adapters/python"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/pipeline"
	"github.com/compat-project/compat/runners/testenv"
	"gopkg.in/yaml.v2"
)

// ciFlags stand in for the recipes' COMPAT_FLAGS: the Python suite's
// reference on this host, five quick modules, so that the recipes' own
// commands run here in seconds.
const ciFlags = "-suite python -target reference -reference local -modules test_bool,test_bisect,test_textwrap,test_operator,test_tuple"

// ciShards is how many shards the local run of the recipes uses.
const ciShards = 3

// ghWorkflow is the part of a GitHub Actions workflow the test reads.
type ghWorkflow struct {
	Env  map[string]string
	Jobs map[string]struct {
		Needs    any
		Env      map[string]string
		Strategy struct {
			Matrix map[string][]any
		}
		Steps []struct {
			Uses string
			Run  string
			With map[string]string
		}
	}
}

// glJob is the part of a GitLab CI job the test reads.
type glJob struct {
	Image     string
	Parallel  int
	Needs     []string
	Script    []string
	Artifacts struct {
		Paths []string
	}
}

// TestCIRecipes parses the GitHub Actions workflow and the GitLab CI job in
// docs/ci, checks their shape (a matrix of shards, a merge job after it),
// and runs their scripts here as the CI would, with 3 shards, each in a
// directory of its own, handing on only what their artifacts keep. The
// merged run must equal the whole run, test for test.
func TestCIRecipes(t *testing.T) {
	testenv.Command(t, "python3.11", "python3.11")
	if _, err := python.New(runners.SuiteConfig{Cache: root.CacheRoot(), Profile: "quick"}); err != nil {
		testenv.Missing(t, "the python suite: %v (make images builds it)", err)
	}
	compatBin := filepath.Dir(testenv.CompatExec(t)[0])
	env := func(vars ...string) []string {
		// RUNNER (GitHub's container around each command) is empty:
		// compat runs here. TMPDIR stays this machine's.
		return append(os.Environ(), append([]string{"PATH=" + compatBin + ":" + os.Getenv("PATH"), "COMPAT_FLAGS=" + ciFlags, "RUNNER=", "TMPDIR=" + os.TempDir()}, vars...)...)
	}
	whole := t.TempDir()
	sh(t, whole, env(), "compat run $COMPAT_FLAGS -quiet -timings timings.json -out out")

	t.Run("github", func(t *testing.T) {
		var wf ghWorkflow
		readYAML(t, "github-actions.yml", &wf)
		shard, merge := wf.Jobs["shard"], wf.Jobs["merge"]
		if n, _ := strconv.Atoi(wf.Env["SHARDS"]); n < 2 || len(shard.Strategy.Matrix["shard"]) != n {
			t.Fatalf("SHARDS %q and the matrix %v disagree", wf.Env["SHARDS"], shard.Strategy.Matrix["shard"])
		}
		if merge.Needs != "shard" || shard.Env["SHARD"] != "${{ matrix.shard }}" || !strings.Contains(wf.Env["COMPAT_FLAGS"], "-profile full") ||
			!strings.Contains(wf.Env["RUNNER"], "compat-runner") {
			t.Fatalf("merge needs %v, SHARD %q, COMPAT_FLAGS %q, RUNNER %q", merge.Needs, shard.Env["SHARD"], wf.Env["COMPAT_FLAGS"], wf.Env["RUNNER"])
		}
		for _, job := range []string{"shard", "merge"} {
			for _, step := range wf.Jobs[job].Steps {
				if strings.Contains(step.Run, "compat ") && !strings.Contains(step.Run, "$RUNNER compat ") {
					t.Errorf("%s: %q runs compat outside the runner image", job, step.Run)
				}
			}
		}
		mergeDir := t.TempDir()
		for i := 1; i <= ciShards; i++ {
			dir := t.TempDir()
			expand := strings.NewReplacer("${{ matrix.shard }}", strconv.Itoa(i)).Replace
			for _, step := range shard.Steps {
				switch {
				case step.Run != "":
					sh(t, dir, env("SHARDS="+strconv.Itoa(ciShards), "SHARD="+strconv.Itoa(i)), step.Run)
				case strings.HasPrefix(step.Uses, "actions/upload-artifact@"):
					// download-artifact puts each artifact in a
					// directory of its name under its path.
					keep(t, dir, strings.Fields(expand(step.With["path"])), filepath.Join(mergeDir, "shards", expand(step.With["name"])), true)
				}
			}
		}
		for _, step := range merge.Steps {
			if step.Run != "" {
				sh(t, mergeDir, env(), step.Run)
			}
		}
		sameTests(t, filepath.Join(whole, "out"), filepath.Join(mergeDir, "out"))
	})

	t.Run("gitlab", func(t *testing.T) {
		var cfg struct {
			Variables map[string]string
			Shard     glJob `yaml:"compat-shard"`
			Merge     glJob `yaml:"compat-merge"`
		}
		readYAML(t, "gitlab-ci.yml", &cfg)
		shard, merge := cfg.Shard, cfg.Merge
		if shard.Parallel < 2 || !reflect.DeepEqual(merge.Needs, []string{"compat-shard"}) || !strings.Contains(cfg.Variables["COMPAT_FLAGS"], "-profile full") ||
			shard.Image != "compat-runner:latest" || merge.Image != shard.Image {
			t.Fatalf("parallel %d, merge needs %v, COMPAT_FLAGS %q", shard.Parallel, merge.Needs, cfg.Variables["COMPAT_FLAGS"])
		}
		mergeDir := t.TempDir()
		for i := 1; i <= ciShards; i++ {
			dir := t.TempDir()
			vars := []string{"CI_NODE_INDEX=" + strconv.Itoa(i), "CI_NODE_TOTAL=" + strconv.Itoa(ciShards)}
			for _, line := range shard.Script {
				sh(t, dir, env(vars...), line)
			}
			// Artifacts come back at their paths in the later job.
			var paths []string
			for _, p := range shard.Artifacts.Paths {
				paths = append(paths, strings.ReplaceAll(p, "$CI_NODE_INDEX", strconv.Itoa(i)))
			}
			keep(t, dir, paths, mergeDir, false)
		}
		for _, line := range merge.Script {
			sh(t, mergeDir, env(), line)
		}
		sameTests(t, filepath.Join(whole, "out"), filepath.Join(mergeDir, "out"))
	})
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "ci", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("docs/ci/%s: %v", name, err)
	}
}

// sh runs a recipe's script in dir as the CI's shell does: stop at the
// first failing command.
func sh(t *testing.T, dir string, env []string, script string) {
	t.Helper()
	cmd := exec.Command("sh", "-e", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in %s: %s: %v\n%s", dir, script, err, out)
	}
}

// keep copies the files of dir that match the artifact globs into to: by
// their base names (flat, as GitHub keeps files under their common
// directory) or at their paths.
func keep(t *testing.T, dir string, globs []string, to string, flat bool) {
	t.Helper()
	n := 0
	for _, g := range globs {
		files, err := filepath.Glob(filepath.Join(dir, g))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			rel, _ := filepath.Rel(dir, f)
			if flat {
				rel = filepath.Base(f)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Dir(filepath.Join(to, rel)), 0o755)
			if err := os.WriteFile(filepath.Join(to, rel), data, 0o644); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatalf("the artifact %v of %s keeps no file", globs, dir)
	}
}

// sameTests compares the runs in two out directories test by test: the
// same files, the same test ids with the same statuses.
func sameTests(t *testing.T, want, got string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(want, "python-*.json"))
	if len(files) == 0 {
		t.Fatalf("no run in %s", want)
	}
	for _, f := range files {
		a, err := pipeline.ReadRun(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := pipeline.ReadRun(filepath.Join(got, filepath.Base(f)))
		if err != nil {
			t.Fatalf("the merge lacks %s: %v", filepath.Base(f), err)
		}
		if x, y := statuses(a), statuses(b); !reflect.DeepEqual(x, y) || len(x) < 100 {
			t.Errorf("%s: the merged run has %d results, the whole run %d, or they differ", filepath.Base(f), len(y), len(x))
		}
		if b.Properties[pipeline.PropShards] != strconv.Itoa(ciShards) || b.Partial() {
			t.Errorf("%s: merged properties %v, incomplete %v", filepath.Base(f), b.Properties, b.Incomplete)
		}
	}
	for _, name := range []string{"summary.md", "report.html"} {
		if _, err := os.Stat(filepath.Join(got, name)); err != nil {
			t.Error(err)
		}
	}
}

func statuses(run root.Run) []string {
	var out []string
	for _, r := range run.Results {
		out = append(out, r.Test+" "+string(r.Status))
	}
	sort.Strings(out)
	return out
}
