//! The start-of-day memory layout Xen hands a PV guest, checked, and what of it is free.
//!
//! xen.h ("Start-of-day memory layout"): kernel image, optional initrd, p2m list, start_info, xenstore and console
//! pages, bootstrap page tables, bootstrap stack, padding; mapped 1:1 onto the first pseudo-physical frames. With
//! VIRT_BASE = 0 a virtual address is its pseudo-physical address. Everything after the bootstrap page tables is
//! free once we run on our own stack (the bootstrap stack is abandoned at entry).

use crate::{Pfn, PAGE_SIZE};
use core::fmt;

/// The facts of `start_info` and the image this module needs, as plain numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartOfDay {
    /// `start_info.nr_pages`.
    pub nr_pages: u64,
    /// `start_info.pt_base`: virtual address of the bootstrap L4.
    pub pt_base: u64,
    /// `start_info.nr_pt_frames`.
    pub nr_pt_frames: u64,
    /// `start_info.mfn_list`: virtual address of the p2m list.
    pub mfn_list: u64,
    /// Virtual address of `start_info` itself.
    pub start_info: u64,
    /// First byte of the image (`__image_start`).
    pub image_start: u64,
    /// End of the image including .bss (`__image_end`).
    pub image_end: u64,
}

/// The checked layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Frames the domain owns.
    pub nr_pages: u64,
    /// First frame after the bootstrap page tables: free from here on.
    pub first_free: Pfn,
    /// Lowest frame to map; frame 0 stays unmapped so null pointers fault.
    pub first_mapped: Pfn,
}

/// A start-of-day layout that breaks Xen's documented rules (or ours).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// A structure that must be page-aligned is not.
    Misaligned {
        /// Which structure.
        what: &'static str,
        /// Its address.
        addr: u64,
    },
    /// A structure lies outside the region it must be in.
    OutOfOrder {
        /// Which structure.
        what: &'static str,
        /// Its address.
        addr: u64,
    },
    /// The bootstrap page tables end beyond the domain's memory.
    BeyondMemory {
        /// First free frame computed.
        first_free: u64,
        /// `nr_pages`.
        nr_pages: u64,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Misaligned { what, addr } => write!(f, "{what} at {addr:#x} is not page-aligned"),
            LayoutError::OutOfOrder { what, addr } => {
                write!(f, "{what} at {addr:#x} is not where the start-of-day layout puts it")
            }
            LayoutError::BeyondMemory { first_free, nr_pages } => write!(
                f,
                "bootstrap page tables end at frame {first_free:#x}, beyond the domain's {nr_pages:#x} frames"
            ),
        }
    }
}

/// Checks the layout and finds the free frames.
pub fn plan(s: &StartOfDay) -> Result<MemoryPlan, LayoutError> {
    for (what, addr) in [("bootstrap page tables", s.pt_base), ("image", s.image_start), ("image end", s.image_end)] {
        if addr % PAGE_SIZE != 0 {
            return Err(LayoutError::Misaligned { what, addr });
        }
    }
    if s.image_start == 0 || s.image_end <= s.image_start {
        return Err(LayoutError::OutOfOrder { what: "image", addr: s.image_start });
    }
    // Order: image < p2m list < start_info < page tables.
    if s.mfn_list < s.image_end {
        return Err(LayoutError::OutOfOrder { what: "p2m list", addr: s.mfn_list });
    }
    if s.start_info < s.mfn_list + s.nr_pages * 8 {
        return Err(LayoutError::OutOfOrder { what: "start_info", addr: s.start_info });
    }
    if s.pt_base <= s.start_info {
        return Err(LayoutError::OutOfOrder { what: "bootstrap page tables", addr: s.pt_base });
    }
    let first_free = s.pt_base / PAGE_SIZE + s.nr_pt_frames;
    if first_free >= s.nr_pages {
        return Err(LayoutError::BeyondMemory { first_free, nr_pages: s.nr_pages });
    }
    Ok(MemoryPlan { nr_pages: s.nr_pages, first_free: Pfn(first_free), first_mapped: Pfn(1) })
}

/// The heap: every frame from `next_free` (after the page tables the builder added) to the end of memory.
/// Returns (start address, size in bytes).
pub fn heap_region(next_free: Pfn, nr_pages: u64) -> (u64, u64) {
    let start = next_free.vaddr();
    (start, (nr_pages.saturating_sub(next_free.0)) * PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers as Xen 4.17 lays out a 32 MiB domain with a ~200 KiB image at 1 MiB.
    fn typical() -> StartOfDay {
        StartOfDay {
            nr_pages: 8192,
            image_start: 0x10_0000,
            image_end: 0x16_3000,
            mfn_list: 0x16_3000,
            start_info: 0x17_3000,
            pt_base: 0x17_6000,
            nr_pt_frames: 6,
        }
    }

    #[test]
    fn free_frames_start_after_the_bootstrap_tables() {
        let p = plan(&typical()).unwrap();
        assert_eq!(p.first_free, Pfn(0x176 + 6));
        assert_eq!(p.first_mapped, Pfn(1));
        assert_eq!(heap_region(Pfn(0x190), 8192), (0x19_0000, (8192 - 0x190) * 4096));
    }

    #[test]
    fn rejects_misaligned_tables() {
        let s = StartOfDay { pt_base: 0x17_6800, ..typical() };
        assert_eq!(plan(&s), Err(LayoutError::Misaligned { what: "bootstrap page tables", addr: 0x17_6800 }));
    }

    #[test]
    fn rejects_p2m_inside_the_image() {
        let s = StartOfDay { mfn_list: 0x15_0000, ..typical() };
        assert!(matches!(plan(&s), Err(LayoutError::OutOfOrder { what: "p2m list", .. })));
    }

    #[test]
    fn rejects_start_info_overlapping_the_p2m() {
        let s = StartOfDay { start_info: 0x16_4000, ..typical() };
        assert!(matches!(plan(&s), Err(LayoutError::OutOfOrder { what: "start_info", .. })));
    }

    #[test]
    fn rejects_tables_beyond_memory() {
        let s = StartOfDay { nr_pages: 0x17c, ..typical() };
        let e = plan(&s).unwrap_err();
        assert_eq!(e, LayoutError::BeyondMemory { first_free: 0x17c, nr_pages: 0x17c });
        assert!(e.to_string().contains("beyond"));
    }

    #[test]
    fn heap_of_a_full_domain_is_empty_not_negative() {
        assert_eq!(heap_region(Pfn(10), 5), (10 * 4096, 0));
    }
}
