//! The blkif ring ABI, mirrored from Xen's `public/io/blkif.h` (x86_64, little-endian). Each struct is `repr(C)`
//! with its size and field offsets asserted at compile time against the header's layout (checked with a C compiler
//! on `/usr/include/xen/io/blkif.h`); requests and responses travel as byte copies (`emit`/`parse`), never as
//! references into the shared page. The byte ranges used by `emit`/`parse` are in [`field`], each tied to its
//! `offset_of!` below, and every value is pinned by a test against fixed byte arrays in `blkfront::tests`.
//!
//! Units: `sector_number`, `first_sect`, `last_sect` and `nr_sectors` count **512-byte sectors** whatever the disk's
//! `sector-size`: that is the ABI as Linux's blkback and blkfront speak it, what this `blkif.h` specifies for a
//! frontend that does not write `feature-large-sector-size` (we never do), and what upstream Xen's `blkif.h` now
//! says for every frontend (it deprecated that node).

use core::mem::{offset_of, size_of};

/// `XEN_PAGE_SIZE`: a data page, an indirect descriptor page.
pub const PAGE_SIZE: usize = 4096;
/// The unit of every sector quantity on the ring (see the module documentation).
pub const SECTOR_SIZE: usize = 512;
/// 512-byte sectors in a page: `first_sect`/`last_sect` run from 0 to 7.
pub const SECTORS_PER_PAGE: usize = PAGE_SIZE / SECTOR_SIZE;

/// `BLKIF_OP_READ`.
pub const BLKIF_OP_READ: u8 = 0;
/// `BLKIF_OP_WRITE`.
pub const BLKIF_OP_WRITE: u8 = 1;
/// `BLKIF_OP_WRITE_BARRIER`: earlier writes complete before it, later ones start after it (`feature-barrier`).
pub const BLKIF_OP_WRITE_BARRIER: u8 = 2;
/// `BLKIF_OP_FLUSH_DISKCACHE`: commit the backing device's volatile cache (`feature-flush-cache`).
pub const BLKIF_OP_FLUSH_DISKCACHE: u8 = 3;
/// `BLKIF_OP_RESERVED_1`: reserved (SLES device-specific packets); never sent.
pub const BLKIF_OP_RESERVED_1: u8 = 4;
/// `BLKIF_OP_DISCARD`: the range may be discarded (`feature-discard`); a [`BlkifRequestDiscard`].
pub const BLKIF_OP_DISCARD: u8 = 5;
/// `BLKIF_OP_INDIRECT`: a read or write whose segments are in granted pages (`feature-max-indirect-segments`); a
/// [`BlkifRequestIndirect`].
pub const BLKIF_OP_INDIRECT: u8 = 6;

/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`: segments in a direct request.
pub const BLKIF_MAX_SEGMENTS_PER_REQUEST: usize = 11;
/// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`: indirect descriptor pages in one indirect request.
pub const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;
/// Segments per indirect descriptor page: `PAGE_SIZE / sizeof(struct blkif_request_segment)`.
pub const SEGMENTS_PER_INDIRECT_PAGE: usize = PAGE_SIZE / SEGMENT_SIZE;
/// The most segments an indirect request can describe (8 pages of 512).
pub const MAX_INDIRECT_SEGMENTS: usize = BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * SEGMENTS_PER_INDIRECT_PAGE;

/// `BLKIF_DISCARD_SECURE`: the discarded range must become unrecoverable (`discard-secure`).
pub const BLKIF_DISCARD_SECURE: u8 = 1 << 0;

/// `BLKIF_RSP_EOPNOTSUPP`: the operation is not supported (an optional one, even if advertised).
pub const BLKIF_RSP_EOPNOTSUPP: i16 = -2;
/// `BLKIF_RSP_ERROR`: the operation failed (`-EIO`).
pub const BLKIF_RSP_ERROR: i16 = -1;
/// `BLKIF_RSP_OKAY`.
pub const BLKIF_RSP_OKAY: i16 = 0;

