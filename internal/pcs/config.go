package pcs

import (
	"time"

	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/tiered"
)

// Defaults for the zero fields of Config.
const (
	// DefaultURL is Intel's PCS (API v4 paths are appended).
	DefaultURL = "https://api.trustedservices.intel.com"
	// DefaultRootCRLURL is the Intel SGX Root CA's CRL distribution point.
	DefaultRootCRLURL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
	// DefaultRateInterval and DefaultRateBurst: at most one PCS request
	// per second on average, four at once (a cold start needs four).
	DefaultRateInterval = time.Second
	DefaultRateBurst    = 4
	// DefaultAttempts is how often a failing request is tried in all.
	DefaultAttempts = 3
	// DefaultMaxAge (with tiered.DefaultRefreshFraction): a document is refreshed
	// once half its remaining validity, or a day, has passed since it was
	// fetched (Intel reissues TCB info and QE identity daily, each valid
	// for 30 days).
	DefaultMaxAge = 24 * time.Hour
	// DefaultFetchWait is how long a verification waits for fetches.
	DefaultFetchWait = tiered.DefaultFetchWait
	// DefaultRedisPrefix prefixes the Redis tier's keys.
	DefaultRedisPrefix = "trustgate:pcs:"
	// maxFlights bounds the fetches in flight at once and maxWaiting the
	// verifications waiting for them.
	maxFlights = 64
	maxWaiting = 256
	// maxAssembled bounds the assembled collateral sets kept (one per
	// FMSPC and PCK CA).
	maxAssembled = 1024
	// maxBody bounds a PCS response body, maxChain an issuer chain header.
	maxBody  = tdx.MaxCollateralSize
	maxChain = 64 << 10
	// futureSkew is how far in the future a document's issue date may lie.
	futureSkew = 5 * time.Minute
)

// Config configures a Service. Every zero field means the default named
// beside it (negative durations mean none where said), so the zero Config
// fetches from Intel's PCS and caches in memory and under the user cache
// directory, trusting the pinned Intel SGX Root CA.
type Config struct {
	// Settings: the PCS client, the disk and Redis tiers, the clock and
	// the rate and timing of PCS requests. Its zero fields mean the
	// defaults here (DefaultRateInterval, DefaultRateBurst,
	// DefaultAttempts, DefaultRedisPrefix, DefaultDir) or tiered's. A
	// document is never served stale past its nextUpdate.
	tiered.Settings

	// URL is the PCS base URL; "" means DefaultURL.
	URL string
	// RootCRLURL is where the Root CA's CRL is fetched; "" means
	// DefaultRootCRLURL.
	RootCRLURL string

	// Roots verify what PCS serves; nil means tdx.IntelRoots(). Use the
	// Verifier's.
	Roots *tdx.Roots

	// MaxAge: a document fetched at F, valid until its nextUpdate U, is
	// refreshed from min(F + RefreshFraction*(U-F), F + MaxAge) on; 0
	// means DefaultMaxAge, negative none.
	MaxAge time.Duration
}
