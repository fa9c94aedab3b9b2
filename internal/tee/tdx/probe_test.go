package tdx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/testkit"
)

// Offsets in a version 4 quote as testkit makes it: the signed part ends
// at 0x278, the signature data length is there, the signature data follows.
const (
	v4SignedEnd   = tdx.HeaderSize + tdx.Body10Size // 0x278
	v4SigData     = v4SignedEnd + 4                 // quote signature, then attestation key
	v4CertType    = v4SigData + 128                 // u16 certification data type
	v4QECertData  = v4CertType + 6                  // QE report, its signature, auth data, PCK chain
	v4QEAuthLenAt = v4QECertData + 384 + 64         // u16 length of the QE authentication data
)

// resign signs a version 4 quote again with the chain's attestation key
// after edit changed its signed part: what a platform that put those bytes
// in its quote would produce.
func resign(t testing.TB, c *testkit.TDXChain, edit func(q []byte)) func(q []byte) {
	return func(q []byte) {
		edit(q)
		d := sha256.Sum256(q[:v4SignedEnd])
		r, s, err := ecdsa.Sign(rand.Reader, c.AttKey, d[:])
		if err != nil {
			t.Fatal(err)
		}
		r.FillBytes(q[v4SigData : v4SigData+32])
		s.FillBytes(q[v4SigData+32 : v4SigData+64])
	}
}

