package certs

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/tee/snp"
)

// DefaultKDSURL is the base URL of AMD's KDS.
const DefaultKDSURL = "https://kdsintf.amd.com"

// maxCertSize bounds a KDS response body; a VCEK is about 1.3 KiB.
const maxCertSize = 64 << 10

// KDS fetches VCEK certificates from the AMD KDS. The zero value uses
// DefaultKDSURL and an HTTP client with a 30 s timeout.
type KDS struct {
	// BaseURL is the KDS base URL, e.g. DefaultKDSURL or a test server.
	BaseURL string
	// Client makes the requests; nil means a client with a 30 s timeout.
	Client *http.Client
}

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

// EndorsementKey fetches the VCEK named by req. VLEKs are not served to
// verifiers by the KDS and are refused.
func (k *KDS) EndorsementKey(ctx context.Context, req snp.KeyRequest) ([]byte, error) {
	if req.Signer != snp.SignerVCEK {
		return nil, fmt.Errorf("the KDS serves no %s certificates to verifiers", req.Signer)
	}
	want := 64
	if req.Product == snp.Turin {
		want = 8
	}
	if len(req.HWID) != want {
		return nil, fmt.Errorf("%s hwid must be %d bytes, got %d", req.Product, want, len(req.HWID))
	}
	base := k.BaseURL
	if base == "" {
		base = DefaultKDSURL
	}
	client := k.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	u := VCEKURL(base, req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("KDS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCertSize+1))
	if err != nil {
		return nil, fmt.Errorf("KDS: reading %s VCEK: %w", req.Product, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("KDS: %s VCEK: HTTP %d", req.Product, resp.StatusCode)
	}
	if len(body) > maxCertSize {
		return nil, fmt.Errorf("KDS: %s VCEK response exceeds %d bytes", req.Product, maxCertSize)
	}
	return body, nil
}
