package certs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
)

// BundleFormat is the format tag of a certificate bundle.
const BundleFormat = "trustgate-certs-bundle/v1"

// MaxBundleSize bounds a bundle file that ReadBundle accepts.
const MaxBundleSize = 64 << 20

// Bundle is what `trustgate certs fetch` writes and `trustgate certs import`
// loads, for verifiers without KDS access: one JSON document holding VCEKs,
// CRLs and the KDS certificate chains, each as the KDS served it
// (byte strings are base64 in JSON, as encoding/json writes []byte).
// Nothing in it is trusted on import: VCEKs must chain to the pinned ASK,
// CRLs must be signed by the pinned ARK, chains must be the pinned ones.
type Bundle struct {
	Format  string        `json:"format"`  // BundleFormat
	Created time.Time     `json:"created"` // when the bundle was written
	VCEKs   []BundleVCEK  `json:"vceks,omitempty"`
	CRLs    []BundleCRL   `json:"crls,omitempty"`
	Chains  []BundleChain `json:"chains,omitempty"`
	// TDX is Intel TDX collateral (a JSON array of pcs.BundleEntry),
	// carried for `trustgate certs import`, which has internal/pcs verify
	// and store it; certs does not read it.
	TDX json.RawMessage `json:"tdx,omitempty"`
}

// BundleVCEK is one VCEK and the chip and TCB it was fetched for.
type BundleVCEK struct {
	Product   snp.Product `json:"product"`
	HWID      string      `json:"hwid"` // lowercase hex: CHIP_ID (64 bytes), CHIP_ID[0:8] on Turin
	TCB       string      `json:"tcb"`  // REPORTED_TCB as a raw TCB_VERSION, 16 hex digits
	FetchedAt time.Time   `json:"fetched_at"`
	DER       []byte      `json:"der"`
}

// BundleCRL is one of AMD's CRLs (DER).
type BundleCRL struct {
	Product   snp.Product `json:"product"`
	Signer    snp.Signer  `json:"signer"` // "vcek": /vcek/v1/{product}/crl; "vlek": /vlek/v1/{product}/crl
	FetchedAt time.Time   `json:"fetched_at"`
	DER       []byte      `json:"der"`
}

// BundleChain is a KDS cert_chain body: PEM, intermediate (ASK or ASVK)
// then ARK.
type BundleChain struct {
	Product snp.Product `json:"product"`
	Signer  snp.Signer  `json:"signer"`
	PEM     string      `json:"pem"`
}

// ChainRef names a product's certificate chain and CRL: the VCEK (ASK)
// or VLEK (ASVK) one.
type ChainRef struct {
	Product snp.Product
	Signer  snp.Signer
}

// ReadBundle decodes a bundle (at most MaxBundleSize bytes) and checks its
// format tag. It verifies nothing else; Import does.
func ReadBundle(r io.Reader) (*Bundle, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBundleSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBundleSize {
		return nil, fmt.Errorf("bundle exceeds %d bytes", MaxBundleSize)
	}
	var bu Bundle
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&bu); err != nil {
		return nil, fmt.Errorf("not a certificate bundle: %v", err)
	}
	if bu.Format != BundleFormat {
		return nil, fmt.Errorf("bundle format %q, want %q", bu.Format, BundleFormat)
	}
	return &bu, nil
}

// Write encodes b as indented JSON.
func (b *Bundle) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(b)
}

// ExportOptions shapes Export. The zero value exports the VCEK chain and
// CRL of every product a key belongs to.
type ExportOptions struct {
	// Chains adds chains and CRLs, e.g. VLEK ones (VLEKs themselves come
	// with the evidence, not from the KDS).
	Chains []ChainRef
	// NoCRLs leaves the CRLs out (a verifier that checks revocation then
	// needs them from elsewhere).
	NoCRLs bool
}

