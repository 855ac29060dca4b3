// Package wasmsnap rewrites a WebAssembly module into a snapshot of one of
// its instances: a module whose initial state is the instance's state at
// the time it was captured (Wizer-style). The snapshot's data section holds
// the captured linear memory, its mutable globals start at their captured
// values and its memory's minimum size is the captured size, so that
// instantiating it gives, without running any code, the memory and globals
// the captured instance had. Its code is the original's, byte for byte.
//
// Capturing needs every mutable global readable from outside, which a
// module does not usually allow: Instrument returns a copy of the module
// that exports each of them under a name of its own, to be instantiated and
// run for the capture in the original's place.
//
// Only what the binary format (WebAssembly 2.0) holds of a module is
// understood here; the capture's correctness also rests on the program not
// changing its tables at run time (C and C++ compiled by LLVM for wasm32
// do not), since a table's contents cannot be read from outside.
package wasmsnap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Section ids of the binary format.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// Value types of globals that a capture can set.
const (
	typeI32 = 0x7f
	typeI64 = 0x7e
	typeF32 = 0x7d
	typeF64 = 0x7c
)

// Export kinds used here.
const (
	exportFunc   = 0
	exportGlobal = 3
)

var header = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// GlobalExportPrefix starts the names Instrument exports mutable globals
// under: the prefix and the global's index, "vk.snapshot.global.3".
const GlobalExportPrefix = "vk.snapshot.global."

// section is one section of a module, its payload as found.
type section struct {
	id      byte
	payload []byte
}

// Module is a parsed module: its sections, and what the rewriter needs to
// know of its globals and memory.
type Module struct {
	sections []section
	// importedGlobals counts the globals imported; defined globals are
	// numbered after them.
	importedGlobals int
	// globals are the defined globals, in index order.
	globals []global
	// memory is the defined memory's limits; hasMemory is false when the
	// module defines none.
	memory    limits
	hasMemory bool
	// exports are the export section's entries.
	exports []export
}

type global struct {
	valType byte
	mutable bool
	init    []byte // the constant expression, its end opcode included
}

type limits struct {
	flags    byte
	min, max uint64
}

type export struct {
	name  string
	kind  byte
	index uint32
}

// Parse reads a module's sections and its global, memory and export
// sections. Errors name what is malformed and where.
func Parse(wasm []byte) (*Module, error) {
	if !bytes.HasPrefix(wasm, header) {
		return nil, errors.New("not a WebAssembly 1.0 binary module (bad magic or version)")
	}
	m := &Module{}
	r := &reader{b: wasm, off: len(header)}
	for r.off < len(r.b) {
		start := r.off
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("section %d at offset %d: %w", id, start, err)
		}
		payload, err := r.bytes(int(size))
		if err != nil {
			return nil, fmt.Errorf("section %d at offset %d: size %d runs past the end", id, start, size)
		}
		m.sections = append(m.sections, section{id: id, payload: payload})
		var perr error
		switch id {
		case secImport:
			perr = m.parseImports(payload)
		case secMemory:
			perr = m.parseMemory(payload)
		case secGlobal:
			perr = m.parseGlobals(payload)
		case secExport:
			perr = m.parseExports(payload)
		case secData:
			perr = checkData(payload)
		}
		if perr != nil {
			return nil, fmt.Errorf("section %d at offset %d: %w", id, start, perr)
		}
	}
	return m, nil
}

func (m *Module) parseImports(p []byte) error {
	r := &reader{b: p}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		if _, err := r.name(); err != nil {
			return fmt.Errorf("import %d: %w", i, err)
		}
		if _, err := r.name(); err != nil {
			return fmt.Errorf("import %d: %w", i, err)
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		switch kind {
		case 0: // func: type index
			_, err = r.u32()
		case 1: // table: reftype, limits
			if _, err = r.byte(); err == nil {
				_, err = r.limits()
			}
		case 2: // memory
			return errors.New("the module imports its memory; a snapshot needs a memory of its own")
		case 3: // global: valtype, mut
			_, err = r.bytes(2)
			m.importedGlobals++
		default:
			return fmt.Errorf("import %d: unknown kind %d", i, kind)
		}
		if err != nil {
			return fmt.Errorf("import %d: %w", i, err)
		}
	}
	return r.end()
}

