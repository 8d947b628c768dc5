//! The boot information of the PVH and Multiboot2 entry points, read into plain values.
//!
//! A PV guest gets `start_info`; the newer boot modes get a pointer in `%ebx` instead: PVH to an `hvm_start_info`
//! (xen/include/public/arch-x86/hvm/start_info.h), Multiboot2 to a list of tags (GRUB's multiboot2.h). Both point
//! at memory the heap will later reuse, so [`parse_pvh`] and [`parse_multiboot2`] copy everything they keep into a
//! [`BootInfo`] of fixed-size fields and report which byte ranges the boot information occupied, so the platform
//! can keep the heap off them until it is done with them.
//!
//! The parsers run before the heap exists and never allocate. They read through [`PhysMem`], which refuses what is
//! not mapped, so a wild pointer from the loader is an [`BootInfoError::Unreadable`] error, not a fault. Everything
//! the loader says is checked: sizes against their containers, sums against overflow, memory maps against the
//! physical-address limit; nothing is silently cut except the command line, and that is flagged.
//!
//! The memory map (either protocol's, or Xen's `XENMEM_memory_map` via [`MemoryMap::from_e820_bytes`]) is
//! sanitized the way Linux's `e820__update_table` does it: sorted, overlaps resolved in favour of the non-RAM type,
//! adjacent regions of the same type merged.

use core::fmt;

mod memmap;
mod multiboot2;
mod pvh;

pub use memmap::{MemoryMap, Region, RegionKind, MAX_RAW_ENTRIES};
pub use multiboot2::{parse_multiboot2, MAX_MULTIBOOT2_INFO};
pub use pvh::parse_pvh;

/// How many memory-map entries we keep.
pub const MAX_REGIONS: usize = 32;
/// Longest command line kept (bytes, without NUL).
pub const MAX_CMDLINE: usize = 1023;
/// How many boot modules we keep; further ones are counted in [`BootInfo::modules_dropped`].
pub const MAX_MODULES: usize = 4;
/// How many occupied byte ranges a [`BootInfo`] can report (PVH needs at most 4 structures + [`MAX_MODULES`]).
pub const MAX_OCCUPIED: usize = 8;
/// `XEN_HVM_START_MAGIC_VALUE`: first field of `hvm_start_info`.
pub const HVM_START_MAGIC: u32 = 0x336e_c578;
/// `MULTIBOOT2_BOOTLOADER_MAGIC`: what a Multiboot2 loader puts in `%eax`.
pub const MULTIBOOT2_BOOTLOADER_MAGIC: u32 = 0x36d7_6289;

/// Reads guest-physical memory for the parsers. The platform implements it over its identity map and refuses
/// addresses it has not mapped; tests implement it over a byte vector placed at a base address.
///
/// Strings of unknown length (the PVH command line) are read in pieces that never cross a 4 KiB page boundary, so
/// an implementation that maps whole pages never refuses a read of bytes before a string's NUL.
pub trait PhysMem {
    /// Fills `buf` from physical address `addr`; Err if any byte is outside readable memory.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), OutOfRange>;
}

/// A read [`PhysMem`] refused: `len` bytes at `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    /// First byte asked for.
    pub addr: u64,
    /// Number of bytes asked for.
    pub len: usize,
}

/// Why the boot information could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// The magic number (in `hvm_start_info.magic`, or `%eax` for Multiboot2) is not the protocol's.
    BadMagic(u32),
    /// A structure version this parser cannot read. Not produced today: both protocols promise that newer versions
    /// only add fields, so a newer version is read as the newest one known.
    UnsupportedVersion(u32),
    /// A pointer in the boot information leads outside readable memory.
    Unreadable(OutOfRange),
    /// The memory map is missing or describes impossible memory.
    BadMemoryMap(&'static str),
    /// The sanitized memory map has this many regions, more than [`MAX_REGIONS`].
    TooManyRegions(usize),
    /// The boot information breaks its protocol's layout rules.
    Malformed(&'static str),
}

impl From<OutOfRange> for BootInfoError {
    fn from(e: OutOfRange) -> Self {
        BootInfoError::Unreadable(e)
    }
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootInfoError::BadMagic(m) => {
                write!(f, "boot information has magic {m:#010x}, not the one of the protocol we were entered by")
            }
            BootInfoError::UnsupportedVersion(v) => write!(f, "boot information version {v} is not supported"),
            BootInfoError::Unreadable(OutOfRange { addr, len }) => {
                write!(f, "boot information points outside readable memory ({len} bytes at {addr:#x})")
            }
            BootInfoError::BadMemoryMap(why) => write!(f, "unusable memory map: {why}"),
            BootInfoError::TooManyRegions(n) => {
                write!(f, "memory map has {n} regions after merging; at most {MAX_REGIONS} are kept")
            }
            BootInfoError::Malformed(why) => write!(f, "malformed boot information: {why}"),
        }
    }
}

/// The command line, copied (boot info may lie in memory the heap later reuses).
#[derive(Clone, Copy)]
pub struct CmdlineBuf {
    bytes: [u8; MAX_CMDLINE + 1],
    len: usize,
}

impl CmdlineBuf {
    /// The command line without its NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// No command line.
    pub fn empty() -> Self {
        CmdlineBuf { bytes: [0; MAX_CMDLINE + 1], len: 0 }
    }

