//! The identity-map builder on heap table pages pre-filled with garbage, so a page the builder relies on without
//! writing shows. Maps are checked through `translate`, whose own walk is checked against hand-made tables, and
//! through the raw entries (flags, table addresses).

use super::*;

const GARBAGE: u64 = 0xdead_beef_cafe_f00d;
const MIB: u64 = 1 << 20;
const PHYS_BASE: u64 = 0x20_0000;

fn garbage_pages(n: usize) -> Vec<[u64; ENTRIES]> {
    vec![[GARBAGE; ENTRIES]; n]
}

/// Builds into `n` garbage pages at `PHYS_BASE`.
fn build(n: usize, limit: u64, holes: &[u64]) -> (Vec<[u64; ENTRIES]>, Result<IdentityMap, IdentityError>) {
    let mut pages = garbage_pages(n);
    let result =
        build_identity(TablePages { pages: &mut pages, phys_base: PHYS_BASE }, limit, holes, &Protection::NONE);
    (pages, result)
}

fn tr(pages: &[[u64; ENTRIES]], map: &IdentityMap, va: u64) -> Option<u64> {
    translate(pages, PHYS_BASE, map.root, va)
}

/// Checks every 4 KiB page below `limit` (in 2 MiB blocks without holes, three samples per block) and a few
/// addresses above it against the model: identity unless a hole, nothing at or above `limit`.
fn check_model(pages: &[[u64; ENTRIES]], map: &IdentityMap, limit: u64, holes: &[u64]) {
    let is_hole = |va: u64| holes.contains(&(va & !(PAGE_SIZE - 1)));
    for block in 0..limit / LARGE_PAGE_SIZE {
        let start = block * LARGE_PAGE_SIZE;
        let has_hole = holes.iter().any(|&h| h / LARGE_PAGE_SIZE == block);
        let samples: Vec<u64> = if has_hole {
            (0..ENTRIES as u64).flat_map(|i| [start + i * PAGE_SIZE, start + i * PAGE_SIZE + 0xfff]).collect()
        } else {
            vec![start, start + 0x12_3456, start + LARGE_PAGE_SIZE - 1]
        };
        for va in samples {
            let expected = (!is_hole(va)).then_some(va);
            assert_eq!(tr(pages, map, va), expected, "va {va:#x}");
        }
    }
    for va in [limit, limit + PAGE_SIZE, limit + LARGE_PAGE_SIZE, MAX_LIMIT - 1, MAX_LIMIT, 1 << 46] {
        if va >= limit {
            assert_eq!(tr(pages, map, va), None, "va {va:#x} at or above limit {limit:#x}");
        }
    }
}

#[test]
fn four_gib_with_null_and_guard_holes() {
    let limit = 4 << 30;
    let holes = [0, 0x2f_3000];
    assert_eq!(tables_needed(limit, &holes, &Protection::NONE), 2 + 4 + 2);
    let (pages, result) = build(16, limit, &holes);
    let map = result.unwrap();
    assert_eq!(map, IdentityMap { root: PHYS_BASE, tables_used: 8, pages_2m: 2048 - 2, pages_4k: 2 * 512 - 2 });
    check_model(&pages, &map, limit, &holes);

    // The holes and their neighbours, byte by byte at the edges.
    for (va, mapped) in [
        (0, false),
        (0xfff, false),
        (0x1000, true),
        (0x2f_2fff, true),
        (0x2f_3000, false),
        (0x2f_3fff, false),
        (0x2f_4000, true),
        (limit - 1, true),
        (limit, false),
    ] {
        assert_eq!(tr(&pages, &map, va), mapped.then_some(va), "va {va:#x}");
    }
    // The upper half and non-canonical addresses are not mapped.
    for va in [0xffff_8000_0000_0000, 0xffff_ffff_ffff_f000, 0x0000_8000_0000_0000, 0x0001_0000_0000_0000] {
        assert_eq!(tr(&pages, &map, va), None, "va {va:#x}");
    }
    // Pages after the ones used are untouched.
    assert!(pages[8..].iter().all(|p| p.iter().all(|&e| e == GARBAGE)));
}

