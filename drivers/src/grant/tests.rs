//! Host tests: the grant table against a heap table whose "Xen" lets a fake backend map and unmap granted pages.

use super::abi::*;
use super::*;
use alloc::string::ToString;

/// A write the guest side made to the table, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    FrameDomid { r: u32, frame: u32, domid: u16 },
    Flags { r: u32, flags: u16 },
    Cas { r: u32, current: u16, new: u16, ok: bool },
}

/// Grant table frames on the heap. The test plays Xen and the backend: `map`/`unmap` set and clear
/// `GTF_reading`/`GTF_writing` as Xen does when the backend maps a granted page.
struct FakeTable {
    entries: Vec<GrantEntryV1>,
    writes: Vec<Write>,
    /// The backend maps or unmaps between our read of the flags and our compare-and-swap: these flags are stored
    /// just before the next compare-and-swap.
    race_before_cas: Option<u16>,
    /// A hostile table whose flags change (GTF_PWT toggled) before every compare-and-swap.
    churn: bool,
}

impl FakeTable {
    fn new(capacity: u32) -> Self {
        FakeTable {
            entries: vec![GrantEntryV1::default(); capacity as usize],
            writes: vec![],
            race_before_cas: None,
            churn: false,
        }
    }

    fn entry(&self, r: GrantRef) -> GrantEntryV1 {
        self.entries[r.0 as usize]
    }

    /// The backend maps the page behind `r` (GNTTABOP_map_grant_ref): Xen checks the entry and sets
    /// `GTF_reading`, plus `GTF_writing` for a writable mapping.
    fn map(&mut self, r: GrantRef, writable: bool) -> Result<(), &'static str> {
        let e = &mut self.entries[r.0 as usize];
        if e.flags & GTF_TYPE_MASK != GTF_PERMIT_ACCESS {
            return Err("GNTST_bad_gntref");
        }
        if writable && e.flags & GTF_READONLY != 0 {
            return Err("GNTST_permission_denied");
        }
        e.flags |= GTF_READING | if writable { GTF_WRITING } else { 0 };
        Ok(())
    }

    /// The backend unmaps it (GNTTABOP_unmap_grant_ref).
    fn unmap(&mut self, r: GrantRef) {
        self.entries[r.0 as usize].flags &= !GTF_IN_USE;
    }
}

impl GrantEntries for FakeTable {
    fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }
    fn flags(&self, r: GrantRef) -> u16 {
        self.entries[r.0 as usize].flags
    }
    fn set_frame_and_domid(&mut self, r: GrantRef, frame: u32, domid: u16) {
        self.writes.push(Write::FrameDomid { r: r.0, frame, domid });
        let e = &mut self.entries[r.0 as usize];
        (e.frame, e.domid) = (frame, domid);
    }
    fn publish_flags(&mut self, r: GrantRef, flags: u16) {
        self.writes.push(Write::Flags { r: r.0, flags });
        self.entries[r.0 as usize].flags = flags;
    }
    fn compare_exchange_flags(&mut self, r: GrantRef, current: u16, new: u16) -> Result<u16, u16> {
        if let Some(flags) = self.race_before_cas.take() {
            self.entries[r.0 as usize].flags = flags;
        }
        if self.churn {
            self.entries[r.0 as usize].flags ^= 1 << 5;
        }
        let e = &mut self.entries[r.0 as usize];
        let ok = e.flags == current;
        self.writes.push(Write::Cas { r: r.0, current, new, ok });
        if ok {
            e.flags = new;
            Ok(current)
        } else {
            Err(e.flags)
        }
    }
}

/// A table of 16 entries: refs 8..16 (8 of them) are ours.
fn table16() -> GrantTable<FakeTable> {
    GrantTable::new(FakeTable::new(16))
}

/// Grants until the table is exhausted, returning the refs handed out.
fn grant_all(t: &mut GrantTable<FakeTable>) -> Vec<u32> {
    let mut refs = vec![];
    while let Ok(r) = t.grant_access(0, 0x1000, false) {
        refs.push(r.0);
    }
    refs
}

