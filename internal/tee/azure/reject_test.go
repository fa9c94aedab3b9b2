package azure

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/azure/hcl"
)

// cloneEvidence deep-copies ev so that a test may change any byte.
func cloneEvidence(ev attest.AzureEvidence) attest.AzureEvidence {
	out := ev
	out.HCLReport = bytes.Clone(ev.HCLReport)
	out.VCEK = bytes.Clone(ev.VCEK)
	out.TDQuote = bytes.Clone(ev.TDQuote)
	out.TPMQuote.Message = bytes.Clone(ev.TPMQuote.Message)
	out.TPMQuote.Signature = bytes.Clone(ev.TPMQuote.Signature)
	out.TPMQuote.PCRs = make([][]byte, len(ev.TPMQuote.PCRs))
	for i, p := range ev.TPMQuote.PCRs {
		out.TPMQuote.PCRs[i] = bytes.Clone(p)
	}
	return out
}

// runtimeOffset returns where needle starts in the HCL blob's runtime data.
func runtimeOffset(t *testing.T, blob []byte, needle string) int {
	t.Helper()
	i := bytes.Index(blob[hcl.VarDataOff:], []byte(needle))
	if i < 0 {
		t.Fatalf("runtime data has no %q", needle)
	}
	return hcl.VarDataOff + i
}

// Every link of real evidence, changed, is refused with its reason.
func TestRejectsEachBrokenLink(t *testing.T) {
	t.Parallel()
	v := realVerifier()
	snpEv := decodeFile(t, "snp-evidence-v1.json")
	tdxEv := decodeFile(t, "tdx-evidence-v1.json")
	genoa := decodeFile(t, "snp-evidence-genoa.json")
	for _, tc := range []struct {
		name   string
		tee    string
		base   attest.AzureEvidence
		change func(t *testing.T, ev *attest.AzureEvidence)
		want   attest.Reason
	}{
		{"a PCR", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TPMQuote.PCRs[4][0] ^= 1 }, attest.ReasonSignatureInvalid},
		{"the last PCR", attest.TEEAzureTDX, tdxEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TPMQuote.PCRs[23][31] ^= 1 }, attest.ReasonSignatureInvalid},
		{"the quote signature", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TPMQuote.Signature[10] ^= 1 }, attest.ReasonSignatureInvalid},
		{"the quote message (extraData)", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) {
			i := bytes.Index(ev.TPMQuote.Message, challenge)
			ev.TPMQuote.Message[i] ^= 1
		}, attest.ReasonSignatureInvalid},
		{"the quote message (pcrDigest)", attest.TEEAzureTDX, tdxEv, func(t *testing.T, ev *attest.AzureEvidence) {
			ev.TPMQuote.Message[len(ev.TPMQuote.Message)-1] ^= 1
		}, attest.ReasonSignatureInvalid},
		{"the attestation key in the runtime data", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) {
			i := runtimeOffset(t, ev.HCLReport, `"kid":"HCLAkPub"`)
			j := bytes.Index(ev.HCLReport[i:], []byte(`"n":"`)) + i + 10
			ev.HCLReport[j] ^= 0x01 // base64url letter to its neighbour
		}, attest.ReasonReportDataMismatch},
		{"the attestation key in the TDX runtime data", attest.TEEAzureTDX, tdxEv, func(t *testing.T, ev *attest.AzureEvidence) {
			i := runtimeOffset(t, ev.HCLReport, `"kid":"HCLAkPub"`)
			j := bytes.Index(ev.HCLReport[i:], []byte(`"n":"`)) + i + 10
			ev.HCLReport[j] ^= 0x01
		}, attest.ReasonReportDataMismatch},
		{"the SNP report (measurement)", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.HCLReport[hcl.HeaderSize+0x90] ^= 1 }, attest.ReasonSignatureInvalid},
		{"the TD quote", attest.TEEAzureTDX, tdxEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TDQuote[48+136] ^= 1 }, attest.ReasonSignatureInvalid},
		{"the user-data", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) {
			i := runtimeOffset(t, ev.HCLReport, `"user-data":"`) + len(`"user-data":"`)
			ev.HCLReport[i] = '1'
		}, attest.ReasonReportDataMismatch},
		{"a TPM quote from another VM", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TPMQuote = cloneEvidence(genoa).TPMQuote }, attest.ReasonSignatureInvalid},
		{"a TPM quote from a TDX VM", attest.TEEAzureTDX, tdxEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TPMQuote = cloneEvidence(snpEv).TPMQuote }, attest.ReasonSignatureInvalid},
		{"an HCL report of another VM", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) {
			g := cloneEvidence(genoa)
			ev.HCLReport, ev.VCEK = g.HCLReport, g.VCEK
		}, attest.ReasonSignatureInvalid},
		{"a PCR dropped", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TPMQuote.PCRs = ev.TPMQuote.PCRs[:23] }, attest.ReasonMalformedEvidence},
		{"a short PCR", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TPMQuote.PCRs[0] = ev.TPMQuote.PCRs[0][:31] }, attest.ReasonMalformedEvidence},
		{"the HCL magic", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.HCLReport[0] = 'X' }, attest.ReasonMalformedEvidence},
		{"an SNP blob as azure-tdx", attest.TEEAzureTDX, snpEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TDQuote = cloneEvidence(tdxEv).TDQuote; ev.VCEK = nil }, attest.ReasonMalformedEvidence},
		{"a TDX blob as azure-snp", attest.TEEAzureSNP, tdxEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TDQuote = nil }, attest.ReasonMalformedEvidence},
		{"azure-tdx without a TD quote", attest.TEEAzureTDX, tdxEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TDQuote = nil }, attest.ReasonMalformedEvidence},
		{"a signature of the wrong size", attest.TEEAzureSNP, snpEv, func(t *testing.T, ev *attest.AzureEvidence) { ev.TPMQuote.Signature = ev.TPMQuote.Signature[1:] }, attest.ReasonSignatureInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev := cloneEvidence(tc.base)
			tc.change(t, &ev)
			_, err := v.Verify(context.Background(), tc.tee, ev)
			var e *attest.Error
			if !errors.As(err, &e) || e.Reason != tc.want {
				t.Fatalf("Verify = %v, want reason %s", err, tc.want)
			}
		})
	}
}

