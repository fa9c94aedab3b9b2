package snp

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-sev-guest/verify/trust"
)

// ProductRoots are the pinned certificates of one product line: the AMD Root
// Key (ARK, self-signed), the AMD SEV Key (ASK, signs VCEKs) and the AMD SEV
// VLEK Key (ASVK, signs VLEKs). ASVK may be nil.
type ProductRoots struct {
	ARK, ASK, ASVK *x509.Certificate
}

// Roots is the set of trust anchors a Verifier accepts, one ProductRoots per
// product line. An ARK or ASK that arrives with the evidence counts only if
// it is byte-identical to the pinned one; otherwise it is ignored and the
// endorsement key must chain to the pinned certificates.
type Roots struct {
	products map[Product]ProductRoots
	arkKeys  []*rsa.PublicKey
}

// WithARKKey returns a copy of r that also trusts chains under an ARK
// holding key: an ARK certificate that comes with the evidence counts if it
// is self-signed with that key, and the ASK/ASVK with it if the ARK signed
// them. This is how `--dev-simulator` trusts the simulator's AMD root (the
// key, not one certificate).
func (r *Roots) WithARKKey(key *rsa.PublicKey) *Roots {
	return &Roots{products: r.products, arkKeys: append(append([]*rsa.PublicKey(nil), r.arkKeys...), key)}
}

// fromEvidence returns roots made of the certificates that came with the
// evidence, when one of them is an ARK under a trusted ARK key; nil
// otherwise.
func (r *Roots) fromEvidence(ders [][]byte) *Roots {
	if len(r.arkKeys) == 0 {
		return nil
	}
	var certs []*x509.Certificate
	for _, der := range ders {
		if c, err := x509.ParseCertificate(der); err == nil {
			certs = append(certs, c)
		}
	}
	for _, ark := range certs {
		key, ok := ark.PublicKey.(*rsa.PublicKey)
		if !ok || !slices.ContainsFunc(r.arkKeys, func(k *rsa.PublicKey) bool { return k.Equal(key) }) || !strings.HasPrefix(ark.Subject.CommonName, "ARK-") {
			continue
		}
		p, err := ParseProduct(strings.TrimPrefix(ark.Subject.CommonName, "ARK-"))
		if err != nil {
			continue
		}
		pr := ProductRoots{ARK: ark}
		for _, c := range certs {
			switch c.Subject.CommonName {
			case "SEV-" + string(p):
				pr.ASK = c
			case "SEV-VLEK-" + string(p):
				pr.ASVK = c
			}
		}
		if roots, err := NewRoots(map[Product]ProductRoots{p: pr}); err == nil {
			return roots
		}
	}
	return nil
}

// NewRoots checks and pins the given certificates: each ARK must be
// self-signed and each ASK/ASVK signed by its product's ARK.
func NewRoots(products map[Product]ProductRoots) (*Roots, error) {
	r := &Roots{products: make(map[Product]ProductRoots, len(products))}
	for p, pr := range products {
		if pr.ARK == nil || pr.ASK == nil {
			return nil, fmt.Errorf("%s: ARK and ASK are required", p)
		}
		if err := pr.ARK.CheckSignatureFrom(pr.ARK); err != nil {
			return nil, fmt.Errorf("%s: ARK is not self-signed: %w", p, err)
		}
		for _, ica := range []*x509.Certificate{pr.ASK, pr.ASVK} {
			if ica == nil {
				continue
			}
			if err := ica.CheckSignatureFrom(pr.ARK); err != nil {
				return nil, fmt.Errorf("%s: %s is not signed by the ARK: %w", p, ica.Subject.CommonName, err)
			}
		}
		r.products[p] = pr
	}
	return r, nil
}

// Product returns the pinned certificates of p.
func (r *Roots) Product(p Product) (ProductRoots, bool) {
	pr, ok := r.products[p]
	return pr, ok
}

// pinned reports whether der is byte-identical to a pinned ARK, ASK or ASVK.
func (r *Roots) pinned(der []byte) bool {
	for _, pr := range r.products {
		for _, c := range []*x509.Certificate{pr.ARK, pr.ASK, pr.ASVK} {
			if c != nil && bytes.Equal(c.Raw, der) {
				return true
			}
		}
	}
	return false
}

// AMDRoots returns AMD's published ARK, ASK and ASVK for Milan, Genoa and
// Turin, as embedded in go-sev-guest (the bodies of the KDS cert_chain
// endpoints). They are parsed and checked once.
func AMDRoots() *Roots {
	amdRootsOnce.Do(func() {
		amdRoots, amdRootsErr = parseAMDRoots()
	})
	if amdRootsErr != nil {
		// The embedded certificates are constants of the build; failing to
		// parse them is a broken binary, not a runtime condition.
		panic(amdRootsErr)
	}
	return amdRoots
}

var (
	amdRootsOnce sync.Once
	amdRoots     *Roots
	amdRootsErr  error
)

func parseAMDRoots() (*Roots, error) {
	chains := []struct {
		p          Product
		vcek, vlek []byte
	}{
		{Milan, trust.AskArkMilanVcekBytes, trust.AskArkMilanVlekBytes},
		{Genoa, trust.AskArkGenoaVcekBytes, trust.AskArkGenoaVlekBytes},
		{Turin, trust.AskArkTurinVcekBytes, trust.AskArkTurinVlekBytes},
	}
	m := make(map[Product]ProductRoots)
	for _, c := range chains {
		ask, ark, err := ParseCertChain(c.vcek)
		if err != nil {
			return nil, fmt.Errorf("%s VCEK chain: %w", c.p, err)
		}
		asvk, ark2, err := ParseCertChain(c.vlek)
		if err != nil {
			return nil, fmt.Errorf("%s VLEK chain: %w", c.p, err)
		}
		if !bytes.Equal(ark.Raw, ark2.Raw) {
			return nil, fmt.Errorf("%s: VCEK and VLEK chains name different ARKs", c.p)
		}
		m[c.p] = ProductRoots{ARK: ark, ASK: ask, ASVK: asvk}
	}
	return NewRoots(m)
}

// ParseCertChain parses the body of a KDS cert_chain endpoint: two PEM
// certificates, the intermediate (ASK or ASVK) first, then the ARK (VCEK spec
// 57230 ch. 4). Unlike go-sev-guest's parser it tolerates trailing white
// space (AMD's Turin VLEK chain ends in CRLF) but nothing else.
func ParseCertChain(pemBytes []byte) (intermediate, ark *x509.Certificate, err error) {
	var certs []*x509.Certificate
	rest := bytes.TrimSpace(pemBytes)
	for len(rest) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, nil, errors.New("not a PEM certificate chain")
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, err
		}
		certs = append(certs, c)
		rest = bytes.TrimSpace(rest)
	}
	if len(certs) != 2 {
		return nil, nil, fmt.Errorf("want 2 certificates (ASK or ASVK, then ARK), got %d", len(certs))
	}
	return certs[0], certs[1], nil
}
