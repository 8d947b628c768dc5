//! Extending Xen's bootstrap page tables over every page the domain owns.
//!
//! At start of day a PV guest has only its start-of-day region mapped (xen.h, "Start-of-day memory layout").
//! [`map_all`] walks the 4-level tables for each pseudo-physical frame and maps the ones that are missing at
//! virtual address `pfn * 4096`, following the PV rules Xen enforces:
//! - page-table pages are written only through `HYPERVISOR_mmu_update`, never directly;
//! - a frame becomes a page table only while no writable mapping of it exists, so a new table is zeroed through
//!   its ordinary mapping, re-mapped read-only, and only then linked into its parent;
//! - leaf updates are batched (the caller's buffer sets the batch size) to keep hypercalls few.
//!
//! New table frames are taken in order from the first free frame. Each must already be mapped (it is zeroed through
//! that mapping), which holds because Xen maps at least 512 KiB of padding after the bootstrap stack and mapping
//! proceeds upwards much faster (512 pages per table) than table frames are consumed.
//! Mini-OS's `build_pagetable` (arch/x86/mm.c) follows the same order of operations.
//!
//! PVH and HVM guests own their page tables and follow none of these rules: [`identity`] builds their map.

use crate::{Mfn, Pfn, PAGE_SHIFT, PAGE_SIZE};
use core::fmt;

pub mod identity;

/// Page-table entry flag bits (x86_64).
pub mod pte {
    /// Entry is valid.
    pub const PRESENT: u64 = 1 << 0;
    /// Writable.
    pub const RW: u64 = 1 << 1;
    /// Accessible at user privilege (64-bit PV kernels run in ring 3).
    pub const USER: u64 = 1 << 2;
    /// Set by the CPU on access; preset to avoid a write on first use.
    pub const ACCESSED: u64 = 1 << 5;
    /// Set by the CPU on write; preset likewise.
    pub const DIRTY: u64 = 1 << 6;
    /// Large page (in an L2 or L3 entry).
    pub const PSE: u64 = 1 << 7;
    /// The machine address bits of an entry.
    pub const FRAME_MASK: u64 = 0x000f_ffff_ffff_f000;
    /// No instruction fetch from the page (needs EFER.NXE; a reserved bit without it).
    pub const NX: u64 = 1 << 63;
}

/// The image's page protections (W^X): code is read-only and executable, read-only data is read-only and (with
/// `nx`) not executable, and every other page is writable and (with `nx`) not executable. So a write to code or
/// constants, or a jump into data, the stack or the heap, faults where it happens instead of running on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection {
    /// Code pages `[start, end)`, page-aligned.
    pub text: (u64, u64),
    /// Read-only data pages `[start, end)`, page-aligned.
    pub rodata: (u64, u64),
    /// Set the NX bit on every page outside `text` (the CPU must have NX, and EFER.NXE be on: Xen's for PV).
    pub nx: bool,
}

impl Protection {
    /// Every page writable and executable (the map as it was before W^X).
    pub const NONE: Protection = Protection { text: (0, 0), rodata: (0, 0), nx: false };

    /// The leaf flags for the page at `va`, from the flags a writable page gets (`rw`).
    pub const fn leaf_flags(&self, va: u64, rw: u64) -> u64 {
        let nx = if self.nx { pte::NX } else { 0 };
        let read_only = rw & !(pte::RW | pte::DIRTY);
        if va >= self.text.0 && va < self.text.1 {
            read_only
        } else if va >= self.rodata.0 && va < self.rodata.1 {
            read_only | nx
        } else {
            rw | nx
        }
    }

    /// The span from the first page of `text` or `rodata` to the end of the last (`(0, 0)` with neither).
    pub const fn image_span(&self) -> (u64, u64) {
        let (t, r) = (self.text, self.rodata);
        match (t.0 < t.1, r.0 < r.1) {
            (true, true) => (if t.0 < r.0 { t.0 } else { r.0 }, if t.1 > r.1 { t.1 } else { r.1 }),
            (true, false) => t,
            (false, true) => r,
            (false, false) => (0, 0),
        }
    }

    /// Whether `[start, end)` holds a page of `text` or `rodata` (a 2 MiB block that does is mapped with 4 KiB
    /// pages).
    pub const fn touches_image(&self, start: u64, end: u64) -> bool {
        (start < self.text.1 && self.text.0 < end) || (start < self.rodata.1 && self.rodata.0 < end)
    }
}

