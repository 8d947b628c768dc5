//! The start of day's logic, free of `unsafe` and of any hypervisor access, so every edge case is tested on the host:
//! what each boot mode is told (PV `start_info` layout, PVH `hvm_start_info`, multiboot2, e820), how Xen is found
//! (CPUID) and emulated devices unplugged (HVM), the page tables each mode builds, the PV clock, which ports an
//! event-channel upcall bitmap names, the command line, the logger's filter, ring and syslog encoding, and the ELF
//! notes Xen's loader reads.
//!
//! The platform crate (`boot/`, `sirocco-boot`) reads Xen's and the loader's structures, performs hypercalls and
//! port I/O, and hands plain values to the functions here; in tests the same functions run against fakes of Xen,
//! of the loader and of the I/O ports (see each module's tests). The runtime core's logic is `kernel/logic`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod bootinfo;
pub mod cmdline;
pub mod cpuid;
pub mod crash;
pub mod elfnote;
pub mod events;
pub mod layout;
pub mod logging;
pub mod pagetable;
pub mod time;
pub mod trace;
pub mod unplug;

/// Size of a page (x86_64 base pages, the unit of Xen's frame numbers).
pub const PAGE_SIZE: u64 = 4096;
/// `PAGE_SIZE` as a shift.
pub const PAGE_SHIFT: u32 = 12;

/// A pseudo-physical frame number: the guest's own page numbering (index into the p2m list).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pfn(pub u64);

/// A machine frame number: the hypervisor's page numbering, what page-table entries and grants hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mfn(pub u64);

impl Pfn {
    /// Virtual address of this frame in Sirocco's address space (VIRT_BASE = 0: virtual = pseudo-physical).
    pub fn vaddr(self) -> u64 {
        self.0 << PAGE_SHIFT
    }
    /// The frame containing virtual address `va`.
    pub fn containing(va: u64) -> Pfn {
        Pfn(va >> PAGE_SHIFT)
    }
}

impl Mfn {
    /// Machine address of byte `offset` of this frame.
    pub fn maddr(self, offset: u64) -> u64 {
        (self.0 << PAGE_SHIFT) + offset
    }
}
