// Package sim is trustgate's SEV-SNP simulator (SPEC "Simulator"): a guest
// "device" whose reports are signed by a simulated AMD chain built from
// go-sev-guest's test-only key set (its testing/data package; the chain's
// certificates are made here, so the programs link nothing of Go's testing
// package). A verifier accepts them only when it trusts that ARK key
// (`trustgate serve --dev-simulator`); every other check applies as for
// real hardware. It also writes and signs the report layout for the test
// kit, which builds its fake chains with go-sev-guest's fake AMD signer.
package sim
