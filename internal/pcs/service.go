package pcs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/lru"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/tiered"
)

// Service is the Intel collateral service: a tdx.CollateralSource with
// memory, disk and Redis tiers in front of a rate-limited PCS client. It is
// safe for concurrent use.
type Service struct {
	base, rootCRLURL string
	offline          bool
	roots            *tdx.Roots
	now              func() time.Time
	log              *slog.Logger
	pcs              *client
	mem              *lru.Cache[docKey, *entry]
	tiers            *tiered.Tiers[record]
	frac             float64
	maxAge           time.Duration
	maxStale         time.Duration
	wait             time.Duration

	flights   tiered.Flights[docKey, *entry]
	assembled *lru.Cache[asmKey, *assembly]
	run       *tiered.Background
}

// DefaultDir is the disk tier's default directory:
// os.UserCacheDir()/trustgate/pcs.
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "trustgate", "pcs"), nil
}

// New returns a Service configured by cfg, or an error if cfg is invalid
// (a URL that is not http(s) with a host, a refresh fraction outside
// (0, 1], negative counts). It does no I/O; call Close when done.
func New(cfg Config) (*Service, error) {
	cfg.Default(tiered.Defaults{RateInterval: DefaultRateInterval, RateBurst: DefaultRateBurst, Attempts: DefaultAttempts, RedisPrefix: DefaultRedisPrefix})
	tiered.Or(&cfg.MaxAge, DefaultMaxAge)
	tiered.Or(&cfg.URL, DefaultURL)
	tiered.Or(&cfg.RootCRLURL, DefaultRootCRLURL)
	if err := cfg.Check("PCS", []string{cfg.URL, cfg.RootCRLURL}, nil, nil); err != nil {
		return nil, err
	}
	s := &Service{
		base: strings.TrimRight(cfg.URL, "/"), rootCRLURL: cfg.RootCRLURL, offline: cfg.Offline, roots: cfg.Roots,
		now: cfg.Clock, log: cfg.Logger, mem: lru.New[docKey, *entry](4096),
		frac: cfg.RefreshFraction, maxAge: cfg.MaxAge, maxStale: cfg.MaxStaleness, wait: cfg.FetchWait,
		assembled: lru.New[asmKey, *assembly](maxAssembled), run: tiered.NewBackground(cfg.FetchTimeout),
	}
	s.flights.Max, s.flights.MaxWaiting = maxFlights, maxWaiting
	if s.roots == nil {
		s.roots = tdx.IntelRoots()
	}
	if s.now == nil {
		s.now = time.Now
	}
	o := cfg.Origin("PCS", errNotFound, s.now)
	s.log = o.Log
	s.pcs = &client{origin: o, lim: tiered.NewLimiter(cfg.RateInterval, max(cfg.RateBurst, 1), o.Now, o.Sleep)}
	o.HoldBack = s.pcs.lim.DeferUntil
	s.tiers = tiered.Open("collateral", s.log, recordCodec, cfg.Dir, cfg.NoDisk, DefaultDir, cfg.Redis, cfg.RedisPrefix)
	return s, nil
}

// Close stops background refreshes and fetches and waits for them.
func (s *Service) Close() error {
	s.run.Close()
	return nil
}

// HeldBack is how long from now no request goes to PCS because it
// answered 429 or 503 with Retry-After (0 when none).
func (s *Service) HeldBack() time.Duration { return s.pcs.lim.HeldBack() }

// docKind is one kind of PCS document.
type docKind uint8

const (
	kindTCB docKind = iota + 1
	kindQE
	kindPCKCRL
	kindRootCRL
)

// docKey names one document: the TCB info of an FMSPC, the QE identity,
// the CRL of a PCK CA ("platform" or "processor"), the root's CRL.
type docKey struct {
	kind  docKind
	fmspc [6]byte
	ca    string
}

// name is the tier key and the bundle's name of the document.
func (k docKey) name() string {
	switch k.kind {
	case kindTCB:
		return fmt.Sprintf("tcb/%X", k.fmspc[:])
	case kindQE:
		return "qe"
	case kindPCKCRL:
		return "pckcrl/" + k.ca
	}
	return "rootcrl"
}

// parseName reads a docKey from its name.
func parseName(n string) (docKey, error) {
	switch {
	case n == "qe":
		return docKey{kind: kindQE}, nil
	case n == "rootcrl":
		return docKey{kind: kindRootCRL}, nil
	case n == "pckcrl/platform" || n == "pckcrl/processor":
		return docKey{kind: kindPCKCRL, ca: strings.TrimPrefix(n, "pckcrl/")}, nil
	case strings.HasPrefix(n, "tcb/"):
		fm, err := ParseFMSPC(strings.TrimPrefix(n, "tcb/"))
		return docKey{kind: kindTCB, fmspc: fm}, err
	}
	return docKey{}, fmt.Errorf("unknown collateral document %q", n)
}

