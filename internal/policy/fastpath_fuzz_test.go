package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
)

// fuzzGen turns the fuzzer's bytes into choices; past the end every
// choice is the first option, so every input decodes.
type fuzzGen struct{ data []byte }

// pick is a choice among n options.
func (g *fuzzGen) pick(n int) int {
	if len(g.data) == 0 || n <= 1 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return int(b) % n
}

func pickOf[T any](g *fuzzGen, opts ...T) T { return opts[g.pick(len(opts))] }

func (g *fuzzGen) bit() bool { return g.pick(2) == 1 }

// The values a generated claim or reference entry may hold, few enough
// that they meet: 48-byte digests (a measurement or MRTD on one side is
// often the other side's), RTMRs, and SVNs around every floor (each value
// and its neighbours, with uint8's ends).
var (
	fuzzDigests = []string{approved, next, strings.Repeat("6d", 48), strings.Repeat("01", 48)}
	fuzzSVNs    = []uint8{0, 1, 2, 7, 8, 9, 254, 255}
	fuzzStatus  = append([]string{"", "Revoked", "OutOfDateX", "OutOfDat", "outofdate", "UpToDate "}, refvalues.TCBStatuses...)
)

// fuzzDigest is one of fuzzDigests as claims bytes, sometimes none or a
// short one (a claim the verifier would not produce, which both sides must
// still decide alike).
func (g *fuzzGen) digest() attest.Hex {
	switch g.pick(12) {
	case 0:
		return nil
	case 1:
		return mustHex(approved[:94])
	}
	return mustHex(pickOf(g, fuzzDigests...))
}

// fuzzTEE is one TEE's part of FuzzFastPathAgreesWithOPA: what its
// reference values add to a set and to a measurement entry, and a
// generator of its claims covering every field the default policy reads
// of them. A new TEE plugs in with one entry in fuzzTEEs.
type fuzzTEE struct {
	tee    string                             // a measurement entry's tee
	set    func(g *fuzzGen, s *refvalues.Set) // the TEE's set-wide reference values
	entry  func(g *fuzzGen, m *refvalues.Measurement)
	claims func(g *fuzzGen) attest.Verified
}

var fuzzTEEs = []fuzzTEE{
	{
		tee: refvalues.TEESEVSNP,
		set: func(g *fuzzGen, s *refvalues.Set) {
			if g.bit() {
				s.MinTCB = &refvalues.TCB{
					Bootloader: pickOf(g, fuzzSVNs...), TEE: pickOf(g, fuzzSVNs...),
					SNP: pickOf(g, fuzzSVNs...), Microcode: pickOf(g, fuzzSVNs...), FMC: pickOf(g, fuzzSVNs...),
				}
			}
			switch g.pick(4) {
			case 1:
				s.AllowedVMPL = []int{}
			case 2, 3:
				for v := range 5 { // 4 is out of range: Validate refuses it, both sides must agree anyway
					if g.bit() {
						s.AllowedVMPL = append(s.AllowedVMPL, v)
					}
				}
			}
		},
		claims: func(g *fuzzGen) attest.Verified {
			return fuzzSNPClaims(g, "sev-snp", "sev-snp", "", "tdx", "SEV-SNP")
		},
	},
	{
		tee: refvalues.TEETDX,
		set: func(g *fuzzGen, s *refvalues.Set) {
			switch g.pick(4) {
			case 1:
				s.TDXTCBStatus = []string{}
			case 2, 3:
				for _, st := range fuzzStatus[1:] {
					if g.pick(4) == 0 {
						s.TDXTCBStatus = append(s.TDXTCBStatus, st)
					}
				}
			}
		},
		entry: func(g *fuzzGen, m *refvalues.Measurement) {
			if g.bit() {
				for range g.pick(6) { // a fifth pin is past RTMR3
					m.RTMR = append(m.RTMR, pickOf(g, "", "", fuzzDigests[2], fuzzDigests[3], strings.Repeat("03", 48)))
				}
			}
		},
		claims: func(g *fuzzGen) attest.Verified {
			return fuzzTDXClaims(g, "tdx", "tdx", "sev-snp", "")
		},
	},
	{
		tee:   refvalues.TEEAzureSNP,
		entry: fuzzAzureEntry,
		claims: func(g *fuzzGen) attest.Verified {
			return &attest.AzureSNPClaims{
				Claims: fuzzSNPClaims(g, "azure-snp", "azure-snp", "sev-snp", "azure-tdx", ""),
				VTPM:   fuzzVTPM(g),
			}
		},
	},
	{
		tee:   refvalues.TEEAzureTDX,
		entry: fuzzAzureEntry,
		claims: func(g *fuzzGen) attest.Verified {
			return &attest.AzureTDXClaims{
				TDXClaims: fuzzTDXClaims(g, "azure-tdx", "azure-tdx", "tdx", "azure-snp", ""),
				VTPM:      fuzzVTPM(g),
			}
		},
	},
	{
		tee: refvalues.TEENitro,
		entry: func(g *fuzzGen, m *refvalues.Measurement) {
			for _, k := range []string{"pcr1", "pcr2", "pcr8"} {
				if g.pick(3) == 0 {
					if m.PCRs == nil {
						m.PCRs = map[string]string{}
					}
					m.PCRs[k] = pickOf(g, append(fuzzDigests, fuzzNitroZero)...)
				}
			}
		},
		claims: func(g *fuzzGen) attest.Verified {
			c := &attest.NitroClaims{TEE: pickOf(g, "nitro", "nitro", "", "sev-snp"), Digest: "SHA384"}
			for _, r := range []*attest.Hex{&c.PCR0, &c.PCR1, &c.PCR2, &c.PCR8} {
				switch g.pick(4) {
				case 0: // debug mode zeroes PCR0-2
					*r = mustHex(fuzzNitroZero)
				default:
					*r = g.digest()
				}
			}
			return c
		},
	},
}

