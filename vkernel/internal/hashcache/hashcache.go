// Package hashcache remembers the SHA-256 of executable files by file
// identity, so that repeated execs of an unchanged file do not rehash it.
// The identity alone does not prove the content unchanged (a write through
// an already dirty shared mapping leaves it as it was): the vkernel puts
// only files whose content can no longer change here.
package hashcache

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Key identifies one version of a file: any write, truncation, rename over
// it or attribute change gives a new key, because it changes the size, the
// mtime or the ctime (and a replaced file has a new inode).
type Key struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // nanoseconds
}

// KeyOf returns the key of a file from its fstat.
func KeyOf(st *unix.Stat_t) Key {
	return Key{Dev: st.Dev, Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}
}

// KeyOfStatx returns the key of a file from its statx.
func KeyOfStatx(st *unix.Statx_t) Key {
	return Key{
		Dev:   unix.Mkdev(st.Dev_major, st.Dev_minor),
		Ino:   st.Ino,
		Size:  int64(st.Size),
		Mtime: st.Mtime.Sec*1e9 + int64(st.Mtime.Nsec),
		Ctime: st.Ctime.Sec*1e9 + int64(st.Ctime.Nsec),
	}
}

// Cache maps keys to digests. It is safe for concurrent use.
type Cache struct {
	mu  sync.RWMutex
	m   map[Key]string
	max int
}

// New returns a cache holding at most max entries.
func New(max int) *Cache {
	return &Cache{m: make(map[Key]string), max: max}
}

// Get returns the digest stored for k.
func (c *Cache) Get(k Key) (string, bool) {
	c.mu.RLock()
	d, ok := c.m[k]
	c.mu.RUnlock()
	return d, ok
}

// Put stores the digest for k. When the cache is full it starts over: a
// full cache means a workload that cycles through more files than it holds,
// for which eviction order would not help.
func (c *Cache) Put(k Key, digest string) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = digest
	c.mu.Unlock()
}

// Len returns the number of entries.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// SetImmutable sets or clears the immutable attribute of a file (chattr
// +i / -i), which needs CAP_LINUX_IMMUTABLE and a filesystem that has it.
// Tests and benchmarks use it to make a file whose digest may be cached.
func SetImmutable(name string, on bool) error {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("%s: get attributes: %w", name, err)
	}
	const immutable = 0x10 // FS_IMMUTABLE_FL
	if on {
		flags |= immutable
	} else {
		flags &^= immutable
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags)); err != nil {
		return fmt.Errorf("%s: set attributes: %w", name, err)
	}
	return nil
}
