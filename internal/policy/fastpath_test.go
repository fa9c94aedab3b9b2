package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
)

// fastCorpus is the corpus of TestFastPathAgreesWithOPA: reference-value
// sets × SEV-SNP, TDX and Nitro claims, between them reaching every deny reason
// of the default policy, alone and together, and allows with and without
// resources.
func fastCorpus(now time.Time) (refs []*refvalues.Set, cs []attest.Verified) {
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	atNow := now
	mrtd := strings.Repeat("6d", 48)
	rtmr := func(v byte) string { return strings.Repeat(fmt.Sprintf("%02x", v), 48) }
	refs = []*refvalues.Set{
		nil,
		{},
		set(nil),
		{
			Measurements: []refvalues.Measurement{
				{Value: approved, Label: "b-2"},
				{Value: approved, Label: "b-1", Resources: []string{"db", "api"}}, // same value: the lower label decides
				{Value: next, Label: "old", Expires: &past},
				{Value: next, Label: "expires-now", Expires: &atNow},
				{Value: strings.Repeat("43", 48), Label: "later", Expires: &future, Resources: []string{"x"}},
				{Value: mrtd, Label: "snp-entry-with-tdx-value", TEE: refvalues.TEESEVSNP},
				{Value: mrtd, Label: "td-1", TEE: refvalues.TEETDX, Resources: []string{"td-secret"}},
				{Value: mrtd, Label: "td-0-pinned", TEE: refvalues.TEETDX, RTMR: []string{rtmr(1), "", rtmr(3)}},
				{Value: rtmr(7), Label: "td-pin-past-3", TEE: refvalues.TEETDX, RTMR: []string{"", "", "", "", rtmr(0)}},
				{Value: rtmr(8), Label: "td-empty-pins", TEE: refvalues.TEETDX, RTMR: []string{"", "", "", ""}},
				{Value: rtmr(9), Label: "td-expired", TEE: refvalues.TEETDX, Expires: &past},
				{Value: approved, Label: "tdx-with-snp-value", TEE: refvalues.TEETDX},
				{Value: rtmr(0xe0), Label: "enc-1", TEE: refvalues.TEENitro, Resources: []string{"enc-secret"}},
				{Value: rtmr(0xe3), Label: "enc-pinned", TEE: refvalues.TEENitro, PCRs: map[string]string{"pcr1": rtmr(0xe1), "pcr8": rtmr(0xe8)}},
				{Value: rtmr(0xe4), Label: "enc-pin-other", TEE: refvalues.TEENitro, PCRs: map[string]string{"pcr2": rtmr(0xe1)}},
				{Value: rtmr(0xe5), Label: "enc-pin-pcr15", TEE: refvalues.TEENitro, PCRs: map[string]string{"pcr15": rtmr(0)}},
				{Value: rtmr(0), Label: "enc-zero", TEE: refvalues.TEENitro},
				{Value: rtmr(0xe6), Label: "enc-expired", TEE: refvalues.TEENitro, Expires: &past},
				{Value: rtmr(0xe7), Label: "snp-entry-with-nitro-value"},
				{Value: mrtd, Label: "nitro-with-tdx-value", TEE: refvalues.TEENitro},
			},
			MinTCB:       &refvalues.TCB{Bootloader: 3, SNP: 8, Microcode: 115, FMC: 2},
			AllowedVMPL:  []int{0, 2},
			TDXTCBStatus: []string{"UpToDate", "SWHardeningNeeded"},
		},
		{
			Measurements: []refvalues.Measurement{{Value: approved, Label: "a"}, {Value: mrtd, Label: "t", TEE: refvalues.TEETDX}},
			MinTCB:       &refvalues.TCB{TEE: 1},
			AllowedVMPL:  []int{},
			TDXTCBStatus: []string{"OutOfDate"},
		},
	}
	fmc := func(v uint8) *uint8 { return &v }
	snp := []func(*attest.Claims){
		nil,
		func(c *attest.Claims) { c.TEE = "" }, // a tee other than "tdx" is SEV-SNP's
		func(c *attest.Claims) { c.Measurement = mustHex(next) },
		func(c *attest.Claims) { c.Measurement = mustHex(strings.Repeat("43", 48)) },
		func(c *attest.Claims) { c.Measurement = mustHex(mrtd) },
		func(c *attest.Claims) { c.Measurement = mustHex(strings.Repeat("00", 48)) },
		func(c *attest.Claims) { c.Measurement = nil },
		func(c *attest.Claims) { c.Policy.Debug = true },
		func(c *attest.Claims) { c.VMPL = 1 },
		func(c *attest.Claims) { c.VMPL = 2 },
		func(c *attest.Claims) { c.ReportedTCB.Bootloader = 2 },
		func(c *attest.Claims) { c.ReportedTCB.TEE = 1 },
		func(c *attest.Claims) { c.ReportedTCB.SNP = 7 },
		func(c *attest.Claims) { c.ReportedTCB.Microcode = 114 },
		func(c *attest.Claims) { c.ReportedTCB.FMC = fmc(1) },
		func(c *attest.Claims) { c.ReportedTCB.FMC = fmc(2) },
		func(c *attest.Claims) { c.ReportedTCB.Microcode = 255; c.ReportedTCB.TEE = 9 },
		func(c *attest.Claims) {
			c.Measurement = mustHex(next)
			c.Policy.Debug, c.VMPL, c.ReportedTCB.SNP = true, 3, 0
		},
	}
	for _, mut := range snp {
		cs = append(cs, claims(mut))
	}
	tdx := []func(*attest.TDXClaims){
		nil,
		func(c *attest.TDXClaims) { c.TCBStatus = "" },
		func(c *attest.TDXClaims) { c.TCBStatus = "SWHardeningNeeded" },
		func(c *attest.TDXClaims) { c.TCBStatus = "ConfigurationNeeded" },
		func(c *attest.TDXClaims) { c.TCBStatus = "OutOfDate" },
		func(c *attest.TDXClaims) { c.TCBStatus = "OutOfDateConfigurationNeeded" },
		func(c *attest.TDXClaims) { c.TCBStatus = "Revoked" },
		func(c *attest.TDXClaims) { c.TDAttributes.Debug = true },
		func(c *attest.TDXClaims) { c.RTMR2 = mustHex(rtmr(4)) },
		func(c *attest.TDXClaims) { c.RTMR0 = mustHex(rtmr(9)); c.RTMR1 = nil },
		func(c *attest.TDXClaims) { c.MRTD = mustHex(rtmr(7)) },
		func(c *attest.TDXClaims) { c.MRTD = mustHex(rtmr(8)) },
		func(c *attest.TDXClaims) { c.MRTD = mustHex(rtmr(9)) },
		func(c *attest.TDXClaims) { c.MRTD = mustHex(approved) },
		func(c *attest.TDXClaims) {
			c.MRTD = mustHex(next)
			c.TDAttributes.Debug = true
			c.TCBStatus = "OutOfDate"
		},
		func(c *attest.TDXClaims) { c.TEETCBSVN2, c.MRServiceTD, c.AdvisoryIDs = nil, nil, nil }, // v4
	}
	for _, mut := range tdx {
		c := tdxClaims()
		if mut != nil {
			mut(c)
		}
		cs = append(cs, c)
	}
	pcr := func(v byte) attest.Hex { return mustHex(rtmr(v)) }
	nitro := []func(*attest.NitroClaims){
		nil,
		func(c *attest.NitroClaims) { c.PCR0 = pcr(0xe3) },
		func(c *attest.NitroClaims) { c.PCR0, c.PCR8 = pcr(0xe3), pcr(0xe9) },
		func(c *attest.NitroClaims) { c.PCR0, c.PCR8 = pcr(0xe3), nil },
		func(c *attest.NitroClaims) { c.PCR0 = pcr(0xe4) },
		func(c *attest.NitroClaims) { c.PCR0, c.PCR2 = pcr(0xe4), pcr(0xe1) },
		func(c *attest.NitroClaims) { c.PCR0 = pcr(0xe5) },
		func(c *attest.NitroClaims) { c.PCR0, c.PCR15 = pcr(0xe5), nil },
		func(c *attest.NitroClaims) { c.PCR0, c.PCR1, c.PCR2 = pcr(0), pcr(0), pcr(0) },
		func(c *attest.NitroClaims) { c.PCR0, c.PCR1 = pcr(0), pcr(0) },
		func(c *attest.NitroClaims) { c.PCR0, c.PCR1, c.PCR2 = pcr(0xe0), pcr(0), pcr(0) },
		func(c *attest.NitroClaims) { c.PCR0 = pcr(0xe6) },
		func(c *attest.NitroClaims) { c.PCR0 = pcr(0xe7) },
		func(c *attest.NitroClaims) { c.PCR0 = mustHex(mrtd) },
		func(c *attest.NitroClaims) { c.PCR0 = mustHex(approved) },
		func(c *attest.NitroClaims) { c.PCR0 = nil },
		func(c *attest.NitroClaims) { c.PCR0, c.PCR1, c.PCR2 = pcr(0), pcr(0), nil },
	}
	for _, mut := range nitro {
		c := nitroClaims()
		if mut != nil {
			mut(c)
		}
		cs = append(cs, c)
	}
	azRefs, azClaims := azureCorpus(past, approved, mrtd)
	return append(refs, azRefs...), append(cs, azClaims...)
}