/// Flags of an entry pointing at a lower-level table (Mini-OS's `L2_PROT`..`L4_PROT` on x86_64).
pub const TABLE_FLAGS: u64 = pte::PRESENT | pte::RW | pte::USER | pte::ACCESSED | pte::DIRTY;
/// Flags of a leaf entry for ordinary memory.
pub const DATA_FLAGS: u64 = pte::PRESENT | pte::RW | pte::USER | pte::ACCESSED | pte::DIRTY;
/// Flags of a leaf entry for a page that is (or will be) a page table: never writable.
pub const READ_ONLY_FLAGS: u64 = pte::PRESENT | pte::USER | pte::ACCESSED;
/// Entries per table.
pub const ENTRIES: usize = 512;
/// Machine frames above this are not real memory (the p2m marks holes with all-ones).
pub const MAX_MFN: u64 = (1 << 40) - 1;

/// One request of `HYPERVISOR_mmu_update` (`struct mmu_update` in xen.h): `ptr` is the machine address of the
/// entry with the command in its low bits (`MMU_NORMAL_PT_UPDATE` = 0), `val` the new entry.
/// `repr(C)` so a slice of them is the array the hypercall takes (layout asserted in `boot/src/abi.rs`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuUpdate {
    /// Machine address of the entry | command.
    pub ptr: u64,
    /// New entry value.
    pub val: u64,
}

/// What the builder needs from the platform. Real: reads through the identity mapping and the hypercall;
/// tests: a fake of Xen's MMU that enforces the PV rules.
pub trait PageTableOps {
    /// Entry `index` of the page-table page held in machine frame `table`.
    fn read_entry(&self, table: Mfn, index: usize) -> u64;
    /// Fills the page of frame `pfn` with zeros through its (writable) mapping.
    fn zero_page(&mut self, pfn: Pfn);
    /// The p2m list.
    fn pfn_to_mfn(&self, pfn: Pfn) -> Mfn;
    /// Applies `updates` in order in one hypercall; `Err` carries Xen's (negative) error code.
    fn mmu_update(&mut self, updates: &[MmuUpdate]) -> Result<(), i64>;
}

/// Why memory could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageTableError {
    /// Xen refused a batch of `count` updates starting with the entry at machine address `first_ptr`.
    Hypercall {
        /// Xen's error code (negative errno).
        errno: i64,
        /// `ptr` of the first update of the batch.
        first_ptr: u64,
        /// Number of updates in the batch.
        count: usize,
    },
    /// A new page table was needed but the next free frame is not mapped yet.
    FrameNotMapped {
        /// The frame.
        pfn: Pfn,
    },
    /// No free frame is left to hold a new page table.
    OutOfFrames {
        /// Frame being mapped when it happened.
        at: Pfn,
    },
    /// An entry that is already present maps a frame the p2m does not give for this pfn.
    UnexpectedMapping {
        /// The frame.
        pfn: Pfn,
        /// What the p2m says.
        expected: Mfn,
        /// What the entry holds.
        found: Mfn,
    },
    /// The p2m has no machine frame for this pfn.
    NoMachineFrame {
        /// The frame.
        pfn: Pfn,
    },
    /// A large-page entry where a table was expected.
    LargePage {
        /// Virtual address being mapped.
        va: u64,
        /// Level of the entry (2 or 3).
        level: u8,
    },
    /// The batch buffer has room for fewer than two updates.
    BatchTooSmall,
}

impl fmt::Display for PageTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PageTableError::Hypercall { errno, first_ptr, count } => write!(
                f,
                "mmu_update refused a batch of {count} updates (first entry at maddr {first_ptr:#x}): error {errno}"
            ),
            PageTableError::FrameNotMapped { pfn } => {
                write!(f, "frame {:#x} needed for a page table is not mapped yet", pfn.0)
            }
            PageTableError::OutOfFrames { at } => {
                write!(f, "no free frame left for a page table while mapping pfn {:#x}", at.0)
            }
            PageTableError::UnexpectedMapping { pfn, expected, found } => {
                write!(f, "pfn {:#x} is mapped to mfn {:#x}, but the p2m says mfn {:#x}", pfn.0, found.0, expected.0)
            }
            PageTableError::NoMachineFrame { pfn } => write!(f, "the p2m has no machine frame for pfn {:#x}", pfn.0),
            PageTableError::LargePage { va, level } => {
                write!(f, "unexpected large page at level {level} covering {va:#x}")
            }
            PageTableError::BatchTooSmall => write!(f, "mmu_update batch buffer must hold at least 2 updates"),
        }
    }
}