func (m *Module) parseMemory(p []byte) error {
	r := &reader{b: p}
	n, err := r.u32()
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%d memories; a snapshot needs exactly one", n)
	}
	if m.memory, err = r.limits(); err != nil {
		return err
	}
	if m.memory.flags&^1 != 0 {
		return fmt.Errorf("memory flags %#x: shared or 64-bit memories are not supported", m.memory.flags)
	}
	m.hasMemory = true
	return r.end()
}

func (m *Module) parseGlobals(p []byte) error {
	r := &reader{b: p}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		t, err := r.bytes(2)
		if err != nil {
			return fmt.Errorf("global %d: %w", i, err)
		}
		if t[1] > 1 {
			return fmt.Errorf("global %d: mutability %d", i, t[1])
		}
		init, err := r.constExpr()
		if err != nil {
			return fmt.Errorf("global %d: %w", i, err)
		}
		m.globals = append(m.globals, global{valType: t[0], mutable: t[1] == 1, init: init})
	}
	return r.end()
}

func (m *Module) parseExports(p []byte) error {
	r := &reader{b: p}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		name, err := r.name()
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		idx, err := r.u32()
		if err != nil {
			return err
		}
		m.exports = append(m.exports, export{name: name, kind: kind, index: idx})
	}
	return r.end()
}

// checkData refuses passive data segments: code may copy them into memory
// (memory.init) after the capture, and a snapshot does not keep them.
func checkData(p []byte) error {
	r := &reader{b: p}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		kind, err := r.u32()
		if err != nil {
			return err
		}
		switch kind {
		case 0:
		case 2:
			if _, err := r.u32(); err != nil {
				return err
			}
		case 1:
			return fmt.Errorf("data segment %d is passive; modules with passive segments are not supported", i)
		default:
			return fmt.Errorf("data segment %d: unknown kind %d", i, kind)
		}
		if _, err := r.constExpr(); err != nil {
			return fmt.Errorf("data segment %d: %w", i, err)
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		if _, err := r.bytes(int(size)); err != nil {
			return fmt.Errorf("data segment %d: %w", i, err)
		}
	}
	return r.end()
}

// MutableGlobals returns the indices (in the module's global index space)
// of the mutable globals the module defines, in order.
func (m *Module) MutableGlobals() []uint32 {
	var idx []uint32
	for i, g := range m.globals {
		if g.mutable {
			idx = append(idx, uint32(m.importedGlobals+i))
		}
	}
	return idx
}

// HasFuncExport reports whether the module exports a function by name.
func (m *Module) HasFuncExport(name string) bool {
	for _, e := range m.exports {
		if e.name == name && e.kind == exportFunc {
			return true
		}
	}
	return false
}

// Instrument returns the module with each mutable global it defines also
// exported, as GlobalExportPrefix and its index: the module to run for a
// capture, whose globals can then be read. Nothing else changes.
func (m *Module) Instrument() []byte {
	exports := append([]export(nil), m.exports...)
	for _, idx := range m.MutableGlobals() {
		exports = append(exports, export{name: fmt.Sprint(GlobalExportPrefix, idx), kind: exportGlobal, index: idx})
	}
	return m.assemble(func(s section) []section {
		if s.id == secExport {
			return []section{{id: secExport, payload: encodeExports(exports)}}
		}
		return []section{s}
	}, secExport, encodeExports(exports))
}

// State is what a capture read from an instance.
type State struct {
	// Memory is the linear memory's contents; its length, a multiple of
	// the 64 KiB page, is the size the snapshot's memory starts at.
	Memory []byte
	// Globals are the values of the mutable globals by global index, as
	// wazero's api.Global.Get returns them (the bits, zero-extended).
	Globals map[uint32]uint64
	// DropExports are the exports the snapshot leaves out (the
	// initialisation function that made the state).
	DropExports []string
}

// PageSize is the WebAssembly page size.
const PageSize = 65536

