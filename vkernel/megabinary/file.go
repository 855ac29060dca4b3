package megabinary

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Version is the megabinary format version this package reads and writes.
const Version = 1

// magic starts every megabinary. The NUL, CR LF and ^Z bytes catch text-mode
// transfers and mistaken concatenation, as PNG's signature does.
var magic = [8]byte{0x00, 'v', 'k', 'm', 'b', '\r', '\n', 0x1a}

// sigMagic starts the signature trailer.
var sigMagic = [4]byte{'S', 'I', 'G', '1'}

const (
	headerSize      = 16
	trailerSize     = 4 + sha256.Size + ed25519.SignatureSize
	maxManifestSize = 16 << 20
	signingDomain   = "compat megabinary signature v1\x00"
)

// File is a parsed megabinary: its manifest, its modules and its signature.
// The modules are checked against the manifest's digests when parsed; the
// signature is checked by Verify.
type File struct {
	// Manifest is the table of contents.
	Manifest Manifest

	header   []byte
	manifest []byte // the exact signed bytes
	modules  map[string][]byte
	keyID    []byte // nil when unsigned
	sig      []byte
}

// ErrUnsigned reports a megabinary that carries no signature.
var ErrUnsigned = errors.New("megabinary is not signed (sign it with: compat megabinary sign --key KEY FILE)")

// ReadFile reads and parses the megabinary at name. See Parse.
func ReadFile(name string) (*File, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("megabinary: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("megabinary %s: %w", name, err)
	}
	return f, nil
}

// Parse decodes a megabinary. It checks the framing, the manifest's
// consistency and every module's bytes against its digest, so a truncated or
// altered file fails here with the check that failed. The signature is not
// checked: call Verify.
func Parse(data []byte) (*File, error) {
	f, off, err := parseHead(data)
	if err != nil {
		return nil, err
	}
	for _, m := range f.Manifest.Modules {
		if int64(len(data)-off) < m.Size {
			return nil, fmt.Errorf("truncated: module %s needs %d bytes, %d remain", short(m.Digest), m.Size, len(data)-off)
		}
		b := data[off : off+int(m.Size)]
		off += int(m.Size)
		if err := checkModule(m, b); err != nil {
			return nil, err
		}
		f.modules[m.Digest] = b
	}
	if err := f.parseTrailer(data[off:]); err != nil {
		return nil, err
	}
	return f, nil
}

// ReadEntries reads the megabinary at name as ReadFile does, except that
// of the modules it reads only those the named entries run, and checks
// them against their digests; the others are not read, and Module returns
// nil for them. The framing is checked from the manifest's sizes and the
// file's length, the trailer's shape as Parse does, and the signature by
// Verify, as for any file. A process that runs one program of a large
// megabinary (a vkernel child process) so reads and hashes only its own
// code. Naming an entry the manifest lacks is an error.
func ReadEntries(name string, entries []string) (*File, error) {
	fail := func(err error) (*File, error) { return nil, fmt.Errorf("megabinary %s: %w", name, err) }
	file, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("megabinary: %w", err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("megabinary: %w", err)
	}
	size := st.Size()
	head := make([]byte, headerSize+4)
	if _, err := file.ReadAt(head, 0); err != nil {
		return fail(fmt.Errorf("truncated: %d bytes is shorter than the %d-byte header", size, len(head)))
	}
	n := int64(binary.LittleEndian.Uint32(head[headerSize:]))
	if n <= maxManifestSize && int64(len(head))+n > size {
		return fail(fmt.Errorf("truncated: manifest needs %d bytes, %d remain", n, size-int64(len(head))))
	}
	if n <= maxManifestSize {
		head = append(head, make([]byte, n)...)
		if _, err := file.ReadAt(head[headerSize+4:], headerSize+4); err != nil {
			return fail(err)
		}
	}
	f, off, err := parseHead(head)
	if err != nil {
		return fail(err)
	}
	want := map[string]bool{}
	for _, e := range entries {
		entry := f.Manifest.Entry(e)
		if entry == nil {
			return fail(fmt.Errorf("entry %q is not in the megabinary's manifest", e))
		}
		want[entry.Module] = true
		if entry.Snapshot != nil {
			want[entry.Snapshot.Module] = true
		}
	}
	pos := int64(off)
	for _, m := range f.Manifest.Modules {
		if size-pos < m.Size {
			return fail(fmt.Errorf("truncated: module %s needs %d bytes, %d remain", short(m.Digest), m.Size, size-pos))
		}
		if want[m.Digest] {
			b := make([]byte, m.Size)
			if _, err := file.ReadAt(b, pos); err != nil {
				return fail(err)
			}
			if err := checkModule(m, b); err != nil {
				return fail(err)
			}
			f.modules[m.Digest] = b
		}
		pos += m.Size
	}
	if size-pos > trailerSize {
		// More than a trailer follows: Parse's error for the whole rest.
		start := make([]byte, 4)
		if _, err := file.ReadAt(start, pos); err != nil {
			return fail(err)
		}
		if bytes.Equal(start, sigMagic[:]) {
			return fail(fmt.Errorf("signature trailer is %d bytes, want %d (truncated or padded)", size-pos, trailerSize))
		}
		return fail(fmt.Errorf("%d bytes of unexpected data after the last module", size-pos))
	}
	rest := make([]byte, size-pos)
	if _, err := file.ReadAt(rest, pos); err != nil {
		return fail(err)
	}
	if err := f.parseTrailer(rest); err != nil {
		return fail(err)
	}
	return f, nil
}

