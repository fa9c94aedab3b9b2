package certs_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/tiered"
)

// fakeEnv is a fake AMD chain (go-sev-guest's test keys) served by a fake
// KDS, a report signed by its VCEK, and a clock; CRLs are made with the
// chain's ARK key.
type fakeEnv struct {
	chain *testkit.Chain
	kds   *testkit.KDS
	clock *testkit.Clock
	cfg   certs.Config
	ev    snp.Evidence
	req   snp.KeyRequest
}

func newFakeEnv(t *testing.T, rdb redis.UniversalClient) *fakeEnv {
	t.Helper()
	chain, err := testkit.NewChain(testkit.ChainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock(time.Now())
	kds := testkit.NewKDS(t, testkit.KDSOptions{Now: clock.Now})
	if err := kds.AddVCEK(chain.VCEK()); err != nil {
		t.Fatal(err)
	}
	e := &fakeEnv{chain: chain, kds: kds, clock: clock,
		cfg: certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), Dir: t.TempDir(), Clock: clock.Now, Sleep: fakeSleep(clock), Attempts: 2, Redis: rdb, RedisPrefix: "test:" + t.Name() + ":"},
			KDSURL: kds.URL, Roots: chain.Roots,
		},
		ev:  snp.Evidence{Report: chain.Report(testkit.ReportFields{})},
		req: snp.KeyRequest{Product: snp.Milan, Signer: snp.SignerVCEK, HWID: testkit.DefaultChipID[:], TCB: snp.Milan.EncodeTCB(testkit.DefaultTCB)},
	}
	return e
}

func (e *fakeEnv) verify(svc *certs.Service) error {
	_, err := snp.New(snp.Options{Roots: e.chain.Roots, Keys: svc, Revocation: svc, Now: e.clock.Now}).Verify(context.Background(), e.ev)
	return err
}

// crl makes a CRL signed by the chain's ARK, issued at the clock's now
// shifted by from, valid for length.
func (e *fakeEnv) crl(t *testing.T, number int64, from, length time.Duration, serials ...*big.Int) []byte {
	t.Helper()
	now := e.clock.Now()
	der, err := e.chain.CRL(number, now.Add(from), now.Add(from+length), serials...)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// crlBy makes a current CRL issued by a self-signed CA with the given
// subject and key (in the ARK's validity), not by the chain's ARK.
func (e *fakeEnv) crlBy(t *testing.T, subject pkix.Name, key *rsa.PrivateKey) []byte {
	t.Helper()
	ark := e.chain.Signer.Ark
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: subject, NotBefore: ark.NotBefore, NotAfter: ark.NotAfter,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, IsCA: true, BasicConstraintsValid: true}
	raw, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	der, err := testkit.NewCRL(testkit.Cert(raw), key, 1, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// A CRL made with the fake AMD signer that revokes the VCEK (or the ASK
// above it) fails verification with cert_revoked, and no tier still holds
// the key afterwards: revoked from the start, or by the CRL that follows
// one that did not revoke it.
func TestCRLRevokes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		askSerial bool // revoke the ASK rather than the VCEK
		later     bool // revoked by the next CRL
		redis     bool
	}{
		{name: "VCEK"},
		{name: "VCEK by the next CRL", later: true},
		{name: "ASK", askSerial: true},
		{name: "VCEK with Redis", redis: true},
		{name: "ASK by the next CRL with Redis", askSerial: true, later: true, redis: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var rdb redis.UniversalClient
			if tc.redis {
				rdb = testkit.StartRedis(t)
			}
			e := newFakeEnv(t, rdb)
			serial := e.chain.Signer.Vcek.SerialNumber
			if tc.askSerial {
				serial = e.chain.Signer.Ask.SerialNumber
			}
			e.cfg.CRLGrace = time.Hour
			svc := newService(t, e.cfg)
			if tc.later {
				e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 1, -time.Hour, 2*time.Hour))
				if err := e.verify(svc); err != nil {
					t.Fatalf("before revocation: %v", err)
				}
				// The next CRL, after the first has run out (nextUpdate +
				// grace), revokes.
				e.clock.Add(2*time.Hour + time.Minute)
				e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 2, -time.Minute, 24*time.Hour, serial))
			} else {
				e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 1, -time.Hour, 24*time.Hour, serial))
				if _, err := svc.EndorsementKey(context.Background(), e.req); err != nil {
					t.Fatal(err)
				}
			}
			want := []string{"memory", "disk"}
			if tc.redis {
				want = append(want, "redis")
			}
			if in := certs.HeldIn(context.Background(), svc, e.req); !slices.Equal(in, want) {
				t.Fatalf("before: held in %v, want %v", in, want)
			}
			err := e.verify(svc)
			if got := attest.ReasonOf(err); got != attest.ReasonCertRevoked {
				t.Fatalf("reason %s (%v), want cert_revoked", got, err)
			}
			if in := certs.HeldIn(context.Background(), svc, e.req); len(in) != 0 {
				t.Fatalf("a revoked VCEK is still held in %v", in)
			}
			// A restarted Service reads the revoking CRL from its tiers.
			e.kds.SetFault("crl", testkit.Fault{Status: 500})
			if got := attest.ReasonOf(e.verify(newService(t, e.cfg))); got != attest.ReasonCertRevoked {
				t.Fatalf("after a restart: reason %s, want cert_revoked", got)
			}
		})
	}
}

