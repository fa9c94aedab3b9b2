package measure

import (
	"encoding/binary"
	"errors"
	"testing"
)

// EFI byte layout of a GUID string, for building synthetic images.
func testGUID(s string) []byte { g := guidBytes(s); return g[:] }

// buildImage returns a synthetic one-page firmware image whose footer GUID
// table holds entries (GUID -> payload) and, if metadata is not nil, an
// "ASEV" SEV metadata block listing sections.
func buildImage(t *testing.T, entries map[string][]byte, metadata []Section, magic string) []byte {
	t.Helper()
	img := make([]byte, pageSize)
	var table []byte
	add := func(guid string, payload []byte) {
		e := append([]byte{}, payload...)
		e = binary.LittleEndian.AppendUint16(e, uint16(len(payload)+18))
		table = append(table, append(e, testGUID(guid)...)...)
	}
	if metadata != nil {
		md := []byte(magic)
		md = binary.LittleEndian.AppendUint32(md, uint32(16+12*len(metadata)))
		md = binary.LittleEndian.AppendUint32(md, 1)
		md = binary.LittleEndian.AppendUint32(md, uint32(len(metadata)))
		for _, s := range metadata {
			md = binary.LittleEndian.AppendUint32(md, s.GPA)
			md = binary.LittleEndian.AppendUint32(md, s.Size)
			md = binary.LittleEndian.AppendUint32(md, uint32(s.Type))
		}
		copy(img[0x100:], md)
		add(guidSEVMetadata, binary.LittleEndian.AppendUint32(nil, uint32(pageSize-0x100)))
	}
	for g, p := range entries {
		add(g, p)
	}
	footerLen := len(table) + 18
	table = binary.LittleEndian.AppendUint16(table, uint16(footerLen))
	table = append(table, testGUID(guidTableFooter)...)
	copy(img[pageSize-32-len(table):], table)
	return img
}

func TestLaunchDigestRejectsBadInput(t *testing.T) {
	t.Parallel()
	amdSev := readFixture(t, "ovmf_AmdSev_suffix.bin")
	ovmfX64 := readFixture(t, "ovmf_OvmfX64_suffix.bin")
	epyc, err := VCPUTypeSignature("EPYC-v4")
	if err != nil {
		t.Fatal(err)
	}
	good := []Section{{GPA: 0x800000, Size: 0x1000, Type: SectionSNPSecMem}}
	tests := []struct {
		name string
		opts Options
		want Kind
	}{
		{"zero vCPUs", Options{VCPUSignature: epyc, OVMF: amdSev}, KindInvalidOptions},
		{"negative vCPUs", Options{VCPUs: -1, VCPUSignature: epyc, OVMF: amdSev}, KindInvalidOptions},
		{"QEMU without vCPU signature", Options{VCPUs: 1, OVMF: amdSev}, KindInvalidOptions},
		{"features without SNPActive", Options{VCPUs: 1, VCPUSignature: epyc, GuestFeatures: 0x20, OVMF: amdSev}, KindInvalidOptions},
		{"unknown VMM", Options{VCPUs: 1, VCPUSignature: epyc, VMM: VMM(9), OVMF: amdSev}, KindInvalidOptions},
		{"empty OVMF", Options{VCPUs: 1, VCPUSignature: epyc}, KindFirmware},
		{"OVMF not page sized", Options{VCPUs: 1, VCPUSignature: epyc, OVMF: make([]byte, 100)}, KindFirmware},
		{"no footer table", Options{VCPUs: 1, VCPUSignature: epyc, OVMF: make([]byte, pageSize)}, KindFirmware},
		{"footer table without SEV metadata", Options{VCPUs: 1, VCPUSignature: epyc,
			OVMF: buildImage(t, map[string][]byte{guidSEVESReset: {0, 0, 0, 0}}, nil, "")}, KindFirmware},
		{"metadata with bad signature", Options{VCPUs: 1, VCPUSignature: epyc,
			OVMF: buildImage(t, nil, good, "XSEV")}, KindFirmware},
		{"metadata with unknown section type", Options{VCPUs: 1, VCPUSignature: epyc,
			OVMF: buildImage(t, nil, []Section{{GPA: 0x800000, Size: 0x1000, Type: 9}}, "ASEV")}, KindFirmware},
		{"metadata section not page aligned", Options{VCPUs: 1, VCPUSignature: epyc,
			OVMF: buildImage(t, nil, []Section{{GPA: 0x800010, Size: 0x1000, Type: SectionSNPSecMem}}, "ASEV")}, KindFirmware},
		{"several vCPUs without AP reset block", Options{VCPUs: 2, VCPUSignature: epyc,
			OVMF: buildImage(t, nil, good, "ASEV")}, KindFirmware},
		{"kernel without hashes table", Options{VCPUs: 1, VCPUSignature: epyc, OVMF: ovmfX64,
			Boot: &DirectBoot{Kernel: []byte("kernel")}}, KindNoHashesTable},
		{"kernel with table but no hashes section", Options{VCPUs: 1, VCPUSignature: epyc,
			OVMF: buildImage(t, map[string][]byte{guidHashTableRV: {0, 0x0c, 0x81, 0, 0, 4, 0, 0}}, good, "ASEV"),
			Boot: &DirectBoot{Kernel: []byte("kernel")}}, KindNoHashesTable},
		{"SVSM mode under EC2", Options{Mode: ModeSVSM, VCPUs: 1, VMM: VMMEC2, OVMF: amdSev, SVSM: amdSev}, KindInvalidOptions},
		{"SVSM mode without SVSM", Options{Mode: ModeSVSM, VCPUs: 1, VCPUSignature: epyc, OVMF: amdSev}, KindInvalidOptions},
		{"SVSM mode with kernel", Options{Mode: ModeSVSM, VCPUs: 1, VCPUSignature: epyc, OVMF: amdSev, SVSM: amdSev,
			Boot: &DirectBoot{}}, KindInvalidOptions},
		{"SVSM image without SVSM info", Options{Mode: ModeSVSM, VCPUs: 1, VCPUSignature: epyc, OVMF: amdSev, SVSM: amdSev}, KindSVSM},
		{"SNP mode with SVSM image", Options{VCPUs: 1, VCPUSignature: epyc, OVMF: amdSev, SVSM: amdSev}, KindInvalidOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := LaunchDigest(tc.opts)
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("LaunchDigest = %s, %v; want an *Error of kind %v", d, err, tc.want)
			}
			if me.Kind != tc.want {
				t.Errorf("kind = %v (%v), want %v", me.Kind, me, tc.want)
			}
			if d != (Digest{}) {
				t.Errorf("a digest came back with the error: %s", d)
			}
		})
	}
}

