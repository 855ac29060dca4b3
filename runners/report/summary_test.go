package report

import (
	"fmt"
	"strings"
	"testing"

	"github.com/compat-project/compat"
)

func TestSummaryBoundsTables(t *testing.T) {
	var d compat.Diff
	for i := 0; i < maxRows+50; i++ {
		d.Changes = append(d.Changes, compat.Change{Class: compat.NewTest, Test: fmt.Sprintf("test_x.T.test_%03d", i), Got: compat.Pass})
	}
	var b strings.Builder
	if err := WriteSummary(&b, Section{Run: compat.Run{Suite: "python", Target: "vkernel"}, Diff: d}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "| `test_x."); n != maxRows {
		t.Errorf("%d rows, want %d", n, maxRows)
	}
	if !strings.Contains(b.String(), "and 50 more") {
		t.Error("no note of the rows left out")
	}
}
