package certs

import "time"

// Lookup is the result of one endorsement key lookup in the cache tiers.
// Its values are the result label of trustgate_cert_cache_lookups_total.
type Lookup string

// The lookup results.
const (
	// LookupHit: a cached key within its refresh window was served.
	LookupHit Lookup = "hit"
	// LookupMiss: no usable cached key; the KDS was asked (or, offline or
	// after a recent 404, the lookup failed).
	LookupMiss Lookup = "miss"
	// LookupStale: a cached key past its refresh point was served because
	// the KDS could not be asked or failed (stale-if-error), within the
	// maximum staleness.
	LookupStale Lookup = "stale"
)

// Lookups lists every Lookup, for metrics to pre-initialise their labels.
func Lookups() []Lookup { return []Lookup{LookupHit, LookupMiss, LookupStale} }

// Observer is told about KDS requests and cache lookups, so that metrics
// can count them (SPEC: trustgate_kds_requests_total{kind,code},
// trustgate_cert_cache_lookups_total{result}). Its methods are called
// synchronously, from many goroutines, and must be cheap and safe for
// concurrent use. Nothing passed to it identifies a chip.
type Observer interface {
	// KDSRequest is called once per HTTP request sent to the KDS. code is
	// the HTTP status as decimal digits ("200", "404", "429", ...) or
	// "error" when no response arrived.
	KDSRequest(kind Kind, code string)
	// CacheLookup is called once per EndorsementKey call.
	CacheLookup(result Lookup)
}

// AgeObserver, when the Observer also implements it, is told the age of
// each endorsement key served (time since it was fetched from the KDS,
// whichever tier it came from), for trustgate_cert_cache_age_seconds.
type AgeObserver interface {
	CacheAge(age time.Duration)
}

type nopObserver struct{}

func (nopObserver) KDSRequest(Kind, string) {}
func (nopObserver) CacheLookup(Lookup)      {}