/// `VDISK_CDROM` (`info` bit).
pub const VDISK_CDROM: u32 = 0x1;
/// `VDISK_REMOVABLE` (`info` bit).
pub const VDISK_REMOVABLE: u32 = 0x2;
/// `VDISK_READONLY` (`info` bit).
pub const VDISK_READONLY: u32 = 0x4;

/// `XEN_IO_PROTO_ABI_X86_64` (`io/protocols.h`): our `protocol` key.
pub const PROTOCOL_X86_64: &str = "x86_64-abi";

/// Bytes per ring entry: `union blkif_sring_entry` of a 112-byte request and a 16-byte response.
pub const ENTRY_SIZE: usize = 112;
/// Bytes of a [`BlkifRequestSegment`].
pub const SEGMENT_SIZE: usize = 8;
/// Bytes of a [`BlkifResponse`].
pub const RESPONSE_SIZE: usize = 16;

/// Byte ranges of each structure's fields, as `emit` and `parse` use them (each checked against `offset_of!`).
pub mod field {
    use core::ops::Range;

    /// `operation` (all requests).
    pub const OPERATION: usize = 0;
    /// `nr_segments` (u8, [`super::BlkifRequest`]), `indirect_op` (indirect), `flag` (discard).
    pub const BYTE1: usize = 1;
    /// `handle` ([`super::BlkifRequest`], discard).
    pub const HANDLE: Range<usize> = 2..4;
    /// `id` (all requests).
    pub const ID: Range<usize> = 8..16;
    /// `sector_number` (all requests).
    pub const SECTOR: Range<usize> = 16..24;
    /// `seg[0]` ([`super::BlkifRequest`]); `seg[i]` is 8 bytes further each.
    pub const SEG: usize = 24;
    /// `nr_segments` (u16, indirect).
    pub const INDIRECT_NR_SEGMENTS: Range<usize> = 2..4;
    /// `handle` (indirect: after `sector_number`).
    pub const INDIRECT_HANDLE: Range<usize> = 24..26;
    /// `indirect_grefs[0]` (indirect, 4-byte aligned after `handle`).
    pub const INDIRECT_GREFS: usize = 28;
    /// `nr_sectors` (discard).
    pub const NR_SECTORS: Range<usize> = 24..32;
    /// Segment `gref`.
    pub const SEG_GREF: Range<usize> = 0..4;
    /// Segment `first_sect`.
    pub const SEG_FIRST: usize = 4;
    /// Segment `last_sect`.
    pub const SEG_LAST: usize = 5;
    /// Response `id`.
    pub const RSP_ID: Range<usize> = 0..8;
    /// Response `operation`.
    pub const RSP_OPERATION: usize = 8;
    /// Response `status` (2-byte aligned after `operation`).
    pub const RSP_STATUS: Range<usize> = 10..12;
}

/// `struct blkif_request_segment`: one page of a transfer, sectors `first_sect..=last_sect` of it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestSegment {
    /// `grant_ref_t gref`: the data page.
    pub gref: u32,
    /// First 512-byte sector of the page to transfer (inclusive).
    pub first_sect: u8,
    /// Last 512-byte sector of the page to transfer (inclusive).
    pub last_sect: u8,
}

const _: () = assert!(size_of::<BlkifRequestSegment>() == SEGMENT_SIZE);
const _: () = assert!(offset_of!(BlkifRequestSegment, gref) == field::SEG_GREF.start);
const _: () = assert!(offset_of!(BlkifRequestSegment, first_sect) == field::SEG_FIRST);
const _: () = assert!(offset_of!(BlkifRequestSegment, last_sect) == field::SEG_LAST);

impl BlkifRequestSegment {
    /// The wire bytes (2 bytes of padding, zero).
    pub fn emit(&self) -> [u8; SEGMENT_SIZE] {
        let mut b = [0; SEGMENT_SIZE];
        b[field::SEG_GREF].copy_from_slice(&self.gref.to_le_bytes());
        b[field::SEG_FIRST] = self.first_sect;
        b[field::SEG_LAST] = self.last_sect;
        b
    }

