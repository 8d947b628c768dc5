//! The parsers against boot information fabricated byte by byte in a fake guest memory: whole pages at a base
//! address, everything else unreadable, as on the platform's identity map. Layouts follow what the loaders really
//! produce (libxl's PVH map with the HVM special pages reserved below 4 GiB, hvmloader's e820 for a guest GRUB
//! boots), then each field is broken in turn.

use super::*;
use RegionKind::{Acpi, Ram, Reserved};

const PAGE: usize = 4096;

/// `pages` whole pages of guest memory at `base`.
struct FakeMem {
    base: u64,
    bytes: Vec<u8>,
}

impl FakeMem {
    fn new(base: u64, pages: usize) -> Self {
        assert_eq!(base % PAGE as u64, 0);
        FakeMem { base, bytes: vec![0xAA; pages * PAGE] }
    }

    fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    fn put(&mut self, addr: u64, data: &[u8]) {
        let off = (addr - self.base) as usize;
        self.bytes[off..off + data.len()].copy_from_slice(data);
    }
}

impl PhysMem for FakeMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), OutOfRange> {
        let refused = OutOfRange { addr, len: buf.len() };
        let off = addr.checked_sub(self.base).ok_or(refused)? as usize;
        let src = off.checked_add(buf.len()).and_then(|end| self.bytes.get(off..end)).ok_or(refused)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

fn region(start: u64, len: u64, kind: RegionKind) -> Region {
    Region { start, len, kind }
}

// ---------------------------------------------------------------------------------------------------------------
// Memory map

#[test]
fn region_kinds_follow_e820_types() {
    let kinds: Vec<_> = [1, 2, 3, 4, 5, 7, 0].map(RegionKind::from_e820).into();
    assert_eq!(
        kinds,
        [Ram, Reserved, Acpi, RegionKind::Nvs, RegionKind::Unusable, RegionKind::Other(7), RegionKind::Other(0)]
    );
    assert_eq!(region(0x1000, 0x2000, Ram).end(), 0x3000);
}

#[test]
fn reserved_inside_ram_cuts_the_ram_away() {
    // A loader that reports low RAM as one block and the EBDA/BIOS holes on top of it.
    let map = MemoryMap::from_entries([
        (0, 0x4000_0000, 1),
        (0x9_f000, 0x1000, 2),
        (0xf_0000, 0x1_0000, 2),
        (0x3ff0_0000, 0x20_0000, 3), // ACPI tables straddling the end of RAM
    ])
    .unwrap();
    assert_eq!(
        map.regions(),
        [
            region(0, 0x9_f000, Ram),
            region(0x9_f000, 0x1000, Reserved),
            region(0xa_0000, 0x5_0000, Ram),
            region(0xf_0000, 0x1_0000, Reserved),
            region(0x10_0000, 0x3fe0_0000, Ram),
            region(0x3ff0_0000, 0x20_0000, Acpi),
        ]
    );
    assert_eq!(map.ram_bytes(), 0x9_f000 + 0x5_0000 + 0x3fe0_0000);
}

#[test]
fn among_non_ram_types_the_higher_wins() {
    let map = MemoryMap::from_entries([(0, 0x10_0000, 1), (0x10_0000, 0x2000, 2), (0x10_1000, 0x2000, 3)]).unwrap();
    assert_eq!(
        map.regions(),
        [region(0, 0x10_0000, Ram), region(0x10_0000, 0x1000, Reserved), region(0x10_1000, 0x2000, Acpi)]
    );
}

#[test]
fn adjacent_and_overlapping_regions_of_one_type_merge() {
    let map = MemoryMap::from_entries([
        (0, 0x9_f000, 1),
        (0x9_f000, 0x1000, 1),
        (0x8_0000, 0x4_0000, 1), // overlaps both
        (0xfc00_0000, 0x1000, 2),
        (0xfc00_1000, 0x1000, 2),
    ])
    .unwrap();
    assert_eq!(map.regions(), [region(0, 0xc_0000, Ram), region(0xfc00_0000, 0x2000, Reserved)]);
}

#[test]
fn unsorted_input_comes_out_sorted_and_empty_entries_vanish() {
    let map = MemoryMap::from_entries([
        (0xfeff_8000, 0x8000, 2),
        (0x10_0000, 0, 2), // zero length: dropped, does not split the RAM
        (0, 0x1000_0000, 1),
        (0xfc00_0000, 0x1_0000, 3),
        (u64::MAX, 0, 1), // zero length at the very top: dropped, not "wrapping"
    ])
    .unwrap();
    assert_eq!(
        map.regions(),
        [region(0, 0x1000_0000, Ram), region(0xfc00_0000, 0x1_0000, Acpi), region(0xfeff_8000, 0x8000, Reserved)]
    );
}

#[test]
fn ram_lookup_finds_only_ram() {
    let map = MemoryMap::from_entries([(0, 0x9_f000, 1), (0x9_f000, 0x1000, 2), (0x10_0000, 0x10_0000, 1)]).unwrap();
    assert_eq!(map.ram_containing(0), Some(region(0, 0x9_f000, Ram)));
    assert_eq!(map.ram_containing(0x9_efff), Some(region(0, 0x9_f000, Ram)));
    assert_eq!(map.ram_containing(0x9_f000), None, "reserved");
    assert_eq!(map.ram_containing(0xc_0000), None, "hole");
    assert_eq!(map.ram_containing(0x1f_ffff), Some(region(0x10_0000, 0x10_0000, Ram)));
    assert_eq!(map.ram_containing(0x20_0000), None, "end is exclusive");
    assert_eq!(map.ram_bytes(), 0x9_f000 + 0x10_0000);
}

#[test]
fn wrapping_and_absurd_entries_are_errors() {
    assert!(matches!(MemoryMap::from_entries([(0, 0x1000, 1), (u64::MAX, 2, 2)]), Err(BootInfoError::BadMemoryMap(_))));
    assert!(matches!(
        MemoryMap::from_entries([(0, 0x1000, 1), (1 << 52, 0x1000, 1)]),
        Err(BootInfoError::BadMemoryMap(_))
    ));
    assert!(matches!(
        MemoryMap::from_entries([(0, 0x1000, 1), ((1 << 52) - 0x1000, 0x2000, 1)]),
        Err(BootInfoError::BadMemoryMap(_))
    ));
    // Ending exactly at the limit is fine.
    let top = MemoryMap::from_entries([((1 << 52) - 0x1000, 0x1000, 1)]).unwrap();
    assert_eq!(top.regions()[0].end(), 1 << 52);
}

#[test]
fn maps_without_ram_are_errors() {
    assert_eq!(MemoryMap::from_entries([]), Err(BootInfoError::BadMemoryMap("no non-empty entries")));
    assert_eq!(MemoryMap::from_entries([(0, 0, 1)]), Err(BootInfoError::BadMemoryMap("no non-empty entries")));
    assert_eq!(MemoryMap::from_entries([(0, 0x1000, 2)]), Err(BootInfoError::BadMemoryMap("no RAM")));
    // RAM entirely covered by a reservation is no RAM either.
    assert_eq!(MemoryMap::from_entries([(0, 0x1000, 1), (0, 0x2000, 2)]), Err(BootInfoError::BadMemoryMap("no RAM")));
}

/// `n` RAM regions with one-page holes between them.
fn separate_ram(n: u64) -> impl Iterator<Item = (u64, u64, u32)> {
    (0..n).map(|i| (i * 0x2000, 0x1000, 1))
}

#[test]
fn too_many_regions_is_an_error_not_a_truncation() {
    assert_eq!(MemoryMap::from_entries(separate_ram(MAX_REGIONS as u64)).unwrap().regions().len(), MAX_REGIONS);
    assert_eq!(MemoryMap::from_entries(separate_ram(MAX_REGIONS as u64 + 1)), Err(BootInfoError::TooManyRegions(33)));
    assert_eq!(MemoryMap::from_entries(separate_ram(100)), Err(BootInfoError::TooManyRegions(100)));
    // Many raw entries that merge into few regions are fine...
    let adjacent = (0..MAX_RAW_ENTRIES as u64).map(|i| (i * 0x1000, 0x1000, 1));
    assert_eq!(MemoryMap::from_entries(adjacent).unwrap().regions(), [region(0, 0x1000 * 128, Ram)]);
    // ...but the raw table itself is bounded.
    let adjacent = (0..=MAX_RAW_ENTRIES as u64).map(|i| (i * 0x1000, 0x1000, 1));
    assert!(matches!(MemoryMap::from_entries(adjacent), Err(BootInfoError::BadMemoryMap(_))));
}

/// A packed 20-byte e820 entry, as XENMEM_memory_map writes it.
fn e820(start: u64, len: u64, t: u32) -> Vec<u8> {
    [&start.to_le_bytes()[..], &len.to_le_bytes(), &t.to_le_bytes()].concat()
}

#[test]
fn e820_bytes_from_xen() {
    let bytes = [e820(0xfeff_8000, 0x8000, 2), e820(0, 0x2000_0000, 1)].concat();
    let map = MemoryMap::from_e820_bytes(&bytes).unwrap();
    assert_eq!(map.regions(), [region(0, 0x2000_0000, Ram), region(0xfeff_8000, 0x8000, Reserved)]);
    assert!(matches!(MemoryMap::from_e820_bytes(&bytes[..39]), Err(BootInfoError::BadMemoryMap(_))));
}

// ---------------------------------------------------------------------------------------------------------------
// PVH

/// Where the fake puts `hvm_start_info` and what follows it: after a small kernel, as Xen's loader does.
const PVH_BASE: u64 = 0x40_0000;
const MODLIST: u64 = PVH_BASE + 0x40;
const MEMMAP: u64 = PVH_BASE + 0x80;
const CMDLINE: u64 = PVH_BASE + 0x100;
const RSDP: u64 = 0xfc00_8000;
const CMDLINE_TEXT: &str = "console=hvc0 log=debug";

/// The fields of `hvm_start_info` the tests set.
#[derive(Clone, Copy)]
struct StartInfo {
    magic: u32,
    version: u32,
    nr_modules: u32,
    modlist: u64,
    cmdline: u64,
    rsdp: u64,
    memmap: u64,
    memmap_entries: u32,
}

impl StartInfo {
    /// The 56 bytes of a version-1 `hvm_start_info`.
    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [self.magic, self.version, 0, self.nr_modules] {
            b.extend(v.to_le_bytes());
        }
        for v in [self.modlist, self.cmdline, self.rsdp, self.memmap] {
            b.extend(v.to_le_bytes());
        }
        b.extend(self.memmap_entries.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        assert_eq!(b.len(), 56);
        b
    }

