package certs_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
)

// A bundle exported online and imported into an offline Service on
// another machine (directory) verifies, key and revocation, without a
// single KDS request.
func TestBundleRoundTrip(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, nil)
	e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 1, -time.Hour, 30*24*time.Hour))
	pr, _ := e.chain.Roots.Product(snp.Milan)
	e.kds.SetChain(snp.Milan, snp.SignerVCEK, pemOf(pr.ASK.Raw, pr.ARK.Raw))
	online := newService(t, e.cfg)
	b, err := online.Export(context.Background(), []snp.KeyRequest{e.req}, certs.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.VCEKs) != 1 || len(b.CRLs) != 1 || len(b.Chains) != 1 {
		t.Fatalf("bundle has %d VCEKs, %d CRLs, %d chains; want 1 each", len(b.VCEKs), len(b.CRLs), len(b.Chains))
	}
	var buf bytes.Buffer
	if err := b.Write(&buf); err != nil {
		t.Fatal(err)
	}
	before := len(e.kds.Requests(""))

	air := e.cfg
	air.Dir, air.Offline, air.KDSURL = t.TempDir(), true, "http://127.0.0.1:1"
	read, err := certs.ReadBundle(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := newService(t, air).Import(context.Background(), read); err != nil || res.VCEKs != 1 || res.CRLs != 1 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	if err := e.verify(newService(t, air)); err != nil {
		t.Fatalf("offline from the bundle: %v", err)
	}
	if n := len(e.kds.Requests("")); n != before {
		t.Fatalf("%d KDS requests after the export", n-before)
	}
}

// Import refuses a bundle with anything that does not verify, and then
// stores nothing of it.
func TestImportRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(t *testing.T, e *fakeEnv, b *certs.Bundle)
	}{
		{"VCEK filed under another TCB", func(t *testing.T, e *fakeEnv, b *certs.Bundle) { b.VCEKs[0].TCB = "7308000000000004" }},
		{"VCEK filed under another chip", func(t *testing.T, e *fakeEnv, b *certs.Bundle) {
			b.VCEKs[0].HWID = strings.Repeat("ab", 64)
		}},
		{"VCEK not AMD's", func(t *testing.T, e *fakeEnv, b *certs.Bundle) {
			own, err := testkit.NewChain(testkit.ChainOptions{OwnKeys: true})
			if err != nil {
				t.Fatal(err)
			}
			b.VCEKs[0].DER = own.VCEK()
		}},
		{"CRL not signed by the ARK", func(t *testing.T, e *fakeEnv, b *certs.Bundle) {
			b.CRLs[0].DER[len(b.CRLs[0].DER)-1] ^= 1
		}},
		{"CRL past nextUpdate plus grace", func(t *testing.T, e *fakeEnv, b *certs.Bundle) {
			b.CRLs[0].DER = e.crl(t, 2, -30*24*time.Hour, 24*time.Hour)
		}},
		{"chain not the pinned one", func(t *testing.T, e *fakeEnv, b *certs.Bundle) {
			b.Chains = []certs.BundleChain{{Product: snp.Milan, Signer: snp.SignerVCEK, PEM: string(pemOf(e.chain.Signer.Ark.Raw, e.chain.Signer.Ark.Raw))}}
		}},
		{"chain with the pinned ASK but not the ARK", func(t *testing.T, e *fakeEnv, b *certs.Bundle) {
			b.Chains = []certs.BundleChain{{Product: snp.Milan, Signer: snp.SignerVCEK, PEM: string(pemOf(e.chain.Signer.Ask.Raw, e.chain.Signer.Ask.Raw))}}
		}},
		{"format", func(t *testing.T, e *fakeEnv, b *certs.Bundle) { b.Format = "other/v1" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newFakeEnv(t, nil)
			e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 1, -time.Hour, 30*24*time.Hour))
			b, err := newService(t, e.cfg).Export(context.Background(), []snp.KeyRequest{e.req}, certs.ExportOptions{})
			if b == nil || len(b.VCEKs) != 1 || len(b.CRLs) != 1 {
				t.Fatalf("export: %v", err)
			}
			tc.change(t, e, b)
			air := e.cfg
			air.Dir, air.Offline = t.TempDir(), true
			svc := newService(t, air)
			if _, err := svc.Import(context.Background(), b); err == nil {
				t.Fatal("imported")
			}
			if in := certs.HeldIn(context.Background(), svc, e.req); len(in) != 0 {
				t.Fatalf("a refused bundle's VCEK is held in %v", in)
			}
		})
	}
}

func TestReadBundleRejects(t *testing.T) {
	t.Parallel()
	// A bundle that parses, padded past MaxBundleSize.
	padded := `{"format":"trustgate-certs-bundle/v1"}` + strings.Repeat(" ", certs.MaxBundleSize)
	for _, in := range []string{`{"format":"other"}`, `{"format":"trustgate-certs-bundle/v1","extra":1}`, `not json`, padded} {
		if _, err := certs.ReadBundle(strings.NewReader(in)); err == nil {
			t.Errorf("ReadBundle(%.60q, %d bytes) accepted", in, len(in))
		}
	}
}

// CertChain online serves the KDS's cert_chain only when it is the pinned
// intermediate and ARK, byte for byte.
func TestCertChainPinned(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		ica, ark func(e *fakeEnv) []byte
		want     attest.Reason
	}{
		{"the pinned ASK and ARK", func(e *fakeEnv) []byte { return e.chain.Signer.Ask.Raw }, func(e *fakeEnv) []byte { return e.chain.Signer.Ark.Raw }, ""},
		{"another intermediate", func(e *fakeEnv) []byte { return e.chain.Signer.Ark.Raw }, func(e *fakeEnv) []byte { return e.chain.Signer.Ark.Raw }, attest.ReasonCertChainInvalid},
		{"another ARK", func(e *fakeEnv) []byte { return e.chain.Signer.Ask.Raw }, func(e *fakeEnv) []byte { return e.chain.Signer.Ask.Raw }, attest.ReasonCertChainInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newFakeEnv(t, nil)
			e.kds.SetChain(snp.Milan, snp.SignerVCEK, pemOf(tc.ica(e), tc.ark(e)))
			_, err := newService(t, e.cfg).CertChain(context.Background(), snp.Milan, snp.SignerVCEK)
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

// A bundle cannot roll revocation back either: its CRL, older than the one
// held, is kept out (counted Kept), and the held one still revokes.
func TestImportKeepsNewerCRL(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, nil)
	e.kds.SetCRL(snp.Milan, snp.SignerVCEK, e.crl(t, 2, -time.Hour, 24*time.Hour, e.chain.Signer.Vcek.SerialNumber))
	svc := newService(t, e.cfg)
	if got := attest.ReasonOf(e.verify(svc)); got != attest.ReasonCertRevoked {
		t.Fatalf("with CRL 2: reason %q, want cert_revoked", got)
	}
	old := &certs.Bundle{Format: certs.BundleFormat, Created: e.clock.Now(),
		CRLs: []certs.BundleCRL{{Product: snp.Milan, Signer: snp.SignerVCEK, DER: e.crl(t, 1, 0, 48*time.Hour)}}}
	res, err := svc.Import(context.Background(), old)
	if err != nil || res.Kept != 1 || res.CRLs != 0 {
		t.Fatalf("import of CRL 1: %+v, %v; want it kept out", res, err)
	}
	for _, s := range []*certs.Service{svc, newService(t, e.cfg)} {
		if got := attest.ReasonOf(e.verify(s)); got != attest.ReasonCertRevoked {
			t.Fatalf("after importing CRL 1: reason %q, want cert_revoked", got)
		}
	}
}
