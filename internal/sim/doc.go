// Package sim is trustgate's TEE simulator (SPEC "Simulator"). For SEV-SNP:
// a guest "device" whose reports are signed by a simulated AMD chain built
// from go-sev-guest's test-only key set (its testing/data package; the
// chain's certificates are made here, so the programs link nothing of Go's
// testing package). For Intel TDX: a simulated TD whose quotes are made by
// a test-only Intel-like PKI of fixed keys (tdx.go, tdxpki.go), with
// collateral the simulator signs itself. A verifier accepts either only
// when it trusts the simulator's roots (`trustgate serve --dev-simulator`);
// every other check applies as for real hardware. It also writes and signs
// the report and quote layouts for the test kit, which builds its fake
// chains with the same code and fresh keys.
package sim