// selfSigned is a certificate for key that only key signed: a forger's
// TCB signing certificate.
func selfSigned(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "Intel SGX TCB Signing"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Checks of Verifier.Verify that the probe (scripts/probe) found unguarded:
// each case fails with the one check it names disabled.
func TestTDXProbedChecks(t *testing.T) {
	t.Parallel()
	c, other := mustTDXChain(t), mustTDXChain(t)
	forger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	future, err := c.Collateral(testkit.TDXCollateralOptions{Issued: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	otherCol, err := other.Collateral(testkit.TDXCollateralOptions{})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := c.Collateral(testkit.TDXCollateralOptions{SignWith: forger})
	if err != nil {
		t.Fatal(err)
	}
	grown := func(q []byte) []byte {
		q = append(q, make([]byte, tdx.MaxQuoteSize)...)
		binary.LittleEndian.PutUint32(q[v4SignedEnd:], binary.LittleEndian.Uint32(q[v4SignedEnd:])+tdx.MaxQuoteSize)
		return q
	}
	// grownTo makes the quote n bytes long, the signature data longer.
	grownTo := func(n int) func([]byte) []byte {
		return func(q []byte) []byte {
			extra := n - len(q)
			q = append(q, make([]byte, extra)...)
			binary.LittleEndian.PutUint32(q[v4SignedEnd:], binary.LittleEndian.Uint32(q[v4SignedEnd:])+uint32(extra))
			return q
		}
	}
	cases := []struct {
		name   string
		quote  testkit.TDXQuoteFields
		grow   func([]byte) []byte // applied to the quote last
		col    testkit.TDXCollateralOptions
		docs   func(x *testkit.TDXCollateral) [][]byte
		want   attest.Reason
		status string
		advice []string
	}{
		// Framing and header, read only once signed.
		{name: "TEE type SGX, signed", quote: testkit.TDXQuoteFields{Mutate: resign(t, c, func(q []byte) { q[4] = 0 })}, want: attest.ReasonUnsupportedVersion},
		{name: "attestation key type 3, signed", quote: testkit.TDXQuoteFields{Mutate: resign(t, c, func(q []byte) { q[2] = 3 })}, want: attest.ReasonUnsupportedVersion},
		{name: "certification data not a QE report", quote: testkit.TDXQuoteFields{Mutate: func(q []byte) { q[v4CertType] = 5 }}, want: attest.ReasonUnsupportedVersion},
		{name: "QE certification data not a PCK chain", quote: testkit.TDXQuoteFields{Mutate: func(q []byte) {
			n := int(binary.LittleEndian.Uint16(q[v4QEAuthLenAt:]))
			q[v4QEAuthLenAt+2+n] = 4
		}}, want: attest.ReasonUnsupportedVersion},
		{name: "quote larger than MaxQuoteSize", grow: grown, want: attest.ReasonMalformedEvidence},
		{name: "quote one byte over MaxQuoteSize", grow: grownTo(tdx.MaxQuoteSize + 1), want: attest.ReasonMalformedEvidence},
		{name: "quote of exactly MaxQuoteSize", grow: grownTo(tdx.MaxQuoteSize), status: "UpToDate"},
		// Narrowed comparisons: the last byte of each differs.
		{name: "QE report data: the last of its 32 zero bytes set", quote: testkit.TDXQuoteFields{QEReport: func(r []byte) { r[320+63] = 1 }}, want: attest.ReasonSignatureInvalid},
		{name: "QE MRSIGNER: last byte differs from the QE identity's", col: testkit.TDXCollateralOptions{QEIdentity: func(m map[string]any) {
			s := m["mrsigner"].(string)
			m["mrsigner"] = s[:len(s)-2] + "00"
		}}, want: attest.ReasonCertChainInvalid},
		{name: "MRSIGNERSEAM: last byte differs", quote: testkit.TDXQuoteFields{MRSignerSeam: [48]byte{47: 1}}, want: attest.ReasonTCBOutOfDate},

		// Collateral.
		{name: "CRLs of the same names under other keys", docs: func(x *testkit.TDXCollateral) [][]byte {
			return [][]byte{x.TCBInfo, x.QEIdentity, otherCol.PCKCRL, otherCol.RootCRL}
		}, want: attest.ReasonCollateralUnavailable},
		{name: "CRLs not yet current", docs: func(x *testkit.TDXCollateral) [][]byte {
			return [][]byte{x.TCBInfo, x.QEIdentity, future.PCKCRL, future.RootCRL}
		}, want: attest.ReasonCollateralUnavailable},
		{name: "collateral signed by a forger whose certificate is at hand", docs: func(x *testkit.TDXCollateral) [][]byte {
			return [][]byte{forged.TCBInfo, forged.QEIdentity, x.PCKCRL, x.RootCRL, selfSigned(t, forger)}
		}, want: attest.ReasonCollateralInvalid},
		{name: "TCB info version 2", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) { m["version"] = 2 }}, want: attest.ReasonCollateralInvalid},
		{name: "QE identity version 1", col: testkit.TDXCollateralOptions{QEIdentity: func(m map[string]any) { m["version"] = 1 }}, want: attest.ReasonCollateralInvalid},
		{name: "QE MISCSELECT", col: testkit.TDXCollateralOptions{QEIdentity: func(m map[string]any) { m["miscselect"] = "00000001" }}, want: attest.ReasonCertChainInvalid},

		// TCB levels.
		{name: "PCESVN below the top level", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			level(m, 0)["tcb"].(map[string]any)["pcesvn"] = 14
		}}, status: "OutOfDate", advice: []string{"INTEL-SA-00002"}},
		{name: "TDX component 15 below the top level", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			level(m, 0)["tcb"].(map[string]any)["tdxtcbcomponents"].([]any)[15] = map[string]any{"svn": 1}
		}}, status: "OutOfDate", advice: []string{"INTEL-SA-00002"}},
		{name: "a CPUSVN component below the top level", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			level(m, 0)["tcb"].(map[string]any)["sgxtcbcomponents"].([]any)[5] = map[string]any{"svn": 3}
		}}, status: "OutOfDate", advice: []string{"INTEL-SA-00002"}},
		// TDX 1.0 (module version TEE_TCB_SVN[1] = 0): components 0 and 1
		// are compared too, so a module SVN below every level matches none.
		{name: "TDX 1.0 module, version below every level", quote: testkit.TDXQuoteFields{TEETCBSVN: &[16]byte{3, 0, 2}}, want: attest.ReasonTCBOutOfDate},
		{name: "TDX 1.0 module, levels of version 0", quote: testkit.TDXQuoteFields{TEETCBSVN: &[16]byte{3, 0, 2}}, col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			level(m, 0)["tcb"].(map[string]any)["tdxtcbcomponents"].([]any)[1] = map[string]any{"svn": 0}
		}}, status: "UpToDate"},
		{name: "module attributes Intel lists not zero", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			m["tdxModuleIdentities"].([]any)[0].(map[string]any)["attributes"] = "0000000000000001"
		}}, want: attest.ReasonTCBOutOfDate},
		{name: "SEAMATTRIBUTES not zero though Intel lists them", quote: testkit.TDXQuoteFields{SeamAttributes: 1 << 40}, col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			m["tdxModuleIdentities"].([]any)[0].(map[string]any)["attributes"] = "0000000000010000"
		}}, want: attest.ReasonTCBOutOfDate},
		{name: "platform revoked and QE below every level", quote: testkit.TDXQuoteFields{QEISVSVN: 1}, col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			level(m, 0)["tcbStatus"] = "Revoked"
		}}, want: attest.ReasonTCBRevoked},
		{name: "module revoked", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			m["tdxModuleIdentities"].([]any)[0].(map[string]any)["tcbLevels"].([]any)[0].(map[string]any)["tcbStatus"] = "Revoked"
		}}, want: attest.ReasonTCBRevoked},
		{name: "QE revoked", col: testkit.TDXCollateralOptions{QEIdentity: func(m map[string]any) {
			m["tcbLevels"].([]any)[0].(map[string]any)["tcbStatus"] = "Revoked"
		}}, want: attest.ReasonTCBRevoked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			col, err := c.Collateral(tc.col)
			if err != nil {
				t.Fatal(err)
			}
			docs := col.Docs()
			if tc.docs != nil {
				docs = tc.docs(col)
			}
			parsed, err := tdx.ParseCollateral(docs...)
			if err != nil {
				t.Fatal(err)
			}
			q := c.Quote(tc.quote)
			if tc.grow != nil {
				q = tc.grow(q)
			}
			claims, err := tdx.New(tdx.Options{Roots: c.Roots, Collateral: tdx.Static{C: parsed}}).Verify(context.Background(), tdx.Evidence{Quote: q})
			reasonIs(t, err, tc.want)
			if err != nil {
				return
			}
			if claims.TCBStatus != tc.status || len(claims.AdvisoryIDs) != len(tc.advice) || (len(tc.advice) > 0 && claims.AdvisoryIDs[0] != tc.advice[0]) {
				t.Fatalf("tcb_status %q advisory_ids %v, want %q %v", claims.TCBStatus, claims.AdvisoryIDs, tc.status, tc.advice)
			}
		})
	}
}

