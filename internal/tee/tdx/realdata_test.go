package tdx

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// testdataDir holds real quotes and Intel collateral; SOURCES.md there says
// where each file comes from.
var testdataDir = filepath.Join("..", "..", "..", "testdata", "tdx")

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readQuote reads a quote file as `trustgate verify` would, unwrapping the
// GCP JSON form {"tdx":{"quote":b64}} of teekit's sample.
func readQuote(t testing.TB, name string) []byte {
	t.Helper()
	b := readTestdata(t, name)
	if filepath.Ext(name) == ".json" {
		var w struct {
			TDX struct {
				Quote string `json:"quote"`
			} `json:"tdx"`
		}
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		b = []byte(w.TDX.Quote)
	}
	ev, err := DecodeQuote(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev.Quote
}

func at(t testing.TB, s string) func() time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return func() time.Time { return ts }
}

func collateral(t testing.TB, names ...string) CollateralSource {
	t.Helper()
	var docs [][]byte
	for _, n := range names {
		docs = append(docs, readTestdata(t, n))
	}
	c, err := ParseCollateral(docs...)
	if err != nil {
		t.Fatal(err)
	}
	return Static{C: c}
}

// The Intel PCS answers of 2025-11-17 (intel/MigTD's production bundle):
// TCB info of five FMSPCs, the TD QE identity, the PCK Platform CA's and the
// root's CRLs, and the 2025 TCB signing chain.
var collateral2025 = []string{
	"migtd-tcbinfo-00806f050000.json", "migtd-tcbinfo-00a06d080000.json", "migtd-tcbinfo-50806f000000.json",
	"migtd-tcbinfo-90c06f000000.json", "migtd-tcbinfo-b0c06f000000.json", "migtd-qeidentity.json",
	"migtd-pckcrl-platform.pem", "migtd-rootcrl.pem", "intel-tcb-signing-chain-2025.pem",
}

// go-tdx-guest's collateral of June 2023 for the SPR E4 quote.
var collateral2023 = []string{
	"gotdxguest-tcbinfo-50806f000000.json", "gotdxguest-qeidentity.json", "gotdxguest-pckcrl-platform.der",
	"gotdxguest-rootcrl.der", "intel-tcb-signing-chain-2018.pem",
}

const (
	at2025 = "2025-11-20T00:00:00Z" // every 2025 document is current
	at2023 = "2023-06-20T00:00:00Z" // every 2023 document is current
	atNow  = "2026-12-01T00:00:00Z" // every PCK certificate is valid
)

type realCase struct {
	file       string
	version    uint16
	fmspc      string
	mrTD       string // prefix
	debug      bool
	noCol      attest.Reason // without collateral at atNow ("" = verifies)
	withCol    attest.Reason // with collateral2025 at at2025 ("" = verifies with status)
	status     string
	collateral []string
	at         string
}

