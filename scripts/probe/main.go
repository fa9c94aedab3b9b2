// Command probe checks that every security check of the verifier is guarded
// by a test: it disables one check at a time (a hand-picked source edit,
// listed below), runs the tests of the packages that reach it, and reports
// the check as KILLED (some test failed, as it must) or SURVIVED (every
// test still passed: the check has no test). A mutant that does not build
// is reported BROKEN. The source is restored after each mutant, and on
// interrupt.
//
// Run from the repository root: go run ./scripts/probe [-run regexp]
// (-stale only checks that the list still matches the source).
// It exits 1 if any mutant survived, was broken or no longer matches the
// source (the list must follow the code).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
)

// mutant disables one check: Old, which must occur exactly once in File,
// becomes New; the tests of Pkgs must then fail.
type mutant struct {
	File, Old, New string
	Pkgs           []string
	// Equivalent, when set, says why this mutant cannot be told apart
	// from the original by any input (another check refuses the same
	// inputs); its survival is reported EQUIV and is no failure.
	Equivalent string
}

// off turns the condition cond of an if statement into false && (cond).
func off(file, cond string, pkgs ...string) mutant {
	return mutant{File: file, Old: "if " + cond + " {", New: "if false && (" + cond + ") {", Pkgs: pkgs}
}

// offInit is off for "if init; cond {".
func offInit(file, init, cond string, pkgs ...string) mutant {
	return mutant{File: file, Old: "if " + init + "; " + cond + " {", New: "if " + init + "; false && (" + cond + ") {", Pkgs: pkgs}
}

// equiv marks m as an equivalent mutant, for the reason given.
func equiv(m mutant, why string) mutant {
	m.Equivalent = why
	return m
}

// swap replaces old by new.
func swap(file, old, new string, pkgs ...string) mutant {
	return mutant{File: file, Old: old, New: new, Pkgs: pkgs}
}

const (
	snpPkg      = "./internal/tee/snp/"
	verifierPkg = "./internal/verifier/"
	tokenPkg    = "./internal/token/"
	releasePkg  = "./internal/release/"
	httpapiPkg  = "./internal/httpapi/"
	certsPkg    = "./internal/certs/"
	attestPkg   = "./internal/attest/"
	tdxPkg      = "./internal/tee/tdx/"
	launchPkg   = "./internal/launch/"
	adminPkg    = "./internal/admin/"
	tieredPkg   = "./internal/tiered/"
	azurePkg    = "./internal/tee/azure/"
)