// parseHead decodes the header and the manifest at the start of data and
// returns the file so far and the offset of the first module.
func parseHead(data []byte) (*File, int, error) {
	if len(data) < headerSize+4 {
		return nil, 0, fmt.Errorf("truncated: %d bytes is shorter than the %d-byte header", len(data), headerSize+4)
	}
	if !bytes.Equal(data[:8], magic[:]) {
		return nil, 0, fmt.Errorf("not a megabinary: bad magic %q", data[:8])
	}
	if v := binary.LittleEndian.Uint32(data[8:12]); v != Version {
		return nil, 0, fmt.Errorf("format version %d is not supported (this build reads version %d)", v, Version)
	}
	if flags := binary.LittleEndian.Uint32(data[12:16]); flags != 0 {
		return nil, 0, fmt.Errorf("reserved header flags %#x are set", flags)
	}
	n := binary.LittleEndian.Uint32(data[headerSize:])
	if n > maxManifestSize {
		return nil, 0, fmt.Errorf("manifest length %d exceeds the %d-byte limit", n, maxManifestSize)
	}
	off := headerSize + 4
	if uint64(len(data)-off) < uint64(n) {
		return nil, 0, fmt.Errorf("truncated: manifest needs %d bytes, %d remain", n, len(data)-off)
	}
	f := &File{header: data[:off], manifest: data[off : off+int(n)], modules: map[string][]byte{}}
	off += int(n)
	if err := decodeStrict(f.manifest, &f.Manifest); err != nil {
		return nil, 0, fmt.Errorf("manifest: %w", err)
	}
	if err := f.Manifest.Validate(); err != nil {
		return nil, 0, fmt.Errorf("manifest: %w", err)
	}
	return f, off, nil
}

// checkModule checks a module's bytes against its manifest digest.
func checkModule(m Module, b []byte) error {
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != m.Digest {
		return fmt.Errorf("module %s: bytes do not match the manifest digest (corrupted or tampered)", short(m.Digest))
	}
	return nil
}

// parseTrailer reads what follows the last module: nothing, or the
// signature trailer.
func (f *File) parseTrailer(rest []byte) error {
	switch {
	case len(rest) == 0:
	case len(rest) == trailerSize && bytes.Equal(rest[:4], sigMagic[:]):
		f.keyID = rest[4 : 4+sha256.Size]
		f.sig = rest[4+sha256.Size:]
	case len(rest) >= 4 && bytes.Equal(rest[:4], sigMagic[:]):
		return fmt.Errorf("signature trailer is %d bytes, want %d (truncated or padded)", len(rest), trailerSize)
	default:
		return fmt.Errorf("%d bytes of unexpected data after the last module", len(rest))
	}
	return nil
}

// Module returns the bytes of the stored module with the given digest.
func (f *File) Module(digest string) []byte { return f.modules[digest] }

// Signed reports whether the file carries a signature trailer.
func (f *File) Signed() bool { return f.sig != nil }

// KeyID returns the hex SHA-256 of the public key that signed the file, or ""
// when it is unsigned.
func (f *File) KeyID() string {
	if f.keyID == nil {
		return ""
	}
	return hex.EncodeToString(f.keyID)
}

