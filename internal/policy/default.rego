# trustgate's default appraisal policy (SPEC "Policy and reference values").
# Input: the claims of one verified SEV-SNP report. Data: the reference
# values at data.reference_values.
package trustgate

ref := data.reference_values

allowed_vmpl := object.get(ref, "allowed_vmpl", [0])

# Labels of the approved measurements this report matches (unexpired).
matches contains m.label if {
	some m in object.get(ref, "measurements", [])
	m.value == input.measurement
	not expired(m)
}

expired(m) if time.parse_rfc3339_ns(m.expires) <= time.now_ns()

# Every component of min_tcb is a floor; a component the report lacks
# (fmc before Turin) is not compared.
tcb_ok if {
	every part, floor in object.get(ref, "min_tcb", {}) {
		object.get(input.reported_tcb, part, floor) >= floor
	}
}

# The failed checks, in a fixed order: the first is the one reported.
reasons := array.concat(
	array.concat(
		[r | r := "measurement_mismatch"; count(matches) == 0],
		[r | r := "debug_enabled"; input.policy.debug],
	),
	array.concat(
		[r | r := "vmpl_not_allowed"; not input.vmpl in allowed_vmpl],
		[r | r := "tcb_below_minimum"; not tcb_ok],
	),
)

# Of several matching values, the lowest label decides.
label := min(matches)

decision := {
	"allow": true,
	"reasons": [],
	"label": label,
	"resources": [r | some m in ref.measurements; m.label == label; some r in object.get(m, "resources", [])],
} if count(reasons) == 0

decision := {"allow": false, "reasons": reasons} if count(reasons) > 0
