//! The checker against hand-built ELF files, each breaking one rule.

use super::*;

struct Note {
    name: &'static [u8],
    kind: u32,
    desc: Vec<u8>,
}

fn num(kind: u32, v: u64) -> Note {
    Note { name: b"Xen\0", kind, desc: v.to_le_bytes().to_vec() }
}
fn text(kind: u32, s: &str) -> Note {
    let mut desc = s.as_bytes().to_vec();
    desc.push(0);
    Note { name: b"Xen\0", kind, desc }
}

fn good_notes() -> Vec<Note> {
    vec![
        text(GUEST_OS, "Sirocco"),
        text(XEN_VERSION, "xen-3.0"),
        text(LOADER, "generic"),
        num(VIRT_BASE, 0),
        num(PADDR_OFFSET, 0),
        num(ENTRY, 0x10_0000),
        num(HYPERCALL_PAGE, 0x10_1000),
        text(FEATURES, "!writable_page_tables"),
    ]
}

/// An ELF64 executable with one text PT_LOAD at `text_vaddr` (0x3000 bytes from file offset 0x1000), one PT_NOTE
/// holding `notes`; 0x4000 bytes long.
fn elf(entry: u64, text_vaddr: u64, notes: &[Note]) -> Vec<u8> {
    let mut note_bytes = Vec::new();
    for n in notes {
        note_bytes.extend((n.name.len() as u32).to_le_bytes());
        note_bytes.extend((n.desc.len() as u32).to_le_bytes());
        note_bytes.extend(n.kind.to_le_bytes());
        note_bytes.extend(n.name);
        note_bytes.resize(note_bytes.len().next_multiple_of(4), 0);
        note_bytes.extend(&n.desc);
        note_bytes.resize(note_bytes.len().next_multiple_of(4), 0);
    }
    let mut f = vec![0u8; 0x1000];
    f[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1]);
    f[16..18].copy_from_slice(&2u16.to_le_bytes());
    f[18..20].copy_from_slice(&62u16.to_le_bytes());
    f[24..32].copy_from_slice(&entry.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&2u16.to_le_bytes());
    let ph = |f: &mut Vec<u8>, at: usize, kind: u32, flags: u32, off: u64, vaddr: u64, size: u64| {
        f[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        f[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
        f[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
        f[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
        f[at + 24..at + 32].copy_from_slice(&vaddr.to_le_bytes()); // p_paddr = p_vaddr, as linker.ld makes it
        f[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        f[at + 40..at + 48].copy_from_slice(&size.to_le_bytes());
    };
    ph(&mut f, 64, PT_LOAD, 5, 0x1000, text_vaddr, 0x3000);
    ph(&mut f, 120, PT_NOTE, 4, 0x800, 0, note_bytes.len() as u64);
    f[0x800..0x800 + note_bytes.len()].copy_from_slice(&note_bytes);
    f.resize(0x4000, 0x90);
    f
}

fn check_with(notes: Vec<Note>) -> Result<(), ImageError> {
    check_pv_image(&elf(0x10_0000, 0x10_0000, &notes)).map(|_| ())
}

#[test]
fn a_good_image_passes() {
    let bytes = elf(0x10_0000, 0x10_0000, &good_notes());
    let img = check_pv_image(&bytes).unwrap();
    assert_eq!(img.entry, 0x10_0000);
    assert_eq!(img.hypercall_page, 0x10_1000);
    assert_eq!(img.guest_os, "Sirocco");
    assert_eq!((img.file_bytes, img.memory_bytes), (0x3000, 0x3000));
}

#[test]
fn each_required_note_is_required() {
    for (kind, name) in [
        (ENTRY, "ENTRY"),
        (HYPERCALL_PAGE, "HYPERCALL_PAGE"),
        (VIRT_BASE, "VIRT_BASE"),
        (PADDR_OFFSET, "PADDR_OFFSET"),
        (XEN_VERSION, "XEN_VERSION"),
        (GUEST_OS, "GUEST_OS"),
        (LOADER, "LOADER"),
        (FEATURES, "FEATURES"),
    ] {
        let notes = good_notes().into_iter().filter(|n| n.kind != kind).collect();
        assert_eq!(check_with(notes), Err(ImageError::MissingNote { note: name }));
    }
}

#[test]
fn notes_with_another_name_are_ignored() {
    let mut notes = good_notes();
    notes.retain(|n| n.kind != ENTRY);
    notes.push(Note { name: b"GNU\0", kind: ENTRY, desc: 0x10_0000u64.to_le_bytes().to_vec() });
    assert_eq!(check_with(notes), Err(ImageError::MissingNote { note: "ENTRY" }));
}

fn replace(kind: u32, with: Note) -> Vec<Note> {
    let mut n: Vec<Note> = good_notes().into_iter().filter(|n| n.kind != kind).collect();
    n.push(with);
    n
}

#[test]
fn wrong_values_are_named() {
    let bad = |r: Result<(), ImageError>, note: &str| match r {
        Err(ImageError::BadNote { note: n, .. }) => assert_eq!(n, note),
        other => panic!("{note}: {other:?}"),
    };
    bad(check_with(replace(ENTRY, num(ENTRY, 0x10_0010))), "ENTRY");
    bad(check_with(replace(HYPERCALL_PAGE, num(HYPERCALL_PAGE, 0x10_1008))), "HYPERCALL_PAGE");
    bad(check_with(replace(HYPERCALL_PAGE, num(HYPERCALL_PAGE, 0x20_0000))), "HYPERCALL_PAGE");
    bad(check_with(replace(VIRT_BASE, num(VIRT_BASE, 0xffff_ffff_8000_0000))), "VIRT_BASE");
    bad(check_with(replace(PADDR_OFFSET, num(PADDR_OFFSET, 0x1000))), "PADDR_OFFSET");
    bad(check_with(replace(XEN_VERSION, text(XEN_VERSION, "xen-4.0"))), "XEN_VERSION");
    bad(check_with(replace(LOADER, text(LOADER, "elf"))), "LOADER");
    bad(check_with(replace(FEATURES, text(FEATURES, "writable_page_tables"))), "FEATURES");
    bad(check_with(replace(GUEST_OS, Note { name: b"Xen\0", kind: GUEST_OS, desc: b"no nul".to_vec() })), "GUEST_OS");
    bad(check_with(replace(VIRT_BASE, Note { name: b"Xen\0", kind: VIRT_BASE, desc: vec![0; 3] })), "VIRT_BASE");
}

#[test]
fn feature_lists_are_split_on_bars() {
    assert!(check_with(replace(FEATURES, text(FEATURES, "pae_pgdir_above_4gb|!writable_page_tables"))).is_ok());
}

#[test]
fn a_segment_on_page_zero_is_refused() {
    let bytes = elf(0x0, 0x0, &replace(ENTRY, num(ENTRY, 0)));
    let r = check_pv_image(&bytes);
    assert!(matches!(r, Err(ImageError::BadSegment { vaddr: 0, .. })), "{r:?}");
}

#[test]
fn not_an_elf_and_truncation() {
    assert_eq!(check_pv_image(&[b'M'; 64]), Err(ImageError::NotElf64X86));
    assert_eq!(check_pv_image(&[0x7f, b'E']), Err(ImageError::Truncated { what: "ELF header" }));
    let mut f = elf(0x10_0000, 0x10_0000, &good_notes());
    // Claim a note segment far longer than the file.
    f[120 + 32..120 + 40].copy_from_slice(&0x10_0000u64.to_le_bytes());
    assert!(matches!(check_pv_image(&f), Err(ImageError::Truncated { .. })));
    let mut g = elf(0x10_0000, 0x10_0000, &good_notes());
    g[18] = 3; // EM_386
    assert_eq!(check_pv_image(&g), Err(ImageError::NotElf64X86));
}

// The PVH and multiboot2 entries (`check_boot_entries`).

/// Where the text segment starts in the file and in memory, in every image below.
const TEXT_OFFSET: usize = 0x1000;
const TEXT: u64 = 0x10_0000;

/// A multiboot2 header: magic, architecture 0, `length`, checksum; then `tags` as given.
fn mb2_header_with(length: u32, tags: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for v in [MULTIBOOT2_MAGIC, 0, length, 0u32.wrapping_sub(MULTIBOOT2_MAGIC.wrapping_add(length))] {
        h.extend(v.to_le_bytes());
    }
    h.extend(tags);
    h
}
fn entry_tag(entry: u32) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(3u16.to_le_bytes());
    t.extend(0u16.to_le_bytes());
    t.extend(12u32.to_le_bytes());
    t.extend(entry.to_le_bytes());
    t.extend([0; 4]); // to the next 8-byte boundary
    t
}
fn tag(kind: u16, flags: u16, size: u32) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(kind.to_le_bytes());
    t.extend(flags.to_le_bytes());
    t.extend(size.to_le_bytes());
    t.resize((size as usize).next_multiple_of(8), 0);
    t
}
/// The header `boot/src/hvm/entry.rs` emits: an entry-address tag for `entry`, then the end tag.
fn mb2_header(entry: u32) -> Vec<u8> {
    let tags = [entry_tag(entry), tag(0, 0, 8)].concat();
    mb2_header_with(16 + tags.len() as u32, &tags)
}
/// `f` with `bytes` written at file offset `at`, grown with zeros if need be.
fn put(mut f: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
    if f.len() < at + bytes.len() {
        f.resize(at + bytes.len(), 0);
    }
    f[at..at + bytes.len()].copy_from_slice(bytes);
    f
}
/// A PV image with a PHYS32_ENTRY note `pvh` (none if `None`) and no multiboot2 header.
fn pvh_image(pvh: Option<Note>) -> Vec<u8> {
    let mut notes = good_notes();
    notes.extend(pvh);
    elf(TEXT, TEXT, &notes)
}
/// A good image for all three modes: the PVH entry at 0x10_0040, the multiboot2 header first in .text with its entry
/// at 0x10_0030.
fn good_boot_image() -> Vec<u8> {
    put(pvh_image(Some(num(PHYS32_ENTRY, 0x10_0040))), TEXT_OFFSET, &mb2_header(0x10_0030))
}
/// `check_boot_entries` on the good image's notes with a multiboot2 header `h` at file offset `at`.
fn with_mb2(at: usize, h: &[u8]) -> Result<BootEntries, ImageError> {
    check_boot_entries(&put(pvh_image(Some(num(PHYS32_ENTRY, 0x10_0040))), at, h))
}
fn bad_mb2(r: Result<BootEntries, ImageError>, offset: u64, why: &str) {
    match r {
        Err(ImageError::BadMultiboot2 { offset: o, why: w }) if o == offset && w.contains(why) => {}
        other => panic!("expected a bad multiboot2 header at {offset:#x} ({why}), got {other:?}"),
    }
}

#[test]
fn a_good_image_has_both_entries() {
    let bytes = good_boot_image();
    assert!(check_pv_image(&bytes).is_ok());
    let e = check_boot_entries(&bytes).unwrap();
    assert_eq!(e, BootEntries { pvh_entry: 0x10_0040, multiboot2_entry: 0x10_0030, multiboot2_offset: 0x1000 });
}

#[test]
fn the_pvh_entry_note_is_required() {
    let r = check_boot_entries(&put(pvh_image(None), TEXT_OFFSET, &mb2_header(0x10_0030)));
    assert_eq!(r, Err(ImageError::MissingNote { note: "PHYS32_ENTRY" }));
}

#[test]
fn the_pvh_entry_may_be_four_bytes() {
    let note = Note { name: b"Xen\0", kind: PHYS32_ENTRY, desc: 0x10_0040u32.to_le_bytes().to_vec() };
    let r = check_boot_entries(&put(pvh_image(Some(note)), TEXT_OFFSET, &mb2_header(0x10_0030)));
    assert_eq!(r.map(|e| e.pvh_entry), Ok(0x10_0040));
}

#[test]
fn the_pvh_entry_is_below_4_gib_in_executable_file_bytes() {
    let check =
        |v: u64| check_boot_entries(&put(pvh_image(Some(num(PHYS32_ENTRY, v))), TEXT_OFFSET, &mb2_header(0x10_0030)));
    let bad = |r: Result<BootEntries, ImageError>, why: &str| match r {
        Err(ImageError::BadNote { note: "PHYS32_ENTRY", why: w }) if w.contains(why) => {}
        other => panic!("{why}: {other:?}"),
    };
    bad(check(0x1_0010_0040), "4 GiB");
    bad(check(TEXT + 0x3000), "executable");
    bad(check(0x800), "executable"); // the notes' file offset, not a loaded address
    let short = Note { name: b"Xen\0", kind: PHYS32_ENTRY, desc: vec![0x40, 0, 0x10] };
    bad(check_boot_entries(&put(pvh_image(Some(short)), TEXT_OFFSET, &mb2_header(0x10_0030))), "not a number");
    // In the segment's memory but past its file bytes (in .bss): nothing to run there.
    let mut f = put(pvh_image(Some(num(PHYS32_ENTRY, TEXT + 0x2000))), TEXT_OFFSET, &mb2_header(0x10_0030));
    f[64 + 32..64 + 40].copy_from_slice(&0x1000u64.to_le_bytes());
    bad(check_boot_entries(&f), "file bytes");
}

#[test]
fn a_missing_multiboot2_header_is_named() {
    assert_eq!(check_boot_entries(&pvh_image(Some(num(PHYS32_ENTRY, 0x10_0040)))), Err(ImageError::MissingMultiboot2));
}

#[test]
fn the_header_is_8_byte_aligned_within_32_kib() {
    bad_mb2(with_mb2(0x1004, &mb2_header(0x10_0030)), 0x1004, "8-byte-aligned");
    bad_mb2(with_mb2(0x8000, &mb2_header(0x10_0030)), 0x8000, "first 32 KiB");
    // The last aligned slot whose 40 bytes fit, and the next one, whose end tag lies past 32 KiB.
    assert_eq!(with_mb2(0x8000 - 40, &mb2_header(0x10_0030)).map(|e| e.multiboot2_offset), Ok(0x8000 - 40));
    bad_mb2(with_mb2(0x8000 - 32, &mb2_header(0x10_0030)), 0x8000 - 32, "first 32 KiB");
}

#[test]
fn a_bad_checksum_or_architecture_is_refused() {
    let mut h = mb2_header(0x10_0030);
    h[12] ^= 1;
    bad_mb2(with_mb2(TEXT_OFFSET, &h), 0x1000, "checksum");
    let mut h = mb2_header(0x10_0030);
    h[4] = 4; // MIPS, with the checksum made to match
    let sum = u32::from_le_bytes(h[12..16].try_into().unwrap()).wrapping_sub(4);
    h[12..16].copy_from_slice(&sum.to_le_bytes());
    bad_mb2(with_mb2(TEXT_OFFSET, &h), 0x1000, "architecture");
}

#[test]
fn header_length_must_fit_and_end_at_the_end_tag() {
    let tags = [entry_tag(0x10_0030), tag(0, 0, 8)].concat();
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header_with(0x8000, &tags)), 0x1000, "first 32 KiB");
    let past_eof = with_mb2(TEXT_OFFSET, &mb2_header_with(0x3100, &tags)); // the file is 0x4000 bytes
    assert_eq!(past_eof, Err(ImageError::Truncated { what: "multiboot2 header" }));
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header_with(16, &[])), 0x1000, "shorter than the header");
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header_with(48, &tags)), 0x1000, "does not end at the end tag");
    // header_length stops short of the end tag, or there is none.
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header_with(32, &tags)), 0x1000, "no end tag");
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header_with(32, &entry_tag(0x10_0030))), 0x1000, "no end tag");
    // header_length claims a tag after the entry-address tag, and what follows (.text's filler) is no tag.
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header_with(40, &entry_tag(0x10_0030))), 0x1000, "runs past header_length");
    let long_end = [entry_tag(0x10_0030), tag(0, 0, 16)].concat();
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header_with(48, &long_end)), 0x1000, "end tag's size");
}