// Digest identifies the megabinary: the hex SHA-256 of its header and
// manifest, which name every module by digest. Two files with the same Digest
// run the same code.
func (f *File) Digest() string {
	h := sha256.New()
	h.Write(f.header)
	h.Write(f.manifest)
	return hex.EncodeToString(h.Sum(nil))
}

// Verify checks the signature against the trusted public keys. It fails with
// ErrUnsigned, with an untrusted-key error naming the key, or with a
// mismatch error when the manifest or signature bytes were altered.
func (f *File) Verify(trusted ...ed25519.PublicKey) error {
	if f.sig == nil {
		return ErrUnsigned
	}
	for _, k := range trusted {
		if !bytes.Equal(KeyID(k), f.keyID) {
			continue
		}
		if !ed25519.Verify(k, f.signedMessage(), f.sig) {
			return fmt.Errorf("signature by key %s does not match the manifest (corrupted or tampered)", short(f.KeyID()))
		}
		return nil
	}
	if len(trusted) == 0 {
		return fmt.Errorf("no trusted public key was given to check the signature of key %s (pass its .pub file)", short(f.KeyID()))
	}
	return fmt.Errorf("signed by key %s, which is not among the %d trusted key(s)", short(f.KeyID()), len(trusted))
}

// Sign replaces the file's signature with one made by key.
func (f *File) Sign(key ed25519.PrivateKey) {
	pub := key.Public().(ed25519.PublicKey)
	f.keyID = KeyID(pub)
	f.sig = ed25519.Sign(key, f.signedMessage())
}

func (f *File) signedMessage() []byte {
	msg := make([]byte, 0, len(signingDomain)+len(f.header)+len(f.manifest))
	msg = append(msg, signingDomain...)
	msg = append(msg, f.header...)
	return append(msg, f.manifest...)
}

// WriteTo writes the megabinary in its binary format.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	var total int64
	write := func(b []byte) error {
		n, err := w.Write(b)
		total += int64(n)
		return err
	}
	if err := write(f.header); err != nil {
		return total, err
	}
	if err := write(f.manifest); err != nil {
		return total, err
	}
	for _, m := range f.Manifest.Modules {
		if err := write(f.modules[m.Digest]); err != nil {
			return total, err
		}
	}
	if f.sig != nil {
		trailer := append(append(append([]byte{}, sigMagic[:]...), f.keyID...), f.sig...)
		if err := write(trailer); err != nil {
			return total, err
		}
	}
	return total, nil
}

// WriteFile writes the megabinary to name atomically (a temporary file
// renamed into place), so a reader never sees a half-written file.
func (f *File) WriteFile(name string) error {
	tmp, err := os.CreateTemp(dirOf(name), ".megabinary-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := f.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// Build assembles an unsigned megabinary from a manifest's entries and the
// modules they name. Modules are stored once per digest, in the order first
// named; the manifest's Modules list is filled in.
func Build(entries []Entry, modules map[string][]byte) (*File, error) {
	m := Manifest{Format: Version, Entries: entries}
	seen := map[string]bool{}
	f := &File{modules: map[string][]byte{}}
	for _, e := range entries {
		names := []string{e.Module}
		if e.Snapshot != nil {
			names = append(names, e.Snapshot.Module)
		}
		for _, d := range names {
			if seen[d] {
				continue
			}
			b, ok := modules[d]
			if !ok {
				return nil, fmt.Errorf("entry %q names module %s, which was not given", e.Name, short(d))
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d {
				return nil, fmt.Errorf("entry %q: module bytes do not hash to %s", e.Name, short(d))
			}
			seen[d] = true
			m.Modules = append(m.Modules, Module{Digest: d, Size: int64(len(b))})
			f.modules[d] = b
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	js, err := m.canonical()
	if err != nil {
		return nil, err
	}
	header := make([]byte, headerSize+4)
	copy(header, magic[:])
	binary.LittleEndian.PutUint32(header[8:], Version)
	binary.LittleEndian.PutUint32(header[headerSize:], uint32(len(js)))
	// Parse the canonical bytes back so Manifest is exactly what was signed.
	f.header, f.manifest = header, js
	if err := json.Unmarshal(js, &f.Manifest); err != nil {
		return nil, err
	}
	return f, nil
}

// SHA256 returns the lowercase hex SHA-256 of b, the form digests take in a
// manifest.
func SHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

func dirOf(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[:i+1]
		}
	}
	return "."
}
