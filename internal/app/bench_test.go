package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"encoding/json"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/verifier"
)

// prepared makes n attest requests against s, each on its own nonce, with
// the simulator's reports (signing is outside the measurement).
func prepared(b *testing.B, s *server, g *guest, n int) []v1.AttestRequest {
	b.Helper()
	reqs := make([]v1.AttestRequest, n)
	for i := range reqs {
		ch, err := s.c.Challenge(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = g.request(ch.Nonce, false)
	}
	return reqs
}

func benchServer(b *testing.B) (*server, *App, *guest) {
	s := startServer(b, refYAML(""), func(c *config.Config) { c.NonceTTL = time.Hour })
	return s, s.app, newGuest(b, sim.Options{})
}

// BenchmarkAttestPipeline is the in-process attest use case on simulator
// evidence: nonce check, SEV-SNP verification (chain cached), REPORT_DATA
// binding, policy, nonce consumption and token signing.
func BenchmarkAttestPipeline(b *testing.B) {
	s, a, g := benchServer(b)
	reqs := prepared(b, s, g, b.N+1)
	ctx := context.Background()
	in := func(r v1.AttestRequest) verifier.AttestInput {
		key, err := verifier.ParseTEEPubKey(r.TEEPubKey)
		if err != nil {
			b.Fatal(err)
		}
		return verifier.AttestInput{Nonce: attest.Nonce(r.Nonce), TEE: r.TEE, Report: r.Evidence.Report, CertTable: r.Evidence.CertTable, TEEPubKey: key}
	}
	if _, err := a.Service().Attest(ctx, in(reqs[b.N])); err != nil { // warm the chain cache
		b.Fatal(err)
	}
	inputs := make([]verifier.AttestInput, b.N)
	for i := range inputs {
		inputs[i] = in(reqs[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.Service().Attest(ctx, inputs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkECDSAP384 verifies the signature of one simulator report with
// crypto/ecdsa and nothing else: the floor of BenchmarkAttestPipeline.
func BenchmarkECDSAP384(b *testing.B) {
	c, err := testkit.NewChain(testkit.ChainOptions{})
	if err != nil {
		b.Fatal(err)
	}
	report := c.Report(testkit.ReportFields{})
	pub := c.Signer.Vcek.PublicKey.(*ecdsa.PublicKey)
	digest := sha512.Sum384(report[:0x2A0])
	le := func(f []byte) *big.Int {
		be := slices.Clone(f)
		slices.Reverse(be)
		return new(big.Int).SetBytes(be)
	}
	r, s := le(report[0x2A0:0x2E8]), le(report[0x2E8:0x330])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !ecdsa.Verify(pub, digest[:], r, s) {
			b.Fatal("signature does not verify")
		}
	}
}

// BenchmarkAttestHTTP sends prepared attestations over loopback from 8
// concurrent clients and reports attestations per second end to end.
func BenchmarkAttestHTTP(b *testing.B) {
	s, _, g := benchServer(b)
	reqs := prepared(b, s, g, b.N)
	bodies := make([][]byte, len(reqs))
	for i, r := range reqs {
		bodies[i], _ = json.Marshal(r)
	}
	var next sync.Mutex
	i := 0
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				if i >= len(reqs) {
					next.Unlock()
					return
				}
				r := reqs[i]
				i++
				next.Unlock()
				if _, err := s.c.Attest(context.Background(), r); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "attestations/s")
}