// fuzzNitroZero is a PCR of an enclave in debug mode (PCR0-2 all zero).
var fuzzNitroZero = strings.Repeat("00", 48)

// fuzzPCRs are vTPM PCR values (SHA-256) that meet: a pinned value, another
// one, and zero.
var fuzzPCRs = []string{strings.Repeat("04", 32), strings.Repeat("07", 32), strings.Repeat("00", 32)}

// fuzzSNPClaims are SEV-SNP claims of one of tees, around every threshold
// the default policy reads.
func fuzzSNPClaims(g *fuzzGen, tees ...string) *attest.Claims {
	return claims(func(c *attest.Claims) {
		c.TEE = pickOf(g, tees...)
		c.Measurement = g.digest()
		c.Policy.Debug = g.bit()
		c.VMPL = pickOf[uint32](g, 0, 0, 1, 2, 3, 4, 1<<31, 1<<32-1)
		t := &c.ReportedTCB
		t.Bootloader, t.TEE = pickOf(g, fuzzSVNs...), pickOf(g, fuzzSVNs...)
		t.SNP, t.Microcode = pickOf(g, fuzzSVNs...), pickOf(g, fuzzSVNs...)
		if g.bit() { // Turin and later
			fmc := pickOf(g, fuzzSVNs...)
			t.FMC = &fmc
		}
	})
}

// fuzzTDXClaims are TDX claims of one of tees: MRTD, RTMRs, debug, every
// TCB status and near misses, v4 and v5 quotes.
func fuzzTDXClaims(g *fuzzGen, tees ...string) *attest.TDXClaims {
	c := tdxClaims()
	c.TEE = pickOf(g, tees...)
	c.MRTD = g.digest()
	for _, r := range []*attest.Hex{&c.RTMR0, &c.RTMR1, &c.RTMR2, &c.RTMR3} {
		if g.bit() {
			*r = g.digest()
		}
	}
	c.TDAttributes.Debug = g.bit()
	c.TCBStatus = pickOf(g, fuzzStatus...)
	if g.bit() { // a v4 quote
		c.QuoteVersion, c.TEETCBSVN2, c.MRServiceTD = 4, nil, nil
	}
	return c
}

// fuzzAzureEntry makes an Azure entry's value "" (Azure's firmware, any)
// at times, and pins some of PCRs 0, 4, 7 and 11.
func fuzzAzureEntry(g *fuzzGen, m *refvalues.Measurement) {
	if g.bit() {
		m.Value = ""
	}
	for _, k := range []string{"pcr00", "pcr04", "pcr07", "pcr11"} {
		if g.pick(3) == 0 {
			if m.PCRs == nil {
				m.PCRs = map[string]string{}
			}
			m.PCRs[k] = pickOf(g, fuzzPCRs...)
		}
	}
}

// fuzzVTPM are a vTPM's 24 PCRs, each one of fuzzPCRs, sometimes one
// missing.
func fuzzVTPM(g *fuzzGen) attest.VTPM {
	v := attest.VTPM{TPM: map[string]attest.Hex{}, Azure: attest.AzureVM{SecureBoot: g.bit(), TPMEnabled: true}}
	for i := range 24 {
		if g.pick(16) != 0 {
			v.TPM[fmt.Sprintf("pcr%02d", i)] = mustHex(pickOf(g, fuzzPCRs...))
		}
	}
	return v
}