// azureCorpus is the Azure part of fastCorpus: a reference set with
// azure-snp and azure-tdx entries (PCR pins, "" values, an expired entry, a
// pin of a PCR the quote lacks, plain SEV-SNP and TDX entries of the same
// values), and Azure claims reaching each check.
func azureCorpus(past time.Time, approved, mrtd string) ([]*refvalues.Set, []attest.Verified) {
	pcr := func(v byte) string { return strings.Repeat(fmt.Sprintf("%02x", v), 32) }
	refs := []*refvalues.Set{{
		Measurements: []refvalues.Measurement{
			{TEE: refvalues.TEEAzureSNP, Label: "az-any-fw", PCRs: map[string]string{"pcr04": pcr(4), "pcr07": pcr(7)}, Resources: []string{"az"}},
			{TEE: refvalues.TEEAzureSNP, Value: approved, Label: "az-fw", PCRs: map[string]string{"pcr11": pcr(11)}},
			{TEE: refvalues.TEEAzureSNP, Label: "az-expired", PCRs: map[string]string{"pcr04": pcr(5)}, Expires: &past},
			{TEE: refvalues.TEEAzureTDX, Value: mrtd, Label: "aztd", PCRs: map[string]string{"pcr00": pcr(0)}},
			{TEE: refvalues.TEEAzureTDX, Label: "aztd-absent-pcr", PCRs: map[string]string{"pcr24": pcr(1)}},
			{Value: approved, Label: "plain-snp"},
			{TEE: refvalues.TEETDX, Value: mrtd, Label: "plain-td"},
		},
		AllowedVMPL: []int{0},
	}}
	tpm := func() map[string]attest.Hex {
		m := map[string]attest.Hex{}
		for i := range 24 {
			m[fmt.Sprintf("pcr%02d", i)] = mustHex(pcr(byte(i)))
		}
		return m
	}
	vm := attest.AzureVM{VMID: "vm", SecureBoot: true, TPMEnabled: true}
	var cs []attest.Verified
	for _, mut := range []func(*attest.AzureSNPClaims){
		nil,
		func(c *attest.AzureSNPClaims) { c.TPM["pcr04"] = mustHex(pcr(5)) },
		func(c *attest.AzureSNPClaims) { c.TPM["pcr04"] = mustHex(pcr(5)); c.Measurement = mustHex(next) },
		func(c *attest.AzureSNPClaims) { delete(c.TPM, "pcr07") },
		func(c *attest.AzureSNPClaims) { c.TPM = nil },
		func(c *attest.AzureSNPClaims) { c.Policy.Debug = true },
		func(c *attest.AzureSNPClaims) { c.VMPL = 1 },
		func(c *attest.AzureSNPClaims) { c.ReportedTCB.TEE = 0 },
	} {
		c := &attest.AzureSNPClaims{Claims: claims(func(c *attest.Claims) { c.TEE = attest.TEEAzureSNP }), VTPM: attest.VTPM{TPM: tpm(), Azure: vm}}
		if mut != nil {
			mut(c)
		}
		cs = append(cs, c)
	}
	for _, mut := range []func(*attest.AzureTDXClaims){
		nil,
		func(c *attest.AzureTDXClaims) { c.TPM["pcr00"] = mustHex(pcr(9)) },
		func(c *attest.AzureTDXClaims) { c.MRTD = mustHex(approved) },
		func(c *attest.AzureTDXClaims) { c.TCBStatus = "OutOfDate" },
		func(c *attest.AzureTDXClaims) { c.TCBStatus = "" },
		func(c *attest.AzureTDXClaims) { c.TDAttributes.Debug = true },
	} {
		td := tdxClaims()
		td.TEE = attest.TEEAzureTDX
		c := &attest.AzureTDXClaims{TDXClaims: td, VTPM: attest.VTPM{TPM: tpm(), Azure: vm}}
		if mut != nil {
			mut(c)
		}
		cs = append(cs, c)
	}
	return refs, cs
}

