package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"fmt"
	"sync"
	"time"

	"github.com/trustgate/trustgate/internal/tee/nitro"
)

// The Nitro simulator: a simulated enclave whose attestation documents are
// signed by a test-only AWS-like PKI (root, CA, leaf; ECDSA P-384) with
// fixed keys derived from fixed labels, so that a verifier and a guest that
// never met agree on it. Its certificates are valid from 2025-01-01 for 25
// years. A verifier accepts its documents only when it trusts NitroRoots
// (`trustgate serve --dev-simulator`); every other check applies as for
// AWS's documents.

// NitroKey derives the simulator's key i (0 root, 1 CA, 2 leaf) from a
// fixed label.
func NitroKey(i int) (*ecdsa.PrivateKey, error) {
	var err error
	for n := 0; n < 8; n++ {
		d := sha512.Sum384([]byte(fmt.Sprintf("trustgate Nitro simulator key %d/%d", i, n)))
		var k *ecdsa.PrivateKey
		if k, err = ecdsa.ParseRawPrivateKey(elliptic.P384(), d[:]); err == nil {
			return k, nil
		}
	}
	return nil, err
}

var (
	nitroOnce sync.Once
	nitroPKI  *NitroPKI
	nitroErr  error
)

// simNitroPKI returns the simulator's PKI, made once.
func simNitroPKI() (*NitroPKI, error) {
	nitroOnce.Do(func() {
		nitroPKI, nitroErr = NewNitroPKI(NitroPKIOptions{Created: tdxEpoch, Validity: 25 * 365 * 24 * time.Hour, Keys: NitroKey})
		if nitroErr != nil {
			nitroErr = fmt.Errorf("simulated Nitro PKI: %w", nitroErr)
		}
	})
	return nitroPKI, nitroErr
}

// NitroRoots returns the simulator's root, the trust anchor of a
// --dev-simulator verifier's simulated Nitro verifier.
func NitroRoots() (*nitro.Roots, error) {
	p, err := simNitroPKI()
	if err != nil {
		return nil, err
	}
	return p.Roots, nil
}

// NewNitroVerifier returns a verifier of the simulator's documents: o with
// the simulator's root.
func NewNitroVerifier(o nitro.Options) (*nitro.Verifier, error) {
	roots, err := NitroRoots()
	if err != nil {
		return nil, err
	}
	o.Roots = roots
	return nitro.New(o), nil
}

// NitroOptions shapes a simulated enclave; the zero value is a
// production-mode enclave whose PCR0 is DefaultMeasurement.
type NitroOptions struct {
	PCR0 *[48]byte
	// Debug makes a debug-mode enclave: PCR0, PCR1 and PCR2 all zero.
	Debug bool
	// Now is the clock of the documents' timestamps; nil means time.Now.
	Now func() time.Time
}

// NitroDevice is a simulated Nitro enclave's NSM. It is safe for
// concurrent use.
type NitroDevice struct {
	pki  *NitroPKI
	pcrs map[int][]byte
	now  func() time.Time
}

// NewNitro returns a simulated enclave signed by the simulator's PKI.
func NewNitro(o NitroOptions) (*NitroDevice, error) {
	p, err := simNitroPKI()
	if err != nil {
		return nil, err
	}
	m := DefaultMeasurement
	if o.PCR0 != nil {
		m = *o.PCR0
	}
	pcrs := NitroPCRs(m)
	if o.Debug {
		for i := range 3 {
			pcrs[i] = make([]byte, nitro.PCRSize)
		}
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &NitroDevice{pki: p, pcrs: pcrs, now: now}, nil
}

// Document returns an attestation document whose nonce is reportData, as
// the NSM's Attestation request would.
func (d *NitroDevice) Document(reportData [64]byte) ([]byte, error) {
	return d.pki.Document(NitroDocument{Timestamp: d.now(), PCRs: d.pcrs, Nonce: reportData[:]})
}

// PCRs returns the simulated enclave's PCRs by index (do not modify).
func (d *NitroDevice) PCRs() map[int][]byte { return d.pcrs }

// DevNitro is the Nitro verifier of a --dev-simulator verifier, with
// DevTDX's rule: a document whose chain AWS's root does not sign goes to
// the simulator's verifier; when that does not take it either, AWS's
// verdict stands.
type DevNitro = DevTDX
