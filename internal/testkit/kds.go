package testkit

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
)

// KDS is a fake AMD Key Distribution Service on a loopback address. It
// serves what it is given at the paths of the real KDS (VCEK spec 57230
// ch. 4): /{vcek,vlek}/v1/{product}/cert_chain and /crl, and
// /vcek/v1/{product}/{hwid}?blSPL&teeSPL&snpSPL&ucodeSPL[&fmcSPL], matching
// the SPL parameters by value (omitted ones count as 0, unknown ones are
// 400), the hwid as lowercase hex of 64 bytes (Turin: 8), and 404 for
// anything it does not hold. Faults make it slow, throttle, fail or hang.
// Safe for concurrent use.
type KDS struct {
	// URL is the base URL to give a client.
	URL string

	srv    *httptest.Server
	now    func() time.Time
	closed chan struct{}

	mu     sync.Mutex
	vceks  map[string][]vcekRoute // "Product/hwidhex" → VCEKs
	chains map[string][]byte      // "vcek/Product" → PEM
	crls   map[string][]byte      // "vcek/Product" → DER
	faults map[string]*Fault      // kind → fault
	log    []KDSRequest
	hung   int // requests hanging now
}

type vcekRoute struct {
	tcb attest.TCB
	der []byte
}

// KDSRequest is one request the fake KDS received.
type KDSRequest struct {
	Kind   string    // "vcek", "cert_chain", "crl" or "other"
	Path   string    // URL path and query
	At     time.Time // by KDSOptions.Now
	Status int       // what was answered (0 if the request hung)
}

// Fault is a misbehaviour of the fake KDS for one kind of request.
type Fault struct {
	// Status, when non-zero, is answered instead of the resource (e.g.
	// 429, 500, 503, 404).
	Status int
	// RetryAfter is sent as the Retry-After header with Status.
	RetryAfter string
	// Delay holds the answer back this long (real time).
	Delay time.Duration
	// Hang never answers: the request waits until the client gives up or
	// the KDS is closed.
	Hang bool
	// Count limits the fault to the next Count requests of its kind; 0
	// means until it is replaced.
	Count int
}

// KDSOptions configures NewKDS. The zero value timestamps requests with
// time.Now.
type KDSOptions struct {
	// Now timestamps requests; nil means time.Now.
	Now func() time.Time
}

// NewKDS starts a fake KDS on 127.0.0.1, closed at the end of the test.
func NewKDS(tb testing.TB, o KDSOptions) *KDS {
	tb.Helper()
	k := &KDS{now: o.Now, closed: make(chan struct{}),
		vceks: map[string][]vcekRoute{}, chains: map[string][]byte{}, crls: map[string][]byte{}, faults: map[string]*Fault{}}
	if k.now == nil {
		k.now = time.Now
	}
	k.srv = httptest.NewServer(http.HandlerFunc(k.serve))
	k.URL = k.srv.URL
	tb.Cleanup(func() {
		close(k.closed)
		k.srv.Close()
	})
	return k
}

// Hanging returns how many requests hang now (Fault.Hang) with their
// client still connected.
func (k *KDS) Hanging() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.hung
}

// Client returns an HTTP client for the fake KDS.
func (k *KDS) Client() *http.Client { return k.srv.Client() }

// AddVCEK serves a VCEK certificate (DER or PEM) at the path the real KDS
// serves it, derived from its own extensions: product from its issuer,
// hwid, and TCB levels.
func (k *KDS) AddVCEK(cert []byte) error {
	der, err := snp.CertificateDER(cert)
	if err != nil {
		return err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	ek, err := snp.ParseEndorsementKey(c)
	if err != nil {
		return err
	}
	if ek.Signer != snp.SignerVCEK {
		return fmt.Errorf("not a VCEK")
	}
	key := string(ek.Product) + "/" + hex.EncodeToString(ek.HWID)
	k.mu.Lock()
	k.vceks[key] = append(k.vceks[key], vcekRoute{tcb: ek.Product.DecodeTCB(ek.TCB), der: der})
	k.mu.Unlock()
	return nil
}

// SetChain serves a cert_chain body (PEM) for a product's VCEK or VLEK
// chain.
func (k *KDS) SetChain(p snp.Product, s snp.Signer, pemBytes []byte) {
	k.mu.Lock()
	k.chains[string(s)+"/"+string(p)] = pemBytes
	k.mu.Unlock()
}

// SetCRL serves a CRL (DER) for a product's VCEK or VLEK chain.
func (k *KDS) SetCRL(p snp.Product, s snp.Signer, der []byte) {
	k.mu.Lock()
	k.crls[string(s)+"/"+string(p)] = der
	k.mu.Unlock()
}

// ServeTestdata serves the real AMD chains (amd-{milan,genoa,turin}-
// {vcek,vlek}-cert_chain.pem) and every real VCEK (*vcek*.der, *vcek*.pem;
// of a PEM bundle the first certificate) found in dir, e.g. testdata/snp.
func (k *KDS) ServeTestdata(dir string) error {
	for _, p := range snp.Products() {
		for _, s := range []snp.Signer{snp.SignerVCEK, snp.SignerVLEK} {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("amd-%s-%s-cert_chain.pem", strings.ToLower(string(p)), s)))
			if err != nil {
				return err
			}
			k.SetChain(p, s, b)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*vcek*"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if strings.Contains(f, "cert_chain") || !(strings.HasSuffix(f, ".der") || strings.HasSuffix(f, ".pem")) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := k.AddVCEK(b); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
	}
	return nil
}

