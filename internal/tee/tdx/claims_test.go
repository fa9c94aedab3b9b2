package tdx

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"testing"
)

// specKeys are the TDX claims of SPEC "Intel TDX".
var specKeys = []string{"tee", "quote_version", "mr_td", "mr_config_id", "mr_owner", "mr_owner_config",
	"rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_seam", "mr_signer_seam", "seam_attributes", "td_attributes", "xfam",
	"tee_tcb_svn", "report_data", "fmspc"}

func claimKeys(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The claims are SPEC's keys exactly: tcb_status and advisory_ids with
// collateral, tee_tcb_svn2 and mr_service_td for TDX 1.5 bodies, and
// td_attributes decoded.
func TestClaimKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		file  string
		opts  Options
		extra []string
	}{
		{"teekit-phala-quote.dat", Options{NoCollateral: true, Now: at(t, atNow)}, nil},
		{"trustee-quote-v5.dat", Options{NoCollateral: true, Now: at(t, atNow)}, []string{"tee_tcb_svn2", "mr_service_td"}},
		{"teekit-phala-quote.dat", Options{Collateral: collateral(t, collateral2025...), Now: at(t, at2025)}, []string{"tcb_status"}},
		{"teekit-edgeless-quote-v4.dat", Options{Collateral: collateral(t, collateral2025...), Now: at(t, at2025)}, []string{"tcb_status", "advisory_ids"}},
	}
	for _, tc := range cases {
		c, err := New(tc.opts).Verify(ctx, Evidence{Quote: readQuote(t, tc.file)})
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		want := append(slices.Clone(specKeys), tc.extra...)
		sort.Strings(want)
		if got := claimKeys(t, c); !slices.Equal(got, want) {
			t.Errorf("%s: keys %v, want %v", tc.file, got, want)
		}
		if got := claimKeys(t, c.TDAttributes); !slices.Equal(got, []string{"debug", "kl", "perfmon", "pks", "sept_ve_disable"}) {
			t.Errorf("td_attributes keys %v", got)
		}
	}
}

// TD_ATTRIBUTES bits decode as the quotes' producers set them (VERIFIED.txt
// lists the raw values): SPR E4 0000004000000000 = PKS, moemahhouk
// 0000001000000080 = SEPT_VE_DISABLE and PERFMON.
func TestTDAttributes(t *testing.T) {
	t.Parallel()
	v := New(Options{NoCollateral: true, Now: at(t, atNow)})
	spr, err := v.Verify(context.Background(), Evidence{Quote: readQuote(t, "gotdxguest-spr-e4-quote-v4.dat")})
	if err != nil {
		t.Fatal(err)
	}
	if a := spr.TDAttributes; !a.PKS || a.SEPTVEDisable || a.PerfMon || a.Debug || a.KL {
		t.Errorf("SPR E4: %+v", a)
	}
	moe, err := v.Verify(context.Background(), Evidence{Quote: readQuote(t, "teekit-moemahhouk-quote.dat")})
	if err != nil {
		t.Fatal(err)
	}
	if a := moe.TDAttributes; !a.SEPTVEDisable || !a.PerfMon || a.PKS || a.Debug {
		t.Errorf("moemahhouk: %+v", a)
	}
}

// The PCK's SGX extensions of a real certificate: FMSPC, PCE-ID, PCESVN,
// CPUSVN and a PPID, from the Platform CA.
func TestParsePCK(t *testing.T) {
	t.Parallel()
	f, err := frame(readQuote(t, "trustee-quote-6.dat"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCertificates(f.pckChain)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePCK(certs[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.FMSPC != [6]byte{0x00, 0xa0, 0x6d, 0x08, 0x00, 0x00} || p.PCESVN != 11 || p.CA != "platform" || p.PCEID != [2]byte{} || p.PPID == [16]byte{} {
		t.Fatalf("%+v", p)
	}
}
