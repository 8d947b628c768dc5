//! Splitting a transfer into as few ring requests as possible.
//!
//! A transfer of `len` bytes (a whole number of logical sectors) goes through `ceil(len / 4096)` data pages, each
//! used from its start: every page is full but the last, which holds a multiple of 512 bytes. Page `i` is one
//! segment, `first_sect = 0`, `last_sect = bytes_in_page / 512 - 1`, and the disk position advances by the page's
//! bytes, so a request starting at byte `offset` of the disk has `sector_number = offset / 512`. On a 4096-byte
//! sector disk every page is a whole sector (sectors 0..=7 of it) and every offset a multiple of 8.
//!
//! Requests take up to 11 segments, or, with indirect requests negotiated, up to the negotiated count (one request
//! for a 1 MiB transfer with 256 segments); a part of 11 or fewer pages is always sent direct.

use super::error::Resources;
use super::wire::{
    BlkifRequestSegment, BLKIF_MAX_SEGMENTS_PER_REQUEST, PAGE_SIZE, SECTOR_SIZE, SEGMENTS_PER_INDIRECT_PAGE,
};

/// One ring request of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    /// The transfer's page index of its first segment.
    pub first_page: u32,
    /// Segments (pages).
    pub pages: u32,
    /// Its first 512-byte sector on the disk.
    pub sector: u64,
    /// Its bytes.
    pub bytes: u64,
}

impl Part {
    /// More segments than a direct request holds.
    pub fn is_indirect(&self) -> bool {
        self.pages as usize > BLKIF_MAX_SEGMENTS_PER_REQUEST
    }

    /// Indirect descriptor pages it needs.
    pub fn indirect_pages(&self) -> u32 {
        if self.is_indirect() {
            self.pages.div_ceil(SEGMENTS_PER_INDIRECT_PAGE as u32)
        } else {
            0
        }
    }

    /// Its 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.bytes / SECTOR_SIZE as u64
    }

    /// The segment for its `k`th page, granted as `gref`.
    pub fn segment(&self, k: u32, gref: u32) -> BlkifRequestSegment {
        let start = u64::from(k) * PAGE_SIZE as u64;
        let bytes = (self.bytes - start).min(PAGE_SIZE as u64);
        // 1..=8 sectors: the transfer is a whole number of 512-byte sectors.
        let last_sect = (bytes / SECTOR_SIZE as u64).saturating_sub(1) as u8;
        BlkifRequestSegment { gref, first_sect: 0, last_sect }
    }
}

/// A transfer's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    offset: u64,
    len: u64,
    pages: u32,
    per_request: u32,
}

impl Plan {
    /// `len` bytes at byte `offset` of the disk (both multiples of 512, `len > 0`), with `indirect_segments` per
    /// indirect request (0: none).
    pub fn new(offset: u64, len: u64, indirect_segments: u32) -> Plan {
        let pages = len.div_ceil(PAGE_SIZE as u64) as u32;
        let direct = BLKIF_MAX_SEGMENTS_PER_REQUEST as u32;
        let per_request = if pages > direct && indirect_segments > direct { indirect_segments } else { direct };
        Plan { offset, len, pages, per_request }
    }

    /// Data pages.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Ring requests.
    pub fn requests(&self) -> u32 {
        self.pages.div_ceil(self.per_request)
    }

    /// The requests, in disk order.
    pub fn parts(&self) -> impl Iterator<Item = Part> + '_ {
        (0..self.requests()).map(move |k| {
            let first_page = k * self.per_request;
            let start = u64::from(first_page) * PAGE_SIZE as u64;
            Part {
                first_page,
                pages: self.per_request.min(self.pages - first_page),
                sector: (self.offset + start) / SECTOR_SIZE as u64,
                bytes: (self.len - start).min(u64::from(self.per_request) * PAGE_SIZE as u64),
            }
        })
    }

    /// What the transfer takes while it is pending.
    pub fn resources(&self) -> Resources {
        Resources {
            ring_slots: self.requests(),
            data_pages: self.pages,
            indirect_pages: self.parts().map(|p| p.indirect_pages()).sum(),
        }
    }
}
