package snp

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// testdataDir is the project's copy of the real evidence (see its SOURCES.md).
var testdataDir = filepath.Join("..", "..", "..", "testdata", "snp")

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func u8(v uint8) *uint8 { return &v }

// realReport is one real report of testdata/snp and the claims it must
// verify to, transcribed from the shared corpus' VERIFIED.txt.
type realReport struct {
	report, cert string
	at           string // RFC 3339; "" means pinnedAt
	product      string
	signer       string
	version      uint32
	vmpl         uint32
	guestSVN     uint32
	debug        bool
	measurement  string
	reportData   string
	chipIDPrefix string
	reportedTCB  attest.TCB
	currentTCB   attest.TCB
	current      string // firmware version
}

var realReports = []realReport{
	{report: "gosevguest-milan-report.bin", cert: "gosevguest-milan-vcek.der", product: "Milan", signer: "vcek", version: 2, debug: true,
		measurement: "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01",
		reportData:  "0102030405" + zeros(59), chipIDPrefix: "3ac3fe21e13fb099",
		reportedTCB: attest.TCB{Bootloader: 2, SNP: 5, Microcode: 68}, currentTCB: attest.TCB{Bootloader: 2, SNP: 5, Microcode: 68}, current: "1.49.3"},
	{report: "virtee-milan-report.hex", cert: "virtee-milan-vcek.der", product: "Milan", signer: "vcek", version: 2,
		measurement:  "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f",
		reportData:   "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd",
		chipIDPrefix: "d49554ec717f4e5b",
		reportedTCB:  attest.TCB{Bootloader: 3, SNP: 8, Microcode: 115}, currentTCB: attest.TCB{Bootloader: 3, SNP: 8, Microcode: 115}, current: "1.52.4"},
	{report: "trustee-report.bin", cert: "trustee-vcek.der", product: "Milan", signer: "vcek", version: 2, guestSVN: 4,
		measurement:  "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c",
		reportData:   "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2" + zeros(32),
		chipIDPrefix: "c38427a30d4c7af9",
		reportedTCB:  attest.TCB{Bootloader: 3, SNP: 8, Microcode: 115}, currentTCB: attest.TCB{Bootloader: 3, SNP: 8, Microcode: 206}, current: "1.52.4"},
	{report: "trustee-vlek-report.bin", cert: "trustee-vlek.der", at: "2024-12-11T00:00:00Z", product: "Milan", signer: "vlek", version: 3, vmpl: 1,
		measurement:  "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0",
		reportData:   "819770b7e6ea6df8dd8fd4dd146b073c0bf4f3ce5b0977ecac486e3a05ed1bd54e2a7ac1f5d1ca02e7d7d5ef9f73b8574fd9359e3a480d741a4478e8a7bc27ca",
		chipIDPrefix: "0000000000000000",
		reportedTCB:  attest.TCB{Bootloader: 4, SNP: 24, Microcode: 217}, currentTCB: attest.TCB{Bootloader: 4, SNP: 24, Microcode: 220}, current: "1.55.29"},
	{report: "trustee-azure-milan-hcl-report.bin", cert: "trustee-azure-milan-vcek-chain.pem", product: "Milan", signer: "vcek", version: 2, guestSVN: 5,
		measurement:  "9ac48fcac8a2d88aeeff8d427ad4f2be0e3917c748a18bdf52cc317e7fe20308b459d5ef1a12e0c22944eb386d17c315",
		reportData:   "b3fbad6514c83caeb0380882145e49f794229ef37c421b91fc47ff93556bafac" + zeros(32),
		chipIDPrefix: "19752a447db501a3",
		reportedTCB:  attest.TCB{Bootloader: 3, SNP: 8, Microcode: 115}, currentTCB: attest.TCB{Bootloader: 3, SNP: 8, Microcode: 210}, current: "1.52.4"},
	{report: "trustee-azure-milan-v0-hcl-report.bin", cert: "trustee-azure-milan-v0-vcek.pem", product: "Milan", signer: "vcek", version: 3, guestSVN: 10,
		measurement:  "6a063be9dd79f6371c842e480f8dc3b5c725961344e57130e88c5adf49e8f7f6c79b75a5eb77fc769959f4aeb2f9401e",
		reportData:   "af2910341dd8108360e485f1b72494255190b9cdd5ccb44b73b883037cf99f21" + zeros(32),
		chipIDPrefix: "66a5a7b4403a3006",
		reportedTCB:  attest.TCB{Bootloader: 4, SNP: 24, Microcode: 219}, currentTCB: attest.TCB{Bootloader: 4, SNP: 24, Microcode: 219}, current: "1.55.29"},
	{report: "trustee-azure-genoa-hcl-report.bin", cert: "trustee-azure-genoa-vcek.pem", product: "Genoa", signer: "vcek", version: 3, guestSVN: 65547,
		measurement:  "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae",
		reportData:   "b581f12e29a2d7d64e5e0b738d563879a78b51c644d0fa0cce02b48699f6bf5f" + zeros(32),
		chipIDPrefix: "0506ffba875e939c",
		reportedTCB:  attest.TCB{Bootloader: 10, SNP: 23, Microcode: 84}, currentTCB: attest.TCB{Bootloader: 10, SNP: 23, Microcode: 84}, current: "1.55.40"},
	{report: "trustee-genoa-e2e-report.bin", cert: "trustee-genoa-e2e-vcek.der", product: "Genoa", signer: "vcek", version: 3,
		measurement:  "6a6519d757e68c2e939c9dbbbc1828498e8de35d2766dd05f1a2cca5059d0cf4ae62a36d75c837974dd50b315506e73e",
		reportData:   "7e7320889600c7ac133aea7b896c51f41026002982292a7369559796999c1bf929eef3ff23c46e858f0b1982f9a92b17c51b578d958cde6b0c92978f150cf9b0",
		chipIDPrefix: "371c55d6d15cb50f",
		reportedTCB:  attest.TCB{Bootloader: 10, SNP: 23, Microcode: 25}, currentTCB: attest.TCB{Bootloader: 10, SNP: 23, Microcode: 25}, current: "1.55.40"},
	{report: "teekit-gcp-milan-report.bin", cert: "teekit-gcp-milan-vcek.pem", product: "Milan", signer: "vcek", version: 5,
		measurement: "b747d55452e0b9e9079770a49e397c5e6d9573581e246da7baac4f28b5cdc5b1b6d19251b8ee600fd16a3708f58406f3",
		reportData:  zeros(64), chipIDPrefix: "980cf7b61876cb37",
		reportedTCB: attest.TCB{Bootloader: 4, SNP: 27, Microcode: 222}, currentTCB: attest.TCB{Bootloader: 4, SNP: 27, Microcode: 222}, current: "1.55.35"},
	{report: "teekit-gcp-milan-reportdata-report.bin", cert: "teekit-gcp-milan-vcek.pem", product: "Milan", signer: "vcek", version: 5, vmpl: 1,
		measurement:  "b747d55452e0b9e9079770a49e397c5e6d9573581e246da7baac4f28b5cdc5b1b6d19251b8ee600fd16a3708f58406f3",
		reportData:   "32fc4f6c1971cbf91566231f8d6153eeb9d093aa94306cb48d39bcc4861a3d395f149876a37bc91332fe493f46294fd135d5b95d363ae96352b8c45f906079f5",
		chipIDPrefix: "980cf7b61876cb37",
		reportedTCB:  attest.TCB{Bootloader: 4, SNP: 27, Microcode: 222}, currentTCB: attest.TCB{Bootloader: 4, SNP: 27, Microcode: 222}, current: "1.55.35"},
	{report: "teekit-gcp-milan-x25519-report.bin", cert: "teekit-gcp-milan-x25519-vcek.pem", product: "Milan", signer: "vcek", version: 5, vmpl: 1,
		measurement:  "b747d55452e0b9e9079770a49e397c5e6d9573581e246da7baac4f28b5cdc5b1b6d19251b8ee600fd16a3708f58406f3",
		reportData:   "3a6753fd4b194de53824d7fd5b45e251cc19a32a71dd5ba3e131fe19f2adbe86d658c147479571226e0f294eb7e44abb6c1673f39a5378ac25cd5d6268b91f1a",
		chipIDPrefix: "980cf7b61876cb37",
		reportedTCB:  attest.TCB{Bootloader: 4, SNP: 27, Microcode: 222}, currentTCB: attest.TCB{Bootloader: 4, SNP: 27, Microcode: 222}, current: "1.55.35"},
	{report: "openanolis-trustee-turin-report.bin", cert: "openanolis-trustee-turin-vcek.der", product: "Turin", signer: "vcek", version: 5,
		measurement:  "a13039badd60b0854bea169b58fd6fe1773981aefbfee98bf32d6cbe7521e5f281c1dd1fa8a44be828e6cf4804871091",
		reportData:   "fce1e3d9c061b186e7a0e2780331b48afffd94e0384802241cae37b37e1ab53dc81636c2aabbd6d5b3ccf4b83d02c40a71312b95388c154bc5ab4708fdce12c1",
		chipIDPrefix: "0910b4f884ff4ba90000000000000000",
		reportedTCB:  attest.TCB{FMC: u8(1), Bootloader: 3, TEE: 2, SNP: 5, Microcode: 97}, currentTCB: attest.TCB{FMC: u8(1), Bootloader: 3, TEE: 2, SNP: 5, Microcode: 97}, current: "1.58.3"},
	{report: "openanolis-trustee-vlek-report.bin", cert: "openanolis-trustee-vlek.der", at: "2024-05-06T00:00:00Z", product: "Milan", signer: "vlek", version: 2, vmpl: 1,
		measurement:  "f1a99fc07470beb03b1330f4489520af8f0288187ffb661c71f35cab09bea19cd962d4f2d09f5a16c3c38b7da6bed244",
		reportData:   "24370d12f27983b620ab0de35d35ff2a334e08ca27e5cffe25c7bb1c94a560aa133e26e9168ede56d1f3e879103644fe3414214d25299a45467353e07c1e0e90",
		chipIDPrefix: "0000000000000000",
		reportedTCB:  attest.TCB{Bootloader: 3, SNP: 21, Microcode: 209}, currentTCB: attest.TCB{Bootloader: 3, SNP: 21, Microcode: 209}, current: "1.55.18"},
}

