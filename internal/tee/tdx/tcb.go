package tdx

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/trustgate/trustgate/internal/attest"
)

// Intel's TCB status words (PCS v4 TCB info and QE identity).
const (
	StatusUpToDate                     = "UpToDate"
	StatusSWHardeningNeeded            = "SWHardeningNeeded"
	StatusConfigurationNeeded          = "ConfigurationNeeded"
	StatusConfigurationAndSWHardening  = "ConfigurationAndSWHardeningNeeded"
	StatusOutOfDate                    = "OutOfDate"
	StatusOutOfDateConfigurationNeeded = "OutOfDateConfigurationNeeded"
	StatusRevoked                      = "Revoked"
)

// tcbResult is the outcome of Intel's TCB level matching for one quote.
type tcbResult struct {
	status     string
	advisories []string
	detail     string // which level decided, for the operator
}

// matchTCB evaluates a quote's TCB as Intel's Quote Verification Library
// does for TDX (QVL TcbLevelCheck, TdxModuleCheck, and the convergence of
// the platform status with the TDX module's and the QE's):
//
//  1. Platform level: the first of tcbLevels (Intel lists them highest
//     first) whose 16 SGX components are each at most the PCK's CPUSVN,
//     whose PCESVN is at most the PCK's, and whose 16 TDX components are
//     each at most TEE_TCB_SVN's — skipping components 0 and 1 when
//     TEE_TCB_SVN[1] (the TDX module's major version) is not 0, because
//     the module is then judged by its own identity. No such level:
//     tcb_out_of_date.
//  2. TDX module: with TEE_TCB_SVN[1] = v > 0, the identity "TDX_%02X" of
//     v, whose MRSIGNER must equal MRSIGNERSEAM and whose attributes must
//     equal SEAMATTRIBUTES under its mask; its first level with ISVSVN at
//     most TEE_TCB_SVN[0] gives the module status (none:
//     tcb_out_of_date). With v = 0, tdxModule's MRSIGNER and attributes
//     are checked and the module adds no status.
//  3. QE: the QE identity's first level with ISVSVN at most the QE
//     report's ISVSVN (none: tcb_out_of_date).
//
// A module or QE status of OutOfDate turns UpToDate and
// SWHardeningNeeded into OutOfDate, and ConfigurationNeeded and
// ConfigurationAndSWHardeningNeeded into OutOfDateConfigurationNeeded;
// Revoked anywhere is tcb_revoked. Advisory ids of the platform, module and
// QE levels are reported together, each once, in that order.
func matchTCB(ti *TCBInfo, qe *QEIdentity, pck *PCKInfo, body []byte, qeISVSVN uint16) (*tcbResult, error) {
	teeTCBSVN := body[offTEETCBSVN : offTEETCBSVN+16]
	version := teeTCBSVN[1]

	// 1. Platform.
	var plat *platformLevel
	for i := range ti.TCBLevels {
		l := &ti.TCBLevels[i]
		if platformLevelMatches(l, pck, teeTCBSVN) {
			plat = l
			break
		}
	}
	if plat == nil {
		return nil, attest.Errorf(attest.ReasonTCBOutOfDate, "no TCB level of FMSPC %X (evaluation %d) matches: PCK CPUSVN %x, PCESVN %d, TEE_TCB_SVN %x",
			ti.fmspc, ti.TCBEvaluationDataNumber, pck.CPUSVN, pck.PCESVN, teeTCBSVN)
	}
	res := &tcbResult{status: plat.TCBStatus, detail: fmt.Sprintf("platform level of %s: %s", plat.TCBDate, plat.TCBStatus)}
	res.advisories = appendNew(res.advisories, plat.AdvisoryIDs...)

	// 2. TDX module.
	mrSignerSeam := body[offMRSignerSeam : offMRSignerSeam+48]
	seamAttrs := body[offSeamAttrs : offSeamAttrs+8]
	if version == 0 {
		if ti.TDXModule == nil {
			return nil, attest.Errorf(attest.ReasonCollateralInvalid, "TCB info has no tdxModule")
		}
		if err := moduleMatches(&ti.TDXModule.MRSigner, ti.TDXModule, mrSignerSeam, seamAttrs, "tdxModule"); err != nil {
			return nil, err
		}
	} else {
		id := fmt.Sprintf("TDX_%02X", version)
		i := slices.IndexFunc(ti.TDXModuleIdentities, func(m tdxModuleIdentity) bool { return m.ID == id })
		if i < 0 {
			return nil, attest.Errorf(attest.ReasonTCBOutOfDate, "TCB info has no TDX module identity %s", id)
		}
		m := &ti.TDXModuleIdentities[i]
		if err := moduleMatches(&m.MRSigner, &m.tdxModule, mrSignerSeam, seamAttrs, id); err != nil {
			return nil, err
		}
		ml := firstLevel(m.TCBLevels, int(teeTCBSVN[0]))
		if ml == nil {
			return nil, attest.Errorf(attest.ReasonTCBOutOfDate, "no TCB level of TDX module %s matches ISVSVN %d", id, teeTCBSVN[0])
		}
		res.status = converge(res.status, ml.TCBStatus)
		res.advisories = appendNew(res.advisories, ml.AdvisoryIDs...)
		res.detail += fmt.Sprintf("; module %s level of %s: %s", id, ml.TCBDate, ml.TCBStatus)
	}

	// 3. QE.
	ql := firstLevel(qe.TCBLevels, int(qeISVSVN))
	if ql == nil {
		return nil, attest.Errorf(attest.ReasonTCBOutOfDate, "no TCB level of the QE identity matches the QE's ISVSVN %d", qeISVSVN)
	}
	res.status = converge(res.status, ql.TCBStatus)
	res.advisories = appendNew(res.advisories, ql.AdvisoryIDs...)
	res.detail += fmt.Sprintf("; QE level of %s: %s", ql.TCBDate, ql.TCBStatus)

	if res.status == StatusRevoked {
		return nil, attest.Errorf(attest.ReasonTCBRevoked, "Intel lists the TCB as Revoked (%s)", res.detail)
	}
	return res, nil
}