// TestDirectBootChangesDigest checks that each input of the hashes table
// reaches the digest.
func TestDirectBootChangesDigest(t *testing.T) {
	t.Parallel()
	base := Options{VCPUs: 1, VCPUSignature: 0x800f12, OVMF: readFixture(t, "ovmf_AmdSev_suffix.bin"),
		Boot: &DirectBoot{Kernel: []byte("k"), Initrd: []byte("i"), Cmdline: "c"}}
	ref, err := LaunchDigest(base)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(o *Options)
	}{
		{"kernel", func(o *Options) { o.Boot = &DirectBoot{Kernel: []byte("K"), Initrd: []byte("i"), Cmdline: "c"} }},
		{"initrd", func(o *Options) { o.Boot = &DirectBoot{Kernel: []byte("k"), Initrd: []byte("I"), Cmdline: "c"} }},
		{"cmdline", func(o *Options) { o.Boot = &DirectBoot{Kernel: []byte("k"), Initrd: []byte("i"), Cmdline: "C"} }},
		{"no kernel", func(o *Options) { o.Boot = nil }},
		{"vCPU count", func(o *Options) { o.VCPUs = 2 }},
		{"vCPU type", func(o *Options) { o.VCPUSignature = CPUSignature(25, 1, 1) }},
		{"guest features", func(o *Options) { o.GuestFeatures = 0x21 }},
		{"VMM", func(o *Options) { o.VMM = VMMGCE }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := base
			tc.change(&o)
			got, err := LaunchDigest(o)
			if err != nil {
				t.Fatal(err)
			}
			if got == ref {
				t.Errorf("changing the %s left the digest at %s", tc.name, got)
			}
		})
	}
}

func TestOVMFHash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, want string
	}{
		{"ovmf_AmdSev_suffix.bin", "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			got, err := OVMFHash(readFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("OVMFHash = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestVCPUTypeSignature pins the CPUID Fn0000_0001_EAX value of each QEMU
// EPYC generation.
func TestVCPUTypeSignature(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want uint32
		ok   bool
	}{
		{"EPYC", 0x00800f12, true},
		{"EPYC-v4", 0x00800f12, true},
		{"EPYC-IBPB", 0x00800f12, true},
		{"EPYC-Rome", 0x00830f10, true},
		{"EPYC-Rome-v4", 0x00830f10, true},
		{"EPYC-Milan", 0x00a00f11, true},
		{"EPYC-Milan-v2", 0x00a00f11, true},
		{"EPYC-Genoa", 0x00a10f10, true},
		{"EPYC-Genoa-v1", 0x00a10f10, true},
		{"EPYC-Turin", 0x00b00f00, true},
		{"EPYC-Turin-v1", 0x00b00f00, true},
		{"epyc-milan", 0, false},
		{"EPYC-Bergamo", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := VCPUTypeSignature(tc.name)
			if (err == nil) != tc.ok {
				t.Fatalf("VCPUTypeSignature(%q) error = %v, want ok=%v", tc.name, err, tc.ok)
			}
			if got != tc.want {
				t.Errorf("VCPUTypeSignature(%q) = %#x, want %#x", tc.name, got, tc.want)
			}
		})
	}
}

func TestCPUSignature(t *testing.T) {
	t.Parallel()
	tests := []struct {
		family, model, stepping, want uint32
	}{
		{14, 1, 2, 0x0e12},
		{23, 1, 2, 0x800f12},
		{25, 17, 1, 0xa10f11},
		{26, 2, 1, 0xb00f21}, // Turin silicon (report CPUID 0xb00f21)
	}
	for _, tc := range tests {
		if got := CPUSignature(tc.family, tc.model, tc.stepping); got != tc.want {
			t.Errorf("CPUSignature(%d, %d, %d) = %#x, want %#x", tc.family, tc.model, tc.stepping, got, tc.want)
		}
	}
}

func BenchmarkLaunchDigestSVSM(b *testing.B) {
	var o Options
	for _, v := range loadVectors(b) {
		if v.Mode == "SEV_SNP_SVSM" {
			o, _ = vectorOptions(b, v)
			break
		}
	}
	b.SetBytes(int64(len(o.OVMF) + len(o.SVSM)))
	for b.Loop() {
		if _, err := LaunchDigest(o); err != nil {
			b.Fatal(err)
		}
	}
}
