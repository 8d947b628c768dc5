//! The builder against a fake of Xen's PV MMU. The fake enforces what Xen enforces for a PV guest: page tables
//! change only through `mmu_update`; a frame becomes a table only while nothing maps it writable and its contents
//! are valid (zeroed); a table frame can never be mapped writable; entries may only name the domain's own frames.
//! The p2m is a scrambled permutation so any pfn/mfn confusion shows.

use super::*;
use std::collections::{HashMap, HashSet};

const EINVAL: i64 = -22;

struct FakeXen {
    p2m: Vec<u64>,
    owned: HashSet<u64>,
    /// Contents of frames that hold known data: page tables and zeroed pages. Absent = arbitrary garbage.
    frames: HashMap<u64, Vec<u64>>,
    /// Frames typed as page tables, by level.
    level: HashMap<u64, u8>,
    root: u64,
    batch_sizes: Vec<usize>,
    /// Fail the call with this index (0-based) with EINVAL.
    fail_call: Option<usize>,
}

impl FakeXen {
    /// A domain of `nr_pages` whose start-of-day region maps pfns `0..boot_mapped`, with the bootstrap tables in
    /// consecutive frames from `pt_pfn`. Returns the fake and the first free pfn (just after the tables).
    fn boot(nr_pages: u64, boot_mapped: u64, pt_pfn: u64) -> (FakeXen, Pfn) {
        // A scrambled permutation of machine frames 0x80000.. (odd multiplier mod a power of two is a bijection).
        let n = nr_pages.next_power_of_two();
        let p2m: Vec<u64> = (0..nr_pages).map(|p| 0x80000 + ((p * 40503 + 17) % n)).collect();
        let owned = p2m.iter().copied().collect();
        let mut x = FakeXen {
            p2m,
            owned,
            frames: HashMap::new(),
            level: HashMap::new(),
            root: 0,
            batch_sizes: vec![],
            fail_call: None,
        };
        let l1_count = boot_mapped.div_ceil(ENTRIES as u64);
        let mut next = pt_pfn;
        let mut take = |x: &mut FakeXen, level: u8| {
            let mfn = x.p2m[next as usize];
            next += 1;
            x.frames.insert(mfn, vec![0; ENTRIES]);
            x.level.insert(mfn, level);
            mfn
        };
        let l4 = take(&mut x, 4);
        let l3 = take(&mut x, 3);
        let l2 = take(&mut x, 2);
        x.root = l4;
        x.frames.get_mut(&l4).unwrap()[0] = (l3 << 12) | TABLE_FLAGS;
        x.frames.get_mut(&l3).unwrap()[0] = (l2 << 12) | TABLE_FLAGS;
        let tables_end = pt_pfn + 3 + l1_count;
        for i in 0..l1_count {
            let l1 = take(&mut x, 1);
            x.frames.get_mut(&l2).unwrap()[i as usize] = (l1 << 12) | TABLE_FLAGS;
            for j in 0..ENTRIES as u64 {
                let pfn = i * ENTRIES as u64 + j;
                if pfn >= boot_mapped {
                    break;
                }
                let flags = if (pt_pfn..tables_end).contains(&pfn) { READ_ONLY_FLAGS } else { DATA_FLAGS };
                x.frames.get_mut(&l1).unwrap()[j as usize] = (x.p2m[pfn as usize] << 12) | flags;
            }
        }
        (x, Pfn(tables_end))
    }

    /// Walks the fake tables: (mfn, writable) mapped at `va`.
    fn translate(&self, va: u64) -> Option<(u64, bool)> {
        self.leaf(va).map(|e| ((e & pte::FRAME_MASK) >> 12, e & pte::RW != 0))
    }

    /// Walks the fake tables: the present leaf entry mapping `va`.
    fn leaf(&self, va: u64) -> Option<u64> {
        let mut t = self.root;
        for level in [4u8, 3, 2, 1] {
            let e = self.frames[&t][table_index(va, level)];
            if e & pte::PRESENT == 0 {
                return None;
            }
            if level == 1 {
                return Some(e);
            }
            t = (e & pte::FRAME_MASK) >> 12;
        }
        unreachable!()
    }

    fn writable_mappings_of(&self, mfn: u64) -> usize {
        self.level
            .iter()
            .filter(|(_, &l)| l == 1)
            .flat_map(|(t, _)| self.frames[t].iter())
            .filter(|&&e| e & pte::PRESENT != 0 && e & pte::RW != 0 && (e & pte::FRAME_MASK) >> 12 == mfn)
            .count()
    }