// Export builds a bundle of the VCEKs of keys and the chains and CRLs of
// the products they belong to (and of o.Chains), getting each as
// EndorsementKey and Check would: from the tiers, else the KDS. What could
// be had is returned even when some could not (err joins those failures).
func (s *Service) Export(ctx context.Context, keys []snp.KeyRequest, o ExportOptions) (*Bundle, error) {
	refs := slices.Clone(o.Chains)
	b := &Bundle{Format: BundleFormat, Created: s.now().UTC()}
	var errs []error
	for _, req := range keys {
		e, err := s.entry(ctx, req, time.Time{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.VCEKs = append(b.VCEKs, BundleVCEK{Product: req.Product, HWID: hex.EncodeToString(req.HWID),
			TCB: fmt.Sprintf("%016x", uint64(req.TCB)), FetchedAt: e.fetchedAt.UTC(), DER: e.der})
		if r := (ChainRef{req.Product, snp.SignerVCEK}); !slices.Contains(refs, r) {
			refs = append(refs, r)
		}
	}
	for _, r := range refs {
		pemBytes, err := s.CertChain(ctx, r.Product, r.Signer)
		if err != nil {
			errs = append(errs, err)
		} else {
			b.Chains = append(b.Chains, BundleChain{Product: r.Product, Signer: r.Signer, PEM: string(pemBytes)})
		}
		if o.NoCRLs {
			continue
		}
		c, err := s.crl(ctx, crlKey{r.Product, r.Signer}, time.Time{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.CRLs = append(b.CRLs, BundleCRL{Product: r.Product, Signer: r.Signer, FetchedAt: c.fetchedAt.UTC(), DER: c.der})
	}
	return b, errors.Join(errs...)
}

// CertChain returns a product's KDS cert_chain (PEM: ASK or ASVK, then
// ARK). Online it is fetched and must be byte-identical to the pinned
// certificates; offline the pinned ones are returned.
func (s *Service) CertChain(ctx context.Context, p snp.Product, sg snp.Signer) ([]byte, error) {
	pr, ok := s.roots.Product(p)
	if !ok {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "no pinned roots for %s", p)
	}
	ica := pr.ASK
	if sg == snp.SignerVLEK {
		ica = pr.ASVK
	}
	if ica == nil {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "no pinned %s intermediate for %s", sg, p)
	}
	if s.offline {
		var buf bytes.Buffer
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: ica.Raw})
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: pr.ARK.Raw})
		return buf.Bytes(), nil
	}
	what := string(p) + " " + signerPath(sg) + " cert_chain"
	body, err := s.kds.get(ctx, KindCertChain, what, CertChainURL(s.base, p, sg), maxCertSize)
	if err != nil {
		return nil, &attest.Error{Reason: attest.ReasonVCEKUnavailable, Err: err}
	}
	if err := checkChain(body, ica.Raw, pr.ARK.Raw); err != nil {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "KDS %s: %w", what, err)
	}
	return body, nil
}

func checkChain(pemBytes, ica, ark []byte) error {
	gotICA, gotARK, err := snp.ParseCertChain(pemBytes)
	if err != nil {
		return err
	}
	if !bytes.Equal(gotICA.Raw, ica) || !bytes.Equal(gotARK.Raw, ark) {
		return errors.New("not the pinned intermediate and ARK")
	}
	return nil
}

// ImportResult counts what Import stored.
type ImportResult struct {
	VCEKs, CRLs int
	// Kept counts CRLs not imported because a newer one was held.
	Kept int
}