    fn write(&self, mem: &mut FakeMem, at: u64) {
        mem.put(at, &self.bytes());
    }
}

/// `hvm_memmap_table_entry`.
fn pvh_memmap_entry(addr: u64, size: u64, t: u32) -> Vec<u8> {
    [&addr.to_le_bytes()[..], &size.to_le_bytes(), &t.to_le_bytes(), &0u32.to_le_bytes()].concat()
}

/// `hvm_modlist_entry`.
fn pvh_module(paddr: u64, size: u64) -> Vec<u8> {
    [paddr, size, 0, 0].iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// libxl's map for a 256 MiB PVH guest: RAM from 0, ACPI tables and the HVM special pages below 4 GiB.
fn libxl_map() -> Vec<u8> {
    [
        pvh_memmap_entry(0, 0x1000_0000, 1),
        pvh_memmap_entry(0xfc00_0000, 0x1_0000, 3),
        pvh_memmap_entry(0xfeff_8000, 0x8000, 2),
    ]
    .concat()
}

/// A version-1 start info with one module (an initrd at 6 MiB), a command line and libxl's memory map.
fn good_pvh() -> (FakeMem, StartInfo) {
    let mut mem = FakeMem::new(PVH_BASE, 2);
    let si = StartInfo {
        magic: HVM_START_MAGIC,
        version: 1,
        nr_modules: 1,
        modlist: MODLIST,
        cmdline: CMDLINE,
        rsdp: RSDP,
        memmap: MEMMAP,
        memmap_entries: 3,
    };
    si.write(&mut mem, PVH_BASE);
    mem.put(MODLIST, &pvh_module(0x60_0000, 0x12_3456));
    mem.put(MEMMAP, &libxl_map());
    mem.put(CMDLINE, format!("{CMDLINE_TEXT}\0").as_bytes());
    (mem, si)
}

fn with(si: StartInfo, mem: &mut FakeMem) -> Result<BootInfo, BootInfoError> {
    si.write(mem, PVH_BASE);
    parse_pvh(PVH_BASE, &*mem)
}

#[test]
fn pvh_version_1() {
    let (mem, _) = good_pvh();
    let info = parse_pvh(PVH_BASE, &mem).unwrap();
    assert_eq!(info.cmdline.as_bytes(), CMDLINE_TEXT.as_bytes());
    assert!(!info.cmdline_truncated);
    assert_eq!(info.modules(), [Module { start: 0x60_0000, len: 0x12_3456 }]);
    assert_eq!(info.modules_dropped, 0);
    assert_eq!(info.rsdp, RSDP);
    let map = info.memmap.unwrap();
    assert_eq!(
        map.regions(),
        [region(0, 0x1000_0000, Ram), region(0xfc00_0000, 0x1_0000, Acpi), region(0xfeff_8000, 0x8000, Reserved)]
    );
    assert_eq!(
        info.occupied(),
        [
            (PVH_BASE, 56),
            (CMDLINE, CMDLINE_TEXT.len() as u64 + 1),
            (MODLIST, 32),
            (MEMMAP, 3 * 24),
            (0x60_0000, 0x12_3456)
        ]
    );
    assert_eq!(info.nr_occupied, 5);
}

#[test]
fn pvh_version_0_has_no_memory_map_and_is_only_40_bytes() {
    // The start info at the very end of readable memory: the version-1 fields would be unreadable.
    let (mut mem, si) = good_pvh();
    let at = mem.end() - 40;
    mem.put(at, &StartInfo { version: 0, ..si }.bytes()[..40]);
    let info = parse_pvh(at, &mem).unwrap();
    assert!(info.memmap.is_none(), "the platform asks Xen instead");
    assert_eq!(info.cmdline.as_bytes(), CMDLINE_TEXT.as_bytes());
    assert_eq!(info.occupied()[0], (at, 40));
    assert_eq!(info.nr_occupied, 4, "start info, command line, module list, module");
}

#[test]
fn pvh_version_1_without_entries_has_no_memory_map() {
    let (mut mem, si) = good_pvh();
    let info = with(StartInfo { memmap_entries: 0, memmap: 0, ..si }, &mut mem).unwrap();
    assert!(info.memmap.is_none());
    assert!(!info.occupied().iter().any(|&(start, _)| start == 0));
}

#[test]
fn pvh_newer_versions_are_read_as_version_1() {
    let (mut mem, si) = good_pvh();
    let info = with(StartInfo { version: 7, ..si }, &mut mem).unwrap();
    assert_eq!(info.memmap.unwrap().regions().len(), 3);
    assert_eq!(info.occupied()[0], (PVH_BASE, 56));
}

#[test]
fn pvh_bad_magic() {
    let (mut mem, si) = good_pvh();
    assert_eq!(
        with(StartInfo { magic: 0x2bad_b002, ..si }, &mut mem).unwrap_err(),
        BootInfoError::BadMagic(0x2bad_b002)
    );
    // %ebx pointing at garbage.
    assert_eq!(parse_pvh(PVH_BASE + 0x800, &mem).unwrap_err(), BootInfoError::BadMagic(0xaaaa_aaaa));
}

#[test]
fn pvh_unreadable_pointers() {
    let (mut mem, si) = good_pvh();
    let outside = 0x7000_0000;
    let unreadable = |addr, len| Err(BootInfoError::Unreadable(OutOfRange { addr, len }));
    assert_eq!(parse_pvh(outside, &mem).map(|_| ()), unreadable(outside, 40));
    assert_eq!(with(StartInfo { cmdline: outside, ..si }, &mut mem).map(|_| ()), unreadable(outside, 64));
    assert_eq!(with(StartInfo { memmap: outside, ..si }, &mut mem).map(|_| ()), unreadable(outside, 24));
    assert_eq!(with(StartInfo { modlist: outside, ..si }, &mut mem).map(|_| ()), unreadable(outside, 32));
    // A table that starts inside memory and runs off its end.
    let tail = mem.end() - 24;
    mem.put(tail, &pvh_memmap_entry(0, 0x1000, 1));
    assert_eq!(with(StartInfo { memmap: tail, ..si }, &mut mem).map(|_| ()), unreadable(mem.end(), 24));
}

#[test]
fn pvh_without_command_line() {
    let (mut mem, si) = good_pvh();
    let info = with(StartInfo { cmdline: 0, ..si }, &mut mem).unwrap();
    assert_eq!(info.cmdline.as_bytes(), b"");
    assert!(!info.cmdline_truncated);
    assert_eq!(info.nr_occupied, 4);
}

#[test]
fn pvh_command_line_ending_at_the_end_of_memory() {
    // Only the bytes up to the NUL are readable: the parser must not read ahead past the page.
    let (mut mem, si) = good_pvh();
    let at = mem.end() - 5;
    mem.put(at, b"quiet");
    mem.put(at - 1, b"\0");
    let info = with(StartInfo { cmdline: at - 1, ..si }, &mut mem).unwrap();
    assert_eq!(info.cmdline.as_bytes(), b"");
    // Same, but the string runs into unreadable memory: that is an error, not a truncation.
    assert_eq!(
        with(StartInfo { cmdline: at, ..si }, &mut mem).map(|_| ()),
        Err(BootInfoError::Unreadable(OutOfRange { addr: mem.end(), len: 64 }))
    );
    let mut mem = FakeMem::new(PVH_BASE, 2);
    mem.put(mem.end() - 6, b"quiet\0");
    let info = with(StartInfo { cmdline: mem.end() - 6, nr_modules: 0, memmap_entries: 0, ..si }, &mut mem).unwrap();
    assert_eq!(info.cmdline.as_bytes(), b"quiet");
}

#[test]
fn pvh_overlong_command_line_is_truncated() {
    let (mut mem, si) = good_pvh();
    let long: Vec<u8> = (0..2000).map(|i| b'a' + (i % 26) as u8).chain([0]).collect();
    mem.put(PVH_BASE + 0x1000, &long);
    let info = with(StartInfo { cmdline: PVH_BASE + 0x1000, ..si }, &mut mem).unwrap();
    assert!(info.cmdline_truncated);
    assert_eq!(info.cmdline.as_bytes(), &long[..MAX_CMDLINE]);
    assert_eq!(info.occupied()[1], (PVH_BASE + 0x1000, MAX_CMDLINE as u64 + 1));
    // Exactly MAX_CMDLINE bytes fit.
    mem.put(PVH_BASE + 0x1000 + MAX_CMDLINE as u64, &[0]);
    let info = parse_pvh(PVH_BASE, &mem).unwrap();
    assert!(!info.cmdline_truncated);
    assert_eq!(info.cmdline.as_bytes(), &long[..MAX_CMDLINE]);
    assert_eq!(info.occupied()[1], (PVH_BASE + 0x1000, MAX_CMDLINE as u64 + 1));
}

#[test]
fn pvh_more_modules_than_kept() {
    let (mut mem, si) = good_pvh();
    let list: Vec<u8> = (0..6u64).flat_map(|i| pvh_module(0x60_0000 + i * 0x10_0000, 0x1000 * (i + 1))).collect();
    mem.put(PVH_BASE + 0x800, &list);
    let info = with(StartInfo { nr_modules: 6, modlist: PVH_BASE + 0x800, ..si }, &mut mem).unwrap();
    assert_eq!(info.nr_modules, MAX_MODULES);
    assert_eq!(info.modules_dropped, 2);
    assert_eq!(info.modules()[3], Module { start: 0x90_0000, len: 0x4000 });
    assert_eq!(info.occupied()[2], (PVH_BASE + 0x800, 6 * 32));
    assert_eq!(info.nr_occupied, MAX_OCCUPIED, "start info, cmdline, modlist, memmap, 4 modules");
}

#[test]
fn pvh_bad_modules_and_maps() {
    let (mut mem, si) = good_pvh();
    mem.put(MODLIST, &pvh_module(u64::MAX - 0xfff, 0x2000));
    assert!(matches!(with(si, &mut mem), Err(BootInfoError::Malformed(_))));

    let (mut mem, si) = good_pvh();
    mem.put(MEMMAP + 24, &pvh_memmap_entry(0x10_0000_0000_0000, 0x1000, 1));
    assert!(matches!(with(si, &mut mem), Err(BootInfoError::BadMemoryMap(_))));
    let (mut mem, si) = good_pvh();
    assert!(matches!(
        with(StartInfo { memmap_entries: u32::MAX, ..si }, &mut mem),
        Err(BootInfoError::BadMemoryMap(_))
    ));
}

// ---------------------------------------------------------------------------------------------------------------
// Multiboot2

/// Where GRUB left the boot information.
const MB2_BASE: u64 = 0x10_0000;
const MB2_INFO: u64 = MB2_BASE + 0x8;

/// A Multiboot2 information structure, built tag by tag.
struct Mb2 {
    buf: Vec<u8>,
}

impl Mb2 {
    fn new() -> Self {
        Mb2 { buf: vec![0; 8] }
    }

    /// A tag whose size field says `size` (normally 8 + body), padded to 8 bytes.
    fn raw_tag(mut self, ty: u32, size: u32, body: &[u8]) -> Self {
        self.buf.extend(ty.to_le_bytes());
        self.buf.extend(size.to_le_bytes());
        self.buf.extend(body);
        self.buf.resize(self.buf.len().next_multiple_of(8), 0);
        self
    }

    fn tag(self, ty: u32, body: &[u8]) -> Self {
        let size = 8 + body.len() as u32;
        self.raw_tag(ty, size, body)
    }

    fn cmdline(self, s: &[u8]) -> Self {
        self.tag(1, &[s, b"\0"].concat())
    }

    fn module(self, start: u32, end: u32, name: &str) -> Self {
        self.tag(3, &[&start.to_le_bytes()[..], &end.to_le_bytes(), name.as_bytes(), b"\0"].concat())
    }

    fn mmap(self, entry_size: u32, entries: &[(u64, u64, u32)]) -> Self {
        let mut body = [entry_size.to_le_bytes(), 0u32.to_le_bytes()].concat();
        for &(addr, len, t) in entries {
            let mut e = [&addr.to_le_bytes()[..], &len.to_le_bytes(), &t.to_le_bytes()].concat();
            e.resize(entry_size as usize, 0);
            body.extend(e);
        }
        self.tag(6, &body)
    }

    fn end(self) -> Self {
        self.tag(0, &[])
    }

    /// The bytes, with total_size set to their length (or `total` if given), in memory at [`MB2_INFO`].
    fn place(mut self, total: Option<u32>) -> FakeMem {
        let total = total.unwrap_or(self.buf.len() as u32);
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let mut mem = FakeMem::new(MB2_BASE, 4);
        mem.put(MB2_INFO, &self.buf);
        mem
    }
}

/// hvmloader's e820 for a 1 GiB HVM guest: low RAM, the EBDA and BIOS holes, RAM from 1 MiB, the MMIO hole.
const HVM_E820: [(u64, u64, u32); 5] = [
    (0, 0x9_f000, 1),
    (0x9_f000, 0x1000, 2),
    (0xf_0000, 0x1_0000, 2),
    (0x10_0000, 0x3ff0_0000, 1),
    (0xfc00_0000, 0x400_0000, 2),
];

fn rsdp_v1() -> Vec<u8> {
    [&b"RSD PTR "[..], &[0; 12]].concat()
}

fn rsdp_v2() -> Vec<u8> {
    [&b"RSD PTR "[..], &[0; 28]].concat()
}

fn mb2_full() -> Mb2 {
    Mb2::new()
        .cmdline(b"console=ttyS0 log=info")
        .tag(2, b"GRUB 2.12\0") // boot loader name: skipped, 18 bytes so the next tag needs padding
        .module(0x20_0000, 0x21_2345, "initrd")
        .tag(4, &[0x27f_u32.to_le_bytes(), 0xfff_c00_u32.to_le_bytes()].concat()) // basic meminfo: skipped
        .mmap(24, &HVM_E820)
        .tag(14, &rsdp_v1())
        .tag(15, &rsdp_v2())
        .tag(21, &0x20_0000u32.to_le_bytes()) // load base address: skipped
        .end()
}

#[test]
fn multiboot2_everything() {
    let mb = mb2_full();
    let total = mb.buf.len() as u64;
    let acpi_new = MB2_INFO + mb.buf.len() as u64 - 8 - 16 - 48 + 8;
    let mem = mb.place(None);
    let info = parse_multiboot2(MULTIBOOT2_BOOTLOADER_MAGIC, MB2_INFO, &mem).unwrap();
    assert_eq!(info.cmdline.as_bytes(), b"console=ttyS0 log=info");
    assert!(!info.cmdline_truncated);
    assert_eq!(info.modules(), [Module { start: 0x20_0000, len: 0x1_2345 }]);
    assert_eq!(
        info.memmap.unwrap().regions(),
        [
            region(0, 0x9_f000, Ram),
            region(0x9_f000, 0x1000, Reserved),
            region(0xf_0000, 0x1_0000, Reserved),
            region(0x10_0000, 0x3ff0_0000, Ram),
            region(0xfc00_0000, 0x400_0000, Reserved),
        ]
    );
    assert_eq!(info.rsdp, acpi_new, "the new RSDP copy wins");
    let mut sig = [0u8; 8];
    mem.read(info.rsdp, &mut sig).unwrap();
    assert_eq!(&sig, b"RSD PTR ");
    assert_eq!(info.occupied(), [(MB2_INFO, total), (0x20_0000, 0x1_2345)]);
}

#[test]
fn multiboot2_old_rsdp_alone_and_larger_mmap_entries() {
    let mem = Mb2::new().tag(14, &rsdp_v1()).mmap(32, &HVM_E820).end().place(None);
    let info = parse_multiboot2(MULTIBOOT2_BOOTLOADER_MAGIC, MB2_INFO, &mem).unwrap();
    assert_eq!(info.rsdp, MB2_INFO + 16);
    assert_eq!(info.memmap.unwrap().regions().len(), 5);
    assert_eq!(info.cmdline.as_bytes(), b"");
    assert_eq!(info.nr_modules, 0);
    // The old copy after the new one does not replace it.
    let mem = Mb2::new().tag(15, &rsdp_v2()).tag(14, &rsdp_v1()).mmap(24, &HVM_E820).end().place(None);
    assert_eq!(parse_multiboot2(MULTIBOOT2_BOOTLOADER_MAGIC, MB2_INFO, &mem).unwrap().rsdp, MB2_INFO + 16);
}

fn mb2(mem: &FakeMem) -> Result<BootInfo, BootInfoError> {
    parse_multiboot2(MULTIBOOT2_BOOTLOADER_MAGIC, MB2_INFO, mem)
}

fn malformed(r: Result<BootInfo, BootInfoError>) -> &'static str {
    match r {
        Err(BootInfoError::Malformed(why)) => why,
        other => panic!("expected Malformed, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn multiboot2_wrong_magic_or_placement() {
    let mem = mb2_full().place(None);
    // Multiboot 1's magic: entered by the wrong kind of loader.
    assert_eq!(parse_multiboot2(0x2bad_b002, MB2_INFO, &mem).unwrap_err(), BootInfoError::BadMagic(0x2bad_b002));
    malformed(parse_multiboot2(MULTIBOOT2_BOOTLOADER_MAGIC, MB2_INFO + 4, &mem));
    assert_eq!(
        parse_multiboot2(MULTIBOOT2_BOOTLOADER_MAGIC, 0x8000_0000, &mem).unwrap_err(),
        BootInfoError::Unreadable(OutOfRange { addr: 0x8000_0000, len: 8 })
    );
}

#[test]
fn multiboot2_total_size_bounds() {
    malformed(mb2(&mb2_full().place(Some(4))));
    malformed(mb2(&mb2_full().place(Some(MAX_MULTIBOOT2_INFO + 8))));
    // Exactly 8: no room for an end tag.
    assert_eq!(malformed(mb2(&mb2_full().place(Some(8)))), "multiboot2 information has no end tag within total_size");
}

#[test]
fn multiboot2_tag_overrunning_total_size() {
    let mb = Mb2::new().mmap(24, &HVM_E820).raw_tag(2, 0x100, b"x").end();
    assert_eq!(malformed(mb2(&mb.place(None))), "a multiboot2 tag runs past total_size");
    // total_size cutting the last real tag short.
    let mb = mb2_full();
    let short = mb.buf.len() as u32 - 16;
    assert_eq!(malformed(mb2(&mb.place(Some(short)))), "a multiboot2 tag runs past total_size");
}

#[test]
fn multiboot2_tag_shorter_than_its_header() {
    let mb = Mb2::new().mmap(24, &HVM_E820).raw_tag(2, 4, &[0; 8]).end();
    assert_eq!(malformed(mb2(&mb.place(None))), "a multiboot2 tag is shorter than its 8-byte header");
}

#[test]
fn multiboot2_missing_end_tag() {
    let mem = Mb2::new().cmdline(b"quiet").mmap(24, &HVM_E820).place(None);
    assert_eq!(malformed(mb2(&mem)), "multiboot2 information has no end tag within total_size");
}

#[test]
fn multiboot2_memory_map_problems() {
    let mem = Mb2::new().cmdline(b"quiet").end().place(None);
    assert_eq!(mb2(&mem).unwrap_err(), BootInfoError::BadMemoryMap("no memory map"));
    let mem = Mb2::new().mmap(20, &HVM_E820).end().place(None);
    assert_eq!(malformed(mb2(&mem)), "multiboot2 memory map entry_size is below 24");
    let mem = Mb2::new().mmap(24, &HVM_E820[..2]).mmap(24, &HVM_E820[2..]).end().place(None);
    assert_eq!(malformed(mb2(&mem)), "two multiboot2 memory map tags");
    let mem = Mb2::new().tag(6, &[24, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]).end().place(None);
    assert_eq!(malformed(mb2(&mem)), "multiboot2 memory map tag is not a whole number of entries");
    let mem = Mb2::new().mmap(24, &[(0, 0x1000, 1), (u64::MAX - 0xfff, 0x2000, 2)]).end().place(None);
    assert!(matches!(mb2(&mem), Err(BootInfoError::BadMemoryMap(_))));
    let many: Vec<_> = separate_ram(40).collect();
    let mem = Mb2::new().mmap(24, &many).end().place(None);
    assert_eq!(mb2(&mem).unwrap_err(), BootInfoError::TooManyRegions(40));
}

#[test]
fn multiboot2_command_lines() {
    // No NUL inside the tag (the padding after it holds one, but that is outside the tag).
    let mem = Mb2::new().tag(1, b"quiet").mmap(24, &HVM_E820).end().place(None);
    assert_eq!(malformed(mb2(&mem)), "multiboot2 command line has no NUL inside its tag");
    let long = vec![b'x'; 5000];
    let mem = Mb2::new().cmdline(&long).mmap(24, &HVM_E820).end().place(None);
    let info = mb2(&mem).unwrap();
    assert!(info.cmdline_truncated);
    assert_eq!(info.cmdline.as_bytes(), &long[..MAX_CMDLINE]);
    let mem = Mb2::new().cmdline(&long[..MAX_CMDLINE]).mmap(24, &HVM_E820).end().place(None);
    let info = mb2(&mem).unwrap();
    assert!(!info.cmdline_truncated);
    assert_eq!(info.cmdline.as_bytes().len(), MAX_CMDLINE);
    let mem = Mb2::new().cmdline(b"a").cmdline(b"b").mmap(24, &HVM_E820).end().place(None);
    assert_eq!(malformed(mb2(&mem)), "two multiboot2 command line tags");
}

#[test]
fn multiboot2_modules() {
    let mut mb = Mb2::new().mmap(24, &HVM_E820);
    for i in 0..6 {
        mb = mb.module(0x20_0000 + i * 0x10_0000, 0x20_1000 + i * 0x10_0000, "m");
    }
    let info = mb2(&mb.end().place(None)).unwrap();
    assert_eq!(info.nr_modules, 4);
    assert_eq!(info.modules_dropped, 2);
    assert_eq!(info.nr_occupied, 5, "the information and 4 modules");
    let mem = Mb2::new().mmap(24, &HVM_E820).module(0x30_0000, 0x20_0000, "backwards").end().place(None);
    assert_eq!(malformed(mb2(&mem)), "multiboot2 module ends before it starts");
    let mem = Mb2::new().mmap(24, &HVM_E820).tag(3, &[0; 4]).end().place(None);
    assert_eq!(malformed(mb2(&mem)), "multiboot2 module tag shorter than 16 bytes");
    let mem = Mb2::new().mmap(24, &HVM_E820).tag(15, &rsdp_v1()).end().place(None);
    assert_eq!(malformed(mb2(&mem)), "multiboot2 ACPI tag too short for its RSDP");
}

#[test]
fn tags_after_the_end_tag_are_not_read() {
    let mem = Mb2::new().mmap(24, &HVM_E820).end().raw_tag(1, 0x9999, b"junk").place(None);
    assert!(mb2(&mem).is_ok());
}

#[test]
fn errors_read_well() {
    let cases = [
        (BootInfoError::BadMagic(0x2bad_b002), "0x2badb002"),
        (BootInfoError::Unreadable(OutOfRange { addr: 0x7000_0000, len: 24 }), "24 bytes at 0x70000000"),
        (BootInfoError::BadMemoryMap("no memory map"), "memory map: no memory map"),
        (BootInfoError::TooManyRegions(40), "40 regions"),
        (BootInfoError::Malformed("x"), "malformed boot information: x"),
        (BootInfoError::UnsupportedVersion(9), "version 9"),
    ];
    for (e, part) in cases {
        let text = e.to_string();
        assert!(text.contains(part), "{text:?} should contain {part:?}");
    }
    let mut c = CmdlineBuf::empty();
    assert!(c.push(b'"'));
    assert_eq!(format!("{c:?}"), r#""\"""#);
}