    fn apply(&mut self, u: &MmuUpdate) -> Result<(), i64> {
        if u.ptr & 7 != 0 {
            return Err(EINVAL); // only MMU_NORMAL_PT_UPDATE is used
        }
        let table = u.ptr >> 12;
        let index = ((u.ptr & 0xfff) / 8) as usize;
        let level = *self.level.get(&table).ok_or(EINVAL)?; // not a page table: Xen refuses
        if u.val & pte::PRESENT != 0 {
            let target = (u.val & pte::FRAME_MASK) >> 12;
            if !self.owned.contains(&target) || u.val & pte::PSE != 0 {
                return Err(EINVAL);
            }
            if level == 1 {
                if u.val & pte::RW != 0 && self.level.contains_key(&target) {
                    return Err(EINVAL); // a page table may never be mapped writable
                }
            } else {
                match self.level.get(&target) {
                    Some(&l) if l == level - 1 => {}
                    Some(_) => return Err(EINVAL),
                    None => {
                        // Becoming a table: nothing may map it writable and its contents must be valid (zeroed).
                        if self.writable_mappings_of(target) != 0 {
                            return Err(EINVAL);
                        }
                        match self.frames.get(&target) {
                            Some(c) if c.iter().all(|&e| e == 0) => {}
                            _ => return Err(EINVAL),
                        }
                        self.level.insert(target, level - 1);
                    }
                }
            }
        }
        self.frames.get_mut(&table).unwrap()[index] = u.val;
        Ok(())
    }
}

impl PageTableOps for FakeXen {
    fn read_entry(&self, table: Mfn, index: usize) -> u64 {
        assert!(self.level.contains_key(&table.0), "read of mfn {:#x}, which is not a page table", table.0);
        self.frames[&table.0][index]
    }

    fn zero_page(&mut self, pfn: Pfn) {
        let mfn = self.p2m[pfn.0 as usize];
        match self.translate(pfn.vaddr()) {
            Some((m, true)) if m == mfn => {}
            other => panic!("zero_page({:#x}) through a missing or read-only mapping: {other:?}", pfn.0),
        }
        self.frames.insert(mfn, vec![0; ENTRIES]);
    }

    fn pfn_to_mfn(&self, pfn: Pfn) -> Mfn {
        Mfn(self.p2m.get(pfn.0 as usize).copied().unwrap_or(u64::MAX))
    }

    fn mmu_update(&mut self, updates: &[MmuUpdate]) -> Result<(), i64> {
        let call = self.batch_sizes.len();
        self.batch_sizes.push(updates.len());
        if self.fail_call == Some(call) {
            return Err(EINVAL);
        }
        updates.iter().try_for_each(|u| self.apply(u))
    }
}

fn request(x: &FakeXen, first_free: Pfn) -> MapRequest {
    MapRequest {
        root: Mfn(x.root),
        first_pfn: Pfn(0),
        nr_pages: x.p2m.len() as u64,
        first_free,
        nx: false,
        image: (Pfn(0), Pfn(0)),
    }
}

/// Every frame maps to its p2m machine frame; table frames read-only, everything else writable.
fn assert_all_mapped(x: &FakeXen) {
    for (pfn, &mfn) in x.p2m.iter().enumerate() {
        let (m, rw) = x.translate(pfn as u64 * 4096).unwrap_or_else(|| panic!("pfn {pfn:#x} not mapped"));
        assert_eq!(m, mfn, "pfn {pfn:#x} maps the wrong frame");
        assert_eq!(rw, !x.level.contains_key(&mfn), "pfn {pfn:#x}: writable iff not a page table");
    }
    for &t in x.level.keys() {
        assert_eq!(x.writable_mappings_of(t), 0, "table frame {t:#x} is mapped writable");
    }
}

#[test]
fn maps_every_page_of_a_32_mib_domain() {
    let (mut x, free) = FakeXen::boot(8192, 1024, 600);
    let mut batch = [MmuUpdate::default(); 512];
    let req = request(&x, free);
    let out = map_all(&mut x, &req, &mut batch).unwrap();
    assert_all_mapped(&x);
    assert_eq!(out.already_mapped, 1024);
    assert_eq!(out.pages_mapped, 8192 - 1024);
    // 16 leaf tables cover 32 MiB; the bootstrap had 2.
    assert_eq!(out.new_tables, [0, 14, 0, 0]);
    assert_eq!(out.next_free, Pfn(free.0 + 14));
    assert!(out.largest_batch <= 512);
    // One call per new table plus the leaf batches: far fewer than one per page.
    assert!(out.hypercalls <= 14 + 7168 / 512 + 2, "{} hypercalls", out.hypercalls);
}