// A TD quote of another TD does not bind this HCL runtime data.
func TestRejectsTDQuoteOfAnotherTD(t *testing.T) {
	t.Parallel()
	ev := cloneEvidence(decodeFile(t, "tdx-evidence-v1.json"))
	q, err := tdxTestdata("trustee-quote-6.dat")
	if err != nil {
		t.Fatal(err)
	}
	ev.TDQuote = q
	_, err = realVerifier().Verify(context.Background(), attest.TEEAzureTDX, ev)
	if got := attest.ReasonOf(err); got != attest.ReasonReportDataMismatch {
		t.Fatalf("Verify = %v, want report_data_mismatch", err)
	}
}

// The user-data binding: with user-data set (v2), the expected value must
// also begin the user-data, not only be the cut extraData.
func TestUserDataBindsTheWholeExpectedValue(t *testing.T) {
	t.Parallel()
	c, err := realVerifier().Verify(context.Background(), attest.TEEAzureSNP, decodeFile(t, "snp-evidence-v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	nonce := nonceOf(t, realSets[2].nonce)
	full := append(bytes.Clone(nonce), make([]byte, 16)...) // the 64-byte REPORT_DATA the guest wrote
	if err := attest.ExpectReportData(c, full); err != nil {
		t.Errorf("64-byte expected value = user-data: %v", err)
	}
	tail := bytes.Clone(full)
	tail[63] = 1 // extraData (48 bytes) still matches, user-data does not
	if got := attest.ReasonOf(attest.ExpectReportData(c, tail)); got != attest.ReasonReportDataMismatch {
		t.Errorf("expected value differing from user-data after byte 48: reason %q, want report_data_mismatch", got)
	}
}

// signedQuote is a quote message signed by a test key, to reach the checks
// that follow the signature.
func signedQuote(t *testing.T, key *rsa.PrivateKey, att *tpm2.TPMSAttest, pcrs [][]byte) attest.TPMQuote {
	t.Helper()
	msg := tpm2.Marshal(att)
	return signMessage(t, key, msg, pcrs)
}

func signMessage(t *testing.T, key *rsa.PrivateKey, msg []byte, pcrs [][]byte) attest.TPMQuote {
	t.Helper()
	d := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, 5 /* crypto.SHA256 */, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return attest.TPMQuote{Message: msg, Signature: sig, PCRs: pcrs}
}

func quoteAttest(bank tpm2.TPMAlgID, sel []byte, digest []byte, typ tpm2.TPMST) *tpm2.TPMSAttest {
	return &tpm2.TPMSAttest{
		Magic:     tpm2.TPMGeneratedValue,
		Type:      typ,
		ExtraData: tpm2.TPM2BData{Buffer: challenge},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: bank, PCRSelect: sel}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: digest},
		}),
	}
}