/// What to map.
#[derive(Clone, Copy, Debug)]
pub struct MapRequest {
    /// Machine frame of the L4 table in use (`start_info.pt_base` translated).
    pub root: Mfn,
    /// Map frames `first_pfn..nr_pages`.
    pub first_pfn: Pfn,
    /// `start_info.nr_pages`.
    pub nr_pages: u64,
    /// First frame nothing uses yet: new tables are taken from here upwards.
    pub first_free: Pfn,
    /// Set the NX bit on every page mapped: the ones added, and the start-of-day region's already mapped (the
    /// builder maps it, and some slack after it, executable), except the frames of `image`.
    pub nx: bool,
    /// The image's frames `[start, end)`: left as they are (code runs there; [`protect`] sets their flags).
    pub image: (Pfn, Pfn),
}

/// What [`map_all`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapOutcome {
    /// First frame still free after taking the new tables.
    pub next_free: Pfn,
    /// New tables created, by level: `[_, L1, L2, L3]`.
    pub new_tables: [u64; 4],
    /// Leaf entries written.
    pub pages_mapped: u64,
    /// Frames that were mapped already (the start-of-day region).
    pub already_mapped: u64,
    /// Of those, the ones given the NX bit ([`MapRequest::nx`]).
    pub nx_added: u64,
    /// `mmu_update` hypercalls made.
    pub hypercalls: u64,
    /// Largest batch sent.
    pub largest_batch: usize,
}

/// Index of `va` in the table at `level` (1 = leaf).
pub fn table_index(va: u64, level: u8) -> usize {
    ((va >> (PAGE_SHIFT + 9 * (u32::from(level) - 1))) & (ENTRIES as u64 - 1)) as usize
}

fn entry_frame(entry: u64) -> Mfn {
    Mfn((entry & pte::FRAME_MASK) >> PAGE_SHIFT)
}

fn entry_addr(table: Mfn, index: usize) -> u64 {
    table.maddr(index as u64 * 8)
}

/// Maps every frame of `req` at `pfn * 4096`; `batch` is the buffer for batched updates (its length is the batch
/// size).
pub fn map_all<O: PageTableOps>(
    ops: &mut O,
    req: &MapRequest,
    batch: &mut [MmuUpdate],
) -> Result<MapOutcome, PageTableError> {
    if batch.len() < 2 {
        return Err(PageTableError::BatchTooSmall);
    }
    let mut b = Builder {
        ops,
        batch,
        queued: 0,
        root: req.root,
        nr_pages: req.nr_pages,
        out: MapOutcome { next_free: req.first_free, ..MapOutcome::default() },
    };
    let nx = if req.nx { pte::NX } else { 0 };
    let mut pfn = req.first_pfn.0;
    while pfn < req.nr_pages {
        let va = pfn << PAGE_SHIFT;
        let l1 = b.l1_table_for(va, Pfn(pfn))?;
        let end = req.nr_pages.min(pfn + (ENTRIES - table_index(va, 1)) as u64);
        for p in pfn..end {
            let index = table_index(p << PAGE_SHIFT, 1);
            let expected = b.ops.pfn_to_mfn(Pfn(p));
            if expected.0 > MAX_MFN {
                return Err(PageTableError::NoMachineFrame { pfn: Pfn(p) });
            }
            let entry = b.ops.read_entry(l1, index);
            if entry & pte::PRESENT != 0 {
                let found = entry_frame(entry);
                if found != expected {
                    return Err(PageTableError::UnexpectedMapping { pfn: Pfn(p), expected, found });
                }
                b.out.already_mapped += 1;
                if req.nx && entry & pte::NX == 0 && !(req.image.0 .0..req.image.1 .0).contains(&p) {
                    b.queue(MmuUpdate { ptr: entry_addr(l1, index), val: entry | pte::NX })?;
                    b.out.nx_added += 1;
                }
            } else {
                b.queue(MmuUpdate { ptr: entry_addr(l1, index), val: expected.maddr(0) | DATA_FLAGS | nx })?;
                b.out.pages_mapped += 1;
            }
        }
        pfn = end;
    }
    b.flush()?;
    Ok(b.out)
}

/// What [`protect`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtectOutcome {
    /// Leaf entries rewritten.
    pub pages: u64,
    /// Pages in the range that were not mapped (left alone).
    pub not_mapped: u64,
    /// `mmu_update` hypercalls made.
    pub hypercalls: u64,
}

