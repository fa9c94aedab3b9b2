package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/tee/nitro"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tee/tdx"
)

const verifyUsage = `usage: trustgate verify REPORT|QUOTE [flags]

Verifies one SEV-SNP attestation report: a raw 1184-byte report, the same as
hex or base64 text, or an Azure CVM HCL report blob. It checks the signature
chain up to AMD's pinned root, the report signature and structure, the
endorsement key's TCB and chip against the report, and that DEBUG is off.

An Intel TDX quote (version 4 or 5; raw, hex or base64, or a JSON document
holding it as a base64 "quote", e.g. a /v1/attest request; bytes after the
quote ignored) is recognised by its header and verified instead: the PCK
chain up to the pinned Intel SGX Root CA, the QE report's signature by the
PCK key and its binding of the attestation key, the quote's signature, and
with Intel's collateral (--collateral files: TCB info and QE identity JSON,
PCK and root CRLs DER or PEM, issuer chains PEM, or a JSON bundle whose
string values are these, as Intel MigTD's) the CRLs, the QE identity
and Intel's TCB level (tcb_status, advisory_ids), at --at; then that the TD
is not debuggable, and (without --policy or --data, which judge it instead)
that the TCB status is one --tcb-status lists (default UpToDate: OutOfDate
is REJECTED tcb_out_of_date, as the service's default policy does). Without --collateral the collateral comes from the
collateral cache (what earlier runs fetched and 'trustgate certs import'
stored) and, unless --offline, Intel's PCS (--pcs-url); none to be had is
collateral_unavailable (exit 3). --no-collateral checks signatures, QE
binding and PCK chain only and says so on stderr. --measurement is then MRTD.

Azure confidential VM evidence (a JSON document with an HCL report and a TPM
quote, in SPEC "Azure confidential VMs" or Trustee's v0/v1/v2 layouts) is
verified link by link: the SEV-SNP report (with the evidence's VCEK, --vcek,
or the KDS) or the TD quote (with the TDX collateral flags); REPORT_DATA =
SHA-256 of the HCL runtime data; the TPM quote's signature by the runtime
data's HCLAkPub; the PCR values against the quote's digest. --report-data
(1 to 64 bytes) is then compared with the quote's extraData, and with the
runtime data's user-data when that is not zero.

Endorsement keys come from --cert-table, then --vcek, then the certificate
cache (what earlier runs fetched and 'trustgate certs import' stored), then
the AMD KDS (unless --offline); what the KDS serves is cached on disk.

Revocation is checked against AMD's CRL for the chain (cached, imported or
fetched); when no current CRL can be had the verdict is vcek_unavailable
(exit 3). --no-revocation skips the check and says so on stderr.

With --policy and/or --data, a verified report is then appraised by the
policy (the default policy when only --data is given) with the reference
values of --data; a deny is REJECTED with the policy's reason.

An AWS Nitro Enclaves attestation document (COSE_Sign1; raw CBOR, base64, or
{"document": base64} as in a /v1/attest request's evidence) is recognised and
verified instead: the certificate chain (certificate + cabundle) to the pinned
AWS Nitro Enclaves Root-G1 at --at (a leaf certificate lives three hours), the
ES384 signature by the leaf, the fields, and that the enclave is not in debug
mode (PCR0, PCR1 and PCR2 all zero). --measurement is then PCR0 and
--report-data the document's nonce.

Exit status: 0 verified, 1 rejected, 2 usage error, 3 VCEK or collateral
unavailable.

flags:
`

func cmdVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	cli.Conventions(fs, "trustgate verify", stdout, stderr, func(w io.Writer) { fmt.Fprint(w, verifyUsage); fs.PrintDefaults() })
	vcekFile := fs.String("vcek", "", "VCEK or VLEK certificate `FILE` (DER or PEM)")
	tableFile := fs.String("cert-table", "", "extended report certificate table `FILE` (GHCB GUID table)")
	chainFile := fs.String("chain", "", "ASK+ARK PEM `FILE`; counts only if identical to AMD's pinned certificates")
	offline := fs.Bool("offline", false, "never touch the network; fail with vcek_unavailable if no VCEK/VLEK is at hand")
	kdsURL := fs.String("kds-url", certs.DefaultKDSURL, "AMD KDS base `URL`")
	noRevocation := fs.Bool("no-revocation", false, "do not check AMD's CRL (dangerous: a revoked key verifies)")
	atFlag := fs.String("at", "", "judge certificate validity at this RFC 3339 `time` (default now)")
	jsonOut := fs.Bool("json", false, "print the verdict and claims as JSON")
	allowDebug := fs.Bool("allow-debug", false, "accept a guest whose policy allows DEBUG (dangerous)")
	policyFile := fs.String("policy", "", "appraise with this Rego policy `FILE` (default policy when only --data is given)")
	dataFile := fs.String("data", "", "reference-values `FILE` (JSON or YAML) for the policy")
	measurement := &hexFlag{n: 48}
	fs.Var(measurement, "measurement", "expected launch measurement (48 bytes, `HEX`)")
	reportData := &hexFlag{n: nitro.MaxUserData, min: 1}
	fs.Var(reportData, "report-data", "expected REPORT_DATA (64 bytes, `HEX`; Azure vTPM evidence: the TPM quote's extraData, 1 to 64 bytes; Nitro: the document's nonce, 1 to 1024 bytes)")
	tf := tdxFlags(fs)

	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "trustgate verify: want exactly one EVIDENCE file (an SEV-SNP report or a TDX quote)")
		fmt.Fprintln(stderr, "Run 'trustgate verify --help' for usage.")
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "trustgate verify: "+format+"\n", a...)
		return exitUsage
	}

	// A report file larger than the limits is evidence, not a usage
	// error: read one byte past the larger limit and let DecodeQuote or
	// DecodeReport reject it.
	raw, err := readAtMost(pos[0], tdx.MaxInputSize+1)
	if err != nil {
		return usageErr("%v", err)
	}
	if ev, ok := nitroDocument(raw); ok {
		return verifyNitro(ev, common{at: *atFlag, allowDebug: *allowDebug, jsonOut: *jsonOut, policy: *policyFile, data: *dataFile,
			measurement: measurement.val, reportData: reportData.val}, setFlags(fs, "vcek", "cert-table", "chain", "kds-url", "no-revocation",
			"collateral", "no-collateral", "pcs-url", "pcs-root-crl-url"), stdout, stderr)
	}
	if ev, ok := azureEvidence(raw); ok {
		if len(reportData.val) > 64 {
			return usageErr("--report-data: want 1 to 64 bytes for Azure vTPM evidence, got %d bytes", len(reportData.val))
		}
		return verifyAzure(ev, azureFlags{vcek: *vcekFile, kdsURL: *kdsURL, noRevocation: *noRevocation, tdx: tf}, common{at: *atFlag, offline: *offline, allowDebug: *allowDebug, jsonOut: *jsonOut,
			policy: *policyFile, data: *dataFile, measurement: measurement.val, reportData: reportData.val,
			snpOnly: setFlags(fs, "cert-table", "chain")}, stdout, stderr)
	}
	if reportData.val != nil && len(reportData.val) != 64 {
		return usageErr("--report-data: want 64 bytes (128 hex digits) for a report or quote, got %d bytes", len(reportData.val))
	}
	// --collateral or --no-collateral say the input is meant as a TDX
	// quote: unless it is an SEV-SNP report, whatever it is then is
	// judged (malformed_evidence, unsupported_version), not a usage error.
	tdxAsked := len(tf.collateral) > 0 || tf.noCollateral
	_, snpErr := snp.DecodeReport(raw)
	if isTDX(raw) || (tdxAsked && snpErr != nil) {
		return verifyTDX(raw, tf, common{at: *atFlag, offline: *offline, allowDebug: *allowDebug, jsonOut: *jsonOut,
			policy: *policyFile, data: *dataFile, measurement: measurement.val, reportData: reportData.val,
			snpOnly: setFlags(fs, "vcek", "cert-table", "chain", "kds-url", "no-revocation")}, stdout, stderr)
	}
	if tdxAsked {
		return usageErr("--collateral and --no-collateral are for TDX quotes; %s is not one", pos[0])
	}
	opts, keys, err := snpVerifyOptions(*atFlag, *allowDebug, *kdsURL, *offline, *noRevocation, stderr)
	if err != nil {
		return usageErr("%v", err)
	}
	defer keys.Close()

	ev, decodeErr := snp.DecodeReport(raw)
	if ev.Ignored > 0 {
		fmt.Fprintf(stderr, "trustgate verify: %d bytes after the report ignored\n", ev.Ignored)
	}
	if *vcekFile != "" {
		b, err := readLimited(*vcekFile, 64<<10)
		if err != nil {
			return usageErr("--vcek: %v", err)
		}
		if ev.EndorsementKey, err = snp.CertificateDER(b); err != nil {
			return usageErr("--vcek %s: not a certificate: %v", *vcekFile, err)
		}
	}
	if *tableFile != "" {
		if ev.CertTable, err = readLimited(*tableFile, snp.MaxCertTableSize); err != nil {
			return usageErr("--cert-table: %v", err)
		}
	}
	if *chainFile != "" {
		b, err := readLimited(*chainFile, 64<<10)
		if err != nil {
			return usageErr("--chain: %v", err)
		}
		for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
			ev.Chain = append(ev.Chain, blk.Bytes)
		}
		if len(ev.Chain) == 0 {
			return usageErr("--chain %s: no PEM certificates", *chainFile)
		}
	}

	var engine *policy.Engine
	if *policyFile != "" || *dataFile != "" {
		if engine, err = loadPolicy(*policyFile, *dataFile, opts.Now); err != nil {
			return usageErr("%v", err)
		}
	}

	var claims attest.Verified
	var decision *attest.Decision
	err = decodeErr
	if err == nil {
		var c *attest.Claims
		if c, err = snp.New(opts).Verify(context.Background(), ev); err == nil {
			claims = c
		}
	}
	if err == nil {
		err = attest.Expect(claims, measurement.val, reportData.val)
	}
	if err == nil && engine != nil {
		var d attest.Decision
		if d, err = engine.Evaluate(context.Background(), claims); err == nil {
			decision, err = &d, d.Err()
		}
	}
	if attest.ReasonOf(err) == attest.ReasonVCEKUnavailable {
		offlineHint(stderr, *offline)
	}
	return report(stdout, *jsonOut, claims, decision, err)
}

