package tdx_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/testkit"
)

func mustTDXChain(t testing.TB) *testkit.TDXChain {
	t.Helper()
	c, err := testkit.NewTDXChain(testkit.TDXChainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func reasonIs(t testing.TB, err error, want attest.Reason) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected rejection: %v", err)
		}
		return
	}
	var e *attest.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *attest.Error; want reason %s", err, want)
	}
	if e.Reason != want {
		t.Fatalf("reason %s (%v), want %s", e.Reason, err, want)
	}
}

func svn(b ...byte) *[16]byte {
	var s [16]byte
	copy(s[:], b)
	return &s
}

// level returns the n-th platform TCB level of a TCB info being built.
func level(m map[string]any, n int) map[string]any {
	return m["tcbLevels"].([]any)[n].(map[string]any)
}

func TestTDXRejections(t *testing.T) {
	t.Parallel()
	c := mustTDXChain(t)
	other := mustTDXChain(t)
	later := func(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }
	cases := []struct {
		name   string
		quote  testkit.TDXQuoteFields
		col    testkit.TDXCollateralOptions
		edit   func(*testkit.TDXCollateral) [][]byte // the documents handed over; nil: all
		opts   tdx.Options                           // Roots and Collateral are filled in
		noCol  bool                                  // no CollateralSource at all
		want   attest.Reason
		status string // on a pass
		advice []string
	}{
		{name: "v4 verifies", status: "UpToDate"},
		{name: "v5 TDX 1.5 body verifies", quote: testkit.TDXQuoteFields{Version: 5}, status: "UpToDate"},
		{name: "v5 TDX 1.0 body verifies", quote: testkit.TDXQuoteFields{Version: 5, BodyType: 2}, status: "UpToDate"},
		{name: "bytes after the quote are ignored", quote: testkit.TDXQuoteFields{Trailing: make([]byte, 3000)}, status: "UpToDate"},
		{name: "without collateral only when asked", opts: tdx.Options{NoCollateral: true}},
		{name: "zero options have no collateral", noCol: true, want: attest.ReasonCollateralUnavailable},

		// Safety floor.
		{name: "debug TD", quote: testkit.TDXQuoteFields{TDAttributes: 1}, want: attest.ReasonDebugEnabled},
		{name: "other TUD bit", quote: testkit.TDXQuoteFields{TDAttributes: 1 << 5}, want: attest.ReasonDebugEnabled},
		{name: "debug TD allowed", quote: testkit.TDXQuoteFields{TDAttributes: 1}, opts: tdx.Options{AllowDebug: true}, status: "UpToDate"},
		{name: "debug TD without collateral", quote: testkit.TDXQuoteFields{TDAttributes: 1}, opts: tdx.Options{NoCollateral: true}, want: attest.ReasonDebugEnabled},

		// Framing.
		{name: "version 3", quote: testkit.TDXQuoteFields{Mutate: func(q []byte) { q[0] = 3 }}, want: attest.ReasonUnsupportedVersion},
		{name: "version 6", quote: testkit.TDXQuoteFields{Mutate: func(q []byte) { q[0] = 6 }}, want: attest.ReasonUnsupportedVersion},
		{name: "v5 SGX body", quote: testkit.TDXQuoteFields{Version: 5, Mutate: func(q []byte) { q[48] = 1 }}, want: attest.ReasonUnsupportedVersion},
		{name: "v5 body size", quote: testkit.TDXQuoteFields{Version: 5, Mutate: func(q []byte) { q[50]++ }}, want: attest.ReasonMalformedEvidence},
		{name: "signature data length overruns", quote: testkit.TDXQuoteFields{Mutate: func(q []byte) { q[0x27B] = 0xff }}, want: attest.ReasonMalformedEvidence},

		// Signatures.
		{name: "body changed", quote: testkit.TDXQuoteFields{Mutate: func(q []byte) { q[0x30+0x88] ^= 1 }}, want: attest.ReasonSignatureInvalid},
		{name: "TEE type changed", quote: testkit.TDXQuoteFields{Mutate: func(q []byte) { q[4] = 0 }}, want: attest.ReasonSignatureInvalid},
		{name: "quote signature changed", quote: testkit.TDXQuoteFields{Mutate: func(q []byte) { q[0x27C+5] ^= 1 }}, want: attest.ReasonSignatureInvalid},
		{name: "attestation key changed", quote: testkit.TDXQuoteFields{Mutate: func(q []byte) { q[0x27C+64+5] ^= 1 }}, want: attest.ReasonSignatureInvalid},
		{name: "QE report changed", quote: testkit.TDXQuoteFields{Mutate: func(q []byte) { q[0x27C+134+200] ^= 1 }}, want: attest.ReasonSignatureInvalid},
		{name: "QE auth data changed", quote: testkit.TDXQuoteFields{Mutate: func(q []byte) { q[0x27C+134+384+64+2] ^= 1 }}, want: attest.ReasonSignatureInvalid},

		// Chain.
		{name: "another root", opts: tdx.Options{Roots: other.Roots}, want: attest.ReasonCertChainInvalid},
		{name: "PCK expired", opts: tdx.Options{NoCollateral: true, Now: later(2 * 365 * 24 * time.Hour)}, want: attest.ReasonCertChainInvalid},
		{name: "PCK not yet valid", opts: tdx.Options{NoCollateral: true, Now: later(-48 * time.Hour)}, want: attest.ReasonCertChainInvalid},

		// CRLs.
		{name: "PCK revoked", col: testkit.TDXCollateralOptions{RevokedByCA: []*big.Int{c.PCK.SerialNumber}}, want: attest.ReasonCertRevoked},
		{name: "PCK CA revoked", col: testkit.TDXCollateralOptions{RevokedByRoot: []*big.Int{c.PCKCA.SerialNumber}}, want: attest.ReasonCertRevoked},
		{name: "TCB signing revoked", col: testkit.TDXCollateralOptions{RevokedByRoot: []*big.Int{c.TCBSigning.SerialNumber}}, want: attest.ReasonCertRevoked},
		{name: "no PCK CRL", edit: func(x *testkit.TDXCollateral) [][]byte { return [][]byte{x.TCBInfo, x.QEIdentity, x.RootCRL} }, want: attest.ReasonCollateralUnavailable},
		{name: "no root CRL", edit: func(x *testkit.TDXCollateral) [][]byte { return [][]byte{x.TCBInfo, x.QEIdentity, x.PCKCRL} }, want: attest.ReasonCollateralUnavailable},
		{name: "CRLs expired", opts: tdx.Options{Now: later(40 * 24 * time.Hour)}, want: attest.ReasonCollateralUnavailable},

		// TCB info and QE identity.
		{name: "no TCB info", edit: func(x *testkit.TDXCollateral) [][]byte { return [][]byte{x.QEIdentity, x.PCKCRL, x.RootCRL} }, want: attest.ReasonCollateralUnavailable},
		{name: "no QE identity", edit: func(x *testkit.TDXCollateral) [][]byte { return [][]byte{x.TCBInfo, x.PCKCRL, x.RootCRL} }, want: attest.ReasonCollateralUnavailable},
		{name: "TCB info of another FMSPC", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) { m["fmspc"] = "00906ED50001" }}, want: attest.ReasonCollateralUnavailable},
		{name: "FMSPC in lower case", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) { m["fmspc"] = "00906ed50000" }}, status: "UpToDate"},
		{name: "TCB info of another PCE", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) { m["pceId"] = "0100" }}, want: attest.ReasonCollateralInvalid},
		{name: "TCB info of another type", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) { m["tcbType"] = 1 }}, want: attest.ReasonCollateralInvalid},
		{name: "QE advisories are reported", col: testkit.TDXCollateralOptions{QEIdentity: func(m map[string]any) {
			m["tcbLevels"].([]any)[0].(map[string]any)["advisoryIDs"] = []any{"INTEL-SA-00003"}
		}}, status: "UpToDate", advice: []string{"INTEL-SA-00003"}},
		{name: "SGX TCB info", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) { m["id"] = "SGX" }}, want: attest.ReasonCollateralInvalid},
		{name: "QE identity of the SGX QE", col: testkit.TDXCollateralOptions{QEIdentity: func(m map[string]any) { m["id"] = "QE" }}, want: attest.ReasonCollateralInvalid},
		{name: "collateral signed by a forger", col: testkit.TDXCollateralOptions{SignWith: other.AttKey}, want: attest.ReasonCollateralInvalid},
		{name: "TCB info changed after signing", edit: func(x *testkit.TDXCollateral) [][]byte {
			ti := bytes.Replace(x.TCBInfo, []byte(`"tcbEvaluationDataNumber":18`), []byte(`"tcbEvaluationDataNumber":19`), 1)
			return [][]byte{ti, x.QEIdentity, x.PCKCRL, x.RootCRL}
		}, want: attest.ReasonCollateralInvalid},
		{name: "TCB info not yet issued", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			m["issueDate"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		}}, want: attest.ReasonCollateralInvalid},
		{name: "QE identity expired", col: testkit.TDXCollateralOptions{QEIdentity: func(m map[string]any) {
			m["nextUpdate"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		}}, want: attest.ReasonCollateralUnavailable},
		{name: "QE of another signer", col: testkit.TDXCollateralOptions{QEIdentity: func(m map[string]any) { m["mrsigner"] = "00" + m["mrsigner"].(string)[2:] }}, want: attest.ReasonCertChainInvalid},
		{name: "QE of another product", col: testkit.TDXCollateralOptions{QEIdentity: func(m map[string]any) { m["isvprodid"] = 1 }}, want: attest.ReasonCertChainInvalid},
		{name: "QE attributes", col: testkit.TDXCollateralOptions{QEIdentity: func(m map[string]any) { m["attributes"] = "13000000000000000000000000000000" }}, want: attest.ReasonCertChainInvalid},

		// TCB levels (Intel QVL's matching).
		{name: "platform level below the top", quote: testkit.TDXQuoteFields{TEETCBSVN: svn(3, 1, 1)}, status: "OutOfDate", advice: []string{"INTEL-SA-00002"}},
		{name: "no platform level", quote: testkit.TDXQuoteFields{TEETCBSVN: svn(3, 1, 0)}, want: attest.ReasonTCBOutOfDate},
		{name: "module version > 0 skips components 0 and 1", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			comps := level(m, 0)["tcb"].(map[string]any)["tdxtcbcomponents"].([]any)
			comps[0], comps[1] = map[string]any{"svn": 9}, map[string]any{"svn": 9}
		}}, status: "UpToDate"},
		{name: "module out of date", quote: testkit.TDXQuoteFields{TEETCBSVN: svn(1, 1, 2)}, status: "OutOfDate", advice: []string{"INTEL-SA-00001"}},
		{name: "module below every level", quote: testkit.TDXQuoteFields{TEETCBSVN: svn(0, 1, 2)}, want: attest.ReasonTCBOutOfDate},
		{name: "no identity of the module's version", quote: testkit.TDXQuoteFields{TEETCBSVN: svn(3, 2, 2)}, want: attest.ReasonTCBOutOfDate},
		{name: "module of another signer", quote: testkit.TDXQuoteFields{MRSignerSeam: [48]byte{1}}, want: attest.ReasonTCBOutOfDate},
		{name: "SEAMATTRIBUTES not zero", quote: testkit.TDXQuoteFields{SeamAttributes: 1 << 40}, want: attest.ReasonTCBOutOfDate},
		{name: "module identity id in lower case", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			m["tdxModuleIdentities"].([]any)[0].(map[string]any)["id"] = "tdx_01"
		}}, status: "UpToDate"},
		{name: "TDX 1.0 body with module out of date is not relaunched", quote: testkit.TDXQuoteFields{Version: 5, BodyType: 2, TEETCBSVN: svn(1, 1, 2)},
			status: "OutOfDate", advice: []string{"INTEL-SA-00001"}},
		{name: "TDX 1.5 relaunch advised (module version > 0)", quote: testkit.TDXQuoteFields{Version: 5, TEETCBSVN: svn(1, 1, 2), TEETCBSVN2: svn(3, 1, 2)},
			status: "TDRelaunchAdvised", advice: []string{"INTEL-SA-00001"}},
		{name: "TDX 1.5 relaunch advised (module version 0)", quote: testkit.TDXQuoteFields{Version: 5, TEETCBSVN: svn(1, 1, 2), TEETCBSVN2: svn(3, 0, 2)},
			status: "TDRelaunchAdvised", advice: []string{"INTEL-SA-00001"}},
		{name: "TDX 1.5 relaunch advised with configuration needed", quote: testkit.TDXQuoteFields{Version: 5, TEETCBSVN: svn(1, 1, 2), TEETCBSVN2: svn(3, 1, 2)},
			col:    testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) { level(m, 0)["tcbStatus"] = "ConfigurationNeeded" }},
			status: "TDRelaunchAdvisedConfigurationNeeded", advice: []string{"INTEL-SA-00001"}},
		{name: "TDX 1.5 relaunch would not reach the latest level", quote: testkit.TDXQuoteFields{Version: 5, TEETCBSVN: svn(1, 1, 2), TEETCBSVN2: svn(2, 1, 2)},
			status: "OutOfDate", advice: []string{"INTEL-SA-00001"}},
		{name: "TDX 1.5 relaunch with an out-of-date QE is not advised", quote: testkit.TDXQuoteFields{Version: 5, TEETCBSVN: svn(1, 1, 2), TEETCBSVN2: svn(3, 1, 2), QEISVSVN: 3},
			status: "OutOfDate", advice: []string{"INTEL-SA-00001"}},
		{name: "configuration needed and module out of date", quote: testkit.TDXQuoteFields{TEETCBSVN: svn(1, 1, 2)},
			col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) { level(m, 0)["tcbStatus"] = "ConfigurationNeeded" }}, status: "OutOfDateConfigurationNeeded", advice: []string{"INTEL-SA-00001"}},
		{name: "SW hardening needed", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) {
			level(m, 0)["tcbStatus"] = "SWHardeningNeeded"
			level(m, 0)["advisoryIDs"] = []any{"INTEL-SA-00615"}
		}}, status: "SWHardeningNeeded", advice: []string{"INTEL-SA-00615"}},
		{name: "platform revoked", col: testkit.TDXCollateralOptions{TCBInfo: func(m map[string]any) { level(m, 0)["tcbStatus"] = "Revoked" }}, want: attest.ReasonTCBRevoked},
		{name: "QE out of date", quote: testkit.TDXQuoteFields{QEISVSVN: 3}, status: "OutOfDate"},
		{name: "QE below every level", quote: testkit.TDXQuoteFields{QEISVSVN: 1}, want: attest.ReasonTCBOutOfDate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			col, err := c.Collateral(tc.col)
			if err != nil {
				t.Fatal(err)
			}
			docs := col.Docs()
			if tc.edit != nil {
				docs = tc.edit(col)
			}
			parsed, err := tdx.ParseCollateral(docs...)
			if err != nil {
				t.Fatal(err)
			}
			o := tc.opts
			if o.Roots == nil {
				o.Roots = c.Roots
			}
			if !tc.noCol {
				o.Collateral = tdx.Static{C: parsed}
			}
			claims, err := tdx.New(o).Verify(context.Background(), tdx.Evidence{Quote: c.Quote(tc.quote)})
			reasonIs(t, err, tc.want)
			if err != nil {
				return
			}
			if claims.TCBStatus != tc.status || len(claims.AdvisoryIDs) != len(tc.advice) {
				t.Fatalf("tcb_status %q advisory_ids %v, want %q %v", claims.TCBStatus, claims.AdvisoryIDs, tc.status, tc.advice)
			}
			for i := range tc.advice {
				if claims.AdvisoryIDs[i] != tc.advice[i] {
					t.Fatalf("advisory_ids %v, want %v", claims.AdvisoryIDs, tc.advice)
				}
			}
		})
	}
}

