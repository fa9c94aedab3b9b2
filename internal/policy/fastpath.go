package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
)

// fastPathSource is the SHA-256 of the default.rego the fast path
// implements. The fast path is used only for a module with exactly that
// source (the embedded default policy, or a file with the same bytes);
// every other policy, and the default policy once its source changes
// without this file, goes through OPA (TestFastPathKeyedToSource fails
// then, as a reminder to update both).
const fastPathSource = "312e02a0f3e4939d602706a0568204f8724a8029afbff13af245dbfb1da90e5e"

// fastPath is the default policy compiled by hand for one set of reference
// values: it gives the decisions OPA gives for that policy
// (TestFastPathAgreesWithOPA runs both on a corpus that reaches every deny
// reason, FuzzFastPathAgreesWithOPA on generated claims of every TEE and
// reference values), at a small fraction of the cost. It reads only the claims the
// default policy reads; anything else in the input (input.launch
// included) is ignored, as the default policy ignores it.
type fastPath struct {
	snp, tdx  []fastEntry // the measurement entries of each TEE
	azureSNP  []fastEntry
	azureTDX  []fastEntry
	nitro     []fastEntry
	minTCB    *refvalues.TCB
	vmpls     []int    // allowed_vmpl, [0] when absent
	tcbStatus []string // tdx_tcb_status, ["UpToDate"] when absent
}

type fastEntry struct {
	value, label string
	expires      int64 // Unix ns; 0 with hasExpiry false: never
	hasExpiry    bool
	resources    []string
	rtmr         []string                 // TDX pins, "" = any
	pcrs         map[string]string        // Azure pins
	nitroPCRs    [attest.NitroPCRs]string // Nitro pins by PCR index, "" = none
}

// compileFastPath returns the fast path of module with ref, or nil when
// module is not the default policy the fast path implements or ref holds
// something whose OPA evaluation it does not mirror (an expiry outside
// Unix nanoseconds' range, which OPA refuses with an error; two entries
// with one label).
func compileFastPath(module string, ref *refvalues.Set) *fastPath {
	if sum := sha256.Sum256([]byte(module)); hex.EncodeToString(sum[:]) != fastPathSource {
		return nil
	}
	s := refvalues.Set{}
	if ref != nil {
		s = *ref
	}
	f := &fastPath{minTCB: s.MinTCB, vmpls: s.AllowedVMPL, tcbStatus: s.TDXTCBStatus}
	// object.get's default applies when the key is absent, and the JSON
	// form leaves out an empty list (omitempty).
	if len(f.vmpls) == 0 {
		f.vmpls = []int{0}
	}
	if len(f.tcbStatus) == 0 {
		f.tcbStatus = []string{"UpToDate"}
	}
	labels := map[string]bool{}
	for _, m := range s.Measurements {
		if labels[m.Label] {
			return nil
		}
		labels[m.Label] = true
		e := fastEntry{value: m.Value, label: m.Label, resources: m.Resources, rtmr: m.RTMR, pcrs: m.PCRs}
		if m.Expires != nil {
			if m.Expires.Before(minNanoTime) || m.Expires.After(maxNanoTime) {
				return nil
			}
			e.expires, e.hasExpiry = m.Expires.UnixNano(), true
		}
		switch m.TEE {
		case refvalues.TEETDX:
			f.tdx = append(f.tdx, e)
		case refvalues.TEEAzureSNP:
			f.azureSNP = append(f.azureSNP, e)
		case refvalues.TEEAzureTDX:
			f.azureTDX = append(f.azureTDX, e)
		case refvalues.TEENitro:
			for k, pin := range m.PCRs {
				n, ok := nitroPCRIndex(k)
				if !ok || pin == "" {
					return nil // refvalues refuses these; OPA decides
				}
				e.nitroPCRs[n] = pin
			}
			e.pcrs = nil
			f.nitro = append(f.nitro, e)
		default:
			f.snp = append(f.snp, e)
		}
	}
	return f
}

// The times OPA's time.parse_rfc3339_ns accepts.
var (
	minNanoTime = time.Unix(0, -1<<63)
	maxNanoTime = time.Unix(0, 1<<63-1)
)

// The default policy's deny reasons, in its order.
const (
	fastMeasurement = 1 << iota
	fastDebug
	fastVMPL
	fastTCB
	fastOutOfDate
	fastTCBStatus
)

