# trustgate's default appraisal policy (SPEC "Policy and reference values").
# Input: the claims of one verified SEV-SNP report. Data: the reference
# values at data.reference_values.
package trustgate

ref := data.reference_values

measurements := object.get(ref, "measurements", [])

allowed_vmpl := object.get(ref, "allowed_vmpl", [0])

min_tcb := object.get(ref, "min_tcb", {})

# An approved measurement matches unless it has expired.
matches contains m if {
	some m in measurements
	m.value == input.measurement
	not expired(m)
}

expired(m) if time.parse_rfc3339_ns(m.expires) <= time.now_ns()

failed contains "measurement_mismatch" if count(matches) == 0

failed contains "debug_enabled" if input.policy.debug

failed contains "vmpl_not_allowed" if not input.vmpl in allowed_vmpl

failed contains "tcb_below_minimum" if {
	some part in ["bootloader", "tee", "snp", "microcode", "fmc"]
	floor := object.get(min_tcb, part, 0)
	have := object.get(input.reported_tcb, part, null)
	have != null
	have < floor
}

# Reasons in a fixed order: the first is the one reported.
reasons := [r |
	some r in ["measurement_mismatch", "debug_enabled", "vmpl_not_allowed", "tcb_below_minimum"]
	r in failed
]

# Of several matching values, the one with the lowest label decides.
chosen := [m | some m in matches; m.label == min({l | some x in matches; l := x.label})][0]

decision := {
	"allow": true,
	"reasons": [],
	"label": chosen.label,
	"resources": object.get(chosen, "resources", []),
} if count(reasons) == 0

decision := {"allow": false, "reasons": reasons} if count(reasons) > 0
