# trustgate's default appraisal policy (SPEC "Policy and reference values").
#
# Input: the claims of one verified SEV-SNP report (SPEC "Claims").
# Data: the reference values at data.trustgate.reference (SPEC keys:
# measurements[].value/label/expires/resources, min_tcb, allowed_vmpl).
#
# Allow only if the measurement is an approved, unexpired one, DEBUG is
# off, the VMPL is allowed (default [0]) and REPORTED_TCB is at least
# min_tcb in every component. On deny, reasons lists every failed check.
#
# It is written for speed as well: it runs on every attestation, and each
# rule below was measured (BenchmarkEvaluate in policy_test.go).
package trustgate

ref := data.trustgate.reference

allowed_vmpl := object.get(ref, "allowed_vmpl", [0])

# The approved measurements this report matches. An entry whose expires has
# passed (at OPA's evaluation time, the Engine's clock) no longer matches.
matched contains m if {
	some m in ref.measurements
	m.value == input.measurement
	not expired(m)
}

expired(m) if time.parse_rfc3339_ns(m.expires) <= time.now_ns()

# Every component of min_tcb is a floor for reported_tcb; a component the
# report lacks (fmc before Turin) is not compared. Without min_tcb there is
# no floor.
below_min_tcb if {
	some part, floor in ref.min_tcb
	input.reported_tcb[part] < floor
}

# The failed checks. DEBUG counts as on unless the claims say it is off.
failed contains "measurement_mismatch" if count(matched) == 0

failed contains "debug_enabled" if not input.policy.debug == false

failed contains "vmpl_not_allowed" if not input.vmpl in allowed_vmpl

failed contains "tcb_below_minimum" if below_min_tcb

# On deny, the failed checks in this order: the first is the reported reason.
order := ["measurement_mismatch", "debug_enabled", "vmpl_not_allowed", "tcb_below_minimum"]

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
