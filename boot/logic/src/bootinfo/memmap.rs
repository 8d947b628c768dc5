//! The physical memory map: raw e820-style entries in, a sorted, non-overlapping [`MemoryMap`] out.
//!
//! Loaders and hypervisors hand over maps that may be unsorted, overlapping or padded with empty entries. The
//! sanitizer follows Linux's (`e820__update_table`): cut the address space at every entry boundary, give each
//! piece the type of the strongest entry covering it (RAM is the weakest; among the others the higher e820 type
//! number wins, as in Linux), and merge neighbouring pieces of the same type. It works on a fixed array in
//! O(n²) steps, which for n <= [`MAX_RAW_ENTRIES`] is a few tens of thousands of comparisons.

use super::{le32, le64, BootInfoError, MAX_REGIONS};
use core::fmt;

/// How many raw entries [`MemoryMap::from_entries`] accepts before sanitizing (Linux's `E820_MAX_ENTRIES_ZEROPAGE`).
pub const MAX_RAW_ENTRIES: usize = 128;
/// First byte above what an x86_64 physical address can name (52 address bits).
const PHYS_LIMIT: u64 = 1 << 52;
/// Size of one entry of `XENMEM_memory_map`'s array (`struct e820entry`, packed).
const E820_ENTRY_SIZE: usize = 20;

/// The type of a memory region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// e820 type 1: usable RAM.
    Ram,
    /// e820 type 2: reserved (Xen's special pages, MMIO holes).
    Reserved,
    /// e820 type 3: ACPI tables, reclaimable once read.
    Acpi,
    /// e820 type 4: ACPI non-volatile storage.
    Nvs,
    /// e820 type 5: unusable (bad) memory.
    Unusable,
    /// Any other e820 type (6 disabled, 7 persistent memory, ...).
    Other(u32),
}

impl RegionKind {
    /// The kind of e820 type `t`.
    pub fn from_e820(t: u32) -> Self {
        match t {
            1 => RegionKind::Ram,
            2 => RegionKind::Reserved,
            3 => RegionKind::Acpi,
            4 => RegionKind::Nvs,
            5 => RegionKind::Unusable,
            t => RegionKind::Other(t),
        }
    }
}

/// Which of two overlapping types wins: RAM loses to everything, otherwise the higher type number wins.
fn strength(e820_type: u32) -> u64 {
    if e820_type == 1 {
        0
    } else {
        u64::from(e820_type) + 1
    }
}

/// A range of physical memory of one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// What the memory is.
    pub kind: RegionKind,
}

impl Region {
    /// One past the last byte (`start + len`; never overflows in a validated [`MemoryMap`]).
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// A validated memory map: sorted by start, no overlaps, no zero-length or wrapping entries, at most
/// [`MAX_REGIONS`], at least one RAM region, everything below 2^52.
#[derive(Clone, Copy)]
pub struct MemoryMap {
    regions: [Region; MAX_REGIONS],
    len: usize,
}

impl MemoryMap {
    /// The regions, sorted by start.
    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.len]
    }

    /// The RAM region containing `addr`, if any.
    pub fn ram_containing(&self, addr: u64) -> Option<Region> {
        self.regions().iter().find(|r| r.kind == RegionKind::Ram && r.start <= addr && addr < r.end()).copied()
    }

    /// Total RAM bytes.
    pub fn ram_bytes(&self) -> u64 {
        self.regions().iter().filter(|r| r.kind == RegionKind::Ram).map(|r| r.len).sum()
    }

    /// Builds from raw (start, len, e820 type) triples: sorts; drops zero-length entries; rejects entries whose
    /// end wraps past 2^64 or lies above 2^52 (the x86_64 physical-address limit); where two entries overlap,
    /// Reserved/other types win over Ram (the overlapping RAM part is cut away, as Linux's e820 sanitizer does);
    /// adjacent regions of the same type are merged. More than [`MAX_RAW_ENTRIES`] non-empty entries, more than
    /// [`MAX_REGIONS`] regions after merging, or no RAM at all is an error (never silently truncated).
    pub fn from_entries(entries: impl IntoIterator<Item = (u64, u64, u32)>) -> Result<MemoryMap, BootInfoError> {
        let mut raw = RawMap::new();
        for (start, len, t) in entries {
            raw.push(start, len, t)?;
        }
        raw.finish()
    }

    /// Parses an array of 20-byte packed e820 entries (u64 addr, u64 size, u32 type, little-endian) as
    /// XENMEM_memory_map returns them.
    pub fn from_e820_bytes(bytes: &[u8]) -> Result<MemoryMap, BootInfoError> {
        if !bytes.len().is_multiple_of(E820_ENTRY_SIZE) {
            return Err(BootInfoError::BadMemoryMap("e820 array length is not a multiple of 20 bytes"));
        }
        MemoryMap::from_entries(bytes.chunks_exact(E820_ENTRY_SIZE).map(|e| (le64(e, 0), le64(e, 8), le32(e, 16))))
    }
}

