package certs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/tiered"
)

// fixedKDS is a KDS on 127.0.0.1 that answers every request with body,
// counting the requests.
func fixedKDS(t *testing.T, body []byte) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// What the KDS serves for a VCEK is taken only when it is the VCEK asked
// for, signed by the pinned ASK and valid now (a refused one is not
// cached); a request that names no VCEK the KDS could serve never reaches
// it.
func TestKDSVCEKRefused(t *testing.T) {
	t.Parallel()
	milan, err := testkit.NewChain(testkit.ChainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// go-sev-guest's test keys sign every product's fake chain: this VCEK
	// names Genoa and is signed by the key of the pinned Milan ASK.
	genoa, err := testkit.NewChain(testkit.ChainOptions{Product: snp.Genoa})
	if err != nil {
		t.Fatal(err)
	}
	// go-sev-guest's fake VCEKs have no notBefore (year 1); AMD's do.
	future := resignVCEK(t, milan, func(c *x509.Certificate) { c.NotBefore = time.Now().Add(time.Hour) })
	expired := resignVCEK(t, milan, func(c *x509.Certificate) { c.NotAfter = time.Now().Add(-time.Hour) })
	req := snp.KeyRequest{Product: snp.Milan, Signer: snp.SignerVCEK, HWID: testkit.DefaultChipID[:], TCB: snp.Milan.EncodeTCB(testkit.DefaultTCB)}
	cases := []struct {
		name      string
		serve     []byte
		req       func(snp.KeyRequest) snp.KeyRequest
		asked     bool // whether the KDS is asked at all
		wantError bool
	}{
		{name: "the Milan VCEK", serve: milan.VCEK(), asked: true},
		{name: "a Genoa VCEK under the same ASK key", serve: genoa.VCEK(), asked: true, wantError: true},
		{name: "a VCEK not valid yet", serve: future, asked: true, wantError: true},
		{name: "an expired VCEK", serve: expired, asked: true, wantError: true},
		{name: "a VLEK request", serve: milan.VCEK(), wantError: true,
			req: func(r snp.KeyRequest) snp.KeyRequest { r.Signer = snp.SignerVLEK; return r }},
		{name: "a hwid of 8 bytes for Milan", serve: milan.VCEK(), wantError: true,
			req: func(r snp.KeyRequest) snp.KeyRequest { r.HWID = r.HWID[:8]; return r }},
		{name: "an unknown product", serve: milan.VCEK(), wantError: true,
			req: func(r snp.KeyRequest) snp.KeyRequest { r.Product = "Naples"; return r }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, n := fixedKDS(t, tc.serve)
			svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: srv.Client(), NoDisk: true, Attempts: 1}, KDSURL: srv.URL, Roots: milan.Roots})
			r := req
			if tc.req != nil {
				r = tc.req(r)
			}
			_, err := svc.EndorsementKey(context.Background(), r)
			if tc.wantError != (err != nil) || (err != nil && attest.ReasonOf(err) != attest.ReasonVCEKUnavailable) {
				t.Fatalf("error %v (reason %q), want an error with vcek_unavailable: %t", err, attest.ReasonOf(err), tc.wantError)
			}
			if asked := n.Load() > 0; asked != tc.asked {
				t.Fatalf("KDS asked: %t, want %t", asked, tc.asked)
			}
			if in := certs.HeldIn(context.Background(), svc, r); tc.wantError && len(in) != 0 {
				t.Fatalf("a refused VCEK is held in %v", in)
			}
		})
	}
}

// resignVCEK is the chain's VCEK changed by mutate and signed again by its
// ASK.
func resignVCEK(t *testing.T, c *testkit.Chain, mutate func(*x509.Certificate)) []byte {
	t.Helper()
	v := c.Signer.Vcek
	tmpl := &x509.Certificate{SerialNumber: v.SerialNumber, Issuer: v.Issuer, Subject: v.Subject, NotBefore: v.NotBefore, NotAfter: v.NotAfter,
		SignatureAlgorithm: v.SignatureAlgorithm, ExtraExtensions: v.Extensions}
	mutate(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Signer.Ask, v.PublicKey, c.Signer.Keys.Ask)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// A cached VCEK is served stale while the KDS is down, but never past its
// notAfter, however long MaxStaleness is.
func TestStaleVCEKNotPastNotAfter(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, nil)
	vcek, err := x509.ParseCertificate(e.chain.VCEK())
	if err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock(vcek.NotAfter.Add(-time.Hour))
	e.cfg.Clock, e.cfg.Sleep, e.cfg.MaxStaleness = clock.Now, fakeSleep(clock), 30*24*time.Hour
	svc := newService(t, e.cfg)
	if _, err := svc.EndorsementKey(context.Background(), e.req); err != nil {
		t.Fatal(err)
	}
	e.kds.SetFault("vcek", testkit.Fault{Status: 503})
	clock.Add(45 * time.Minute) // past the refresh point, before notAfter: stale
	if _, err := svc.EndorsementKey(context.Background(), e.req); err != nil {
		t.Fatalf("stale, before notAfter: %v", err)
	}
	clock.Add(30 * time.Minute) // past notAfter, within MaxStaleness
	if _, err := svc.EndorsementKey(context.Background(), e.req); attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
		t.Fatalf("past notAfter: %v, want vcek_unavailable", err)
	}
}

