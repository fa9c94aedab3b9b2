package certs

import (
	"os"
	"path/filepath"
	"time"

	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tiered"
)

// Defaults for the zero fields of Config.
const (
	// DefaultRateInterval and DefaultRateBurst: one KDS request per 10 s,
	// no burst, in each of two buckets (VCEKs; CRLs and cert chains). The
	// KDS documents no limit; ~1 VCEK per 10 s per client address is what
	// has been observed before it answers 429, so this is the most that is
	// known to pass. A cold start (one VCEK, one CRL) is not delayed by it.
	DefaultRateInterval = 10 * time.Second
	DefaultRateBurst    = 1
	// DefaultRequestTimeout bounds one HTTP request to the KDS.
	DefaultRequestTimeout = tiered.DefaultRequestTimeout
	// DefaultFetchTimeout bounds one fetch with all its retries and waits.
	DefaultFetchTimeout = tiered.DefaultFetchTimeout
	// DefaultAttempts is how often a failing request is tried in all.
	DefaultAttempts = 4
	// DefaultBackoff doubles per retry (with jitter) up to DefaultMaxBackoff.
	DefaultBackoff    = tiered.DefaultBackoff
	DefaultMaxBackoff = tiered.DefaultMaxBackoff
	// DefaultMaxRetryAfter is the longest Retry-After waited for within a
	// fetch; a longer one fails the fetch (and still holds requests back).
	DefaultMaxRetryAfter = tiered.DefaultMaxRetryAfter
	// DefaultMaxHoldBack caps a KDS Retry-After: however long the KDS asks
	// for (a day has been seen), requests are held back at most an hour,
	// and the cap is logged.
	DefaultMaxHoldBack = tiered.DefaultMaxHoldBack
	// DefaultFetchWait is how long a lookup waits for a KDS fetch before
	// it fails with vcek_unavailable (the fetch goes on in the
	// background); well inside an HTTP server's write timeout.
	DefaultFetchWait = tiered.DefaultFetchWait
	// DefaultMaxWaiting bounds the lookups waiting for VCEK fetches at
	// once; beyond it a lookup fails at once with vcek_unavailable.
	DefaultMaxWaiting = 256
	// DefaultClientMissFactor: unless set, ClientMissInterval is this many
	// RateIntervals, so that no client takes more than a third of the KDS
	// budget over time.
	DefaultClientMissFactor = 3
	// ClientMissBurst is how many KDS VCEK requests one client may cause
	// at once before ClientMissInterval applies.
	ClientMissBurst = 4
	// maxClientFetches is how many VCEK fetches one client may have
	// started that still run, and maxClientWaiting how many of its lookups
	// may wait for fetches at once.
	maxClientFetches = 1
	maxClientWaiting = 16
	// maxTracked bounds the clients and nonces whose KDS use is
	// remembered (least recently used forgotten first).
	maxTracked = 4096
	// DefaultRefreshFraction: refresh a cached certificate or CRL once half
	// of the validity it had left when fetched has passed.
	DefaultRefreshFraction = tiered.DefaultRefreshFraction
	// DefaultMaxStaleness is how long past its refresh point a cached VCEK
	// is still served while the KDS cannot be reached.
	DefaultMaxStaleness = tiered.DefaultMaxStaleness
	// DefaultCRLGrace is how long past its nextUpdate a CRL that cannot be
	// refreshed is still used.
	DefaultCRLGrace = 24 * time.Hour
	// DefaultNegativeTTL is how long a KDS 404 is remembered.
	DefaultNegativeTTL = 5 * time.Minute
	// DefaultMemoryEntries bounds the memory tier (about 1.5 KiB each).
	DefaultMemoryEntries = 4096
	// maxVCEKFetches bounds the VCEK fetches in flight at once (distinct
	// chips and TCBs); at one request per 10 s a longer queue could not be
	// served within DefaultFetchTimeout anyway.
	maxVCEKFetches = 32
	// DefaultRedisPrefix prefixes every Redis key of the Redis tier.
	DefaultRedisPrefix = "trustgate:certs:"
)

// Config configures a Service. Every zero field means the default named
// beside it, so the zero Config fetches from AMD's KDS at one VCEK request
// per 10 s and caches in memory and under the user cache directory,
// trusting AMD's pinned roots.
type Config struct {
	// Settings: the KDS client, the disk and Redis tiers, the clock and
	// the rate and timing of KDS requests. Its zero fields mean the
	// defaults here (DefaultRateInterval, DefaultRateBurst,
	// DefaultAttempts, DefaultRedisPrefix, DefaultDir) or tiered's. A
	// lookup that FetchWait gives up on fails with vcek_unavailable; a
	// VCEK past MaxStaleness too.
	tiered.Settings

	// KDSURL is the KDS base URL; "" means DefaultKDSURL.
	KDSURL string
	// MemoryEntries bounds the memory tier; 0 means DefaultMemoryEntries.
	MemoryEntries int

	// Roots verify what the KDS serves (VCEKs chain to the ASK, CRLs are
	// signed by the ARK); nil means snp.AMDRoots(). Use the Verifier's.
	Roots *snp.Roots
	// SkipRevocationForUnpinned makes Check accept a chain whose
	// intermediate is not one of Roots' pinned certificates (the chains
	// trusted by snp.Roots.WithARKKey: the simulator's) instead of failing
	// it. Dangerous: no CRL covers such chains. For --dev-simulator only.
	SkipRevocationForUnpinned bool

	// Observer counts KDS requests and cache lookups; nil means none.
	Observer Observer

	// MaxWaiting bounds the lookups waiting for VCEK fetches at once;
	// beyond it a lookup fails at once with vcek_unavailable. 0 means
	// DefaultMaxWaiting.
	MaxWaiting int
	// ClientMissInterval bounds the KDS VCEK requests one client (the
	// identity attest.WithClient put in the context) may cause: one per
	// ClientMissInterval on average, ClientMissBurst at once; beyond it
	// its lookups that need the KDS fail with vcek_unavailable (lookups
	// answered from a cache tier cost nothing). Besides, one client may
	// have one VCEK fetch running and 16 lookups waiting, and one nonce
	// (attest.WithNonce) may cause KDS requests for one chip and TCB only.
	// A client with a verified certificate (attest.CertClient) has its own
	// budget; the clients known by address only also share one cap of
	// 2*ClientMissBurst at once and one request per
	// ClientMissInterval*2/DefaultClientMissFactor.
	// 0 means DefaultClientMissFactor*RateInterval, negative means no
	// per-client budget. Lookups without a client are not bounded.
	ClientMissInterval time.Duration

	// CRLGrace is how long past nextUpdate a CRL is used when it cannot be
	// refreshed; then Check fails closed with vcek_unavailable. 0 means
	// DefaultCRLGrace, negative means none.
	CRLGrace time.Duration
	// NegativeTTL is how long a KDS 404 for a chip and TCB is remembered
	// (answered without asking again); 0 means DefaultNegativeTTL,
	// negative means not at all.
	NegativeTTL time.Duration
}

// DefaultDir is the disk tier's default directory:
// os.UserCacheDir()/trustgate/certs.
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "trustgate", "certs"), nil
}
