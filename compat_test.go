package compat

import (
	"reflect"
	"testing"
)

func TestInUnit(t *testing.T) {
	tests := []struct {
		test, unit string
		want       bool
	}{
		{"test_os", "test_os", true},
		{"test_os.FileTests.test_blocking", "test_os", true},
		{"test_os2.X.test_y", "test_os", false},
		{"test_osx", "test_os", false},
		{"test_o", "test_os", false},
		{"unit/type/list: LPUSH basics", "unit/type/list", true},
		{"unit/type/list-3: x", "unit/type/list", false},
		{"anything", "", false},
	}
	for _, tt := range tests {
		if got := InUnit(tt.test, tt.unit); got != tt.want {
			t.Errorf("InUnit(%q, %q) = %v, want %v", tt.test, tt.unit, got, tt.want)
		}
	}
}

func TestFlakyAndCounts(t *testing.T) {
	run := Run{Results: []Result{
		{Test: "a", Status: Pass},
		{Test: "b", Status: Pass, Previous: []Result{{Status: Fail}}},
		{Test: "c", Status: Fail, Previous: []Result{{Status: Fail}}},
		{Test: "d", Status: Error},
		{Test: "e", Status: Skip, Previous: []Result{{Status: Error}}},
	}}
	var flaky []string
	for _, r := range run.Results {
		if r.Flaky() {
			flaky = append(flaky, r.Test)
		}
	}
	if !reflect.DeepEqual(flaky, []string{"b"}) {
		t.Errorf("flaky results = %v, want [b]", flaky)
	}
	want := Counts{Pass: 2, Fail: 1, Error: 1, Skip: 1, Flaky: 1}
	if got := run.Counts(); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
	if got := want.Total(); got != 5 {
		t.Errorf("Total() = %d, want 5", got)
	}
}

func TestDiffSort(t *testing.T) {
	d := Diff{Changes: []Change{
		{Class: KnownFailure, Test: "a"},
		{Class: NewTest, Test: "b"},
		{Class: Regression, Test: "z"},
		{Class: Regression, Test: "c"},
		{Class: Flaky, Test: "d"},
		{Class: UnexpectedPass, Test: "e"},
		{Class: RemovedTest, Test: "f"},
	}}
	d.Sort()
	var got []string
	for _, c := range d.Changes {
		got = append(got, string(c.Class)+":"+c.Test)
	}
	want := []string{"regression:c", "regression:z", "unexpected-pass:e", "flaky:d", "new:b", "removed:f", "known-failure:a"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sorted changes = %v, want %v", got, want)
	}
	if d.OK() || d.Count(Regression) != 2 || len(d.Of(Flaky)) != 1 {
		t.Errorf("OK=%v Count(Regression)=%d Of(Flaky)=%v", d.OK(), d.Count(Regression), d.Of(Flaky))
	}
	d.Changes = d.Changes[2:]
	if !d.OK() {
		t.Error("OK() = false without regressions")
	}
}

func TestStatusValid(t *testing.T) {
	for _, s := range []Status{Pass, Fail, Error, Skip} {
		if !s.Valid() {
			t.Errorf("%q.Valid() = false", s)
		}
	}
	if Status("ok").Valid() || Expectation("error").Valid() {
		t.Error("invalid status or expectation accepted")
	}
}