// ParseFMSPC reads an FMSPC: 12 hex digits, either case.
func ParseFMSPC(s string) ([6]byte, error) {
	var fm [6]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 6 {
		return fm, fmt.Errorf("FMSPC %q is not 12 hex digits", s)
	}
	return [6]byte(b), nil
}

func (k docKey) what() string {
	switch k.kind {
	case kindTCB:
		return fmt.Sprintf("TCB info for FMSPC %X", k.fmspc[:])
	case kindQE:
		return "TD QE identity"
	case kindPCKCRL:
		return "PCK " + k.ca + " CA CRL"
	}
	return "Root CA CRL"
}

// url is where PCS serves k, and headers the response headers that may
// carry its issuer chain (PCS v4 names the TCB info's TCB-Info-Issuer-Chain;
// v3 named it SGX-TCB-Info-Issuer-Chain).
func (s *Service) url(k docKey) (u string, headers []string) {
	switch k.kind {
	case kindTCB:
		return fmt.Sprintf("%s/tdx/certification/v4/tcb?fmspc=%X", s.base, k.fmspc[:]), []string{"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain"}
	case kindQE:
		return s.base + "/tdx/certification/v4/qe/identity", []string{"SGX-Enclave-Identity-Issuer-Chain"}
	case kindPCKCRL:
		return s.base + "/sgx/certification/v4/pckcrl?ca=" + k.ca + "&encoding=der", []string{"SGX-PCK-CRL-Issuer-Chain"}
	}
	return s.rootCRLURL, nil
}

// entry is a verified document with its freshness times: stale from its
// refresh point on, served until MaxStaleness after it (never past its
// nextUpdate).
type entry struct {
	tiered.Lifetime
	key    docKey
	rec    *record
	col    *tdx.Collateral // the document and its issuer chain, verified
	issued time.Time
	next   time.Time // nextUpdate
}

// newEntry verifies rec as the document k names, at now: it is that
// document (kind, FMSPC, CA), it verifies under the pinned root, it is not
// issued later than now (5 min skew) and not past its nextUpdate.
func (s *Service) newEntry(k docKey, rec *record, now time.Time) (*entry, error) {
	docs := [][]byte{rec.Body}
	if len(rec.Chain) > 0 {
		docs = append(docs, rec.Chain)
	}
	col, err := tdx.ParseCollateral(docs...)
	if err != nil {
		return nil, err
	}
	e := &entry{key: k, rec: rec, col: col}
	root := s.roots.Root
	switch k.kind {
	case kindTCB:
		if len(col.TCBInfos) != 1 || len(col.QEIdentities) != 0 || len(col.CRLs) != 0 {
			return nil, errors.New("not one TCB info")
		}
		ti := col.TCBInfos[0]
		if ti.FMSPCBytes() != k.fmspc {
			return nil, fmt.Errorf("it is the TCB info of FMSPC %s", ti.FMSPC)
		}
		e.issued, e.next = ti.IssueDate, ti.NextUpdate
	case kindQE:
		if len(col.QEIdentities) != 1 || len(col.TCBInfos) != 0 || len(col.CRLs) != 0 {
			return nil, errors.New("not one QE identity")
		}
		qe := col.QEIdentities[0]
		if qe.ID != "TD_QE" {
			return nil, fmt.Errorf("it is the identity of %q, not TD_QE", qe.ID)
		}
		e.issued, e.next = qe.IssueDate, qe.NextUpdate
	default:
		if len(col.CRLs) != 1 || len(col.TCBInfos) != 0 || len(col.QEIdentities) != 0 {
			return nil, errors.New("not one CRL")
		}
		crl := col.CRLs[0]
		byRoot := string(crl.RawIssuer) == string(root.RawSubject)
		if k.kind == kindRootCRL && !byRoot {
			return nil, fmt.Errorf("a CRL of %q, not of the root", crl.Issuer.CommonName)
		}
		if k.kind == kindPCKCRL && (byRoot || !strings.Contains(strings.ToLower(crl.Issuer.CommonName), k.ca)) {
			return nil, fmt.Errorf("a CRL of %q, not of the PCK %s CA", crl.Issuer.CommonName, k.ca)
		}
		e.issued, e.next = crl.ThisUpdate, crl.NextUpdate
	}
	if err := col.Verify(s.roots); err != nil {
		return nil, err
	}
	if !e.next.After(e.issued) {
		return nil, errors.New("its nextUpdate is not after its issue date")
	}
	if e.issued.After(now.Add(futureSkew)) {
		return nil, fmt.Errorf("%w: issued %s", tiered.ErrNotNow, e.issued.Format(time.RFC3339))
	}
	if now.After(e.next) {
		return nil, fmt.Errorf("%w: expired %s (nextUpdate)", tiered.ErrNotNow, e.next.Format(time.RFC3339))
	}
	e.Set(rec.FetchedAt, now, e.next, s.frac, s.maxAge, tiered.StaleFor(s.maxStale, e.next))
	return e, nil
}

// newer reports whether e was issued after o (nil o: true).
func (e *entry) newer(o *entry) bool { return o == nil || e.issued.After(o.issued) }
