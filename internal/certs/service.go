package certs

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/trustgate/trustgate/internal/lru"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tiered"
)

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
	tiers    *tiered.Tiers[record]
	neg      negCache
	frac     float64
	maxStale time.Duration
	crlGrace time.Duration
	wait     time.Duration // FetchWait; <= 0: none
	budget   *clientBudget

	vflights tiered.Flights[vkey, lookupResult]
	cflights tiered.Flights[crlKey, *crlState]
	crls     map[crlKey]*atomic.Pointer[crlState]
	run      *tiered.Background
}

// New returns a Service configured by cfg, or an error if cfg is invalid
// (a KDS URL that is not http(s) with a host, a RefreshFraction outside
// (0, 1], a negative count or timeout). For `trustgate serve`,
// config.Validate applies the same rules to the keys it passes on, so New
// never refuses a configuration that validated. It does no I/O; call Close
// when done with it.
func New(cfg Config) (*Service, error) {
	cfg.Default(tiered.Defaults{RateInterval: DefaultRateInterval, RateBurst: DefaultRateBurst, Attempts: DefaultAttempts, RedisPrefix: DefaultRedisPrefix})
	if cfg.ClientMissInterval == 0 && cfg.RateInterval > 0 {
		cfg.ClientMissInterval = DefaultClientMissFactor * cfg.RateInterval
	}
	tiered.Or(&cfg.MaxWaiting, DefaultMaxWaiting)
	tiered.Or(&cfg.CRLGrace, DefaultCRLGrace)
	tiered.Or(&cfg.NegativeTTL, DefaultNegativeTTL)
	tiered.Or(&cfg.MemoryEntries, DefaultMemoryEntries)
	tiered.Or(&cfg.KDSURL, DefaultKDSURL)
	if err := cfg.Check("KDS", []string{cfg.KDSURL}, []int{cfg.MemoryEntries, cfg.MaxWaiting}, nil); err != nil {
		return nil, err
	}

	s := &Service{
		base: cfg.KDSURL, offline: cfg.Offline, roots: cfg.Roots, skipPin: cfg.SkipRevocationForUnpinned,
		now: cfg.Clock, log: cfg.Logger, obs: cfg.Observer,
		mem: lru.New[vkey, *ventry](cfg.MemoryEntries), neg: newNegCache(cfg.NegativeTTL),
		frac: cfg.RefreshFraction, maxStale: cfg.MaxStaleness, crlGrace: cfg.CRLGrace,
		wait: cfg.FetchWait, crls: make(map[crlKey]*atomic.Pointer[crlState]),
	}
	s.vflights.Max, s.vflights.MaxWaiting = maxVCEKFetches, cfg.MaxWaiting
	s.vflights.PerClient, s.vflights.ClientWaiting = maxClientFetches, maxClientWaiting
	if s.roots == nil {
		s.roots = snp.AMDRoots()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	o := cfg.Origin("KDS", errNotFound, s.now)
	s.log = o.Log
	limNow := o.Now
	s.kds = &kdsClient{origin: o, obs: s.obs, vcekLim: tiered.NewLimiter(cfg.RateInterval, cfg.RateBurst, o.Now, o.Sleep),
		otherLim: tiered.NewLimiter(cfg.RateInterval, cfg.RateBurst, o.Now, o.Sleep)}
	o.HoldBack = s.kds.holdBack
	s.budget = newClientBudget(cfg.ClientMissInterval, ClientMissBurst, limNow)
	s.tiers = tiered.Open("certificate", s.log, recordCodec, cfg.Dir, cfg.NoDisk, DefaultDir, cfg.Redis, cfg.RedisPrefix)
	for _, p := range snp.Products() {
		for _, sg := range []snp.Signer{snp.SignerVCEK, snp.SignerVLEK} {
			s.crls[crlKey{p, sg}] = new(atomic.Pointer[crlState])
		}
	}
	s.run = tiered.NewBackground(cfg.FetchTimeout)
	return s, nil
}

// Close stops background refreshes and fetches in flight and waits for
// them to end. The Service must not be used afterwards.
func (s *Service) Close() error {
	s.run.Close()
	return nil
}

// HeldBack returns how long from now no request goes to the KDS because
// it answered 429 or 503 with Retry-After (at most MaxHoldBack; 0 when
// none). For a gauge: a KDS outage does not make the service unready
// (cached keys are still served), but it should be seen.
func (s *Service) HeldBack() time.Duration {
	return max(s.kds.vcekLim.HeldBack(), s.kds.otherLim.HeldBack())
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
