// Package aotcache keeps wazero's compiled native code on disk so that a
// megabinary is compiled once per host, and makes sure that the code a
// kernel loads is the code compiled from the signed module it claims to be.
//
// wazero's own directory cache trusts its files: a CRC catches bit rot, not
// an attacker, and nothing ties a file to the module it claims to be, so
// whoever can write the directory can swap two modules' code. Here every
// entry is sealed with an HMAC-SHA256 under a host-local key (32 random
// bytes, mode 0600, beside the cache). The MAC covers the megabinary's
// digest, the signed module's digest, the wazero version, wazero's cache
// key and the compiled bytes, so an entry opens only for the module it was
// compiled from; any other file, a changed byte, or an entry moved from
// another module or megabinary fails with an error naming the file. The
// bytes are read into memory, checked, and handed to wazero from memory:
// wazero never reads the file itself, so there is no window between check
// and use.
//
// wazero 1.12 has no public hook for a custom file cache; Install sets the
// unexported field of its in-memory CompilationCache, and fails (so the
// kernel refuses to load) if a wazero upgrade changes that field.
package aotcache

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"golang.org/x/sys/unix"
)

// Key is wazero's file cache key: a SHA-256 of the module's bytes, the
// compiler and the CPU features.
type Key = [sha256.Size]byte

// Binding names what a cache entry must have been compiled from.
type Binding struct {
	// Megabinary is the hex digest of the megabinary being loaded.
	Megabinary string
	// Module is the hex SHA-256 of the signed module being compiled.
	Module string
	// Wazero is the wazero version that compiles and loads the code.
	Wazero string
}

// magic starts every sealed entry; the digit is the format version.
var magic = [8]byte{'V', 'K', 'A', 'O', 'T', '0', '0', '1'}

const (
	headerSize = len(magic) + sha256.Size + sha256.Size // magic, key, MAC
	macDomain  = "compat vkernel aot entry v1\x00"
	// KeySize is the length of a host key.
	KeySize = 32
)

// Seal returns the on-disk form of compiled code: magic, wazero's key, the
// MAC, then the code.
func Seal(hostKey []byte, b Binding, key Key, code []byte) []byte {
	out := make([]byte, 0, headerSize+len(code))
	out = append(out, magic[:]...)
	out = append(out, key[:]...)
	out = append(out, mac(hostKey, b, key, code)...)
	return append(out, code...)
}

// Unseal checks a sealed entry against the binding and wazero's key and
// returns the code. Any mismatch is an error saying which check failed.
func Unseal(hostKey []byte, b Binding, key Key, data []byte) ([]byte, error) {
	if len(data) < headerSize {
		return nil, fmt.Errorf("truncated: %d bytes, the header alone is %d", len(data), headerSize)
	}
	if !bytes.Equal(data[:len(magic)], magic[:]) {
		return nil, fmt.Errorf("not a sealed entry: bad magic %q", data[:len(magic)])
	}
	stored := data[len(magic) : len(magic)+sha256.Size]
	code := data[headerSize:]
	if !bytes.Equal(stored, key[:]) {
		return nil, fmt.Errorf("entry is for wazero key %x, not %x (moved from another module)", stored[:8], key[:8])
	}
	want := mac(hostKey, b, key, code)
	if !hmac.Equal(data[len(magic)+sha256.Size:headerSize], want) {
		return nil, errors.New("host-key MAC does not match: the code was changed, or compiled from another module or megabinary")
	}
	return code, nil
}

func mac(hostKey []byte, b Binding, key Key, code []byte) []byte {
	m := hmac.New(sha256.New, hostKey)
	m.Write([]byte(macDomain))
	for _, s := range []string{b.Megabinary, b.Module, b.Wazero} {
		m.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
		m.Write([]byte(s))
	}
	m.Write(key[:])
	codeSum := sha256.Sum256(code)
	m.Write(codeSum[:])
	return m.Sum(nil)
}

