# trustgate's default appraisal policy (SPEC "Policy and reference values").
#
# Input: the claims of one verified SEV-SNP report (SPEC "Claims").
# Data: the reference values at data.trustgate.reference (SPEC keys:
# measurements[].value/label/expires/resources, min_tcb, allowed_vmpl).
#
# Allow only if the measurement is an approved, unexpired one, DEBUG is
# off, the VMPL is allowed (default [0]) and REPORTED_TCB is at least
# min_tcb in every component. On deny, reasons lists every failed check.
package trustgate

ref := data.trustgate.reference

allowed_vmpl := object.get(ref, "allowed_vmpl", [0])

# The approved measurements this report matches. An entry whose expires has
# passed (at OPA's evaluation time, the Engine's clock) no longer matches.
matched contains m if {
	some m in object.get(ref, "measurements", [])
	m.value == input.measurement
	not expired(m)
}

expired(m) if time.parse_rfc3339_ns(m.expires) <= time.now_ns()

# Every component of min_tcb is a floor for reported_tcb; a component the
# report lacks (fmc before Turin) is not compared. Without min_tcb there is
# no floor.
tcb_ok if {
	every part, floor in object.get(ref, "min_tcb", {}) {
		object.get(input.reported_tcb, part, floor) >= floor
	}
}

# The failed checks, in a fixed order: the first is the reported reason.
# DEBUG counts as on unless the claims say it is off.
reasons := array.concat(
	array.concat(
		[r | r := "measurement_mismatch"; count(matched) == 0],
		[r | r := "debug_enabled"; not input.policy.debug == false],
	),
	array.concat(
		[r | r := "vmpl_not_allowed"; not input.vmpl in allowed_vmpl],
		[r | r := "tcb_below_minimum"; not tcb_ok],
	),
)

# Of several matching entries (the same value under two labels), the one
# with the lowest label decides.
chosen := [m | some m in matched; m.label == min({x.label | some x in matched})][0]

decision := {
	"allow": true,
	"reasons": [],
	"label": chosen.label,
	"resources": object.get(chosen, "resources", []),
} if count(reasons) == 0

decision := {"allow": false, "reasons": reasons} if count(reasons) > 0