#[test]
fn abi_constants_are_pinned() {
    // public/grant_table.h and xen.h, as installed by libxen-dev.
    assert_eq!((GTF_INVALID, GTF_PERMIT_ACCESS, GTF_TYPE_MASK), (0, 1, 3));
    assert_eq!((GTF_READONLY, GTF_READING, GTF_WRITING, GTF_IN_USE), (4, 8, 16, 24));
    assert_eq!((GNTTAB_NR_RESERVED_ENTRIES, GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE), (8, 0, 1));
    assert_eq!((GNTTABOP_SETUP_TABLE, GNTTABOP_QUERY_SIZE, HYPERVISOR_GRANT_TABLE_OP), (2, 6, 20));
    assert_eq!((DOMID_SELF, GNTST_OKAY), (0x7FF0, 0));
    assert_eq!(core::mem::size_of::<GrantEntryV1>(), 8);
    assert_eq!((GrantEntryV1::FLAGS, GrantEntryV1::DOMID, GrantEntryV1::FRAME), (0, 2, 4));
    assert_eq!(ENTRIES_PER_FRAME, 512);
    assert_eq!((gntst_name(0), gntst_name(-3), gntst_name(-12)), ("GNTST_okay", "GNTST_bad_gntref", "GNTST_eagain"));
    assert_eq!(
        (gntst_name(-13), gntst_name(-14), gntst_name(1)),
        ("GNTST_no_space", "unknown GNTST status", "unknown GNTST status")
    );
}

/// Evaluates a `#define` body of the forms the header uses: `8`, `(2)`, `(1U<<_GTF_readonly)`, `(3U<<0)`, `(-12)`.
fn eval_define(body: &str, known: &std::collections::HashMap<String, i64>) -> Option<i64> {
    let body = body.split("/*").next()?.trim().trim_start_matches('(').trim_end_matches(')').trim();
    let atom = |s: &str| -> Option<i64> {
        let s = s.trim();
        known.get(s).copied().or_else(|| s.trim_end_matches('U').parse().ok())
    };
    match body.split_once("<<") {
        Some((a, b)) => Some(atom(a)? << atom(b)?),
        None => atom(body),
    }
}

#[test]
fn abi_constants_match_the_installed_header() {
    let Ok(header) = std::fs::read_to_string("/usr/include/xen/grant_table.h") else {
        std::eprintln!("skipped: /usr/include/xen/grant_table.h not installed (apt-get install libxen-dev)");
        return;
    };
    let mut known = std::collections::HashMap::new();
    for line in header.lines() {
        let Some(rest) = line.trim().strip_prefix("#define ") else { continue };
        let Some((name, body)) = rest.split_once(char::is_whitespace) else { continue };
        if let Some(v) = eval_define(body, &known) {
            known.insert(name.to_string(), v);
        }
    }
    let expect: &[(&str, i64)] = &[
        ("GTF_invalid", GTF_INVALID.into()),
        ("GTF_permit_access", GTF_PERMIT_ACCESS.into()),
        ("GTF_type_mask", GTF_TYPE_MASK.into()),
        ("GTF_readonly", GTF_READONLY.into()),
        ("GTF_reading", GTF_READING.into()),
        ("GTF_writing", GTF_WRITING.into()),
        ("GNTTAB_NR_RESERVED_ENTRIES", GNTTAB_NR_RESERVED_ENTRIES.into()),
        ("GNTTAB_RESERVED_CONSOLE", GNTTAB_RESERVED_CONSOLE.into()),
        ("GNTTAB_RESERVED_XENSTORE", GNTTAB_RESERVED_XENSTORE.into()),
        ("GNTTABOP_setup_table", GNTTABOP_SETUP_TABLE.into()),
        ("GNTTABOP_query_size", GNTTABOP_QUERY_SIZE.into()),
        ("GNTST_okay", GNTST_OKAY.into()),
        ("GNTST_eagain", -12),
    ];
    for &(name, value) in expect {
        assert_eq!(known.get(name), Some(&value), "{name} in grant_table.h");
    }
    for status in -13..=0i16 {
        let name = gntst_name(status);
        assert_eq!(known.get(name), Some(&i64::from(status)), "{name}");
    }
}

