package snp

import (
	"encoding/binary"
	"fmt"

	"github.com/trustgate/trustgate/internal/attest"
)

// Product is an SEV-SNP product line as the AMD KDS names it.
type Product string

// The product lines with a KDS certificate chain (VCEK spec 57230 ch. 4).
const (
	Milan Product = "Milan"
	Genoa Product = "Genoa"
	Turin Product = "Turin"
)

// Products lists the product lines trustgate knows, in KDS order.
func Products() []Product { return []Product{Milan, Genoa, Turin} }

// ParseProduct returns the product line named s ("Milan", "Genoa", "Turin").
func ParseProduct(s string) (Product, error) {
	for _, p := range Products() {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown SEV-SNP product line %q", s)
}

// productFromCPUID maps the signed CPUID_FAM_ID and CPUID_MOD_ID bytes of a
// version 3+ report to a product line. The model ranges are those of AMD's
// processor programming references: family 19h models 00h–0Fh Milan, 10h–1Fh
// Genoa and A0h–AFh Genoa's Zen 4c parts (Bergamo, Siena), which KDS serves
// under "Genoa"; family 1Ah models 00h–11h Turin. ok is false for anything
// else, in which case the endorsement key's chain alone names the product.
func productFromCPUID(family, model byte) (p Product, ok bool) {
	switch {
	case family == 0x19 && model <= 0x0F:
		return Milan, true
	case family == 0x19 && model >= 0x10 && model <= 0x1F:
		return Genoa, true
	case family == 0x19 && model >= 0xA0 && model <= 0xAF:
		return Genoa, true
	case family == 0x1A && model <= 0x11:
		return Turin, true
	}
	return "", false
}

// TCBVersion is a raw 64-bit TCB_VERSION as it appears in a report.
type TCBVersion uint64

// tcbLayout gives the byte index of each security patch level within a
// TCB_VERSION (SEV-SNP ABI 56860 "TCB_VERSION Structure"; the Turin layout is
// the one of VCEK spec 57230's Turin tables). -1 means absent.
type tcbLayout struct{ fmc, bootloader, tee, snp, microcode int }

func (p Product) tcbLayout() tcbLayout {
	if p == Turin {
		return tcbLayout{fmc: 0, bootloader: 1, tee: 2, snp: 3, microcode: 7}
	}
	return tcbLayout{fmc: -1, bootloader: 0, tee: 1, snp: 6, microcode: 7}
}

// DecodeTCB splits v into its security patch levels in p's layout.
func (p Product) DecodeTCB(v TCBVersion) attest.TCB {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	l := p.tcbLayout()
	t := attest.TCB{Bootloader: b[l.bootloader], TEE: b[l.tee], SNP: b[l.snp], Microcode: b[l.microcode]}
	if l.fmc >= 0 {
		fmc := b[l.fmc]
		t.FMC = &fmc
	}
	return t
}

// EncodeTCB is the inverse of DecodeTCB: it places t's levels in p's layout
// with every reserved byte zero. An FMC level is ignored for products
// without one.
func (p Product) EncodeTCB(t attest.TCB) TCBVersion {
	var b [8]byte
	l := p.tcbLayout()
	b[l.bootloader], b[l.tee], b[l.snp], b[l.microcode] = t.Bootloader, t.TEE, t.SNP, t.Microcode
	if l.fmc >= 0 && t.FMC != nil {
		b[l.fmc] = *t.FMC
	}
	return TCBVersion(binary.LittleEndian.Uint64(b[:]))
}
