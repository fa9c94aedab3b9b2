# Unit tests of default.rego; `go test ./internal/policy/` runs them.
package trustgate_test

import data.trustgate

approved := "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"

ref := {"measurements": [{"value": approved, "label": "build-1", "resources": ["db-password"]}]}

claims := {
	"measurement": approved,
	"vmpl": 0,
	"policy": {"debug": false},
	"reported_tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115},
}

test_allow_approved if {
	d := trustgate.decision with input as claims with data.trustgate.reference as ref
	d.allow
	d.label == "build-1"
	d.resources == ["db-password"]
}

test_deny_without_reference_values if {
	d := trustgate.decision with input as claims with data.trustgate.reference as {}
	not d.allow
	d.reasons == ["measurement_mismatch"]
}

test_deny_unknown_measurement if {
	d := trustgate.decision with input as object.union(claims, {"measurement": "00"}) with data.trustgate.reference as ref
	d.reasons == ["measurement_mismatch"]
}

test_deny_expired if {
	old := {"measurements": [{"value": approved, "label": "old", "expires": "2020-01-01T00:00:00Z"}]}
	d := trustgate.decision with input as claims with data.trustgate.reference as old
	d.reasons == ["measurement_mismatch"]
}

test_allow_not_yet_expired if {
	soon := {"measurements": [{"value": approved, "label": "soon", "expires": "2999-01-01T00:00:00Z"}]}
	d := trustgate.decision with input as claims with data.trustgate.reference as soon
	d.allow
}

test_deny_debug if {
	d := trustgate.decision with input as object.union(claims, {"policy": {"debug": true}}) with data.trustgate.reference as ref
	d.reasons == ["debug_enabled"]
}

test_deny_vmpl if {
	d := trustgate.decision with input as object.union(claims, {"vmpl": 1}) with data.trustgate.reference as ref
	d.reasons == ["vmpl_not_allowed"]
}

test_allow_vmpl_when_listed if {
	d := trustgate.decision with input as object.union(claims, {"vmpl": 1}) with data.trustgate.reference as object.union(ref, {"allowed_vmpl": [0, 1]})
	d.allow
}

test_deny_tcb_below_minimum if {
	strict := object.union(ref, {"min_tcb": {"bootloader": 0, "tee": 0, "snp": 9, "microcode": 0}})
	d := trustgate.decision with input as claims with data.trustgate.reference as strict
	d.reasons == ["tcb_below_minimum"]
}

test_deny_turin_fmc_below_minimum if {
	turin := object.union(claims, {"reported_tcb": {"fmc": 1, "bootloader": 3, "tee": 2, "snp": 5, "microcode": 97}})
	strict := object.union(ref, {"min_tcb": {"fmc": 2}})
	d := trustgate.decision with input as turin with data.trustgate.reference as strict
	d.reasons == ["tcb_below_minimum"]
}

test_every_failure_listed_in_order if {
	bad := object.union(claims, {"measurement": "00", "vmpl": 2, "policy": {"debug": true}})
	d := trustgate.decision with input as bad with data.trustgate.reference as ref
	d.reasons == ["measurement_mismatch", "debug_enabled", "vmpl_not_allowed"]
}

test_staged_rollout_two_builds if {
	next := "4242424242424242424242424242424242424242424242424242424242424242424242424242424242424242424242424242"
	both := {"measurements": [ref.measurements[0], {"value": next, "label": "build-2"}]}
	d1 := trustgate.decision with input as claims with data.trustgate.reference as both
	d2 := trustgate.decision with input as object.union(claims, {"measurement": next}) with data.trustgate.reference as both
	d1.label == "build-1"
	d2.label == "build-2"
}

test_deny_without_debug_claim if {
	d := trustgate.decision with input as object.remove(claims, ["policy"]) with data.trustgate.reference as ref
	d.reasons == ["debug_enabled"]
}

