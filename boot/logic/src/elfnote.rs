//! Reading an image the way its loaders do, to check every built image before it is booted (`tools/imgcheck`) and to
//! pin the numbers: Xen's PV loader (ELF64 program headers and the "Xen" notes of `elfnote.h`, [`check_pv_image`]),
//! and the entries of the other two boot modes, the PVH `PHYS32_ENTRY` note and the multiboot2 header GRUB searches
//! for ([`check_boot_entries`]).

use core::fmt;

/// `XEN_ELFNOTE_ENTRY`: virtual address of the entry point.
pub const ENTRY: u32 = 1;
/// `XEN_ELFNOTE_HYPERCALL_PAGE`: virtual address of the page Xen fills with hypercall stubs.
pub const HYPERCALL_PAGE: u32 = 2;
/// `XEN_ELFNOTE_VIRT_BASE`.
pub const VIRT_BASE: u32 = 3;
/// `XEN_ELFNOTE_PADDR_OFFSET`.
pub const PADDR_OFFSET: u32 = 4;
/// `XEN_ELFNOTE_XEN_VERSION`: "xen-3.0".
pub const XEN_VERSION: u32 = 5;
/// `XEN_ELFNOTE_GUEST_OS`.
pub const GUEST_OS: u32 = 6;
/// `XEN_ELFNOTE_GUEST_VERSION`.
pub const GUEST_VERSION: u32 = 7;
/// `XEN_ELFNOTE_LOADER`: "generic".
pub const LOADER: u32 = 8;
/// `XEN_ELFNOTE_FEATURES`.
pub const FEATURES: u32 = 10;
/// `XEN_ELFNOTE_PHYS32_ENTRY`: physical address of the PVH entry (`_start_pvh`, `boot/src/hvm/entry.rs`), entered in
/// 32-bit protected mode with paging off, so below 4 GiB. A PV boot ignores it.
pub const PHYS32_ENTRY: u32 = 18;

/// `MULTIBOOT2_HEADER_MAGIC`: the first field of a multiboot2 header.
pub const MULTIBOOT2_MAGIC: u32 = 0xe852_50d6;
/// `MULTIBOOT_SEARCH`: a multiboot2 header lies entirely within this many bytes from the start of the file.
pub const MULTIBOOT2_SEARCH: u64 = 32768;
/// `MULTIBOOT_HEADER_ALIGN`: the header starts at a file offset that is a multiple of this, and so does each tag.
pub const MULTIBOOT2_ALIGN: u64 = 8;
/// `MULTIBOOT_HEADER_TAG_END`.
const MB2_TAG_END: u16 = 0;
/// `MULTIBOOT_HEADER_TAG_ENTRY_ADDRESS`: {u16 type, u16 flags, u32 size = 12, u32 entry_addr}.
const MB2_TAG_ENTRY_ADDRESS: u16 = 3;
/// `MULTIBOOT_HEADER_TAG_RELOCATABLE`, the highest tag type GRUB knows.
const MB2_TAG_LAST_KNOWN: u16 = 10;
/// `MULTIBOOT_HEADER_TAG_OPTIONAL`: a loader that does not know the tag may ignore it.
const MB2_TAG_OPTIONAL: u16 = 1;

/// Start of the hypervisor's reserved virtual range on x86_64 (`HYPERVISOR_VIRT_START`): a PV image must lie below.
pub const HYPERVISOR_VIRT_START: u64 = 0xFFFF_8000_0000_0000;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PF_X: u32 = 1;

