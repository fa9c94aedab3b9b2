package nitro

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// The real documents' timestamps (testdata/SOURCES.md): their leaf
// certificates live three hours around them.
var realAt = time.Date(2024, 9, 7, 14, 37, 39, 545_000_000, time.UTC)

// realDebugAt is the debug document's timestamp.
var realDebugAt = time.Date(2024, 9, 7, 14, 38, 6, 508_000_000, time.UTC)

func atTime(t time.Time) func() time.Time { return func() time.Time { return t } }

func readDoc(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "nitro", name))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := DecodeDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	return ev.Document
}

// reasonIs asserts err's reason (attest.ReasonOf is internal_error for an
// error that is not an *attest.Error).
func reasonIs(t testing.TB, err error, want attest.Reason) {
	t.Helper()
	if got := attest.ReasonOf(err); got != want {
		t.Fatalf("reason %q (%v), want %s", got, err, want)
	}
}

func TestRealDocumentVerifiesAtItsTime(t *testing.T) {
	t.Parallel()
	v := New(Options{Now: atTime(realAt)})
	c, err := v.Verify(context.Background(), Evidence{Document: readDoc(t, "blocky-nitro-attestation.b64")})
	if err != nil {
		t.Fatal(err)
	}
	if c.TEE != "nitro" || c.Digest != "SHA384" || c.ModuleID == "" {
		t.Fatalf("claims %+v", c)
	}
	if got := time.UnixMilli(int64(c.Timestamp)).UTC(); !got.Equal(realAt) {
		t.Fatalf("timestamp %s, want %s", got, realAt)
	}
	for i := range attest.NitroPCRs {
		if len(*c.PCR(i)) != 48 {
			t.Fatalf("PCR%d is %d bytes", i, len(*c.PCR(i)))
		}
	}
	if allZero(c.PCR0) {
		t.Fatal("PCR0 of a production enclave is zero")
	}
	if err := attest.ExpectReportData(c, c.ReportData); err != nil {
		t.Fatal(err)
	}
	if err := attest.ExpectReportData(c, make([]byte, 64)); attest.ReasonOf(err) != attest.ReasonReportDataMismatch {
		t.Fatalf("a wrong nonce: %v", err)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	if m["pcr0"] != hex.EncodeToString(c.PCR0) || m["tee"] != "nitro" || m["report_data"] != hex.EncodeToString(c.ReportData) {
		t.Fatalf("claims JSON %s", j)
	}
	t.Logf("module %s nonce %d bytes user_data %d public_key %d pcr0 %x", c.ModuleID, len(c.ReportData), len(c.UserData), len(c.PublicKey), c.PCR0[:8])
}

func TestRealDocumentOutsideItsLeafValidity(t *testing.T) {
	t.Parallel()
	doc := readDoc(t, "blocky-nitro-attestation.b64")
	for _, at := range []time.Time{realAt.Add(4 * time.Hour), realAt.Add(-4 * time.Hour), time.Now()} {
		_, err := New(Options{Now: atTime(at)}).Verify(context.Background(), Evidence{Document: doc})
		reasonIs(t, err, attest.ReasonCertChainInvalid)
	}
	// A verifier that verified the chain once still checks validity at
	// every use.
	now := realAt
	v := New(Options{Now: func() time.Time { return now }})
	if _, err := v.Verify(context.Background(), Evidence{Document: doc}); err != nil {
		t.Fatal(err)
	}
	now = realAt.Add(4 * time.Hour)
	_, err := v.Verify(context.Background(), Evidence{Document: doc})
	reasonIs(t, err, attest.ReasonCertChainInvalid)
}

func TestRealDebugDocument(t *testing.T) {
	t.Parallel()
	doc := readDoc(t, "blocky-nitro-attestation-debug.b64")
	_, err := New(Options{Now: atTime(realDebugAt)}).Verify(context.Background(), Evidence{Document: doc})
	reasonIs(t, err, attest.ReasonDebugEnabled)
	c, err := New(Options{Now: atTime(realDebugAt), AllowDebug: true}).Verify(context.Background(), Evidence{Document: doc})
	if err != nil {
		t.Fatal(err)
	}
	if !allZero(c.PCR0) || !allZero(c.PCR1) || !allZero(c.PCR2) {
		t.Fatal("debug document's PCR0-2 are not zero")
	}
	t.Logf("debug doc timestamp %s", time.UnixMilli(int64(c.Timestamp)).UTC())
}

func TestAWSRootIsPinned(t *testing.T) {
	t.Parallel()
	if AWSRoots().Root.Subject.CommonName != "aws.nitro-enclaves" {
		t.Fatal(AWSRoots().Root.Subject)
	}
	if _, err := pinnedRoots(awsRootPEM, "00"+AWSRootFingerprint[2:]); err == nil {
		t.Fatal("a root with another fingerprint was accepted")
	}
}
