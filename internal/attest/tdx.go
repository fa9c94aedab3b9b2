package attest

// TDXClaims is the flat view of one verified Intel TDX quote that policy
// sees (SPEC "Intel TDX", TDX claims). Every byte string is lowercase hex in
// JSON; multi-byte integers (attributes, XFAM) are the quote's bytes as
// they stand (little-endian). Built only from a quote whose signatures and
// PCK chain have verified.
type TDXClaims struct {
	TEE           string       `json:"tee"`           // "tdx"
	QuoteVersion  uint16       `json:"quote_version"` // 4 or 5
	MRTD          Hex          `json:"mr_td"`         // 48 bytes: the TD's build-time measurement
	MRConfigID    Hex          `json:"mr_config_id"`  // 48 bytes
	MROwner       Hex          `json:"mr_owner"`      // 48 bytes
	MROwnerConfig Hex          `json:"mr_owner_config"`
	RTMR0         Hex          `json:"rtmr0"` // 48 bytes each: run-time measurement registers
	RTMR1         Hex          `json:"rtmr1"`
	RTMR2         Hex          `json:"rtmr2"`
	RTMR3         Hex          `json:"rtmr3"`
	MRSeam        Hex          `json:"mr_seam"`        // 48 bytes: the TDX module's measurement
	MRSignerSeam  Hex          `json:"mr_signer_seam"` // 48 bytes; zero for Intel's modules
	SeamAttrs     Hex          `json:"seam_attributes"`
	TDAttributes  TDAttributes `json:"td_attributes"`
	XFAM          Hex          `json:"xfam"`        // 8 bytes
	TEETCBSVN     Hex          `json:"tee_tcb_svn"` // 16 bytes: [0] module SVN, [1] module major version, ...
	ReportData    Hex          `json:"report_data"` // 64 bytes
	FMSPC         Hex          `json:"fmspc"`       // 6 bytes, from the PCK certificate
	// TCBStatus is Intel's word for the platform's TCB level (UpToDate,
	// SWHardeningNeeded, ConfigurationNeeded,
	// ConfigurationAndSWHardeningNeeded, OutOfDate,
	// OutOfDateConfigurationNeeded, ...); "" when verified without
	// collateral.
	TCBStatus string `json:"tcb_status,omitempty"`
	// AdvisoryIDs are Intel's security advisories (INTEL-SA-xxxxx) of the
	// matched TCB levels; nil when there are none or without collateral.
	AdvisoryIDs []string `json:"advisory_ids,omitempty"`
	// TEETCBSVN2 and MRServiceTD exist in TDX 1.5 bodies (quote v5, body
	// type 3) only; nil otherwise.
	TEETCBSVN2  Hex `json:"tee_tcb_svn2,omitempty"`
	MRServiceTD Hex `json:"mr_service_td,omitempty"`
	// Launch is what the verifier knows of this TD's launch (policy
	// input.launch); nil outside POST /v1/attest.
	Launch *Launch `json:"launch,omitempty"`
	// PlatformID is the PCK certificate's PPID (16 bytes), the platform's
	// identity for launch tracking only; nil when the certificate has
	// none. It is never part of the policy input, JSON or a log.
	PlatformID Hex `json:"-"`
}

// TDAttributes is the decoded TD_ATTRIBUTES field (Intel TDX module ABI,
// TDREPORT's TDINFO).
type TDAttributes struct {
	Debug         bool `json:"debug"`           // bit 0: the TD is debuggable; its memory is the host's to read
	SEPTVEDisable bool `json:"sept_ve_disable"` // bit 28
	PKS           bool `json:"pks"`             // bit 30
	KL            bool `json:"kl"`              // bit 31
	PerfMon       bool `json:"perfmon"`         // bit 63
}

// TEEName implements Verified.
func (c *TDXClaims) TEEName() string { return c.TEE }

// BoundData implements Verified.
func (c *TDXClaims) BoundData() []byte { return c.ReportData }

// LaunchMeasurement implements Verified: MRTD.
func (c *TDXClaims) LaunchMeasurement() []byte { return c.MRTD }