/// What is wrong with an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Not an ELF64 little-endian x86_64 executable.
    NotElf64X86,
    /// A header or note runs past the end of the file.
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// A required Xen note is absent.
    MissingNote {
        /// The note's name.
        note: &'static str,
    },
    /// A note's value is not what a Sirocco PV image needs.
    BadNote {
        /// The note's name.
        note: &'static str,
        /// What was wrong.
        why: &'static str,
    },
    /// A loadable segment breaks the PV loader's rules.
    BadSegment {
        /// Its virtual address.
        vaddr: u64,
        /// What was wrong.
        why: &'static str,
    },
    /// No multiboot2 header magic anywhere in the file.
    MissingMultiboot2,
    /// A multiboot2 header that GRUB would not find, or would refuse.
    BadMultiboot2 {
        /// File offset of its magic.
        offset: u64,
        /// What was wrong.
        why: &'static str,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::NotElf64X86 => write!(f, "not an ELF64 little-endian x86_64 executable"),
            ImageError::Truncated { what } => write!(f, "file truncated while reading {what}"),
            ImageError::MissingNote { note } => write!(f, "missing Xen ELF note {note}"),
            ImageError::BadNote { note, why } => write!(f, "Xen ELF note {note}: {why}"),
            ImageError::BadSegment { vaddr, why } => {
                write!(f, "loadable segment at {vaddr:#x}: {why}")
            }
            ImageError::MissingMultiboot2 => {
                write!(f, "no multiboot2 header (magic {MULTIBOOT2_MAGIC:#x}) in the file")
            }
            ImageError::BadMultiboot2 { offset, why } => {
                write!(f, "multiboot2 header at file offset {offset:#x}: {why}")
            }
        }
    }
}

