package azure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/pem"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/azure/hcl"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tee/tdx"
)

// SNPVerifier verifies the SEV-SNP report of an HCL blob (snp.Verifier).
type SNPVerifier interface {
	Verify(ctx context.Context, ev snp.Evidence) (*attest.Claims, error)
}

// TDXVerifier verifies the TD quote of an Azure TDX CVM: the use case's
// TDX verifier (tdx.Verifier, or the server's with the simulator), whose
// claims are *attest.TDXClaims.
type TDXVerifier interface {
	VerifyEvidence(ctx context.Context, ev attest.Evidence) (attest.Verified, error)
}

// Options configures a Verifier. The zero value verifies SEV-SNP reports
// with snp.New's defaults (AMD's pinned roots, no network: the VCEK must
// come with the evidence) and TDX quotes with tdx.New's (which, without
// collateral, refuses every quote with collateral_unavailable).
type Options struct {
	// SNP verifies azure-snp hardware reports; nil means snp.New(snp.Options{}).
	SNP SNPVerifier
	// TDX verifies azure-tdx TD quotes; nil means tdx.New(tdx.Options{}).
	TDX TDXVerifier
}

// Verifier verifies Azure CVM evidence. It is safe for concurrent use if
// its SNP and TDX verifiers are.
type Verifier struct {
	snp SNPVerifier
	tdx TDXVerifier
}

// New returns a Verifier with the given options.
func New(o Options) *Verifier {
	v := &Verifier{snp: o.SNP, tdx: o.TDX}
	if v.snp == nil {
		v.snp = snp.New(snp.Options{})
	}
	if v.tdx == nil {
		v.tdx = tdx.New(tdx.Options{})
	}
	return v
}

// Verify checks every link of ev for tee (attest.TEEAzureSNP or
// attest.TEEAzureTDX) in the order of the package documentation and
// returns the claims: *attest.AzureSNPClaims or *attest.AzureTDXClaims.
// The nonce binding is left to attest.ExpectReportData on the result.
// Every rejection is an *attest.Error.
func (v *Verifier) Verify(ctx context.Context, tee string, ev attest.AzureEvidence) (attest.Verified, error) {
	blob, err := hcl.Parse(ev.HCLReport)
	if err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "%w", err)
	}
	switch tee {
	case attest.TEEAzureSNP:
		if blob.Type != hcl.TypeSNP || ev.TDQuote != nil {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "azure-snp evidence is an SEV-SNP HCL report without a TD quote")
		}
		key, chain := splitVCEK(ev.VCEK)
		c, err := v.snp.Verify(ctx, snp.Evidence{Report: blob.Hardware, RuntimeData: blob.RuntimeData, EndorsementKey: key, Chain: chain})
		if err != nil {
			return nil, err
		}
		vt, err := vtpm(blob.RuntimeData, ev.TPMQuote)
		if err != nil {
			return nil, err
		}
		c.TEE = attest.TEEAzureSNP
		return &attest.AzureSNPClaims{Claims: c, VTPM: *vt}, nil
	case attest.TEEAzureTDX:
		if blob.Type != hcl.TypeTDX || ev.VCEK != nil || ev.TDQuote == nil {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "azure-tdx evidence is a TDX HCL report with a TD quote and no VCEK")
		}
		vc, err := v.tdx.VerifyEvidence(ctx, attest.Evidence{Quote: ev.TDQuote})
		if err != nil {
			return nil, err
		}
		c, ok := vc.(*attest.TDXClaims)
		if !ok {
			return nil, attest.Errorf(attest.ReasonInternalError, "the TDX verifier returned %T", vc)
		}
		if !bindsRuntime(c.ReportData, blob.RuntimeData) {
			return nil, attest.Errorf(attest.ReasonReportDataMismatch, "the TD quote's REPORT_DATA is not SHA-256 of the HCL runtime data")
		}
		vt, err := vtpm(blob.RuntimeData, ev.TPMQuote)
		if err != nil {
			return nil, err
		}
		c.TEE = attest.TEEAzureTDX
		return &attest.AzureTDXClaims{TDXClaims: c, VTPM: *vt}, nil
	}
	return nil, attest.Errorf(attest.ReasonMalformedEvidence, "unsupported tee %q", tee)
}

// splitVCEK splits the evidence's vcek: DER, or PEM of the VCEK followed,
// as Azure's THIM serves it, by the ASK and ARK. Those count only as
// snp.Evidence.Chain does: if identical to pinned ones (or signed by an ARK
// key the SEV-SNP verifier trusts).
func splitVCEK(b []byte) (key []byte, chain [][]byte) {
	blk, rest := pem.Decode(b)
	if blk == nil {
		return b, nil
	}
	for next, r := pem.Decode(rest); next != nil; next, r = pem.Decode(r) {
		chain = append(chain, next.Bytes)
	}
	return pem.EncodeToMemory(blk), chain
}

// bindsRuntime reports whether REPORT_DATA is SHA-256(runtime) ‖ 32 zero
// bytes.
func bindsRuntime(reportData, runtime []byte) bool {
	want := sha256.Sum256(runtime)
	return len(reportData) == 64 && bytes.Equal(reportData[:32], want[:]) && zero(reportData[32:])
}

// vtpm reads the runtime data, which the verified hardware report binds,
// and verifies the TPM quote under its attestation key.
func vtpm(runtimeData []byte, q attest.TPMQuote) (*attest.VTPM, error) {
	rt, err := parseRuntime(runtimeData)
	if err != nil {
		return nil, err
	}
	qt, err := verifyQuote(rt.ak, q)
	if err != nil {
		return nil, err
	}
	return &attest.VTPM{TPM: qt.pcrs, Azure: rt.vm, ExtraData: qt.extraData, UserData: rt.userData}, nil
}

// TEE is the use case's TEE interface for one Azure TEE name.
type TEE struct {
	v    *Verifier
	name string
}

// For returns the TEE that verifies evidence of name (attest.TEEAzureSNP
// or attest.TEEAzureTDX) with v.
func (v *Verifier) For(name string) TEE { return TEE{v: v, name: name} }

// VerifyEvidence implements the use case's TEE interface: Azure evidence is
// ev.Azure; a bare report, certificate table or quote is malformed_evidence.
func (t TEE) VerifyEvidence(ctx context.Context, ev attest.Evidence) (attest.Verified, error) {
	if ev.Azure == nil || ev.Report != nil || ev.CertTable != nil || ev.Quote != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "%s evidence is an HCL report and a TPM quote", t.name)
	}
	return t.v.Verify(ctx, t.name, *ev.Azure)
}