// The fast path decides as OPA does on the default policy: the same
// Decision (allow, reasons in order, label, resources) for every claim
// of the corpus under every reference-value set, and the corpus reaches
// every deny reason of the default policy. input.launch (which the
// default policy ignores) changes no decision of OPA's.
func TestFastPathAgreesWithOPA(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	refs, cs := fastCorpus(now)
	ctx := context.Background()
	seen := map[string]bool{}
	for i, ref := range refs {
		e := engine(t, "", ref, now)
		p := e.cur.Load()
		if p.fast == nil {
			t.Fatalf("set %d: no fast path for the default policy", i)
		}
		for j, c := range cs {
			v, err := e.fields.inputValue(reflect.ValueOf(c))
			if err != nil {
				t.Fatal(err)
			}
			want, err := e.evaluate(ctx, v) // OPA
			if err != nil {
				t.Fatalf("set %d, claims %d: OPA: %v", i, j, err)
			}
			got, ok := p.fast.evaluate(c, now)
			if !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("set %d, claims %d (%s): fast path %+v (ok %v), OPA %+v", i, j, c.TEEName(), got, ok, want)
			}
			// Evaluate takes the fast path and gives the same.
			if d, err := e.Evaluate(ctx, c); err != nil || !reflect.DeepEqual(d, want) {
				t.Errorf("set %d, claims %d: Evaluate %+v, %v; want %+v", i, j, d, err, want)
			}
			for _, r := range want.Reasons {
				seen[r] = true
			}
			if want.Allow {
				seen[fmt.Sprintf("allow with %d resources", len(want.Resources))] = true
				seen["label "+want.Label] = true
			}
			// With input.launch, OPA decides the same.
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			b = append(bytes.TrimSuffix(b, []byte("}")), `,"launch":{"seq":3,"anomaly":"launch_on_new_chip"}}`...)
			if d, err := e.EvaluateJSON(ctx, b); err != nil || !reflect.DeepEqual(d, want) {
				t.Errorf("set %d, claims %d: with input.launch OPA gives %+v, %v; want %+v", i, j, d, err, want)
			}
		}
	}
	// Azure claims are allowed by PCR pins with a "" value and with the
	// firmware's measurement, never by a plain SEV-SNP or TDX entry.
	for _, l := range []string{"az-any-fw", "az-fw", "aztd"} {
		if !seen["label "+l] {
			t.Errorf("the corpus never allows by %q", l)
		}
	}
	for _, l := range []string{"az-expired", "aztd-absent-pcr"} {
		if seen["label "+l] {
			t.Errorf("%q allowed", l)
		}
	}
	for _, r := range append(fastReasons, "allow with 0 resources", "allow with 1 resources", "allow with 2 resources") {
		if !seen[r] {
			t.Errorf("the corpus never reaches %q", r)
		}
	}
}