    /// From the wire bytes.
    pub fn parse(b: &[u8; SEGMENT_SIZE]) -> Self {
        BlkifRequestSegment {
            gref: u32_at(b, field::SEG_GREF.start),
            first_sect: b[field::SEG_FIRST],
            last_sect: b[field::SEG_LAST],
        }
    }

    /// 512-byte sectors it covers (0 if `last_sect < first_sect`, which is invalid).
    pub fn sectors(&self) -> usize {
        (usize::from(self.last_sect) + 1).saturating_sub(usize::from(self.first_sect))
    }
}

/// `struct blkif_request`: a read, write, barrier or flush with up to 11 segments inline.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequest {
    /// `BLKIF_OP_*`.
    pub operation: u8,
    /// Segments used in `seg`.
    pub nr_segments: u8,
    /// `blkif_vdev_t handle`: the virtual device.
    pub handle: u16,
    /// Echoed in the response.
    pub id: u64,
    /// First 512-byte sector on the disk.
    pub sector_number: u64,
    /// The segments (`nr_segments` of them used).
    pub seg: [BlkifRequestSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST],
}

const _: () = assert!(size_of::<BlkifRequest>() == ENTRY_SIZE);
const _: () = assert!(offset_of!(BlkifRequest, operation) == field::OPERATION);
const _: () = assert!(offset_of!(BlkifRequest, nr_segments) == field::BYTE1);
const _: () = assert!(offset_of!(BlkifRequest, handle) == field::HANDLE.start);
const _: () = assert!(offset_of!(BlkifRequest, id) == field::ID.start);
const _: () = assert!(offset_of!(BlkifRequest, sector_number) == field::SECTOR.start);
const _: () = assert!(offset_of!(BlkifRequest, seg) == field::SEG);

impl BlkifRequest {
    /// The wire bytes: a whole ring entry (unused segments zero).
    pub fn emit(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0; ENTRY_SIZE];
        b[field::OPERATION] = self.operation;
        b[field::BYTE1] = self.nr_segments;
        b[field::HANDLE].copy_from_slice(&self.handle.to_le_bytes());
        b[field::ID].copy_from_slice(&self.id.to_le_bytes());
        b[field::SECTOR].copy_from_slice(&self.sector_number.to_le_bytes());
        for (i, seg) in self.seg.iter().enumerate() {
            let at = field::SEG + i * SEGMENT_SIZE;
            b[at..at + SEGMENT_SIZE].copy_from_slice(&seg.emit());
        }
        b
    }

    /// From the wire bytes (all 11 segments, whatever `nr_segments` says).
    pub fn parse(b: &[u8; ENTRY_SIZE]) -> Self {
        let mut seg = [BlkifRequestSegment::default(); BLKIF_MAX_SEGMENTS_PER_REQUEST];
        for (i, s) in seg.iter_mut().enumerate() {
            let at = field::SEG + i * SEGMENT_SIZE;
            let mut bytes = [0; SEGMENT_SIZE];
            bytes.copy_from_slice(&b[at..at + SEGMENT_SIZE]);
            *s = BlkifRequestSegment::parse(&bytes);
        }
        BlkifRequest {
            operation: b[field::OPERATION],
            nr_segments: b[field::BYTE1],
            handle: u16_at(b, field::HANDLE.start),
            id: u64_at(b, field::ID.start),
            sector_number: u64_at(b, field::SECTOR.start),
            seg,
        }
    }
}

/// `struct blkif_request_indirect`: a read or write whose segments are listed in granted descriptor pages.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestIndirect {
    /// [`BLKIF_OP_INDIRECT`].
    pub operation: u8,
    /// `BLKIF_OP_READ` or `BLKIF_OP_WRITE`.
    pub indirect_op: u8,
    /// Segments, in the descriptor pages (512 per page).
    pub nr_segments: u16,
    /// Echoed in the response.
    pub id: u64,
    /// First 512-byte sector on the disk.
    pub sector_number: u64,
    /// `blkif_vdev_t handle`: the virtual device.
    pub handle: u16,
    /// The descriptor pages (`ceil(nr_segments / 512)` of them used).
    pub indirect_grefs: [u32; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
}

