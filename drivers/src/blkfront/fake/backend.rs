//! The fake blkback: takes requests off the ring as bytes, resolves every grant ref through the store, performs
//! reads, writes, flushes and discards on an in-memory disk, and answers as Linux's blkback does (echoing
//! `indirect_op` for an indirect request; `BLKIF_RSP_ERROR` for a write to a read-only disk or a range past the
//! end; `BLKIF_RSP_EOPNOTSUPP` for an operation it does not offer). What the front end gets wrong is recorded in
//! [`FakeBlkback::violations`]. Misbehaviour is switched on by the `pub` fields and methods under "hostile".

#[allow(unused_imports)] // the prelude has them under cfg(test)
use std::{format, string::String, vec, vec::Vec};

use super::{DiskSpec, SharedStore};
use crate::blkfront::wire::{
    BlkifRequest, BlkifRequestDiscard, BlkifRequestIndirect, BlkifRequestSegment, BlkifResponse,
    BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ,
    BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, ENTRY_SIZE,
    PAGE_SIZE, SECTORS_PER_PAGE, SECTOR_SIZE, SEGMENTS_PER_INDIRECT_PAGE, SEGMENT_SIZE,
};
use crate::ring::offsets;
use crate::ring::testing::{BackRing, Page};

/// A request as the backend took it off the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `operation` as sent (`BLKIF_OP_INDIRECT` for an indirect request).
    pub operation: u8,
    /// `indirect_op` of an indirect request.
    pub indirect_op: Option<u8>,
    pub id: u64,
    pub handle: u16,
    /// `sector_number`.
    pub sector: u64,
    /// The segments (inline, or read from the indirect pages).
    pub segments: Vec<BlkifRequestSegment>,
    /// The indirect pages' refs.
    pub indirect_grefs: Vec<u32>,
    /// `nr_sectors` of a discard.
    pub nr_sectors: u64,
}

impl Seen {
    fn new(operation: u8, id: u64, handle: u16, sector: u64) -> Seen {
        Seen {
            operation,
            indirect_op: None,
            id,
            handle,
            sector,
            segments: Vec::new(),
            indirect_grefs: Vec::new(),
            nr_sectors: 0,
        }
    }
}

pub struct FakeBlkback {
    pub ring: BackRing,
    pub store: SharedStore,
    pub spec: DiskSpec,
    /// The disk's bytes.
    pub disk: Vec<u8>,
    /// Every request taken, in order.
    pub log: Vec<Seen>,
    /// What the front end got wrong (empty when it behaves).
    pub violations: Vec<String>,
    /// Flushes (`FLUSH_DISKCACHE` or `WRITE_BARRIER`) performed.
    pub flushes: u32,
    /// Times a response push decided the front end must be notified.
    pub notified_front: u32,

    // ----- hostile -----
    /// Consume and perform requests but hold their responses (until [`FakeBlkback::release_held`]).
    pub hold: bool,
    pub held: Vec<BlkifResponse>,
    /// Answer `BLKIF_RSP_ERROR` (without performing it) to any read or write touching this 512-byte sector.
    pub error_sector: Option<u64>,
    /// Answer these operations `BLKIF_RSP_EOPNOTSUPP` even if offered.
    pub refuse: Vec<u8>,
    /// Echo `BLKIF_OP_INDIRECT` rather than `indirect_op` in an indirect request's response.
    pub echo_indirect: bool,
    /// Give the next response an id never issued (in place of the real one).
    pub bad_id_next: bool,
    /// Send the next response twice, the copy in place of the response after it (which is never sent).
    pub duplicate_next: bool,
    /// Give the next response the wrong operation (READ for WRITE and back, BARRIER for FLUSH...).
    pub wrong_operation_next: bool,
    /// Give the next response this status.
    pub status_next: Option<i16>,
    /// A copy to send in place of the next response.
    duplicate: Option<BlkifResponse>,
}

impl FakeBlkback {
    /// Attached to the ring the front end initialised, with a zeroed disk.
    pub fn new(ring: Page, store: SharedStore, spec: DiskSpec) -> FakeBlkback {
        FakeBlkback {
            ring: BackRing::attach(ring, ENTRY_SIZE),
            store,
            spec,
            disk: vec![0; spec.bytes as usize],
            log: Vec::new(),
            violations: Vec::new(),
            flushes: 0,
            notified_front: 0,
            hold: false,
            held: Vec::new(),
            error_sector: None,
            refuse: Vec::new(),
            echo_indirect: false,
            bad_id_next: false,
            duplicate_next: false,
            wrong_operation_next: false,
            status_next: None,
            duplicate: None,
        }
    }

    /// Takes every published request, performs it and answers it (or holds the answer), publishing responses as
    /// it goes; then re-arms `req_event` as blkback does (`RING_FINAL_CHECK_FOR_REQUESTS`). Returns how many
    /// requests it took.
    pub fn process(&mut self) -> usize {
        let mut taken = 0;
        loop {
            while let Some(bytes) = self.ring.take_request() {
                taken += 1;
                let entry: [u8; ENTRY_SIZE] = bytes.as_slice().try_into().unwrap();
                let response = self.perform(&entry);
                self.respond(response);
            }
            self.push();
            if !self.ring.final_check_for_requests() {
                return taken;
            }
        }
    }

