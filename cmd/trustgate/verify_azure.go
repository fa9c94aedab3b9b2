package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/tee/azure"
	"github.com/trustgate/trustgate/internal/tee/azure/hcl"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tee/tdx"
)

// azureFlags are the flags of `trustgate verify` an Azure evidence set
// uses besides the common ones.
type azureFlags struct {
	vcek         string
	kdsURL       string
	noRevocation bool
	tdx          *tdxOptions
}

// azureEvidence recognises Azure vTPM evidence JSON (SPEC "Azure
// confidential VMs", Trustee's layouts) by its HCL report and TPM quote.
func azureEvidence(raw []byte) (attest.AzureEvidence, bool) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return attest.AzureEvidence{}, false
	}
	ev, err := azure.DecodeEvidence(t)
	if err != nil || !bytes.HasPrefix(ev.HCLReport, hcl.Magic) {
		return attest.AzureEvidence{}, false
	}
	return ev, true
}

// verifyAzure is `trustgate verify` for Azure vTPM evidence: the HCL
// report's type says azure-snp or azure-tdx; --report-data is compared
// with the TPM quote's extraData (and a non-zero user-data).
func verifyAzure(ev attest.AzureEvidence, f azureFlags, c common, stdout, stderr io.Writer) int {
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "trustgate verify: "+format+"\n", a...)
		return exitUsage
	}
	if len(c.snpOnly) > 0 {
		return usageErr("%s: not for Azure vTPM evidence", strings.Join(c.snpOnly, ", "))
	}
	blob, err := hcl.Parse(ev.HCLReport)
	if err != nil {
		return report(stdout, c.jsonOut, nil, nil, attest.Errorf(attest.ReasonMalformedEvidence, "%w", err))
	}
	tee := attest.TEEAzureSNP
	var o azure.Options
	var now func() time.Time // --at
	if blob.Type == hcl.TypeTDX {
		tee = attest.TEEAzureTDX
		if f.vcek != "" || f.noRevocation {
			return usageErr("--vcek and --no-revocation are for SEV-SNP; this is Azure TDX evidence")
		}
		opts, closer, err := tdxVerifyOptions(f.tdx, c, stderr)
		if err != nil {
			return usageErr("%v", err)
		}
		defer closer()
		o.TDX, now = tdx.New(opts), opts.Now
	} else {
		if len(f.tdx.collateral) > 0 || f.tdx.noCollateral {
			return usageErr("--collateral and --no-collateral are for TDX; this is Azure SEV-SNP evidence")
		}
		opts, keys, err := snpVerifyOptions(c.at, c.allowDebug, f.kdsURL, c.offline, f.noRevocation, stderr)
		if err != nil {
			return usageErr("%v", err)
		}
		defer keys.Close()
		if f.vcek != "" {
			b, err := readLimited(f.vcek, 64<<10)
			if err != nil {
				return usageErr("--vcek: %v", err)
			}
			if ev.VCEK, err = snp.CertificateDER(b); err != nil {
				return usageErr("--vcek %s: not a certificate: %v", f.vcek, err)
			}
		}
		o.SNP, now = snp.New(opts), opts.Now
	}
	var engine *policy.Engine
	if c.policy != "" || c.data != "" {
		if engine, err = loadPolicy(c.policy, c.data, now); err != nil {
			return usageErr("%v", err)
		}
	}
	claims, err := azure.New(o).Verify(context.Background(), tee, ev)
	return judge(stdout, c, engine, claims, err)
}

// judge ends `trustgate verify` of evidence that verified (err nil) or
// not: the exact expectations (--measurement, --report-data), then the
// policy when there is one, then the verdict; it returns the exit status.
func judge(w io.Writer, c common, engine *policy.Engine, claims attest.Verified, err error) int {
	var decision *attest.Decision
	if err == nil {
		err = attest.Expect(claims, c.measurement, c.reportData)
	}
	if err == nil && engine != nil {
		var d attest.Decision
		if d, err = engine.Evaluate(context.Background(), claims); err == nil {
			decision, err = &d, d.Err()
		}
	}
	return report(w, c.jsonOut, claims, decision, err)
}

// printVTPM prints what the vTPM adds: the VM configuration and the PCRs.
func printVTPM(w io.Writer, v *attest.VTPM) {
	rows := []struct{ k, v string }{
		{"vm_id", v.Azure.VMID},
		{"vm_config", fmt.Sprintf("secure_boot=%t tpm_enabled=%t console_enabled=%t", v.Azure.SecureBoot, v.Azure.TPMEnabled, v.Azure.ConsoleEnabled)},
	}
	pcrs := make([]string, 0, len(v.TPM))
	for k := range v.TPM {
		pcrs = append(pcrs, k)
	}
	sort.Strings(pcrs)
	for _, k := range pcrs {
		rows = append(rows, struct{ k, v string }{k, v.TPM[k].String()})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-18s %s\n", r.k+":", r.v)
	}
}