#[test]
fn every_entry_has_the_right_flags() {
    let limit = (4 << 30) + 6 * MIB;
    let holes = [0, 0x2f_3000, limit - PAGE_SIZE];
    let (pages, result) = build(16, limit, &holes);
    let map = result.unwrap();
    let tables = PHYS_BASE..PHYS_BASE + map.tables_used as u64 * PAGE_SIZE;
    let directories = 2..2 + 5;
    let mut seen_2m = 0;
    let mut seen_4k = 0;
    for (i, page) in pages[..map.tables_used].iter().enumerate() {
        for (index, &entry) in page.iter().enumerate() {
            if entry == 0 {
                continue;
            }
            assert_eq!(entry & pte::USER, 0, "USER in table {i} entry {index}");
            assert_eq!(entry >> 52, 0, "NX or high bits in table {i} entry {index}");
            let flags = entry & !pte::FRAME_MASK;
            if directories.contains(&i) && entry & pte::PSE != 0 {
                assert_eq!(flags, LEAF_FLAGS | pte::PSE);
                assert_eq!(entry & pte::FRAME_MASK, ((i - 2) * ENTRIES + index) as u64 * LARGE_PAGE_SIZE);
                seen_2m += 1;
            } else if i < 7 {
                // PML4, PDPT, or a directory entry pointing at a page table.
                assert_eq!(flags, TABLE_FLAGS, "table {i} entry {index}");
                assert!(tables.contains(&(entry & pte::FRAME_MASK)), "table {i} entry {index} points outside");
            } else {
                // Page tables: 4 KiB leaves, bit 7 (PAT here) clear.
                assert_eq!(flags, LEAF_FLAGS, "table {i} entry {index}");
                seen_4k += 1;
            }
        }
    }
    assert_eq!((seen_2m, seen_4k), (map.pages_2m, map.pages_4k));
    // Three holes in three blocks.
    assert_eq!((map.pages_2m, map.pages_4k), (limit / LARGE_PAGE_SIZE - 3, 3 * 512 - 3));
    // Only one PML4 entry.
    assert!(pages[0][1..].iter().all(|&e| e == 0));
    assert_eq!(pages[0][0], (PHYS_BASE + PAGE_SIZE) | TABLE_FLAGS);
    check_model(&pages, &map, limit, &holes);
}

#[test]
fn duplicate_holes_count_once() {
    let limit = 1 << 30;
    let holes = [0x2f_3000, 0, 0x2f_3000, 0x2f_3000, 0];
    assert_eq!(tables_needed(limit, &holes, &Protection::NONE), 2 + 1 + 2);
    let (pages, result) = build(8, limit, &holes);
    let map = result.unwrap();
    let (reference, reference_map) = build(8, limit, &[0, 0x2f_3000]);
    assert_eq!(map, reference_map.unwrap());
    assert_eq!(pages, reference);
    assert_eq!(map.pages_4k, 2 * 512 - 2);
}

#[test]
fn holes_in_one_block_share_a_table() {
    let limit = 1 << 30;
    let holes = [0x40_0000, 0x5f_f000, 0x41_0000];
    assert_eq!(tables_needed(limit, &holes, &Protection::NONE), 2 + 1 + 1);
    let (pages, result) = build(4, limit, &holes);
    let map = result.unwrap();
    assert_eq!((map.tables_used, map.pages_2m, map.pages_4k), (4, 511, 512 - 3));
    check_model(&pages, &map, limit, &holes);
}

#[test]
fn holes_at_or_above_limit_are_ignored() {
    let limit = 4 << 30;
    let holes = [0, limit, limit + 0x1000, 5 << 30, MAX_LIMIT + 0x1000];
    assert_eq!(tables_needed(limit, &holes, &Protection::NONE), tables_needed(limit, &[0], &Protection::NONE));
    let (pages, result) = build(8, limit, &holes);
    let (reference, reference_map) = build(8, limit, &[0]);
    assert_eq!(result, reference_map);
    assert_eq!(pages, reference);
}

