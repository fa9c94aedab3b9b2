// Package token issues and checks trustgate's attestation results: JWTs in
// the EAR format (draft-ietf-rats-ear) signed with ES256, and the JWKS that
// publishes their keys (SPEC "Token").
//
// A token carries no raw claim: no measurement, chip id, report id or
// REPORT_DATA; only the status, the appraisal policy id, the label of the
// matched reference value and the guest's ephemeral public key.
package token
