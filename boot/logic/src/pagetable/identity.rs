//! The identity map (virtual = physical) of a PVH or HVM guest, built in memory the guest owns.
//!
//! Unlike a PV guest (see the parent module), a PVH or HVM guest runs its own paging: its page tables are ordinary
//! memory, written directly, and CR3 takes their physical address. So the map is built here as plain data in a
//! caller-provided array of table pages whose physical address is known (a static area of the image), then checked
//! with [`translate`] and loaded by the platform.
//!
//! The map covers `[0, limit)` with 2 MiB pages, except that each 2 MiB block holding a *hole* gets a 4 KiB table in
//! which the hole pages are left not present: page 0, so a null pointer faults, and the guard page below the boot
//! stack, so an overflow faults instead of corrupting what lies below. `limit` is at most 512 GiB, what one PML4
//! entry covers, so the map always has one PML4, one PDPT, one page directory per started GiB, and one page table
//! per 2 MiB block with a hole; [`tables_needed`] gives the count before building.
//!
//! Entries are present, writable, accessed and dirty (preset so the CPU never writes them back), never `USER`: a
//! PVH or HVM kernel runs in ring 0. The image's pages follow a [`Protection`] (W^X): each 2 MiB block holding code
//! or read-only data is mapped with 4 KiB pages, code read-only, read-only data read-only and not executable, and
//! (with NX) every other page, 2 MiB ones included, not executable. PCD/PWT/PAT are clear, so each range's memory type is what the
//! MTRRs give it (with PAT entry 0, write-back): MMIO the platform touches must be uncacheable in the MTRRs, or be
//! remapped by the platform with its own flags.
//!
//! Nothing here allocates: it runs before the heap exists.

use super::{pte, table_index, Protection, ENTRIES};
use crate::PAGE_SIZE;
use core::fmt;

/// Size of a large (2 MiB) page, the granule of the map.
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;
/// Bytes one page directory covers.
const GIB: u64 = 1 << 30;
/// Largest `limit`: what one PML4 entry covers.
pub const MAX_LIMIT: u64 = 512 * GIB;
/// Physical addresses end here (the architectural maximum of MAXPHYADDR, 52 bits); tables must lie below.
pub const MAX_PHYS: u64 = 1 << 52;

/// Flags of an entry pointing at a lower-level table: like [`super::TABLE_FLAGS`] without `USER` (the set Linux
/// calls `_KERNPG_TABLE`; `DIRTY` is ignored by the CPU in non-leaf entries).
pub const TABLE_FLAGS: u64 = pte::PRESENT | pte::RW | pte::ACCESSED | pte::DIRTY;
/// Flags of a leaf entry (plus [`pte::PSE`] for a 2 MiB leaf): like [`super::DATA_FLAGS`] without `USER`.
pub const LEAF_FLAGS: u64 = pte::PRESENT | pte::RW | pte::ACCESSED | pte::DIRTY;

/// Where the builder may put tables: `pages[i]` lives at physical address `phys_base + i * 4096`.
pub struct TablePages<'a> {
    /// The table pages; their previous contents do not matter (every page used is zeroed first).
    pub pages: &'a mut [[u64; ENTRIES]],
    /// Physical address of `pages[0]`; 4 KiB-aligned.
    pub phys_base: u64,
}

/// What [`build_identity`] built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdentityMap {
    /// Physical address of the PML4, for CR3 (always `phys_base`: the PML4 is `pages[0]`).
    pub root: u64,
    /// Table pages used, `pages[..tables_used]`; equal to [`tables_needed`].
    pub tables_used: usize,
    /// 2 MiB leaf entries written.
    pub pages_2m: u64,
    /// 4 KiB leaf entries written (the blocks with holes, less the holes).
    pub pages_4k: u64,
}

/// Why the identity map could not be built. Nothing was written to the table pages when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityError {
    /// The table pages given are fewer than the map needs.
    OutOfTables {
        /// Table pages the map needs (exactly [`tables_needed`]).
        needed_at_least: usize,
    },
    /// `limit` is 0, not a multiple of 2 MiB, or above 512 GiB.
    BadLimit(u64),
    /// A hole address is not 4 KiB-aligned.
    Misaligned(u64),
    /// `phys_base` is not 4 KiB-aligned, or the tables needed would reach [`MAX_PHYS`].
    BadTableAddress(u64),
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IdentityError::OutOfTables { needed_at_least } => {
                write!(f, "identity map needs {needed_at_least} table pages, fewer were given")
            }
            IdentityError::BadLimit(limit) => {
                write!(f, "identity map limit {limit:#x} is not a non-zero multiple of 2 MiB up to 512 GiB")
            }
            IdentityError::Misaligned(hole) => write!(f, "hole address {hole:#x} is not 4 KiB-aligned"),
            IdentityError::BadTableAddress(base) => {
                write!(f, "table pages at physical address {base:#x} are not 4 KiB-aligned or do not fit below 2^52")
            }
        }
    }
}

