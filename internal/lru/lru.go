// Package lru is a bounded, least-recently-used map safe for concurrent
// use: the verified-chain cache of internal/tee/snp and the memory tier of
// internal/certs.
package lru

import (
	"container/list"
	"sync"
)

// Cache holds at most its capacity of entries, dropping the least recently
// used (by Get or Put) first.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	byKey map[K]*list.Element
	order list.List // front = most recently used
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a Cache holding at most capacity entries (at least 1).
func New[K comparable, V any](capacity int) *Cache[K, V] {
	return &Cache[K, V]{max: max(capacity, 1), byKey: make(map[K]*list.Element)}
}

// Get returns the value of k and marks it used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry[K, V]).val, true
}

// Put sets the value of k, marks it used, and drops the least recently
// used entries beyond the capacity.
func (c *Cache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		el.Value.(*entry[K, V]).val = v
		c.order.MoveToFront(el)
		return
	}
	c.byKey[k] = c.order.PushFront(&entry[K, V]{k, v})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*entry[K, V]).key)
	}
}

// Remove drops k.
func (c *Cache[K, V]) Remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.order.Remove(el)
		delete(c.byKey, k)
	}
}

// RemoveIf drops every entry whose key satisfies match.
func (c *Cache[K, V]) RemoveIf(match func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.byKey {
		if match(k) {
			c.order.Remove(el)
			delete(c.byKey, k)
		}
	}
}

// Len is the number of entries held.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
