package testkit

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// PCS is a fake Intel Provisioning Certification Service (API v4) on a
// loopback address: /tdx/certification/v4/tcb?fmspc= (upper- or lower-case
// hex), /tdx/certification/v4/qe/identity,
// /sgx/certification/v4/pckcrl?ca=platform|processor[&encoding=der], and the
// Root CA's CRL at /IntelSGXRootCA.der (give URL+RootCRLPath as the root
// CRL URL), each with its issuer chain URL-encoded in the header PCS uses
// (TCB-Info-Issuer-Chain, SGX-Enclave-Identity-Issuer-Chain,
// SGX-PCK-CRL-Issuer-Chain); 404 for anything it does not hold. Faults
// (the KDS's Fault type) make a kind of request ("tcb", "qe", "pckcrl",
// "rootcrl") slow, throttled, failing or hanging. Safe for concurrent use.
type PCS struct {
	URL string

	srv    *httptest.Server
	closed chan struct{}

	mu     sync.Mutex
	docs   map[string]pcsDoc // "tcb/FMSPC" (upper), "qe", "pckcrl/platform", "rootcrl"
	faults map[string]*Fault
	counts map[string]int
	hung   int
}

type pcsDoc struct {
	body  []byte
	chain string // PEM
}

// RootCRLPath is where the fake PCS serves the Root CA's CRL.
const RootCRLPath = "/IntelSGXRootCA.der"

// NewPCS starts a fake PCS on 127.0.0.1, closed at the end of the test.
func NewPCS(tb testing.TB) *PCS {
	tb.Helper()
	p := &PCS{closed: make(chan struct{}), docs: map[string]pcsDoc{}, faults: map[string]*Fault{}, counts: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	tb.Cleanup(func() {
		close(p.closed)
		p.srv.Close()
	})
	return p
}

// Set serves body (with the PEM issuer chain, if any) under name: "tcb/<FMSPC>",
// "qe", "pckcrl/platform", "pckcrl/processor" or "rootcrl". A PEM CRL body
// is served as DER.
func (p *PCS) Set(name string, body []byte, chain string) {
	if blk, _ := pem.Decode(body); blk != nil && blk.Type == "X509 CRL" {
		body = blk.Bytes
	}
	if fm, ok := strings.CutPrefix(name, "tcb/"); ok {
		name = "tcb/" + strings.ToUpper(fm)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.docs[name] = pcsDoc{body: body, chain: chain}
}

// ServeIntel2025 serves the real Intel collateral of 2025-11-17 in dir
// (testdata/tdx: MigTD's TCB infos of every FMSPC it holds, the TD QE
// identity, the PCK Platform CA's and the root's CRLs) with Intel's issuer
// chains (the 2025 TCB signing chain, the PCK CRL chain).
func (p *PCS) ServeIntel2025(dir string) error {
	read := func(f string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, f)) }
	tcbChain, err := read("intel-tcb-signing-chain-2025.pem")
	if err != nil {
		return err
	}
	crlChain, err := read("intel-pckcrl-issuer-chain.pem")
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "migtd-tcbinfo-*.json"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no migtd-tcbinfo-*.json in %s", dir)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		fm := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "migtd-tcbinfo-"), ".json")
		p.Set("tcb/"+fm, b, string(tcbChain))
	}
	for name, f := range map[string]string{"qe": "migtd-qeidentity.json", "pckcrl/platform": "migtd-pckcrl-platform.pem", "rootcrl": "migtd-rootcrl.pem"} {
		b, err := read(f)
		if err != nil {
			return err
		}
		chain := string(tcbChain)
		switch name {
		case "pckcrl/platform":
			chain = string(crlChain)
		case "rootcrl":
			chain = ""
		}
		p.Set(name, b, chain)
	}
	return nil
}

// SetFault makes requests of kind ("tcb", "qe", "pckcrl", "rootcrl")
// misbehave; a zero Fault clears it.
func (p *PCS) SetFault(kind string, f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f == (Fault{}) {
		delete(p.faults, kind)
		return
	}
	p.faults[kind] = &f
}

// Requests returns how many requests of kind the fake PCS received.
func (p *PCS) Requests(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[kind]
}

// Hanging returns how many requests hang now.
func (p *PCS) Hanging() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hung
}

func (p *PCS) serve(w http.ResponseWriter, r *http.Request) {
	var kind, name, header string
	q := r.URL.Query()
	switch r.URL.Path {
	case "/tdx/certification/v4/tcb":
		kind, name, header = "tcb", "tcb/"+strings.ToUpper(q.Get("fmspc")), "TCB-Info-Issuer-Chain"
	case "/tdx/certification/v4/qe/identity":
		kind, name, header = "qe", "qe", "SGX-Enclave-Identity-Issuer-Chain"
	case "/sgx/certification/v4/pckcrl":
		kind, name, header = "pckcrl", "pckcrl/"+q.Get("ca"), "SGX-PCK-CRL-Issuer-Chain"
	case RootCRLPath:
		kind, name = "rootcrl", "rootcrl"
	default:
		kind = "other"
	}
	p.mu.Lock()
	p.counts[kind]++
	var f Fault
	if fp := p.faults[kind]; fp != nil {
		f = *fp
		if fp.Count > 0 {
			if fp.Count--; fp.Count == 0 {
				delete(p.faults, kind)
			}
		}
	}
	doc, ok := p.docs[name]
	p.mu.Unlock()
	if f.Hang {
		p.mu.Lock()
		p.hung++
		p.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-p.closed:
		}
		p.mu.Lock()
		p.hung--
		p.mu.Unlock()
		return
	}
	if f.Delay > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-p.closed:
			return
		case <-time.After(f.Delay):
		}
	}
	if f.Status != 0 {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Status >= 300 && f.Status < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		http.Error(w, http.StatusText(f.Status), f.Status)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	if header != "" && doc.chain != "" {
		// As Intel encodes it: every reserved byte as %XX, spaces %20.
		w.Header().Set(header, strings.ReplaceAll(url.QueryEscape(doc.chain), "+", "%20"))
	}
	w.Write(doc.body)
}