// LoadKey reads the host key at name, creating it (32 random bytes, mode
// 0600) when it does not exist. A key that others can read or write, or
// that another user owns, is refused: whoever reads it can forge entries.
func LoadKey(name string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return nil, fmt.Errorf("AOT host key: %w", err)
	}
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		if err := createKey(name); err != nil {
			return nil, fmt.Errorf("AOT host key %s: %w", name, err)
		}
		fd, err = unix.Open(name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("AOT host key %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("AOT host key %s: %w", name, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("AOT host key %s is not a regular file", name)
	case int(st.Uid) != os.Geteuid():
		return nil, fmt.Errorf("AOT host key %s is owned by uid %d, not by this user (%d); remove it to make a new one", name, st.Uid, os.Geteuid())
	case st.Mode&0o077 != 0:
		return nil, fmt.Errorf("AOT host key %s has mode %#o: others could forge compiled code; run chmod 600 %s, or remove it and the AOT cache", name, st.Mode&0o777, name)
	}
	key, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("AOT host key %s: %w", name, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("AOT host key %s holds %d bytes, want %d; remove it to make a new one", name, len(key), KeySize)
	}
	return key, nil
}

// createKey writes a new key atomically: a racing creator's key wins, and
// neither ever sees a partial file.
func createKey(name string) error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".host-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// link(2) fails if the name exists, unlike rename: the first key stays.
	if err := os.Link(tmp.Name(), name); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// TamperedError reports a cache entry that failed its check. The load that
// met it fails; nothing is recompiled in its place.
type TamperedError struct {
	// Path is the cache file.
	Path string
	// Module is the digest of the module whose code was asked for.
	Module string
	// Hash is the SHA-256 of the file's bytes as read.
	Hash string
	// Reason says which check failed.
	Reason string
}

func (e *TamperedError) Error() string {
	return fmt.Sprintf("AOT cache entry %s (sha256 %s) for module %s: %s", e.Path, e.Hash, e.Module, e.Reason)
}

// Cache is a directory of sealed entries for one megabinary. It implements
// the interface of wazero's internal file cache. Compilation must be
// sequential: Expect names the module that the next Get and Add are for.
type Cache struct {
	dir     string
	hostKey []byte

	mu      sync.Mutex
	binding Binding
	failure *TamperedError
	hits    int
	adds    int
}

// New returns a cache of sealed entries in dir, bound to the megabinary and
// wazero version in b (b.Module is set by Expect).
func New(dir string, hostKey []byte, b Binding) *Cache {
	return &Cache{dir: dir, hostKey: hostKey, binding: b}
}

// Expect names the module the next compilation is of.
func (c *Cache) Expect(module string) {
	c.mu.Lock()
	c.binding.Module = module
	c.mu.Unlock()
}

// Failure returns the first entry that failed its check, or nil.
func (c *Cache) Failure() *TamperedError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failure
}

// Counts returns how many entries were loaded and how many were added.
func (c *Cache) Counts() (hits, adds int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.adds
}

// Path returns the file of the entry with wazero key k.
func (c *Cache) Path(k Key) string { return filepath.Join(c.dir, hex.EncodeToString(k[:])+".aot") }

// Get returns the checked code of the entry, ok=false when there is none.
// An entry that fails its check is an error, which wazero's CompileModule
// returns as is: the load fails rather than compile again.
func (c *Cache) Get(k Key) (io.ReadCloser, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.binding.Module == "" {
		return nil, false, errors.New("aotcache: compilation of an unnamed module")
	}
	name := c.Path(k)
	data, err := readFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	var code []byte
	if err == nil {
		code, err = Unseal(c.hostKey, c.binding, k, data)
	}
	if err != nil {
		f := &TamperedError{Path: name, Module: c.binding.Module, Reason: err.Error()}
		if data != nil {
			f.Hash = hexSum(data)
		}
		if c.failure == nil {
			c.failure = f
		}
		return nil, false, f
	}
	c.hits++
	return io.NopCloser(bytes.NewReader(code)), true, nil
}

