package refvalues

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MeasurementHexLen is the length of a measurement value: 48 bytes
// (SHA-384, report field MEASUREMENT) as lowercase hex.
const MeasurementHexLen = 96

// Set is the content of a reference-values file.
type Set struct {
	// Version numbers a signed file: `trustgate refvalues sign` sets it to
	// the file's version + 1, so that it only grows. A verifier with a
	// trust key refuses a file whose version is lower than one it has
	// seen, or equal with other content (a rollback). 0: never signed so.
	Version int64 `yaml:"version,omitempty" json:"version,omitempty"`
	// SignedAt is when `trustgate refvalues sign` stamped the version.
	SignedAt *time.Time `yaml:"signed_at,omitempty" json:"signed_at,omitempty"`
	// Measurements are the approved launch measurements; several may be
	// live at once for staged rollouts. Empty means nothing is approved.
	Measurements []Measurement `yaml:"measurements" json:"measurements"`
	// MinTCB, if not nil, is the floor for the report's REPORTED_TCB.
	MinTCB *TCB `yaml:"min_tcb,omitempty" json:"min_tcb,omitempty"`
	// AllowedVMPL lists the VMPLs (0..3) a report may come from; nil
	// means [0] (see VMPLs).
	AllowedVMPL []int `yaml:"allowed_vmpl,omitempty" json:"allowed_vmpl,omitempty"`
	// TDXTCBStatus lists the Intel TCB statuses (tcb_status) the default
	// policy accepts for TDX; nil means ["UpToDate"].
	TDXTCBStatus []string `yaml:"tdx_tcb_status,omitempty" json:"tdx_tcb_status,omitempty"`
}

// The TEEs a measurement entry may name (SPEC "Intel TDX").
const (
	TEESEVSNP = "sev-snp"
	TEETDX    = "tdx"
	// Azure confidential VMs attested through the vTPM.
	TEEAzureSNP = "azure-snp"
	TEEAzureTDX = "azure-tdx"
	TEENitro    = "nitro" // SPEC "AWS Nitro Enclaves"
)

// TCBStatuses are Intel's TCB status words that tdx_tcb_status may list.
var TCBStatuses = []string{
	"UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
	"OutOfDate", "OutOfDateConfigurationNeeded", "TDRelaunchAdvised", "TDRelaunchAdvisedConfigurationNeeded",
}

// Measurement is one approved launch measurement. It approves guests of
// its own TEE only.
type Measurement struct {
	// TEE is "sev-snp", "tdx" or "nitro"; "" means "sev-snp".
	TEE string `yaml:"tee,omitempty" json:"tee,omitempty"`
	// Value is the 48-byte launch digest as 96 lowercase hex characters:
	// SEV-SNP's MEASUREMENT, TDX's MRTD, or Nitro's PCR0.
	Value string `yaml:"value" json:"value"`
	// Label names the build; it is unique in a Set and shown in tokens.
	Label string `yaml:"label" json:"label"`
	// Expires, if not nil, is when the value stops matching.
	Expires *time.Time `yaml:"expires,omitempty" json:"expires,omitempty"`
	// Resources are what a guest of this build may receive; nil: nothing.
	Resources []string `yaml:"resources,omitempty" json:"resources,omitempty"`
	// RTMR pins TDX's RTMR0..RTMR3 (at most 4 entries, in order), each 96
	// lowercase hex characters or "" for any; nil pins none. TDX only.
	RTMR []string `yaml:"rtmr,omitempty" json:"rtmr,omitempty"`
	// PCRs pins PCRs: for azure-snp and azure-tdx the vTPM's ("pcr00" …
	// "pcr23" to 64 lowercase hex characters, SHA-256 bank), where at
	// least one pin is required and Value may be "" (SPEC "Azure
	// confidential VMs"); for nitro the enclave's other PCRs by claim name
	// ("pcr1", "pcr2", "pcr8", ... up to "pcr15") to 96 lowercase hex
	// characters, optional. nil pins none.
	PCRs map[string]string `yaml:"pcrs,omitempty" json:"pcrs,omitempty"`
}

// TCB is a floor for the SVN components of an SEV-SNP TCB_VERSION (SEV-SNP
// ABI 56860, "TCB_VERSION"). FMC exists on Turin and later only.
type TCB struct {
	Bootloader uint8 `yaml:"bootloader" json:"bootloader"`
	TEE        uint8 `yaml:"tee" json:"tee"`
	SNP        uint8 `yaml:"snp" json:"snp"`
	Microcode  uint8 `yaml:"microcode" json:"microcode"`
	FMC        uint8 `yaml:"fmc,omitempty" json:"fmc,omitempty"`
}

