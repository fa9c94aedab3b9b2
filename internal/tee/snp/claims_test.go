package snp_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
)

// No real report sets most guest-policy and PLATFORM_INFO bits, a non-zero
// ABI major, SIGNER_INFO's AUTHOR_KEY_EN or MASK_CHIP_KEY, or non-zero
// HOST_DATA and AUTHOR_KEY_DIGEST. Signed reports with each bit alone and
// with all of them pin the decoding of every claim to the bit the SEV-SNP
// ABI (56860, ATTESTATION_REPORT and "Guest Policy") gives it; the expected
// values come from that table here, not from the decoder.
func TestClaimsDecodeEveryBit(t *testing.T) {
	t.Parallel()
	const base = 1<<16 | 1<<17 // SMT allowed, reserved bit 17 (must be 1)
	policyBits := map[uint]func(*attest.GuestPolicy){
		16: func(p *attest.GuestPolicy) { p.SMT = true },
		18: func(p *attest.GuestPolicy) { p.MigrateMA = true },
		19: func(p *attest.GuestPolicy) { p.Debug = true },
		20: func(p *attest.GuestPolicy) { p.SingleSocket = true },
		21: func(p *attest.GuestPolicy) { p.CXLAllow = true },
		22: func(p *attest.GuestPolicy) { p.MemAES256XTS = true },
		23: func(p *attest.GuestPolicy) { p.RAPLDis = true },
		24: func(p *attest.GuestPolicy) { p.CiphertextHiding = true },
		25: func(p *attest.GuestPolicy) { p.PageSwapDisable = true },
	}
	platformBits := map[uint]func(*attest.PlatformInfo){
		0: func(p *attest.PlatformInfo) { p.SMTEnabled = true },
		1: func(p *attest.PlatformInfo) { p.TSMEEnabled = true },
		2: func(p *attest.PlatformInfo) { p.ECCEnabled = true },
		3: func(p *attest.PlatformInfo) { p.RAPLDisabled = true },
		4: func(p *attest.PlatformInfo) { p.CiphertextHidingEnabled = true },
		5: func(p *attest.PlatformInfo) { p.AliasCheckComplete = true },
		6: func(p *attest.PlatformInfo) { p.IOMMUWriteSafe = true },
		7: func(p *attest.PlatformInfo) { p.TIOEnabled = true },
	}
	type want struct {
		policy   attest.GuestPolicy
		platform attest.PlatformInfo
		author   bool
		mask     bool
	}
	type tcase struct {
		name     string
		policy   uint64
		platform uint64
		signer   snp.Signer
		info     uint32 // SIGNER_INFO bits 1:0
		want     want
	}
	var cases []tcase
	cases = append(cases, tcase{name: "SMT not allowed", policy: 1 << 17})
	for bit, set := range policyBits {
		c := tcase{name: fmt.Sprintf("policy bit %d", bit), policy: 1<<17 | 1<<bit}
		set(&c.want.policy)
		cases = append(cases, c)
	}
	for bit, set := range platformBits {
		c := tcase{name: fmt.Sprintf("platform_info bit %d", bit), policy: base, platform: 1 << bit}
		c.want.policy.SMT = true
		set(&c.want.platform)
		cases = append(cases, c)
	}
	abi := tcase{name: "ABI 0x7e.0x1f", policy: base | 0x7e<<8 | 0x1f}
	abi.want.policy = attest.GuestPolicy{ABIMajor: 0x7e, ABIMinor: 0x1f, SMT: true}
	cases = append(cases, abi)
	author := tcase{name: "AUTHOR_KEY_EN", policy: base, info: 1}
	author.want.policy.SMT, author.want.author = true, true
	cases = append(cases, author)
	mask := tcase{name: "MASK_CHIP_KEY, VLEK-signed", policy: base, signer: snp.SignerVLEK, info: 2}
	mask.want.policy.SMT, mask.want.mask = true, true
	cases = append(cases, mask)
	all := tcase{name: "every bit", policy: 1<<17 | 0x7e<<8 | 0x1f, platform: 0xff, signer: snp.SignerVLEK, info: 3}
	all.want.policy.ABIMajor, all.want.policy.ABIMinor = 0x7e, 0x1f
	for bit, set := range policyBits {
		all.policy |= 1 << bit
		set(&all.want.policy)
	}
	for _, set := range platformBits {
		set(&all.want.platform)
	}
	all.want.author, all.want.mask = true, true
	cases = append(cases, all)

	milan := mustChain(t, testkit.ChainOptions{})
	fill := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			report := milan.Report(testkit.ReportFields{
				Policy: tc.policy, Signer: tc.signer,
				HostData: [32]byte(fill(32, 0x4d)),
				Mutate: func(r []byte) {
					binary.LittleEndian.PutUint64(r[0x40:], tc.platform)
					binary.LittleEndian.PutUint32(r[0x48:], binary.LittleEndian.Uint32(r[0x48:])|tc.info)
					binary.LittleEndian.PutUint32(r[0x04:], 0x01020304) // GUEST_SVN
					copy(r[0x10:], fill(16, 0xf1))                      // FAMILY_ID
					copy(r[0x20:], fill(16, 0x1d))                      // IMAGE_ID
					copy(r[0xE0:], fill(48, 0x1e))                      // ID_KEY_DIGEST
					copy(r[0x110:], fill(48, 0xa7))                     // AUTHOR_KEY_DIGEST
					copy(r[0x140:], fill(32, 0x3d))                     // REPORT_ID
				},
			})
			claims, err := verify(milan, snp.Evidence{Report: report, CertTable: milan.CertTable()}, snp.Options{AllowDebug: true})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if claims.Policy != tc.want.policy {
				t.Errorf("policy %#x decoded as %+v, want %+v", tc.policy, claims.Policy, tc.want.policy)
			}
			if claims.PlatformInfo != tc.want.platform {
				t.Errorf("platform_info %#x decoded as %+v, want %+v", tc.platform, claims.PlatformInfo, tc.want.platform)
			}
			if claims.AuthorKeyEn != tc.want.author || claims.MaskChipKey != tc.want.mask {
				t.Errorf("signer info %#x decoded as author_key_en=%t mask_chip_key=%t", tc.info, claims.AuthorKeyEn, claims.MaskChipKey)
			}
			for name, got := range map[string]struct {
				have attest.Hex
				want []byte
			}{
				"host_data":         {claims.HostData, fill(32, 0x4d)},
				"family_id":         {claims.FamilyID, fill(16, 0xf1)},
				"image_id":          {claims.ImageID, fill(16, 0x1d)},
				"id_key_digest":     {claims.IDKeyDigest, fill(48, 0x1e)},
				"author_key_digest": {claims.AuthorKeyDigest, fill(48, 0xa7)},
				"report_id":         {claims.ReportID, fill(32, 0x3d)},
			} {
				if !bytes.Equal(got.have, got.want) {
					t.Errorf("%s = %s, want %x", name, got.have, got.want)
				}
			}
			if claims.GuestSVN != 0x01020304 {
				t.Errorf("guest_svn = %#x", claims.GuestSVN)
			}
		})
	}
}
