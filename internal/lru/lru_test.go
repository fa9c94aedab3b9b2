package lru

import "testing"

func TestCache(t *testing.T) {
	c := New[int, string](2)
	c.Put(1, "a")
	c.Put(2, "b")
	if v, ok := c.Get(1); !ok || v != "a" { // 1 is now the most recent
		t.Fatalf("Get(1) = %q, %v", v, ok)
	}
	c.Put(3, "c") // drops 2, the least recently used
	if _, ok := c.Get(2); ok {
		t.Error("2 survived past the capacity")
	}
	c.Put(1, "a2")
	if v, _ := c.Get(1); v != "a2" || c.Len() != 2 {
		t.Errorf("after update: Get(1) = %q, Len %d", v, c.Len())
	}
	c.RemoveIf(func(k int) bool { return k > 2 })
	c.Remove(1)
	if c.Len() != 0 {
		t.Errorf("Len %d after removing all", c.Len())
	}
	if z := New[int, int](0); z.max != 1 {
		t.Errorf("capacity 0 became %d", z.max)
	}
}