// zeroGap is how many zero bytes end a run of memory: shorter gaps of
// zeros stay inside one data segment, so that a mostly full memory is not
// cut into a segment per word (each segment costs a few bytes of header
// and a copy call when instantiated).
const zeroGap = 64

// Snapshot returns the module with the state: its memory's minimum is the
// captured size, its only data segments the captured memory's non-zero
// runs, its mutable globals initialised to their captured values, the
// exports in DropExports and any start function left out.
func (m *Module) Snapshot(st State) ([]byte, error) {
	if !m.hasMemory {
		return nil, errors.New("the module defines no memory")
	}
	if len(st.Memory)%PageSize != 0 {
		return nil, fmt.Errorf("captured memory of %d bytes is not a whole number of pages", len(st.Memory))
	}
	pages := uint64(len(st.Memory) / PageSize)
	if pages < m.memory.min || (m.memory.flags&1 != 0 && pages > m.memory.max) {
		return nil, fmt.Errorf("captured memory of %d pages is outside the module's limits (%d..%d)", pages, m.memory.min, m.memory.max)
	}
	for _, idx := range m.MutableGlobals() {
		if _, ok := st.Globals[idx]; !ok {
			return nil, fmt.Errorf("no captured value for mutable global %d", idx)
		}
	}
	globals := make([]global, len(m.globals))
	for i, g := range m.globals {
		globals[i] = g
		if !g.mutable {
			continue
		}
		init, err := constOf(g.valType, st.Globals[uint32(m.importedGlobals+i)])
		if err != nil {
			return nil, fmt.Errorf("global %d: %w", m.importedGlobals+i, err)
		}
		globals[i].init = init
	}
	drop := map[string]bool{}
	for _, n := range st.DropExports {
		drop[n] = true
	}
	var exports []export
	for _, e := range m.exports {
		if !drop[e.name] {
			exports = append(exports, e)
		}
	}
	mem := m.memory
	mem.min = pages
	segments := encodeData(st.Memory)
	count := len(runs(st.Memory))
	return m.assemble(func(s section) []section {
		switch s.id {
		case secMemory:
			return []section{{id: secMemory, payload: encodeMemory(mem)}}
		case secGlobal:
			return []section{{id: secGlobal, payload: encodeGlobals(globals)}}
		case secExport:
			return []section{{id: secExport, payload: encodeExports(exports)}}
		case secStart:
			return nil
		case secDataCount:
			return []section{{id: secDataCount, payload: appendU32(nil, uint32(count))}}
		case secData:
			return []section{{id: secData, payload: segments}}
		}
		return []section{s}
	}, secData, segments), nil
}

// assemble writes the module's sections, each through edit; when no
// section has id missing, add is inserted as that section where the
// binary format's order puts it.
func (m *Module) assemble(edit func(section) []section, missing byte, add []byte) []byte {
	out := append([]byte(nil), header...)
	present := false
	for _, s := range m.sections {
		if s.id == missing {
			present = true
		}
	}
	inserted := present
	for _, s := range m.sections {
		if !inserted && s.id != secCustom && order(s.id) > order(missing) {
			out = appendSection(out, section{id: missing, payload: add})
			inserted = true
		}
		for _, e := range edit(s) {
			out = appendSection(out, e)
		}
	}
	if !inserted {
		out = appendSection(out, section{id: missing, payload: add})
	}
	return out
}

// order is a section's place in the binary format's order (the data
// count section comes before the code section).
func order(id byte) int {
	switch id {
	case secDataCount:
		return 95
	case secCode:
		return 100
	case secData:
		return 110
	}
	return int(id) * 10
}

func appendSection(out []byte, s section) []byte {
	out = append(out, s.id)
	out = appendU32(out, uint32(len(s.payload)))
	return append(out, s.payload...)
}

func encodeMemory(l limits) []byte {
	p := appendU32(nil, 1)
	p = append(p, l.flags)
	p = appendU32(p, uint32(l.min))
	if l.flags&1 != 0 {
		p = appendU32(p, uint32(l.max))
	}
	return p
}

