package measure

import (
	"crypto/sha256"
	"encoding/binary"
)

// GUIDs of the SEV hashes table that QEMU fills and OVMF checks before it
// boots a kernel directly (OvmfPkg "SEV_HASH_TABLE", QEMU target/i386/sev.c).
const (
	guidHashTable     = "9438d606-4f22-4cc9-b479-a793d411fd21"
	guidHashesCmdline = "97d02dd8-bd20-4c94-aa78-e7714d36ab2a"
	guidHashesInitrd  = "44baf731-3a2f-4bd7-9af1-41e29169781d"
	guidHashesKernel  = "4de79437-abd2-427f-b835-d5b172d2045b"
)

// hashTableEntryLen is one entry: GUID, u16 length, SHA-256 digest.
const hashTableEntryLen = 16 + 2 + sha256.Size

// hashTableLen is the table: GUID, u16 length, then the cmdline, initrd
// and kernel entries (168 bytes); it is stored padded to 16 bytes.
const (
	hashTableLen       = 16 + 2 + 3*hashTableEntryLen
	hashTablePaddedLen = (hashTableLen + 15) &^ 15
)

// DirectBoot is a kernel booted directly by the VMM (QEMU -kernel/-initrd/
// -append), measured through the SEV hashes table.
type DirectBoot struct {
	Kernel  []byte // kernel image as given to the VMM (e.g. bzImage)
	Initrd  []byte // initrd; nil or empty: none (the hash of empty input)
	Cmdline string // kernel command line; the VMM hashes it with a NUL terminator
}

// hashesPage builds the 4 KiB page that holds the SEV hashes table at
// offset (the table GPA modulo the page size); the rest is zero.
func (b *DirectBoot) hashesPage(offset uint64) (*[pageSize]byte, error) {
	if offset+hashTablePaddedLen > pageSize {
		return nil, errorf(KindNoHashesTable, "SEV hashes table at page offset %#x crosses a page boundary", offset)
	}
	var page [pageSize]byte
	t := page[offset:]
	g := guidBytes(guidHashTable)
	copy(t, g[:])
	binary.LittleEndian.PutUint16(t[16:], hashTableLen)
	entry := func(at int, guid string, h [sha256.Size]byte) {
		g := guidBytes(guid)
		copy(t[at:], g[:])
		binary.LittleEndian.PutUint16(t[at+16:], hashTableEntryLen)
		copy(t[at+18:], h[:])
	}
	cmdline := append([]byte(b.Cmdline), 0)
	entry(18, guidHashesCmdline, sha256.Sum256(cmdline))
	entry(18+hashTableEntryLen, guidHashesInitrd, sha256.Sum256(b.Initrd))
	entry(18+2*hashTableEntryLen, guidHashesKernel, sha256.Sum256(b.Kernel))
	return &page, nil
}
