package snp

import (
	"encoding/binary"
	"testing"
)

// parseCertTable refuses a table over MaxCertTableSize and an entry that
// is empty or reaches past the table's end, in 64-bit arithmetic.
func TestParseCertTableBounds(t *testing.T) {
	t.Parallel()
	entry := func(off, length uint32) []byte {
		b := make([]byte, 24*2+64) // one header, the all-zero terminator, room
		copy(b[0:16], guidVCEK[:])
		binary.LittleEndian.PutUint32(b[16:20], off)
		binary.LittleEndian.PutUint32(b[20:24], length)
		return b
	}
	if _, err := parseCertTable(entry(48, 64)); err != nil {
		t.Fatalf("an entry inside the table: %v", err)
	}
	for name, b := range map[string][]byte{
		"over the size limit":       append(entry(48, 64), make([]byte, MaxCertTableSize)...),
		"past the end":              entry(48, 65),
		"wrapping around in 32 bit": entry(48, 0xFFFFFFF0),
		"empty entry":               entry(48, 0),
	} {
		if _, err := parseCertTable(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
