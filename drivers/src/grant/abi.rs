//! The v1 grant table ABI, mirrored from Xen's `public/grant_table.h` (and `xen.h` for the hypercall number and
//! `DOMID_SELF`). Every value here is pinned by a test in `grant::tests`.

use core::mem::{offset_of, size_of};

/// `GTF_invalid`: the entry grants nothing (the value a revoked entry's flags return to).
pub const GTF_INVALID: u16 = 0;
/// `GTF_permit_access`: allow `domid` to map and access `frame`. [GST]
pub const GTF_PERMIT_ACCESS: u16 = 1; // (1U<<0)
/// `GTF_type_mask`: the bits holding the entry type.
pub const GTF_TYPE_MASK: u16 = 3; // (3U<<0)
/// `GTF_readonly` (bit 2): restrict `domid` to read-only mappings. [GST]
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading` (bit 3): the entry is currently mapped for reading by `domid`. [XEN]
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing` (bit 4): the entry is currently mapped for writing by `domid`. [XEN]
pub const GTF_WRITING: u16 = 1 << 4;
/// The bits Xen sets while the peer holds a mapping: an entry with any of them set must not be revoked.
pub const GTF_IN_USE: u16 = GTF_READING | GTF_WRITING;

/// `GNTTAB_NR_RESERVED_ENTRIES`: refs below this belong to the toolstack and are never handed out.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// `GNTTAB_RESERVED_CONSOLE`: the console ring's ref, filled in by the toolstack.
pub const GNTTAB_RESERVED_CONSOLE: u32 = 0;
/// `GNTTAB_RESERVED_XENSTORE`: the xenstore ring's ref, filled in by the toolstack.
pub const GNTTAB_RESERVED_XENSTORE: u32 = 1;

/// `__HYPERVISOR_grant_table_op` (`xen.h`): `HYPERVISOR_grant_table_op(cmd, args, count)`.
pub const HYPERVISOR_GRANT_TABLE_OP: u32 = 20;
/// `GNTTABOP_setup_table`: args `struct gnttab_setup_table { domid_t dom; uint32_t nr_frames; int16_t status;
/// xen_pfn_t *frame_list; }`. In: `dom` = [`DOMID_SELF`], `nr_frames` (at most the `max_nr_frames` from
/// [`GNTTABOP_QUERY_SIZE`]), `frame_list` = room for `nr_frames` frame numbers. Out: `status` ([`GNTST_OKAY`] or a
/// `GNTST_*` error) and the machine frames of the table, which a PV guest maps itself, in order.
pub const GNTTABOP_SETUP_TABLE: u32 = 2;
/// `GNTTABOP_query_size`: args `struct gnttab_query_size { domid_t dom; uint32_t nr_frames; uint32_t
/// max_nr_frames; int16_t status; }`. In: `dom` = [`DOMID_SELF`]. Out: the current and maximum table size in
/// frames, and `status`.
pub const GNTTABOP_QUERY_SIZE: u32 = 6;
/// `DOMID_SELF` (`xen.h`): the `dom` argument of both operations above.
pub const DOMID_SELF: u16 = 0x7FF0;
/// `GNTST_okay`: the `status` of a successful grant table operation.
pub const GNTST_OKAY: i16 = 0;

/// Size of a page holding table entries.
pub const PAGE_SIZE: u32 = 4096;
/// Entries of [`GrantEntryV1`] per table frame.
pub const ENTRIES_PER_FRAME: u32 = PAGE_SIZE / size_of::<GrantEntryV1>() as u32;

/// `struct grant_entry_v1`: one entry of the shared table, as laid out in the table frames. The platform accesses
/// the fields at [`GrantEntryV1::FLAGS`], [`GrantEntryV1::DOMID`] and [`GrantEntryV1::FRAME`] with volatile
/// accesses; this crate never holds one in shared memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntryV1 {
    /// `GTF_*` type and flags, written by both the guest and Xen.
    pub flags: u16,
    /// The domain being granted access (`domid_t`).
    pub domid: u16,
    /// The frame `domid` may map (a machine frame for a PV guest).
    pub frame: u32,
}

impl GrantEntryV1 {
    /// Byte offset of `flags` within an entry.
    pub const FLAGS: usize = offset_of!(GrantEntryV1, flags);
    /// Byte offset of `domid` within an entry.
    pub const DOMID: usize = offset_of!(GrantEntryV1, domid);
    /// Byte offset of `frame` within an entry.
    pub const FRAME: usize = offset_of!(GrantEntryV1, frame);
}

// `struct grant_entry_v1` in public/grant_table.h: 8 bytes, {uint16_t flags; domid_t domid; uint32_t frame;}.
const _: () = assert!(size_of::<GrantEntryV1>() == 8);
const _: () = assert!(GrantEntryV1::FLAGS == 0 && GrantEntryV1::DOMID == 2 && GrantEntryV1::FRAME == 4);
const _: () = assert!(ENTRIES_PER_FRAME == 512);

/// The name of a `GNTST_*` status (public/grant_table.h), for error messages about the platform's hypercalls.
pub fn gntst_name(status: i16) -> &'static str {
    match status {
        0 => "GNTST_okay",
        -1 => "GNTST_general_error",
        -2 => "GNTST_bad_domain",
        -3 => "GNTST_bad_gntref",
        -4 => "GNTST_bad_handle",
        -5 => "GNTST_bad_virt_addr",
        -6 => "GNTST_bad_dev_addr",
        -7 => "GNTST_no_device_space",
        -8 => "GNTST_permission_denied",
        -9 => "GNTST_bad_page",
        -10 => "GNTST_bad_copy_arg",
        -11 => "GNTST_address_too_big",
        -12 => "GNTST_eagain",
        -13 => "GNTST_no_space",
        _ => "unknown GNTST status",
    }
}

/// Table frames needed to hold `entries` entries (rounded up), for `GNTTABOP_setup_table`'s `nr_frames`.
pub const fn frames_for(entries: u32) -> u32 {
    entries.div_ceil(ENTRIES_PER_FRAME)
}

/// Entries held by `frames` table frames (saturating at `u32::MAX`): the capacity once they are mapped.
pub const fn entries_in(frames: u32) -> u32 {
    frames.saturating_mul(ENTRIES_PER_FRAME)
}
