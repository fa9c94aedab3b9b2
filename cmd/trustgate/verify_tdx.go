package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/pcs"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/tiered"
)

// DefaultPCSURL is Intel's Provisioning Certification Service, API v4.
const DefaultPCSURL = pcs.DefaultURL

// tdxOptions are the flags of `trustgate verify` that only TDX quotes take.
type tdxOptions struct {
	collateral   stringsFlag
	noCollateral bool
	pcsURL       string
	rootCRLURL   string
	tcbStatus    string
}

func tdxFlags(fs *flag.FlagSet) *tdxOptions {
	o := &tdxOptions{}
	fs.Var(&o.collateral, "collateral", "Intel collateral `FILE` for a TDX quote: TCB info or QE identity JSON, a CRL (DER or PEM), issuer chain PEM, or a JSON bundle of them (repeatable)")
	fs.BoolVar(&o.noCollateral, "no-collateral", false, "TDX: check signatures, QE binding and PCK chain only, not TCB status, QE identity or CRLs (dangerous)")
	fs.StringVar(&o.pcsURL, "pcs-url", DefaultPCSURL, "Intel PCS base `URL` (API v4) for TDX collateral when no --collateral is given")
	fs.StringVar(&o.rootCRLURL, "pcs-root-crl-url", pcs.DefaultRootCRLURL, "where the Intel SGX Root CA's CRL is fetched (`URL`)")
	fs.StringVar(&o.tcbStatus, "tcb-status", tdx.StatusUpToDate, "TDX without --policy/--data: Intel TCB statuses accepted (comma-separated `LIST`); any other is refused")
	return o
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// common are the verify flags both TEEs take, as parsed.
type common struct {
	at                      string
	offline, allowDebug     bool
	jsonOut                 bool
	policy, data            string
	measurement, reportData []byte
	snpOnly                 []string // SEV-SNP flags that were set
}

// setFlags returns which of the named flags were set on the command line.
func setFlags(fs *flag.FlagSet, names ...string) []string {
	var set []string
	fs.Visit(func(f *flag.Flag) {
		for _, n := range names {
			if f.Name == n {
				set = append(set, "--"+n)
			}
		}
	})
	return set
}

// isTDX tells a TDX quote (raw, hex or base64, or a JSON document holding
// it, see jsonQuote) from an SEV-SNP report by its header; the bytes are
// not trusted, only used to choose a verifier.
func isTDX(raw []byte) bool {
	if tdx.IsQuote(raw) {
		return true
	}
	if _, ok := jsonQuote(raw); ok {
		return true
	}
	_, ok := tdx.DecodeText(raw)
	return ok
}

// jsonQuote takes the quote out of a JSON document that carries one as a
// base64 "quote" string up to three objects deep: a /v1/attest request
// ({"evidence": {"quote": …}}), or the {"tdx": {"quote": …}} form some
// clouds' tools write.
func jsonQuote(raw []byte) ([]byte, bool) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	var doc map[string]any
	if json.Unmarshal(t, &doc) != nil {
		return nil, false
	}
	var find func(m map[string]any, depth int) ([]byte, bool)
	find = func(m map[string]any, depth int) ([]byte, bool) {
		if s, ok := m["quote"].(string); ok {
			if q, ok := tdx.DecodeText([]byte(s)); ok {
				return q, true
			}
		}
		if depth == 3 {
			return nil, false
		}
		for _, v := range m {
			if sub, ok := v.(map[string]any); ok {
				if q, ok := find(sub, depth+1); ok {
					return q, true
				}
			}
		}
		return nil, false
	}
	return find(doc, 1)
}

// verifyTDX is `trustgate verify` for a TDX quote.
func verifyTDX(raw []byte, o *tdxOptions, c common, stdout, stderr io.Writer) int {
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "trustgate verify: "+format+"\n", a...)
		return exitUsage
	}
	if len(c.snpOnly) > 0 {
		return usageErr("%s: for SEV-SNP reports; this is a TDX quote", strings.Join(c.snpOnly, ", "))
	}
	opts, closer, err := tdxVerifyOptions(o, c, stderr)
	if err != nil {
		return usageErr("%v", err)
	}
	defer closer()
	var engine *policy.Engine
	if c.policy != "" || c.data != "" {
		var err error
		if engine, err = loadPolicy(c.policy, c.data, opts.Now); err != nil {
			return usageErr("%v", err)
		}
	}

	var claims attest.Verified
	if q, ok := jsonQuote(raw); ok {
		raw = q
	}
	ev, err := tdx.DecodeQuote(raw)
	if err == nil {
		var tc *attest.TDXClaims
		if tc, err = tdx.New(opts).Verify(context.Background(), ev); err == nil {
			claims = tc
			if engine == nil {
				err = acceptTCBStatus(tc, o.tcbStatus)
			}
		}
	}
	if attest.ReasonOf(err) == attest.ReasonCollateralUnavailable {
		fmt.Fprintln(stderr, "trustgate verify: Intel's collateral is not at hand (no network?). To verify without network: --collateral FILE")
		fmt.Fprintln(stderr, "  for each document (TCB info, QE identity, CRLs), or 'trustgate certs fetch' on a connected host and 'trustgate certs import' here.")
	}
	return judge(stdout, c, engine, claims, err)
}