#[test]
fn tags_are_walked_as_grub_walks_them() {
    // An optional unknown tag and a known one (console flags) are passed over.
    let tags = [tag(4, 0, 12), tag(0x40, 1, 20), entry_tag(0x10_0030), tag(0, 0, 8)].concat();
    let ok = with_mb2(TEXT_OFFSET, &mb2_header_with(16 + tags.len() as u32, &tags));
    assert_eq!(ok.map(|e| e.multiboot2_entry), Ok(0x10_0030));
    let tags = [tag(0x40, 0, 8), entry_tag(0x10_0030), tag(0, 0, 8)].concat();
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header_with(16 + tags.len() as u32, &tags)), 0x1000, "does not know");
    let tags = [tag(4, 0, 4), tag(0, 0, 8)].concat();
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header_with(16 + tags.len() as u32, &tags)), 0x1000, "shorter than 8");
    let tags = [tag(4, 0, 12), tag(0, 0, 8)].concat();
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header_with(16 + tags.len() as u32, &tags)), 0x1000, "entry-address tag");
    let mut short_entry = entry_tag(0x10_0030);
    short_entry[4] = 16;
    let tags = [short_entry, vec![0; 8], tag(0, 0, 8)].concat();
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header_with(16 + tags.len() as u32, &tags)), 0x1000, "size is not 12");
}