// platformLevelMatches is step 1 of matchTCB for one level.
func platformLevelMatches(l *platformLevel, pck *PCKInfo, teeTCBSVN []byte) bool {
	if len(l.TCB.SGXComponents) != 16 || len(l.TCB.TDXComponents) != 16 {
		return false
	}
	for i, c := range l.TCB.SGXComponents {
		if int(pck.CPUSVN[i]) < c.SVN {
			return false
		}
	}
	if int(pck.PCESVN) < l.TCB.PCESVN {
		return false
	}
	start := 0
	if teeTCBSVN[1] > 0 {
		start = 2
	}
	for i := start; i < 16; i++ {
		if int(teeTCBSVN[i]) < l.TCB.TDXComponents[i].SVN {
			return false
		}
	}
	return true
}

// moduleMatches checks a TDX module's signer and attributes against an
// identity of the TCB info.
func moduleMatches(mrsigner *hexBytes, m *tdxModule, mrSignerSeam, seamAttrs []byte, id string) error {
	if !bytes.Equal(*mrsigner, mrSignerSeam) {
		return attest.Errorf(attest.ReasonTCBOutOfDate, "MRSIGNERSEAM is not the signer of TDX module identity %s", id)
	}
	if len(m.Attributes) != 8 || len(m.AttributesMask) != 8 {
		return attest.Errorf(attest.ReasonCollateralInvalid, "TDX module identity %s: attributes are not 8 bytes", id)
	}
	got := binary.LittleEndian.Uint64(seamAttrs) & binary.LittleEndian.Uint64(m.AttributesMask)
	if got != binary.LittleEndian.Uint64(m.Attributes) {
		return attest.Errorf(attest.ReasonTCBOutOfDate, "SEAMATTRIBUTES do not match TDX module identity %s", id)
	}
	return nil
}

// firstLevel returns the first level whose ISVSVN is at most isvsvn.
func firstLevel(levels []moduleLevel, isvsvn int) *moduleLevel {
	for i := range levels {
		if levels[i].TCB.ISVSVN <= isvsvn {
			return &levels[i]
		}
	}
	return nil
}

// converge merges a component's status (TDX module or QE) into the
// platform's, as Intel's QVL does.
func converge(platform, component string) string {
	switch component {
	case StatusRevoked:
		return StatusRevoked
	case StatusOutOfDate:
		switch platform {
		case StatusUpToDate, StatusSWHardeningNeeded:
			return StatusOutOfDate
		case StatusConfigurationNeeded, StatusConfigurationAndSWHardening:
			return StatusOutOfDateConfigurationNeeded
		}
	}
	return platform
}

func appendNew(list []string, ids ...string) []string {
	for _, id := range ids {
		if !slices.Contains(list, id) {
			list = append(list, id)
		}
	}
	return list
}
