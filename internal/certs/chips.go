package certs

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
)

// ParseKeyRequest parses a chip and TCB given as PRODUCT:HWID:TCB, where
// HWID is the CHIP_ID in hex (on Turin its first 8 bytes; a 64-byte Turin
// CHIP_ID whose bytes 8–63 are zero is cut to those) and TCB is either the
// raw REPORTED_TCB as 0x and 16 hex digits, or its levels as
// "bl=3,tee=0,snp=8,ucode=115" (Turin: and fmc=N; missing levels are 0).
func ParseKeyRequest(s string) (snp.KeyRequest, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 3 {
		return snp.KeyRequest{}, errors.New("want PRODUCT:HWID:TCB")
	}
	p, err := snp.ParseProduct(parts[0])
	if err != nil {
		return snp.KeyRequest{}, err
	}
	hwid, err := hex.DecodeString(parts[1])
	if err != nil {
		return snp.KeyRequest{}, errors.New("HWID is not hex")
	}
	if p == snp.Turin && len(hwid) == 64 && bytes.Equal(hwid[8:], make([]byte, 56)) {
		hwid = hwid[:8]
	}
	req := snp.KeyRequest{Product: p, Signer: snp.SignerVCEK, HWID: hwid}
	if t, ok := strings.CutPrefix(parts[2], "0x"); ok {
		v, err := strconv.ParseUint(t, 16, 64)
		if err != nil || len(t) != 16 {
			return snp.KeyRequest{}, errors.New("raw TCB must be 0x and 16 hex digits")
		}
		req.TCB = snp.TCBVersion(v)
	} else {
		var t attest.TCB
		var fmc uint8
		for _, kv := range strings.Split(parts[2], ",") {
			name, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
			n, err := strconv.ParseUint(val, 10, 8)
			if !ok || err != nil {
				return snp.KeyRequest{}, fmt.Errorf("TCB level %q is not NAME=0..255", kv)
			}
			switch name {
			case "bl":
				t.Bootloader = uint8(n)
			case "tee":
				t.TEE = uint8(n)
			case "snp":
				t.SNP = uint8(n)
			case "ucode":
				t.Microcode = uint8(n)
			case "fmc":
				if p != snp.Turin {
					return snp.KeyRequest{}, fmt.Errorf("%s has no fmc level", p)
				}
				fmc = uint8(n)
			default:
				return snp.KeyRequest{}, fmt.Errorf("unknown TCB level %q (bl, tee, snp, ucode, fmc)", name)
			}
		}
		t.FMC = &fmc
		req.TCB = p.EncodeTCB(t)
	}
	if err := checkRequest(req); err != nil {
		return snp.KeyRequest{}, err
	}
	return req, nil
}

// ReadChipList reads chips and TCBs, one PRODUCT:HWID:TCB (as
// ParseKeyRequest takes it) per line; blank lines and lines starting with
// # are skipped. It reads at most 16 MiB.
func ReadChipList(r io.Reader) ([]snp.KeyRequest, error) {
	var out []snp.KeyRequest
	sc := bufio.NewScanner(io.LimitReader(r, 16<<20))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		req, err := ParseKeyRequest(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, req)
	}
	return out, sc.Err()
}

// ReadChipListFile is ReadChipList on the file at path.
func ReadChipListFile(path string) ([]snp.KeyRequest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadChipList(f)
}
