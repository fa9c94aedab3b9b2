package tdx

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

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
	detail     string // which levels decided, for the operator
}

// TDX 1.5 relaunch statuses (QVL TDRelaunchCheck).
const (
	StatusTDRelaunchAdvised                    = "TDRelaunchAdvised"
	StatusTDRelaunchAdvisedConfigurationNeeded = "TDRelaunchAdvisedConfigurationNeeded"
)

// matchTCB evaluates a quote's TCB as Intel's Quote Verification Library
// does for TDX (QVL QuoteVerifier 4.1.2.4.11 and 4.1.2.4.17: TcbLevelCheck,
// TdxModuleCheck, TDRelaunchCheck):
//
//  1. Platform: of tcbLevels (Intel lists them highest first), the SGX
//     level is the first whose 16 SGX components are each at most the
//     PCK's CPUSVN and whose PCESVN is at most the PCK's; the TDX level
//     the first that also has its 16 TDX components each at most
//     TEE_TCB_SVN's — components 0 and 1 skipped when TEE_TCB_SVN[1] (the
//     TDX module's major version) is not 0, because the module is then
//     judged by its own identity. No such level: tcb_out_of_date.
//  2. TDX module: with TEE_TCB_SVN[1] = v > 0, the identity "TDX_%02X" of
//     v (none: tcb_out_of_date) and its first level with ISVSVN at most
//     TEE_TCB_SVN[0] (none: tcb_out_of_date) give the module status; with
//     v = 0 the module adds none. MRSIGNERSEAM must equal the identity's
//     (or tdxModule's) MRSIGNER, and SEAMATTRIBUTES must be zero and equal
//     its attributes (tcb_out_of_date otherwise: not a module Intel lists).
//  3. A module status of OutOfDate turns the TDX level's UpToDate and
//     SWHardeningNeeded into OutOfDate, its ConfigurationNeeded and
//     ConfigurationAndSWHardeningNeeded into OutOfDateConfigurationNeeded.
//  4. TDX 1.5 bodies: a TD whose module is out of date on a platform
//     already updated (TEE_TCB_SVN_2 at the latest level) is
//     TDRelaunchAdvised[ConfigurationNeeded].
//  5. QE: the QE identity's first level with ISVSVN at most the QE report's
//     ISVSVN (none: tcb_out_of_date), converged as in 3.
//
// Revoked, at the TDX level, the module or the QE, is tcb_revoked.
// Advisory ids of the platform, module and QE levels are reported
// together, each once, in that order.
func matchTCB(ti *TCBInfo, qe *QEIdentity, pck *PCKInfo, f *framed, qeISVSVN uint16) (*tcbResult, error) {
	body := f.body
	teeTCBSVN := body[offTEETCBSVN : offTEETCBSVN+16]
	version := teeTCBSVN[1]

	// 1. Platform.
	var sgxLevel, tdxLevel *platformLevel
	for i := range ti.TCBLevels {
		l := &ti.TCBLevels[i]
		if !sgxLevelMatches(l, pck) {
			continue
		}
		if sgxLevel == nil {
			sgxLevel = l
		}
		if tdxLevelMatches(l, teeTCBSVN) {
			tdxLevel = l
			break
		}
	}
	if tdxLevel == nil {
		return nil, attest.Errorf(attest.ReasonTCBOutOfDate, "no TCB level of FMSPC %X (evaluation %d) matches: PCK CPUSVN %x, PCESVN %d, TEE_TCB_SVN %x",
			ti.fmspc, ti.TCBEvaluationDataNumber, pck.CPUSVN, pck.PCESVN, teeTCBSVN)
	}
	res := &tcbResult{status: tdxLevel.TCBStatus, detail: fmt.Sprintf("platform level of %s: %s", tdxLevel.TCBDate, tdxLevel.TCBStatus)}
	res.advisories = appendNew(res.advisories, tdxLevel.AdvisoryIDs...)

	// 2. TDX module.
	signer := ti.TDXModule
	moduleStatus := ""
	if version > 0 {
		m := moduleIdentity(ti, version)
		if m == nil {
			return nil, attest.Errorf(attest.ReasonTCBOutOfDate, "TCB info has no TDX module identity TDX_%02X", version)
		}
		ml := firstLevel(m.TCBLevels, int(teeTCBSVN[0]))
		if ml == nil {
			return nil, attest.Errorf(attest.ReasonTCBOutOfDate, "no TCB level of TDX module %s matches ISVSVN %d", m.ID, teeTCBSVN[0])
		}
		signer, moduleStatus = &m.tdxModule, ml.TCBStatus
		res.advisories = appendNew(res.advisories, ml.AdvisoryIDs...)
		res.detail += fmt.Sprintf("; module %s level of %s: %s", m.ID, ml.TCBDate, ml.TCBStatus)
	}
	if signer == nil {
		return nil, attest.Errorf(attest.ReasonCollateralInvalid, "TCB info has no tdxModule")
	}
	if !bytes.Equal(signer.MRSigner, body[offMRSignerSeam:offMRSignerSeam+48]) {
		return nil, attest.Errorf(attest.ReasonTCBOutOfDate, "MRSIGNERSEAM is not the signer of the TDX module Intel lists")
	}
	seamAttrs := body[offSeamAttrs : offSeamAttrs+8]
	if !bytes.Equal(seamAttrs, make([]byte, 8)) || !bytes.Equal(seamAttrs, signer.Attributes) {
		return nil, attest.Errorf(attest.ReasonTCBOutOfDate, "SEAMATTRIBUTES %x are not zero and the TDX module's attributes", seamAttrs)
	}

	// 3. The module's status into the TDX level's.
	res.status = converge(res.status, moduleStatus)
	if res.status == StatusRevoked {
		return nil, attest.Errorf(attest.ReasonTCBRevoked, "Intel lists the TCB as Revoked (%s)", res.detail)
	}

	// 5 (QE) is needed by 4.
	ql := firstLevel(qe.TCBLevels, int(qeISVSVN))
	if ql == nil {
		return nil, attest.Errorf(attest.ReasonTCBOutOfDate, "no TCB level of the QE identity matches the QE's ISVSVN %d", qeISVSVN)
	}

	// 4. Relaunch advice (TDX 1.5).
	if f.bodyType == bodyTypeTDX15 && ql.TCBStatus == StatusUpToDate && moduleStatus == StatusOutOfDate {
		st, err := relaunch(ti, sgxLevel.TCBStatus, res.status, body[offTEETCBSVN2:offTEETCBSVN2+16])
		if err != nil {
			return nil, err
		}
		res.status = st
	}

	// 5. QE.
	res.status = converge(res.status, ql.TCBStatus)
	res.advisories = appendNew(res.advisories, ql.AdvisoryIDs...)
	res.detail += fmt.Sprintf("; QE level of %s: %s", ql.TCBDate, ql.TCBStatus)
	if res.status == StatusRevoked {
		return nil, attest.Errorf(attest.ReasonTCBRevoked, "Intel lists the TCB as Revoked (%s)", res.detail)
	}
	return res, nil
}