#[test]
fn limit_not_a_multiple_of_a_gib() {
    let limit = (1 << 30) + LARGE_PAGE_SIZE;
    let (pages, result) = build(4, limit, &[]);
    let map = result.unwrap();
    assert_eq!(map, IdentityMap { root: PHYS_BASE, tables_used: 4, pages_2m: 513, pages_4k: 0 });
    // The second directory has its first entry only.
    assert!(pages[3][1..].iter().all(|&e| e == 0));
    check_model(&pages, &map, limit, &[]);
}

#[test]
fn smallest_and_largest_limits() {
    let (pages, result) = build(3, LARGE_PAGE_SIZE, &[]);
    let map = result.unwrap();
    assert_eq!((map.tables_used, map.pages_2m), (3, 1));
    check_model(&pages, &map, LARGE_PAGE_SIZE, &[]);

    let holes = [0, MAX_LIMIT - PAGE_SIZE];
    assert_eq!(tables_needed(MAX_LIMIT, &holes, &Protection::NONE), 2 + 512 + 2);
    let (pages, result) = build(2 + 512 + 2, MAX_LIMIT, &holes);
    let map = result.unwrap();
    assert_eq!((map.pages_2m, map.pages_4k), (512 * 512 - 2, 2 * 512 - 2));
    for va in [PAGE_SIZE, 300 << 30, MAX_LIMIT - PAGE_SIZE - 1] {
        assert_eq!(tr(&pages, &map, va), Some(va));
    }
    for va in [0, MAX_LIMIT - PAGE_SIZE, MAX_LIMIT - 1, MAX_LIMIT] {
        assert_eq!(tr(&pages, &map, va), None, "va {va:#x}");
    }
}

#[test]
fn bad_limits_are_refused_untouched() {
    for limit in [0, PAGE_SIZE, LARGE_PAGE_SIZE + PAGE_SIZE, (4 << 30) - 1, MAX_LIMIT + LARGE_PAGE_SIZE, u64::MAX] {
        let (pages, result) = build(1024, limit, &[0]);
        assert_eq!(result, Err(IdentityError::BadLimit(limit)));
        assert_eq!(pages, garbage_pages(1024), "limit {limit:#x} wrote to the tables");
    }
}

#[test]
fn misaligned_holes_are_refused() {
    for hole in [1, 0x2f_3008, (8 << 30) + 0x800] {
        let (pages, result) = build(16, 4 << 30, &[0, hole]);
        assert_eq!(result, Err(IdentityError::Misaligned(hole)));
        assert_eq!(pages, garbage_pages(16));
    }
}

#[test]
fn too_few_tables_is_an_error_not_a_partial_map() {
    let limit = 4 << 30;
    let holes = [0, 0x2f_3000];
    let needed = tables_needed(limit, &holes, &Protection::NONE);
    for n in 0..needed {
        let (pages, result) = build(n, limit, &holes);
        assert_eq!(result, Err(IdentityError::OutOfTables { needed_at_least: needed }), "{n} pages");
        assert_eq!(pages, garbage_pages(n));
    }
    assert!(build(needed, limit, &holes).1.is_ok());
}

#[test]
fn table_area_must_be_aligned_and_addressable() {
    let limit = 4 << 30;
    let needed = tables_needed(limit, &[0], &Protection::NONE) as u64;
    let attempt = |phys_base: u64| {
        let mut pages = garbage_pages(needed as usize);
        let result = build_identity(TablePages { pages: &mut pages, phys_base }, limit, &[0], &Protection::NONE);
        (pages, result)
    };
    for phys_base in [PHYS_BASE + 8, MAX_PHYS - (needed - 1) * PAGE_SIZE, MAX_PHYS, u64::MAX - PAGE_SIZE + 1] {
        let (pages, result) = attempt(phys_base);
        assert_eq!(result, Err(IdentityError::BadTableAddress(phys_base)));
        assert_eq!(pages, garbage_pages(needed as usize));
    }
    // The highest place the tables fit, and physical 0.
    for phys_base in [MAX_PHYS - needed * PAGE_SIZE, 0] {
        let (pages, result) = attempt(phys_base);
        let map = result.unwrap();
        assert_eq!(map.root, phys_base);
        assert_eq!(translate(&pages, phys_base, map.root, 0x1234_5678), Some(0x1234_5678));
        assert_eq!(translate(&pages, phys_base, map.root, 0x123), None);
    }
}