// A CRL that is not AMD's, or is out of date beyond the grace, makes
// verification fail closed with vcek_unavailable (revocation cannot be
// judged: the dependency-unavailable code, SPEC exit 3 / HTTP 503).
func TestCRLFailsClosed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// crl makes what the KDS serves; nil serves nothing (404).
		crl     func(t *testing.T, e *fakeEnv) []byte
		advance time.Duration // clock moved after a first verification with the KDS down
		want    attest.Reason
	}{
		{"current", func(t *testing.T, e *fakeEnv) []byte { return e.crl(t, 1, -time.Hour, 24*time.Hour) }, 0, ""},
		{"not signed by the ARK", func(t *testing.T, e *fakeEnv) []byte {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			return e.crlBy(t, e.chain.Signer.Ark.Subject, key)
		}, 0, attest.ReasonVCEKUnavailable},
		{"signed with the ARK's key in another issuer's name", func(t *testing.T, e *fakeEnv) []byte {
			return e.crlBy(t, pkix.Name{CommonName: "ARK-Milan-but-not"}, e.chain.Signer.Keys.Ark)
		}, 0, attest.ReasonVCEKUnavailable},
		{"nextUpdate not after thisUpdate", func(t *testing.T, e *fakeEnv) []byte { return e.crl(t, 1, -time.Minute, 0) }, 0, attest.ReasonVCEKUnavailable},
		{"not a CRL", func(t *testing.T, e *fakeEnv) []byte { return e.chain.VCEK() }, 0, attest.ReasonVCEKUnavailable},
		{"past nextUpdate plus grace", func(t *testing.T, e *fakeEnv) []byte { return e.crl(t, 1, -10*24*time.Hour, 8*24*time.Hour) }, 0, attest.ReasonVCEKUnavailable},
		{"past nextUpdate within grace", func(t *testing.T, e *fakeEnv) []byte { return e.crl(t, 1, -3*24*time.Hour, 3*24*time.Hour-time.Hour) }, 0, ""},
		{"issued in the future", func(t *testing.T, e *fakeEnv) []byte { return e.crl(t, 1, time.Hour, 24*time.Hour) }, 0, attest.ReasonVCEKUnavailable},
		{"none (404)", nil, 0, attest.ReasonVCEKUnavailable},
		{"KDS down, used until nextUpdate plus grace", func(t *testing.T, e *fakeEnv) []byte { return e.crl(t, 1, -time.Hour, 3*time.Hour) }, 3*time.Hour + time.Minute, ""},
		{"KDS down, past nextUpdate plus grace", func(t *testing.T, e *fakeEnv) []byte { return e.crl(t, 1, -time.Hour, 3*time.Hour) }, 4*time.Hour + time.Minute, attest.ReasonVCEKUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newFakeEnv(t, nil)
			e.cfg.CRLGrace = 2 * time.Hour
			if tc.crl != nil {
				e.kds.SetCRL(snp.Milan, snp.SignerVCEK, tc.crl(t, e))
			}
			svc := newService(t, e.cfg)
			err := e.verify(svc)
			if tc.advance > 0 {
				if err != nil {
					t.Fatalf("before the KDS went down: %v", err)
				}
				e.kds.SetFault("crl", testkit.Fault{Status: 503})
				e.clock.Add(tc.advance)
				err = e.verify(svc)
			}
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

// A CRL is fetched once and then read from memory, however many checks.
func TestCRLFetchedOnce(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, nil)
	e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 1, -time.Hour, 24*time.Hour))
	svc := newService(t, e.cfg)
	for i := 0; i < 20; i++ {
		if err := e.verify(svc); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.kds.Requests("crl")); n != 1 {
		t.Fatalf("%d CRL requests, want 1", n)
	}
}