// Check revokes by the endorsement key's serial however large (beyond 64
// bits), and refuses to judge without both certificates.
func TestCheckSerials(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, nil)
	serial := new(big.Int).Lsh(big.NewInt(1), 70)
	revoked := testkit.Cert(resignVCEK(t, e.chain, func(c *x509.Certificate) { c.SerialNumber = serial }))
	e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 1, -time.Hour, 24*time.Hour, serial))
	svc := newService(t, e.cfg)
	ctx := context.Background()
	if err := svc.Check(ctx, snp.Milan, snp.SignerVCEK, e.chain.Signer.Ask, revoked); attest.ReasonOf(err) != attest.ReasonCertRevoked {
		t.Fatalf("serial 2^70 listed: %v, want cert_revoked", err)
	}
	if err := svc.Check(ctx, snp.Milan, snp.SignerVCEK, e.chain.Signer.Ask, e.chain.Signer.Vcek); err != nil {
		t.Fatalf("serial 0, not listed: %v", err)
	}
	for _, certs := range [][2]*x509.Certificate{{nil, revoked}, {e.chain.Signer.Ask, nil}} {
		if err := svc.Check(ctx, snp.Milan, snp.SignerVCEK, certs[0], certs[1]); attest.ReasonOf(err) != attest.ReasonInternalError {
			t.Fatalf("a certificate missing: %v, want internal_error", err)
		}
	}
}

// A VCEK is parsed once, when it is fetched (or read from a tier): every
// lookup hands the Verifier that parse, the DER lookup its bytes.
func TestVCEKParsedOnce(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, nil)
	e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 1, -time.Hour, 24*time.Hour))
	svc := newService(t, e.cfg)
	ctx := context.Background()
	first, err := svc.EndorsementCert(ctx, e.req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := svc.EndorsementCert(ctx, e.req)
	if err != nil {
		t.Fatal(err)
	}
	der, err := svc.EndorsementKey(ctx, e.req)
	if err != nil {
		t.Fatal(err)
	}
	if first != again || !bytes.Equal(der, first.Raw) {
		t.Fatalf("a second parse, or other bytes: same certificate %t, same DER %t", first == again, bytes.Equal(der, first.Raw))
	}
	if err := e.verify(svc); err != nil {
		t.Fatal(err)
	}
	if n := len(e.kds.Requests("vcek")); n != 1 {
		t.Fatalf("%d VCEK requests, want 1", n)
	}
}

// A tier record larger than any real one (a VCEK or CRL record followed by
// megabytes of padding) is refused, from disk and from Redis.
func TestOversizedTierRecordRefused(t *testing.T) {
	t.Parallel()
	for _, tier := range []string{"disk", "redis"} {
		t.Run(tier, func(t *testing.T) {
			t.Parallel()
			var rdb *redis.Client
			if tier == "redis" {
				rdb = testkit.StartRedis(t)
			}
			e := newFakeEnv(t, nil)
			if rdb != nil {
				e.cfg.Redis, e.cfg.NoDisk = rdb, true
			}
			ctx := context.Background()
			if _, err := newService(t, e.cfg).EndorsementKey(ctx, e.req); err != nil {
				t.Fatal(err)
			}
			pad := bytes.Repeat([]byte(" "), 9<<20)
			name := certs.KeyName(e.req)
			if rdb != nil {
				raw, err := rdb.Get(ctx, e.cfg.RedisPrefix+name).Bytes()
				if err != nil {
					t.Fatal(err)
				}
				if err := rdb.Set(ctx, e.cfg.RedisPrefix+name, append(raw, pad...), 0).Err(); err != nil {
					t.Fatal(err)
				}
			} else {
				p := filepath.Join(e.cfg.Dir, "v1", filepath.FromSlash(name)+".json")
				raw, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, append(raw, pad...), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			offline := e.cfg
			offline.Offline = true
			if _, err := newService(t, offline).EndorsementKey(ctx, e.req); attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
				t.Fatalf("a padded record in %s: %v, want vcek_unavailable", tier, err)
			}
		})
	}
}