// A PCK chain that verified once is cached, and its validity window is
// judged again at every use: the same quote, once its PCK has expired, is
// cert_chain_invalid.
func TestTDXCachedChainExpires(t *testing.T) {
	t.Parallel()
	c := mustTDXChain(t)
	var shift atomic.Int64
	v := tdx.New(tdx.Options{Roots: c.Roots, NoCollateral: true, Now: func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }})
	q := c.Quote(testkit.TDXQuoteFields{})
	if _, err := v.Verify(context.Background(), tdx.Evidence{Quote: q}); err != nil {
		t.Fatal(err)
	}
	shift.Store(int64(2 * 365 * 24 * time.Hour))
	_, err := v.Verify(context.Background(), tdx.Evidence{Quote: q})
	reasonIs(t, err, attest.ReasonCertChainInvalid)
}

// The windows and keys of the certificates around a quote: the PCK chain
// is valid only while every certificate in it is (its CA expiring first
// ends it), the PCK key is P-256, a TCB signing certificate that has
// expired signs no collateral, and CRLs past their nextUpdate are not
// current even when the TCB info and QE identity are.
func TestTDXChainAndCollateralWindows(t *testing.T) {
	t.Parallel()
	gone := time.Now().Add(-time.Minute)
	chain := func(o testkit.TDXChainOptions) *testkit.TDXChain {
		c, err := testkit.NewTDXChain(o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name  string
		chain testkit.TDXChainOptions
		stale bool // CRLs issued 40 days ago (nextUpdate 10 days ago)
		want  attest.Reason
	}{
		{name: "PCK CA expired before its PCK", chain: testkit.TDXChainOptions{CAExpires: gone}, want: attest.ReasonCertChainInvalid},
		{name: "PCK key on P-384", chain: testkit.TDXChainOptions{PCKCurve: elliptic.P384()}, want: attest.ReasonCertChainInvalid},
		{name: "TCB signing certificate expired", chain: testkit.TDXChainOptions{TCBSigningExpires: gone}, want: attest.ReasonCollateralInvalid},
		{name: "CRLs past their nextUpdate", stale: true, want: attest.ReasonCollateralUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := chain(tc.chain)
			col, err := c.Collateral(testkit.TDXCollateralOptions{})
			if err != nil {
				t.Fatal(err)
			}
			docs := col.Docs()
			if tc.stale {
				old, err := c.Collateral(testkit.TDXCollateralOptions{Issued: time.Now().Add(-40 * 24 * time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				docs = [][]byte{col.TCBInfo, col.QEIdentity, old.PCKCRL, old.RootCRL}
			}
			parsed, err := tdx.ParseCollateral(docs...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = tdx.New(tdx.Options{Roots: c.Roots, Collateral: tdx.Static{C: parsed}}).Verify(context.Background(), tdx.Evidence{Quote: c.Quote(testkit.TDXQuoteFields{})})
			reasonIs(t, err, tc.want)
		})
	}
}