// Add seals freshly compiled code and writes it atomically.
func (c *Cache) Add(k Key, content io.Reader) error {
	code, err := io.ReadAll(content)
	if err != nil {
		return err
	}
	c.mu.Lock()
	b := c.binding
	c.mu.Unlock()
	if b.Module == "" {
		return errors.New("aotcache: compilation of an unnamed module")
	}
	tmp, err := os.CreateTemp(c.dir, ".entry-*")
	if err != nil {
		return fmt.Errorf("AOT cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(Seal(c.hostKey, b, k, code)); err != nil {
		tmp.Close()
		return fmt.Errorf("AOT cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("AOT cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.Path(k)); err != nil {
		return fmt.Errorf("AOT cache: %w", err)
	}
	c.mu.Lock()
	c.adds++
	c.mu.Unlock()
	return nil
}

// Delete removes an entry. wazero calls it for an entry written by another
// wazero version; with the version in the MAC such an entry never opens,
// so this is not reached, but the interface needs it.
func (c *Cache) Delete(k Key) error {
	err := os.Remove(c.Path(k))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// readFile reads a regular file without following a final symbolic link,
// so an entry cannot be pointed at a file elsewhere.
func readFile(name string) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == unix.ELOOP {
		return nil, errors.New("is a symbolic link, not the sealed file")
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	// Sized to the file, so that tens of MiB of code are read in place,
	// not copied again as a buffer grows; a file that grows meanwhile is
	// still read to its end. The buffer is made, not grown (Buffer.Grow
	// clears what it adds, a pass over tens of MiB; memory the allocator
	// takes fresh from the kernel is zero already).
	buf := bytes.NewBuffer(make([]byte, 0, int(st.Size())+bytes.MinRead))
	_, err = buf.ReadFrom(f)
	return buf.Bytes(), err
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Install makes c the file cache of a wazero in-memory compilation cache
// (wazero.NewCompilationCache), before any runtime uses it. It fails when
// this wazero version's cache has no such field, so the caller can refuse
// to load rather than fall back to an unchecked cache.
func Install(cc wazero.CompilationCache, c *Cache) error {
	v := reflect.ValueOf(cc)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("aotcache: wazero's compilation cache is a %T, not a struct pointer; this wazero version is not supported", cc)
	}
	field := v.Elem().FieldByName("fileCache")
	if !field.IsValid() || field.Kind() != reflect.Interface || !reflect.TypeOf(c).Implements(field.Type()) {
		return fmt.Errorf("aotcache: wazero's compilation cache has no file cache field this package can fill; this wazero version is not supported")
	}
	if !field.IsNil() {
		return errors.New("aotcache: the compilation cache already has a file cache")
	}
	reflect.NewAt(field.Type(), unsafe.Pointer(field.UnsafeAddr())).Elem().Set(reflect.ValueOf(c))
	return nil
}

// Sealed files other than compiled code: what a kernel derives from a
// signed module and keeps to save deriving it again (a snapshot module's
// split into memory image and module without data). The same host key
// seals them, under a domain of their own and a kind that names the
// format: a file opens only as the kind it was sealed as, for the module
// and wazero version it was sealed for.

// blobMagic starts every sealed file; the digits are the format version.
var blobMagic = [8]byte{'V', 'K', 'B', 'L', 'O', 'B', '0', '1'}

const blobDomain = "compat vkernel derived file v1\x00"

// SealFile returns the on-disk form of body: magic, the MAC, then body.
func SealFile(hostKey []byte, kind string, b Binding, body []byte) []byte {
	out := make([]byte, 0, len(blobMagic)+sha256.Size+len(body))
	out = append(out, blobMagic[:]...)
	out = append(out, blobMAC(hostKey, kind, b, body)...)
	return append(out, body...)
}

// OpenFile checks a sealed file against kind and the binding and returns
// its body (a slice of data). Any mismatch is an error saying which check
// failed.
func OpenFile(hostKey []byte, kind string, b Binding, data []byte) ([]byte, error) {
	n := len(blobMagic) + sha256.Size
	if len(data) < n {
		return nil, fmt.Errorf("truncated: %d bytes, the header alone is %d", len(data), n)
	}
	if !bytes.Equal(data[:len(blobMagic)], blobMagic[:]) {
		return nil, fmt.Errorf("not a sealed file: bad magic %q", data[:len(blobMagic)])
	}
	body := data[n:]
	if !hmac.Equal(data[len(blobMagic):n], blobMAC(hostKey, kind, b, body)) {
		return nil, errors.New("host-key MAC does not match: the file was changed, or derived from another module")
	}
	return body, nil
}

func blobMAC(hostKey []byte, kind string, b Binding, body []byte) []byte {
	m := hmac.New(sha256.New, hostKey)
	m.Write([]byte(blobDomain))
	for _, s := range []string{kind, b.Megabinary, b.Module, b.Wazero} {
		m.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
		m.Write([]byte(s))
	}
	m.Write(body)
	return m.Sum(nil)
}

// ReadSealed reads a sealed file as Get reads an entry: a regular file,
// not through a final symbolic link, wholly into memory (checked and used
// from there, so a change to the file after the check changes nothing).
// A file that does not exist is an error satisfying os.IsNotExist.
func ReadSealed(name string) ([]byte, error) { return readFile(name) }

// WriteSealed writes data as the file name atomically: a temporary file
// in its directory, mode 0600, renamed over it.
func WriteSealed(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".sealed-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