/// One program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// `p_type`.
    pub kind: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_paddr`: where PVH loaders and GRUB put the segment (Sirocco's linker script makes it equal `p_vaddr`).
    pub paddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
}

/// One note named "Xen".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenNote<'a> {
    /// `XEN_ELFNOTE_*` number.
    pub kind: u32,
    /// The descriptor bytes.
    pub desc: &'a [u8],
}

impl<'a> XenNote<'a> {
    /// The descriptor as a little-endian number (notes holding addresses are 8 bytes; some loaders write 4).
    pub fn number(&self) -> Option<u64> {
        match self.desc.len() {
            8 => Some(u64::from_le_bytes(self.desc.try_into().ok()?)),
            4 => Some(u64::from(u32::from_le_bytes(self.desc.try_into().ok()?))),
            _ => None,
        }
    }
    /// The descriptor as a NUL-terminated string.
    pub fn text(&self) -> Option<&'a str> {
        let end = self.desc.iter().position(|&b| b == 0)?;
        core::str::from_utf8(&self.desc[..end]).ok()
    }
}

/// A parsed ELF64 file.
#[derive(Clone, Copy, Debug)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    /// `e_entry`.
    pub entry: u64,
    phoff: u64,
    phnum: u16,
}

fn read<const N: usize>(b: &[u8], at: u64, what: &'static str) -> Result<[u8; N], ImageError> {
    let at = usize::try_from(at).map_err(|_| ImageError::Truncated { what })?;
    b.get(at..at.checked_add(N).ok_or(ImageError::Truncated { what })?)
        .and_then(|s| s.try_into().ok())
        .ok_or(ImageError::Truncated { what })
}
fn u16_at(b: &[u8], at: u64, what: &'static str) -> Result<u16, ImageError> {
    read::<2>(b, at, what).map(u16::from_le_bytes)
}
fn u32_at(b: &[u8], at: u64, what: &'static str) -> Result<u32, ImageError> {
    read::<4>(b, at, what).map(u32::from_le_bytes)
}
fn u64_at(b: &[u8], at: u64, what: &'static str) -> Result<u64, ImageError> {
    read::<8>(b, at, what).map(u64::from_le_bytes)
}

impl<'a> Elf<'a> {
    /// Parses the ELF header.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ImageError> {
        let ident: [u8; 7] = read(bytes, 0, "ELF header")?;
        // magic, ELFCLASS64, ELFDATA2LSB, EV_CURRENT
        if ident != [0x7f, b'E', b'L', b'F', 2, 1, 1] {
            return Err(ImageError::NotElf64X86);
        }
        let machine = u16_at(bytes, 18, "ELF header")?;
        let etype = u16_at(bytes, 16, "ELF header")?;
        if machine != 62 || etype != 2 {
            return Err(ImageError::NotElf64X86);
        }
        let phentsize = u16_at(bytes, 54, "ELF header")?;
        if phentsize != 56 {
            return Err(ImageError::NotElf64X86);
        }
        Ok(Elf {
            bytes,
            entry: u64_at(bytes, 24, "ELF header")?,
            phoff: u64_at(bytes, 32, "ELF header")?,
            phnum: u16_at(bytes, 56, "ELF header")?,
        })
    }

    /// Program header `i`.
    pub fn segment(&self, i: u16) -> Result<Segment, ImageError> {
        let at = self.phoff + u64::from(i) * 56;
        let w = "program header";
        Ok(Segment {
            kind: u32_at(self.bytes, at, w)?,
            flags: u32_at(self.bytes, at + 4, w)?,
            offset: u64_at(self.bytes, at + 8, w)?,
            vaddr: u64_at(self.bytes, at + 16, w)?,
            paddr: u64_at(self.bytes, at + 24, w)?,
            filesz: u64_at(self.bytes, at + 32, w)?,
            memsz: u64_at(self.bytes, at + 40, w)?,
        })
    }

    /// All program headers.
    pub fn segments(&self) -> impl Iterator<Item = Result<Segment, ImageError>> + '_ {
        (0..self.phnum).map(|i| self.segment(i))
    }

    /// Calls `f` for each note named "Xen" in the PT_NOTE segments (as Xen's libelf reads them).
    pub fn for_each_xen_note(&self, mut f: impl FnMut(XenNote<'a>)) -> Result<(), ImageError> {
        for seg in self.segments() {
            let seg = seg?;
            if seg.kind != PT_NOTE {
                continue;
            }
            let mut at = seg.offset;
            let end = seg.offset.checked_add(seg.filesz).ok_or(ImageError::Truncated { what: "notes" })?;
            while at < end {
                let namesz = u64::from(u32_at(self.bytes, at, "note header")?);
                let descsz = u64::from(u32_at(self.bytes, at + 4, "note header")?);
                let kind = u32_at(self.bytes, at + 8, "note header")?;
                let name_at = at + 12;
                let desc_at = name_at + namesz.next_multiple_of(4);
                let next = desc_at + descsz.next_multiple_of(4);
                if next > end {
                    return Err(ImageError::Truncated { what: "note" });
                }
                let slice = |from: u64, len: u64| &self.bytes[from as usize..(from + len) as usize];
                if slice(name_at, namesz) == b"Xen\0" {
                    f(XenNote { kind, desc: slice(desc_at, descsz) });
                }
                at = next;
            }
        }
        Ok(())
    }

    /// The Xen notes by number (up to `PHYS32_ENTRY`); of two with the same number, the later.
    fn xen_notes(&self) -> Result<[Option<XenNote<'a>>; 19], ImageError> {
        let mut notes: [Option<XenNote<'a>>; 19] = [None; 19];
        self.for_each_xen_note(|n| {
            if let Some(slot) = notes.get_mut(n.kind as usize) {
                *slot = Some(n);
            }
        })?;
        Ok(notes)
    }

    /// Whether the byte at physical address `paddr` is loaded from the file by an executable PT_LOAD segment, as
    /// PVH loaders and GRUB load them (at `p_paddr`): code to enter there is in the image, not in zero-filled memory.
    pub fn loads_code_at(&self, paddr: u64) -> Result<bool, ImageError> {
        for seg in self.segments() {
            let seg = seg?;
            if seg.kind == PT_LOAD && seg.flags & PF_X != 0 && paddr >= seg.paddr && paddr - seg.paddr < seg.filesz {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// What [`check_pv_image`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvImage<'a> {
    /// Entry point.
    pub entry: u64,
    /// Hypercall page address.
    pub hypercall_page: u64,
    /// GUEST_OS note.
    pub guest_os: &'a str,
    /// Bytes loaded from the file.
    pub file_bytes: u64,
    /// Bytes of memory the image occupies (including .bss).
    pub memory_bytes: u64,
}

/// Checks an image against what Xen's PV loader needs and what Sirocco's boot code assumes.
pub fn check_pv_image(bytes: &[u8]) -> Result<PvImage<'_>, ImageError> {
    let elf = Elf::parse(bytes)?;
    let notes = elf.xen_notes()?;
    let get = |kind: u32, note: &'static str| notes[kind as usize].ok_or(ImageError::MissingNote { note });
    let number = |kind, note| get(kind, note)?.number().ok_or(ImageError::BadNote { note, why: "not a number" });
    let text = |kind, note| get(kind, note)?.text().ok_or(ImageError::BadNote { note, why: "not a string" });

    let entry = number(ENTRY, "ENTRY")?;
    if entry != elf.entry {
        return Err(ImageError::BadNote { note: "ENTRY", why: "differs from the ELF entry point" });
    }
    if text(XEN_VERSION, "XEN_VERSION")? != "xen-3.0" {
        return Err(ImageError::BadNote { note: "XEN_VERSION", why: "must be \"xen-3.0\"" });
    }
    if text(LOADER, "LOADER")? != "generic" {
        return Err(ImageError::BadNote { note: "LOADER", why: "must be \"generic\"" });
    }
    let guest_os = text(GUEST_OS, "GUEST_OS")?;
    if number(VIRT_BASE, "VIRT_BASE")? != 0 {
        return Err(ImageError::BadNote { note: "VIRT_BASE", why: "Sirocco assumes 0 (virtual = pseudo-physical)" });
    }
    if number(PADDR_OFFSET, "PADDR_OFFSET")? != 0 {
        return Err(ImageError::BadNote { note: "PADDR_OFFSET", why: "Sirocco assumes 0" });
    }
    if !text(FEATURES, "FEATURES")?.split('|').any(|f| f == "!writable_page_tables") {
        return Err(ImageError::BadNote {
            note: "FEATURES",
            why: "must contain !writable_page_tables (page tables are updated by hypercall)",
        });
    }
    let hypercall_page = number(HYPERCALL_PAGE, "HYPERCALL_PAGE")?;
    if hypercall_page % 4096 != 0 {
        return Err(ImageError::BadNote { note: "HYPERCALL_PAGE", why: "not page-aligned" });
    }

    let (mut file_bytes, mut lo, mut hi, mut hypercall_in_text, mut entry_in_text) = (0, u64::MAX, 0, false, false);
    for seg in elf.segments() {
        let seg = seg?;
        if seg.kind != PT_LOAD {
            continue;
        }
        let end = seg.vaddr.checked_add(seg.memsz).ok_or(ImageError::BadSegment { vaddr: seg.vaddr, why: "wraps" })?;
        if seg.vaddr % 4096 != seg.offset % 4096 {
            return Err(ImageError::BadSegment { vaddr: seg.vaddr, why: "offset and address disagree modulo 4096" });
        }
        if end > HYPERVISOR_VIRT_START {
            return Err(ImageError::BadSegment { vaddr: seg.vaddr, why: "reaches the hypervisor's reserved range" });
        }
        if seg.vaddr < 4096 {
            return Err(ImageError::BadSegment { vaddr: seg.vaddr, why: "covers page 0, which must stay unmapped" });
        }
        if seg.filesz > seg.memsz {
            return Err(ImageError::BadSegment { vaddr: seg.vaddr, why: "file size exceeds memory size" });
        }
        let exec = seg.flags & PF_X != 0;
        hypercall_in_text |= exec && hypercall_page >= seg.vaddr && hypercall_page + 4096 <= end;
        entry_in_text |= exec && entry >= seg.vaddr && entry < end;
        file_bytes += seg.filesz;
        lo = lo.min(seg.vaddr);
        hi = hi.max(end);
    }
    if !entry_in_text {
        return Err(ImageError::BadNote { note: "ENTRY", why: "not inside an executable segment" });
    }
    if !hypercall_in_text {
        return Err(ImageError::BadNote { note: "HYPERCALL_PAGE", why: "not inside an executable segment" });
    }
    Ok(PvImage { entry, hypercall_page, guest_os, file_bytes, memory_bytes: hi.saturating_sub(lo) })
}

/// What [`check_boot_entries`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootEntries {
    /// The PVH entry (`PHYS32_ENTRY`), a physical address.
    pub pvh_entry: u64,
    /// The multiboot2 entry (the header's entry-address tag), a physical address.
    pub multiboot2_entry: u64,
    /// File offset of the multiboot2 header.
    pub multiboot2_offset: u64,
}

/// Checks the entries of the other boot modes: the PHYS32_ENTRY note is a number below 4 GiB inside an executable
/// PT_LOAD segment; a multiboot2 header is found at an 8-byte-aligned file offset within the first 32 KiB, with a
/// valid checksum, a header_length that fits in those 32 KiB and ends with an end tag, and an entry-address tag whose
/// address is below 4 GiB and inside an executable PT_LOAD segment (and whose file offset lies inside a PT_LOAD
/// segment's file range, since GRUB loads it from there).
///
/// Both entries are physical addresses, so they are looked up in the segments' `p_paddr` ranges, and both must fall in
/// the part of the segment loaded from the file (below `p_filesz`), which holds for the PVH entry for the same reason.
pub fn check_boot_entries(bytes: &[u8]) -> Result<BootEntries, ImageError> {
    let elf = Elf::parse(bytes)?;
    let note = "PHYS32_ENTRY";
    let pvh_entry = elf.xen_notes()?[PHYS32_ENTRY as usize]
        .ok_or(ImageError::MissingNote { note })?
        .number()
        .ok_or(ImageError::BadNote { note, why: "not a number" })?;
    if pvh_entry > u64::from(u32::MAX) {
        return Err(ImageError::BadNote { note, why: "not below 4 GiB (PVH enters in 32-bit mode)" });
    }
    if !elf.loads_code_at(pvh_entry)? {
        return Err(ImageError::BadNote { note, why: "not inside the file bytes of an executable loadable segment" });
    }
    let (offset, entry) = find_multiboot2(bytes)?;
    if !elf.loads_code_at(u64::from(entry))? {
        return Err(ImageError::BadMultiboot2 {
            offset,
            why: "entry address not inside the file bytes of an executable loadable segment",
        });
    }
    Ok(BootEntries { pvh_entry, multiboot2_entry: u64::from(entry), multiboot2_offset: offset })
}

/// Finds the multiboot2 header as GRUB does (the first 8-byte-aligned offset within the first 32 KiB holding the
/// magic, architecture 0 and a checksum that makes the four fields sum to 0) and walks its tags. Returns the header's
/// file offset and the entry-address tag's address (a `u32`, so below 4 GiB). When GRUB would find no header, says
/// why from where the magic does appear.
fn find_multiboot2(bytes: &[u8]) -> Result<(u64, u32), ImageError> {
    let window = (bytes.len() as u64).min(MULTIBOOT2_SEARCH);
    let fields = |at: u64| {
        read::<16>(bytes, at, "multiboot2 header").map(|b| {
            let f = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            (f(0), f(4), f(8), f(12))
        })
    };
    let found = (0..window).step_by(MULTIBOOT2_ALIGN as usize).filter(|at| at + 16 <= window).find(|&at| {
        fields(at).is_ok_and(|(magic, arch, length, checksum)| {
            magic == MULTIBOOT2_MAGIC
                && arch == 0
                && magic.wrapping_add(arch).wrapping_add(length).wrapping_add(checksum) == 0
        })
    });
    let Some(at) = found else { return Err(why_no_multiboot2(bytes, window)) };
    let bad = |why| ImageError::BadMultiboot2 { offset: at, why };
    let end = at + u64::from(fields(at)?.2);
    if end < at + 16 + 8 {
        return Err(bad("header_length is shorter than the header and an end tag"));
    }
    if end > MULTIBOOT2_SEARCH {
        return Err(bad("header_length runs past the file's first 32 KiB"));
    }
    if end > bytes.len() as u64 {
        return Err(ImageError::Truncated { what: "multiboot2 header" });
    }
    let (mut tag, mut entry) = (at + 16, None);
    loop {
        if tag + 8 > end {
            return Err(bad("no end tag within header_length"));
        }
        let w = "multiboot2 tag";
        let (kind, flags, size) = (u16_at(bytes, tag, w)?, u16_at(bytes, tag + 2, w)?, u32_at(bytes, tag + 4, w)?);
        let size = u64::from(size);
        if size < 8 {
            return Err(bad("a tag is shorter than 8 bytes"));
        }
        if tag + size > end {
            return Err(bad("a tag runs past header_length"));
        }
        match kind {
            MB2_TAG_END if size != 8 => return Err(bad("the end tag's size is not 8")),
            MB2_TAG_END if tag + 8 != end => return Err(bad("header_length does not end at the end tag")),
            MB2_TAG_END => break,
            MB2_TAG_ENTRY_ADDRESS if size != 12 => return Err(bad("the entry-address tag's size is not 12")),
            MB2_TAG_ENTRY_ADDRESS => entry = Some(u32_at(bytes, tag + 8, w)?),
            k if k > MB2_TAG_LAST_KNOWN && flags & MB2_TAG_OPTIONAL == 0 => {
                return Err(bad("a required tag of a type GRUB does not know"));
            }
            _ => {}
        }
        tag += size.next_multiple_of(MULTIBOOT2_ALIGN);
    }
    // Without an entry-address tag GRUB would jump to the ELF entry point, which is the PV entry.
    let entry = entry.ok_or(bad("no entry-address tag (GRUB would enter at the ELF entry point, the PV one)"))?;
    Ok((at, entry))
}

/// Why GRUB would find no multiboot2 header: the first magic at an aligned offset within the first 32 KiB (bad
/// checksum or architecture), else the first at a misaligned one, else the first beyond 32 KiB.
fn why_no_multiboot2(bytes: &[u8], window: u64) -> ImageError {
    let magic = MULTIBOOT2_MAGIC.to_le_bytes();
    let found = bytes.windows(4).enumerate().filter(|(_, w)| *w == magic).map(|(i, _)| i as u64);
    let (mut aligned, mut misaligned, mut beyond) = (None, None, None);
    for i in found {
        if i >= window {
            beyond = beyond.or(Some(i));
            break;
        } else if i % MULTIBOOT2_ALIGN == 0 {
            aligned = Some(i);
            break;
        }
        misaligned = misaligned.or(Some(i));
    }
    let bad = |offset, why| ImageError::BadMultiboot2 { offset, why };
    match (aligned, misaligned, beyond) {
        (Some(i), _, _) if i + 16 > bytes.len() as u64 => ImageError::Truncated { what: "multiboot2 header" },
        (Some(i), _, _) if i + 16 > window => bad(i, "runs past the file's first 32 KiB"),
        (Some(i), _, _) if u32_at(bytes, i + 4, "").is_ok_and(|arch| arch != 0) => {
            bad(i, "architecture is not 0 (i386)")
        }
        (Some(i), _, _) => bad(i, "checksum: magic + architecture + header_length + checksum is not 0 mod 2^32"),
        (None, Some(i), _) => bad(i, "not at an 8-byte-aligned file offset"),
        (None, None, Some(i)) => bad(i, "not within the file's first 32 KiB"),
        (None, None, None) => ImageError::MissingMultiboot2,
    }
}

#[cfg(test)]
mod tests;
