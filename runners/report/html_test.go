package report

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/compat-project/compat"
	"github.com/compat-project/compat/runners/testenv"
)

// samplePage is the summary's sample run, with its reference as a section
// of its own, a partial run of another suite and a history of three runs.
func samplePage() Page {
	runs := sampleRuns()
	partial := compat.Run{Suite: "redis", Target: "vkernel", Duration: 4 * time.Second,
		Results: []compat.Result{{Suite: "redis", Unit: "unit/info", Test: "unit/info: errorstats", Status: compat.Pass}},
		Incomplete: []compat.Incomplete{
			{Unit: "unit/info", Reason: "the run was stopped before the unit finished (interrupt)"},
			{Unit: "unit/type/list", Reason: "not started: the run was stopped (interrupt)"},
		}}
	partialDiff := compat.Diff{Suite: "redis", Target: "vkernel", Changes: []compat.Change{
		{Class: compat.NotRun, Test: "unit/info: latencystats", Want: compat.ExpectPass},
		{Class: compat.KnownFailure, Test: "unit/info: a", Want: compat.ExpectFail, Got: compat.Fail, Reason: "no fork"},
		{Class: compat.KnownFailure, Test: "unit/info: b", Want: compat.ExpectFail, Got: compat.Error, Reason: "no fork"},
		{Class: compat.KnownFailure, Test: "unit/info: c", Want: compat.ExpectFail, Got: compat.Fail, Reason: "no threads"},
	}}
	day := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	return Page{
		Sections: []Section{
			{Run: runs[0], Reference: &runs[1], Diff: sampleDiff()},
			{Run: runs[1], Diff: compat.Diff{Suite: "python", Target: "reference", Matched: 2}},
			{Run: partial, Diff: partialDiff},
		},
		History: []Point{
			{Start: day, Pass: 100, Fail: 2, Skip: 5, Duration: 50 * time.Minute},
			{Start: day.AddDate(0, 0, 1), Pass: 104, Fail: 1, Skip: 5, Regressions: 1, Duration: 52 * time.Minute},
			{Start: day.AddDate(0, 0, 2), Pass: 103, Fail: 1, Skip: 6, Regressions: 2, Incomplete: 2, Duration: 55 * time.Minute},
		},
	}
}

func writePage(t *testing.T) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, samplePage()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, buf.Bytes()
}

// TestHTMLGolden pins the sign-off page.
func TestHTMLGolden(t *testing.T) {
	_, page := writePage(t)
	golden(t, "report.html", page)
}

// TestHTMLSelfContained: the page fetches nothing: no src or href
// attributes, no CSS imports or urls, no scripts. (The SVG namespace is a
// name, not a fetch.)
func TestHTMLSelfContained(t *testing.T) {
	_, page := writePage(t)
	s := strings.ReplaceAll(string(page), `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, bad := range []string{`(?i)\s(src|href|srcset|action)\s*=`, `(?i)@import`, `(?i)url\(`, `(?i)<script`, `(?i)<link`, `(?i)https?://`} {
		if loc := regexp.MustCompile(bad).FindStringIndex(s); loc != nil {
			t.Errorf("page matches %s: %q", bad, s[max(loc[0]-40, 0):min(loc[1]+40, len(s))])
		}
	}
}

// TestHTMLInChromium renders the page in headless Chromium (Debian's
// chromium): the DOM it builds has the verdict, the regressions with their
// output and commands, the charts, the other sections and the identities,
// and a screenshot of it is a real picture.
func TestHTMLInChromium(t *testing.T) {
	chromium := testenv.Command(t, "chromium", "chromium")
	path, _ := writePage(t)
	profile := t.TempDir()
	browse := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=" + profile,
			"--disable-extensions", "--disable-background-networking"}
		cmd := exec.CommandContext(ctx, chromium, append(append(base, args...), "file://"+path)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.Bytes())
		}
		return out
	}
	dom := string(browse("--dump-dom"))
	for _, want := range []string{
		`<p id="verdict" class="bad">Partial run: 2 unit(s) in 1 run(s) did not run to their end`,
		"Regressions (2)",
		"<code>test_os.FileTests.test_blocking</code>",
		"$ compat run -suite python -target vkernel -modules test_os",
		"$ compat run -suite python -target vkernel -modules test_crash",
		"Fatal Python error: Segmentation fault",
		"Time ratio vkernel / reference, highest units",
		"Slowest units on vkernel",
		"Unexpected passes: python on vkernel (1)",
		"Flaky: python on vkernel (1)",
		"Known failures by cause: redis on vkernel",
		"<td>no fork</td><td>2: <code>unit/info: a</code>, <code>unit/info: b</code></td>",
		"Not run to their end: redis on vkernel (2 units)",
		"Trend over the last 3 runs",
		"<code>sha256:abc</code>",
		"<code>sha256:123</code>",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM lacks %q", want)
		}
	}
	if n := strings.Count(dom, "<svg"); n != 3 {
		t.Errorf("%d charts in the DOM, want 3 (ratios, slowest, trend)", n)
	}
	shot := filepath.Join(t.TempDir(), "shot.png")
	browse("--screenshot="+shot, "--window-size=1200,2400", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	colours := map[[3]uint32]bool{}
	ink := 0
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if r>>8 < 200 || g>>8 < 200 || bl>>8 < 200 {
				ink++
			}
		}
	}
	if b.Dx() < 1000 || b.Dy() < 2000 || len(colours) < 20 || ink < 2000 {
		t.Errorf("screenshot %dx%d with %d colours and %d inked samples: not a rendered page", b.Dx(), b.Dy(), len(colours), ink)
	}
	if testing.Verbose() {
		t.Logf("screenshot %s: %dx%d, %d colours, %d inked samples", shot, b.Dx(), b.Dy(), len(colours), ink)
	}
}