// The checks after the quote's signature, on quotes signed by a test key.
func TestQuoteStructure(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pcr := bytes.Repeat([]byte{7}, 32)
	two := sha256.Sum256(append(bytes.Clone(pcr), pcr...))
	good := quoteAttest(tpm2.TPMAlgSHA256, []byte{0x11, 0, 0}, two[:], tpm2.TPMSTAttestQuote) // PCRs 0 and 4
	okQuote := signedQuote(t, key, good, [][]byte{pcr, pcr})
	q, err := verifyQuote(&key.PublicKey, okQuote)
	if err != nil {
		t.Fatalf("good quote: %v", err)
	}
	if len(q.pcrs) != 2 || q.pcrs["pcr00"] == nil || q.pcrs["pcr04"] == nil || !bytes.Equal(q.extraData, challenge) {
		t.Fatalf("good quote: pcrs %v, extraData %q", q.pcrs, q.extraData)
	}
	// The TPMT_SIGNATURE form of the same signature verifies too.
	wrapped := tpm2.Marshal(&tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgRSASSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA,
		&tpm2.TPMSSignatureRSA{Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: okQuote.Signature}})})
	if _, err := verifyQuote(&key.PublicKey, attest.TPMQuote{Message: okQuote.Message, Signature: wrapped, PCRs: okQuote.PCRs}); err != nil {
		t.Errorf("TPMT_SIGNATURE: %v", err)
	}
	sha1Sig := tpm2.Marshal(&tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgRSASSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA,
		&tpm2.TPMSSignatureRSA{Hash: tpm2.TPMAlgSHA1, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: okQuote.Signature}})})

	for _, tc := range []struct {
		name string
		q    attest.TPMQuote
		want attest.Reason
	}{
		{"TPMT_SIGNATURE with SHA-1", attest.TPMQuote{Message: okQuote.Message, Signature: sha1Sig, PCRs: okQuote.PCRs}, attest.ReasonSignatureInvalid},
		{"not a quote", signMessage(t, key, append(append(bytes.Clone(okQuote.Message[:4]), 0x80, 0x17), okQuote.Message[6:]...), [][]byte{pcr, pcr}), attest.ReasonMalformedEvidence},
		{"a SHA-1 bank", signedQuote(t, key, quoteAttest(tpm2.TPMAlgSHA1, []byte{0x11, 0, 0}, two[:], tpm2.TPMSTAttestQuote), [][]byte{pcr, pcr}), attest.ReasonMalformedEvidence},
		{"PCR 24 selected", signedQuote(t, key, quoteAttest(tpm2.TPMAlgSHA256, []byte{0x01, 0, 0, 0x01}, two[:], tpm2.TPMSTAttestQuote), [][]byte{pcr, pcr}), attest.ReasonMalformedEvidence},
		{"no PCR selected", signedQuote(t, key, quoteAttest(tpm2.TPMAlgSHA256, []byte{0, 0, 0}, two[:], tpm2.TPMSTAttestQuote), nil), attest.ReasonMalformedEvidence},
		{"bytes after the TPMS_ATTEST", signMessage(t, key, append(bytes.Clone(okQuote.Message), 0), [][]byte{pcr, pcr}), attest.ReasonMalformedEvidence},
		{"not TPM_GENERATED", signMessage(t, key, append([]byte{0}, okQuote.Message[1:]...), [][]byte{pcr, pcr}), attest.ReasonMalformedEvidence},
		{"truncated", signMessage(t, key, okQuote.Message[:20], [][]byte{pcr, pcr}), attest.ReasonMalformedEvidence},
		{"PCR values in another order", signedQuote(t, key, good, [][]byte{pcr, bytes.Repeat([]byte{8}, 32)}), attest.ReasonSignatureInvalid},
	} {
		_, err := verifyQuote(&key.PublicKey, tc.q)
		if got := attest.ReasonOf(err); got != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
}