func zeros(n int) string { return hex.EncodeToString(make([]byte, n)) }

// pinnedAt is when the real reports without an `at` of their own are
// verified: inside every one of their endorsement keys' validity (the
// latest notBefore is the Turin VCEK's, 2026-06-28; the earliest notAfter
// the go-sev-guest Milan VCEK's, 2029-09-24), so the tests do not turn red
// when a stored VCEK expires.
const pinnedAt = "2026-11-01T00:00:00Z"

// fixedTime returns a clock for Options.Now; "" means pinnedAt.
func fixedTime(t testing.TB, s string) func() time.Time {
	if s == "" {
		s = pinnedAt
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return func() time.Time { return at }
}

func verifyReal(t testing.TB, rr realReport, o Options) (*attest.Claims, error) {
	t.Helper()
	ev, err := DecodeReport(readTestdata(t, rr.report))
	if err != nil {
		t.Fatalf("DecodeReport(%s): %v", rr.report, err)
	}
	ev.EndorsementKey = readTestdata(t, rr.cert)
	if o.Now == nil {
		o.Now = fixedTime(t, rr.at)
	}
	return New(o).Verify(context.Background(), ev)
}

func TestRealReportsVerify(t *testing.T) {
	t.Parallel()
	for _, rr := range realReports {
		t.Run(rr.report, func(t *testing.T) {
			t.Parallel()
			c, err := verifyReal(t, rr, Options{AllowDebug: rr.debug})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			checks := []struct {
				name      string
				got, want any
			}{
				{"tee", c.TEE, "sev-snp"},
				{"product", c.Product, rr.product},
				{"signer", c.Signer, rr.signer},
				{"report_version", c.ReportVersion, rr.version},
				{"vmpl", c.VMPL, rr.vmpl},
				{"guest_svn", c.GuestSVN, rr.guestSVN},
				{"debug", c.Policy.Debug, rr.debug},
				{"measurement", c.Measurement.String(), rr.measurement},
				{"report_data", c.ReportData.String(), rr.reportData},
				{"chip_id prefix", c.ChipID.String()[:len(rr.chipIDPrefix)], rr.chipIDPrefix},
				{"reported_tcb", tcbString(c.ReportedTCB), tcbString(rr.reportedTCB)},
				{"current_tcb", tcbString(c.CurrentTCB), tcbString(rr.currentTCB)},
				{"current_version", c.CurrentVersion, rr.current},
			}
			for _, ck := range checks {
				if ck.got != ck.want {
					t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
				}
			}
		})
	}
}

func tcbString(t attest.TCB) string {
	s := ""
	if t.FMC != nil {
		s = "fmc=" + hex.EncodeToString([]byte{*t.FMC}) + " "
	}
	return s + hex.EncodeToString([]byte{t.Bootloader, t.TEE, t.SNP, t.Microcode})
}

// The two real VLEKs have expired; at today's date they must be refused.
func TestRealVLEKExpired(t *testing.T) {
	t.Parallel()
	for _, rr := range realReports {
		if rr.at == "" {
			continue
		}
		rr := rr
		rr.at = "2026-11-28T00:00:00Z"
		_, err := verifyReal(t, rr, Options{})
		if got := attest.ReasonOf(err); got != attest.ReasonCertChainInvalid {
			t.Errorf("%s at %s: reason %q (%v), want cert_chain_invalid", rr.report, rr.at, got, err)
		}
	}
}

func TestRealDebugReportRefused(t *testing.T) {
	t.Parallel()
	_, err := verifyReal(t, realReports[0], Options{})
	var e *attest.Error
	if !errors.As(err, &e) || e.Reason != attest.ReasonDebugEnabled {
		t.Fatalf("Verify(debug report) = %v, want debug_enabled", err)
	}
}

// An Azure HCL blob binds its runtime data by REPORT_DATA = SHA-256(runtime
// data) ‖ 0³²: a changed byte of the runtime data is report_data_mismatch.
// The bytes after the runtime data are the NV index's zero padding; they are
// not covered by the report and carry no claim, so they are ignored.
func TestRealHCLRuntimeDataBound(t *testing.T) {
	t.Parallel()
	for _, rr := range realReports {
		blob := readTestdata(t, rr.report)
		if !bytes.HasPrefix(blob, hclMagic) {
			continue
		}
		ev, err := DecodeReport(blob)
		if err != nil || len(ev.RuntimeData) == 0 {
			t.Fatalf("%s: %v, %d bytes of runtime data", rr.report, err, len(ev.RuntimeData))
		}
		end := hclVarDataOff + len(ev.RuntimeData)
		for _, tc := range []struct {
			name string
			off  int
			want attest.Reason
		}{
			{"first runtime-data byte", hclVarDataOff, attest.ReasonReportDataMismatch},
			{"last runtime-data byte", end - 1, attest.ReasonReportDataMismatch},
			{"padding after the runtime data", len(blob) - 1, ""},
		} {
			changed := bytes.Clone(blob)
			changed[tc.off] ^= 0x01
			ev, err := DecodeReport(changed)
			if err != nil {
				t.Fatalf("%s, %s: %v", rr.report, tc.name, err)
			}
			ev.EndorsementKey = readTestdata(t, rr.cert)
			_, err = New(Options{Now: fixedTime(t, rr.at)}).Verify(context.Background(), ev)
			if got := attest.ReasonOf(err); got != tc.want {
				t.Errorf("%s, %s changed: reason %q (%v), want %q", rr.report, tc.name, got, err, tc.want)
			}
		}
	}
}
