package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/lru"
	"github.com/trustgate/trustgate/internal/tee/snp"
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
	DefaultRequestTimeout = 20 * time.Second
	// DefaultFetchTimeout bounds one fetch with all its retries and waits.
	DefaultFetchTimeout = 2 * time.Minute
	// DefaultAttempts is how often a failing request is tried in all.
	DefaultAttempts = 4
	// DefaultBackoff doubles per retry (with jitter) up to DefaultMaxBackoff.
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 30 * time.Second
	// DefaultMaxRetryAfter is the longest Retry-After waited for within a
	// fetch; a longer one fails the fetch (and still holds requests back).
	DefaultMaxRetryAfter = 2 * time.Minute
	// DefaultMaxHoldBack caps a KDS Retry-After: however long the KDS asks
	// for (a day has been seen), requests are held back at most an hour,
	// and the cap is logged.
	DefaultMaxHoldBack = time.Hour
	// DefaultFetchWait is how long a lookup waits for a KDS fetch before
	// it fails with vcek_unavailable (the fetch goes on in the
	// background); well inside an HTTP server's write timeout.
	DefaultFetchWait = 10 * time.Second
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
	DefaultRefreshFraction = 0.5
	// DefaultMaxStaleness is how long past its refresh point a cached VCEK
	// is still served while the KDS cannot be reached.
	DefaultMaxStaleness = 7 * 24 * time.Hour
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
	// KDSURL is the KDS base URL; "" means DefaultKDSURL.
	KDSURL string
	// HTTPClient makes the KDS requests; nil means a plain http.Client
	// (each request is bounded by RequestTimeout).
	HTTPClient *http.Client
	// Offline never contacts the KDS: only what the tiers hold (fetched
	// earlier or imported from a bundle) is served.
	Offline bool

	// Dir is the disk tier's directory; "" means DefaultDir(). When the
	// user cache directory cannot be determined the disk tier is off and
	// a warning is logged.
	Dir string
	// NoDisk turns the disk tier off.
	NoDisk bool
	// Redis, when non-nil, is a tier shared by replicas; Redis errors are
	// logged and the other tiers and the KDS are used.
	Redis redis.UniversalClient
	// RedisPrefix prefixes the Redis keys; "" means DefaultRedisPrefix.
	RedisPrefix string
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

	// Clock is the wall clock for validity, freshness and staleness; nil
	// means time.Now.
	Clock func() time.Time
	// Sleep waits for d or until ctx ends. nil means a real timer, and the
	// rate limiter and retries then measure time with time.Now whatever
	// Clock is; when Sleep is set they use Clock (tests set both).
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives warnings (stale serving, KDS failures, revocations);
	// nil means none. Chip ids are never logged.
	Logger *slog.Logger
	// Observer counts KDS requests and cache lookups; nil means none.
	Observer Observer

	// RateInterval is the time per KDS request of each rate bucket; 0
	// means DefaultRateInterval, negative means no limit.
	RateInterval time.Duration
	// RateBurst is how many requests a bucket saves up; 0 means
	// DefaultRateBurst.
	RateBurst int
	// RequestTimeout bounds one HTTP request; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// FetchTimeout bounds a fetch with its retries; 0 means
	// DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Attempts is how many times a failing request is tried; 0 means
	// DefaultAttempts.
	Attempts int
	// Backoff is the first retry's backoff, doubled per retry up to
	// MaxBackoff, each drawn from [d/2, d]; 0 means the defaults.
	Backoff, MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After waited for; 0 means
	// DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// MaxHoldBack caps how long a KDS Retry-After holds every request
	// back (a longer one is capped, and that is logged); 0 means
	// DefaultMaxHoldBack.
	MaxHoldBack time.Duration

	// FetchWait bounds how long a lookup (EndorsementKey, Check) waits for
	// a KDS fetch; all the waits of one API request together when its
	// context carries attest.WithClient. Then the lookup fails with
	// vcek_unavailable (its error carries a Retry-After hint, see
	// attest.RetryAfter) while the fetch goes on in the background until
	// FetchTimeout, so that a retry finds the certificate cached. 0 means
	// DefaultFetchWait, negative means waiting for the fetch to end (for
	// CLIs).
	FetchWait time.Duration
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
	// 0 means DefaultClientMissFactor*RateInterval, negative means no
	// per-client budget. Lookups without a client are not bounded.
	ClientMissInterval time.Duration

	// RefreshFraction in (0, 1]: a certificate or CRL fetched at F with
	// validity until U is refreshed from F + RefreshFraction*(U-F) on; 0
	// means DefaultRefreshFraction.
	RefreshFraction float64
	// MaxStaleness is how long past its refresh point a VCEK is served
	// when it cannot be refreshed; then lookups fail with
	// vcek_unavailable. 0 means DefaultMaxStaleness, negative means no
	// stale serving.
	MaxStaleness time.Duration
	// CRLGrace is how long past nextUpdate a CRL is used when it cannot be
	// refreshed; then Check fails closed with vcek_unavailable. 0 means
	// DefaultCRLGrace, negative means none.
	CRLGrace time.Duration
	// NegativeTTL is how long a KDS 404 for a chip and TCB is remembered
	// (answered without asking again); 0 means DefaultNegativeTTL,
	// negative means not at all.
	NegativeTTL time.Duration
}