    fn push(&mut self) {
        if self.ring.push_responses_and_check_notify() {
            self.notified_front += 1;
        }
    }

    /// Writes a response, after applying the hostile switches. A backend gives exactly one response per request,
    /// so every bad response takes the place of a real one.
    fn respond(&mut self, mut response: BlkifResponse) {
        if let Some(copy) = self.duplicate.take() {
            response = copy;
        } else if std::mem::take(&mut self.bad_id_next) {
            response.id = u64::MAX - 1;
        }
        if std::mem::take(&mut self.wrong_operation_next) {
            response.operation ^= 1;
        }
        if let Some(status) = self.status_next.take() {
            response.status = status;
        }
        if std::mem::take(&mut self.duplicate_next) {
            self.duplicate = Some(response);
        }
        if self.hold {
            self.held.push(response);
        } else {
            self.ring.put_response(&response.emit());
        }
    }

    /// Answers the held requests, in the order they were taken.
    pub fn release_held(&mut self) {
        for response in std::mem::take(&mut self.held) {
            self.ring.put_response(&response.emit());
        }
        self.push();
    }

    /// Answers the held requests, last taken first (out of order).
    pub fn release_held_reversed(&mut self) {
        self.held.reverse();
        self.release_held();
    }

    /// Writes `response` as is, unpublished (a test playing a hostile backend by hand).
    pub fn put_raw(&mut self, response: BlkifResponse) {
        self.ring.put_response(&response.emit());
    }

    /// Publishes the responses written so far.
    pub fn publish(&mut self) {
        self.push();
    }

    /// Publishes an `rsp_prod` `by` responses beyond what it has produced.
    pub fn run_rsp_prod_ahead(&mut self, by: u32) {
        let at = self.ring.rsp_prod_pvt.wrapping_add(by);
        self.ring.set_header(offsets::RSP_PROD, at);
    }

    fn violation(&mut self, what: String) -> i16 {
        self.violations.push(what);
        BLKIF_RSP_ERROR
    }

    /// One request, as bytes; its response.
    fn perform(&mut self, entry: &[u8; ENTRY_SIZE]) -> BlkifResponse {
        let operation = entry[0];
        match operation {
            BLKIF_OP_READ | BLKIF_OP_WRITE | BLKIF_OP_WRITE_BARRIER | BLKIF_OP_FLUSH_DISKCACHE => {
                let r = BlkifRequest::parse(entry);
                let nr = usize::from(r.nr_segments);
                let segments = r.seg[..nr.min(BLKIF_MAX_SEGMENTS_PER_REQUEST)].to_vec();
                self.log
                    .push(Seen { segments: segments.clone(), ..Seen::new(operation, r.id, r.handle, r.sector_number) });
                let status = match operation {
                    BLKIF_OP_WRITE_BARRIER | BLKIF_OP_FLUSH_DISKCACHE => self.flush(operation, nr),
                    _ if nr == 0 || nr > BLKIF_MAX_SEGMENTS_PER_REQUEST => {
                        self.violation(format!("a direct request with {nr} segments"))
                    }
                    _ => self.transfer(operation, r.sector_number, &segments),
                };
                BlkifResponse { id: r.id, operation, status }
            }
            BLKIF_OP_INDIRECT => {
                let r = BlkifRequestIndirect::parse(entry);
                let (segments, grefs, problem) = self.indirect_segments(&r);
                self.log.push(Seen {
                    indirect_op: Some(r.indirect_op),
                    segments: segments.clone(),
                    indirect_grefs: grefs,
                    ..Seen::new(operation, r.id, r.handle, r.sector_number)
                });
                let status = match problem {
                    Some(what) => self.violation(what),
                    None => self.transfer(r.indirect_op, r.sector_number, &segments),
                };
                let echoed = if self.echo_indirect { BLKIF_OP_INDIRECT } else { r.indirect_op };
                BlkifResponse { id: r.id, operation: echoed, status }
            }
            BLKIF_OP_DISCARD => {
                let r = BlkifRequestDiscard::parse(entry);
                self.log
                    .push(Seen { nr_sectors: r.nr_sectors, ..Seen::new(operation, r.id, r.handle, r.sector_number) });
                let status = self.discard(r.sector_number, r.nr_sectors);
                BlkifResponse { id: r.id, operation, status }
            }
            _ => {
                let r = BlkifRequest::parse(entry);
                self.log.push(Seen::new(operation, r.id, r.handle, r.sector_number));
                BlkifResponse { id: r.id, operation, status: BLKIF_RSP_EOPNOTSUPP }
            }
        }
    }