// relaunch is QVL's TDRelaunchCheck: a TD on an updated platform whose
// own module is out of date is advised to relaunch, when TEE_TCB_SVN_2 (the
// SVNs a relaunched TD would get) reaches the latest level.
func relaunch(ti *TCBInfo, sgxStatus, tdxStatus string, svn2 []byte) (string, error) {
	switch sgxStatus {
	case StatusUpToDate, StatusSWHardeningNeeded, StatusConfigurationNeeded, StatusConfigurationAndSWHardening:
	default:
		return tdxStatus, nil
	}
	if tdxStatus != StatusOutOfDate && tdxStatus != StatusOutOfDateConfigurationNeeded {
		return tdxStatus, nil
	}
	latest := &ti.TCBLevels[0]
	if len(latest.TCB.TDXComponents) != 16 {
		return "", attest.Errorf(attest.ReasonCollateralInvalid, "the latest TCB level has %d TDX components, want 16", len(latest.TCB.TDXComponents))
	}
	var ok bool
	if svn2[1] == 0 {
		ok = int(svn2[0]) >= latest.TCB.TDXComponents[0].SVN && int(svn2[2]) >= latest.TCB.TDXComponents[2].SVN
	} else {
		m := moduleIdentity(ti, svn2[1])
		if m == nil {
			return "", attest.Errorf(attest.ReasonTCBOutOfDate, "TCB info has no TDX module identity TDX_%02X (TEE_TCB_SVN_2)", svn2[1])
		}
		if len(m.TCBLevels) == 0 {
			return "", attest.Errorf(attest.ReasonTCBOutOfDate, "TDX module identity %s has no TCB level", m.ID)
		}
		ok = int(svn2[0]) >= m.TCBLevels[0].TCB.ISVSVN && int(svn2[2]) >= latest.TCB.TDXComponents[2].SVN
	}
	if !ok {
		return tdxStatus, nil
	}
	if configurationNeeded(sgxStatus) || configurationNeeded(tdxStatus) {
		return StatusTDRelaunchAdvisedConfigurationNeeded, nil
	}
	return StatusTDRelaunchAdvised, nil
}

func configurationNeeded(status string) bool {
	switch status {
	case StatusConfigurationNeeded, StatusOutOfDateConfigurationNeeded, StatusConfigurationAndSWHardening, StatusTDRelaunchAdvisedConfigurationNeeded:
		return true
	}
	return false
}

// moduleIdentity returns the TDX module identity "TDX_<version as 2 hex
// digits>" (compared case-insensitively, as QVL does), or nil.
func moduleIdentity(ti *TCBInfo, version byte) *tdxModuleIdentity {
	id := fmt.Sprintf("TDX_%02X", version)
	for i := range ti.TDXModuleIdentities {
		if strings.EqualFold(ti.TDXModuleIdentities[i].ID, id) {
			return &ti.TDXModuleIdentities[i]
		}
	}
	return nil
}

// sgxLevelMatches is the SGX half of step 1 of matchTCB for one level.
func sgxLevelMatches(l *platformLevel, pck *PCKInfo) bool {
	if len(l.TCB.SGXComponents) != 16 {
		return false
	}
	for i, c := range l.TCB.SGXComponents {
		if int(pck.CPUSVN[i]) < c.SVN {
			return false
		}
	}
	return int(pck.PCESVN) >= l.TCB.PCESVN
}

// tdxLevelMatches is the TDX half of step 1 of matchTCB for one level.
func tdxLevelMatches(l *platformLevel, teeTCBSVN []byte) bool {
	if len(l.TCB.TDXComponents) != 16 {
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