// One Collateral shared by verifiers of different roots (Intel's and a
// test-only one, as a shared cache would be) keeps their verdicts apart:
// collateral that verified under one root does not count under another.
func TestSharedCollateralKeepsRootsApart(t *testing.T) {
	t.Parallel()
	a, b := mustTDXChain(t), mustTDXChain(t)
	col, err := a.Collateral(testkit.TDXCollateralOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// b's CRLs, so that only the TCB info and QE identity are a's.
	colB, err := b.Collateral(testkit.TDXCollateralOptions{})
	if err != nil {
		t.Fatal(err)
	}
	issuer := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.TCBSigning.Raw})
	shared, err := tdx.ParseCollateral(col.TCBInfo, col.QEIdentity, col.PCKCRL, col.RootCRL, colB.PCKCRL, colB.RootCRL, issuer)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := tdx.New(tdx.Options{Roots: a.Roots, Collateral: tdx.Static{C: shared}}).Verify(ctx, tdx.Evidence{Quote: a.Quote(testkit.TDXQuoteFields{})}); err != nil {
		t.Fatalf("under a's root: %v", err)
	}
	_, err = tdx.New(tdx.Options{Roots: b.Roots, Collateral: tdx.Static{C: shared}}).Verify(ctx, tdx.Evidence{Quote: b.Quote(testkit.TDXQuoteFields{})})
	reasonIs(t, err, attest.ReasonCollateralInvalid)
}