#[test]
fn tables_needed_matches_the_build() {
    let cases: &[(u64, &[u64])] = &[
        (LARGE_PAGE_SIZE, &[]),
        (LARGE_PAGE_SIZE, &[0]),
        (1 << 30, &[0, 0x1000, 0x2000]),
        ((1 << 30) + LARGE_PAGE_SIZE, &[(1 << 30) + 0x1000]),
        (3 << 30, &[(1 << 30) - PAGE_SIZE, 1 << 30, (2 << 30) - PAGE_SIZE]),
        (64 << 30, &[0, 0x2f_3000, 63 << 30, 64 << 30]),
    ];
    for &(limit, holes) in cases {
        let needed = tables_needed(limit, holes, &Protection::NONE);
        let (pages, result) = build(needed + 3, limit, holes);
        let map = result.unwrap();
        assert_eq!(map.tables_used, needed, "limit {limit:#x} holes {holes:x?}");
        check_model(&pages, &map, limit, holes);
    }
}

#[test]
fn scattered_holes_match_the_model() {
    // A fixed pseudo-random scatter of holes over 2 GiB, some clustered in the same blocks.
    let limit = 2 << 30;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut holes = vec![];
    for _ in 0..40 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let page = (state % (limit / PAGE_SIZE)) * PAGE_SIZE;
        holes.push(page);
        holes.push(page ^ 0x3000); // a neighbour in the same block
    }
    let needed = tables_needed(limit, &holes, &Protection::NONE);
    let (pages, result) = build(needed, limit, &holes);
    let map = result.unwrap();
    let mut distinct = holes.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let mut blocks: Vec<u64> = distinct.iter().map(|h| h / LARGE_PAGE_SIZE).collect();
    blocks.dedup();
    assert_eq!(needed, 2 + 2 + blocks.len());
    assert_eq!(map.pages_4k, blocks.len() as u64 * 512 - distinct.len() as u64);
    check_model(&pages, &map, limit, &holes);
}

#[test]
fn tables_needed_is_usable_in_a_const() {
    const LIMIT: u64 = 4 << 30;
    const NEEDED: usize = tables_needed(LIMIT, &[0, 0x2f_3000], &Protection::NONE);
    static TABLES: [[u64; ENTRIES]; NEEDED] = [[0; ENTRIES]; NEEDED];
    assert_eq!(TABLES.len(), 8);
}

/// Hand-made tables exercising what `build_identity` never writes: 1 GiB pages, a PS bit in the PML4, entries
/// pointing outside the tables.
#[test]
fn translate_walks_by_the_architecture() {
    let base = 0x10_0000;
    let mut t = vec![[0u64; ENTRIES]; 4];
    t[0][0] = (base + PAGE_SIZE) | TABLE_FLAGS;
    t[0][1] = 0x80_0000_0000 | LEAF_FLAGS | pte::PSE; // reserved in a PML4 entry
    t[0][2] = 0x7000_0000 | TABLE_FLAGS; // outside the tables
    t[1][0] = 0x1_4000_0000 | LEAF_FLAGS | pte::PSE; // 1 GiB page at 5 GiB
    t[1][1] = (base + 2 * PAGE_SIZE) | TABLE_FLAGS;
    t[2][0] = (base + 3 * PAGE_SIZE) | TABLE_FLAGS;
    t[2][1] = 0x20_0000 | LEAF_FLAGS | pte::PSE | (1 << 12); // 2 MiB page, with the PAT bit
    t[3][5] = 0xabc_d000 | LEAF_FLAGS | (1 << 7); // 4 KiB page, with the PAT bit (bit 7 in a PTE)
    let tr = |root: u64, va: u64| translate(&t, base, root, va);
    assert_eq!(tr(base, 0x1234_5678), Some(0x1_4000_0000 + 0x1234_5678));
    assert_eq!(tr(base, (1 << 30) + (2 << 20) + 0x1_2345), Some(0x20_0000 + 0x1_2345));
    assert_eq!(tr(base, (1 << 30) + 5 * PAGE_SIZE + 0x321), Some(0xabc_d321));
    assert_eq!(tr(base, (1 << 30) + 6 * PAGE_SIZE), None);
    assert_eq!(tr(base, 1 << 39), None, "PS in a PML4 entry");
    assert_eq!(tr(base, 2 << 39), None, "table outside the pages");
    assert_eq!(tr(base, 2 << 30), None, "not present in the PDPT");
    assert_eq!(tr(base, 3 << 39), None, "not present");
    for root in [0, base - PAGE_SIZE, base + 4 * PAGE_SIZE, base + 8] {
        assert_eq!(tr(root, 0x1234), None, "root {root:#x}");
    }
}

