package snp

import (
	"container/list"
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"time"
)

// DefaultCacheSize is the number of verified endorsement keys a Verifier
// remembers when Options.CacheSize is 0. One entry is a few hundred bytes.
const DefaultCacheSize = 4096

// chainEntry is an endorsement key whose chain to a pinned ARK has been
// verified, with the window in which every certificate of that chain is
// valid. The window is re-checked at every use.
type chainEntry struct {
	key                 [sha256.Size]byte
	ek                  *EndorsementKey
	intermediate        *x509.Certificate // the pinned ASK or ASVK it chains through
	notBefore, notAfter time.Time
}

func (e *chainEntry) validAt(t time.Time) bool {
	return !t.Before(e.notBefore) && !t.After(e.notAfter)
}

// chainCache is a bounded LRU of verified chains keyed by the SHA-256 of
// the endorsement certificate's DER bytes, so that a later report signed by
// the same key costs one ECDSA P-384 verification.
type chainCache struct {
	mu    sync.Mutex
	max   int
	byKey map[[sha256.Size]byte]*list.Element
	order list.List // front = most recently used
}

func newChainCache(max int) *chainCache {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &chainCache{max: max, byKey: make(map[[sha256.Size]byte]*list.Element)}
}

func (c *chainCache) get(k [sha256.Size]byte) *chainEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		return nil
	}
	c.order.MoveToFront(el)
	return el.Value.(*chainEntry)
}

func (c *chainCache) put(e *chainEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[e.key]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.byKey[e.key] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*chainEntry).key)
	}
}

func (c *chainCache) remove(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.order.Remove(el)
		delete(c.byKey, k)
	}
}

func (c *chainCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
