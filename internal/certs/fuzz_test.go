package certs_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/tiered"
)

// fuzzEpoch is when the fuzz targets' fake chain was made; they judge at
// fuzzNow, so that a saved input means the same on every run.
var (
	fuzzEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fuzzNow   = fuzzEpoch.Add(30 * 24 * time.Hour)
)

func fuzzChain(f *testing.F) *testkit.Chain {
	f.Helper()
	c, err := testkit.NewChain(testkit.ChainOptions{Created: fuzzEpoch})
	if err != nil {
		f.Fatal(err)
	}
	return c
}

// FuzzCRL feeds the CRL verifier what a KDS or a tier could hold: it
// never panics, and what it accepts is a CRL issued no later than now
// (plus the 5 min skew) whose nextUpdate follows its thisUpdate.
func FuzzCRL(f *testing.F) {
	chain := fuzzChain(f)
	for _, s := range [][]*big.Int{nil, {big.NewInt(0)}, {big.NewInt(1), new(big.Int).Lsh(big.NewInt(1), 70)}} {
		der, err := chain.CRL(3, fuzzNow.Add(-time.Hour), fuzzNow.Add(24*time.Hour), s...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add(chain.VCEK())
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	svc, err := certs.New(certs.Config{Settings: tiered.Settings{NoDisk: true, Offline: true}, Roots: chain.Roots})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Close() })
	f.Fuzz(func(t *testing.T, der []byte) {
		this, next, err := certs.ParseCRL(svc, snp.Milan, der, fuzzNow)
		if err != nil {
			return
		}
		if !next.After(this) || this.After(later(fuzzNow, time.Now()).Add(5*time.Minute)) {
			t.Fatalf("accepted a CRL with thisUpdate %v, nextUpdate %v at %v", this, next, fuzzNow)
		}
	})
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// FuzzBundle feeds ReadBundle and Import what `trustgate certs import` may
// be given: neither panics, and an import that fails stores nothing (the
// disk tier holds the same files as before).
func FuzzBundle(f *testing.F) {
	chain := fuzzChain(f)
	crl, err := chain.CRL(1, fuzzNow.Add(-time.Hour), fuzzNow.Add(24*time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	pr, _ := chain.Roots.Product(snp.Milan)
	tcb := snp.Milan.EncodeTCB(testkit.DefaultTCB)
	good := certs.Bundle{Format: certs.BundleFormat, Created: fuzzNow,
		VCEKs:  []certs.BundleVCEK{{Product: snp.Milan, HWID: hexOf(testkit.DefaultChipID[:]), TCB: tcbHex(tcb), FetchedAt: fuzzNow, DER: chain.VCEK()}},
		CRLs:   []certs.BundleCRL{{Product: snp.Milan, Signer: snp.SignerVCEK, FetchedAt: fuzzNow, DER: crl}},
		Chains: []certs.BundleChain{{Product: snp.Milan, Signer: snp.SignerVCEK, PEM: string(pemOf(pr.ASK.Raw, pr.ARK.Raw))}}}
	for _, b := range []certs.Bundle{good, {Format: certs.BundleFormat, VCEKs: good.VCEKs}, {Format: certs.BundleFormat, CRLs: good.CRLs},
		{Format: certs.BundleFormat, Created: fuzzNow, VCEKs: good.VCEKs, CRLs: []certs.BundleCRL{{Product: snp.Milan, Signer: snp.SignerVCEK, DER: chain.VCEK()}}}} {
		var buf bytes.Buffer
		if err := b.Write(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte(`{"format":"trustgate-certs-bundle/v1","vceks":[{"product":"Turin","hwid":"00","tcb":"zz"}]}`))
	clock := func() time.Time { return fuzzNow }
	// The first seed is a bundle that imports: the fuzzer starts from what
	// gets past every check.
	check, err := certs.New(certs.Config{Settings: tiered.Settings{Dir: f.TempDir(), Offline: true, Clock: clock}, Roots: chain.Roots})
	if err != nil {
		f.Fatal(err)
	}
	if res, err := check.Import(context.Background(), &good); err != nil || res.VCEKs != 1 || res.CRLs != 1 {
		f.Fatalf("the good seed: %+v, %v", res, err)
	}
	check.Close()
	dir := f.TempDir()
	svc, err := certs.New(certs.Config{Settings: tiered.Settings{Dir: dir, Offline: true, Clock: clock}, Roots: chain.Roots})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := certs.ReadBundle(bytes.NewReader(data))
		if err != nil {
			return
		}
		before := files(t, dir)
		if _, err := svc.Import(context.Background(), b); err != nil {
			if after := files(t, dir); after != before {
				t.Fatalf("a refused bundle changed the disk tier:\nbefore %s\nafter  %s", before, after)
			}
		}
	})
}

// files lists the files under dir with their sizes and times, as one string.
func files(t *testing.T, dir string) string {
	t.Helper()
	var out bytes.Buffer
	var walk func(string)
	walk = func(d string) {
		ents, err := os.ReadDir(d)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := d + "/" + e.Name()
			if e.IsDir() {
				walk(p)
				continue
			}
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal([]any{p, st.Size(), st.ModTime()})
			out.Write(b)
		}
	}
	walk(dir)
	return out.String()
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func tcbHex(t snp.TCBVersion) string { return fmt.Sprintf("%016x", uint64(t)) }