// A chain whose intermediate is not the pinned one fails, unless the
// Service is told to skip such chains (the --dev-simulator case).
func TestUnpinnedIntermediate(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, nil)
	ek := e.chain.Signer.Vcek
	for _, skip := range []bool{false, true} {
		svc := newService(t, certs.Config{Settings: tiered.Settings{NoDisk: true}, SkipRevocationForUnpinned: skip})
		err := svc.Check(context.Background(), snp.Milan, snp.SignerVCEK, e.chain.Signer.Ask, ek)
		if (err == nil) != skip {
			t.Errorf("skip %t: %v", skip, err)
		}
		if !skip && attest.ReasonOf(err) != attest.ReasonCertChainInvalid {
			t.Errorf("reason %s, want cert_chain_invalid", attest.ReasonOf(err))
		}
	}
}

// Judging at an earlier time (verify --at) neither refuses a current CRL
// as "issued in the future" nor deletes sound cached records: a refusal
// that depends on the clock leaves the tiers as they were.
func TestEarlierClockKeepsCachedRecords(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, nil)
	e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 1, -10*time.Minute, 30*24*time.Hour))
	if err := e.verify(newService(t, e.cfg)); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	e.kds.SetFault("crl", testkit.Fault{Status: 500})
	e.kds.SetFault("vcek", testkit.Fault{Status: 500})

	// Half an hour ago: the CRL from ten minutes ago still counts.
	past := e.cfg
	at := e.clock.Now().Add(-30 * time.Minute)
	past.Clock = func() time.Time { return at }
	if err := e.verify(newService(t, past)); err != nil {
		t.Fatalf("half an hour ago: %v", err)
	}
	// Before the VCEK's validity: refused, but the VCEK stays on disk.
	vcek, err := x509.ParseCertificate(e.chain.VCEK())
	if err != nil {
		t.Fatal(err)
	}
	long := e.cfg
	before := vcek.NotBefore.Add(-time.Hour)
	long.Clock = func() time.Time { return before }
	if _, err := newService(t, long).EndorsementKey(context.Background(), e.req); attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
		t.Fatalf("before the VCEK's validity: %v", err)
	}
	if in := certs.HeldIn(context.Background(), newService(t, e.cfg), e.req); !slices.Contains(in, "disk") {
		t.Fatalf("the VCEK was dropped from disk by a clock-based refusal: held in %v", in)
	}
	if err := e.verify(newService(t, e.cfg)); err != nil {
		t.Fatalf("now, with the KDS down: %v", err)
	}
}

// A CRL older than the one held (a lower CRL number) is refused, whatever
// its dates: the KDS, or whoever answers in its name, cannot roll
// revocation back. The held CRL is used while it is usable, and after
// that revocation cannot be checked (vcek_unavailable), never judged by
// the older CRL.
func TestCRLNoRollback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		restart bool          // judge with a new Service over the same disk tier
		advance time.Duration // after the revoking CRL was taken
		want    attest.Reason
	}{
		// Past the refresh point (1 h), within nextUpdate: the held CRL
		// still revokes.
		{name: "restarted, past the refresh point", restart: true, advance: 90 * time.Minute, want: attest.ReasonCertRevoked},
		// Past nextUpdate plus grace: the held CRL is spent and the older
		// one is not taken instead.
		{name: "past nextUpdate plus grace", advance: 3*time.Hour + time.Minute, want: attest.ReasonVCEKUnavailable},
		{name: "restarted, past nextUpdate plus grace", restart: true, advance: 3*time.Hour + time.Minute, want: attest.ReasonVCEKUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newFakeEnv(t, nil)
			e.cfg.CRLGrace = time.Hour
			serial := e.chain.Signer.Vcek.SerialNumber
			// CRL 2 revokes the VCEK: issued an hour ago, next update in 2 h.
			e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 2, -time.Hour, 3*time.Hour, serial))
			svc := newService(t, e.cfg)
			if got := attest.ReasonOf(e.verify(svc)); got != attest.ReasonCertRevoked {
				t.Fatalf("with CRL 2: reason %q, want cert_revoked", got)
			}
			// The KDS now serves CRL 1, which revokes nothing and looks
			// current: issued later than CRL 2 by its dates, valid for a day.
			e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 1, 0, 24*time.Hour))
			e.clock.Add(tc.advance)
			if tc.restart {
				svc = newService(t, e.cfg)
			}
			err := e.verify(svc)
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
			if n := len(e.kds.Requests("crl")); n < 2 {
				t.Fatalf("%d CRL requests: the older CRL was never offered", n)
			}
		})
	}
}
