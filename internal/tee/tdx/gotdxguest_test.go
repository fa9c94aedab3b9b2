package tdx

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
)

// go-tdx-guest v0.3.1 parses version 4 quotes soundly: its fields agree
// with this package's framing and claims on every real v4 quote, so the two
// read the same bytes. It refuses version 5 ("quote format not
// supported"), which is why the framing here is this package's own.
func TestAgreesWithGoTDXGuestOnV4(t *testing.T) {
	t.Parallel()
	v := New(Options{NoCollateral: true, AllowDebug: true, Now: at(t, atNow)})
	seen := map[string]bool{}
	for _, tc := range realCases {
		if seen[tc.file] {
			continue
		}
		seen[tc.file] = true
		q := readQuote(t, tc.file)
		parsed, err := abi.QuoteToProto(q)
		if tc.version == 5 {
			if err == nil {
				t.Errorf("%s: go-tdx-guest v0.3.1 parsed a v5 quote; the framing here may be replaced by it", tc.file)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: go-tdx-guest: %v", tc.file, err)
		}
		p := parsed.(*pb.QuoteV4)
		f, err := frame(q)
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(context.Background(), Evidence{Quote: q})
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		b := p.GetTdQuoteBody()
		rt := b.GetRtmrs()
		qe := p.GetSignedData().GetCertificationData().GetQeReportCertificationData()
		for _, pair := range []struct {
			name       string
			ours, them []byte
		}{
			{"tee_tcb_svn", c.TEETCBSVN, b.GetTeeTcbSvn()}, {"mr_seam", c.MRSeam, b.GetMrSeam()},
			{"mr_signer_seam", c.MRSignerSeam, b.GetMrSignerSeam()}, {"seam_attributes", c.SeamAttrs, b.GetSeamAttributes()},
			{"xfam", c.XFAM, b.GetXfam()}, {"mr_td", c.MRTD, b.GetMrTd()}, {"mr_config_id", c.MRConfigID, b.GetMrConfigId()},
			{"mr_owner", c.MROwner, b.GetMrOwner()}, {"mr_owner_config", c.MROwnerConfig, b.GetMrOwnerConfig()},
			{"rtmr0", c.RTMR0, rt[0]}, {"rtmr1", c.RTMR1, rt[1]}, {"rtmr2", c.RTMR2, rt[2]}, {"rtmr3", c.RTMR3, rt[3]},
			{"report_data", c.ReportData, b.GetReportData()},
			{"signature", f.sig, p.GetSignedData().GetSignature()}, {"attestation key", f.attKey, p.GetSignedData().GetEcdsaAttestationKey()},
			{"QE report signature", f.qeSig, qe.GetQeReportSignature()}, {"QE auth data", f.qeAuth, qe.GetQeAuthData().GetData()},
			{"PCK chain", f.pckChain, qe.GetPckCertificateChainData().GetPckCertChain()},
			{"QE report data", f.qeReport[qeOffReportData : qeOffReportData+64], qe.GetQeReport().GetReportData()},
			{"QE MRSIGNER", f.qeReport[qeOffMRSigner : qeOffMRSigner+32], qe.GetQeReport().GetMrSigner()},
		} {
			if !bytes.Equal(pair.ours, pair.them) {
				t.Errorf("%s: %s differs from go-tdx-guest's", tc.file, pair.name)
			}
		}
		if uint32(f.size) != uint32(len(q)-len(p.GetExtraBytes())) {
			t.Errorf("%s: quote size %d, go-tdx-guest's %d", tc.file, f.size, len(q)-len(p.GetExtraBytes()))
		}
	}
}
