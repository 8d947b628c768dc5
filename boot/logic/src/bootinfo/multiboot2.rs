//! Multiboot2: the boot information whose physical address a Multiboot2 loader passes in `%ebx` (with
//! [`MULTIBOOT2_BOOTLOADER_MAGIC`] in `%eax`); layout and tag numbers from GRUB's multiboot2.h.
//!
//! A fixed header (`u32 total_size`, `u32 reserved`) is followed by tags, each `u32 type`, `u32 size` (header
//! included) and padded to 8 bytes, up to an end tag (type 0). Every tag must lie inside `total_size`, which is
//! itself bounded by [`MAX_MULTIBOOT2_INFO`]. Unknown tags are skipped. The tags read are: command line (1),
//! module (3), memory map (6), and the ACPI RSDP copies (14 old, 15 new; the new one wins). The memory map is
//! required: without it there is nothing to place the heap in. The whole structure is reported as occupied
//! (it holds the RSDP copy), as are the modules.

use super::memmap::RawMap;
use super::{le32, le64, read_array, read_cstr, BootInfo, BootInfoError, Module, PhysMem, MULTIBOOT2_BOOTLOADER_MAGIC};

/// Largest `total_size` accepted (real ones are a few KiB).
pub const MAX_MULTIBOOT2_INFO: u32 = 1 << 20;

const TAG_END: u32 = 0;
const TAG_CMDLINE: u32 = 1;
const TAG_MODULE: u32 = 3;
const TAG_MMAP: u32 = 6;
const TAG_ACPI_OLD: u32 = 14;
const TAG_ACPI_NEW: u32 = 15;
/// Tag header: `u32 type, u32 size`.
const TAG_HEADER: u64 = 8;
/// `struct multiboot_mmap_entry`: u64 addr, u64 len, u32 type, u32 zero.
const MMAP_ENTRY_SIZE: u64 = 24;
/// Length of an ACPI 1.0 RSDP and of an ACPI 2.0+ XSDP.
const RSDP_V1_LEN: u64 = 20;
const RSDP_V2_LEN: u64 = 36;

/// Multiboot2: the boot information at `addr` (%ebx), entered with %eax == MULTIBOOT2_BOOTLOADER_MAGIC.
pub fn parse_multiboot2(magic: u32, addr: u64, mem: &impl PhysMem) -> Result<BootInfo, BootInfoError> {
    if magic != MULTIBOOT2_BOOTLOADER_MAGIC {
        return Err(BootInfoError::BadMagic(magic));
    }
    if !addr.is_multiple_of(8) {
        return Err(BootInfoError::Malformed("multiboot2 information is not 8-byte aligned"));
    }
    let total = le32(&read_array::<8>(mem, addr)?, 0);
    if !(8..=MAX_MULTIBOOT2_INFO).contains(&total) {
        return Err(BootInfoError::Malformed("multiboot2 total_size is below 8 or above 1 MiB"));
    }
    let total = u64::from(total);
    let mut info = BootInfo::new(None);
    info.occupy(addr, total)?;

    let mut memmap: Option<RawMap> = None;
    let (mut seen_cmdline, mut seen_new_rsdp) = (false, false);
    let mut off = 8;
    loop {
        if off + TAG_HEADER > total {
            return Err(BootInfoError::Malformed("multiboot2 information has no end tag within total_size"));
        }
        let tag = addr + off;
        let header = read_array::<8>(mem, tag)?;
        let (ty, size) = (le32(&header, 0), u64::from(le32(&header, 4)));
        if size < TAG_HEADER {
            return Err(BootInfoError::Malformed("a multiboot2 tag is shorter than its 8-byte header"));
        }
        if off + size > total {
            return Err(BootInfoError::Malformed("a multiboot2 tag runs past total_size"));
        }
        let body = tag + TAG_HEADER;
        match ty {
            TAG_END => break,
            TAG_CMDLINE => {
                if seen_cmdline {
                    return Err(BootInfoError::Malformed("two multiboot2 command line tags"));
                }
                seen_cmdline = true;
                let s = read_cstr(mem, body, size - TAG_HEADER)?;
                if s.nul_at.is_none() {
                    return Err(BootInfoError::Malformed("multiboot2 command line has no NUL inside its tag"));
                }
                info.cmdline = s.buf;
                info.cmdline_truncated = s.truncated;
            }
            TAG_MODULE => {
                if size < TAG_HEADER + 8 {
                    return Err(BootInfoError::Malformed("multiboot2 module tag shorter than 16 bytes"));
                }
                let b = read_array::<8>(mem, body)?;
                let (start, end) = (le32(&b, 0), le32(&b, 4));
                if end < start {
                    return Err(BootInfoError::Malformed("multiboot2 module ends before it starts"));
                }
                info.add_module(Module { start: start.into(), len: (end - start).into() })?;
            }
            TAG_MMAP => {
                if memmap.is_some() {
                    return Err(BootInfoError::Malformed("two multiboot2 memory map tags"));
                }
                memmap = Some(read_mmap(mem, body, size - TAG_HEADER)?);
            }
            TAG_ACPI_OLD | TAG_ACPI_NEW => {
                let new = ty == TAG_ACPI_NEW;
                if size < TAG_HEADER + if new { RSDP_V2_LEN } else { RSDP_V1_LEN } {
                    return Err(BootInfoError::Malformed("multiboot2 ACPI tag too short for its RSDP"));
                }
                if new || !seen_new_rsdp {
                    info.rsdp = body;
                    seen_new_rsdp |= new;
                }
            }
            _ => {}
        }
        off = (off + size).next_multiple_of(8);
    }
    let memmap = memmap.ok_or(BootInfoError::BadMemoryMap("no memory map"))?;
    info.memmap = Some(memmap.finish()?);
    Ok(info)
}

/// The body of a memory map tag (`len` bytes at `body`): `u32 entry_size`, `u32 entry_version`, entries.
/// Entries longer than 24 bytes are allowed (the spec lets them grow); only their first 24 bytes are read.
fn read_mmap(mem: &impl PhysMem, body: u64, len: u64) -> Result<RawMap, BootInfoError> {
    if len < 8 {
        return Err(BootInfoError::Malformed("multiboot2 memory map tag shorter than 16 bytes"));
    }
    let entry_size = u64::from(le32(&read_array::<8>(mem, body)?, 0));
    if entry_size < MMAP_ENTRY_SIZE {
        return Err(BootInfoError::Malformed("multiboot2 memory map entry_size is below 24"));
    }
    let entries = len - 8;
    if !entries.is_multiple_of(entry_size) {
        return Err(BootInfoError::Malformed("multiboot2 memory map tag is not a whole number of entries"));
    }
    let mut raw = RawMap::new();
    for i in 0..entries / entry_size {
        let e = read_array::<24>(mem, body + 8 + i * entry_size)?;
        raw.push(le64(&e, 0), le64(&e, 8), le32(&e, 16))?;
    }
    Ok(raw)
}