// fuzzExpiries are expiries around now (fuzzNowPolicy): passed, at now,
// a nanosecond either side, in another zone, and past the range of Unix
// nanoseconds (which OPA refuses with an error and the fast path hands to
// OPA).
func fuzzExpiry(g *fuzzGen, now time.Time) *time.Time {
	var t time.Time
	switch g.pick(9) {
	case 0, 1:
		return nil
	case 2:
		t = now.Add(-time.Hour)
	case 3:
		t = now.Add(-time.Nanosecond)
	case 4:
		t = now
	case 5:
		t = now.Add(time.Nanosecond)
	case 6:
		t = now.Add(time.Hour).In(time.FixedZone("", -7*3600))
	case 7:
		t = now.Add(-time.Nanosecond).In(time.FixedZone("", 5*3600+1800))
	case 8:
		t = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return &t
}

// fuzzSet generates reference values: every TEE's set-wide values and up
// to six measurement entries of any TEE (tee absent, or a TEE's name),
// labels unique but in any order (the lowest matching one decides).
func fuzzSet(g *fuzzGen, now time.Time) *refvalues.Set {
	s := &refvalues.Set{}
	for _, t := range fuzzTEEs {
		if t.set != nil {
			t.set(g, s)
		}
	}
	for i := range g.pick(7) {
		m := refvalues.Measurement{
			Value: pickOf(g, fuzzDigests...),
			Label: fmt.Sprintf("%c-%d", 'a'+g.pick(3), i),
		}
		if k := g.pick(len(fuzzTEEs) + 1); k > 0 {
			m.TEE = fuzzTEEs[k-1].tee
			if e := fuzzTEEs[k-1].entry; e != nil {
				e(g, &m)
			}
		}
		m.Expires = fuzzExpiry(g, now)
		m.Resources = pickOf(g, nil, []string{}, []string{"db"}, []string{"db", "api"})
		s.Measurements = append(s.Measurements, m)
	}
	return s
}

// fuzzNowPolicy is the evaluation time, with nanoseconds (expiries a
// nanosecond either side must be told apart).
var fuzzNowPolicy = time.Date(2026, 12, 1, 0, 0, 0, 123456789, time.UTC)

// FuzzFastPathAgreesWithOPA generates reference values and claims of every
// TEE (fuzzTEEs) from the fuzzer's bytes and requires the fast path's
// decision (allow, reasons in order, label, resources) to equal OPA's on
// the default policy for each; where the fast path declines (claims it
// does not know, reference values it does not mirror), Evaluate must still
// give OPA's decision or OPA's error reason. One compiled set decides up
// to eight claims, so that the compile does not dominate.
func FuzzFastPathAgreesWithOPA(f *testing.F) {
	for _, b := range fuzzSeeds(24) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) { fastAgrees(t, data) })
}

func fuzzSeeds(n int) [][]byte {
	r := rand.New(rand.NewPCG(23, 1))
	seeds := make([][]byte, n)
	for i := range seeds {
		seeds[i] = make([]byte, 96)
		for j := range seeds[i] {
			seeds[i][j] = byte(r.Uint32())
		}
	}
	return seeds
}

// fastAgrees is FuzzFastPathAgreesWithOPA on one input; it returns what
// the input reached: OPA's reasons, "allow with n resources", "<tee>
// decided by the fast path" and "declined by the fast path".
func fastAgrees(t *testing.T, data []byte) (reached []string) {
	ctx := context.Background()
	g := &fuzzGen{data: data}
	now := fuzzNowPolicy
	ref := fuzzSet(g, now)
	e, err := New(ctx, Options{Reference: ref, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	fast := e.cur.Load().fast
	for i := 0; i < 8 && (i == 0 || len(g.data) > 0); i++ {
		c := fuzzTEEs[g.pick(len(fuzzTEEs))].claims(g)
		v, err := e.fields.inputValue(reflect.ValueOf(c))
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := e.evaluate(ctx, v) // OPA
		decided := false
		if fast != nil {
			got, ok := fast.evaluate(c, now)
			if ok && (wantErr != nil || !reflect.DeepEqual(got, want)) {
				refJSON, _ := json.Marshal(ref)
				t.Fatalf("claims %d (%s %T): fast path %+v; OPA %+v, %v\nreference values %s", i, c.TEEName(), c, got, want, wantErr, refJSON)
			}
			decided = ok
		}
		got, gotErr := e.Evaluate(ctx, c)
		if !reflect.DeepEqual(got, want) || reason(gotErr) != reason(wantErr) {
			t.Fatalf("claims %d (%s): Evaluate %+v, %v; OPA %+v, %v", i, c.TEEName(), got, gotErr, want, wantErr)
		}
		reached = append(reached, want.Reasons...)
		if want.Allow {
			reached = append(reached, fmt.Sprintf("allow with %d resources", len(want.Resources)))
		}
		if decided {
			reached = append(reached, fmt.Sprintf("%T decided by the fast path", c))
		} else {
			reached = append(reached, "declined by the fast path")
		}
	}
	return reached
}

// The generator reaches what the fuzz target must compare: every deny
// reason of the default policy, allows with and without resources, claims
// of every TEE the fast path decides, and inputs it declines (so Evaluate
// is compared with OPA there too). Seeded inputs only: no fuzzing here.
func TestFastPathFuzzReachesEveryDecision(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, b := range fuzzSeeds(300) {
		for _, r := range fastAgrees(t, b) {
			seen[r] = true
		}
	}
	want := append(slices.Clone(fastReasons), "allow with 0 resources", "allow with 1 resources", "allow with 2 resources",
		"declined by the fast path")
	for _, tee := range fuzzTEEs {
		want = append(want, fmt.Sprintf("%T decided by the fast path", tee.claims(&fuzzGen{})))
	}
	for _, r := range want {
		if !seen[r] {
			t.Errorf("300 generated inputs never reach %q", r)
		}
	}
}

// reason is err's reason code, "" for nil.
func reason(err error) attest.Reason {
	var ae *attest.Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	if err != nil {
		return "not an *attest.Error"
	}
	return ""
}
