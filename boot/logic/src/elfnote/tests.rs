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

/// An ELF64 executable with one text PT_LOAD at `text_vaddr` (0x3000 bytes), one PT_NOTE holding `notes`.
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