#[test]
fn crossing_a_gigabyte_creates_an_l2_and_tables_keep_coming_from_mapped_frames() {
    let nr = (1 << 18) + 1024; // 1 GiB + 4 MiB
    let (mut x, free) = FakeXen::boot(nr, 1024, 600);
    let mut batch = [MmuUpdate::default(); 512];
    let req = request(&x, free);
    let out = map_all(&mut x, &req, &mut batch).unwrap();
    assert_all_mapped(&x);
    assert_eq!(out.new_tables, [0, 514 - 2, 1, 0]);
    assert_eq!(out.pages_mapped + out.already_mapped, nr);
}

#[test]
fn batches_never_exceed_the_buffer() {
    let (mut x, free) = FakeXen::boot(4096, 1024, 300);
    let mut batch = [MmuUpdate::default(); 16];
    let req = request(&x, free);
    let out = map_all(&mut x, &req, &mut batch).unwrap();
    assert_all_mapped(&x);
    assert!(x.batch_sizes.iter().all(|&n| (1..=16).contains(&n)), "{:?}", x.batch_sizes);
    assert_eq!(out.largest_batch, 16);
    let full = x.batch_sizes.iter().filter(|&&n| n == 16).count();
    assert!(full >= 3072 / 16 - 1, "leaf updates must go in full batches, got {full} full ones");
}

#[test]
fn a_second_run_changes_nothing() {
    let (mut x, free) = FakeXen::boot(2048, 1024, 200);
    let mut batch = [MmuUpdate::default(); 64];
    let req = request(&x, free);
    let first = map_all(&mut x, &req, &mut batch).unwrap();
    let calls = x.batch_sizes.len();
    let req = MapRequest { first_free: first.next_free, ..request(&x, free) };
    let again = map_all(&mut x, &req, &mut batch).unwrap();
    assert_eq!((again.pages_mapped, again.hypercalls), (0, 0));
    assert_eq!(again.already_mapped, 2048);
    assert_eq!(x.batch_sizes.len(), calls);
}

#[test]
fn first_pfn_leaves_low_frames_alone() {
    // Bootstrap maps 1024..2048 only (as if the image began at 4 MiB); map from 1024 up.
    let (mut x, free) = FakeXen::boot(4096, 2048, 1500);
    let l1 = (x.frames[&x.root][0] & pte::FRAME_MASK) >> 12;
    let l2 = (x.frames[&l1][0] & pte::FRAME_MASK) >> 12;
    let low_l1 = (x.frames[&l2][0] & pte::FRAME_MASK) >> 12;
    x.frames.get_mut(&low_l1).unwrap().iter_mut().for_each(|e| *e = 0);
    let req = MapRequest { first_pfn: Pfn(512), ..request(&x, free) };
    let mut batch = [MmuUpdate::default(); 128];
    map_all(&mut x, &req, &mut batch).unwrap();
    assert_eq!(x.translate(0), None);
    assert_eq!(x.translate(511 * 4096), None);
    assert!(x.translate(512 * 4096).is_some());
}

#[test]
fn no_mapped_slack_for_tables_is_a_clear_error() {
    // The start-of-day region ends right after the bootstrap tables: no mapped frame to make a table from.
    let (mut x, _) = FakeXen::boot(4096, 512, 505);
    let free = Pfn(512);
    let mut batch = [MmuUpdate::default(); 64];
    let req = request(&x, free);
    let err = map_all(&mut x, &req, &mut batch).unwrap_err();
    assert_eq!(err, PageTableError::FrameNotMapped { pfn: Pfn(512) });
    assert!(err.to_string().contains("not mapped"));
}

#[test]
fn running_out_of_frames_is_reported() {
    let (mut x, _) = FakeXen::boot(1536, 1024, 600);
    let req = MapRequest { first_free: Pfn(1536), ..request(&x, Pfn(0)) };
    let mut batch = [MmuUpdate::default(); 64];
    assert_eq!(map_all(&mut x, &req, &mut batch), Err(PageTableError::OutOfFrames { at: Pfn(1024) }));
}

