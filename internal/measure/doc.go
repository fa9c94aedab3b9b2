// Package measure computes the expected SEV-SNP launch measurement (the
// MEASUREMENT field of the attestation report) of a guest launched from an
// OVMF image, optionally with a directly booted kernel or a Coconut SVSM.
//
// The digest is the chain the AMD secure processor builds while the
// hypervisor adds pages with SNP_LAUNCH_UPDATE (SEV-SNP Firmware ABI 56860,
// section "SNP_LAUNCH_UPDATE", table "PAGE_INFO"): it starts as 48 zero
// bytes and, for every page, becomes SHA-384 of a 112-byte PAGE_INFO that
// holds the previous digest, the page contents digest, the page type and
// the guest physical address. The pages are, in order:
//
//  1. the OVMF image, mapped to end at 4 GiB (NORMAL pages);
//  2. the regions listed in OVMF's SEV metadata (ZERO, SECRETS, CPUID pages,
//     and the kernel hashes page when booting a kernel directly);
//  3. one VMSA page per vCPU (the initial register state, AMD64 APM vol. 2,
//     table B-4 "VMSA layout, state save area").
//
// With an SVSM (ModeSVSM) the SVSM image follows OVMF in step 1, its own
// metadata replaces OVMF's in step 2 and every vCPU starts in the SVSM.
// The VMM (QEMU, EC2, GCE) changes the VMSA contents and how some metadata
// sections are added; see VMM.
//
// The result is bit-for-bit what sev-snp-measure computes for the same
// inputs; the package is an independent implementation of the same specs.
package measure