func encodeGlobals(gs []global) []byte {
	p := appendU32(nil, uint32(len(gs)))
	for _, g := range gs {
		mut := byte(0)
		if g.mutable {
			mut = 1
		}
		p = append(p, g.valType, mut)
		p = append(p, g.init...)
	}
	return p
}

func encodeExports(es []export) []byte {
	p := appendU32(nil, uint32(len(es)))
	for _, e := range es {
		p = appendU32(p, uint32(len(e.name)))
		p = append(p, e.name...)
		p = append(p, e.kind)
		p = appendU32(p, e.index)
	}
	return p
}

// run is a stretch of memory holding data: [start, end).
type run struct{ start, end int }

// runs finds the memory's non-zero runs, joining those less than zeroGap
// zero bytes apart.
func runs(mem []byte) []run {
	var rs []run
	i := 0
	for i < len(mem) {
		for i < len(mem) && mem[i] == 0 {
			i++
		}
		if i == len(mem) {
			break
		}
		start := i
		zeros := 0
		for i < len(mem) && zeros < zeroGap {
			if mem[i] == 0 {
				zeros++
			} else {
				zeros = 0
			}
			i++
		}
		rs = append(rs, run{start, i - zeros})
	}
	return rs
}

// encodeData makes the data section: one active segment for memory 0 per
// non-zero run of the memory.
func encodeData(mem []byte) []byte {
	rs := runs(mem)
	p := appendU32(nil, uint32(len(rs)))
	for _, r := range rs {
		p = append(p, 0)    // active, memory 0
		p = append(p, 0x41) // i32.const
		p = appendS64(p, int64(int32(uint32(r.start))))
		p = append(p, 0x0b)
		p = appendU32(p, uint32(r.end-r.start))
		p = append(p, mem[r.start:r.end]...)
	}
	return p
}

// constOf is the constant expression giving a global of type t the value
// v (bits, as wazero's api.Global.Get returns them).
func constOf(t byte, v uint64) ([]byte, error) {
	switch t {
	case typeI32:
		return append(appendS64([]byte{0x41}, int64(int32(uint32(v)))), 0x0b), nil
	case typeI64:
		return append(appendS64([]byte{0x42}, int64(v)), 0x0b), nil
	case typeF32:
		return append(binary.LittleEndian.AppendUint32([]byte{0x43}, uint32(v)), 0x0b), nil
	case typeF64:
		return append(binary.LittleEndian.AppendUint64([]byte{0x44}, v), 0x0b), nil
	}
	return nil, fmt.Errorf("mutable global of type %#x cannot be captured (v128 and reference globals are not supported)", t)
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// reader reads the binary format.
type reader struct {
	b   []byte
	off int
}

var errShort = errors.New("unexpected end of data")

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errShort
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || r.off+n > len(r.b) {
		return nil, errShort
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b, nil
}

func (r *reader) u32() (uint32, error) {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > math.MaxUint32 {
				return 0, errors.New("u32 out of range")
			}
			return uint32(v), nil
		}
	}
	return 0, errors.New("u32 LEB128 too long")
}