/// Maps `[0, limit)` virtual = physical, writable, ring 0 only, with 2 MiB pages, except that each 2 MiB block
/// containing a page listed in `holes` is mapped with 4 KiB pages and the hole pages are left not present. Leaf
/// flags follow `protection` (each 2 MiB block touching its code or read-only data is mapped with 4 KiB pages).
///
/// `limit` must be a non-zero multiple of 2 MiB, at most 512 GiB. `holes` are 4 KiB-aligned page addresses in any
/// order; duplicates are harmless, and holes at or above `limit` are ignored (they are not mapped anyway). Tables
/// are taken from `tables.pages` in order: the PML4, the PDPT, the page directories by address, then the 4 KiB
/// tables by address. Arguments are checked before anything is written, so on error the pages are untouched.
pub fn build_identity(
    tables: TablePages<'_>,
    limit: u64,
    holes: &[u64],
    protection: &Protection,
) -> Result<IdentityMap, IdentityError> {
    if limit == 0 || !limit.is_multiple_of(LARGE_PAGE_SIZE) || limit > MAX_LIMIT {
        return Err(IdentityError::BadLimit(limit));
    }
    if let Some(&hole) = holes.iter().find(|&&hole| !hole.is_multiple_of(PAGE_SIZE)) {
        return Err(IdentityError::Misaligned(hole));
    }
    let needed = tables_needed(limit, holes, protection);
    if tables.pages.len() < needed {
        return Err(IdentityError::OutOfTables { needed_at_least: needed });
    }
    let phys_base = tables.phys_base;
    let end = (needed as u64).checked_mul(PAGE_SIZE).and_then(|size| phys_base.checked_add(size));
    if !phys_base.is_multiple_of(PAGE_SIZE) || end.is_none_or(|end| end > MAX_PHYS) {
        return Err(IdentityError::BadTableAddress(phys_base));
    }

    let pages = &mut tables.pages[..needed];
    pages.iter_mut().for_each(|page| page.fill(0));
    let addr = |i: usize| phys_base + i as u64 * PAGE_SIZE;
    let directories = limit.div_ceil(GIB) as usize;
    pages[0][0] = addr(1) | TABLE_FLAGS;
    for (gib, entry) in pages[1][..directories].iter_mut().enumerate() {
        *entry = addr(2 + gib) | TABLE_FLAGS;
    }

    let mut map = IdentityMap { root: addr(0), tables_used: needed, pages_2m: 0, pages_4k: 0 };
    let mut next_table = 2 + directories;
    for block in 0..limit / LARGE_PAGE_SIZE {
        let start = block * LARGE_PAGE_SIZE;
        let directory = 2 + (block / ENTRIES as u64) as usize;
        let index = table_index(start, 2);
        if !split(block, holes, protection) {
            pages[directory][index] = start | protection.leaf_flags(start, LEAF_FLAGS) | pte::PSE;
            map.pages_2m += 1;
            continue;
        }
        let table = next_table;
        next_table += 1;
        for (i, entry) in pages[table].iter_mut().enumerate() {
            let page = start + i as u64 * PAGE_SIZE;
            if !holes.contains(&page) {
                *entry = page | protection.leaf_flags(page, LEAF_FLAGS);
                map.pages_4k += 1;
            }
        }
        pages[directory][index] = addr(table) | TABLE_FLAGS;
    }
    debug_assert_eq!(next_table, needed);
    Ok(map)
}

/// Whether 2 MiB block number `block` is mapped with 4 KiB pages: it holds a hole, code or read-only data.
fn split(block: u64, holes: &[u64], protection: &Protection) -> bool {
    let start = block * LARGE_PAGE_SIZE;
    has_hole(holes, block) || protection.touches_image(start, start + LARGE_PAGE_SIZE)
}

