package measure

import (
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
)

// DigestSize is the size of a launch digest in bytes (SHA-384).
const DigestSize = sha512.Size384

// pageSize is the SNP page granule for SNP_LAUNCH_UPDATE (4 KiB).
const pageSize = 4096

// Digest is a 48-byte SEV-SNP launch digest (report field MEASUREMENT).
type Digest [DigestSize]byte

// String returns the digest as 96 lowercase hex characters.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// ParseDigest decodes 96 hex characters (either case) into a Digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != DigestSize {
		return d, errorf(KindInvalidOptions, "digest must be %d hex characters (%d bytes)", 2*DigestSize, DigestSize)
	}
	copy(d[:], b)
	return d, nil
}

// pageType is the PAGE_TYPE field of PAGE_INFO (SEV-SNP ABI 56860, table
// "Page Types").
type pageType uint8

const (
	pageNormal  pageType = 0x01 // PAGE_TYPE_NORMAL: contents measured
	pageVMSA    pageType = 0x02 // PAGE_TYPE_VMSA: VMSA contents measured
	pageZero    pageType = 0x03 // PAGE_TYPE_ZERO: contents field is zero
	pageUnmeas  pageType = 0x04 // PAGE_TYPE_UNMEASURED: contents field is zero
	pageSecrets pageType = 0x05 // PAGE_TYPE_SECRETS: contents field is zero
	pageCPUID   pageType = 0x06 // PAGE_TYPE_CPUID: contents field is zero
)

// vmsaGPA is the address recorded for VMSA pages. The firmware measures
// VMSA pages at GPA 0xFFFFFFFFF000 (the all-ones GPA, page aligned and
// truncated to the 52-bit physical address width) — the value KVM and the
// other VMMs pass, so it is part of every published measurement.
const vmsaGPA = 0x0000_FFFF_FFFF_F000

// pageInfoSize is the LENGTH of PAGE_INFO (SEV-SNP ABI 56860, table
// "PAGE_INFO"): DIGEST_CUR[48] at 0x00, CONTENTS[48] at 0x30, LENGTH u16 at
// 0x60, PAGE_TYPE u8 at 0x62, IMI_PAGE u8 at 0x63, VMPL3/2/1_PERMS u8 at
// 0x64..0x66, reserved u8 at 0x67, GPA u64 at 0x68.
const pageInfoSize = 0x70

// chain is the launch digest being extended (the firmware's GCTX.LD).
type chain struct {
	ld Digest
}

// extend folds one page into the digest: LD = SHA-384(PAGE_INFO). IMI_PAGE
// and the VMPL permissions are zero for every page a VMM adds at launch.
func (c *chain) extend(t pageType, gpa uint64, contents *Digest) {
	var pi [pageInfoSize]byte
	copy(pi[0x00:0x30], c.ld[:])
	copy(pi[0x30:0x60], contents[:])
	binary.LittleEndian.PutUint16(pi[0x60:], pageInfoSize)
	pi[0x62] = byte(t)
	binary.LittleEndian.PutUint64(pi[0x68:], gpa)
	c.ld = sha512.Sum384(pi[:])
}

// normalPages measures data (a multiple of 4 KiB) as NORMAL pages starting
// at gpa; the contents field of each is SHA-384 of the page.
func (c *chain) normalPages(gpa uint64, data []byte) {
	for off := 0; off+pageSize <= len(data); off += pageSize {
		h := Digest(sha512.Sum384(data[off : off+pageSize]))
		c.extend(pageNormal, gpa+uint64(off), &h)
	}
}

// emptyPages measures size bytes (rounded up to pages) of pages of type t
// whose contents field is zero (ZERO, UNMEASURED, SECRETS, CPUID pages).
func (c *chain) emptyPages(t pageType, gpa uint64, size uint64) {
	var zero Digest
	for off := uint64(0); off < size; off += pageSize {
		c.extend(t, gpa+off, &zero)
	}
}

// vmsaPage measures one VMSA page.
func (c *chain) vmsaPage(page *[pageSize]byte) {
	h := Digest(sha512.Sum384(page[:]))
	c.extend(pageVMSA, vmsaGPA, &h)
}
