package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/fetch"
	"github.com/trustgate/trustgate/internal/lru"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tiered"
)

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

// ventry is a verified VCEK with its freshness times: stale from its
// refresh point on, served until MaxStaleness after it (at the latest
// until notAfter).
type ventry struct {
	tiered.Lifetime
	key      vkey
	der      []byte
	cert     *x509.Certificate // der parsed, once: EndorsementCert shares it
	notAfter time.Time
}

// newEntry verifies a VCEK from the KDS or a tier: it must be the VCEK req
// names, signed by the pinned ASK of its product, and valid at now.
func (s *Service) newEntry(k vkey, rec *record, now time.Time) (*ventry, error) {
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, fmt.Errorf("not a certificate: %w", err)
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
		return nil, fmt.Errorf("not signed by the pinned %s ASK: %w", k.product, err)
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("%w: valid %s to %s", tiered.ErrNotNow, cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	e := &ventry{key: k, der: rec.DER, cert: cert, notAfter: cert.NotAfter}
	e.Set(rec.FetchedAt, now, cert.NotAfter, s.frac, 0, tiered.StaleFor(s.maxStale, cert.NotAfter))
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

var _ snp.CertKeySource = (*Service)(nil)

// EndorsementCert is EndorsementKey returning the certificate parsed
// (snp.CertKeySource): the VCEK is parsed once, when it is fetched or read
// from a tier, and the Verifier does not parse it again (it does verify
// it). The caller must not modify it.
func (s *Service) EndorsementCert(ctx context.Context, req snp.KeyRequest) (*x509.Certificate, error) {
	e, err := s.entry(ctx, req, s.waitUntil(ctx))
	if err != nil {
		return nil, err
	}
	return e.cert, nil
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
		return nil, attest.WithReason(attest.ReasonVCEKUnavailable, "", err)
	}
	k := makeVKey(req)
	now := s.now()
	if e, _ := s.mem.Get(k); e != nil {
		switch e.State(now) {
		case tiered.Fresh:
			s.obs.CacheLookup(LookupHit)
			s.served(e, now)
			return e, nil
		case tiered.Stale:
			s.obs.CacheLookup(LookupStale)
			s.served(e, now)
			s.run.RefreshLater(&e.Lifetime, now, func(ctx context.Context) { s.lookup(ctx, k, time.Time{}) })
			return e, nil
		}
	}
	r, err := s.lookup(ctx, k, until)
	if err == nil && r.e.State(s.now()) == tiered.Expired {
		// A fetch in flight since before now answered with what was
		// still servable then; judge again at now.
		r, err = s.lookup(ctx, k, until)
		if err == nil && r.e.State(s.now()) == tiered.Expired {
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
		ao.CacheAge(now.Sub(e.FetchedAt))
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
		fctx, cancel := s.run.FetchContext()
		fctx = attest.WithClient(fctx, client)
		if hasNonce {
			fctx = attest.WithNonce(fctx, nonce)
		}
		return fctx, cancel
	}
	for try := 0; ; try++ {
		r, err := s.vflights.Do(ctx, k, tiered.Join{Client: client, Until: until}, start, func(fctx context.Context) (lookupResult, error) {
			return s.resolve(fctx, k)
		})
		var ref *refusal
		if err != nil && try < 2 && errors.As(err, &ref) && !ref.of(client, nonce, hasNonce) {
			continue // another caller's budget refused the fetch this one joined: start its own
		}
		if errors.Is(err, tiered.ErrStillRunning) {
			if h := s.kds.vcekLim.HeldBack(); h > 0 {
				err = &fetch.RetryLater{Err: err, After: h}
			}
		}
		if err != nil {
			err = attest.WithReason(attest.ReasonVCEKUnavailable, string(k.product)+" VCEK", err)
		}
		return r, err
	}
}

// resolve finds the best cached copy of k and, unless it is fresh, asks
// the KDS, falling back to the cached copy within its staleness.
func (s *Service) resolve(ctx context.Context, k vkey) (lookupResult, error) {
	now := s.now()
	best, _ := s.mem.Get(k)
	best = tiered.Newest(ctx, s.tiers, k.name(), string(k.product)+" VCEK", best,
		func(rec *record) (*ventry, error) { return s.newEntry(k, rec, now) },
		func(e, best *ventry) bool { return best == nil || e.FetchedAt.After(best.FetchedAt) },
		func(e *ventry) bool { return e.State(now) == tiered.Fresh })
	if best != nil && best.State(now) == tiered.Fresh {
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
				s.tiers.Persist(ctx, k.name(), rec, e.notAfter.Sub(rec.FetchedAt))
				return lookupResult{e, LookupMiss}, nil
			}
			err = fmt.Errorf("KDS %s: unusable certificate: %w", what, err)
		}
	}
	now = s.now()
	if best != nil && best.State(now) == tiered.Stale {
		s.mem.Put(best.key, best)
		s.log.Warn("serving a cached VCEK past its refresh point", "product", string(k.product),
			"stale_for", now.Sub(best.RefreshAt).Round(time.Second).String(), "max_staleness", s.maxStale.String(), "error", err.Error())
		return lookupResult{best, LookupStale}, nil
	}
	if best != nil {
		err = fmt.Errorf("%w; the cached copy is past its maximum staleness (%s after its refresh point)", err, s.maxStale)
	}
	return lookupResult{}, attest.Errorf(attest.ReasonVCEKUnavailable, "%w", err)
}

// negCache remembers KDS 404s for a while: the maxNegEntries most
// recently seen chips and TCBs (least recently used forgotten first).
type negCache struct {
	ttl time.Duration // <= 0: nothing is remembered
	m   *lru.Cache[vkey, time.Time]
}

// maxNegEntries bounds the KDS 404s remembered.
const maxNegEntries = 10000

func newNegCache(ttl time.Duration) negCache {
	return negCache{ttl: ttl, m: lru.New[vkey, time.Time](maxNegEntries)}
}

func (n negCache) has(k vkey, now time.Time) bool {
	if n.ttl <= 0 {
		return false
	}
	until, ok := n.m.Get(k)
	return ok && now.Before(until)
}

func (n negCache) put(k vkey, now time.Time) {
	if n.ttl > 0 {
		n.m.Put(k, now.Add(n.ttl))
	}
}

func (n negCache) del(k vkey) { n.m.Remove(k) }
