package megabinary

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// small returns a signed two-entry megabinary whose entries share one module.
func small(t testing.TB) ([]byte, ed25519.PublicKey) {
	mod := []byte("\x00asm\x01\x00\x00\x00 pretend module bytes")
	d := SHA256(mod)
	alias := SHA256([]byte("native binary"))
	f, err := Build([]Entry{
		{Name: "one", Hashes: []string{d}, Module: d, Paths: []string{"/usr/bin/one"}},
		{Name: "two", Hashes: []string{alias}, Module: d, Export: "main2", Args: []string{"-x"}},
	}, map[string][]byte{d: mod})
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	f.Sign(priv)
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), pub
}

func TestRoundTripAndSharedModule(t *testing.T) {
	data, pub := small(t)
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(pub); err != nil {
		t.Fatal(err)
	}
	if len(f.Manifest.Modules) != 1 {
		t.Fatalf("%d modules stored, want 1 shared by both entries", len(f.Manifest.Modules))
	}
	if strings.Count(string(data), "pretend module bytes") != 1 {
		t.Fatal("module bytes stored more than once")
	}
	if e := f.Manifest.Entry("two"); e == nil || e.StartExport() != "main2" || e.Args[0] != "-x" {
		t.Fatalf("entry two: %+v", e)
	}
	var again bytes.Buffer
	f.WriteTo(&again)
	if !bytes.Equal(again.Bytes(), data) {
		t.Fatal("re-encoding changed the bytes")
	}
}

// TestEveryByteChangeRefused flips each byte of a signed megabinary in turn;
// every variant must fail to parse or to verify.
func TestEveryByteChangeRefused(t *testing.T) {
	data, pub := small(t)
	for i := range data {
		for _, mask := range []byte{0x01, 0x80} {
			b := append([]byte(nil), data...)
			b[i] ^= mask
			f, err := Parse(b)
			if err == nil {
				err = f.Verify(pub)
			}
			if err == nil {
				t.Fatalf("byte %d ^ %#x: accepted", i, mask)
			}
		}
	}
}