var fastReasons = []string{"measurement_mismatch", "debug_enabled", "vmpl_not_allowed", "tcb_below_minimum", "tcb_out_of_date", "policy_tcb_status"}

// evaluate decides c at now. ok is false for claims the fast path does not
// know (another type, or a tee the type does not carry): OPA decides them.
func (f *fastPath) evaluate(c attest.Verified, now time.Time) (d attest.Decision, ok bool) {
	var failed int
	var chosen *fastEntry
	nowNs := now.UnixNano()
	switch c := c.(type) {
	case *attest.Claims:
		if c.TEE == attest.TEETDX || c.TEE == attest.TEEAzureSNP || c.TEE == attest.TEEAzureTDX || c.TEE == attest.TEENitro {
			return d, false
		}
		chosen = f.match(f.snp, hex.EncodeToString(c.Measurement), nowNs, nil)
		failed |= f.snpChecks(c)
	case *attest.TDXClaims:
		if c.TEE != attest.TEETDX {
			return d, false
		}
		chosen = f.match(f.tdx, hex.EncodeToString(c.MRTD), nowNs, c)
		failed |= f.tdxChecks(c)
	case *attest.AzureSNPClaims:
		if c.Claims == nil || c.TEE != attest.TEEAzureSNP {
			return d, false
		}
		chosen = f.matchAzure(f.azureSNP, hex.EncodeToString(c.Measurement), nowNs, c.TPM)
		failed |= f.snpChecks(c.Claims)
	case *attest.AzureTDXClaims:
		if c.TDXClaims == nil || c.TEE != attest.TEEAzureTDX {
			return d, false
		}
		chosen = f.matchAzure(f.azureTDX, hex.EncodeToString(c.MRTD), nowNs, c.TPM)
		failed |= f.tdxChecks(c.TDXClaims)
	case *attest.NitroClaims:
		if c.TEE != attest.TEENitro {
			return d, false
		}
		chosen = f.matchNitro(f.nitro, c, nowNs)
		if nitroZero(c.PCR0) && nitroZero(c.PCR1) && nitroZero(c.PCR2) {
			failed |= fastDebug
		}
	default:
		return d, false
	}
	if chosen == nil {
		failed |= fastMeasurement
	}
	if failed != 0 {
		d.Reasons = make([]string, 0, 2)
		for i, r := range fastReasons {
			if failed&(1<<i) != 0 {
				d.Reasons = append(d.Reasons, r)
			}
		}
		return d, true
	}
	d.Allow, d.Reasons, d.Label = true, []string{}, chosen.label
	d.Resources = append(make([]string, 0, len(chosen.resources)), chosen.resources...)
	return d, true
}

// snpChecks are the default policy's SEV-SNP checks but the measurement.
func (f *fastPath) snpChecks(c *attest.Claims) (failed int) {
	if c.Policy.Debug {
		failed |= fastDebug
	}
	if !slices.Contains(f.vmpls, int(c.VMPL)) {
		failed |= fastVMPL
	}
	if f.belowMinTCB(c.ReportedTCB) {
		failed |= fastTCB
	}
	return failed
}

// tdxChecks are the default policy's TDX checks but the measurement.
func (f *fastPath) tdxChecks(c *attest.TDXClaims) (failed int) {
	if c.TDAttributes.Debug {
		failed |= fastDebug
	}
	// An absent tcb_status (omitempty) is in no list and no prefix.
	switch {
	case c.TCBStatus != "" && slices.Contains(f.tcbStatus, c.TCBStatus):
	case c.TCBStatus != "" && strings.HasPrefix(c.TCBStatus, "OutOfDate"):
		failed |= fastOutOfDate
	default:
		failed |= fastTCBStatus
	}
	return failed
}

// matchAzure returns the Azure entry with the lowest label whose value is
// "" or measurement, not expired at nowNs, every PCR pin equal to the
// quoted PCR; nil if none.
func (f *fastPath) matchAzure(entries []fastEntry, measurement string, nowNs int64, tpm map[string]attest.Hex) *fastEntry {
	var best *fastEntry
	for i := range entries {
		e := &entries[i]
		if (e.value != "" && e.value != measurement) || (e.hasExpiry && e.expires <= nowNs) || pcrDiffers(e.pcrs, tpm) {
			continue
		}
		if best == nil || e.label < best.label {
			best = e
		}
	}
	return best
}

