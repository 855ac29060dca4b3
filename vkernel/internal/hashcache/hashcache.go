// Package hashcache remembers the SHA-256 of executable files by file
// identity, so that repeated execs of an unchanged file do not rehash it.
package hashcache

import (
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