// Service is the AMD KDS certificate service: an snp.KeySource with memory,
// disk and Redis tiers in front of a rate-limited KDS client, and an
// snp.RevocationChecker over AMD's CRLs. It is safe for concurrent use.
type Service struct {
	base     string
	offline  bool
	roots    *snp.Roots
	skipPin  bool
	now      func() time.Time
	log      *slog.Logger
	obs      Observer
	kds      *kdsClient
	mem      *lru.Cache[vkey, *ventry] // the memory tier
	tiers    []store
	neg      negCache
	frac     float64
	maxStale time.Duration
	crlGrace time.Duration
	fetchTO  time.Duration
	wait     time.Duration // FetchWait; <= 0: none
	budget   *clientBudget

	vflights flights[vkey, lookupResult]
	cflights flights[crlKey, *crlState]
	crls     map[crlKey]*atomic.Pointer[crlState]

	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
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

// New returns a Service configured by cfg, or an error if cfg is invalid.
// It does no I/O; call Close when done with it.
func New(cfg Config) (*Service, error) {
	or := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	or(&cfg.RateInterval, DefaultRateInterval)
	or(&cfg.RequestTimeout, DefaultRequestTimeout)
	or(&cfg.FetchTimeout, DefaultFetchTimeout)
	or(&cfg.Backoff, DefaultBackoff)
	or(&cfg.MaxBackoff, DefaultMaxBackoff)
	or(&cfg.MaxRetryAfter, DefaultMaxRetryAfter)
	or(&cfg.MaxHoldBack, DefaultMaxHoldBack)
	or(&cfg.FetchWait, DefaultFetchWait)
	if cfg.ClientMissInterval == 0 && cfg.RateInterval > 0 {
		cfg.ClientMissInterval = DefaultClientMissFactor * cfg.RateInterval
	}
	if cfg.MaxWaiting == 0 {
		cfg.MaxWaiting = DefaultMaxWaiting
	}
	or(&cfg.MaxStaleness, DefaultMaxStaleness)
	or(&cfg.CRLGrace, DefaultCRLGrace)
	or(&cfg.NegativeTTL, DefaultNegativeTTL)
	if cfg.RateBurst == 0 {
		cfg.RateBurst = DefaultRateBurst
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.MemoryEntries == 0 {
		cfg.MemoryEntries = DefaultMemoryEntries
	}
	if cfg.RefreshFraction == 0 {
		cfg.RefreshFraction = DefaultRefreshFraction
	}
	if cfg.KDSURL == "" {
		cfg.KDSURL = DefaultKDSURL
	}
	if cfg.RedisPrefix == "" {
		cfg.RedisPrefix = DefaultRedisPrefix
	}
	var errs []error
	if u, err := url.Parse(cfg.KDSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("KDS URL %q is not an http(s) URL", cfg.KDSURL))
	}
	if cfg.RefreshFraction <= 0 || cfg.RefreshFraction > 1 {
		errs = append(errs, fmt.Errorf("refresh fraction %v is not in (0, 1]", cfg.RefreshFraction))
	}
	if cfg.RateBurst < 0 || cfg.Attempts < 0 || cfg.MemoryEntries < 0 || cfg.MaxWaiting < 0 {
		errs = append(errs, errors.New("rate burst, attempts, memory entries and max waiting must not be negative"))
	}
	for _, d := range []time.Duration{cfg.RequestTimeout, cfg.FetchTimeout, cfg.Backoff, cfg.MaxBackoff, cfg.MaxRetryAfter, cfg.MaxHoldBack} {
		if d < 0 {
			errs = append(errs, errors.New("timeouts and backoffs must not be negative"))
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	s := &Service{
		base: cfg.KDSURL, offline: cfg.Offline, roots: cfg.Roots, skipPin: cfg.SkipRevocationForUnpinned,
		now: cfg.Clock, log: cfg.Logger, obs: cfg.Observer,
		mem: lru.New[vkey, *ventry](cfg.MemoryEntries), neg: negCache{ttl: cfg.NegativeTTL},
		frac: cfg.RefreshFraction, maxStale: cfg.MaxStaleness, crlGrace: cfg.CRLGrace, fetchTO: cfg.FetchTimeout,
		wait: cfg.FetchWait, crls: make(map[crlKey]*atomic.Pointer[crlState]),
	}
	s.vflights.max, s.vflights.maxWaiting = maxVCEKFetches, cfg.MaxWaiting
	s.vflights.perClient, s.vflights.clientWaiting = maxClientFetches, maxClientWaiting
	if s.roots == nil {
		s.roots = snp.AMDRoots()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	limNow, sleep := time.Now, sleepTimer
	if cfg.Sleep != nil {
		limNow, sleep = s.now, cfg.Sleep
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	client = noRedirects(client)
	s.kds = &kdsClient{
		base: cfg.KDSURL, http: client, obs: s.obs, log: s.log, now: limNow, sleep: sleep,
		vcekLim:        newLimiter(cfg.RateInterval, cfg.RateBurst, limNow, sleep),
		otherLim:       newLimiter(cfg.RateInterval, cfg.RateBurst, limNow, sleep),
		requestTimeout: cfg.RequestTimeout, attempts: max(cfg.Attempts, 1),
		backoff: cfg.Backoff, backoffMax: cfg.MaxBackoff, maxRetryAfter: cfg.MaxRetryAfter, maxHoldBack: cfg.MaxHoldBack,
	}
	s.budget = newClientBudget(cfg.ClientMissInterval, ClientMissBurst, limNow)
	if !cfg.NoDisk {
		dir := cfg.Dir
		if dir == "" {
			d, err := DefaultDir()
			if err != nil {
				s.log.Warn("no user cache directory; the certificate disk cache is off", "error", err.Error())
			}
			dir = d
		}
		if dir != "" {
			s.tiers = append(s.tiers, &diskStore{dir: dir})
		}
	}
	if cfg.Redis != nil {
		s.tiers = append(s.tiers, &redisStore{c: cfg.Redis, prefix: cfg.RedisPrefix})
	}
	for _, p := range snp.Products() {
		for _, sg := range []snp.Signer{snp.SignerVCEK, snp.SignerVLEK} {
			s.crls[crlKey{p, sg}] = new(atomic.Pointer[crlState])
		}
	}
	s.bg, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close stops background refreshes and fetches in flight and waits for
// them to end. The Service must not be used afterwards.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// HeldBack returns how long from now no request goes to the KDS because
// it answered 429 or 503 with Retry-After (at most MaxHoldBack; 0 when
// none). For a gauge: a KDS outage does not make the service unready
// (cached keys are still served), but it should be seen.
func (s *Service) HeldBack() time.Duration {
	return max(s.kds.vcekLim.heldBack(), s.kds.otherLim.heldBack())
}

// track counts a goroutine that Close waits for; false once closed.
func (s *Service) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// fetchContext is the context a coalesced fetch runs on: detached from
// every caller, ended by Close or FetchTimeout.
func (s *Service) fetchContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(s.bg, s.fetchTO)
	if !s.track() {
		cancel()
		return ctx, cancel
	}
	return ctx, func() { cancel(); s.wg.Done() }
}

// vkey names a VCEK: product, hwid and the full TCB_VERSION (on Turin the
// FMC SPL is part of it). It is comparable, so memory lookups allocate
// nothing.
type vkey struct {
	product snp.Product
	hwid    [64]byte
	n       uint8
	tcb     snp.TCBVersion
}

func makeVKey(req snp.KeyRequest) vkey {
	k := vkey{product: req.Product, tcb: req.TCB, n: uint8(len(req.HWID))}
	copy(k.hwid[:], req.HWID)
	return k
}

func (k vkey) request() snp.KeyRequest {
	return snp.KeyRequest{Product: k.product, Signer: snp.SignerVCEK, HWID: append([]byte(nil), k.hwid[:k.n]...), TCB: k.tcb}
}

// name is the tier key; it holds the chip id and is never logged.
func (k vkey) name() string {
	return fmt.Sprintf("vcek/%s/%x-%016x", k.product, k.hwid[:k.n], uint64(k.tcb))
}

func productPrefix(p snp.Product) string { return "vcek/" + string(p) + "/" }

// ventry is a verified VCEK with its freshness times.
type ventry struct {
	key        vkey
	der        []byte
	fetchedAt  time.Time
	refreshAt  time.Time // from here on it is stale and refreshed
	staleUntil time.Time // after this it is not served (≤ notAfter)
	notAfter   time.Time
	nextTry    atomic.Int64 // UnixNano before which no background refresh starts
}

type freshness int

const (
	fresh freshness = iota
	stale
	expired
)

func (e *ventry) state(now time.Time) freshness {
	switch {
	case now.After(e.staleUntil) || now.After(e.notAfter):
		return expired
	case now.Before(e.refreshAt):
		return fresh
	}
	return stale
}

// refreshPoint is F + frac*(U-F), at the latest U.
func refreshPoint(fetched, until time.Time, frac float64) time.Time {
	if !until.After(fetched) {
		return until
	}
	return fetched.Add(time.Duration(frac * float64(until.Sub(fetched))))
}

// newEntry verifies a VCEK from the KDS or a tier: it must be the VCEK req
// names, signed by the pinned ASK of its product, and valid at now.
func (s *Service) newEntry(k vkey, rec *record, now time.Time) (*ventry, error) {
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, fmt.Errorf("not a certificate: %v", err)
	}
	ek, err := snp.ParseEndorsementKey(cert)
	if err != nil {
		return nil, err
	}
	if ek.Signer != snp.SignerVCEK || ek.Product != k.product {
		return nil, fmt.Errorf("it is a %s %s, not a %s VCEK", ek.Product, ek.Signer, k.product)
	}
	if string(ek.HWID) != string(k.hwid[:k.n]) {
		return nil, errors.New("it is for another chip")
	}
	if ek.TCB != k.tcb {
		return nil, fmt.Errorf("it is for TCB %#016x, not %#016x", uint64(ek.TCB), uint64(k.tcb))
	}
	pr, ok := s.roots.Product(k.product)
	if !ok || pr.ASK == nil {
		return nil, fmt.Errorf("no pinned %s ASK", k.product)
	}
	if err := cert.CheckSignatureFrom(pr.ASK); err != nil {
		return nil, fmt.Errorf("not signed by the pinned %s ASK: %v", k.product, err)
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("%w: valid %s to %s", errNotNow, cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	fetched := rec.FetchedAt
	if fetched.After(now) {
		fetched = now
	}
	e := &ventry{key: k, der: rec.DER, fetchedAt: fetched, notAfter: cert.NotAfter}
	e.refreshAt = refreshPoint(fetched, cert.NotAfter, s.frac)
	e.staleUntil = e.refreshAt
	if s.maxStale > 0 {
		e.staleUntil = e.refreshAt.Add(s.maxStale)
	}
	if e.staleUntil.After(e.notAfter) {
		e.staleUntil = e.notAfter
	}
	return e, nil
}

// EndorsementKey returns the VCEK named by req (DER; the caller must not
// modify it): from memory, then disk and Redis, then the KDS, one request
// per chip and TCB however many callers miss at once. A cached key past its
// refresh point is served (counted stale) while a refresh runs in the
// background, up to MaxStaleness. Errors are *attest.Error with reason
// vcek_unavailable.
//
// A lookup waits for a KDS fetch at most FetchWait (see Config.FetchWait)
// and is bounded per client and nonce (Config.ClientMissInterval); those
// refusals carry a Retry-After hint (attest.RetryAfter).
func (s *Service) EndorsementKey(ctx context.Context, req snp.KeyRequest) ([]byte, error) {
	e, err := s.entry(ctx, req, s.waitUntil(ctx))
	if err != nil {
		return nil, err
	}
	return e.der, nil
}

// waitUntil is when ctx's lookups stop waiting for fetches; zero for no
// bound.
func (s *Service) waitUntil(ctx context.Context) time.Time {
	if s.wait <= 0 {
		return time.Time{}
	}
	return attest.WaitUntil(ctx, time.Now(), s.wait)
}

// entry is EndorsementKey returning the cache entry; waits for a fetch end
// at until (zero: none).
func (s *Service) entry(ctx context.Context, req snp.KeyRequest, until time.Time) (*ventry, error) {
	if err := checkRequest(req); err != nil {
		return nil, &attest.Error{Reason: attest.ReasonVCEKUnavailable, Err: err}
	}
	k := makeVKey(req)
	now := s.now()
	if e, _ := s.mem.Get(k); e != nil {
		switch e.state(now) {
		case fresh:
			s.obs.CacheLookup(LookupHit)
			s.served(e, now)
			return e, nil
		case stale:
			s.obs.CacheLookup(LookupStale)
			s.served(e, now)
			s.refreshLater(e, now)
			return e, nil
		}
	}
	r, err := s.lookup(ctx, k, until)
	if err == nil && r.e.state(s.now()) == expired {
		// A fetch in flight since before now answered with what was
		// still servable then; judge again at now.
		r, err = s.lookup(ctx, k, until)
		if err == nil && r.e.state(s.now()) == expired {
			err = attest.Errorf(attest.ReasonVCEKUnavailable, "%s VCEK: the cached copy is past its maximum staleness", k.product)
		}
	}
	if err != nil {
		s.obs.CacheLookup(LookupMiss)
		return nil, err
	}
	s.obs.CacheLookup(r.result)
	s.served(r.e, s.now())
	return r.e, nil
}

// served tells an AgeObserver the age of the key served at now.
func (s *Service) served(e *ventry, now time.Time) {
	if ao, ok := s.obs.(AgeObserver); ok {
		ao.CacheAge(now.Sub(e.fetchedAt))
	}
}

type lookupResult struct {
	e      *ventry
	result Lookup
}

// lookup resolves k through the tiers and the KDS, coalesced per key,
// waiting until until (zero: until the fetch ends). The fetch runs on
// behalf of the caller that starts it: its client and nonce go with it
// (for the budget the KDS request is charged to).
func (s *Service) lookup(ctx context.Context, k vkey, until time.Time) (lookupResult, error) {
	client := attest.ClientOf(ctx)
	nonce, hasNonce := attest.NonceOf(ctx)
	start := func() (context.Context, context.CancelFunc) {
		fctx, cancel := s.fetchContext()
		fctx = attest.WithClient(fctx, client)
		if hasNonce {
			fctx = attest.WithNonce(fctx, nonce)
		}
		return fctx, cancel
	}
	for try := 0; ; try++ {
		r, err := s.vflights.do(ctx, k, join{client: client, until: until}, start, func(fctx context.Context) (lookupResult, error) {
			return s.resolve(fctx, k)
		})
		var ref *refusal
		if err != nil && try < 2 && errors.As(err, &ref) && !ref.of(client, nonce, hasNonce) {
			continue // another caller's budget refused the fetch this one joined: start its own
		}
		if errors.Is(err, errStillRunning) {
			if h := s.kds.vcekLim.heldBack(); h > 0 {
				err = &retryLater{err, h}
			}
		}
		if err != nil {
			err = attest.WithReason(attest.ReasonVCEKUnavailable, string(k.product)+" VCEK", err)
		}
		return r, err
	}
}

// refreshLater refreshes a stale entry in the background, at most once a
// minute per entry.
func (s *Service) refreshLater(e *ventry, now time.Time) {
	next := e.nextTry.Load()
	if now.UnixNano() < next || !e.nextTry.CompareAndSwap(next, now.Add(time.Minute).UnixNano()) {
		return
	}
	if !s.track() {
		return
	}
	go func() {
		defer s.wg.Done()
		s.lookup(s.bg, e.key, time.Time{})
	}()
}

// resolve finds the best cached copy of k and, unless it is fresh, asks
// the KDS, falling back to the cached copy within its staleness.
func (s *Service) resolve(ctx context.Context, k vkey) (lookupResult, error) {
	now := s.now()
	best, _ := s.mem.Get(k)
	s.fromTiers(ctx, k.name(), string(k.product)+" VCEK", func() bool { return best != nil && best.state(now) == fresh },
		func(rec *record) error {
			e, err := s.newEntry(k, rec, now)
			if err == nil && (best == nil || e.fetchedAt.After(best.fetchedAt)) {
				best = e
			}
			return err
		})
	if best != nil && best.state(now) == fresh {
		s.mem.Put(best.key, best)
		return lookupResult{best, LookupHit}, nil
	}
	what := string(k.product) + " VCEK"
	var err error
	switch {
	case s.neg.has(k, now):
		err = fmt.Errorf("KDS %s: %w, remembered for %s", what, errNotFound, s.neg.ttl)
	case s.offline:
		err = fmt.Errorf("offline and no usable cached %s for this chip and TCB", what)
	default:
		if err = s.budget.admit(ctx, k); err != nil {
			break
		}
		var der []byte
		der, err = s.kds.get(ctx, KindVCEK, what, VCEKURL(s.base, k.request()), maxCertSize)
		if errors.Is(err, errNotFound) {
			s.neg.put(k, s.now())
		}
		if err == nil {
			rec := &record{DER: der, FetchedAt: s.now()}
			var e *ventry
			if e, err = s.newEntry(k, rec, rec.FetchedAt); err == nil {
				s.neg.del(k)
				s.mem.Put(e.key, e)
				s.persist(ctx, k.name(), rec, e.notAfter.Sub(rec.FetchedAt))
				return lookupResult{e, LookupMiss}, nil
			}
			err = fmt.Errorf("KDS %s: unusable certificate: %v", what, err)
		}
	}
	now = s.now()
	if best != nil && best.state(now) == stale {
		s.mem.Put(best.key, best)
		s.log.Warn("serving a cached VCEK past its refresh point", "product", string(k.product),
			"stale_for", now.Sub(best.refreshAt).Round(time.Second).String(), "max_staleness", s.maxStale.String(), "error", err.Error())
		return lookupResult{best, LookupStale}, nil
	}
	if best != nil {
		err = fmt.Errorf("%w; the cached copy is past its maximum staleness (%s after its refresh point)", err, s.maxStale)
	}
	return lookupResult{}, &attest.Error{Reason: attest.ReasonVCEKUnavailable, Err: err}
}

// errNotNow marks a refusal that depends on the clock (a certificate not
// valid at the time asked about, a CRL issued later): the record itself is
// sound and stays in its tier for other clocks and later times.
var errNotNow = errors.New("not usable at this time")

// fromTiers reads name from the persistent tiers in order until enough()
// holds, giving each record found to take; one that take refuses is
// logged and, unless the refusal is errNotNow, deleted from its tier.
// what names the entry in logs.
func (s *Service) fromTiers(ctx context.Context, name, what string, enough func() bool, take func(*record) error) {
	for _, t := range s.tiers {
		if enough() {
			return
		}
		rec, err := t.get(ctx, name)
		if err != nil {
			s.log.Warn("certificate cache tier failed", "tier", t.kind(), "error", err.Error())
			continue
		}
		if rec == nil {
			continue
		}
		if err := take(rec); errors.Is(err, errNotNow) {
			s.log.Warn("a cached entry is not usable at this time", "tier", t.kind(), "entry", what, "error", err.Error())
		} else if err != nil {
			s.log.Warn("dropping an unusable cached entry", "tier", t.kind(), "entry", what, "error", err.Error())
			t.del(ctx, name)
		}
	}
}

// persist writes a record to every persistent tier, logging failures.
func (s *Service) persist(ctx context.Context, name string, rec *record, ttl time.Duration) {
	for _, t := range s.tiers {
		if err := t.put(ctx, name, rec, ttl); err != nil {
			s.log.Warn("certificate cache tier failed", "tier", t.kind(), "error", err.Error())
		}
	}
}

// Warm fetches the VCEKs of reqs (and the CRLs of their products) into
// every tier, so that the first attestations need no KDS request. The
// requests go one at a time through the rate limit; all errors are
// returned joined.
func (s *Service) Warm(ctx context.Context, reqs []snp.KeyRequest) error {
	var errs []error
	crls := map[crlKey]bool{}
	for _, req := range reqs {
		if _, err := s.entry(ctx, req, time.Time{}); err != nil {
			errs = append(errs, err)
		}
		crls[crlKey{req.Product, snp.SignerVCEK}] = true
	}
	for ck := range crls {
		if _, err := s.crl(ctx, ck, time.Time{}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// negCache remembers KDS 404s for a while.
type negCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[vkey]time.Time
}

const maxNegEntries = 10000

func (n *negCache) has(k vkey, now time.Time) bool {
	if n.ttl <= 0 {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	until, ok := n.m[k]
	return ok && now.Before(until)
}

func (n *negCache) put(k vkey, now time.Time) {
	if n.ttl <= 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil || len(n.m) >= maxNegEntries {
		n.m = make(map[vkey]time.Time)
	}
	n.m[k] = now.Add(n.ttl)
}

func (n *negCache) del(k vkey) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, k)
}