impl fmt::Debug for MemoryMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.regions()).finish()
    }
}

impl PartialEq for MemoryMap {
    fn eq(&self, other: &Self) -> bool {
        self.regions() == other.regions()
    }
}

impl Eq for MemoryMap {}

/// Entries as given, checked one by one, waiting to be sanitized. The parsers push entries as they read them, so a
/// read error surfaces before any sanitizing.
pub(super) struct RawMap {
    /// (start, end, e820 type), end exclusive.
    entries: [(u64, u64, u32); MAX_RAW_ENTRIES],
    len: usize,
}

impl RawMap {
    pub(super) fn new() -> Self {
        RawMap { entries: [(0, 0, 0); MAX_RAW_ENTRIES], len: 0 }
    }

    /// Adds one entry: checked, dropped if empty.
    pub(super) fn push(&mut self, start: u64, len: u64, e820_type: u32) -> Result<(), BootInfoError> {
        let end = start.checked_add(len).ok_or(BootInfoError::BadMemoryMap("an entry wraps past 2^64"))?;
        if len == 0 {
            return Ok(());
        }
        if end > PHYS_LIMIT {
            return Err(BootInfoError::BadMemoryMap("an entry lies above the 2^52 physical-address limit"));
        }
        let slot = self
            .entries
            .get_mut(self.len)
            .ok_or(BootInfoError::BadMemoryMap("more than MAX_RAW_ENTRIES (128) entries"))?;
        *slot = (start, end, e820_type);
        self.len += 1;
        Ok(())
    }

    /// Sanitizes: sweeps the boundaries in ascending order and emits each piece with its winning type.
    pub(super) fn finish(self) -> Result<MemoryMap, BootInfoError> {
        let raw = &self.entries[..self.len];
        let mut out = MemoryMap { regions: [Region { start: 0, len: 0, kind: RegionKind::Ram }; MAX_REGIONS], len: 0 };
        // Regions found so far, stored or not: more than MAX_REGIONS is reported with the full count.
        let mut count = 0;
        let mut pending: Option<Region> = None;
        let mut flush = |r: Region| {
            if let Some(slot) = out.regions.get_mut(count) {
                *slot = r;
            }
            count += 1;
        };
        let Some(mut cursor) = raw.iter().map(|e| e.0).min() else {
            return Err(BootInfoError::BadMemoryMap("no non-empty entries"));
        };
        // The next boundary above the cursor: the pieces between boundaries are covered by a fixed set of entries.
        while let Some(next) = raw.iter().flat_map(|e| [e.0, e.1]).filter(|&b| b > cursor).min() {
            let winner = raw.iter().filter(|e| e.0 <= cursor && cursor < e.1).map(|e| e.2).max_by_key(|&t| strength(t));
            if let Some(t) = winner {
                let piece = Region { start: cursor, len: next - cursor, kind: RegionKind::from_e820(t) };
                match &mut pending {
                    Some(p) if p.end() == piece.start && p.kind == piece.kind => p.len += piece.len,
                    _ => {
                        if let Some(p) = pending.replace(piece) {
                            flush(p);
                        }
                    }
                }
            }
            cursor = next;
        }
        if let Some(p) = pending {
            flush(p);
        }
        if count > MAX_REGIONS {
            return Err(BootInfoError::TooManyRegions(count));
        }
        out.len = count;
        if out.ram_bytes() == 0 {
            return Err(BootInfoError::BadMemoryMap("no RAM"));
        }
        Ok(out)
    }
}