// pcrDiffers reports whether a pin is not the quoted PCR of its name (or
// the quote lacks it).
func pcrDiffers(pins map[string]string, tpm map[string]attest.Hex) bool {
	for k, pin := range pins {
		have, ok := tpm[k]
		if !ok || pin != hex.EncodeToString(have) {
			return true
		}
	}
	return false
}

// match returns the entry of entries (one TEE's) with the lowest label
// whose value is measurement, not expired at nowNs and, for TDX (td not
// nil), with every RTMR pin held; nil if none.
func (f *fastPath) match(entries []fastEntry, measurement string, nowNs int64, td *attest.TDXClaims) *fastEntry {
	var best *fastEntry
	for i := range entries {
		e := &entries[i]
		if e.value != measurement || (e.hasExpiry && e.expires <= nowNs) {
			continue
		}
		if td != nil && rtmrDiffers(e.rtmr, td) {
			continue
		}
		if best == nil || e.label < best.label {
			best = e
		}
	}
	return best
}

// rtmrDiffers reports whether a pin is neither "" nor the claims' RTMR of
// its index. A pin past RTMR3 is not compared: in OPA, rtmr_keys[i] is
// undefined there, which fails rtmr_differs's body before its "not"
// (refvalues refuses more than 4 pins anyway).
func rtmrDiffers(pins []string, td *attest.TDXClaims) bool {
	for i, pin := range pins {
		if pin == "" {
			continue
		}
		var have []byte
		switch i {
		case 0:
			have = td.RTMR0
		case 1:
			have = td.RTMR1
		case 2:
			have = td.RTMR2
		case 3:
			have = td.RTMR3
		default:
			continue
		}
		if pin != hex.EncodeToString(have) {
			return true
		}
	}
	return false
}

// belowMinTCB: a component of min_tcb above the reported one; fmc is
// compared only when both have it (min_tcb's fmc is left out when 0, the
// claims' when the report has none).
func (f *fastPath) belowMinTCB(r attest.TCB) bool {
	m := f.minTCB
	if m == nil {
		return false
	}
	if r.Bootloader < m.Bootloader || r.TEE < m.TEE || r.SNP < m.SNP || r.Microcode < m.Microcode {
		return true
	}
	return r.FMC != nil && *r.FMC < m.FMC
}

// matchNitro returns the Nitro entry with the lowest label whose value is
// the claims' PCR0, not expired at nowNs, every PCR pin held; nil if none
// (also when the document has no PCR0: input.pcr0 is then undefined).
func (f *fastPath) matchNitro(entries []fastEntry, c *attest.NitroClaims, nowNs int64) *fastEntry {
	if c.PCR0 == nil {
		return nil
	}
	pcr0 := hex.EncodeToString(c.PCR0)
	var best *fastEntry
	for i := range entries {
		e := &entries[i]
		if e.value != pcr0 || (e.hasExpiry && e.expires <= nowNs) || nitroPCRDiffers(&e.nitroPCRs, c) {
			continue
		}
		if best == nil || e.label < best.label {
			best = e
		}
	}
	return best
}

// nitroPCRIndex parses a Nitro pcrs key, "pcr0" to "pcr15".
func nitroPCRIndex(k string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(k, "pcr"))
	if err != nil || n < 0 || n >= attest.NitroPCRs || k != "pcr"+strconv.Itoa(n) {
		return 0, false
	}
	return n, true
}

// nitroPCRDiffers reports whether a Nitro pin is not the claims' PCR of
// its index; a PCR the document lacks never holds (in OPA, input[k] is
// undefined).
func nitroPCRDiffers(pins *[attest.NitroPCRs]string, c *attest.NitroClaims) bool {
	for i, pin := range pins {
		if pin != "" && (*c.PCR(i) == nil || pin != hex.EncodeToString(*c.PCR(i))) {
			return true
		}
	}
	return false
}

// nitroZero: a PCR of 48 zero bytes, as the default policy's
// nitro_zero_pcr.
func nitroZero(p []byte) bool {
	if len(p) != 48 {
		return false
	}
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}
