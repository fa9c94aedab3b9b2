package snp

import (
	"crypto/sha256"
	"crypto/x509"
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

// cacheSize is Options.CacheSize with its default.
func cacheSize(n int) int {
	if n <= 0 {
		return DefaultCacheSize
	}
	return n
}