    /// Appends `b`; false (and nothing stored) when the buffer already holds [`MAX_CMDLINE`] bytes.
    fn push(&mut self, b: u8) -> bool {
        if self.len == MAX_CMDLINE {
            return false;
        }
        self.bytes[self.len] = b;
        self.len += 1;
        true
    }
}

impl fmt::Debug for CmdlineBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.as_bytes().escape_ascii())
    }
}

/// One boot module (PVH modlist / multiboot2 module tag).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Module {
    /// Physical address of its first byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

/// What a boot protocol told us.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// The sanitized memory map. `None`: the protocol gave none (PVH version 0, or version 1 with no entries), and
    /// the platform asks Xen (`XENMEM_memory_map`, then [`MemoryMap::from_e820_bytes`]).
    pub memmap: Option<MemoryMap>,
    /// The command line (empty if none was given).
    pub cmdline: CmdlineBuf,
    /// The command line was longer than [`MAX_CMDLINE`] bytes and only its start was kept.
    pub cmdline_truncated: bool,
    /// The first [`BootInfo::nr_modules`] entries are the boot modules, in the loader's order.
    pub modules: [Module; MAX_MODULES],
    /// Number of valid entries of [`BootInfo::modules`].
    pub nr_modules: usize,
    /// Modules beyond [`MAX_MODULES`] that were ignored (their memory is not reported as occupied).
    pub modules_dropped: usize,
    /// Physical address of the ACPI RSDP, 0 if none (for Multiboot2: the copy inside the boot information).
    pub rsdp: u64,
    /// Byte ranges the boot info itself occupies (start info, memory map, command line, module list, the modules),
    /// as `(start, len)`: the platform keeps the heap off them. The first [`BootInfo::nr_occupied`] are valid.
    pub occupied: [(u64, u64); MAX_OCCUPIED],
    /// Number of valid entries of [`BootInfo::occupied`].
    pub nr_occupied: usize,
}

impl BootInfo {
    fn new(memmap: Option<MemoryMap>) -> Self {
        BootInfo {
            memmap,
            cmdline: CmdlineBuf::empty(),
            cmdline_truncated: false,
            modules: [Module::default(); MAX_MODULES],
            nr_modules: 0,
            modules_dropped: 0,
            rsdp: 0,
            occupied: [(0, 0); MAX_OCCUPIED],
            nr_occupied: 0,
        }
    }

    /// The modules kept.
    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.nr_modules]
    }

    /// The occupied ranges, as `(start, len)`.
    pub fn occupied(&self) -> &[(u64, u64)] {
        &self.occupied[..self.nr_occupied]
    }

    /// Records `len` bytes at `start` as occupied; empty ranges are not recorded.
    fn occupy(&mut self, start: u64, len: u64) -> Result<(), BootInfoError> {
        if start.checked_add(len).is_none() {
            return Err(BootInfoError::Malformed("a structure wraps past the end of the address space"));
        }
        if len == 0 {
            return Ok(());
        }
        // Each parser records at most MAX_OCCUPIED ranges (see the constant), so this only guards a future mistake.
        let slot = self.occupied.get_mut(self.nr_occupied).ok_or(BootInfoError::Malformed("too many ranges"))?;
        *slot = (start, len);
        self.nr_occupied += 1;
        Ok(())
    }

    /// Keeps module `m` (and records its memory) if there is room, else counts it as dropped.
    fn add_module(&mut self, m: Module) -> Result<(), BootInfoError> {
        if self.nr_modules == MAX_MODULES {
            self.modules_dropped += 1;
            return Ok(());
        }
        self.occupy(m.start, m.len)?;
        self.modules[self.nr_modules] = m;
        self.nr_modules += 1;
        Ok(())
    }
}

/// A NUL-terminated string read by [`read_cstr`].
struct CStr {
    /// Its first [`MAX_CMDLINE`] bytes.
    buf: CmdlineBuf,
    /// It had more than [`MAX_CMDLINE`] bytes before the NUL (or before the scan limit).
    truncated: bool,
    /// Offset of the NUL, if one was found within the limit.
    nul_at: Option<u64>,
}

/// Reads the string at `addr`, looking at no more than `limit` bytes, in reads that never cross a page.
fn read_cstr(mem: &impl PhysMem, addr: u64, limit: u64) -> Result<CStr, BootInfoError> {
    const PAGE: u64 = crate::PAGE_SIZE;
    let mut out = CStr { buf: CmdlineBuf::empty(), truncated: false, nul_at: None };
    let mut chunk = [0u8; 64];
    let mut pos = 0;
    while pos < limit {
        let at = addr.checked_add(pos).ok_or(BootInfoError::Malformed("string wraps past 2^64"))?;
        let n = (limit - pos).min(chunk.len() as u64).min(PAGE - at % PAGE) as usize;
        mem.read(at, &mut chunk[..n])?;
        for (i, &b) in chunk[..n].iter().enumerate() {
            if b == 0 {
                out.nul_at = Some(pos + i as u64);
                return Ok(out);
            }
            if !out.buf.push(b) {
                out.truncated = true;
            }
        }
        pos += n as u64;
    }
    Ok(out)
}

/// Reads `N` bytes at `addr`.
fn read_array<const N: usize>(mem: &impl PhysMem, addr: u64) -> Result<[u8; N], BootInfoError> {
    let mut buf = [0; N];
    mem.read(addr, &mut buf)?;
    Ok(buf)
}

/// The little-endian u32 at byte `off` of `b`.
fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// The little-endian u64 at byte `off` of `b`.
fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests;