// realCases are the 13 real quotes and what they verify to, as the shared
// corpus's VERIFIED.txt recorded them (section [6]).
var realCases = []realCase{
	{file: "teekit-phala-quote.dat", version: 4, fmspc: "b0c06f000000", mrTD: "91eb2b44d141d4ec", status: StatusUpToDate},
	{file: "teekit-gcp-quote-v4.json", version: 4, fmspc: "00806f050000", mrTD: "409c0cd3e63d9ea5", status: StatusUpToDate},
	{file: "trustee-quote-6.dat", version: 4, fmspc: "00a06d080000", mrTD: "21e8dead92d6c69d", status: StatusOutOfDate},
	{file: "trustee-quote-6.dat", version: 4, fmspc: "00a06d080000", mrTD: "21e8dead92d6c69d", status: StatusOutOfDate,
		collateral: []string{"trustee-tcbinfo-00a06d080000.json", "trustee-qeidentity.json", "migtd-pckcrl-platform.pem", "migtd-rootcrl.pem", "intel-tcb-signing-chain-2025.pem"}},
	{file: "trustee-quote-v5.dat", version: 5, fmspc: "90c06f000000", mrTD: "dfba221b48a22af8", withCol: attest.ReasonTCBOutOfDate},
	{file: "teekit-moemahhouk-quote.dat", version: 4, fmspc: "90c06f000000", mrTD: "f2dd2696f69b9506", withCol: attest.ReasonTCBOutOfDate},
	{file: "trustee-azure-td-quote.dat", version: 4, fmspc: "00806f050000", mrTD: "024a32b070383331", status: StatusOutOfDate},
	{file: "teekit-azure-quote-v4.b64", version: 4, fmspc: "00806f050000", mrTD: "fe27b2aa3a05ec56", status: StatusOutOfDate},
	{file: "teekit-zkdcap-quote.dat", version: 4, fmspc: "00806f050000", mrTD: "935be7742dd89c6a", status: StatusOutOfDate},
	{file: "teekit-edgeless-quote-v4.dat", version: 4, fmspc: "00806f050000", mrTD: "b65ea009e424e6f7", status: StatusOutOfDate},
	{file: "gotdxguest-gcp-cos113-quote-v4.dat", version: 4, fmspc: "00806f050000", mrTD: "dae67181d3d65e07", status: StatusOutOfDate},
	{file: "trustee-quote-v4.dat", version: 4, fmspc: "50806f000000", mrTD: "705ee9381b8633a9", debug: true, noCol: attest.ReasonDebugEnabled, withCol: attest.ReasonDebugEnabled},
	{file: "gotdxguest-spr-e4-quote-v4.dat", version: 4, fmspc: "50806f000000", mrTD: "6363b8043668a3ad", withCol: attest.ReasonTCBOutOfDate},
	{file: "gotdxguest-spr-e4-quote-v4.dat", version: 4, fmspc: "50806f000000", mrTD: "6363b8043668a3ad", withCol: attest.ReasonTCBOutOfDate, collateral: collateral2023, at: at2023},
	// Its PCK certificate is valid from 2026-01-27 only.
	{file: "gotdxguest-quote-v5.dat", version: 5, fmspc: "90c06f000000", mrTD: "7348651a34b2d2d3", withCol: attest.ReasonCertChainInvalid},
}

func wantReason(t testing.TB, err error, want attest.Reason) {
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

func TestRealQuotesWithoutCollateral(t *testing.T) {
	t.Parallel()
	for _, tc := range realCases {
		if tc.collateral != nil {
			continue
		}
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			q := readQuote(t, tc.file)
			c, err := New(Options{NoCollateral: true, Now: at(t, atNow)}).Verify(context.Background(), Evidence{Quote: q})
			wantReason(t, err, tc.noCol)
			if tc.debug {
				c, err = New(Options{NoCollateral: true, AllowDebug: true, Now: at(t, atNow)}).Verify(context.Background(), Evidence{Quote: q})
				wantReason(t, err, "")
			}
			if c == nil {
				return
			}
			if c.TEE != "tdx" || c.QuoteVersion != tc.version || c.FMSPC.String() != tc.fmspc || c.MRTD.String()[:16] != tc.mrTD ||
				c.TDAttributes.Debug != tc.debug || c.TCBStatus != "" {
				t.Fatalf("claims tee=%s v=%d fmspc=%s mr_td=%s debug=%t status=%q", c.TEE, c.QuoteVersion, c.FMSPC, c.MRTD, c.TDAttributes.Debug, c.TCBStatus)
			}
			if (tc.version == 5) != (c.TEETCBSVN2 != nil) || len(c.MRTD) != 48 || len(c.ReportData) != 64 {
				t.Fatalf("v5 fields %x / sizes", c.TEETCBSVN2)
			}
		})
	}
}

func TestRealQuotesWithCollateral(t *testing.T) {
	t.Parallel()
	for i, tc := range realCases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			names, when := tc.collateral, tc.at
			if names == nil {
				names = collateral2025
			}
			if when == "" {
				when = at2025
			}
			_ = i
			c, err := New(Options{Collateral: collateral(t, names...), Now: at(t, when)}).Verify(context.Background(), Evidence{Quote: readQuote(t, tc.file)})
			wantReason(t, err, tc.withCol)
			if err == nil && c.TCBStatus != tc.status {
				t.Fatalf("tcb_status %q, want %q", c.TCBStatus, tc.status)
			}
		})
	}
}

