package certs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tiered"
)

// DefaultKDSURL is the base URL of AMD's KDS.
const DefaultKDSURL = "https://kdsintf.amd.com"

// Response size limits: a VCEK is about 1.3 KiB, a cert_chain about
// 4.7 KiB; AMD's CRLs are small but a CRL grows with what it revokes.
const (
	maxCertSize = 64 << 10
	maxCRLSize  = 4 << 20
)

// Kind is what a KDS request asks for. Its values are the kind label of
// trustgate_kds_requests_total.
type Kind string

// The KDS request kinds (VCEK spec 57230 ch. 4).
const (
	KindVCEK      Kind = "vcek"       // /vcek/v1/{product}/{hwid}?...SPL
	KindCertChain Kind = "cert_chain" // /{vcek,vlek}/v1/{product}/cert_chain
	KindCRL       Kind = "crl"        // /{vcek,vlek}/v1/{product}/crl
)

// Kinds lists every Kind, for metrics to pre-initialise their labels.
func Kinds() []Kind { return []Kind{KindVCEK, KindCertChain, KindCRL} }

// VCEKURL returns the KDS URL of the VCEK for a chip and TCB: Milan and
// Genoa take the 64-byte CHIP_ID as 128 hex digits and blSPL, teeSPL,
// snpSPL, ucodeSPL; Turin takes CHIP_ID[0:8] as 16 hex digits and fmcSPL as
// well (VCEK spec 57230 ch. 4 and its Turin tables). The SPLs are those of
// REPORTED_TCB in the product's layout.
func VCEKURL(base string, req snp.KeyRequest) string {
	t := req.Product.DecodeTCB(req.TCB)
	q := fmt.Sprintf("blSPL=%d&teeSPL=%d&snpSPL=%d&ucodeSPL=%d", t.Bootloader, t.TEE, t.SNP, t.Microcode)
	if t.FMC != nil {
		q = fmt.Sprintf("fmcSPL=%d&", *t.FMC) + q
	}
	return fmt.Sprintf("%s/vcek/v1/%s/%s?%s", strings.TrimRight(base, "/"),
		url.PathEscape(string(req.Product)), hex.EncodeToString(req.HWID), q)
}

// CertChainURL returns the KDS URL of a product's certificate chain: the
// ASK then the ARK for VCEKs (/vcek/v1/{product}/cert_chain), the ASVK then
// the ARK for VLEKs (/vlek/v1/{product}/cert_chain), PEM.
func CertChainURL(base string, p snp.Product, s snp.Signer) string {
	return fmt.Sprintf("%s/%s/v1/%s/cert_chain", strings.TrimRight(base, "/"), signerPath(s), url.PathEscape(string(p)))
}

// CRLURL returns the KDS URL of a product's CRL, DER, signed by the ARK:
// /vcek/v1/{product}/crl covers the ASK, /vlek/v1/{product}/crl the ASVK.
func CRLURL(base string, p snp.Product, s snp.Signer) string {
	return fmt.Sprintf("%s/%s/v1/%s/crl", strings.TrimRight(base, "/"), signerPath(s), url.PathEscape(string(p)))
}

func signerPath(s snp.Signer) string {
	if s == snp.SignerVLEK {
		return "vlek"
	}
	return "vcek"
}

// checkRequest checks that req names a VCEK the KDS can serve.
func checkRequest(req snp.KeyRequest) error {
	if req.Signer != snp.SignerVCEK && req.Signer != "" {
		return fmt.Errorf("the KDS serves no %s certificates to verifiers", req.Signer)
	}
	if _, err := snp.ParseProduct(string(req.Product)); err != nil {
		return err
	}
	want := 64
	if req.Product == snp.Turin {
		want = 8
	}
	if len(req.HWID) != want {
		return fmt.Errorf("%s hwid must be %d bytes, got %d", req.Product, want, len(req.HWID))
	}
	return nil
}

// errNotFound is the KDS's 404: no such product, chip or TCB.
var errNotFound = errors.New("the KDS has no such certificate (HTTP 404)")

// kdsClient makes KDS requests through the origin's rate limit, retries
// and Retry-After handling (tiered.Origin), with a rate bucket for VCEKs
// and one for the rest. Its errors never carry the URL (it holds the chip
// id, which is not logged).
type kdsClient struct {
	origin   *tiered.Origin
	obs      Observer
	vcekLim  *tiered.Limiter // VCEK requests
	otherLim *tiered.Limiter // cert_chain and CRL requests
}

// holdBack holds every request of every kind back until t (the KDS
// throttles per client address).
func (c *kdsClient) holdBack(t time.Time) {
	c.vcekLim.DeferUntil(t)
	c.otherLim.DeferUntil(t)
}

// get fetches u and returns its body (at most limit bytes). what names
// the request in errors and logs, e.g. "Milan VCEK".
func (c *kdsClient) get(ctx context.Context, kind Kind, what, u string, limit int64) ([]byte, error) {
	lim := c.otherLim
	if kind == KindVCEK {
		lim = c.vcekLim
	}
	body, _, err := c.origin.Get(ctx, tiered.Request{What: what, URL: u, Limit: limit, Lim: lim,
		Observe: func(status string) { c.obs.KDSRequest(kind, status) }})
	return body, err
}