#[test]
fn a_refused_hypercall_is_reported_with_its_batch() {
    let (mut x, free) = FakeXen::boot(8192, 1024, 600);
    x.fail_call = Some(3);
    let mut batch = [MmuUpdate::default(); 512];
    let req = request(&x, free);
    match map_all(&mut x, &req, &mut batch) {
        Err(PageTableError::Hypercall { errno: EINVAL, count, .. }) => assert_eq!(count, x.batch_sizes[3]),
        other => panic!("expected the refusal, got {other:?}"),
    }
}

#[test]
fn a_foreign_mapping_in_the_bootstrap_region_is_detected() {
    let (mut x, free) = FakeXen::boot(2048, 1024, 600);
    let l3 = (x.frames[&x.root][0] & pte::FRAME_MASK) >> 12;
    let l2 = (x.frames[&l3][0] & pte::FRAME_MASK) >> 12;
    let l1 = (x.frames[&l2][0] & pte::FRAME_MASK) >> 12;
    let wrong = x.p2m[7];
    x.frames.get_mut(&l1).unwrap()[5] = (wrong << 12) | DATA_FLAGS;
    let mut batch = [MmuUpdate::default(); 64];
    let req = request(&x, free);
    let err = map_all(&mut x, &req, &mut batch).unwrap_err();
    assert_eq!(err, PageTableError::UnexpectedMapping { pfn: Pfn(5), expected: Mfn(x.p2m[5]), found: Mfn(wrong) });
}

#[test]
fn a_p2m_hole_is_reported() {
    let (mut x, free) = FakeXen::boot(2048, 1024, 600);
    x.p2m[1500] = u64::MAX;
    let mut batch = [MmuUpdate::default(); 64];
    let req = request(&x, free);
    assert_eq!(map_all(&mut x, &req, &mut batch), Err(PageTableError::NoMachineFrame { pfn: Pfn(1500) }));
}

#[test]
fn tiny_batch_buffer_is_refused() {
    let (mut x, free) = FakeXen::boot(2048, 1024, 600);
    let mut batch = [MmuUpdate::default(); 1];
    let req = request(&x, free);
    assert_eq!(map_all(&mut x, &req, &mut batch), Err(PageTableError::BatchTooSmall));
}

/// The fake must reject what Xen rejects, or the tests above prove nothing.
#[test]
fn the_fake_enforces_read_only_before_link() {
    let (mut x, free) = FakeXen::boot(2048, 1024, 600);
    let new = x.p2m[free.0 as usize];
    x.zero_page(free);
    let l3 = (x.frames[&x.root][0] & pte::FRAME_MASK) >> 12;
    let l2 = (x.frames[&l3][0] & pte::FRAME_MASK) >> 12;
    // Linking while the frame is still mapped writable: refused.
    let link = MmuUpdate { ptr: (l2 << 12) + 2 * 8, val: (new << 12) | TABLE_FLAGS };
    assert_eq!(x.mmu_update(&[link]), Err(EINVAL));
    // Garbage (not zeroed) frame: refused even when read-only.
    let garbage = x.p2m[free.0 as usize + 1];
    let l1 = (x.frames[&l2][1] & pte::FRAME_MASK) >> 12;
    let ro = MmuUpdate { ptr: (l1 << 12) + ((free.0 + 1) % 512) * 8, val: (garbage << 12) | READ_ONLY_FLAGS };
    let link2 = MmuUpdate { ptr: (l2 << 12) + 3 * 8, val: (garbage << 12) | TABLE_FLAGS };
    assert_eq!(x.mmu_update(&[ro, link2]), Err(EINVAL));
    // Writing a page-table page directly (not through a table): refused.
    assert_eq!(x.mmu_update(&[MmuUpdate { ptr: new << 12, val: 0 }]), Err(EINVAL));
}

/// The leaf entry mapping `va` in the fake (which must be mapped).
fn leaf(x: &FakeXen, va: u64) -> u64 {
    x.leaf(va).unwrap_or_else(|| panic!("{va:#x} is not mapped"))
}