// The v5 quote's report data and RTMRs are where go-tdx-guest HEAD put them.
func TestV5Claims(t *testing.T) {
	t.Parallel()
	c, err := New(Options{NoCollateral: true, Now: at(t, atNow)}).Verify(context.Background(), Evidence{Quote: readQuote(t, "trustee-quote-v5.dat")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"tee_tcb_svn":   "05010200000000000000000000000000",
		"tee_tcb_svn2":  "05010200000000000000000000000000",
		"mr_service_td": "383c87d3bbb047b2d171eaca95312ede99f258088dc788f6ae2ccf8b6dd848fe8d47629e08b3f6cbd4a00dd47a5a033d",
		"rtmr0":         "9b529f3689e2e8ebb899e9abbbc3dab394d6545e8cdb28a2abb9cc2f377b83a65c01ba56b824cd3ee885df20051f5128",
		"report_data":   "6d6ab13b046cff606ac0074be13981b07b6325dba10b5facc96febf551c0c3be2b75f92fe1f88f4bb996969ad0174b4b7a70261b7b85c844f4b33a4674fd049f",
		"xfam":          "e742060000000000",
	}
	got := map[string]string{"tee_tcb_svn": c.TEETCBSVN.String(), "tee_tcb_svn2": c.TEETCBSVN2.String(), "mr_service_td": c.MRServiceTD.String(),
		"rtmr0": c.RTMR0.String(), "report_data": c.ReportData.String(), "xfam": c.XFAM.String()}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
}

// Intel MigTD's collateral file (one JSON bundle of Intel's PCS answers)
// is collateral as it stands: every quote verifies to what the separate
// documents give.
func TestCollateralBundle(t *testing.T) {
	t.Parallel()
	col := collateral(t, "migtd-collateral-production.json")
	for _, tc := range []struct {
		file, status string
	}{{"teekit-phala-quote.dat", StatusUpToDate}, {"teekit-gcp-quote-v4.json", StatusUpToDate}, {"trustee-quote-6.dat", StatusOutOfDate}} {
		c, err := New(Options{Collateral: col, Now: at(t, at2025)}).Verify(context.Background(), Evidence{Quote: readQuote(t, tc.file)})
		if err != nil || c.TCBStatus != tc.status {
			t.Fatalf("%s: %v, status %v", tc.file, err, c)
		}
	}
}

// Of several TCB infos and QE identities for one platform, the latest one
// issued by the time of judgement counts: at 2025-11-01 trustee's of
// 2025-10-27 (MigTD's of 2025-11-17 is not issued yet), at 2025-11-20
// MigTD's.
func TestLatestIssuedCollateralCounts(t *testing.T) {
	t.Parallel()
	col := collateral(t, "migtd-tcbinfo-00a06d080000.json", "trustee-tcbinfo-00a06d080000.json",
		"migtd-qeidentity.json", "trustee-qeidentity.json", "migtd-pckcrl-platform.pem", "migtd-rootcrl.pem")
	q := readQuote(t, "trustee-quote-6.dat")
	// The MigTD CRL is issued 2025-11-17; at 2025-11-01 no CRL is current.
	_, err := New(Options{Collateral: col, Now: at(t, "2025-11-01T00:00:00Z")}).Verify(context.Background(), Evidence{Quote: q})
	wantReason(t, err, attest.ReasonCollateralUnavailable)
	c, err := New(Options{Collateral: col, Now: at(t, at2025)}).Verify(context.Background(), Evidence{Quote: q})
	wantReason(t, err, "")
	if c.TCBStatus != StatusOutOfDate {
		t.Fatalf("status %s", c.TCBStatus)
	}
	ti := col.(Static).C.tcbInfo([6]byte{0x00, 0xa0, 0x6d, 0x08, 0x00, 0x00}, at(t, "2025-11-01T00:00:00Z")())
	if ti == nil || ti.IssueDate.Format("2006-01-02") != "2025-10-27" {
		t.Fatalf("at 2025-11-01 the TCB info of %v counts", ti.IssueDate)
	}
	if ti := col.(Static).C.tcbInfo([6]byte{0x00, 0xa0, 0x6d, 0x08, 0x00, 0x00}, at(t, at2025)()); ti.IssueDate.Format("2006-01-02") != "2025-11-17" {
		t.Fatalf("at 2025-11-20 the TCB info of %v counts", ti.IssueDate)
	}
	if qe := col.(Static).C.qeIdentity(at(t, "2025-11-01T00:00:00Z")()); qe.IssueDate.Format("2006-01-02") != "2025-10-28" {
		t.Fatalf("at 2025-11-01 the QE identity of %v counts", qe.IssueDate)
	}
}

// qvlCollateral is Intel's collateral of 2025-11-17 written as dcap-qvl's
// QuoteCollateralV3 JSON: signed bodies as strings, signatures as hex, the
// PCK CRL as serde's array of numbers, the root CRL as hex.
func qvlCollateral(t testing.TB) []byte {
	t.Helper()
	var ti struct {
		TCBInfo   json.RawMessage `json:"tcbInfo"`
		Signature string          `json:"signature"`
	}
	var qe struct {
		EnclaveIdentity json.RawMessage `json:"enclaveIdentity"`
		Signature       string          `json:"signature"`
	}
	if err := json.Unmarshal(readTestdata(t, "migtd-tcbinfo-b0c06f000000.json"), &ti); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(readTestdata(t, "migtd-qeidentity.json"), &qe); err != nil {
		t.Fatal(err)
	}
	der := func(name string) []byte {
		blk, _ := pem.Decode(readTestdata(t, name))
		if blk == nil {
			t.Fatalf("%s: no PEM", name)
		}
		return blk.Bytes
	}
	pckCRL := make([]int, 0)
	for _, b := range der("migtd-pckcrl-platform.pem") {
		pckCRL = append(pckCRL, int(b))
	}
	chain := string(readTestdata(t, "intel-tcb-signing-chain-2025.pem"))
	b, err := json.Marshal(map[string]any{
		"pck_crl_issuer_chain":     string(readTestdata(t, "intel-pckcrl-issuer-chain.pem")),
		"root_ca_crl":              hex.EncodeToString(der("migtd-rootcrl.pem")),
		"pck_crl":                  pckCRL,
		"tcb_info_issuer_chain":    chain,
		"tcb_info":                 string(ti.TCBInfo),
		"tcb_info_signature":       ti.Signature,
		"qe_identity_issuer_chain": chain,
		"qe_identity":              string(qe.EnclaveIdentity),
		"qe_identity_signature":    qe.Signature,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dcap-qvl's QuoteCollateralV3 JSON, what its users ship, is read like
// Intel's own documents (issue 21, item 6): the Phala quote is UpToDate
// with it, and a changed TCB info body no longer verifies.
func TestQVLCollateral(t *testing.T) {
	t.Parallel()
	doc := qvlCollateral(t)
	c, err := ParseCollateral(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TCBInfos) != 1 || len(c.QEIdentities) != 1 || len(c.CRLs) != 2 || len(c.Certs) == 0 {
		t.Fatalf("read %d TCB infos, %d QE identities, %d CRLs, %d certificates", len(c.TCBInfos), len(c.QEIdentities), len(c.CRLs), len(c.Certs))
	}
	claims, err := New(Options{Collateral: Static{C: c}, Now: at(t, at2025)}).Verify(context.Background(), Evidence{Quote: readQuote(t, "teekit-phala-quote.dat")})
	if err != nil || claims.TCBStatus != StatusUpToDate {
		t.Fatalf("%v, %+v", err, claims)
	}

	edited := bytes.Replace(doc, []byte(`\"UpToDate\"`), []byte(`\"UpToDate\" `), 1)
	c, err = ParseCollateral(edited)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Options{Collateral: Static{C: c}, Now: at(t, at2025)}).Verify(context.Background(), Evidence{Quote: readQuote(t, "teekit-phala-quote.dat")})
	if attest.ReasonOf(err) == "" {
		t.Fatal("a TCB info body changed after signing verified")
	}
}