// VMPLs returns AllowedVMPL, or [0] when it is empty.
func (s *Set) VMPLs() []int {
	if len(s.AllowedVMPL) == 0 {
		return []int{0}
	}
	return s.AllowedVMPL
}

// Format is the encoding of a reference-values file.
type Format int

// The file formats, chosen by extension.
const (
	JSON Format = iota + 1 // .json
	YAML                   // .yaml, .yml
)

// FormatOf returns the format for path's extension (case-insensitive).
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return JSON, nil
	case ".yaml", ".yml":
		return YAML, nil
	}
	return 0, fmt.Errorf("reference values %s: unknown extension %q (want .json, .yaml or .yml)", path, filepath.Ext(path))
}

// ValidationError lists every problem found in a Set at once.
type ValidationError struct {
	Problems []string
}

// Error implements error.
func (e *ValidationError) Error() string {
	return "invalid reference values: " + strings.Join(e.Problems, "; ")
}

// DuplicateLabelError is returned by Append when the label is taken.
type DuplicateLabelError struct {
	Label string
}

// Error implements error.
func (e *DuplicateLabelError) Error() string {
	return fmt.Sprintf("reference values already have a measurement labelled %q", e.Label)
}

// Load reads, decodes and validates a reference-values file. Unknown keys
// are errors (a misspelt min_tcb must not silently drop the floor). An
// empty file is an empty Set. A validation failure is a *ValidationError.
func Load(path string) (*Set, error) {
	f, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data, f)
	if err != nil {
		return nil, fmt.Errorf("reference values %s: %w", path, err)
	}
	return s, nil
}

