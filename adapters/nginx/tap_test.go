package nginx

import (
	"os"
	"strings"
	"testing"

	"github.com/compat-project/compat"
)

// echo-vkernel.tap is "prove -v t/echo.t" of the echo module against
// nginx.wasm through the shim: 112 tests, the 6 of TEST 21 (proxy_pass)
// failing, the 6 of TEST 27 skipped (no image_filter).
func TestParseTAPProve(t *testing.T) {
	f, err := os.Open("testdata/echo-vkernel.tap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := ParseTAP(f, "nginx", "echo/echo.t", "t/echo.t")
	if err != nil {
		t.Fatal(err)
	}
	var c compat.Counts
	ids := map[string]bool{}
	for _, r := range res {
		c.Add(r)
		if ids[r.Test] {
			t.Errorf("duplicate test id %q", r.Test)
		}
		ids[r.Test] = true
		if r.Unit != "echo/echo.t" || !compat.InUnit(r.Test, r.Unit) {
			t.Errorf("result %q is not in its unit %q", r.Test, r.Unit)
		}
	}
	if c.Pass != 100 || c.Fail != 6 || c.Error != 0 || c.Skip != 6 {
		t.Errorf("counts %+v, want 100 passes, 6 failures, 6 skips", c)
	}
	skip := "echo/echo.t TEST 27: image filter - tests skipped due to the lack of directive image_filter"
	if !ids[skip] || !ids[skip+" #2"] {
		t.Errorf("missing the skip %q and its repeat", skip)
	}
	for _, r := range res {
		if r.Test == skip && r.Message != "skip: the lack of directive image_filter" {
			t.Errorf("skip message %q, want Test::Nginx's reason", r.Message)
		}
	}
	first := "echo/echo.t TEST 1: sanity - status code ok"
	if !ids[first] || !ids[first+" #2"] {
		t.Errorf("missing %q and its repeat (ids: %d)", first, len(ids))
	}
	for _, r := range res {
		if r.Test == "echo/echo.t TEST 21: proxy - status code ok" {
			if r.Status != compat.Fail || r.Message != "got: '500'; expected: '200'" || !strings.Contains(r.Output, "Failed test") {
				t.Errorf("TEST 21: %+v", r)
			}
			return
		}
	}
	t.Error("no result for TEST 21's status code")
}

func TestParseTAPStates(t *testing.T) {
	tap := `1..6
ok 1 - t/a.t TEST 1: one
not ok 2 - t/a.t TEST 2: two
#   Failed test 't/a.t TEST 2: two'
#   at lib/Test/Nginx/Socket.pm line 956.
#     body differs
ok 3 # skip no such module
not ok 4 - t/a.t TEST 4: todo # TODO not yet
ok 5 - t/a.t TEST 1: one
ok
FAILED--Further testing stopped: t/a.t TEST 6: Cannot start nginx
`
	res, err := ParseTAP(strings.NewReader(tap), "nginx", "m/a.t", "t/a.t")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id     string
		status compat.Status
		msg    string
	}{
		{"m/a.t TEST 1: one", compat.Pass, ""},
		{"m/a.t TEST 2: two", compat.Fail, "body differs"},
		{"m/a.t no such module", compat.Skip, "skip: no such module"},
		{"m/a.t TEST 4: todo", compat.Skip, "todo: not yet"},
		{"m/a.t TEST 1: one #2", compat.Pass, ""},
		{"m/a.t", compat.Error, "bailed out: t/a.t TEST 6: Cannot start nginx"},
	}
	if len(res) != len(want) {
		t.Fatalf("got %d results, want %d: %+v", len(res), len(want), res)
	}
	for i, w := range want {
		if r := res[i]; r.Test != w.id || r.Status != w.status || r.Message != w.msg {
			t.Errorf("result %d = {%q %s %q}, want {%q %s %q}", i, r.Test, r.Status, r.Message, w.id, w.status, w.msg)
		}
	}

	res, _ = ParseTAP(strings.NewReader("1..3\nok 1 - x\n"), "nginx", "m/b.t", "t/b.t")
	if last := res[len(res)-1]; last.Test != "m/b.t" || last.Status != compat.Error || last.Message != "planned 3 tests, ran 1" {
		t.Errorf("short plan: %+v", last)
	}
	res, _ = ParseTAP(strings.NewReader("1..0 # SKIP needs a thing\n"), "nginx", "m/c.t", "t/c.t")
	if len(res) != 1 || res[0].Status != compat.Skip || res[0].Message != "needs a thing" {
		t.Errorf("skipped file: %+v", res)
	}
	res, _ = ParseTAP(strings.NewReader("t/abort-parent.t .. skipped: not working at all\nFiles=1, Tests=0\nResult: NOTESTS\n"), "nginx", "echo/abort-parent.t", "t/abort-parent.t")
	if len(res) != 1 || res[0].Test != "echo/abort-parent.t" || res[0].Status != compat.Skip || res[0].Message != "not working at all" {
		t.Errorf("prove's skipped file: %+v", res)
	}
	res, _ = ParseTAP(strings.NewReader("Can't locate Test/Nginx/Socket.pm in @INC\n"), "nginx", "m/d.t", "t/d.t")
	if len(res) != 1 || res[0].Status != compat.Error || res[0].Message != "no TAP output" {
		t.Errorf("no TAP: %+v", res)
	}
}

func TestStableIDs(t *testing.T) {
	tap := `1..5
ok 1 - t/r.t TEST 1: sanity - response_body_like - response is expected (5)
ok 2 - t/r.t TEST 1: sanity - response_body_like - response is expected (repeated req 0, req 0)
not ok 3 - t/r.t TEST 2: x - pattern "[warn]" should not match any line in error.log but matches line "2026/11/26 00:02:10 [warn] 12176#0: y" (req 0)
ok 4 - t/r.t TEST 1: sanity - response_body_like - response is expected (7)
not ok 5 - t/r.t TEST 3: y - pattern "foo" should match a line in error.log (req 1)
`
	res, err := ParseTAP(strings.NewReader(tap), "nginx", "m/r.t", "t/r.t")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"m/r.t TEST 1: sanity - response_body_like - response is expected",
		"m/r.t TEST 1: sanity - response_body_like - response is expected (repeated req 0, req 0)",
		`m/r.t TEST 2: x - pattern "[warn]" does not match a line in error.log (req 0)`,
		"m/r.t TEST 1: sanity - response_body_like - response is expected #2",
		`m/r.t TEST 3: y - pattern "foo" matches a line in error.log (req 1)`,
	}
	for i, w := range want {
		if i >= len(res) || res[i].Test != w {
			t.Errorf("result %d: %+v, want id %q", i, res, w)
		}
	}
}
