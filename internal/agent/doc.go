// Package agent is the guest side of trustgate: challenge → ephemeral key
// → REPORT_DATA (SPEC rule 2) → report from the device → attest → release
// → decrypt and verify the verifier's signature (client.OpenRelease) →
// files, with retries on 503 and network errors.
package agent
