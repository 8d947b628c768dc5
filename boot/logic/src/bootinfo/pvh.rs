//! PVH: `struct hvm_start_info` (xen/include/public/arch-x86/hvm/start_info.h), whose physical address Xen
//! passes in `%ebx`.
//!
//! Version 0 has the module list, command line and RSDP; version 1 adds the memory map. The header promises that
//! newer versions only append fields, so a version above 1 is accepted and read as version 1 (its extra fields are
//! ignored and not reported as occupied). A version-1 structure with `memmap_entries == 0` carries no map, like
//! version 0: [`BootInfo::memmap`] is then `None` and the platform asks Xen with `XENMEM_memory_map`.

use super::memmap::{RawMap, MAX_RAW_ENTRIES};
use super::{
    le32, le64, read_array, read_cstr, BootInfo, BootInfoError, Module, PhysMem, HVM_START_MAGIC, MAX_CMDLINE,
    MAX_MODULES,
};

/// `sizeof(struct hvm_start_info)` up to `rsdp_paddr` (version 0).
const START_INFO_V0_SIZE: usize = 40;
/// `sizeof(struct hvm_start_info)` in version 1.
const START_INFO_V1_SIZE: usize = 56;
/// `sizeof(struct hvm_modlist_entry)`.
const MODLIST_ENTRY_SIZE: u64 = 32;
/// `sizeof(struct hvm_memmap_table_entry)`.
const MEMMAP_ENTRY_SIZE: u64 = 24;

/// PVH: `hvm_start_info` at physical address `addr` (what Xen passes in %ebx).
pub fn parse_pvh(addr: u64, mem: &impl PhysMem) -> Result<BootInfo, BootInfoError> {
    let mut si = [0u8; START_INFO_V1_SIZE];
    mem.read(addr, &mut si[..START_INFO_V0_SIZE])?;
    let magic = le32(&si, 0);
    if magic != HVM_START_MAGIC {
        return Err(BootInfoError::BadMagic(magic));
    }
    let version = le32(&si, 4);
    let size = if version >= 1 { START_INFO_V1_SIZE } else { START_INFO_V0_SIZE };
    if size > START_INFO_V0_SIZE {
        mem.read(entry_addr(addr, 1, START_INFO_V0_SIZE as u64)?, &mut si[START_INFO_V0_SIZE..size])?;
    }
    let (nr_modules, modlist) = (le32(&si, 12), le64(&si, 16));
    let (cmdline, rsdp) = (le64(&si, 24), le64(&si, 32));
    let (memmap_paddr, memmap_entries) = if version >= 1 { (le64(&si, 40), le32(&si, 48)) } else { (0, 0) };

    let memmap = if memmap_entries == 0 {
        None
    } else {
        if memmap_entries as usize > MAX_RAW_ENTRIES {
            return Err(BootInfoError::BadMemoryMap("more than MAX_RAW_ENTRIES (128) entries"));
        }
        let mut raw = RawMap::new();
        for i in 0..u64::from(memmap_entries) {
            let e: [u8; 24] = read_array(mem, entry_addr(memmap_paddr, i, MEMMAP_ENTRY_SIZE)?)?;
            raw.push(le64(&e, 0), le64(&e, 8), le32(&e, 16))?;
        }
        Some(raw.finish()?)
    };

    let mut info = BootInfo::new(memmap);
    info.rsdp = rsdp;
    info.occupy(addr, size as u64)?;
    if cmdline != 0 {
        let s = read_cstr(mem, cmdline, MAX_CMDLINE as u64 + 1)?;
        info.cmdline = s.buf;
        info.cmdline_truncated = s.truncated || s.nul_at.is_none();
        info.occupy(cmdline, s.nul_at.map_or(MAX_CMDLINE as u64 + 1, |n| n + 1))?;
    }
    if nr_modules > 0 {
        info.occupy(modlist, u64::from(nr_modules) * MODLIST_ENTRY_SIZE)?;
    }
    info.occupy(memmap_paddr, u64::from(memmap_entries) * MEMMAP_ENTRY_SIZE)?;
    // Only the entries kept are read: the memory of dropped modules is free for the heap.
    for i in 0..u64::from(nr_modules).min(MAX_MODULES as u64) {
        let e: [u8; 32] = read_array(mem, entry_addr(modlist, i, MODLIST_ENTRY_SIZE)?)?;
        let m = Module { start: le64(&e, 0), len: le64(&e, 8) };
        if m.start.checked_add(m.len).is_none() {
            return Err(BootInfoError::Malformed("a PVH module wraps past 2^64"));
        }
        info.add_module(m)?;
    }
    info.modules_dropped = nr_modules as usize - info.nr_modules;
    Ok(info)
}

/// Address of entry `i` of the array at `base`.
fn entry_addr(base: u64, i: u64, size: u64) -> Result<u64, BootInfoError> {
    base.checked_add(i * size).ok_or(BootInfoError::Malformed("a PVH table wraps past 2^64"))
}