/// How many table pages [`build_identity`] needs for `limit`, `holes` and `protection`: 2 (PML4 and PDPT), one page
/// directory per started GiB below `limit`, and one page table per distinct 2 MiB block below `limit` holding a
/// hole, code or read-only data.
///
/// A `const fn`, so the platform can size a static table area for its largest limit. The count is meaningful only
/// for a `limit` that [`build_identity`] accepts (it rejects the others before counting).
pub const fn tables_needed(limit: u64, holes: &[u64], protection: &Protection) -> usize {
    let mut needed = 2 + limit.div_ceil(GIB) as usize;
    let mut i = 0;
    while i < holes.len() {
        if holes[i] < limit && !same_block_before(holes, i, limit) {
            needed += 1;
        }
        i += 1;
    }
    // The blocks holding code or read-only data that hold no hole.
    let (lo, hi) = protection.image_span();
    let mut block = lo / LARGE_PAGE_SIZE;
    while block * LARGE_PAGE_SIZE < hi && block < limit / LARGE_PAGE_SIZE {
        let start = block * LARGE_PAGE_SIZE;
        if protection.touches_image(start, start + LARGE_PAGE_SIZE) && !has_hole(holes, block) {
            needed += 1;
        }
        block += 1;
    }
    needed
}

/// Whether a hole lies in 2 MiB block number `block`.
const fn has_hole(holes: &[u64], block: u64) -> bool {
    let mut i = 0;
    while i < holes.len() {
        if holes[i] / LARGE_PAGE_SIZE == block {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether a hole before `holes[i]` and below `limit` lies in the same 2 MiB block (it was counted already).
const fn same_block_before(holes: &[u64], i: usize, limit: u64) -> bool {
    let mut j = 0;
    while j < i {
        if holes[j] < limit && holes[j] / LARGE_PAGE_SIZE == holes[i] / LARGE_PAGE_SIZE {
            return true;
        }
        j += 1;
    }
    false
}

/// Translates `va` through tables built by [`build_identity`] in `tables` (at physical `phys_base`) from the PML4
/// at physical `root`: the physical address `va` maps to, or `None` if it is not mapped (non-canonical, an entry
/// not present, a reserved large-page bit in the PML4, or a table outside `tables`). Follows 1 GiB and 2 MiB pages
/// too. Used by the tests, and by the platform to check the map before loading CR3.
pub fn translate(tables: &[[u64; ENTRIES]], phys_base: u64, root: u64, va: u64) -> Option<u64> {
    // The low frame bits of a 1 GiB or 2 MiB entry hold PAT and reserved bits, not address.
    let (entry, size) = walk(tables, phys_base, root, va)?;
    Some((entry & pte::FRAME_MASK & !(size - 1)) | (va & (size - 1)))
}

/// The leaf entry (4 KiB, 2 MiB or 1 GiB) mapping `va` in tables built by [`build_identity`], for its flags;
/// `None` where [`translate`] finds nothing.
pub fn leaf_entry(tables: &[[u64; ENTRIES]], phys_base: u64, root: u64, va: u64) -> Option<u64> {
    walk(tables, phys_base, root, va).map(|(entry, _)| entry)
}

/// The present leaf entry mapping `va` and the size of its page, by the rules [`translate`] states.
fn walk(tables: &[[u64; ENTRIES]], phys_base: u64, root: u64, va: u64) -> Option<(u64, u64)> {
    // Bits 63:48 must copy bit 47.
    if (((va as i64) << 16) >> 16) as u64 != va {
        return None;
    }
    let mut table = table_at(tables, phys_base, root)?;
    for level in [4u8, 3, 2] {
        let entry = table[table_index(va, level)];
        if entry & pte::PRESENT == 0 {
            return None;
        }
        if entry & pte::PSE != 0 {
            return (level != 4).then_some((entry, 1u64 << (12 + 9 * u32::from(level - 1))));
        }
        table = table_at(tables, phys_base, entry & pte::FRAME_MASK)?;
    }
    let entry = table[table_index(va, 1)];
    (entry & pte::PRESENT != 0).then_some((entry, PAGE_SIZE))
}

/// The table page at physical address `addr`, if it is one of `tables`.
fn table_at(tables: &[[u64; ENTRIES]], phys_base: u64, addr: u64) -> Option<&[u64; ENTRIES]> {
    let offset = addr.checked_sub(phys_base)?;
    if !offset.is_multiple_of(PAGE_SIZE) {
        return None;
    }
    tables.get(usize::try_from(offset / PAGE_SIZE).ok()?)
}

#[cfg(test)]
mod tests;