// Parse decodes and validates reference values in format f.
func Parse(data []byte, f Format) (*Set, error) {
	var s Set
	if len(bytes.TrimSpace(data)) > 0 {
		switch f {
		case JSON:
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&s); err != nil {
				return nil, fmt.Errorf("decoding JSON: %w", err)
			}
			if _, err := dec.Token(); err != io.EOF {
				return nil, errors.New("decoding JSON: trailing data after the top-level object")
			}
		case YAML:
			dec := yaml.NewDecoder(bytes.NewReader(data))
			dec.KnownFields(true)
			if err := dec.Decode(&s); err != nil && err != io.EOF {
				return nil, fmt.Errorf("decoding YAML: %w", err)
			}
		default:
			return nil, fmt.Errorf("unknown format %d", int(f))
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks every rule and reports all violations in one
// *ValidationError: values are 96 lowercase hex characters, labels are
// non-empty and unique, resource names non-empty, VMPLs within 0..3, tee
// "sev-snp", "tdx" or absent, rtmr pins (TDX only) at most 4 of "" or 96
// lowercase hex characters, tdx_tcb_status Intel's words.
func (s *Set) Validate() error {
	var problems []string
	seen := map[string]int{}
	for i, m := range s.Measurements {
		where := fmt.Sprintf("measurements[%d]", i)
		if m.Label != "" {
			where = fmt.Sprintf("measurements[%d] (%q)", i, m.Label)
		}
		azure := m.TEE == TEEAzureSNP || m.TEE == TEEAzureTDX
		if !(azure && m.Value == "") && !isLowerHex(m.Value, MeasurementHexLen) {
			problems = append(problems, fmt.Sprintf("%s: value must be %d lowercase hex characters, got %q", where, MeasurementHexLen, m.Value))
		}
		switch j, dup := seen[m.Label]; {
		case strings.TrimSpace(m.Label) == "":
			problems = append(problems, fmt.Sprintf("%s: label is empty", where))
		case dup:
			problems = append(problems, fmt.Sprintf("%s: label %q repeats measurements[%d]", where, m.Label, j))
		default:
			seen[m.Label] = i
		}
		for k, r := range m.Resources {
			if strings.TrimSpace(r) == "" {
				problems = append(problems, fmt.Sprintf("%s: resources[%d] is empty", where, k))
			}
		}
		if !azure && m.TEE != TEENitro && m.PCRs != nil {
			problems = append(problems, fmt.Sprintf("%s: pcrs pins need tee: %s, %s or %s", where, TEEAzureSNP, TEEAzureTDX, TEENitro))
		}
		switch m.TEE {
		case TEEAzureSNP, TEEAzureTDX:
			problems = append(problems, pcrProblems(where, m)...)
		case "", TEESEVSNP:
			if m.RTMR != nil {
				problems = append(problems, fmt.Sprintf("%s: rtmr pins need tee: %s", where, TEETDX))
			}
		case TEETDX:
			if len(m.RTMR) > 4 {
				problems = append(problems, fmt.Sprintf("%s: rtmr has %d entries, at most 4 (RTMR0..RTMR3)", where, len(m.RTMR)))
			}
			for k, r := range m.RTMR {
				if r != "" && !isLowerHex(r, MeasurementHexLen) {
					problems = append(problems, fmt.Sprintf("%s: rtmr[%d] must be \"\" or %d lowercase hex characters, got %q", where, k, MeasurementHexLen, r))
				}
			}
		case TEENitro:
			if m.RTMR != nil {
				problems = append(problems, fmt.Sprintf("%s: rtmr pins need tee: %s", where, TEETDX))
			}
			problems = append(problems, nitroPCRProblems(where, m)...)
		default:
			problems = append(problems, fmt.Sprintf("%s: tee %q is not one of %q, %q, %q, %q, %q", where, m.TEE, TEESEVSNP, TEETDX, TEEAzureSNP, TEEAzureTDX, TEENitro))
		}
	}
	for i, st := range s.TDXTCBStatus {
		if !slices.Contains(TCBStatuses, st) {
			problems = append(problems, fmt.Sprintf("tdx_tcb_status[%d]: %q is not one of Intel's TCB statuses %v", i, st, TCBStatuses))
		}
	}
	if s.Version < 0 {
		problems = append(problems, fmt.Sprintf("version: %d is negative", s.Version))
	}
	for i, v := range s.AllowedVMPL {
		if v < 0 || v > 3 {
			problems = append(problems, fmt.Sprintf("allowed_vmpl[%d]: %d is not a VMPL (0..3)", i, v))
		}
	}
	if problems != nil {
		return &ValidationError{Problems: problems}
	}
	return nil
}

// pcrProblems checks an Azure entry: at least one PCR pin (without one,
// an entry would approve every VM on Azure's firmware), each named pcr00 …
// pcr23 with 64 lowercase hex characters; no RTMR pins.
func pcrProblems(where string, m Measurement) []string {
	var problems []string
	if len(m.PCRs) == 0 {
		problems = append(problems, fmt.Sprintf("%s: tee %s needs at least one pcrs pin", where, m.TEE))
	}
	if m.RTMR != nil {
		problems = append(problems, fmt.Sprintf("%s: rtmr pins need tee: %s", where, TEETDX))
	}
	keys := make([]string, 0, len(m.PCRs))
	for k := range m.PCRs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !validPCRName(k) {
			problems = append(problems, fmt.Sprintf("%s: pcrs key %q is not pcr00 … pcr23", where, k))
		}
		if !isLowerHex(m.PCRs[k], PCRHexLen) {
			problems = append(problems, fmt.Sprintf("%s: pcrs %s must be %d lowercase hex characters", where, k, PCRHexLen))
		}
	}
	return problems
}

// PCRHexLen is the length of a pinned PCR value: SHA-256 in hex.
const PCRHexLen = 64

func validPCRName(k string) bool {
	return len(k) == 5 && strings.HasPrefix(k, "pcr") && k[3] >= '0' && k[3] <= '2' && k[4] >= '0' && k[4] <= '9' && (k[3] < '2' || k[4] <= '3')
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// nitroPCRProblems checks a nitro entry's pcrs pins: names pcr0 to
// pcr15, values of 96 lowercase hex characters.
func nitroPCRProblems(where string, m Measurement) []string {
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(m.PCRs)) {
		n, err := strconv.Atoi(strings.TrimPrefix(k, "pcr"))
		if !strings.HasPrefix(k, "pcr") || err != nil || n < 0 || n > 15 || k != "pcr"+strconv.Itoa(n) {
			problems = append(problems, fmt.Sprintf("%s: pcrs key %q is not pcr0 … pcr15", where, k))
		} else if !isLowerHex(m.PCRs[k], MeasurementHexLen) {
			problems = append(problems, fmt.Sprintf("%s: pcrs %s must be %d lowercase hex characters, got %q", where, k, MeasurementHexLen, m.PCRs[k]))
		}
	}
	return problems
}
