# trustgate's default appraisal policy (SPEC "Policy and reference values").
#
# Input: the claims of one verified SEV-SNP report or TDX quote (SPEC
# "Claims", "Intel TDX"), or of an Azure confidential VM (SPEC "Azure
# confidential VMs": those of its SEV-SNP report or TD quote plus tpm and
# azure), or of an AWS Nitro enclave's attestation document (SPEC "AWS
# Nitro Enclaves"); input.tee names the TEE ("sev-snp" when absent).
# Data: the reference values at data.trustgate.reference (SPEC keys:
# measurements[].tee/value/label/expires/resources/rtmr/pcrs, min_tcb,
# allowed_vmpl, tdx_tcb_status).
#
# Allow only if the measurement is an approved, unexpired value of the
# claims' own TEE (a measurement entry's tee defaults to sev-snp; for TDX the
# value is MRTD and every non-empty rtmr pin must equal RTMR0..3), DEBUG is
# off, and — SEV-SNP — the VMPL is allowed (default [0]) and REPORTED_TCB is
# at least min_tcb in every component, or — TDX — Intel's tcb_status is one
# of tdx_tcb_status (default ["UpToDate"]; an OutOfDate status is denied as
# tcb_out_of_date, any other as policy_tcb_status). Azure (azure-snp,
# azure-tdx): an entry of the claims' own tee whose value, unless "", is the
# launch measurement (MEASUREMENT or MRTD of Azure's firmware) and whose
# every pcrs pin equals the quoted PCR; then the checks of SEV-SNP or TDX.
# Nitro: an entry of tee nitro whose value is PCR0 and whose every pcrs pin
# equals the claim it names (pcr1 … pcr15), and not in debug mode (PCR0,
# PCR1 and PCR2 all zero). On deny, reasons lists every failed check.
#
# It is written for speed as well: it runs on every attestation, and each
# rule below was measured (BenchmarkEvaluate in policy_test.go).
package trustgate

ref := data.trustgate.reference

allowed_vmpl := object.get(ref, "allowed_vmpl", [0])

tdx_tcb_status := object.get(ref, "tdx_tcb_status", ["UpToDate"])

# The approved measurements this report matches: of its own TEE (an entry
# without tee is SEV-SNP's), for TDX with every RTMR pin held. An entry
# whose expires has passed (at OPA's evaluation time, the Engine's clock) no
# longer matches.
matched contains m if {
	not input.tee == "tdx"
	not azure
	not nitro
	some m in ref.measurements
	m.value == input.measurement
	not m.tee == "tdx"
	not azure_entry(m)
	not m.tee == "nitro"
	not expired(m)
}

matched contains m if {
	input.tee == "tdx"
	some m in ref.measurements
	m.value == input.mr_td
	m.tee == "tdx"
	not expired(m)
	not rtmr_differs(m)
}

# Azure: an entry of the claims' own tee, its value "" or the launch
# measurement, every PCR pin held.
matched contains m if {
	azure
	some m in ref.measurements
	m.tee == input.tee
	azure_value_holds(m)
	not expired(m)
	not pcr_differs(m)
}

azure_tees := {"azure-snp", "azure-tdx"}

azure if input.tee in azure_tees

azure_entry(m) if m.tee in azure_tees

# TDX rules apply to TDX quotes, bare or through Azure's vTPM.
tdx_like if input.tee in {"tdx", "azure-tdx"}

azure_value_holds(m) if m.value == ""

azure_value_holds(m) if {
	input.tee == "azure-snp"
	m.value == input.measurement
}

azure_value_holds(m) if {
	input.tee == "azure-tdx"
	m.value == input.mr_td
}

# A PCR pin that is not the quoted PCR (a PCR the quote lacks included).
pcr_differs(m) if {
	some k, pin in m.pcrs
	not pin == input.tpm[k]
}

# Nitro: an entry of tee nitro whose value is PCR0, every pcrs pin held.
matched contains m if {
	nitro
	some m in ref.measurements
	m.value == input.pcr0
	m.tee == "nitro"
	not expired(m)
	not nitro_pcr_differs(m)
}

nitro if input.tee == "nitro"

# A pcrs pin ("pcr8": "<hex>") that is not the claim it names (a PCR the
# document lacks never holds).
nitro_pcr_differs(m) if {
	some k, pin in m.pcrs
	not pin == input[k]
}

expired(m) if time.parse_rfc3339_ns(m.expires) <= time.now_ns()

rtmr_keys := ["rtmr0", "rtmr1", "rtmr2", "rtmr3"]

# A pin of RTMRi that is not "" and not the claims' RTMRi (a pin past
# RTMR3 never holds).
rtmr_differs(m) if {
	some i, pin in m.rtmr
	pin != ""
	not pin == input[rtmr_keys[i]]
}

# Every component of min_tcb is a floor for reported_tcb; a component the
# report lacks (fmc before Turin) is not compared. Without min_tcb there is
# no floor.
below_min_tcb if {
	some part, floor in ref.min_tcb
	input.reported_tcb[part] < floor
}

tcb_status_accepted if input.tcb_status in tdx_tcb_status

tcb_status_out_of_date if startswith(input.tcb_status, "OutOfDate")

# The failed checks. DEBUG counts as on unless the claims say it is off.
failed contains "measurement_mismatch" if count(matched) == 0

failed contains "debug_enabled" if {
	not tdx_like
	not nitro
	not input.policy.debug == false
}

failed contains "vmpl_not_allowed" if {
	not tdx_like
	not nitro
	not input.vmpl in allowed_vmpl
}

failed contains "tcb_below_minimum" if {
	not tdx_like
	not nitro
	below_min_tcb
}

failed contains "debug_enabled" if {
	tdx_like
	not input.td_attributes.debug == false
}

# A Nitro enclave in debug mode has PCR0, PCR1 and PCR2 all zero.
nitro_zero_pcr := "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

failed contains "debug_enabled" if {
	nitro
	input.pcr0 == nitro_zero_pcr
	input.pcr1 == nitro_zero_pcr
	input.pcr2 == nitro_zero_pcr
}

failed contains "tcb_out_of_date" if {
	tdx_like
	not tcb_status_accepted
	tcb_status_out_of_date
}

failed contains "policy_tcb_status" if {
	tdx_like
	not tcb_status_accepted
	not tcb_status_out_of_date
}

# The policy's own reason codes (no other policy_* code leaves the engine).
reason_codes := {"policy_tcb_status"}

# On deny, the failed checks in this order: the first is the reported reason.
order := ["measurement_mismatch", "debug_enabled", "vmpl_not_allowed", "tcb_below_minimum", "tcb_out_of_date", "policy_tcb_status"]

# Of several matching entries (the same value under two labels), the one
# with the lowest label decides.
chosen := [m | some m in matched; m.label == min({x.label | some x in matched})][0]

decision := {
	"allow": true,
	"reasons": [],
	"label": chosen.label,
	"resources": object.get(chosen, "resources", []),
} if count(failed) == 0

decision := {"allow": false, "reasons": [r | some r in order; r in failed]} if count(failed) > 0