// On x86_64 the header's struct is 64 bytes: `handle` at 24, 2 bytes of padding, `indirect_grefs` at 28, 4 bytes of
// tail padding (the i386-only `pad` field is absent).
const _: () = assert!(size_of::<BlkifRequestIndirect>() == 64);
const _: () = assert!(offset_of!(BlkifRequestIndirect, indirect_op) == field::BYTE1);
const _: () = assert!(offset_of!(BlkifRequestIndirect, nr_segments) == field::INDIRECT_NR_SEGMENTS.start);
const _: () = assert!(offset_of!(BlkifRequestIndirect, id) == field::ID.start);
const _: () = assert!(offset_of!(BlkifRequestIndirect, sector_number) == field::SECTOR.start);
const _: () = assert!(offset_of!(BlkifRequestIndirect, handle) == field::INDIRECT_HANDLE.start);
const _: () = assert!(offset_of!(BlkifRequestIndirect, indirect_grefs) == field::INDIRECT_GREFS);

impl BlkifRequestIndirect {
    /// The wire bytes, as a whole ring entry (padding and the rest of the entry zero).
    pub fn emit(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0; ENTRY_SIZE];
        b[field::OPERATION] = self.operation;
        b[field::BYTE1] = self.indirect_op;
        b[field::INDIRECT_NR_SEGMENTS].copy_from_slice(&self.nr_segments.to_le_bytes());
        b[field::ID].copy_from_slice(&self.id.to_le_bytes());
        b[field::SECTOR].copy_from_slice(&self.sector_number.to_le_bytes());
        b[field::INDIRECT_HANDLE].copy_from_slice(&self.handle.to_le_bytes());
        for (i, gref) in self.indirect_grefs.iter().enumerate() {
            let at = field::INDIRECT_GREFS + 4 * i;
            b[at..at + 4].copy_from_slice(&gref.to_le_bytes());
        }
        b
    }

    /// From the wire bytes (a ring entry).
    pub fn parse(b: &[u8; ENTRY_SIZE]) -> Self {
        let mut indirect_grefs = [0; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
        for (i, gref) in indirect_grefs.iter_mut().enumerate() {
            *gref = u32_at(b, field::INDIRECT_GREFS + 4 * i);
        }
        BlkifRequestIndirect {
            operation: b[field::OPERATION],
            indirect_op: b[field::BYTE1],
            nr_segments: u16_at(b, field::INDIRECT_NR_SEGMENTS.start),
            id: u64_at(b, field::ID.start),
            sector_number: u64_at(b, field::SECTOR.start),
            handle: u16_at(b, field::INDIRECT_HANDLE.start),
            indirect_grefs,
        }
    }
}

/// `struct blkif_request_discard`: the sectors may be discarded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestDiscard {
    /// [`BLKIF_OP_DISCARD`].
    pub operation: u8,
    /// [`BLKIF_DISCARD_SECURE`] or 0.
    pub flag: u8,
    /// `blkif_vdev_t handle`: the virtual device.
    pub handle: u16,
    /// Echoed in the response.
    pub id: u64,
    /// First 512-byte sector on the disk.
    pub sector_number: u64,
    /// 512-byte sectors to discard.
    pub nr_sectors: u64,
}

const _: () = assert!(size_of::<BlkifRequestDiscard>() == 32);
const _: () = assert!(offset_of!(BlkifRequestDiscard, flag) == field::BYTE1);
const _: () = assert!(offset_of!(BlkifRequestDiscard, handle) == field::HANDLE.start);
const _: () = assert!(offset_of!(BlkifRequestDiscard, id) == field::ID.start);
const _: () = assert!(offset_of!(BlkifRequestDiscard, sector_number) == field::SECTOR.start);
const _: () = assert!(offset_of!(BlkifRequestDiscard, nr_sectors) == field::NR_SECTORS.start);