// The fast path is the default policy's only: a policy with any other
// source (the default one with a comment added included) goes through
// OPA; so do reference values it does not mirror and claims it does not
// know. fastPathSource is the hash of default.rego: a change of the
// default policy fails here until the fast path is brought along.
func TestFastPathKeyedToSource(t *testing.T) {
	t.Parallel()
	if sum := sha256.Sum256([]byte(DefaultModule())); hex.EncodeToString(sum[:]) != fastPathSource {
		t.Fatalf("default.rego changed (sha256 %x): bring fastpath.go along (TestFastPathAgreesWithOPA) and update fastPathSource", sum)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if engine(t, DefaultModule(), set(nil), now).cur.Load().fast == nil {
		t.Error("the default policy's source given as a file: no fast path")
	}
	changed := DefaultModule() + "\n# changed\n"
	if engine(t, changed, set(nil), now).cur.Load().fast != nil {
		t.Error("a changed default policy has the fast path")
	}
	// A custom policy that allows everything: its decision, not the
	// default policy's.
	allowAll := "package trustgate\n\ndecision := {\"allow\": true, \"reasons\": [], \"label\": \"custom\"}\n"
	e := engine(t, allowAll, set(nil), now)
	if d, err := e.Evaluate(context.Background(), claims(func(c *attest.Claims) { c.Policy.Debug = true })); err != nil || !d.Allow || d.Label != "custom" {
		t.Errorf("custom policy: %+v, %v", d, err)
	}
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	dup := set(func(s *refvalues.Set) { s.Measurements = append(s.Measurements, s.Measurements[0]) })
	for name, ref := range map[string]*refvalues.Set{
		"expiry past int64 ns": set(func(s *refvalues.Set) { s.Measurements[0].Expires = &far }),
		"duplicate label":      dup,
	} {
		if compileFastPath(DefaultModule(), ref) != nil {
			t.Errorf("%s: fast path", name)
		}
	}
	f := compileFastPath(DefaultModule(), set(nil))
	for name, c := range map[string]attest.Verified{
		"SEV-SNP claims naming tdx": claims(func(c *attest.Claims) { c.TEE = "tdx" }),
		"TDX claims naming sev-snp": func() attest.Verified { c := tdxClaims(); c.TEE = "sev-snp"; return c }(),
	} {
		if _, ok := f.evaluate(c, now); ok {
			t.Errorf("%s: decided by the fast path", name)
		}
		// Evaluate still decides them, through OPA.
		e := engine(t, "", set(nil), now)
		v, _ := e.fields.inputValue(reflect.ValueOf(c))
		want, err := e.evaluate(context.Background(), v)
		if d, err2 := e.Evaluate(context.Background(), c); err != nil || err2 != nil || !reflect.DeepEqual(d, want) {
			t.Errorf("%s: Evaluate %+v, %v; OPA %+v, %v", name, d, err2, want, err)
		}
	}
}

// BenchmarkEvaluateOPA is BenchmarkEvaluate through OPA (the path every
// policy other than the default one takes).
func BenchmarkEvaluateOPA(b *testing.B) {
	ref := set(func(s *refvalues.Set) {
		s.Measurements = append(s.Measurements,
			refvalues.Measurement{Value: next, Label: "build-2"},
			refvalues.Measurement{Value: strings.Repeat("43", 48), Label: "build-3"})
		s.MinTCB = &refvalues.TCB{Bootloader: 3, SNP: 8, Microcode: 115}
	})
	e := engine(b, DefaultModule()+"\n", ref, time.Now())
	c := claims(nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d, err := e.Evaluate(ctx, c); err != nil || !d.Allow {
			b.Fatal(d, err)
		}
	}
}