// offlineHint says what to do when the VCEK or AMD's CRL could not be had:
// most often a host without network.
func offlineHint(w io.Writer, offline bool) {
	if offline {
		fmt.Fprintln(w, "trustgate verify: --offline and no VCEK or CRL at hand: give the chip's VCEK with --vcek FILE (and --no-revocation")
		fmt.Fprintln(w, "  without AMD's CRL), or import both from a bundle made on a connected host ('trustgate certs fetch', then 'trustgate certs import').")
		return
	}
	fmt.Fprintln(w, "trustgate verify: AMD's KDS did not give the VCEK or CRL (no network?). To verify without network: --vcek FILE --offline")
	fmt.Fprintln(w, "  (and --no-revocation without AMD's CRL), or 'trustgate certs fetch' on a connected host and 'trustgate certs import' here.")
}

// snpVerifyOptions builds the SEV-SNP verifier options of `trustgate
// verify`: --at, --allow-debug, and the certificate service (cache, KDS
// unless offline) as key source and, unless --no-revocation, revocation
// checker. The caller closes the service.
func snpVerifyOptions(atFlag string, allowDebug bool, kdsURL string, offline, noRevocation bool, stderr io.Writer) (snp.Options, io.Closer, error) {
	opts := snp.Options{AllowDebug: allowDebug}
	if atFlag != "" {
		at, err := time.Parse(time.RFC3339, atFlag)
		if err != nil {
			return opts, nil, fmt.Errorf("--at: %w", err)
		}
		opts.Now = func() time.Time { return at }
	}
	keys, err := verifyKeys(kdsURL, offline, opts.Now, stderr)
	if err != nil {
		return opts, nil, err
	}
	opts.Keys = keys
	if noRevocation {
		fmt.Fprintln(stderr, "trustgate verify: warning: --no-revocation: AMD's CRL is not checked")
	} else {
		opts.Revocation = keys
	}
	return opts, keys, nil
}