var mutants = []mutant{
	// internal/verifier: dispatch by "tee", the one REPORT_DATA comparison
	// (attest.ExpectReportData, called by appraise for both flows), the
	// policy's decision.
	swap("internal/verifier/verifier.go", "tee, ok := s.tees[in.TEE]\n\tif !ok {", "tee, ok := s.tees[in.TEE]\n\tif !ok {\n\t\ttee, ok = s.tees[attest.TEESEVSNP]\n\t}\n\tif !ok {", verifierPkg, httpapiPkg),
	swap("internal/verifier/verifier.go", "tee, ok := s.tees[in.TEE]", "tee, ok := s.tees[attest.TEESEVSNP]", verifierPkg),
	swap("internal/verifier/verifier.go", "if ev.Quote != nil || ev.Document != nil {", "if ev.Document != nil {", verifierPkg),
	swap("internal/verifier/verifier.go", "if ev.Quote != nil || ev.Document != nil {", "if ev.Quote != nil {", verifierPkg),
	offInit("internal/verifier/verifier.go", "err := s.o.Nonces.Check(in.Nonce)", "err != nil", verifierPkg),
	swap("internal/verifier/verifier.go", "if key == nil {\n\t\treturn n, nil", "if true {\n\t\treturn n, nil", verifierPkg),
	offInit("internal/verifier/verifier.go", "err := attest.ExpectReportData(claims, reportData)", "err != nil", verifierPkg, httpapiPkg),
	swap("internal/verifier/verifier.go", "\t\treturn a, err\n", "\t\treturn a, nil\n", verifierPkg),
	swap("internal/verifier/verifier.go", "if err := d.Err(); err != nil {\n\t\t\treturn 0, err", "if err := d.Err(); false && err != nil {\n\t\t\treturn 0, err", verifierPkg),
	swap("internal/verifier/verifier.go", "_, err := use.Consume(ctx, nil)\n\t\treturn 0, err", "_, _ = use.Consume(ctx, nil)\n\t\treturn 0, nil", verifierPkg),
	offInit("internal/verifier/verifier.go", "err := s.o.Nonces.Check(n)", "err != nil", verifierPkg),
	equiv(swap("internal/verifier/verifier.go", "!ok || !k.Valid() ||", "!ok ||", verifierPkg),
		"go-jose's JSONWebKey.UnmarshalJSON already refuses an EC point off its curve"),
	swap("internal/verifier/verifier.go", "ek.Curve != elliptic.P384())", "ek.Curve != elliptic.P384() && false)", verifierPkg),
	swap("internal/verifier/verifier.go", "if !ok ||", "if (ok && false) ||", verifierPkg),

	// internal/attest: the one comparison of REPORT_DATA (and of the
	// launch measurement) and Expect, the CLI's caller.
	off("internal/attest/verified.go", "subtle.ConstantTimeCompare(v.BoundData(), want) != 1", attestPkg, verifierPkg, snpPkg),
	off("internal/attest/verified.go", "subtle.ConstantTimeCompare(v.LaunchMeasurement(), want) != 1", attestPkg),
	off("internal/attest/verified.go", "reportData != nil", attestPkg),
	off("internal/attest/verified.go", "measurement != nil", attestPkg),

	// internal/token
	equiv(off("internal/token/token.go", "!verified", tokenPkg),
		"a token no key verifies leaves the claims empty, and the jti and eat_profile check refuses it"),
	offInit("internal/token/token.go", "err := ear.Claims.ValidateWithLeeway(jwt.Expected{Issuer: issuer, Time: now}, 0)", "err != nil", tokenPkg),
	swap("internal/token/token.go", `ear.ID == "" || ear.Profile != EARProfile`, `ear.Profile != EARProfile`, tokenPkg),
	swap("internal/token/token.go", `ear.ID == "" || ear.Profile != EARProfile`, `ear.ID == ""`, tokenPkg),
	off("internal/token/token.go", "ear.DevSimulator && !i.o.DevSimulator", tokenPkg),
	swap("internal/token/token.go", `[]string{"alg", "kid", "typ", "crit", "jwk"}`, `[]string{"alg", "kid", "typ"}`, tokenPkg),
	off("internal/token/token.go", "o.Key == nil || o.Key.Curve != elliptic.P256()", tokenPkg),

	// internal/release
	off("internal/release/release.go", "ear.Expiry == nil", releasePkg),
	off("internal/release/release.go", "len(names) == 0 || len(names) > MaxResources", releasePkg),
	offInit("internal/release/release.go", "err := resources.ValidName(n)", "err != nil", releasePkg),
	off("internal/release/release.go", "slices.Contains(names[:i], n)", releasePkg),
	off("internal/release/release.go", "len(ear.Submods) != 1", releasePkg),
	off("internal/release/release.go", `sub.Status != "affirming"`, releasePkg),
	off("internal/release/release.go", "!slices.Contains(sub.Resources, n)", releasePkg),
	off("internal/release/release.go", "sub.TEEPubKey == nil", releasePkg),
	off("internal/release/release.go", "!first", releasePkg),

	// internal/tee/snp (guarded on main; kept here so the record stays whole)
	off("internal/tee/snp/verify.go", "len(report) != ReportSize", snpPkg),
	off("internal/tee/snp/verify.go", "attest.ExpectReportData(&r.claims, rd[:]) != nil", snpPkg),
	off("internal/tee/snp/input.go", "len(body) < ReportSize", snpPkg, verifierPkg, httpapiPkg),
	off("internal/tee/snp/input.go", "ev.Quote != nil", snpPkg, verifierPkg),
	off("internal/tee/snp/verify.go", "r.claims.Policy.Debug && !v.allowDebug", snpPkg),
	off("internal/tee/snp/verify.go", "g != guidVCEK && g != guidVLEK", snpPkg),
	off("internal/tee/snp/verify.go", "!e.validAt(at)", snpPkg),
	off("internal/tee/snp/verify.go", "r.signer != ek.Signer", snpPkg),
	off("internal/tee/snp/verify.go", "r.cpuidKnown && r.cpuidProduct != ek.Product", snpPkg),
	off("internal/tee/snp/verify.go", "ek.TCB != r.reportedTCB", snpPkg),
	off("internal/tee/snp/verify.go", "!chipMatches(ek.HWID, r.claims.ChipID[:])", snpPkg),
	// Narrowed: the reserved bytes 0x1F8-0x207 checked below version 4
	// only (version 4 is laid out like 3).
	swap("internal/tee/snp/report.go", "if version < 5 {\n\t\tfor _, b := range report[0x1F8:0x208]", "if version < 4 {\n\t\tfor _, b := range report[0x1F8:0x208]", snpPkg),
	// Narrowed: only the first 8 bytes of a 64-byte hwID compared.
	swap("internal/tee/snp/verify.go", "bytes.Equal(hwid, chipID[:len(hwid)])", "bytes.Equal(hwid[:min(8, len(hwid))], chipID[:min(8, len(hwid))])", snpPkg),
	swap("internal/tee/snp/verify.go", "if b != 0 {\n\t\t\treturn attest.Errorf(attest.ReasonSignatureInvalid", "if false && b != 0 {\n\t\t\treturn attest.Errorf(attest.ReasonSignatureInvalid", snpPkg),
	off("internal/tee/snp/verify.go", "!ecdsa.VerifyASN1(key, digest[:], der)", snpPkg),
	off("internal/tee/snp/report.go", "version < MinReportVersion || version > MaxReportVersion", snpPkg),
	// Narrowed: the supported version range shifted by one at either end.
	swap("internal/tee/snp/report.go", "if version < MinReportVersion || version > MaxReportVersion {", "if version < MinReportVersion-1 || version > MaxReportVersion {", snpPkg),
	swap("internal/tee/snp/report.go", "if version < MinReportVersion || version > MaxReportVersion {", "if version < MinReportVersion || version > MaxReportVersion+1 {", snpPkg),
	off("internal/tee/snp/report.go", "b != 0", snpPkg),
	off("internal/tee/snp/certtable.go", "len(b) > MaxCertTableSize", snpPkg),
	off("internal/tee/snp/certtable.go", "end > uint64(len(b)) || h.Length == 0", snpPkg),
	offInit("internal/tee/snp/certtable.go", "_, dup := t[h.GUID]", "dup", snpPkg),
	swap("internal/tee/snp/endorsement.go", `return nil, fmt.Errorf("unknown AMD TCB extension %v", id)`, "_ = id", snpPkg),
	off("internal/tee/snp/endorsement.go", "!ok || pub.Curve != elliptic.P384()", snpPkg),
	off("internal/tee/snp/endorsement.go", "!haveStruct || !haveName", snpPkg),
	off("internal/tee/snp/endorsement.go", "!strings.HasPrefix(ek.ProductName, string(ek.Product))", snpPkg),
	off("internal/tee/snp/endorsement.go", `len(ek.HWID) != want || ek.CSPID != ""`, snpPkg),
	off("internal/tee/snp/endorsement.go", `ek.HWID != nil || ek.CSPID == ""`, snpPkg),
	off("internal/tee/snp/endorsement.go", "spl[n] != 0", snpPkg),

	// internal/tee/tdx, in the order of doc.go: framing, the PCK chain,
	// the QE report and quote signatures, the collateral (CRLs, signed
	// documents and their dates, QE identity), the TCB level matching,
	// the debug floor.
	swap("internal/tee/tdx/quote.go", "case 4:\n", "case 4, 3, 6:\n", tdxPkg),
	swap("internal/tee/tdx/quote.go", "case bodyTypeTDX15:\n", "case bodyTypeTDX15, 1:\n", tdxPkg),
	off("internal/tee/tdx/quote.go", "size != want", tdxPkg),
	off("internal/tee/tdx/quote.go", "sigLen > uint64(len(sd))", tdxPkg),
	off("internal/tee/tdx/quote.go", "certType != certTypeQEReport", tdxPkg),
	off("internal/tee/tdx/quote.go", "innerType != certTypePCKChain", tdxPkg),
	offInit("internal/tee/tdx/quote.go", "t := binary.LittleEndian.Uint32(f.header[4:8])", "t != teeTypeTDX", tdxPkg),
	offInit("internal/tee/tdx/quote.go", "k := binary.LittleEndian.Uint16(f.header[2:4])", "k != attKeyTypeECDSAP256", tdxPkg),
	off("internal/tee/tdx/verify.go", "f.size > MaxQuoteSize", tdxPkg),
	swap("internal/tee/tdx/input.go", "if ev.Report != nil || ev.CertTable != nil || ev.Document != nil {", "if ev.Document != nil {", tdxPkg, verifierPkg),
	swap("internal/tee/tdx/input.go", "if ev.Report != nil || ev.CertTable != nil || ev.Document != nil {", "if ev.Report != nil || ev.CertTable != nil {", tdxPkg, verifierPkg),
	swap("internal/tee/tdx/pck.go", "if !ca.IsCA || ca.CheckSignatureFrom(root) != nil {", "if !ca.IsCA {", tdxPkg),
	offInit("internal/tee/tdx/pck.go", "err := leaf.CheckSignatureFrom(ca)", "err != nil", tdxPkg),
	off("internal/tee/tdx/pck.go", "!ok || key.Curve != elliptic.P256()", tdxPkg),
	swap("internal/tee/tdx/pck.go", "ok {\n\t\tif !e.validAt(at) {", "ok {\n\t\tif false && !e.validAt(at) {", tdxPkg),
	swap("internal/tee/tdx/pck.go", "\n\tif !e.validAt(at) {", "\n\tif false && !e.validAt(at) {", tdxPkg),
	swap("internal/tee/tdx/pck.go", "range []*x509.Certificate{ca, root} {", "range []*x509.Certificate{} {", tdxPkg),
	off("internal/tee/tdx/verify.go", "!verifyP256(pck.key, f.qeReport, f.qeSig)", tdxPkg),
	off("internal/tee/tdx/verify.go", "!bytes.Equal(f.qeReport[qeOffReportData:qeOffReportData+64], bind[:])", tdxPkg),
	off("internal/tee/tdx/verify.go", "!verifyP256(attKey, f.signed, f.sig)", tdxPkg),
	off("internal/tee/tdx/verify.go", "revoked(pckCRL, pck.leaf)", tdxPkg),
	off("internal/tee/tdx/verify.go", "revoked(rootCRL, pck.ca)", tdxPkg),
	swap("internal/tee/tdx/verify.go", "case revoked(rootCRL, c):", "case false && revoked(rootCRL, c):", tdxPkg),
	swap("internal/tee/tdx/verify.go", "case at.Before(c.NotBefore) || at.After(c.NotAfter):", "case false && (at.Before(c.NotBefore) || at.After(c.NotAfter)):", tdxPkg),
	off("internal/tee/tdx/collateral.go", "!c.crlSignedBy(crl, issuer)", tdxPkg),
	swap("internal/tee/tdx/collateral.go", "ok = crl.CheckSignatureFrom(issuer) == nil", "ok = true", tdxPkg),
	swap("internal/tee/tdx/collateral.go", "at.Before(crl.ThisUpdate) || (!crl.NextUpdate.IsZero() && at.After(crl.NextUpdate))", "(!crl.NextUpdate.IsZero() && at.After(crl.NextUpdate))", tdxPkg),
	swap("internal/tee/tdx/collateral.go", "at.Before(crl.ThisUpdate) || (!crl.NextUpdate.IsZero() && at.After(crl.NextUpdate))", "at.Before(crl.ThisUpdate)", tdxPkg),
	swap("internal/tee/tdx/collateral.go", "ti.fmspc != fmspc ||", "false ||", tdxPkg),
	swap("internal/tee/tdx/verify.go", `ti.ID != "TDX" || ti.Version != 3 || ti.TCBType != 0`, `ti.Version != 3 || ti.TCBType != 0`, tdxPkg),
	swap("internal/tee/tdx/verify.go", `ti.ID != "TDX" || ti.Version != 3 || ti.TCBType != 0`, `ti.ID != "TDX" || ti.TCBType != 0`, tdxPkg),
	swap("internal/tee/tdx/verify.go", `ti.ID != "TDX" || ti.Version != 3 || ti.TCBType != 0`, `ti.ID != "TDX" || ti.Version != 3`, tdxPkg),
	off("internal/tee/tdx/verify.go", "ti.pceID != pck.info.PCEID", tdxPkg),
	swap("internal/tee/tdx/verify.go", `qe.ID != "TD_QE" || qe.Version != 2`, `qe.Version != 2`, tdxPkg),
	swap("internal/tee/tdx/verify.go", `qe.ID != "TD_QE" || qe.Version != 2`, `qe.ID != "TD_QE"`, tdxPkg),
	swap("internal/tee/tdx/verify.go", "if err != nil {\n\t\t\treturn nil, attest.Errorf(attest.ReasonCollateralInvalid, \"%s: %w\", d.what, err)", "if false && err != nil {\n\t\t\treturn nil, attest.Errorf(attest.ReasonCollateralInvalid, \"%s: %w\", d.what, err)", tdxPkg),
	off("internal/tee/tdx/collateral.go", "!ok || !ecdsa.Verify(key, digest[:], r, s)", tdxPkg),
	swap("internal/tee/tdx/collateral.go", "if cert.CheckSignatureFrom(root) == nil && ", "if ", tdxPkg),
	off("internal/tee/tdx/collateral.go", "at.Before(issue)", tdxPkg),
	off("internal/tee/tdx/collateral.go", "at.After(next)", tdxPkg),
	off("internal/tee/tdx/verify.go", "!bytes.Equal(report[qeOffMRSigner:qeOffMRSigner+32], qe.MRSigner)", tdxPkg),
	off("internal/tee/tdx/verify.go", "int(binary.LittleEndian.Uint16(report[qeOffISVProdID:])) != qe.ISVProdID", tdxPkg),
	off("internal/tee/tdx/verify.go", "misc&binary.BigEndian.Uint32(qe.MiscSelectMask) != binary.BigEndian.Uint32(qe.MiscSelect)", tdxPkg),
	off("internal/tee/tdx/verify.go", "attrs[i]&qe.AttributesMask[i] != qe.Attributes[i]", tdxPkg),
	off("internal/tee/tdx/tcb.go", "int(pck.CPUSVN[i]) < c.SVN", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "return int(pck.PCESVN) >= l.TCB.PCESVN", "return true", tdxPkg),
	off("internal/tee/tdx/tcb.go", "int(teeTCBSVN[i]) < l.TCB.TDXComponents[i].SVN", tdxPkg),
	// Narrowed: components 0-1 skipped for a TDX 1.0 module (version 0) too.
	swap("internal/tee/tdx/tcb.go", "if teeTCBSVN[1] > 0 {\n\t\tstart = 2", "if true || teeTCBSVN[1] > 0 {\n\t\tstart = 2", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "ml := firstLevel(m.TCBLevels, int(teeTCBSVN[0]))", "ml := firstLevel(m.TCBLevels, 1<<30)", tdxPkg),
	off("internal/tee/tdx/tcb.go", "!bytes.Equal(signer.MRSigner, body[offMRSignerSeam:offMRSignerSeam+48])", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "!bytes.Equal(seamAttrs, make([]byte, 8)) || ", "", tdxPkg),
	swap("internal/tee/tdx/tcb.go", " || !bytes.Equal(seamAttrs, signer.Attributes)", "", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "moduleStatus)\n\tif res.status == StatusRevoked {", "moduleStatus)\n\tif false && res.status == StatusRevoked {", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "ql := firstLevel(qe.TCBLevels, int(qeISVSVN))", "ql := firstLevel(qe.TCBLevels, 1<<30)", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "ql.TCBStatus)\n\tif res.status == StatusRevoked {", "ql.TCBStatus)\n\tif false && res.status == StatusRevoked {", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "case StatusRevoked:\n\t\treturn StatusRevoked", "case StatusRevoked + \"?\":\n\t\treturn StatusRevoked", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "case StatusUpToDate, StatusSWHardeningNeeded:\n\t\t\treturn StatusOutOfDate", "case \"\":\n\t\t\treturn StatusOutOfDate", tdxPkg),
	offInit("internal/tee/tdx/verify.go", "tud := f.body[offTDAttributes]", "tud != 0 && !v.allowDebug", tdxPkg, verifierPkg),

	// Narrowing mutants, second batch (issue 21): every remaining check of
	// internal/tee with a range or a length, its bound moved by one, its
	// version range shifted, or fewer bytes compared.
	swap("internal/tee/snp/certtable.go", "if len(b) > MaxCertTableSize {", "if len(b) > MaxCertTableSize+1 {", snpPkg),
	swap("internal/tee/snp/input.go", "if len(b) > MaxInputSize {", "if len(b) > MaxInputSize+1 {", snpPkg),
	swap("internal/tee/snp/input.go", "v < MinReportVersion || v > MaxReportVersion ||", "v < MinReportVersion-1 || v > MaxReportVersion ||", snpPkg),
	swap("internal/tee/snp/input.go", "v < MinReportVersion || v > MaxReportVersion ||", "v < MinReportVersion || v > MaxReportVersion+1 ||", snpPkg),
	swap("internal/tee/snp/report.go", "if version >= 3 {\n\t\td.cpuidProduct", "if version >= 4 {\n\t\td.cpuidProduct", snpPkg),
	swap("internal/tee/snp/verify.go", "if leUint32(report[0:4]) >= 3 {", "if leUint32(report[0:4]) >= 4 {", snpPkg),
	swap("internal/tee/snp/endorsement.go", "sub[1] >= 1 && sub[1] <= 9:", "sub[1] >= 1 && sub[1] <= 8:", snpPkg),
	swap("internal/tee/snp/endorsement.go", "(len(octets) == 64 || len(octets) == 8)", "(len(octets) == 64)", snpPkg),
	swap("internal/tee/snp/endorsement.go", "i < 0 || i > 255 {", "i < 0 || i > 256 {", snpPkg),
	swap("internal/tee/snp/product.go", "case family == 0x19 && model >= 0x10 && model <= 0x1F:", "case family == 0x19 && model >= 0x11 && model <= 0x1F:", snpPkg),
	swap("internal/tee/snp/product.go", "case family == 0x1A && model <= 0x11:", "case family == 0x1A && model <= 0x10:", snpPkg),
	swap("internal/tee/tdx/collateral.go", "if len(d) > MaxCollateralSize {", "if len(d) > MaxCollateralSize+1 {", tdxPkg),
	swap("internal/tee/tdx/input.go", "if len(b) > MaxInputSize {", "if len(b) > MaxInputSize+1 {", tdxPkg),
	swap("internal/tee/tdx/verify.go", "if f.size > MaxQuoteSize {", "if f.size > MaxQuoteSize+1 {", tdxPkg),
	swap("internal/tee/tdx/verify.go", "!bytes.Equal(f.qeReport[qeOffReportData:qeOffReportData+64], bind[:])", "!bytes.Equal(f.qeReport[qeOffReportData:qeOffReportData+32], bind[:32])", tdxPkg),
	swap("internal/tee/tdx/verify.go", "!bytes.Equal(report[qeOffMRSigner:qeOffMRSigner+32], qe.MRSigner)", "!bytes.Equal(report[qeOffMRSigner:qeOffMRSigner+31], qe.MRSigner[:min(31, len(qe.MRSigner))])", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "!bytes.Equal(signer.MRSigner, body[offMRSignerSeam:offMRSignerSeam+48])", "!bytes.Equal(signer.MRSigner[:min(47, len(signer.MRSigner))], body[offMRSignerSeam:offMRSignerSeam+47])", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "for i := start; i < 16; i++ {", "for i := start; i < 15; i++ {", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "int(pck.CPUSVN[i]) < c.SVN", "int(pck.CPUSVN[i]) < c.SVN-1", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "return int(pck.PCESVN) >= l.TCB.PCESVN", "return int(pck.PCESVN) >= l.TCB.PCESVN-1", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "int(teeTCBSVN[i]) < l.TCB.TDXComponents[i].SVN", "int(teeTCBSVN[i]) < l.TCB.TDXComponents[i].SVN-1", tdxPkg),
	swap("internal/tee/tdx/tcb.go", "if levels[i].TCB.ISVSVN <= isvsvn {", "if levels[i].TCB.ISVSVN <= isvsvn+1 {", tdxPkg),
	swap("internal/tee/tdx/pck.go", "case n >= 1 && n <= 16:", "case n >= 1 && n <= 15:", tdxPkg),
	swap("internal/tee/tdx/pck.go", "v < 0 || v > 255 {", "v < 0 || v > 256 {", tdxPkg),
	swap("internal/tee/tdx/pck.go", "v < 0 || v > 0xFFFF {", "v < 0 || v > 0x10000 {", tdxPkg),
	swap("internal/tee/azure/evidence.go", "(*w.Version < 0 || *w.Version > 2)", "(*w.Version < 0 || *w.Version > 3)", azurePkg),
	swap("internal/tee/azure/evidence.go", "if len(q.PCRs) > maxPCRs {", "if len(q.PCRs) > maxPCRs+1 {", azurePkg),
	swap("internal/tee/azure/quote.go", "indices[len(indices)-1] > maxPCRIndex {", "indices[len(indices)-1] > maxPCRIndex+1 {", azurePkg),

	// internal/launch: pseudonyms are keyed; the sequence advances only on
	// a commit that follows the record read (compare-and-set), and only
	// for an affirmed attestation whose nonce was consumed (verifier).
	swap("internal/launch/launch.go", "m := hmac.New(sha256.New, k.key)", "m := hmac.New(sha256.New, nil)", launchPkg),
	off("internal/launch/memory.go", "cur != prevSeq", launchPkg),
	swap("internal/launch/redis.go", "if seq ~= tonumber(ARGV[1]) then return 0 end", "", launchPkg),
	swap("internal/verifier/verifier.go", "\tif err != nil {\n\t\treturn \"\", err\n\t}\n\tpolicyID := s.o.Policy.ID()",
		"\tif err != nil {\n\t\tif a.launch != nil {\n\t\t\t_, _ = s.commitLaunch(ctx, &a, in.Nonce)\n\t\t}\n\t\treturn \"\", err\n\t}\n\tpolicyID := s.o.Policy.ID()", verifierPkg),
	// The nonce and the commit are one store step (Tracker.CommitConsuming;
	// one Redis script when both are in Redis): no commit for a nonce the
	// store refused.
	swap("internal/launch/launch.go", "if _, err := c.Consume(ctx, nil); err != nil {\n\t\t\treturn 0, err",
		"if _, err := c.Consume(ctx, nil); err != nil {\n\t\t\t_, _ = t.Commit(ctx, p)\n\t\t\treturn 0, err", launchPkg, verifierPkg),

	// internal/admin: who may write (bearer token, verified client
	// certificate when enabled), and signed entries under a trust key.
	swap("internal/admin/handler.go", "subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1", "subtle.ConstantTimeCompare(sum[:], t.sum[:]) >= 0", adminPkg),
	swap("internal/admin/handler.go", "h.o.ClientCerts && r.TLS != nil", "r.TLS != nil", adminPkg),
	swap("internal/admin/handler.go", `!strings.EqualFold(scheme, "Bearer")`, "!strings.EqualFold(scheme, scheme)", adminPkg),
	offInit("internal/admin/handler.go", "trust := h.o.Layer.o.TrustKey", "trust != nil", adminPkg),
	swap("internal/admin/layer.go", "if l.o.TrustKey != nil {\n\t\ta, err := refvalues.VerifyEntry", "if false && l.o.TrustKey != nil {\n\t\ta, err := refvalues.VerifyEntry", adminPkg),
	off("internal/admin/layer.go", "err == nil && m.Label != label", adminPkg),
	// The gatekeeper's memory: replayed approvals, a store that went
	// back, the fleet's trust key requirement.
	off("internal/admin/store.go", "c.JTI != \"\" && s.o.JTIs[c.JTI]", adminPkg),
	offInit("internal/admin/store.go", "w, ok := s.o.Withdrawn[label]", "ok && !c.IssuedAt.IsZero() && c.IssuedAt.UnixMilli() < w.UnixMilli()", adminPkg),
	off("internal/admin/store.go", "s.o.TrustKey != \"\" && s.o.TrustKey != c.TrustKey", adminPkg),
	equiv(off("internal/admin/layer.go", "l.held != nil && v < l.held.Version", adminPkg),
		"the same check after Load (o.Version < l.held.Version) heals the store; this one only saves the load"),
	off("internal/admin/layer.go", "o.TrustKey != \"\" && o.TrustKey != l.fp", adminPkg),
	off("internal/admin/handler.go", "err == nil && (a.ID == \"\" || a.IssuedAt <= 0)", adminPkg),

	// internal/certs: what the KDS and the tiers serve is verified before
	// it is used (vcek.go, crl.go), revocation (revoke.go), the bounds on
	// KDS use (budget.go; internal/tiered's origin.go, flight.go, store.go
	// and lifetime.go, under the certs tests), bundles (bundle.go,
	// import.go, export.go).
	off("internal/certs/vcek.go", "ek.Signer != snp.SignerVCEK || ek.Product != k.product", certsPkg),
	off("internal/certs/vcek.go", "string(ek.HWID) != string(k.hwid[:k.n])", certsPkg),
	off("internal/certs/vcek.go", "ek.TCB != k.tcb", certsPkg),
	offInit("internal/certs/vcek.go", "err := cert.CheckSignatureFrom(pr.ASK)", "err != nil", certsPkg),
	swap("internal/certs/vcek.go", "if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {", "if now.After(cert.NotAfter) {", certsPkg),
	swap("internal/certs/vcek.go", "if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {", "if now.Before(cert.NotBefore) {", certsPkg),
	offInit("internal/certs/vcek.go", "err := checkRequest(req)", "err != nil", certsPkg),
	off("internal/tiered/lifetime.go", "till.After(until)", certsPkg, tieredPkg),
	swap("internal/tiered/lifetime.go", "till = refreshAt.Add(maxStale)", "till = until", certsPkg, tieredPkg),
	swap("internal/certs/vcek.go", "case s.neg.has(k, now):", "case false && s.neg.has(k, now):", certsPkg),
	swap("internal/certs/vcek.go", "return ok && now.Before(until)", "return ok && (now.Before(until) || true)", certsPkg),
	swap("internal/certs/vcek.go", "case s.offline:", "case false && s.offline:", certsPkg),
	offInit("internal/certs/vcek.go", "err = s.budget.admit(ctx, k)", "err != nil", certsPkg),
	swap("internal/tiered/lifetime.go", "case now.After(l.UsableTill):", "case false && now.After(l.UsableTill):", certsPkg, tieredPkg),
	off("internal/certs/crl.go", "!bytes.Equal(l.RawIssuer, pr.ARK.RawSubject)", certsPkg),
	offInit("internal/certs/crl.go", "err := l.CheckSignatureFrom(pr.ARK)", "err != nil", certsPkg),
	off("internal/certs/crl.go", "l.NextUpdate.IsZero() || !l.NextUpdate.After(l.ThisUpdate)", certsPkg),
	off("internal/certs/crl.go", "l.ThisUpdate.After(later(now, time.Now()).Add(crlSkew))", certsPkg),
	off("internal/certs/crl.go", "best != nil && best.newer(c)", certsPkg),
	swap("internal/certs/crl.go", "if c.number != nil && o.number != nil {", "if false && c.number != nil && o.number != nil {", certsPkg),
	off("internal/certs/crl.go", "s.offline", certsPkg),
	swap("internal/certs/crl.go", "if s.crlGrace > 0 {\n\t\t\treturn l.NextUpdate.Add(s.crlGrace)", "if true {\n\t\t\treturn l.NextUpdate.Add(1000 * time.Hour)", certsPkg),
	swap("internal/certs/crl.go", "_, ok := c.big[serial.String()]", "ok := false", certsPkg),
	off("internal/certs/revoke.go", "intermediate == nil || endorsementKey == nil", certsPkg),
	off("internal/certs/revoke.go", "!s.pinned(k, intermediate)", certsPkg),
	swap("internal/certs/revoke.go", "if c == nil || c.State(now) == tiered.Expired {", "if c == nil {", certsPkg),
	off("internal/certs/revoke.go", "c.revoked(intermediate.SerialNumber)", certsPkg),
	off("internal/certs/revoke.go", "c.revoked(endorsementKey.SerialNumber)", certsPkg),
	swap("internal/certs/revoke.go", "\t\t\ts.purgeProduct(ctx, p)", "\t\t\t_ = p", certsPkg),
	swap("internal/certs/revoke.go", "\t\ts.purgeKey(ctx, endorsementKey)", "\t\t_ = endorsementKey", certsPkg),
	swap("internal/certs/revoke.go", "return want != nil && (want == ica || bytes.Equal(want.Raw, ica.Raw))", "return want != nil && (want == ica || bytes.Equal(want.Raw, want.Raw))", certsPkg),
	swap("internal/tiered/origin.go", "o.HTTP = fetch.NoRedirects(o.HTTP)", "_ = fetch.NoRedirects(o.HTTP)", certsPkg),
	off("internal/tiered/origin.go", "wait > o.MaxHoldBack", certsPkg),
	off("internal/tiered/origin.go", "wait > o.MaxRetryAfter", certsPkg),
	equiv(off("internal/tiered/origin.go", "int64(len(body)) > r.Limit", certsPkg),
		"the body is read through LimitReader(limit+1): a longer one is cut, and a cut DER certificate or CRL does not parse; the check only names the cause"),
	swap("internal/tiered/origin.go", "if !retryable || attempt >= o.Attempts {", "if !retryable {", certsPkg),
	swap("internal/fetch/fetch.go", "time.Duration(min(n, int64(MaxRetryAfter/time.Second)))", "time.Duration(n)", "./internal/fetch/"),
	off("internal/certs/kds.go", "len(req.HWID) != want", certsPkg),
	off("internal/certs/kds.go", `req.Signer != snp.SignerVCEK && req.Signer != ""`, certsPkg),
	offInit("internal/certs/budget.go", "prev, ok := b.nonces.Get(n)", "ok && prev != ck", certsPkg),
	off("internal/certs/budget.go", "bk.tokens < 1", certsPkg),
	off("internal/tiered/flight.go", "f.MaxWaiting > 0 && f.waiting >= f.MaxWaiting", certsPkg),
	off("internal/tiered/flight.go", "j.Client != \"\" && f.ClientWaiting > 0 && f.clientWt[j.Client] >= f.ClientWaiting", certsPkg),
	off("internal/tiered/flight.go", "j.Client != \"\" && f.PerClient > 0 && f.started[j.Client] >= f.PerClient", certsPkg),
	off("internal/tiered/flight.go", "f.Max > 0 && len(f.m) >= f.Max && !f.evictAbandoned()", certsPkg),
	off("internal/tiered/store.go", "len(b) > c.MaxSize", certsPkg, tieredPkg),
	off("internal/certs/bundle.go", "len(b) > MaxBundleSize", certsPkg),
	off("internal/certs/bundle.go", "bu.Format != BundleFormat", certsPkg),
	offInit("internal/certs/export.go", "err := checkChain(body, ica.Raw, pr.ARK.Raw)", "err != nil", certsPkg),
	swap("internal/certs/export.go", "!bytes.Equal(gotICA.Raw, ica) || !bytes.Equal(gotARK.Raw, ark)", "!bytes.Equal(gotICA.Raw, ica) || gotARK == nil", certsPkg),
	swap("internal/certs/export.go", "!bytes.Equal(gotICA.Raw, ica) || !bytes.Equal(gotARK.Raw, ark)", "gotICA == nil || !bytes.Equal(gotARK.Raw, ark)", certsPkg),
	off("internal/certs/import.go", "b.Format != BundleFormat", certsPkg),
	offInit("internal/certs/import.go", "err := checkChain([]byte(c.PEM), ica.Raw, pr.ARK.Raw)", "err != nil", certsPkg),
	off("internal/certs/import.go", "st.State(now) == tiered.Expired", certsPkg),
	off("internal/certs/import.go", "cur != nil && cur.newer(c.c)", certsPkg),
	offInit("internal/certs/import.go", "err := errors.Join(errs...)", "err != nil", certsPkg),
}

