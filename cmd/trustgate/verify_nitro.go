package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/tee/nitro"
)

// nitroDocument returns the Nitro attestation document raw holds (raw
// CBOR, base64, or {"document": base64}); the bytes are not trusted, only
// used to choose a verifier.
func nitroDocument(raw []byte) (nitro.Evidence, bool) {
	ev, err := nitro.DecodeDocument(raw)
	return ev, err == nil
}

// verifyNitro is `trustgate verify` for an AWS Nitro Enclaves attestation
// document: the chain to the pinned AWS Nitro Enclaves Root-G1 at --at,
// the ES384 signature, the fields, not in debug mode; --measurement is
// PCR0 and --report-data the document's nonce.
func verifyNitro(ev nitro.Evidence, c common, otherTEE []string, stdout, stderr io.Writer) int {
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "trustgate verify: "+format+"\n", a...)
		return exitUsage
	}
	if len(otherTEE) > 0 {
		return usageErr("%s: not for Nitro attestation documents", strings.Join(otherTEE, ", "))
	}
	opts := nitro.Options{AllowDebug: c.allowDebug}
	if c.at != "" {
		at, err := time.Parse(time.RFC3339, c.at)
		if err != nil {
			return usageErr("--at: %v", err)
		}
		opts.Now = func() time.Time { return at }
	}
	var engine *policy.Engine
	if c.policy != "" || c.data != "" {
		var err error
		if engine, err = loadPolicy(c.policy, c.data, opts.Now); err != nil {
			return usageErr("%v", err)
		}
	}
	var claims attest.Verified // nil, not a nil *NitroClaims, when the document fails
	nc, err := nitro.New(opts).Verify(context.Background(), ev)
	if err == nil {
		claims = nc
	}
	return judge(stdout, c, engine, claims, err)
}

func printNitroClaims(w io.Writer, c *attest.NitroClaims) {
	rows := []struct{ k, v string }{
		{"tee", c.TEE}, {"module_id", c.ModuleID},
		{"timestamp", fmt.Sprintf("%d (%s)", c.Timestamp, time.UnixMilli(int64(c.Timestamp)).UTC().Format(time.RFC3339Nano))},
		{"digest", c.Digest},
	}
	for i := range attest.NitroPCRs {
		if p := *c.PCR(i); p != nil {
			rows = append(rows, struct{ k, v string }{fmt.Sprintf("pcr%d", i), p.String()})
		}
	}
	rows = append(rows, struct{ k, v string }{"user_data", c.UserData.String()}, struct{ k, v string }{"public_key", c.PublicKey.String()},
		struct{ k, v string }{"report_data", c.ReportData.String()})
	for _, r := range rows {
		fmt.Fprintf(w, "  %-18s %s\n", r.k+":", r.v)
	}
}
