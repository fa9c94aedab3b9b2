package snp_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/uuid"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
)

func mustChain(t testing.TB, o testkit.ChainOptions) *testkit.Chain {
	t.Helper()
	c, err := testkit.NewChain(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantReason(t testing.TB, err error, want attest.Reason) {
	t.Helper()
	var e *attest.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *attest.Error; want reason %s", err, want)
	}
	if e.Reason != want {
		t.Fatalf("reason %s (%v), want %s", e.Reason, err, want)
	}
}

func verify(c *testkit.Chain, ev snp.Evidence, o snp.Options) (*attest.Claims, error) {
	if o.Roots == nil {
		o.Roots = c.Roots
	}
	return snp.New(o).Verify(context.Background(), ev)
}

// Each product's fake evidence verifies, so every rejection below is caused
// by the one thing the case changes.
func TestFakeEvidenceVerifies(t *testing.T) {
	t.Parallel()
	for _, p := range snp.Products() {
		for _, signer := range []snp.Signer{snp.SignerVCEK, snp.SignerVLEK} {
			t.Run(string(p)+"/"+string(signer), func(t *testing.T) {
				t.Parallel()
				c := mustChain(t, testkit.ChainOptions{Product: p})
				ev := snp.Evidence{Report: c.Report(testkit.ReportFields{Signer: signer}), CertTable: c.CertTable()}
				claims, err := verify(c, ev, snp.Options{})
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if claims.Product != string(p) || claims.Signer != string(signer) {
					t.Fatalf("claims say %s/%s", claims.Product, claims.Signer)
				}
				if got := claims.ReportedTCB; (p == snp.Turin) != (got.FMC != nil) || got.SNP != testkit.DefaultTCB.SNP {
					t.Fatalf("reported_tcb %+v", got)
				}
			})
		}
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	milan := mustChain(t, testkit.ChainOptions{})
	turin := mustChain(t, testkit.ChainOptions{Product: snp.Turin})
	good := milan.Report(testkit.ReportFields{})

	selfMade := mustChain(t, testkit.ChainOptions{OwnKeys: true})
	expired := mustChain(t, testkit.ChainOptions{Created: time.Now().AddDate(-8, 0, 0)})
	otherTCB := testkit.DefaultTCB
	otherTCB.Microcode++
	tcbChain := mustChain(t, testkit.ChainOptions{CertTCB: &otherTCB})
	turinFMC := testkit.DefaultTCB
	turinFMC.FMC = func(v uint8) *uint8 { return &v }(*turinFMC.FMC + 1)
	turinTCBChain := mustChain(t, testkit.ChainOptions{Product: snp.Turin, CertTCB: &turinFMC})
	otherChip := testkit.DefaultChipID
	otherChip[5] ^= 0xff
	chipChain := mustChain(t, testkit.ChainOptions{CertHWID: otherChip[:]})
	lastByte := testkit.DefaultChipID
	lastByte[63] ^= 0x01 // Milan and Genoa compare all 64 bytes
	lastByteChain := mustChain(t, testkit.ChainOptions{CertHWID: lastByte[:]})

	oid := func(arc ...int) asn1.ObjectIdentifier {
		return append(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1}, arc...)
	}
	zeroInt, _ := asn1.Marshal(0)
	oneInt, _ := asn1.Marshal(1)
	unknownSPL := mustChain(t, testkit.ChainOptions{Extensions: func(e []pkix.Extension) []pkix.Extension {
		return append(e, pkix.Extension{Id: oid(3, 10), Value: zeroInt})
	}})
	turinReservedSPL := mustChain(t, testkit.ChainOptions{Product: snp.Turin, Extensions: func(e []pkix.Extension) []pkix.Extension {
		for i := range e {
			if e[i].Id.Equal(oid(3, 6)) {
				e[i].Value = oneInt
			}
		}
		return e
	}})
	twice := (&abi.CertTable{Entries: []abi.CertTableEntry{
		{GUID: uuid.MustParse(abi.VcekGUID), RawCert: milan.VCEK()},
		{GUID: uuid.MustParse(abi.VcekGUID), RawCert: milan.VCEK()},
	}}).Marshal()
	v3Reserved := milan.Report(testkit.ReportFields{Version: 3, Mutate: func(r []byte) { r[0x200] = 1 }})
	v4Reserved := milan.Report(testkit.ReportFields{Version: 4, Mutate: func(r []byte) { r[0x207] = 1 }})
	saysVLEK := milan.Report(testkit.ReportFields{Mutate: func(r []byte) { r[0x48] |= 1 << 2 }})
	saysVCEK := milan.Report(testkit.ReportFields{Signer: snp.SignerVLEK, Mutate: func(r []byte) { r[0x48] &^= 7 << 2 }})

	padded := bytes.Clone(good)
	padded[len(padded)-1] = 1
	debug := milan.Report(testkit.ReportFields{Policy: testkit.DebugPolicy})

	cases := []struct {
		name  string
		chain *testkit.Chain
		ev    snp.Evidence
		opts  snp.Options
		want  attest.Reason
	}{
		{"signature padding not zero", milan, snp.Evidence{Report: padded, EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonSignatureInvalid},
		{"chain under a self-made ARK, AMD roots", selfMade, snp.Evidence{Report: selfMade.Report(testkit.ReportFields{}), CertTable: selfMade.CertTable()}, snp.Options{Roots: snp.AMDRoots()}, attest.ReasonCertChainInvalid},
		{"chain under a self-made ARK, other pinned root", milan, snp.Evidence{Report: selfMade.Report(testkit.ReportFields{}), CertTable: selfMade.CertTable()}, snp.Options{}, attest.ReasonCertChainInvalid},
		{"expired endorsement key", expired, snp.Evidence{Report: expired.Report(testkit.ReportFields{}), EndorsementKey: expired.VCEK()}, snp.Options{}, attest.ReasonCertChainInvalid},
		{"VCEK TCB differs from REPORTED_TCB", tcbChain, snp.Evidence{Report: tcbChain.Report(testkit.ReportFields{}), EndorsementKey: tcbChain.VCEK()}, snp.Options{}, attest.ReasonTCBMismatch},
		{"VLEK TCB differs from REPORTED_TCB", tcbChain, snp.Evidence{Report: tcbChain.Report(testkit.ReportFields{Signer: snp.SignerVLEK}), EndorsementKey: tcbChain.VLEK()}, snp.Options{}, attest.ReasonTCBMismatch},
		{"Turin VCEK FMC differs from REPORTED_TCB", turinTCBChain, snp.Evidence{Report: turinTCBChain.Report(testkit.ReportFields{}), EndorsementKey: turinTCBChain.VCEK()}, snp.Options{}, attest.ReasonTCBMismatch},
		{"VCEK of another chip, same key", chipChain, snp.Evidence{Report: chipChain.Report(testkit.ReportFields{}), EndorsementKey: chipChain.VCEK()}, snp.Options{}, attest.ReasonCertChainInvalid},
		{"VCEK of another chip, last byte differs", lastByteChain, snp.Evidence{Report: lastByteChain.Report(testkit.ReportFields{}), EndorsementKey: lastByteChain.VCEK()}, snp.Options{}, attest.ReasonCertChainInvalid},
		{"VLEK cert for a VCEK-signed report", milan, snp.Evidence{Report: good, EndorsementKey: milan.VLEK()}, snp.Options{}, attest.ReasonSignatureInvalid},
		{"Turin CPU, key chained to the Milan root", milan, snp.Evidence{Report: turin.Report(testkit.ReportFields{}), EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonCertChainInvalid},
		{"real VCEK of another chip", milan, snp.Evidence{Report: readFile(t, "trustee-report.bin"), EndorsementKey: readFile(t, "gosevguest-milan-vcek.der")}, snp.Options{Roots: snp.AMDRoots()}, attest.ReasonSignatureInvalid},
		{"version 1", milan, snp.Evidence{Report: milan.Report(testkit.ReportFields{Version: 1}), EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonUnsupportedVersion},
		{"version 6", milan, snp.Evidence{Report: milan.Report(testkit.ReportFields{Version: 6}), EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonUnsupportedVersion},
		{"debug", milan, snp.Evidence{Report: debug, EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonDebugEnabled},
		{"reserved 0x1F8-0x207 not zero in a version 3 report", milan, snp.Evidence{Report: v3Reserved, EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonMalformedEvidence},
		{"reserved 0x1F8-0x207 not zero in a version 4 report", milan, snp.Evidence{Report: v4Reserved, EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonMalformedEvidence},
		{"SIGNING_KEY says VLEK, a VCEK signed", milan, snp.Evidence{Report: saysVLEK, EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonCertChainInvalid},
		{"SIGNING_KEY says VCEK, a VLEK signed", milan, snp.Evidence{Report: saysVCEK, EndorsementKey: milan.VLEK()}, snp.Options{}, attest.ReasonCertChainInvalid},
		{"certificate table names the VCEK twice", milan, snp.Evidence{Report: good, CertTable: twice}, snp.Options{}, attest.ReasonMalformedEvidence},
		{"VCEK with an unknown AMD SPL extension", unknownSPL, snp.Evidence{Report: unknownSPL.Report(testkit.ReportFields{}), EndorsementKey: unknownSPL.VCEK()}, snp.Options{}, attest.ReasonCertChainInvalid},
		{"Turin VCEK with a non-zero reserved SPL", turinReservedSPL, snp.Evidence{Report: turinReservedSPL.Report(testkit.ReportFields{}), EndorsementKey: turinReservedSPL.VCEK()}, snp.Options{}, attest.ReasonCertChainInvalid},
		{"policy reserved bit 17 clear", milan, snp.Evidence{Report: milan.Report(testkit.ReportFields{Policy: 0x10000}), EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonMalformedEvidence},
		{"empty", milan, snp.Evidence{EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonMalformedEvidence},
		{"truncated", milan, snp.Evidence{Report: good[:snp.ReportSize-1], EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonMalformedEvidence},
		{"oversized", milan, snp.Evidence{Report: append(bytes.Clone(good), 0), EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonMalformedEvidence},
		{"random bytes", milan, snp.Evidence{Report: randomBytes(1, snp.ReportSize), EndorsementKey: milan.VCEK()}, snp.Options{}, attest.ReasonSignatureInvalid},
		{"random certificate table", milan, snp.Evidence{Report: good, CertTable: randomBytes(2, 4096)}, snp.Options{}, attest.ReasonMalformedEvidence},
		{"no key at hand, offline", milan, snp.Evidence{Report: good}, snp.Options{}, attest.ReasonVCEKUnavailable},
		{"no VLEK at hand", milan, snp.Evidence{Report: milan.Report(testkit.ReportFields{Signer: snp.SignerVLEK})}, snp.Options{Keys: failingKeys{}}, attest.ReasonVCEKUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := verify(tc.chain, tc.ev, tc.opts)
			wantReason(t, err, tc.want)
		})
	}
}

type failingKeys struct{}

func (failingKeys) EndorsementKey(context.Context, snp.KeyRequest) ([]byte, error) {
	return nil, errors.New("KDS down")
}

func randomBytes(seed uint64, n int) []byte {
	r := mrand.New(mrand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Every single-bit change anywhere in the signed part of a report is
// rejected as signature_invalid: nothing signed is interpreted before the
// signature over it verifies. Checked on fake evidence of every product
// and on a real Turin report.
func TestAnyBitFlipInSignedPart(t *testing.T) {
	t.Parallel()
	type subject struct {
		name   string
		report []byte
		key    []byte
		v      *snp.Verifier
	}
	var subjects []subject
	for _, p := range snp.Products() {
		c := mustChain(t, testkit.ChainOptions{Product: p})
		subjects = append(subjects, subject{string(p), c.Report(testkit.ReportFields{}), c.VCEK(), snp.New(snp.Options{Roots: c.Roots})})
	}
	real := readFile(t, "openanolis-trustee-turin-report.bin")
	realKey := readFile(t, "openanolis-trustee-turin-vcek.der")
	subjects = append(subjects, subject{"real Turin", real, realKey, snp.New(snp.Options{})})

	for _, s := range subjects {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			if _, err := s.v.Verify(context.Background(), snp.Evidence{Report: s.report, EndorsementKey: s.key}); err != nil {
				t.Fatalf("unmodified report: %v", err)
			}
			var wg sync.WaitGroup
			errs := make(chan string, 8)
			for w := 0; w < 2; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for bit := w; bit < 0x2A0*8; bit += 2 {
						r := bytes.Clone(s.report)
						r[bit/8] ^= 1 << (bit % 8)
						_, err := s.v.Verify(context.Background(), snp.Evidence{Report: r, EndorsementKey: s.key})
						if attest.ReasonOf(err) != attest.ReasonSignatureInvalid {
							select {
							case errs <- fmt.Sprintf("bit %d (byte %#x): %s", bit, bit/8, errString(err)):
							default:
							}
							return
						}
					}
				}(w)
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
		})
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "snp", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func errString(err error) string {
	if err == nil {
		return "accepted"
	}
	return err.Error()
}

// --dev-simulator trusts the simulator's ARK key: a chain under it that
// comes with the evidence verifies; a self-made chain still does not.
func TestTrustedARKKey(t *testing.T) {
	t.Parallel()
	sim := mustChain(t, testkit.ChainOptions{})
	own := mustChain(t, testkit.ChainOptions{OwnKeys: true})
	roots := snp.AMDRoots().WithARKKey(&sim.Signer.Keys.Ark.PublicKey)
	v := snp.New(snp.Options{Roots: roots})
	if _, err := v.Verify(context.Background(), snp.Evidence{Report: sim.Report(testkit.ReportFields{}), CertTable: sim.CertTable()}); err != nil {
		t.Fatalf("simulator chain: %v", err)
	}
	_, err := v.Verify(context.Background(), snp.Evidence{Report: own.Report(testkit.ReportFields{}), CertTable: own.CertTable()})
	wantReason(t, err, attest.ReasonCertChainInvalid)
	// Without the key the simulator's chain is refused.
	_, err = snp.New(snp.Options{}).Verify(context.Background(), snp.Evidence{Report: sim.Report(testkit.ReportFields{}), CertTable: sim.CertTable()})
	wantReason(t, err, attest.ReasonCertChainInvalid)
}

// The same fake evidence verifies in a version 5 report, where
// 0x1F8–0x207 hold the mitigation vectors, and with one VCEK in the table:
// the two cases above fail for the one thing they change.
func TestReservedAndTableCounterparts(t *testing.T) {
	t.Parallel()
	milan := mustChain(t, testkit.ChainOptions{})
	v5 := milan.Report(testkit.ReportFields{Mutate: func(r []byte) { r[0x200] = 1 }})
	if _, err := verify(milan, snp.Evidence{Report: v5, EndorsementKey: milan.VCEK()}, snp.Options{}); err != nil {
		t.Fatalf("version 5 with CURRENT_MIT_VECTOR set: %v", err)
	}
	once := (&abi.CertTable{Entries: []abi.CertTableEntry{{GUID: uuid.MustParse(abi.VcekGUID), RawCert: milan.VCEK()}}}).Marshal()
	if _, err := verify(milan, snp.Evidence{Report: milan.Report(testkit.ReportFields{}), CertTable: once}, snp.Options{}); err != nil {
		t.Fatalf("table with the VCEK once: %v", err)
	}
}

// A chain found in the verified-chain cache is still judged at the time
// of each verification: an endorsement key that verified once does not
// keep verifying after it expires.
func TestCachedChainExpires(t *testing.T) {
	t.Parallel()
	milan := mustChain(t, testkit.ChainOptions{})
	var mu sync.Mutex
	now := time.Now()
	v := snp.New(snp.Options{Roots: milan.Roots, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	ev := snp.Evidence{Report: milan.Report(testkit.ReportFields{}), CertTable: milan.CertTable()}
	if _, err := v.Verify(context.Background(), ev); err != nil {
		t.Fatalf("fresh: %v", err)
	}
	mu.Lock()
	now = now.AddDate(8, 0, 0) // the fake VCEK lasts 7 years
	mu.Unlock()
	_, err := v.Verify(context.Background(), ev)
	wantReason(t, err, attest.ReasonCertChainInvalid)
}

// The refusals say what is wrong (issue 21, items 4 and 5): a v2 report
// whose key is nowhere names every product line tried; a VCEK of another
// chip names both chips, as short prefixes only.
func TestRefusalsNameWhatIsWrong(t *testing.T) {
	t.Parallel()
	milan := mustChain(t, testkit.ChainOptions{})
	v2 := milan.Report(testkit.ReportFields{Version: 2})
	_, err := verify(milan, snp.Evidence{Report: v2}, snp.Options{Keys: failingKeys{}})
	wantReason(t, err, attest.ReasonVCEKUnavailable)
	if d := attest.Detail(err); !strings.Contains(d, "Milan: ") || !strings.Contains(d, "Genoa: ") {
		t.Errorf("detail %q does not name both product lines tried", d)
	}

	report, vcek := readFile(t, "trustee-report.bin"), readFile(t, "gosevguest-milan-vcek.der")
	_, err = verify(milan, snp.Evidence{Report: report, EndorsementKey: vcek}, snp.Options{Roots: snp.AMDRoots()})
	wantReason(t, err, attest.ReasonSignatureInvalid)
	cert, perr := x509.ParseCertificate(vcek)
	if perr != nil {
		t.Fatal(perr)
	}
	ek, perr := snp.ParseEndorsementKey(cert)
	if perr != nil {
		t.Fatal(perr)
	}
	d := attest.Detail(err)
	keyChip, reportChip := hex.EncodeToString(ek.HWID), hex.EncodeToString(report[0x1A0:0x1E0])
	if !strings.Contains(d, keyChip[:8]+"…") || !strings.Contains(d, reportChip[:8]+"…") {
		t.Errorf("detail %q does not name chip %s… and chip %s…", d, keyChip[:8], reportChip[:8])
	}
	if strings.Contains(d, keyChip[:16]) || strings.Contains(d, reportChip[:16]) {
		t.Errorf("detail %q carries more than a short chip prefix", d)
	}
}
