// Package sim is trustgate's SEV-SNP simulator (SPEC "Simulator"): a guest
// "device" whose reports are signed by a simulated AMD chain built from
// go-sev-guest's test-only key set. A verifier accepts them only when it
// trusts that ARK key (`trustgate serve --dev-simulator`); every other check
// applies as for real hardware.
package sim
