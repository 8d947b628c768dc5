//! Finding Xen through CPUID, for PVH and HVM guests.
//!
//! Xen announces itself in the hypervisor range of CPUID leaves (public/arch-x86/cpuid.h): a block of leaves at the
//! first otherwise unused 0x100-aligned base from 0x40000000. When Xen also offers another hypervisor's interface
//! (Viridian, i.e. Hyper-V enlightenments for Windows guests), that interface takes 0x40000000 and Xen's block moves
//! to 0x40000100, so the base must be searched for, not assumed. In the block:
//! - `base + 0`: eax = highest Xen leaf, ebx:ecx:edx = "XenVMMXenVMM";
//! - `base + 1`: eax = version, major in bits 31:16 and minor in 15:0;
//! - `base + 2`: eax = number of hypercall pages, ebx = the MSR whose write installs the hypercall page.
//!
//! Only those three leaves are read here: they are all a guest needs to install its hypercall page. The platform
//! supplies the real `cpuid` instruction; tests supply tables of CPUID answers.
//!
//! A PV guest's CPUID is not intercepted unless it uses Xen's forced-emulation prefix, so this is for guests whose
//! CPUID Xen always sees (PVH, HVM); a PV caller would pass a closure that uses the prefix.

/// First leaf of the hypervisor range and the first base Xen's block may sit at (`XEN_CPUID_FIRST_LEAF`).
pub const XEN_CPUID_FIRST_LEAF: u32 = 0x4000_0000;
/// Distance between the bases a hypervisor block may sit at.
pub const BASE_STRIDE: u32 = 0x100;
/// The last base searched (Linux's `for_each_possible_hypervisor_cpuid_base` stops there too).
pub const LAST_BASE: u32 = 0x4000_ff00;
/// "XenVMMXenVMM" as CPUID returns it in ebx, ecx, edx (`XEN_CPUID_SIGNATURE_EBX`..`_EDX`).
pub const XEN_SIGNATURE: [u32; 3] = [0x566e_6558, 0x6558_4d4d, 0x4d4d_566e];
/// Leaf 1 ecx bit 31: "hypervisor present". Reserved (zero) on real hardware; every hypervisor sets it.
pub const HYPERVISOR_PRESENT: u32 = 1 << 31;

/// What CPUID says about the Xen hypervisor we run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenLeaves {
    /// The base leaf Xen's signature was found at (`0x40000000 + n * 0x100`; n > 0 when another hypervisor's
    /// interface, e.g. Viridian, sits in front).
    pub base: u32,
    /// Highest leaf Xen answers (eax of the base leaf), at least `base + 2`.
    pub max_leaf: u32,
    /// Xen's version as (major, minor), from eax of `base + 1`.
    pub version: (u16, u16),
    /// Number of hypercall pages (eax of `base + 2`; Xen guarantees at least one).
    pub hypercall_pages: u32,
    /// The MSR to write the hypercall page's physical address to (ebx of `base + 2`).
    pub hypercall_msr: u32,
}

/// Searches leaves 0x40000000, 0x40000100, ... 0x4000ff00 for Xen's signature in ebx, ecx, edx and reads Xen's
/// version and hypercall leaves from the first block that has them; `cpuid(leaf)` returns `[eax, ebx, ecx, edx]`.
///
/// Returns `None` when no usable Xen block exists. A block with the signature whose highest leaf is below
/// `base + 2` lacks the hypercall leaf: it is skipped and the search goes on.
///
/// Leaf 1 ecx bit 31 ("hypervisor present") is checked first, and the search is not made when it is clear. On
/// real hardware the hypervisor range is undefined (Intel CPUs answer an out-of-range leaf with the highest basic
/// leaf's data), so its contents mean nothing unless a hypervisor claims them; Xen sets the bit for every PVH and
/// HVM guest, so checking it loses nothing and saves 256 CPUID executions on bare metal.
pub fn find_xen(mut cpuid: impl FnMut(u32) -> [u32; 4]) -> Option<XenLeaves> {
    if cpuid(1)[2] & HYPERVISOR_PRESENT == 0 {
        return None;
    }
    (XEN_CPUID_FIRST_LEAF..=LAST_BASE).step_by(BASE_STRIDE as usize).find_map(|base| {
        let [max_leaf, ebx, ecx, edx] = cpuid(base);
        if [ebx, ecx, edx] != XEN_SIGNATURE || max_leaf < base + 2 {
            return None;
        }
        let version = cpuid(base + 1)[0];
        let [hypercall_pages, hypercall_msr, _, _] = cpuid(base + 2);
        Some(XenLeaves {
            base,
            max_leaf,
            version: ((version >> 16) as u16, version as u16),
            hypercall_pages,
            hypercall_msr,
        })
    })
}

#[cfg(test)]
mod tests;