func TestEveryTruncationRefused(t *testing.T) {
	data, pub := small(t)
	for n := 0; n < len(data); n++ {
		f, err := Parse(data[:n])
		if err == nil {
			err = f.Verify(pub)
		}
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: accepted", n, len(data))
		}
	}
	if _, err := Parse(append(append([]byte(nil), data...), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func TestValidate(t *testing.T) {
	mod := []byte("module")
	d := SHA256(mod)
	cases := map[string][]Entry{
		"duplicate hash": {{Name: "a", Hashes: []string{d}, Module: d}, {Name: "b", Hashes: []string{d}, Module: d}},
		"duplicate name": {{Name: "a", Hashes: []string{d}, Module: d}, {Name: "a", Hashes: []string{SHA256(nil)}, Module: d}},
		"no hashes":      {{Name: "a", Module: d}},
		"bad hash":       {{Name: "a", Hashes: []string{"XYZ"}, Module: d}},
		"relative path":  {{Name: "a", Hashes: []string{d}, Module: d, Paths: []string{"bin/a"}}},
		"bad env":        {{Name: "a", Hashes: []string{d}, Module: d, Env: []string{"NOEQUALS"}}},
		"bad mount":      {{Name: "a", Hashes: []string{d}, Module: d, Resources: Resources{Mounts: []MountRule{{Guest: "data/"}}}}},
	}
	for name, entries := range cases {
		if _, err := Build(entries, map[string][]byte{d: mod}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestKeysRoundTrip(t *testing.T) {
	name := t.TempDir() + "/key"
	pub, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ReadPrivateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	pub2, err := ReadPublicKey(name + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(pub2) || !pub.Equal(priv.Public()) {
		t.Fatal("keys do not match")
	}
	if _, err := ReadPublicKey(name); err == nil {
		t.Fatal("private key read as public")
	}
}

// FuzzParse: no input makes the parser panic, and whatever parses
// re-encodes to the same bytes.
func FuzzParse(f *testing.F) {
	data, _ := small(f)
	f.Add(data)
	f.Add(data[:40])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		mf, err := Parse(b)
		if err != nil {
			return
		}
		var out bytes.Buffer
		mf.WriteTo(&out)
		if !bytes.Equal(out.Bytes(), b) {
			t.Fatalf("parsed input re-encodes differently")
		}
	})
}

func TestSpecBuild(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tool.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	os.WriteFile(filepath.Join(dir, "native"), []byte("\x7fELF"), 0o755)
	spec := `{"entries": [
		{"name": "tool", "wasm": "tool.wasm", "alias_files": ["native"], "paths": ["/usr/bin/tool"]},
		{"name": "tool-again", "wasm": "tool.wasm", "alias_hashes": ["` + SHA256([]byte("x")) + `"]}
	]}`
	os.WriteFile(filepath.Join(dir, "spec.json"), []byte(spec), 0o644)
	s, err := LoadSpec(filepath.Join(dir, "spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Build()
	if err != nil {
		t.Fatal(err)
	}
	routes := f.Manifest.Routes()
	if f.Manifest.Entries[routes[SHA256([]byte("\x7fELF"))]].Name != "tool" ||
		f.Manifest.Entries[routes[SHA256([]byte("x"))]].Name != "tool-again" ||
		len(f.Manifest.Modules) != 1 {
		t.Fatalf("manifest %+v", f.Manifest)
	}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"entries": [{"name": "x", "wasm": "tool.wasm", "typo": 1}]}`), 0o644)
	if _, err := LoadSpec(filepath.Join(dir, "bad.json")); err == nil || !strings.Contains(err.Error(), "typo") {
		t.Fatalf("unknown field: %v", err)
	}
}

// TestSpecTrailingData: a spec holds one JSON object; a second object, a
// stray bracket or any other text after it is an error, not ignored.
func TestSpecTrailingData(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tool.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	good := `{"entries": [{"name": "tool", "wasm": "tool.wasm"}]}`
	for name, text := range map[string]string{
		"second object": good + `{"x":1}`,
		"stray brace":   good + `}`,
		"stray bracket": good + `]`,
		"text":          good + ` trailing`,
		"second spec":   good + "\n" + good,
	} {
		p := filepath.Join(dir, "spec.json")
		os.WriteFile(p, []byte(text), 0o644)
		if _, err := LoadSpec(p); err == nil || !strings.Contains(err.Error(), "after the JSON object") {
			t.Errorf("%s: %v, want an error about data after the object", name, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "spec.json"), []byte(good+"\n\t \n"), 0o644)
	if _, err := LoadSpec(filepath.Join(dir, "spec.json")); err != nil {
		t.Errorf("trailing white space: %v", err)
	}
}

// FuzzDecodeStrict: whatever decodes strictly is exactly one JSON value
// with nothing but white space around it, and re-decodes the same.
func FuzzDecodeStrict(f *testing.F) {
	f.Add([]byte(`{"entries": [{"name": "tool", "wasm": "tool.wasm"}]}`))
	f.Add([]byte(`{"entries": []}{"x":1}`))
	f.Add([]byte(`{"entries": []}}`))
	f.Add([]byte(` {} `))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Spec
		if decodeStrict(b, &s) != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatalf("decoded strictly, but not as a JSON value: %v", err)
		}
		if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) != 0 {
			t.Fatalf("decoded strictly with %q after the value", rest)
		}
	})
}

// twoModules returns a signed megabinary of two entries with a module each.
func twoModules(t testing.TB) ([]byte, ed25519.PublicKey, string, string) {
	a := []byte("\x00asm\x01\x00\x00\x00 module of entry a")
	b := []byte("\x00asm\x01\x00\x00\x00 module of entry b, a little longer")
	da, db := SHA256(a), SHA256(b)
	f, err := Build([]Entry{
		{Name: "a", Hashes: []string{da}, Module: da},
		{Name: "b", Hashes: []string{db}, Module: db},
	}, map[string][]byte{da: a, db: b})
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	f.Sign(priv)
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), pub, da, db
}

// TestReadEntries: the file read for one entry is the file Parse reads,
// less the other entries' modules, which are not read.
func TestReadEntries(t *testing.T) {
	data, pub, da, db := twoModules(t)
	name := filepath.Join(t.TempDir(), "m.vkmb")
	os.WriteFile(name, data, 0o644)
	whole, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadEntries(name, []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(pub); err != nil {
		t.Fatal(err)
	}
	if f.Digest() != whole.Digest() || !bytes.Equal(f.Module(db), whole.Module(db)) || f.Module(da) != nil {
		t.Fatalf("digest %s (want %s), module b %d bytes, module a %d bytes (want none)", f.Digest(), whole.Digest(), len(f.Module(db)), len(f.Module(da)))
	}
	if _, err := ReadEntries(name, []string{"c"}); err == nil || !strings.Contains(err.Error(), `entry "c"`) {
		t.Fatalf("an entry the manifest lacks: %v", err)
	}
}

// TestReadEntriesRefusesChanges: every truncation, a trailing byte, and
// every byte change outside the modules not read fail to read or to
// verify, as with Parse.
func TestReadEntriesRefusesChanges(t *testing.T) {
	data, pub, _, _ := twoModules(t)
	name := filepath.Join(t.TempDir(), "m.vkmb")
	read := func(b []byte) error {
		os.WriteFile(name, b, 0o644)
		f, err := ReadEntries(name, []string{"b"})
		if err == nil {
			err = f.Verify(pub)
		}
		return err
	}
	for n := 0; n < len(data); n++ {
		if read(data[:n]) == nil {
			t.Fatalf("truncated to %d of %d bytes: accepted", n, len(data))
		}
	}
	if read(append(append([]byte(nil), data...), 0)) == nil {
		t.Fatal("trailing byte accepted")
	}
	// Module a is not read: its bytes are the only ones whose change goes
	// unseen (they are never run by a process that reads only b).
	skip := bytes.Index(data, []byte(" module of entry a"))
	skipEnd := skip + len(" module of entry a")
	for i := range data {
		if i >= skip-8 && i < skipEnd {
			continue
		}
		b := append([]byte(nil), data...)
		b[i] ^= 0x01
		if read(b) == nil {
			t.Fatalf("byte %d ^ 1: accepted", i)
		}
	}
}

// TestSnapshotManifest: an entry's snapshot module is stored and read
// back with the entry (ReadEntries reads it too); a snapshot that names
// a module not given, another source, an unknown form or no wazero
// version is refused.
func TestSnapshotManifest(t *testing.T) {
	mod, snap := []byte("\x00asm\x01\x00\x00\x00 module"), []byte("\x00asm\x01\x00\x00\x00 snapshot")
	d, s := SHA256(mod), SHA256(snap)
	good := Snapshot{Module: s, Source: d, Init: "init", Export: "main", Form: "python", Argv0: "/p", Args: []string{"-c", "pass"}, Wazero: "v1.12.0"}
	entry := func(sn Snapshot) []Entry { return []Entry{{Name: "p", Hashes: []string{d}, Module: d, Snapshot: &sn}} }
	f, err := Build(entry(good), map[string][]byte{d: mod, s: snap})
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "s.vkmb")
	if err := f.WriteFile(name); err != nil {
		t.Fatal(err)
	}
	g, err := ReadEntries(name, []string{"p"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.Module(s), snap) || g.Manifest.Entry("p").Snapshot.Argv0 != "/p" || len(g.Manifest.Modules) != 2 {
		t.Errorf("snapshot not read back: %+v", g.Manifest)
	}
	for want, edit := range map[string]func(*Snapshot){
		"was not given":     func(x *Snapshot) { x.Module = SHA256([]byte("other")) },
		"not the entry's":   func(x *Snapshot) { x.Source = s },
		"form":              func(x *Snapshot) { x.Form = "ruby" },
		"no wazero version": func(x *Snapshot) { x.Wazero = "" },
	} {
		bad := good
		edit(&bad)
		if _, err := Build(entry(bad), map[string][]byte{d: mod, s: snap}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v", want, err)
		}
	}
}
