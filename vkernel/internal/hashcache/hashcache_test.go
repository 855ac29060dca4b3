package hashcache

import "testing"

func TestGetPutAndBound(t *testing.T) {
	c := New(2)
	a, b, d := Key{Ino: 1}, Key{Ino: 2}, Key{Ino: 3}
	c.Put(a, "A")
	if got, ok := c.Get(a); !ok || got != "A" {
		t.Fatalf("Get(a) = %q, %v", got, ok)
	}
	if _, ok := c.Get(Key{Ino: 1, Ctime: 1}); ok {
		t.Fatal("a key differing only in ctime hit")
	}
	c.Put(b, "B")
	c.Put(d, "D")
	if c.Len() > 2 {
		t.Fatalf("cache holds %d entries, bound is 2", c.Len())
	}
	if got, ok := c.Get(d); !ok || got != "D" {
		t.Fatal("newest entry lost")
	}
}