impl BlkifRequestDiscard {
    /// The wire bytes, as a whole ring entry (the rest of the entry zero).
    pub fn emit(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0; ENTRY_SIZE];
        b[field::OPERATION] = self.operation;
        b[field::BYTE1] = self.flag;
        b[field::HANDLE].copy_from_slice(&self.handle.to_le_bytes());
        b[field::ID].copy_from_slice(&self.id.to_le_bytes());
        b[field::SECTOR].copy_from_slice(&self.sector_number.to_le_bytes());
        b[field::NR_SECTORS].copy_from_slice(&self.nr_sectors.to_le_bytes());
        b
    }

    /// From the wire bytes (a ring entry).
    pub fn parse(b: &[u8; ENTRY_SIZE]) -> Self {
        BlkifRequestDiscard {
            operation: b[field::OPERATION],
            flag: b[field::BYTE1],
            handle: u16_at(b, field::HANDLE.start),
            id: u64_at(b, field::ID.start),
            sector_number: u64_at(b, field::SECTOR.start),
            nr_sectors: u64_at(b, field::NR_SECTORS.start),
        }
    }
}

/// `struct blkif_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifResponse {
    /// The request's id.
    pub id: u64,
    /// The request's operation (for an indirect request, Linux's blkback echoes `indirect_op`).
    pub operation: u8,
    /// `BLKIF_RSP_*`.
    pub status: i16,
}

const _: () = assert!(size_of::<BlkifResponse>() == RESPONSE_SIZE);
const _: () = assert!(offset_of!(BlkifResponse, id) == field::RSP_ID.start);
const _: () = assert!(offset_of!(BlkifResponse, operation) == field::RSP_OPERATION);
const _: () = assert!(offset_of!(BlkifResponse, status) == field::RSP_STATUS.start);

impl BlkifResponse {
    /// The wire bytes (padding zero).
    pub fn emit(&self) -> [u8; RESPONSE_SIZE] {
        let mut b = [0; RESPONSE_SIZE];
        b[field::RSP_ID].copy_from_slice(&self.id.to_le_bytes());
        b[field::RSP_OPERATION] = self.operation;
        b[field::RSP_STATUS].copy_from_slice(&self.status.to_le_bytes());
        b
    }

    /// From the wire bytes (padding ignored).
    pub fn parse(b: &[u8; RESPONSE_SIZE]) -> Self {
        BlkifResponse {
            id: u64_at(b, field::RSP_ID.start),
            operation: b[field::RSP_OPERATION],
            status: i16::from_le_bytes([b[field::RSP_STATUS.start], b[field::RSP_STATUS.start + 1]]),
        }
    }
}

/// `BLKIF_OP_*` by name.
pub fn op_name(operation: u8) -> &'static str {
    match operation {
        BLKIF_OP_READ => "BLKIF_OP_READ",
        BLKIF_OP_WRITE => "BLKIF_OP_WRITE",
        BLKIF_OP_WRITE_BARRIER => "BLKIF_OP_WRITE_BARRIER",
        BLKIF_OP_FLUSH_DISKCACHE => "BLKIF_OP_FLUSH_DISKCACHE",
        BLKIF_OP_RESERVED_1 => "BLKIF_OP_RESERVED_1",
        BLKIF_OP_DISCARD => "BLKIF_OP_DISCARD",
        BLKIF_OP_INDIRECT => "BLKIF_OP_INDIRECT",
        _ => "an unknown operation",
    }
}

/// `BLKIF_RSP_*` by name.
pub fn status_name(status: i16) -> &'static str {
    match status {
        BLKIF_RSP_OKAY => "BLKIF_RSP_OKAY",
        BLKIF_RSP_ERROR => "BLKIF_RSP_ERROR",
        BLKIF_RSP_EOPNOTSUPP => "BLKIF_RSP_EOPNOTSUPP",
        _ => "not a BLKIF_RSP_* value",
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(bytes)
}
