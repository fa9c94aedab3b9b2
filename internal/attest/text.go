package attest

import "bytes"

// EvidenceText is evidence written as text (hex or base64) made ready to
// decode: whitespace anywhere is dropped, and so is one leading "0x" or "0X"
// (the hex form dcap-qvl and Ethereum tooling write). The result is a new
// slice; b is not changed.
func EvidenceText(b []byte) []byte {
	t := bytes.Join(bytes.Fields(b), nil)
	if len(t) >= 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') {
		t = t[2:]
	}
	return t
}