    /// An indirect request's segments, read from its descriptor pages; what is wrong with it, if anything.
    fn indirect_segments(&self, r: &BlkifRequestIndirect) -> (Vec<BlkifRequestSegment>, Vec<u32>, Option<String>) {
        let nr = usize::from(r.nr_segments);
        let pages = nr.div_ceil(SEGMENTS_PER_INDIRECT_PAGE).min(r.indirect_grefs.len());
        let grefs = r.indirect_grefs[..pages].to_vec();
        if !matches!(r.indirect_op, BLKIF_OP_READ | BLKIF_OP_WRITE) {
            return (vec![], grefs, Some(format!("indirect_op {}", r.indirect_op)));
        }
        if nr == 0 || nr > self.spec.max_indirect_segments as usize {
            let max = self.spec.max_indirect_segments;
            return (vec![], grefs, Some(format!("an indirect request with {nr} segments (we offer {max})")));
        }
        let store = self.store.borrow();
        let mut segments = Vec::with_capacity(nr);
        for (k, &gref) in grefs.iter().enumerate() {
            if !store.is_indirect(gref) {
                return (
                    segments,
                    grefs.clone(),
                    Some(format!("indirect_grefs[{k}] = {gref} is not an indirect page")),
                );
            }
            let page = &store.pages[&gref];
            let here = (nr - k * SEGMENTS_PER_INDIRECT_PAGE).min(SEGMENTS_PER_INDIRECT_PAGE);
            for i in 0..here {
                let at = i * SEGMENT_SIZE;
                segments.push(BlkifRequestSegment::parse(page[at..at + SEGMENT_SIZE].try_into().unwrap()));
            }
        }
        (segments, grefs, None)
    }

    fn flush(&mut self, operation: u8, nr_segments: usize) -> i16 {
        let offered = match operation {
            BLKIF_OP_FLUSH_DISKCACHE => self.spec.flush_cache,
            _ => self.spec.barrier,
        };
        if !offered || self.refuse.contains(&operation) {
            return BLKIF_RSP_EOPNOTSUPP;
        }
        if nr_segments != 0 {
            return self.violation(format!("a flush with {nr_segments} segments"));
        }
        self.flushes += 1;
        BLKIF_RSP_OKAY
    }

    fn discard(&mut self, sector: u64, nr_sectors: u64) -> i16 {
        if !self.spec.discard || self.refuse.contains(&BLKIF_OP_DISCARD) {
            return BLKIF_RSP_EOPNOTSUPP;
        }
        if self.spec.read_only {
            return self.violation("a discard on a read-only disk".into());
        }
        let Some((start, len)) = self.extent(sector, nr_sectors * SECTOR_SIZE as u64) else {
            return self.violation(format!("a discard of sectors {sector}+{nr_sectors} outside the disk or unaligned"));
        };
        self.disk[start..start + len].fill(0);
        BLKIF_RSP_OKAY
    }

    /// The byte range of `len` bytes at 512-byte sector `sector`, if it is inside the disk and aligned to the
    /// disk's sector size.
    fn extent(&self, sector: u64, len: u64) -> Option<(usize, usize)> {
        let start = sector.checked_mul(SECTOR_SIZE as u64)?;
        let end = start.checked_add(len)?;
        let size = u64::from(self.spec.sector_size);
        let aligned = start.is_multiple_of(size) && len.is_multiple_of(size);
        (end <= self.spec.bytes && aligned).then_some((start as usize, len as usize))
    }

    /// A read or write of `segments` starting at `sector`: every segment checked (its page a data page, its
    /// sectors inside the page), then the whole range (inside the disk, aligned), then performed.
    fn transfer(&mut self, operation: u8, sector: u64, segments: &[BlkifRequestSegment]) -> i16 {
        let mut total = 0u64;
        for (k, s) in segments.iter().enumerate() {
            if s.first_sect > s.last_sect || usize::from(s.last_sect) >= SECTORS_PER_PAGE {
                return self.violation(format!("segment {k}: sectors {}..={}", s.first_sect, s.last_sect));
            }
            if !self.store.borrow().is_data(s.gref) {
                return self.violation(format!("segment {k}: gref {} is not a data page", s.gref));
            }
            total += (s.sectors() * SECTOR_SIZE) as u64;
        }
        let Some((mut at, _)) = self.extent(sector, total) else {
            let size = self.spec.sector_size;
            return self.violation(format!("sectors {sector}+{total} bytes: outside the disk or not {size}-aligned"));
        };
        if operation == BLKIF_OP_WRITE && self.spec.read_only {
            return BLKIF_RSP_ERROR;
        }
        if let Some(bad) = self.error_sector {
            if (sector..sector + total / SECTOR_SIZE as u64).contains(&bad) {
                return BLKIF_RSP_ERROR;
            }
        }
        let mut store = self.store.borrow_mut();
        for s in segments {
            let page = store.pages.get_mut(&s.gref).unwrap();
            let from = usize::from(s.first_sect) * SECTOR_SIZE;
            let len = s.sectors() * SECTOR_SIZE;
            assert!(from + len <= PAGE_SIZE);
            if operation == BLKIF_OP_WRITE {
                self.disk[at..at + len].copy_from_slice(&page[from..from + len]);
            } else {
                page[from..from + len].copy_from_slice(&self.disk[at..at + len]);
            }
            at += len;
        }
        BLKIF_RSP_OKAY
    }
}