// report prints the verdict line first, then the claims of an accepted
// report (SPEC "CLI"), and returns the exit status.
func report(w io.Writer, asJSON bool, claims attest.Verified, decision *attest.Decision, err error) int {
	reason := attest.ReasonOf(err)
	code := exitOK
	switch {
	case err == nil:
	case reason.Unavailable():
		code = exitUnavailable
	default:
		code = exitRejected
	}
	if err != nil {
		claims = nil // claims of a rejected report are not shown
	}
	if asJSON {
		out := struct {
			Verdict string           `json:"verdict"`
			Reason  attest.Reason    `json:"reason,omitempty"`
			Detail  string           `json:"detail,omitempty"`
			Policy  *attest.Decision `json:"policy,omitempty"`
			Claims  attest.Verified  `json:"claims,omitempty"`
		}{Verdict: "VERIFIED", Policy: decision, Claims: claims}
		if err != nil {
			out.Verdict, out.Reason, out.Detail = "REJECTED", reason, attest.Detail(err)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return code
	}
	if err != nil {
		fmt.Fprintf(w, "REJECTED: %s\n  detail: %s\n", reason, attest.Detail(err))
		if decision != nil {
			fmt.Fprintf(w, "  policy: deny (%s)\n", strings.Join(decision.Reasons, ", "))
		}
		return code
	}
	fmt.Fprintln(w, "VERIFIED")
	if decision != nil {
		line := "allow"
		if decision.Label != "" {
			line += " (label " + decision.Label + ")"
		}
		if len(decision.Resources) > 0 {
			line += ", resources: " + strings.Join(decision.Resources, ", ")
		}
		fmt.Fprintf(w, "  %-18s %s\n", "policy:", line)
	}
	switch c := claims.(type) {
	case *attest.Claims:
		printClaims(w, c)
	case *attest.TDXClaims:
		printTDXClaims(w, c)
	case *attest.NitroClaims:
		printNitroClaims(w, c)
	case *attest.AzureSNPClaims:
		printClaims(w, c.Claims)
		printVTPM(w, &c.VTPM)
	case *attest.AzureTDXClaims:
		printTDXClaims(w, c.TDXClaims)
		printVTPM(w, &c.VTPM)
	}
	return code
}

func printClaims(w io.Writer, c *attest.Claims) {
	tcb := func(t attest.TCB) string {
		s := fmt.Sprintf("bootloader=%d tee=%d snp=%d microcode=%d", t.Bootloader, t.TEE, t.SNP, t.Microcode)
		if t.FMC != nil {
			s = fmt.Sprintf("fmc=%d ", *t.FMC) + s
		}
		return s
	}
	p := c.Policy
	pi := c.PlatformInfo
	rows := []struct{ k, v string }{
		{"tee", c.TEE}, {"product", c.Product}, {"signer", c.Signer},
		{"report_version", fmt.Sprint(c.ReportVersion)}, {"vmpl", fmt.Sprint(c.VMPL)}, {"guest_svn", fmt.Sprint(c.GuestSVN)},
		{"measurement", c.Measurement.String()}, {"host_data", c.HostData.String()}, {"report_data", c.ReportData.String()},
		{"family_id", c.FamilyID.String()}, {"image_id", c.ImageID.String()},
		{"id_key_digest", c.IDKeyDigest.String()}, {"author_key_digest", c.AuthorKeyDigest.String()},
		{"signer_info", fmt.Sprintf("author_key_en=%t mask_chip_key=%t", c.AuthorKeyEn, c.MaskChipKey)},
		{"report_id", c.ReportID.String()}, {"report_id_ma", c.ReportIDMA.String()}, {"chip_id", c.ChipID.String()},
		{"policy", fmt.Sprintf("abi=%d.%d debug=%t migrate_ma=%t smt=%t single_socket=%t cxl_allow=%t mem_aes_256_xts=%t rapl_dis=%t ciphertext_hiding=%t page_swap_disable=%t",
			p.ABIMajor, p.ABIMinor, p.Debug, p.MigrateMA, p.SMT, p.SingleSocket, p.CXLAllow, p.MemAES256XTS, p.RAPLDis, p.CiphertextHiding, p.PageSwapDisable)},
		{"platform_info", fmt.Sprintf("smt_enabled=%t tsme_enabled=%t ecc_enabled=%t rapl_disabled=%t ciphertext_hiding_enabled=%t alias_check_complete=%t iommu_write_safe=%t tio_enabled=%t",
			pi.SMTEnabled, pi.TSMEEnabled, pi.ECCEnabled, pi.RAPLDisabled, pi.CiphertextHidingEnabled, pi.AliasCheckComplete, pi.IOMMUWriteSafe, pi.TIOEnabled)},
		{"current_tcb", tcb(c.CurrentTCB)}, {"committed_tcb", tcb(c.CommittedTCB)},
		{"reported_tcb", tcb(c.ReportedTCB)}, {"launch_tcb", tcb(c.LaunchTCB)},
		{"current_version", c.CurrentVersion}, {"committed_version", c.CommittedVersion},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-18s %s\n", r.k+":", r.v)
	}
}

// readAtMost reads the first n bytes of a file.
func readAtMost(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	b, err := readAtMost(path, limit+1)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}