#[test]
fn the_multiboot2_entry_is_in_executable_file_bytes() {
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header(0x20_0000)), 0x1000, "executable");
    bad_mb2(with_mb2(TEXT_OFFSET, &mb2_header(0x1000)), 0x1000, "executable"); // a file offset, not an address
                                                                               // The text segment made read-only: the entry is loaded, but not executable.
    let mut f = good_boot_image();
    f[64 + 4..64 + 8].copy_from_slice(&4u32.to_le_bytes());
    let r = check_boot_entries(&f);
    assert!(matches!(r, Err(ImageError::BadNote { note: "PHYS32_ENTRY", .. })), "{r:?}");
    // Only the entry's page kept in the file; the rest of the segment zero-filled memory.
    let mut f = put(pvh_image(Some(num(PHYS32_ENTRY, 0x10_0040))), TEXT_OFFSET, &mb2_header(0x10_2000));
    f[64 + 32..64 + 40].copy_from_slice(&0x1000u64.to_le_bytes());
    bad_mb2(check_boot_entries(&f), 0x1000, "file bytes");
}

#[test]
fn boot_entry_errors_read_well() {
    let e = ImageError::BadMultiboot2 { offset: 0x1004, why: "not at an 8-byte-aligned file offset" };
    assert_eq!(e.to_string(), "multiboot2 header at file offset 0x1004: not at an 8-byte-aligned file offset");
    assert_eq!(ImageError::MissingMultiboot2.to_string(), "no multiboot2 header (magic 0xe85250d6) in the file");
}