// tdxVerifyOptions builds the TDX verifier options of `trustgate verify`:
// --at, --allow-debug, and the collateral: --collateral files, none with
// --no-collateral (warned on stderr), or else Intel's PCS through the
// collateral cache (the cache only when offline). Call the returned
// function when done.
func tdxVerifyOptions(o *tdxOptions, c common, stderr io.Writer) (tdx.Options, func(), error) {
	if o.noCollateral && len(o.collateral) > 0 {
		return tdx.Options{}, nil, errors.New("--no-collateral and --collateral exclude each other")
	}
	opts := tdx.Options{AllowDebug: c.allowDebug, NoCollateral: o.noCollateral}
	if c.at != "" {
		at, err := time.Parse(time.RFC3339, c.at)
		if err != nil {
			return opts, nil, fmt.Errorf("--at: %w", err)
		}
		opts.Now = func() time.Time { return at }
	}
	if len(o.collateral) > 0 {
		var docs [][]byte
		for _, f := range o.collateral {
			b, err := readLimited(f, tdx.MaxCollateralSize)
			if err != nil {
				return opts, nil, fmt.Errorf("--collateral: %w", err)
			}
			docs = append(docs, b)
		}
		col, err := tdx.ParseCollateral(docs...)
		if err != nil {
			return opts, nil, fmt.Errorf("--collateral: %w", err)
		}
		opts.Collateral = tdx.Static{C: col}
	}
	if o.noCollateral {
		fmt.Fprintln(stderr, "trustgate verify: warning: --no-collateral: Intel's TCB status, QE identity and CRLs are not checked")
		return opts, func() {}, nil
	}
	if opts.Collateral != nil {
		return opts, func() {}, nil
	}
	// Intel's PCS through the collateral cache (what earlier runs fetched
	// and 'trustgate certs import' stored); offline, the cache only. A CLI
	// waits for its fetches to end, each at most as long as the server
	// waits for one (pcs.DefaultFetchWait).
	svc, err := pcs.New(pcs.Config{Settings: tiered.Settings{Offline: c.offline, Clock: opts.Now, Logger: cliLogger(stderr), FetchTimeout: pcs.DefaultFetchWait, FetchWait: -1},
		URL: o.pcsURL, RootCRLURL: o.rootCRLURL,
	})
	if err != nil {
		return opts, nil, err
	}
	opts.Collateral = svc
	return opts, func() { svc.Close() }, nil
}

// acceptTCBStatus judges Intel's TCB status of a verified quote as the
// default policy does (tdx_tcb_status) when no policy is given: a status
// not in accepted (comma-separated) is refused, OutOfDate* as
// tcb_out_of_date, any other as policy_denied, the status and advisories in
// the detail. Without collateral there is no status to judge.
func acceptTCBStatus(c *attest.TDXClaims, accepted string) error {
	if c.TCBStatus == "" {
		return nil
	}
	for _, s := range strings.Split(accepted, ",") {
		if strings.TrimSpace(s) == c.TCBStatus {
			return nil
		}
	}
	reason := attest.ReasonPolicyDenied
	if strings.HasPrefix(c.TCBStatus, tdx.StatusOutOfDate) {
		reason = attest.ReasonTCBOutOfDate
	}
	adv := ""
	if len(c.AdvisoryIDs) > 0 {
		adv = " (advisories " + strings.Join(c.AdvisoryIDs, ", ") + ")"
	}
	return attest.Errorf(reason, "Intel's TCB status of this platform is %s%s; --tcb-status accepts %s", c.TCBStatus, adv, accepted)
}

func printTDXClaims(w io.Writer, c *attest.TDXClaims) {
	a := c.TDAttributes
	rows := []struct{ k, v string }{
		{"tee", c.TEE}, {"quote_version", fmt.Sprint(c.QuoteVersion)},
		{"mr_td", c.MRTD.String()}, {"mr_config_id", c.MRConfigID.String()},
		{"mr_owner", c.MROwner.String()}, {"mr_owner_config", c.MROwnerConfig.String()},
		{"rtmr0", c.RTMR0.String()}, {"rtmr1", c.RTMR1.String()}, {"rtmr2", c.RTMR2.String()}, {"rtmr3", c.RTMR3.String()},
		{"mr_seam", c.MRSeam.String()}, {"mr_signer_seam", c.MRSignerSeam.String()}, {"seam_attributes", c.SeamAttrs.String()},
		{"td_attributes", fmt.Sprintf("debug=%t sept_ve_disable=%t pks=%t kl=%t perfmon=%t", a.Debug, a.SEPTVEDisable, a.PKS, a.KL, a.PerfMon)},
		{"xfam", c.XFAM.String()}, {"tee_tcb_svn", c.TEETCBSVN.String()},
		{"report_data", c.ReportData.String()}, {"fmspc", c.FMSPC.String()},
	}
	if c.TEETCBSVN2 != nil {
		rows = append(rows, struct{ k, v string }{"tee_tcb_svn2", c.TEETCBSVN2.String()}, struct{ k, v string }{"mr_service_td", c.MRServiceTD.String()})
	}
	status := c.TCBStatus
	if status == "" {
		status = "(not checked: no collateral)"
	}
	rows = append(rows, struct{ k, v string }{"tcb_status", status})
	if len(c.AdvisoryIDs) > 0 {
		rows = append(rows, struct{ k, v string }{"advisory_ids", strings.Join(c.AdvisoryIDs, ", ")})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-18s %s\n", r.k+":", r.v)
	}
}