test_fmc_floor_ignored_before_turin if {
	strict := object.union(ref, {"min_tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115, "fmc": 9}})
	d := trustgate.decision with input as claims with data.trustgate.reference as strict
	d.allow
}

test_deny_each_tcb_component if {
	every part in ["bootloader", "tee", "snp", "microcode"] {
		floor := object.union(ref, {"min_tcb": {part: claims.reported_tcb[part] + 1}})
		d := trustgate.decision with input as claims with data.trustgate.reference as floor
		d.reasons == ["tcb_below_minimum"]
	}
}

test_expired_and_live_entries_for_one_value if {
	two := {"measurements": [
		{"value": approved, "label": "a-old", "expires": "2020-01-01T00:00:00Z", "resources": ["old"]},
		{"value": approved, "label": "b-new", "resources": ["new"]},
	]}
	d := trustgate.decision with input as claims with data.trustgate.reference as two
	d.label == "b-new"
	d.resources == ["new"]
}

test_expiry_follows_eval_time if {
	soon := {"measurements": [{"value": approved, "label": "soon", "expires": "2030-01-01T00:00:00Z"}]}
	d := trustgate.decision with input as claims with data.trustgate.reference as soon with time.now_ns as time.parse_rfc3339_ns("2031-01-01T00:00:00Z")
	d.reasons == ["measurement_mismatch"]
}

# TDX (SPEC "Intel TDX").

mrtd := "6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d"

rtmr1 := "1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111aa"

tdx_ref := {"measurements": [{"tee": "tdx", "value": mrtd, "label": "td-1", "resources": ["key"]}]}

tdx_claims := {
	"tee": "tdx",
	"mr_td": mrtd,
	"rtmr0": "00",
	"rtmr1": rtmr1,
	"td_attributes": {"debug": false},
	"tcb_status": "UpToDate",
}

test_tdx_allow if {
	d := trustgate.decision with input as tdx_claims with data.trustgate.reference as tdx_ref
	d.allow
	d.label == "td-1"
	d.resources == ["key"]
}

test_tdx_value_does_not_approve_snp if {
	d := trustgate.decision with input as object.union(claims, {"measurement": mrtd}) with data.trustgate.reference as tdx_ref
	d.reasons == ["measurement_mismatch"]
}

test_snp_value_does_not_approve_tdx if {
	snp_ref := {"measurements": [{"value": mrtd, "label": "snp"}, {"tee": "sev-snp", "value": mrtd, "label": "snp2"}]}
	d := trustgate.decision with input as tdx_claims with data.trustgate.reference as snp_ref
	d.reasons == ["measurement_mismatch"]
}

test_tdx_rtmr_pins if {
	pinned := {"measurements": [{"tee": "tdx", "value": mrtd, "label": "td-1", "rtmr": ["", rtmr1]}]}
	d := trustgate.decision with input as tdx_claims with data.trustgate.reference as pinned
	d.allow
	other := {"measurements": [{"tee": "tdx", "value": mrtd, "label": "td-1", "rtmr": ["", "", rtmr1]}]}
	e := trustgate.decision with input as tdx_claims with data.trustgate.reference as other
	e.reasons == ["measurement_mismatch"]
}

test_tdx_debug if {
	d := trustgate.decision with input as object.union(tdx_claims, {"td_attributes": {"debug": true}}) with data.trustgate.reference as tdx_ref
	d.reasons == ["debug_enabled"]
}

test_tdx_out_of_date if {
	d := trustgate.decision with input as object.union(tdx_claims, {"tcb_status": "OutOfDate"}) with data.trustgate.reference as tdx_ref
	d.reasons == ["tcb_out_of_date"]
}

test_tdx_sw_hardening_needs_consent if {
	c := object.union(tdx_claims, {"tcb_status": "SWHardeningNeeded"})
	d := trustgate.decision with input as c with data.trustgate.reference as tdx_ref
	d.reasons == ["policy_tcb_status"]
	consent := object.union(tdx_ref, {"tdx_tcb_status": ["UpToDate", "SWHardeningNeeded"]})
	e := trustgate.decision with input as c with data.trustgate.reference as consent
	e.allow
}

test_tdx_without_tcb_status if {
	d := trustgate.decision with input as object.remove(tdx_claims, ["tcb_status"]) with data.trustgate.reference as tdx_ref
	d.reasons == ["policy_tcb_status"]
}

test_tdx_needs_no_vmpl_or_snp_tcb if {
	floors := object.union(tdx_ref, {"min_tcb": {"snp": 99}, "allowed_vmpl": [3]})
	d := trustgate.decision with input as tdx_claims with data.trustgate.reference as floors
	d.allow
}

# Azure confidential VMs (SPEC "Azure confidential VMs").

az_pcr4 := "0404040404040404040404040404040404040404040404040404040404040404"

az_claims := object.union(claims, {"tee": "azure-snp", "tpm": {"pcr04": az_pcr4}})

az_ref := {"measurements": [{"tee": "azure-snp", "value": "", "label": "az", "pcrs": {"pcr04": az_pcr4}}]}

test_azure_allowed_by_pcr_pins if {
	d := trustgate.decision with input as az_claims with data.trustgate.reference as az_ref
	d.allow
	d.label == "az"
}

test_azure_denied_on_another_pcr if {
	other := object.union(az_claims, {"tpm": {"pcr04": approved}})
	d := trustgate.decision with input as other with data.trustgate.reference as az_ref
	d.reasons == ["measurement_mismatch"]
}

test_azure_denied_without_the_pinned_pcr if {
	d := trustgate.decision with input as object.remove(az_claims, ["tpm"]) with data.trustgate.reference as az_ref
	d.reasons == ["measurement_mismatch"]
}

test_azure_not_allowed_by_a_plain_snp_entry if {
	d := trustgate.decision with input as az_claims with data.trustgate.reference as ref
	d.reasons == ["measurement_mismatch"]
}

test_plain_snp_not_allowed_by_an_azure_entry if {
	d := trustgate.decision with input as object.union(claims, {"tee": "sev-snp"}) with data.trustgate.reference as az_ref
	d.reasons == ["measurement_mismatch"]
}

test_azure_value_pins_the_firmware if {
	pinned := {"measurements": [{"tee": "azure-snp", "value": "00", "label": "az", "pcrs": {"pcr04": az_pcr4}}]}
	d := trustgate.decision with input as az_claims with data.trustgate.reference as pinned
	d.reasons == ["measurement_mismatch"]
}

test_azure_tdx_has_the_tdx_checks if {
	td := {"tee": "azure-tdx", "mr_td": approved, "td_attributes": {"debug": true}, "tcb_status": "OutOfDate", "tpm": {"pcr04": az_pcr4}}
	r := {"measurements": [{"tee": "azure-tdx", "value": approved, "label": "aztd", "pcrs": {"pcr04": az_pcr4}}]}
	d := trustgate.decision with input as td with data.trustgate.reference as r
	d.reasons == ["debug_enabled", "tcb_out_of_date"]
}

# AWS Nitro Enclaves (SPEC "AWS Nitro Enclaves").

pcr0 := "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0"

pcr8 := "e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8"

zero_pcr := "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

nitro_ref := {"measurements": [{"tee": "nitro", "value": pcr0, "label": "enc-1", "resources": ["k"]}]}

nitro_claims := {"tee": "nitro", "pcr0": pcr0, "pcr1": "e1", "pcr2": "e2", "pcr8": pcr8, "digest": "SHA384"}

test_nitro_allow if {
	d := trustgate.decision with input as nitro_claims with data.trustgate.reference as nitro_ref
	d.allow
	d.label == "enc-1"
	d.resources == ["k"]
}

test_nitro_value_does_not_approve_snp_or_tdx if {
	d := trustgate.decision with input as object.union(claims, {"measurement": pcr0}) with data.trustgate.reference as nitro_ref
	d.reasons == ["measurement_mismatch"]
	e := trustgate.decision with input as object.union(tdx_claims, {"mr_td": pcr0}) with data.trustgate.reference as nitro_ref
	e.reasons == ["measurement_mismatch"]
}

test_snp_value_does_not_approve_nitro if {
	snp_ref := {"measurements": [{"value": pcr0, "label": "snp"}]}
	d := trustgate.decision with input as nitro_claims with data.trustgate.reference as snp_ref
	d.reasons == ["measurement_mismatch"]
}

test_nitro_pcr_pins if {
	pinned := {"measurements": [{"tee": "nitro", "value": pcr0, "label": "enc-1", "pcrs": {"pcr8": pcr8}}]}
	d := trustgate.decision with input as nitro_claims with data.trustgate.reference as pinned
	d.allow
	e := trustgate.decision with input as object.union(nitro_claims, {"pcr8": zero_pcr}) with data.trustgate.reference as pinned
	e.reasons == ["measurement_mismatch"]
	f := trustgate.decision with input as object.remove(nitro_claims, ["pcr8"]) with data.trustgate.reference as pinned
	f.reasons == ["measurement_mismatch"]
}

test_nitro_debug if {
	dbg := object.union(nitro_claims, {"pcr0": zero_pcr, "pcr1": zero_pcr, "pcr2": zero_pcr})
	ref_zero := {"measurements": [{"tee": "nitro", "value": zero_pcr, "label": "dbg"}]}
	d := trustgate.decision with input as dbg with data.trustgate.reference as ref_zero
	d.reasons == ["debug_enabled"]
}

test_nitro_needs_no_vmpl_tcb_or_tdx_status if {
	floors := object.union(nitro_ref, {"min_tcb": {"snp": 99}, "allowed_vmpl": [3], "tdx_tcb_status": ["OutOfDate"]})
	d := trustgate.decision with input as nitro_claims with data.trustgate.reference as floors
	d.allow
}