func main() {
	only := flag.String("run", "", "probe only the mutants whose file or text matches this regexp")
	staleOnly := flag.Bool("stale", false, "only check that every mutant's text occurs exactly once in its file (runs no test)")
	flag.Parse()
	re, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	var restore func()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		if restore != nil {
			restore()
		}
		os.Exit(130)
	}()

	var failed int
	for _, m := range mutants {
		if !re.MatchString(m.File + " " + m.Old) {
			continue
		}
		orig, err := os.ReadFile(m.File)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		label := fmt.Sprintf("%s: %s", m.File, oneLine(m.New, 80)) // the code as mutated
		if strings.TrimSpace(m.New) == "" {
			label = fmt.Sprintf("%s: deleted %s", m.File, oneLine(m.Old, 72))
		}
		if n := strings.Count(string(orig), m.Old); n != 1 {
			fmt.Printf("STALE    %s (found %d times, want 1)\n", label, n)
			failed++
			continue
		}
		if *staleOnly {
			continue
		}
		restore = func() { os.WriteFile(m.File, orig, 0o644) }
		if err := os.WriteFile(m.File, []byte(strings.Replace(string(orig), m.Old, m.New, 1)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		status := run(m)
		restore()
		restore = nil
		if status == "SURVIVED" && m.Equivalent != "" {
			status, label = "EQUIV", label+" ("+m.Equivalent+")"
		}
		fmt.Printf("%-8s %s\n", status, label)
		if status != "KILLED" && status != "EQUIV" {
			failed++
		}
	}
	if failed > 0 {
		fmt.Printf("%d mutants survived, broke the build or are stale\n", failed)
		os.Exit(1)
	}
}

// run builds the mutated package and runs the tests of m.Pkgs.
func run(m mutant) string {
	dir := "./" + m.File[:strings.LastIndex(m.File, "/")]
	if out, err := exec.Command("go", "vet", dir).CombinedOutput(); err != nil {
		fmt.Printf("%s", out)
		return "BROKEN"
	}
	args := append([]string{"test", "-count=1", "-timeout=5m"}, m.Pkgs...)
	if err := exec.Command("go", args...).Run(); err != nil {
		return "KILLED"
	}
	return "SURVIVED"
}

// oneLine is s on one line, cut to n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	return s[:min(len(s), n)]
}