// skipLEB skips a signed or unsigned LEB128 number of at most max bytes.
func (r *reader) skipLEB(max int) error {
	for i := 0; i < max; i++ {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return errors.New("LEB128 too long")
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(int(n))
	return string(b), err
}

func (r *reader) limits() (limits, error) {
	var l limits
	var err error
	if l.flags, err = r.byte(); err != nil {
		return l, err
	}
	min, err := r.u32()
	if err != nil {
		return l, err
	}
	l.min = uint64(min)
	if l.flags&1 != 0 {
		max, err := r.u32()
		if err != nil {
			return l, err
		}
		l.max = uint64(max)
	}
	return l, nil
}

// constExpr reads a constant expression up to and including its end
// opcode, and returns its bytes.
func (r *reader) constExpr() ([]byte, error) {
	start := r.off
	for {
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch op {
		case 0x0b: // end
			return r.b[start:r.off], nil
		case 0x41: // i32.const
			err = r.skipLEB(5)
		case 0x42: // i64.const
			err = r.skipLEB(10)
		case 0x43: // f32.const
			_, err = r.bytes(4)
		case 0x44: // f64.const
			_, err = r.bytes(8)
		case 0x23, 0xd2: // global.get, ref.func
			_, err = r.u32()
		case 0xd0: // ref.null
			_, err = r.byte()
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const add, sub, mul
		case 0xfd: // v128.const
			var sub uint32
			if sub, err = r.u32(); err == nil && sub != 12 {
				err = fmt.Errorf("SIMD opcode %d in a constant expression", sub)
			} else if err == nil {
				_, err = r.bytes(16)
			}
		default:
			return nil, fmt.Errorf("opcode %#x in a constant expression", op)
		}
		if err != nil {
			return nil, err
		}
	}
}

// end checks that the whole payload was read.
func (r *reader) end() error {
	if r.off != len(r.b) {
		return fmt.Errorf("%d bytes left over at the end of the section", len(r.b)-r.off)
	}
	return nil
}

// SplitData returns the memory a module's instance starts with, its
// minimum size with every active data segment copied in, and the module
// without its data segments: an instance of the stripped module whose
// memory is given those bytes (a copy-on-write mapping of them, say) is
// the instance of the module. Only segments at constant offsets
// (i32.const) are understood; a module with others, or with no memory of
// its own, is refused.
func (m *Module) SplitData() (image, stripped []byte, err error) {
	if !m.hasMemory {
		return nil, nil, errors.New("the module defines no memory")
	}
	if m.memory.min*PageSize > 1<<32 {
		return nil, nil, fmt.Errorf("memory of %d pages", m.memory.min)
	}
	image = make([]byte, m.memory.min*PageSize)
	for _, s := range m.sections {
		if s.id != secData {
			continue
		}
		r := &reader{b: s.payload}
		n, err := r.u32()
		if err != nil {
			return nil, nil, err
		}
		for i := uint32(0); i < n; i++ {
			kind, err := r.u32()
			if err != nil {
				return nil, nil, err
			}
			switch kind {
			case 0:
			case 2:
				mem, err := r.u32()
				if err != nil {
					return nil, nil, err
				}
				if mem != 0 {
					return nil, nil, fmt.Errorf("data segment %d is for memory %d", i, mem)
				}
			default:
				return nil, nil, fmt.Errorf("data segment %d is passive (kind %d)", i, kind)
			}
			expr, err := r.constExpr()
			if err != nil {
				return nil, nil, fmt.Errorf("data segment %d: %w", i, err)
			}
			er := &reader{b: expr}
			if op, _ := er.byte(); op != 0x41 {
				return nil, nil, fmt.Errorf("data segment %d: offset is not an i32.const", i)
			}
			off, err := er.s32()
			if err != nil {
				return nil, nil, fmt.Errorf("data segment %d: %w", i, err)
			}
			size, err := r.u32()
			if err != nil {
				return nil, nil, err
			}
			data, err := r.bytes(int(size))
			if err != nil {
				return nil, nil, fmt.Errorf("data segment %d: %w", i, err)
			}
			start := uint64(uint32(off))
			if start+uint64(size) > uint64(len(image)) {
				return nil, nil, fmt.Errorf("data segment %d: %d bytes at %d, past the memory's %d", i, size, start, len(image))
			}
			copy(image[start:], data)
		}
		if err := r.end(); err != nil {
			return nil, nil, err
		}
	}
	stripped = m.assemble(func(s section) []section {
		switch s.id {
		case secData:
			return []section{{id: secData, payload: appendU32(nil, 0)}}
		case secDataCount:
			return []section{{id: secDataCount, payload: appendU32(nil, 0)}}
		}
		return []section{s}
	}, secData, appendU32(nil, 0))
	return image, stripped, nil
}

// s32 reads a signed LEB128 of 32 bits.
func (r *reader) s32() (int32, error) {
	var v int64
	var shift uint
	for i := 0; i < 5; i++ {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= int64(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			if shift < 64 && b&0x40 != 0 {
				v |= -1 << shift
			}
			return int32(v), nil
		}
	}
	return 0, errors.New("signed LEB128 longer than 5 bytes")
}