#[test]
fn errors_say_what_failed() {
    assert_eq!(
        IdentityError::OutOfTables { needed_at_least: 8 }.to_string(),
        "identity map needs 8 table pages, fewer were given"
    );
    assert!(IdentityError::BadLimit(0x1000).to_string().contains("0x1000"));
    assert!(IdentityError::Misaligned(0x2f_3008).to_string().contains("0x2f3008"));
    assert!(IdentityError::BadTableAddress(0x10_0008).to_string().contains("0x100008"));
}

#[test]
fn the_image_is_mapped_write_xor_execute() {
    // Code 1 MiB..1.5 MiB, read-only data up to 2.25 MiB (so the image spans two 2 MiB blocks), 1 GiB of RAM.
    let p = Protection { text: (MIB, MIB + MIB / 2), rodata: (MIB + MIB / 2, 2 * MIB + MIB / 4), nx: true };
    let (limit, holes) = (1 << 30, [0, 0x30_0000]);
    let needed = tables_needed(limit, &holes, &p);
    assert_eq!(needed, 2 + 1 + 2, "both blocks split (the second for the hole and the rodata together)");
    let mut pages = garbage_pages(needed);
    let map = build_identity(TablePages { pages: &mut pages, phys_base: PHYS_BASE }, limit, &holes, &p).unwrap();
    assert_eq!(map.tables_used, needed);
    let flags = |va: u64| leaf_entry(&pages, PHYS_BASE, map.root, va).map(|e| e & (pte::RW | pte::NX | pte::PSE));
    assert_eq!(flags(0), None, "page 0 stays a hole");
    assert_eq!(flags(0x1000), Some(pte::RW | pte::NX), "low memory is data");
    assert_eq!(flags(MIB), Some(0), "code: read-only, executable");
    assert_eq!(flags(MIB + MIB / 2 - 1), Some(0));
    assert_eq!(flags(MIB + MIB / 2), Some(pte::NX), "read-only data");
    assert_eq!(flags(2 * MIB + MIB / 4 - 1), Some(pte::NX));
    assert_eq!(flags(2 * MIB + MIB / 4), Some(pte::RW | pte::NX), "data after the image");
    assert_eq!(flags(0x30_0000), None, "the guard page stays a hole");
    assert_eq!(flags(4 * MIB), Some(pte::RW | pte::NX | pte::PSE), "the rest: 2 MiB data pages");
    for va in [0x1000, MIB, 2 * MIB + 0x5000, 4 * MIB + 0x123, limit - 1] {
        assert_eq!(tr(&pages, &map, va), Some(va), "still the identity at {va:#x}");
    }
    // Without NX only the read-only bits differ; no protection at all is the old map.
    let plain = Protection { nx: false, ..p };
    let mut pages = garbage_pages(needed);
    let map = build_identity(TablePages { pages: &mut pages, phys_base: PHYS_BASE }, limit, &holes, &plain).unwrap();
    assert_eq!(leaf_entry(&pages, PHYS_BASE, map.root, MIB + MIB / 2).unwrap() & (pte::RW | pte::NX), 0);
    assert_eq!(leaf_entry(&pages, PHYS_BASE, map.root, 4 * MIB).unwrap() & (pte::RW | pte::NX), pte::RW);
    assert_eq!(tables_needed(limit, &holes, &Protection::NONE), 2 + 1 + 2);
    assert_eq!(tables_needed(limit, &[0], &Protection::NONE), 2 + 1 + 1);
    assert_eq!(tables_needed(limit, &[0], &p), 2 + 1 + 2, "the image's second block is split for the image alone");
}
