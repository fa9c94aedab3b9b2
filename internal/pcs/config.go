package pcs

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

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
	// URL is the PCS base URL; "" means DefaultURL.
	URL string
	// RootCRLURL is where the Root CA's CRL is fetched; "" means
	// DefaultRootCRLURL.
	RootCRLURL string
	// HTTPClient makes the requests; nil means a plain http.Client.
	// Redirects are never followed whatever it says.
	HTTPClient *http.Client
	// Offline never contacts PCS: only what the tiers hold is served.
	Offline bool

	// Dir is the disk tier's directory; "" means DefaultDir().
	Dir string
	// NoDisk turns the disk tier off.
	NoDisk bool
	// Redis, when non-nil, is a tier shared by replicas.
	Redis redis.UniversalClient
	// RedisPrefix prefixes the Redis keys; "" means DefaultRedisPrefix.
	RedisPrefix string

	// Roots verify what PCS serves; nil means tdx.IntelRoots(). Use the
	// Verifier's.
	Roots *tdx.Roots

	// Clock is the wall clock for validity and freshness; nil means
	// time.Now.
	Clock func() time.Time
	// Sleep waits for d or until ctx ends; nil means a real timer (and the
	// rate limit and retries then use time.Now, whatever Clock is).
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives warnings; nil means none.
	Logger *slog.Logger

	// RateInterval is the time per PCS request; 0 means
	// DefaultRateInterval, negative no limit. RateBurst: 0 means
	// DefaultRateBurst.
	RateInterval time.Duration
	RateBurst    int
	// RequestTimeout bounds one HTTP request; 0 means tiered.DefaultRequestTimeout.
	RequestTimeout time.Duration
	// FetchTimeout bounds a fetch with its retries; 0 means
	// tiered.DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Attempts is how often a failing request is tried; 0 means
	// DefaultAttempts.
	Attempts int
	// Backoff and MaxBackoff: the first retry's backoff, doubled per
	// retry; 0 means tiered.DefaultBackoff and
	// tiered.DefaultMaxBackoff.
	Backoff, MaxBackoff time.Duration
	// MaxRetryAfter: 0 means tiered.DefaultMaxRetryAfter. MaxHoldBack: 0 means
	// tiered.DefaultMaxHoldBack.
	MaxRetryAfter, MaxHoldBack time.Duration
	// FetchWait bounds how long Collateral waits for fetches (all the
	// waits of one API request together when its context carries
	// attest.WithClient); 0 means tiered.DefaultFetchWait, negative means waiting
	// for the fetches to end (for CLIs).
	FetchWait time.Duration

	// RefreshFraction in (0, 1] and MaxAge: a document fetched at F, valid
	// until its nextUpdate U, is refreshed from min(F + RefreshFraction*(U-F),
	// F + MaxAge) on; 0 means the defaults, negative MaxAge none.
	RefreshFraction float64
	MaxAge          time.Duration
	// MaxStaleness is how long past its refresh point a document is served
	// when it cannot be refreshed (never past nextUpdate); 0 means
	// tiered.DefaultMaxStaleness, negative none.
	MaxStaleness time.Duration
}
