// Package attest holds trustgate's domain vocabulary, shared by every TEE
// verifier, the policy engine, the HTTP API and the CLI: the stable reason
// codes of a rejection (Reason), the one typed error that carries them
// (*Error), and the flat claims a verified report yields (Claims).
//
// It imports the standard library only, so that every other package can
// depend on it without pulling in a TEE library.
package attest