#[test]
fn frames_for_rounds_up_to_whole_frames() {
    assert_eq!((frames_for(0), frames_for(1), frames_for(512), frames_for(513)), (0, 1, 1, 2));
    assert_eq!(frames_for(u32::MAX), 8_388_608);
    assert_eq!((entries_in(0), entries_in(1), entries_in(32)), (0, 512, 16384));
    assert_eq!(entries_in(u32::MAX), u32::MAX);
}

#[test]
fn grant_writes_frame_and_domid_then_flags_last() {
    let mut t = table16();
    let r = t.grant_access(7, 0x1234_5678, false).unwrap();
    assert_eq!(r, GrantRef(8));
    assert_eq!(
        t.entries.writes,
        vec![Write::FrameDomid { r: 8, frame: 0x1234_5678, domid: 7 }, Write::Flags { r: 8, flags: GTF_PERMIT_ACCESS },]
    );
    assert_eq!(t.entries.entry(r), GrantEntryV1 { flags: 1, domid: 7, frame: 0x1234_5678 });
    assert_eq!((t.granted(), t.deferred(), t.free(), t.capacity()), (1, 0, 7, 16));
}

#[test]
fn readonly_grant_sets_gtf_readonly_and_the_backend_cannot_write() {
    let mut t = table16();
    let ro = t.grant_access(0, 0x42, true).unwrap();
    let rw = t.grant_access(0, 0x43, false).unwrap();
    assert_eq!(t.entries.entry(ro).flags, GTF_PERMIT_ACCESS | GTF_READONLY);
    assert_eq!(t.entries.entry(ro).flags, 5);
    assert_eq!(t.entries.entry(rw).flags, 1);
    assert_eq!(t.entries.map(ro, true), Err("GNTST_permission_denied"));
    assert_eq!(t.entries.map(ro, false), Ok(()));
    assert_eq!(t.entries.entry(ro).flags, 5 | GTF_READING);
}

#[test]
fn reserved_refs_are_never_handed_out_nor_ended() {
    let mut t = table16();
    assert_eq!(grant_all(&mut t), vec![8, 9, 10, 11, 12, 13, 14, 15]);
    assert!(t
        .entries
        .writes
        .iter()
        .all(|w| matches!(*w, Write::FrameDomid { r, .. } | Write::Flags { r, .. } if r >= 8)));
    assert!(t.entries.entries[..8].iter().all(|e| *e == GrantEntryV1::default()));
    for r in [GNTTAB_RESERVED_CONSOLE, GNTTAB_RESERVED_XENSTORE, 7] {
        assert_eq!(t.end_access(GrantRef(r)), Err(GrantError::Reserved { gref: GrantRef(r) }));
        assert_eq!(t.end_access_deferred(GrantRef(r)), Err(GrantError::Reserved { gref: GrantRef(r) }));
    }
    // A table no larger than the reserved entries has nothing to give.
    let mut tiny = GrantTable::new(FakeTable::new(8));
    assert_eq!(tiny.grant_access(3, 1, false), Err(GrantError::Exhausted { domid: 3, capacity: 8, deferred: 0 }));
    assert_eq!(tiny.end_access(GrantRef(8)), Err(GrantError::OutOfRange { gref: GrantRef(8), capacity: 8 }));
}

#[test]
fn exhaustion_then_recovery_after_a_free() {
    let mut t = GrantTable::new(FakeTable::new(10));
    let a = t.grant_access(1, 0x100, false).unwrap();
    let b = t.grant_access(1, 0x101, false).unwrap();
    assert_eq!((a, b), (GrantRef(8), GrantRef(9)));
    let err = t.grant_access(1, 0x102, false).unwrap_err();
    assert_eq!(err, GrantError::Exhausted { domid: 1, capacity: 10, deferred: 0 });
    assert_eq!(
        err.to_string(),
        "no free grant ref to grant domain 1: all 2 usable refs of the 10-entry table are in use (0 awaiting deferred \
         revoke)"
    );
    assert_eq!(t.free(), 0);
    t.end_access(a).unwrap();
    assert_eq!((t.granted(), t.free()), (1, 1));
    assert_eq!(t.grant_access(2, 0x200, true), Ok(a));
    assert_eq!(t.entries.entry(a), GrantEntryV1 { flags: 5, domid: 2, frame: 0x200 });
}