// Import verifies everything in b and stores it in every persistent tier
// (disk, Redis) and in memory. It refuses the whole bundle, storing
// nothing, if any part does not verify at the Service's clock: a VCEK not
// signed by the pinned ASK, not for the chip and TCB it is filed under, or
// expired; a CRL not signed by the pinned ARK or past nextUpdate plus
// CRLGrace; a chain that is not the pinned one.
func (s *Service) Import(ctx context.Context, b *Bundle) (ImportResult, error) {
	var res ImportResult
	if b.Format != BundleFormat {
		return res, fmt.Errorf("bundle format %q, want %q", b.Format, BundleFormat)
	}
	if len(s.tiers) == 0 {
		return res, errors.New("no disk or Redis tier to import into")
	}
	now := s.now()
	var errs []error
	for i, c := range b.Chains {
		pr, ok := s.roots.Product(c.Product)
		ica := pr.ASK
		if c.Signer == snp.SignerVLEK {
			ica = pr.ASVK
		}
		if !ok || ica == nil {
			errs = append(errs, fmt.Errorf("chain %d: no pinned %s %s chain", i, c.Product, c.Signer))
			continue
		}
		if err := checkChain([]byte(c.PEM), ica.Raw, pr.ARK.Raw); err != nil {
			errs = append(errs, fmt.Errorf("chain %d (%s %s): %v", i, c.Product, c.Signer, err))
		}
	}
	type vcekIn struct {
		k   vkey
		rec *record
		e   *ventry
	}
	var vceks []vcekIn
	for i, v := range b.VCEKs {
		hwid, err := hex.DecodeString(v.HWID)
		if err != nil {
			errs = append(errs, fmt.Errorf("VCEK %d: hwid is not hex", i))
			continue
		}
		tcb, err := strconv.ParseUint(v.TCB, 16, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("VCEK %d: tcb is not 16 hex digits", i))
			continue
		}
		req := snp.KeyRequest{Product: v.Product, Signer: snp.SignerVCEK, HWID: hwid, TCB: snp.TCBVersion(tcb)}
		if err := checkRequest(req); err != nil {
			errs = append(errs, fmt.Errorf("VCEK %d: %v", i, err))
			continue
		}
		k := makeVKey(req)
		rec := &record{DER: v.DER, FetchedAt: v.FetchedAt}
		if rec.FetchedAt.IsZero() {
			rec.FetchedAt = b.Created
		}
		e, err := s.newEntry(k, rec, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("VCEK %d (%s): %v", i, v.Product, err))
			continue
		}
		vceks = append(vceks, vcekIn{k, rec, e})
	}
	type crlIn struct {
		k   crlKey
		rec *record
		c   *crlState
	}
	var crls []crlIn
	for i, c := range b.CRLs {
		k := crlKey{c.Product, c.Signer}
		if s.crls[k] == nil {
			errs = append(errs, fmt.Errorf("CRL %d: unknown product or signer %q %q", i, c.Product, c.Signer))
			continue
		}
		rec := &record{DER: c.DER, FetchedAt: c.FetchedAt}
		if rec.FetchedAt.IsZero() {
			rec.FetchedAt = b.Created
		}
		st, err := s.parseCRL(k, rec, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("CRL %d (%s): %v", i, k, err))
			continue
		}
		if now.After(st.usableTill) {
			errs = append(errs, fmt.Errorf("CRL %d (%s): past nextUpdate %s plus the %s grace", i, k, st.nextUpdate.Format(time.RFC3339), s.crlGrace))
			continue
		}
		crls = append(crls, crlIn{k, rec, st})
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("bundle refused, nothing imported: %w", err)
	}
	for _, v := range vceks {
		if err := s.putAll(ctx, v.k.name(), v.rec, v.e.notAfter.Sub(now)); err != nil {
			return res, err
		}
		s.mem.Put(v.e.key, v.e)
		s.neg.del(v.k)
		res.VCEKs++
	}
	for _, c := range crls {
		cur := s.heldCRL(ctx, c.k, now)
		if cur != nil && cur.newer(c.c) {
			res.Kept++
			continue
		}
		if err := s.putAll(ctx, c.k.name(), c.rec, c.c.usableTill.Sub(now)); err != nil {
			return res, err
		}
		s.crls[c.k].Store(c.c)
		res.CRLs++
	}
	return res, nil
}

// heldCRL returns the newest CRL held in memory or the tiers, without
// asking the KDS; nil if none.
func (s *Service) heldCRL(ctx context.Context, k crlKey, now time.Time) *crlState {
	best := s.crls[k].Load()
	for _, t := range s.tiers {
		rec, err := t.get(ctx, k.name())
		if err != nil || rec == nil {
			continue
		}
		if c, err := s.parseCRL(k, rec, now); err == nil && c.newer(best) {
			best = c
		}
	}
	return best
}

// putAll writes a record to every persistent tier; unlike persist it
// fails on the first error (an import must not half succeed silently).
func (s *Service) putAll(ctx context.Context, name string, rec *record, ttl time.Duration) error {
	for _, t := range s.tiers {
		if err := t.put(ctx, name, rec, ttl); err != nil {
			return fmt.Errorf("%s tier: %w", t.kind(), err)
		}
	}
	return nil
}

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
			return nil, fmt.Errorf("line %d: %v", n, err)
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