/// Gives every mapped page of `[start, end)` (page-aligned) the leaf flags `protection` says, from
/// [`DATA_FLAGS`], keeping its frame: the PV way to W^X, with batched `mmu_update`s (`batch` is the buffer).
/// Pages not mapped are left alone. Call it on the image only: a page-table frame must stay read-only, and the
/// image holds none.
pub fn protect<O: PageTableOps>(
    ops: &mut O,
    root: Mfn,
    start: u64,
    end: u64,
    protection: &Protection,
    batch: &mut [MmuUpdate],
) -> Result<ProtectOutcome, PageTableError> {
    if batch.is_empty() {
        return Err(PageTableError::BatchTooSmall);
    }
    let mut b = Builder { ops, batch, queued: 0, root, nr_pages: 0, out: MapOutcome::default() };
    let mut out = ProtectOutcome::default();
    let mut va = start;
    while va < end {
        match b.find_leaf(va) {
            Some((table, index)) => {
                let frame = b.ops.read_entry(table, index) & pte::FRAME_MASK;
                b.queue(MmuUpdate {
                    ptr: entry_addr(table, index),
                    val: frame | protection.leaf_flags(va, DATA_FLAGS),
                })?;
                out.pages += 1;
            }
            None => out.not_mapped += 1,
        }
        va += PAGE_SIZE;
    }
    b.flush()?;
    out.hypercalls = b.out.hypercalls;
    Ok(out)
}

struct Builder<'a, O> {
    ops: &'a mut O,
    batch: &'a mut [MmuUpdate],
    queued: usize,
    root: Mfn,
    nr_pages: u64,
    out: MapOutcome,
}

impl<O: PageTableOps> Builder<'_, O> {
    fn flush(&mut self) -> Result<(), PageTableError> {
        if self.queued == 0 {
            return Ok(());
        }
        let count = self.queued;
        self.queued = 0;
        self.out.hypercalls += 1;
        self.out.largest_batch = self.out.largest_batch.max(count);
        self.ops.mmu_update(&self.batch[..count]).map_err(|errno| PageTableError::Hypercall {
            errno,
            first_ptr: self.batch[0].ptr,
            count,
        })
    }

    fn queue(&mut self, update: MmuUpdate) -> Result<(), PageTableError> {
        self.batch[self.queued] = update;
        self.queued += 1;
        if self.queued == self.batch.len() {
            self.flush()?;
        }
        Ok(())
    }

    /// The L1 table covering `va`, creating the missing levels.
    fn l1_table_for(&mut self, va: u64, pfn: Pfn) -> Result<Mfn, PageTableError> {
        let mut table = self.root;
        for level in [4u8, 3, 2] {
            let index = table_index(va, level);
            let entry = self.ops.read_entry(table, index);
            table = if entry & pte::PRESENT == 0 {
                self.new_table(table, index, level - 1, pfn)?
            } else if entry & pte::PSE != 0 && level <= 3 {
                return Err(PageTableError::LargePage { va, level });
            } else {
                entry_frame(entry)
            };
        }
        Ok(table)
    }

    /// The leaf entry (table, index) currently mapping `va`, if every level is present.
    fn find_leaf(&self, va: u64) -> Option<(Mfn, usize)> {
        let mut table = self.root;
        for level in [4u8, 3, 2] {
            let entry = self.ops.read_entry(table, table_index(va, level));
            if entry & pte::PRESENT == 0 || entry & pte::PSE != 0 {
                return None;
            }
            table = entry_frame(entry);
        }
        let index = table_index(va, 1);
        (self.ops.read_entry(table, index) & pte::PRESENT != 0).then_some((table, index))
    }

    /// Takes the next free frame, zeroes it, maps it read-only and links it at `parent[index]` as a table of
    /// `level`. Returns its machine frame.
    fn new_table(&mut self, parent: Mfn, index: usize, level: u8, at: Pfn) -> Result<Mfn, PageTableError> {
        // Everything queued so far must be in effect: the frame taken may have been mapped by the last batch.
        self.flush()?;
        let pfn = self.out.next_free;
        if pfn.0 >= self.nr_pages {
            return Err(PageTableError::OutOfFrames { at });
        }
        let (leaf_table, leaf_index) = self.find_leaf(pfn.vaddr()).ok_or(PageTableError::FrameNotMapped { pfn })?;
        self.ops.zero_page(pfn);
        let mfn = self.ops.pfn_to_mfn(pfn);
        self.out.next_free = Pfn(pfn.0 + 1);
        // Xen types a frame as a page table only while nothing maps it writable: read-only first, then link.
        self.queue(MmuUpdate { ptr: entry_addr(leaf_table, leaf_index), val: mfn.maddr(0) | READ_ONLY_FLAGS })?;
        self.queue(MmuUpdate { ptr: entry_addr(parent, index), val: mfn.maddr(0) | TABLE_FLAGS })?;
        // The caller's walk reads the new entry next.
        self.flush()?;
        self.out.new_tables[usize::from(level)] += 1;
        Ok(mfn)
    }
}

#[cfg(test)]
mod tests;