#[test]
fn double_end_is_refused_and_the_free_list_stays_sound() {
    let mut t = table16();
    let r = t.grant_access(0, 0x10, false).unwrap();
    t.end_access(r).unwrap();
    assert_eq!(t.entries.entry(r).flags, 0);
    assert_eq!(t.end_access(r), Err(GrantError::AlreadyEnded { gref: r }));
    assert_eq!(t.end_access_deferred(r), Err(GrantError::AlreadyEnded { gref: r }));
    assert_eq!((t.granted(), t.free()), (0, 8));
    // Every ref comes out exactly once: the double end did not push r twice.
    let mut refs = grant_all(&mut t);
    refs.sort_unstable();
    assert_eq!(refs, vec![8, 9, 10, 11, 12, 13, 14, 15]);
}

#[test]
fn ending_a_ref_never_granted_is_refused() {
    let mut t = table16();
    assert_eq!(t.end_access(GrantRef(9)), Err(GrantError::NotGranted { gref: GrantRef(9) }));
    assert_eq!(t.end_access_deferred(GrantRef(15)), Err(GrantError::NotGranted { gref: GrantRef(15) }));
    assert!(t.entries.writes.is_empty());
    assert_eq!(t.free(), 8);
}

#[test]
fn out_of_range_refs_are_refused() {
    let mut t = table16();
    for r in [16, 17, 512, u32::MAX] {
        assert_eq!(t.end_access(GrantRef(r)), Err(GrantError::OutOfRange { gref: GrantRef(r), capacity: 16 }));
        assert_eq!(t.end_access_deferred(GrantRef(r)), Err(GrantError::OutOfRange { gref: GrantRef(r), capacity: 16 }));
    }
    assert!(t.entries.writes.is_empty());
}

#[test]
fn frame_above_u32_is_refused_not_truncated() {
    let mut t = table16();
    let frame = 1u64 << 32 | 0x55;
    assert_eq!(t.grant_access(4, frame, false), Err(GrantError::FrameTooLarge { domid: 4, frame }));
    assert_eq!(
        GrantError::FrameTooLarge { domid: 4, frame }.to_string(),
        "cannot grant frame 0x100000055 to domain 4: grant table v1 frames are 32-bit"
    );
    assert!(t.entries.writes.is_empty());
    assert_eq!((t.granted(), t.free()), (0, 8));
    let r = t.grant_access(4, u64::from(u32::MAX), false).unwrap();
    assert_eq!(t.entries.entry(r).frame, u32::MAX);
}

#[test]
fn revoke_while_mapped_is_refused_and_the_page_not_reused() {
    let mut t = table16();
    let r = t.grant_access(0, 0x77, false).unwrap();
    t.entries.map(r, true).unwrap();
    let mapped = GTF_PERMIT_ACCESS | GTF_READING | GTF_WRITING;
    assert_eq!(t.end_access(r), Err(GrantError::InUse { gref: r, domid: 0, flags: mapped }));
    // Still granted, entry untouched, no compare-and-swap attempted on a mapped entry.
    assert_eq!(t.entries.entry(r), GrantEntryV1 { flags: mapped, domid: 0, frame: 0x77 });
    assert!(!t.entries.writes.iter().any(|w| matches!(w, Write::Cas { .. })));
    assert_eq!((t.granted(), t.free()), (1, 7));
    assert!(!grant_all(&mut t).contains(&r.0));
    // Once the backend unmaps, the revoke goes through.
    t.entries.unmap(r);
    assert_eq!(t.end_access(r), Ok(()));
    assert_eq!(t.entries.entry(r).flags, 0);
    assert_eq!(t.grant_access(0, 0x78, false), Ok(r));
}

#[test]
fn backend_mapping_between_read_and_swap_is_caught() {
    let mut t = table16();
    let r = t.grant_access(3, 0x99, true).unwrap();
    // We read flags 5 (unmapped); Xen sets GTF_reading before our compare-and-swap lands.
    t.entries.race_before_cas = Some(5 | GTF_READING);
    assert_eq!(t.end_access(r), Err(GrantError::InUse { gref: r, domid: 3, flags: 13 }));
    assert_eq!(t.entries.writes.last(), Some(&Write::Cas { r: r.0, current: 5, new: 0, ok: false }));
    assert_eq!(t.entries.entry(r).flags, 13);
    assert_eq!(t.granted(), 1);
}

