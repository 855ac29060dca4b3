package wasmsnap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/compat-project/compat/runners/testenv"
	"github.com/compat-project/compat/vkernel/guests"
	"github.com/tetratelabs/wazero"
)

// A module with globals of every number type (mutable and not), data, a
// start function and an initialisation that changes memory (also past the
// first page, which it grows) and globals.
const testWAT = `(module
  (memory (export "memory") 1 8)
  (global $i (mut i32) (i32.const 1))
  (global $l (mut i64) (i64.const 2))
  (global $f (mut f32) (f32.const 3))
  (global $d (mut f64) (f64.const 4))
  (global $k i32 (i32.const 99))
  (data (i32.const 16) "original")
  (func $start (global.set $i (i32.const 1000)))
  (start $start)
  (func (export "init")
    (drop (memory.grow (i32.const 2)))
    (global.set $i (i32.const -5))
    (global.set $l (i64.const -123456789012))
    (global.set $f (f32.const 1.5))
    (global.set $d (f64.const -2.25))
    (i32.store (i32.const 16) (i32.const 0x41424344))
    (i32.store (i32.const 150000) (i32.const 7)))
  (func (export "i") (result i32) (global.get $i))
  (func (export "l") (result i64) (global.get $l))
  (func (export "f") (result f32) (global.get $f))
  (func (export "d") (result f64) (global.get $d))
  (func (export "k") (result i32) (global.get $k)))`

// TestSnapshotRoundTrip: the instrumented module exports its mutable
// globals; the snapshot made from an instance after init starts with that
// instance's globals and memory (size and contents), runs no start
// function and no longer exports init; its code is the original's.
func TestSnapshotRoundTrip(t *testing.T) {
	wasm, err := guests.WAT(testWAT)
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	m, err := Parse(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(m.MutableGlobals()); got != "[0 1 2 3]" {
		t.Fatalf("mutable globals %s, want [0 1 2 3]", got)
	}
	inst, err := rt.InstantiateWithConfig(ctx, m.Instrument(), wazero.NewModuleConfig().WithName("capture"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inst.ExportedFunction("init").Call(ctx); err != nil {
		t.Fatal(err)
	}
	st := State{Globals: map[uint32]uint64{}, DropExports: []string{"init"}}
	mem, _ := inst.Memory().Read(0, inst.Memory().Size())
	st.Memory = bytes.Clone(mem)
	for _, idx := range m.MutableGlobals() {
		g := inst.ExportedGlobal(fmt.Sprint(GlobalExportPrefix, idx))
		if g == nil {
			t.Fatalf("global %d not exported by the instrumented module", idx)
		}
		st.Globals[idx] = g.Get()
	}
	snap, err := m.Snapshot(st)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.InstantiateWithConfig(ctx, snap, wazero.NewModuleConfig().WithName("snap"))
	if err != nil {
		t.Fatal(err)
	}
	call := func(name string) uint64 {
		r, err := s.ExportedFunction(name).Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r[0]
	}
	if got := int32(call("i")); got != -5 {
		t.Errorf("i32 global %d, want -5 (the start function must not run)", got)
	}
	if got := int64(call("l")); got != -123456789012 {
		t.Errorf("i64 global %d", got)
	}
	if got := math.Float32frombits(uint32(call("f"))); got != 1.5 {
		t.Errorf("f32 global %v", got)
	}
	if got := math.Float64frombits(call("d")); got != -2.25 {
		t.Errorf("f64 global %v", got)
	}
	if got := call("k"); got != 99 {
		t.Errorf("immutable global %d", got)
	}
	if s.Memory().Size() != 3*PageSize {
		t.Errorf("memory %d bytes, want 3 pages", s.Memory().Size())
	}
	got, _ := s.Memory().Read(0, s.Memory().Size())
	if !bytes.Equal(got, st.Memory) {
		t.Errorf("memory differs from the captured one")
	}
	if s.ExportedFunction("init") != nil {
		t.Errorf("init is still exported")
	}
	sm, err := Parse(snap)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payloadOf(m, secCode), payloadOf(sm, secCode)) {
		t.Errorf("the code section changed")
	}
	if payloadOf(sm, secStart) != nil {
		t.Errorf("the start section is still there")
	}
}

// TestSplitData: the snapshot's memory image, given to an instance of the
// module stripped of its data segments, is the memory an instance of the
// snapshot starts with; the stripped module has no data and the same
// code.
func TestSplitData(t *testing.T) {
	wasm, err := guests.WAT(testWAT)
	if errors.Is(err, guests.ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(wasm)
	if err != nil {
		t.Fatal(err)
	}
	mem := make([]byte, 3*PageSize)
	copy(mem[16:], "snapshot")
	mem[150000] = 7
	mem[3*PageSize-1] = 0xff
	globals := map[uint32]uint64{}
	for _, idx := range m.MutableGlobals() {
		globals[idx] = 1
	}
	snap, err := m.Snapshot(State{Memory: mem, Globals: globals})
	if err != nil {
		t.Fatal(err)
	}
	sm, err := Parse(snap)
	if err != nil {
		t.Fatal(err)
	}
	image, stripped, err := sm.SplitData()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(image, mem) {
		t.Errorf("image differs from the snapshot's memory")
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	s, err := rt.InstantiateWithConfig(ctx, stripped, wazero.NewModuleConfig().WithName("stripped"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Memory().Read(0, s.Memory().Size())
	if !bytes.Equal(got, make([]byte, 3*PageSize)) {
		t.Errorf("the stripped module's memory is not %d zero bytes", 3*PageSize)
	}
	st, err := Parse(stripped)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payloadOf(sm, secCode), payloadOf(st, secCode)) {
		t.Errorf("the code section changed")
	}
	if _, _, err := m.SplitData(); err != nil {
		t.Errorf("the original module: %v", err)
	}
}

func payloadOf(m *Module, id byte) []byte {
	for _, s := range m.sections {
		if s.id == id {
			return s.payload
		}
	}
	return nil
}

// TestRuns: zero gaps shorter than zeroGap stay inside a segment, longer
// ones split it, and zeros at either end are left out.
func TestRuns(t *testing.T) {
	mem := make([]byte, 1000)
	mem[10], mem[20], mem[20+zeroGap+5], mem[999] = 1, 2, 3, 4
	got := fmt.Sprint(runs(mem))
	want := fmt.Sprint([]run{{10, 21}, {25 + zeroGap, 26 + zeroGap}, {999, 1000}})
	if got != want {
		t.Errorf("runs %s, want %s", got, want)
	}
	if len(runs(make([]byte, 100))) != 0 {
		t.Errorf("an all-zero memory has runs")
	}
}

// TestParseRefuses: what a snapshot cannot be made of is refused by name.
func TestParseRefuses(t *testing.T) {
	for src, want := range map[string]string{
		`(module (import "e" "m" (memory 1)))`:                           "imports its memory",
		`(module (memory 1) (data "x"))`:                                 "passive",
		`(module (memory 1) (global (mut v128) (v128.const i64x2 0 0)))`: "",
	} {
		wasm, err := guests.WAT(src)
		if errors.Is(err, guests.ErrToolMissing) {
			testenv.Missing(t, "%v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(wasm)
		if want != "" {
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
				t.Errorf("%s: err %v, want %q", src, err, want)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Snapshot(State{Memory: make([]byte, PageSize), Globals: map[uint32]uint64{0: 0}}); err == nil {
			t.Errorf("%s: a v128 global was captured", src)
		}
	}
	if _, err := Parse([]byte("\x00asm\x02\x00\x00\x00")); err == nil {
		t.Errorf("version 2 accepted")
	}
}