#[test]
fn protect_makes_code_read_only_and_everything_else_not_executable() {
    // 16 MiB, the start-of-day region 4 MiB; the "image" at 1 MiB: code 1-1.25 MiB, rodata 1.25-1.5, data to 2.
    let (mut x, free) = FakeXen::boot(4096, 1024, 600);
    let mut batch = [MmuUpdate::default(); 64];
    let req = MapRequest { nx: true, image: (Pfn(0x100), Pfn(0x200)), ..request(&x, free) };
    map_all(&mut x, &req, &mut batch).unwrap();
    let root = Mfn(x.root);
    let (text, rodata, data_end) = ((0x10_0000, 0x14_0000), (0x14_0000, 0x18_0000), 0x20_0000);
    let p = Protection { text, rodata, nx: true };
    assert_eq!(leaf(&x, text.0) & pte::NX, 0, "map_all leaves the image alone");
    let out = protect(&mut x, root, text.0, data_end, &p, &mut batch).unwrap();
    assert_eq!((out.pages, out.not_mapped), (256, 0));
    assert_eq!(out.hypercalls, 4, "256 updates in batches of 64");
    for (va, rw, nx) in [
        (0x10_0000, false, false),
        (0x13_f000, false, false),
        (0x14_0000, false, true),
        (0x17_f000, false, true),
        (0x18_0000, true, true),
        (0x1f_f000, true, true),
    ] {
        let e = leaf(&x, va);
        assert_eq!((e & pte::RW != 0, e & pte::NX != 0), (rw, nx), "{va:#x}: {e:#x}");
        assert_eq!((e & pte::FRAME_MASK) >> 12, x.p2m[(va >> 12) as usize], "{va:#x} keeps its frame");
    }
    // The pages `map_all` added (after the start-of-day region) are data: not executable; so are the ones the
    // start of day mapped outside the image, page tables (still read-only) included.
    assert_ne!(leaf(&x, 0x80_0000) & pte::NX, 0);
    assert_ne!(leaf(&x, 0x30_0000) & pte::NX, 0);
    let table_page = 600 * 4096;
    assert_eq!(leaf(&x, table_page) & (pte::NX | pte::RW), pte::NX, "a boot page table: read-only, not executable");
    // Without NX the flags are the read-only / writable pair only.
    let plain = Protection { nx: false, ..p };
    protect(&mut x, root, text.0, data_end, &plain, &mut batch).unwrap();
    assert_eq!(leaf(&x, 0x14_0000) & (pte::NX | pte::RW), 0);
    assert_eq!(leaf(&x, 0x18_0000) & (pte::NX | pte::RW), pte::RW);
}

#[test]
fn protect_skips_pages_not_mapped_and_reports_a_refused_batch() {
    let (mut x, free) = FakeXen::boot(4096, 1024, 600);
    let mut batch = [MmuUpdate::default(); 64];
    let req = request(&x, free);
    map_all(&mut x, &req, &mut batch).unwrap();
    let root = Mfn(x.root);
    let p = Protection { text: (0x10_0000, 0x10_1000), rodata: (0, 0), nx: false };
    // 64 GiB up is not mapped at all.
    let out = protect(&mut x, root, 0x10_0000_0000, 0x10_0000_2000, &p, &mut batch).unwrap();
    assert_eq!((out.pages, out.not_mapped, out.hypercalls), (0, 2, 0));
    x.fail_call = Some(x.batch_sizes.len());
    let e = protect(&mut x, root, 0x10_0000, 0x10_2000, &p, &mut batch).unwrap_err();
    assert!(matches!(e, PageTableError::Hypercall { count: 2, .. }), "{e:?}");
}

#[test]
fn leaf_flags_follow_the_ranges() {
    let p = Protection { text: (0x1000, 0x3000), rodata: (0x3000, 0x4000), nx: true };
    assert_eq!(p.leaf_flags(0x1000, DATA_FLAGS), pte::PRESENT | pte::USER | pte::ACCESSED);
    assert_eq!(p.leaf_flags(0x3000, DATA_FLAGS), pte::PRESENT | pte::USER | pte::ACCESSED | pte::NX);
    assert_eq!(p.leaf_flags(0x4000, DATA_FLAGS), DATA_FLAGS | pte::NX);
    assert_eq!(p.leaf_flags(0x0, DATA_FLAGS), DATA_FLAGS | pte::NX);
    assert_eq!(Protection::NONE.leaf_flags(0x1000, DATA_FLAGS), DATA_FLAGS);
    assert!(p.touches_image(0, 0x1001) && p.touches_image(0x3fff, 0x5000) && !p.touches_image(0x4000, 0x9000));
    assert!(!Protection::NONE.touches_image(0, 1 << 40));
}