#[test]
fn flags_that_keep_changing_end_in_an_error_not_a_spin() {
    let mut t = table16();
    let r = t.grant_access(3, 0x99, false).unwrap();
    t.entries.churn = true;
    let err = t.end_access(r).unwrap_err();
    assert!(matches!(err, GrantError::InUse { gref, domid: 3, flags } if gref == r && flags & GTF_IN_USE == 0));
    let cas = t.entries.writes.iter().filter(|w| matches!(w, Write::Cas { .. })).count();
    assert_eq!(cas, REVOKE_ATTEMPTS as usize);
    assert!(err.to_string().contains("kept changing its mapping"));
    assert_eq!(t.granted(), 1);
}

#[test]
fn deferred_revoke_completes_after_the_backend_unmaps() {
    let mut t = table16();
    let r = t.grant_access(5, 0xabc, true).unwrap();
    t.entries.map(r, false).unwrap();
    assert_eq!(t.end_access_deferred(r), Ok(EndAccess::Deferred { flags: 5 | GTF_READING }));
    assert_eq!((t.granted(), t.deferred(), t.free()), (0, 1, 7));
    assert_eq!(t.end_access(r), Err(GrantError::RevokePending { gref: r, domid: 5 }));
    assert_eq!(t.end_access_deferred(r), Err(GrantError::RevokePending { gref: r, domid: 5 }));
    assert_eq!(t.poll_deferred(), 0);
    assert_eq!(t.entries.entry(r).flags, 13);
    // Not reusable while parked: the other seven are handed out, then exhaustion reports the parked one.
    let others = grant_all(&mut t);
    assert_eq!(others.len(), 7);
    assert!(!others.contains(&r.0));
    assert_eq!(t.grant_access(5, 1, false), Err(GrantError::Exhausted { domid: 5, capacity: 16, deferred: 1 }));
    t.entries.unmap(r);
    assert_eq!(t.poll_deferred(), 1);
    assert_eq!(t.entries.entry(r).flags, 0);
    assert_eq!((t.granted(), t.deferred(), t.free()), (7, 0, 1));
    assert_eq!(t.poll_deferred(), 0);
    assert_eq!(t.end_access(r), Err(GrantError::AlreadyEnded { gref: r }));
    assert_eq!(t.grant_access(6, 0xdef, false), Ok(r));
}

#[test]
fn deferred_revoke_of_an_unmapped_ref_frees_at_once() {
    let mut t = table16();
    let r = t.grant_access(0, 0x1, false).unwrap();
    assert_eq!(t.end_access_deferred(r), Ok(EndAccess::Freed));
    assert_eq!((t.granted(), t.deferred(), t.free()), (0, 0, 8));
    assert_eq!(t.entries.entry(r).flags, 0);
}

#[test]
fn poll_frees_only_the_refs_released() {
    let mut t = table16();
    let refs: Vec<GrantRef> = (0..3).map(|i| t.grant_access(1, 0x500 + i, false).unwrap()).collect();
    for &r in &refs {
        t.entries.map(r, true).unwrap();
        assert!(matches!(t.end_access_deferred(r), Ok(EndAccess::Deferred { flags: 0x19 })));
    }
    assert_eq!(t.deferred(), 3);
    t.entries.unmap(refs[0]);
    t.entries.unmap(refs[2]);
    assert_eq!(t.poll_deferred(), 2);
    assert_eq!((t.granted(), t.deferred(), t.free()), (0, 1, 7));
    assert_eq!(t.entries.entry(refs[1]).flags, 0x19);
    t.entries.unmap(refs[1]);
    assert_eq!(t.poll_deferred(), 1);
    assert_eq!((t.deferred(), t.free()), (0, 8));
}