// SetFault makes requests of kind ("vcek", "cert_chain", "crl") misbehave;
// a zero Fault clears it. Kind "vcek_unknown" is VCEK requests for chips
// the KDS holds no VCEK for (made-up chip ids); for those it takes
// precedence over "vcek".
func (k *KDS) SetFault(kind string, f Fault) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f == (Fault{}) {
		delete(k.faults, kind)
		return
	}
	k.faults[kind] = &f
}

// Requests returns the requests of kind received so far ("" for all).
func (k *KDS) Requests(kind string) []KDSRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []KDSRequest
	for _, r := range k.log {
		if kind == "" || r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

func kindOf(path string) (kind, signer, product, rest string) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != 4 || (parts[0] != "vcek" && parts[0] != "vlek") || parts[1] != "v1" {
		return "other", "", "", ""
	}
	switch parts[3] {
	case "cert_chain", "crl":
		return parts[3], parts[0], parts[2], ""
	}
	if parts[0] == "vcek" {
		return "vcek", parts[0], parts[2], parts[3]
	}
	return "other", "", "", ""
}

func (k *KDS) serve(w http.ResponseWriter, r *http.Request) {
	kind, signer, product, hwid := kindOf(r.URL.Path)
	k.mu.Lock()
	idx := len(k.log)
	k.log = append(k.log, KDSRequest{Kind: kind, Path: r.URL.RequestURI(), At: k.now()})
	fkind := kind
	if _, known := k.vceks[product+"/"+hwid]; kind == "vcek" && !known && k.faults["vcek_unknown"] != nil {
		fkind = "vcek_unknown"
	}
	var f Fault
	if fp := k.faults[fkind]; fp != nil {
		f = *fp
		if fp.Count > 0 {
			if fp.Count--; fp.Count == 0 {
				delete(k.faults, fkind)
			}
		}
	}
	k.mu.Unlock()
	status := http.StatusOK
	defer func() {
		k.mu.Lock()
		k.log[idx].Status = status
		k.mu.Unlock()
	}()

	if f.Hang {
		k.mu.Lock()
		k.hung++
		k.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-k.closed:
		}
		k.mu.Lock()
		k.hung--
		k.mu.Unlock()
		status = 0
		return
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			status = 0
			return
		case <-k.closed:
			status = 0
			return
		}
	}
	if f.Status != 0 {
		status = f.Status
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		http.Error(w, http.StatusText(f.Status), f.Status)
		return
	}
	if r.Method != http.MethodGet {
		status = http.StatusMethodNotAllowed
		http.Error(w, "GET only", status)
		return
	}
	var body []byte
	k.mu.Lock()
	switch kind {
	case "cert_chain":
		body = k.chains[signer+"/"+product]
	case "crl":
		body = k.crls[signer+"/"+product]
	case "vcek":
		var bad error
		body, bad = k.findVCEK(product, hwid, r.URL.Query())
		if bad != nil {
			k.mu.Unlock()
			status = http.StatusBadRequest
			http.Error(w, bad.Error(), status)
			return
		}
	}
	k.mu.Unlock()
	if body == nil {
		status = http.StatusNotFound
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if kind == "cert_chain" {
		w.Header().Set("Content-Type", "application/x-pem-file")
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(body)
}

// findVCEK matches a VCEK request; k.mu is held.
func (k *KDS) findVCEK(product, hwid string, q url.Values) ([]byte, error) {
	levels := map[string]uint8{}
	for name, vals := range q {
		switch name {
		case "blSPL", "teeSPL", "snpSPL", "ucodeSPL", "fmcSPL":
		default:
			return nil, fmt.Errorf("unknown parameter %q", name)
		}
		if len(vals) != 1 {
			return nil, fmt.Errorf("parameter %q repeated", name)
		}
		n, err := strconv.ParseUint(vals[0], 10, 8)
		if err != nil {
			return nil, fmt.Errorf("parameter %q is not 0..255", name)
		}
		levels[name] = uint8(n)
	}
	if product != "Turin" {
		if _, ok := levels["fmcSPL"]; ok {
			return nil, fmt.Errorf("fmcSPL is for Turin only")
		}
	}
	if hwid != strings.ToLower(hwid) {
		return nil, nil
	}
	for _, v := range k.vceks[product+"/"+hwid] {
		fmc := uint8(0)
		if v.tcb.FMC != nil {
			fmc = *v.tcb.FMC
		}
		if levels["blSPL"] == v.tcb.Bootloader && levels["teeSPL"] == v.tcb.TEE && levels["snpSPL"] == v.tcb.SNP &&
			levels["ucodeSPL"] == v.tcb.Microcode && levels["fmcSPL"] == fmc {
			return v.der, nil
		}
	}
	return nil, nil
}
