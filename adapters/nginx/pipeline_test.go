package nginx

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners"
	"github.com/compat-project/compat/runners/docker"
	"github.com/compat-project/compat/runners/pipeline"
)

// TestPipeline runs the suite through compat's pipeline on both targets,
// as "compat run -suite nginx" does: the quick profile, or the one in
// COMPAT_NGINX_PROFILE ("full"), with results in COMPAT_NGINX_OUT if set
// (for "compat baseline update") and the committed baselines.
func TestPipeline(t *testing.T) {
	profile := os.Getenv("COMPAT_NGINX_PROFILE")
	if profile == "" {
		profile = "quick"
	}
	b := suiteFor(t).build
	files, err := Files(b, profile)
	if err != nil {
		t.Fatal(err)
	}
	s := suiteFor(t, files...)
	testNginx(t)
	referenceImage(t, s)
	out := os.Getenv("COMPAT_NGINX_OUT")
	if out == "" {
		out = t.TempDir()
	}
	t.Setenv(envTestShim, "1")
	defer docker.PurgeAll()
	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	outcome, err := pipeline.Run(ctx, pipeline.Config{
		Suites:    []runners.Suite{s},
		Targets:   []string{"vkernel", "reference"},
		Reference: "docker",
		Out:       out,
		Baselines: "../../baselines",
		Cache:     compat.CacheRoot(),
		Log:       &log,
	})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(outcome.Runs) != 2 {
		t.Fatalf("%d runs, want the vkernel's and the reference's", len(outcome.Runs))
	}
	for _, run := range outcome.Runs {
		c := run.Counts()
		if c.Error != 0 || c.Pass == 0 {
			t.Errorf("%s: %+v, want passes and no errors", run.Target, c)
		}
	}
	if n := outcome.Regressions(); n != 0 {
		t.Errorf("%d regressions against the baselines", n)
	}
}