#[test]
fn errors_name_the_ref_the_domain_and_what_the_peer_does() {
    let in_use = |flags| GrantError::InUse { gref: GrantRef(9), domid: 2, flags }.to_string();
    assert_eq!(
        in_use(0x19),
        "grant ref 9 is still in use by domain 2: the peer has it mapped for reading and writing (flags 0x0019); \
         the page must not be reused"
    );
    assert!(in_use(0x0d).contains("mapped for reading (flags 0x000d)"));
    assert!(in_use(0x11).contains("mapped for writing (flags 0x0011)"));
    assert_eq!(GrantError::NotGranted { gref: GrantRef(9) }.to_string(), "grant ref 9 was never granted");
    assert_eq!(
        GrantError::AlreadyEnded { gref: GrantRef(9) }.to_string(),
        "grant ref 9 was already revoked (ended twice)"
    );
    assert_eq!(
        GrantError::Reserved { gref: GrantRef(1) }.to_string(),
        "grant ref 1 is reserved for the toolstack (refs below 8: console, xenstore)"
    );
    assert_eq!(
        GrantError::OutOfRange { gref: GrantRef(600), capacity: 512 }.to_string(),
        "grant ref 600 is outside the grant table (512 entries)"
    );
    assert_eq!(
        GrantError::RevokePending { gref: GrantRef(9), domid: 2 }.to_string(),
        "grant ref 9 (granted to domain 2) is already awaiting a deferred revoke"
    );
}

/// A new domain's table (after `xl restore` or `xl migrate`): Xen starts it empty.
fn empty_xen_table(t: &mut GrantTable<FakeTable>) {
    for e in t.entries.entries.iter_mut() {
        *e = GrantEntryV1::default();
    }
}

#[test]
fn regrant_after_a_resume_writes_the_same_ref_for_the_new_backend() {
    let mut t = table16();
    let rw = t.grant_access(0, 0x100, false).unwrap();
    let ro = t.grant_access(0, 0x101, true).unwrap();
    empty_xen_table(&mut t);
    t.entries.writes.clear();
    // Same refs, the frames moved (new host) and the backend is another domain.
    t.regrant(rw, 3, 0x900, false).unwrap();
    t.regrant(ro, 3, 0x901, true).unwrap();
    assert_eq!(
        t.entries.writes[..2],
        [Write::FrameDomid { r: rw.0, frame: 0x900, domid: 3 }, Write::Flags { r: rw.0, flags: GTF_PERMIT_ACCESS }]
    );
    assert_eq!(t.entries.entry(ro).flags, GTF_PERMIT_ACCESS | GTF_READONLY);
    assert_eq!((t.granted(), t.free()), (2, 6));
    // The backend maps them as before; the refs end normally, naming the new domain when refused.
    t.entries.map(rw, true).unwrap();
    assert_eq!(t.end_access(rw), Err(GrantError::InUse { gref: rw, domid: 3, flags: 0x19 }));
    t.entries.unmap(rw);
    assert_eq!(t.end_access(rw), Ok(()));
    assert_eq!(t.end_access(ro), Ok(()));
}

#[test]
fn regrant_is_refused_where_the_table_was_not_replaced() {
    let mut t = table16();
    let r = t.grant_access(0, 0x100, false).unwrap();
    // A checkpoint keeps the old table: the grant stands, and rewriting it under a mapping backend is refused.
    assert_eq!(t.regrant(r, 0, 0x100, false), Err(GrantError::StillSet { gref: r, flags: GTF_PERMIT_ACCESS }));
    assert!(t.regrant(r, 0, 0x100, false).unwrap_err().to_string().contains("still set"));
    t.end_access(r).unwrap();
    assert_eq!(t.regrant(r, 0, 0x100, false), Err(GrantError::AlreadyEnded { gref: r }));
    assert_eq!(t.regrant(GrantRef(12), 0, 0x100, false), Err(GrantError::NotGranted { gref: GrantRef(12) }));
}

#[test]
fn refs_parked_on_the_old_host_are_freed_by_the_new_empty_table() {
    let mut t = table16();
    let r = t.grant_access(0, 0x100, false).unwrap();
    t.entries.map(r, true).unwrap();
    assert!(matches!(t.end_access_deferred(r), Ok(EndAccess::Deferred { .. })));
    assert_eq!(t.poll_deferred(), 0);
    // The old backend never unmapped; the domain moved: the new table has no mapping of it.
    empty_xen_table(&mut t);
    assert_eq!(t.poll_deferred(), 1);
    assert_eq!((t.granted(), t.deferred(), t.free()), (0, 0, 8));
}
