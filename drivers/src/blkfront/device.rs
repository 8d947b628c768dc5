//! The blkfront device: the ring, the pool of data pages and indirect descriptor pages, the event channel, and
//! the operations in flight.
//!
//! Pages are granted once, by the platform, for the device's lifetime (which is also what `feature-persistent`
//! asks of us). An operation takes the data pages it needs from the pool when submitted (a write's data is copied
//! in then) and gives them back when all its requests are answered, or, for a successful read, once the caller
//! copied the data out ([`Blkfront::read_into`]) or let it go ([`Blkfront::release`]).
//!
//! Submission is all or nothing: an operation whose requests or pages do not all fit now is refused
//! ([`ErrorKind::Busy`]) before anything touches the ring, and retried by the caller after a poll. Completion is in
//! `complete`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use sirocco_boot_logic::trace::{self, Category};

use super::config::{DiskInfo, Transport};
use super::error::{BlkError, Counters, ErrorKind, Fault, OpId, OpKind, Resources};
use super::plan::{Part, Plan};
use super::shadow::{OpTable, Request, Shadow};
use super::wire::{
    field, BlkifRequest, BlkifRequestDiscard, BlkifRequestIndirect, BlkifRequestSegment,
    BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE,
    BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, ENTRY_SIZE, MAX_INDIRECT_SEGMENTS,
    PAGE_SIZE, SECTOR_SIZE, SEGMENTS_PER_INDIRECT_PAGE, SEGMENT_SIZE,
};
use crate::frontend::DeviceId;
use crate::grant::GrantRef;
use crate::ring::{FrontRing, Notify, SharedRing};

/// The pages the device moves data through, granted to the backend once by the platform, **writable** (the
/// backend writes read data into data pages, and with `feature-persistent` Linux's blkback maps every grant
/// writable, indirect pages included). Page indices run from 0 to the count; the driver passes only those, and only
/// `offset + len <= PAGE_SIZE`.
pub trait BlockBuffers {
    /// How many data pages there are (the largest transfer is this many pages).
    fn data_pages(&self) -> u32;
    /// The grant ref of data page `page`.
    fn data_gref(&self, page: u32) -> GrantRef;
    /// Copies `data` into data page `page` at `offset` (a write's data, before the request is pushed).
    fn write_data(&mut self, page: u32, offset: usize, data: &[u8]);
    /// Copies `out.len()` bytes from data page `page` at `offset` (a read's data, after its response).
    fn read_data(&self, page: u32, offset: usize, out: &mut [u8]);
    /// How many indirect descriptor pages there are (0: no indirect requests).
    fn indirect_pages(&self) -> u32;
    /// The grant ref of indirect page `page`.
    fn indirect_gref(&self, page: u32) -> GrantRef;
    /// Copies segment descriptors into indirect page `page` at `offset`.
    fn write_indirect(&mut self, page: u32, offset: usize, bytes: &[u8]);
}

/// How a flush is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushMethod {
    /// `BLKIF_OP_FLUSH_DISKCACHE` (`feature-flush-cache`): commit the backing device's volatile cache.
    FlushDiskCache,
    /// `BLKIF_OP_WRITE_BARRIER` (`feature-barrier`): every earlier write completes first, durably (Linux's blkback
    /// drains and flushes), as an empty request.
    Barrier,
}

impl FlushMethod {
    /// Its `BLKIF_OP_*`.
    pub fn operation(self) -> u8 {
        match self {
            FlushMethod::FlushDiskCache => BLKIF_OP_FLUSH_DISKCACHE,
            FlushMethod::Barrier => BLKIF_OP_WRITE_BARRIER,
        }
    }
}

/// Where the device is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Ring initialised; I/O is refused until the backend is Connected and the disk known.
    Initialising,
    /// The backend is Connected ([`Blkfront::backend_connected`]): I/O flows.
    Connected,
    /// The backend broke the ring's index protocol; nothing more is read from or written to the ring, and every
    /// operation pending then failed.
    Broken(Fault),
    /// The domain resumed in a new domain ([`Blkfront::resume`]): the requests the old backend had not answered
    /// wait to be sent again once the new backend is Connected; new I/O is refused for now
    /// ([`ErrorKind::Resuming`], transient like `Busy`).
    Resuming,
    /// The backend closed the device (its state went Closing or Closed, or its directory vanished): every
    /// operation pending then failed with [`ErrorKind::BackendClosed`]; new ones are refused the same way.
    Closed,
}

/// A blkfront device: the ring over pages `S`, the data and indirect pages `B`, the event channel `E`.
///
/// See the module documentation of [`super`] for the platform's call sequence. The driver sends the event itself
/// (through `E`) whenever the ring protocol says the backend must be woken.
pub struct Blkfront<S: SharedRing, B: BlockBuffers, E: Notify> {
    pub(super) device: DeviceId,
    /// `blkif_vdev_t handle`: the device id (truncated to 16 bits, as Linux does; backends ignore it).
    pub(super) handle: u16,
    pub(super) ring: FrontRing<S>,
    pub(super) buffers: B,
    pub(super) evtchn: E,
    pub(super) transport: Transport,
    pub(super) disk: Option<DiskInfo>,
    /// Segments per indirect request in use (0: none).
    pub(super) indirect_segments: u32,
    pub(super) phase: Phase,
    pub(super) shadow: Shadow,
    pub(super) ops: OpTable,
    /// Completed operations whose completion has not been taken, oldest first.
    pub(super) completed: VecDeque<OpId>,
    /// Free data pages, the next to use last.
    pub(super) free_data: Vec<u32>,
    /// Free indirect pages.
    pub(super) free_indirect: Vec<u32>,
    /// Data pages withheld from reuse (a lost request's).
    pub(super) quarantined_data: u32,
    /// Indirect pages withheld from reuse.
    pub(super) quarantined_indirect: u32,
    /// After a resume: the requests to send again once the new backend is Connected, as they were on the ring.
    pub(super) replay: Vec<(Request, [u8; ENTRY_SIZE])>,
    pub(super) counters: Counters,
}

impl<S: SharedRing, B: BlockBuffers, E: Notify> Blkfront<S, B, E> {
    /// Initialises the ring (`ring`: the `transport.ring_pages()` zeroed pages, before they are granted) and takes
    /// the buffers, all free, and the event channel. `device` names the device in errors and gives the requests'
    /// `handle`.
    pub fn new(device: DeviceId, ring: S, transport: Transport, buffers: B, evtchn: E) -> Self {
        Self::with_ring_start(device, ring, transport, buffers, evtchn, 0)
    }

    /// As [`Blkfront::new`], the ring's indices starting at `start` (tests of the `u32` wrap-around).
    pub(crate) fn with_ring_start(
        device: DeviceId,
        ring: S,
        transport: Transport,
        buffers: B,
        evtchn: E,
        start: u32,
    ) -> Self {
        let ring = FrontRing::init_pages_at(ring, ENTRY_SIZE, transport.ring_pages(), start);
        let shadow = Shadow::new(ring.size());
        let free_data = (0..buffers.data_pages()).rev().collect();
        let free_indirect = (0..buffers.indirect_pages()).rev().collect();
        Blkfront {
            device,
            handle: device.id as u16,
            ring,
            buffers,
            evtchn,
            transport,
            disk: None,
            indirect_segments: 0,
            phase: Phase::Initialising,
            shadow,
            ops: OpTable::new(),
            completed: VecDeque::new(),
            free_data,
            free_indirect,
            quarantined_data: 0,
            quarantined_indirect: 0,
            replay: Vec::new(),
            counters: Counters::default(),
        }
    }

    /// The device.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// The device's phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The transport it was built for.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The disk, once the backend is Connected. Its features lose an optional operation the backend answered
    /// `BLKIF_RSP_EOPNOTSUPP`.
    pub fn disk(&self) -> Option<&DiskInfo> {
        self.disk.as_ref()
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The buffers.
    pub fn buffers(&self) -> &B {
        &self.buffers
    }

    /// The event channel.
    pub fn evtchn(&self) -> &E {
        &self.evtchn
    }

    /// Requests the ring holds.
    pub fn ring_size(&self) -> u32 {
        self.ring.size()
    }

    /// Segments per indirect request in use (0: every request is direct, at most 11 segments).
    pub fn indirect_segments(&self) -> u32 {
        self.indirect_segments
    }

    /// The most segments (pages) one request carries.
    pub fn segments_per_request(&self) -> u32 {
        if self.indirect_segments > 0 {
            self.indirect_segments
        } else {
            BLKIF_MAX_SEGMENTS_PER_REQUEST as u32
        }
    }

    /// Ring slots and pages free now.
    pub fn free(&self) -> Resources {
        Resources {
            ring_slots: self.ring.free_requests().min(self.shadow.free()),
            data_pages: self.free_data.len() as u32,
            indirect_pages: self.free_indirect.len() as u32,
        }
    }

    /// The largest read or write one operation may be, in bytes: bounded by the data pages, the ring (every request
    /// at once) and the indirect pages (less any withheld from reuse). Larger transfers are refused
    /// ([`ErrorKind::TooLarge`]); split them.
    pub fn max_transfer(&self) -> u64 {
        let segments = u64::from(self.segments_per_request());
        let data = self.buffers.data_pages() - self.quarantined_data;
        let mut pages = u64::from(data).min(u64::from(self.ring.size()) * segments);
        if self.indirect_segments > 0 {
            let per_request = u64::from(self.indirect_segments.div_ceil(SEGMENTS_PER_INDIRECT_PAGE as u32));
            let indirect = self.buffers.indirect_pages() - self.quarantined_indirect;
            pages = pages.min(u64::from(indirect) / per_request * segments);
        }
        pages * PAGE_SIZE as u64
    }

    /// Operations submitted whose requests are not all answered (abandoned ones included).
    pub fn pending(&self) -> usize {
        self.ops.pending_count()
    }

    /// Operations the driver holds: pending (abandoned ones included), or completed with their completion or
    /// read data not taken yet. 0 once everything is answered and collected.
    pub fn ops_in_use(&self) -> usize {
        self.ops.in_use()
    }

    /// Completed operations waiting for [`Blkfront::next_completion`] or [`Blkfront::take_completion`].
    pub fn completions_waiting(&self) -> usize {
        self.completed.len()
    }

    /// The backend reached Connected and described the disk: I/O is allowed from now on, with indirect requests
    /// of `min(negotiated, the backend's feature-max-indirect-segments now, what the indirect pages hold)`
    /// segments. Ignored once the device is broken.
    pub fn backend_connected(&mut self, disk: DiskInfo) {
        if matches!(self.phase, Phase::Broken(_) | Phase::Closed) {
            return;
        }
        let pages_hold = self.buffers.indirect_pages().saturating_mul(SEGMENTS_PER_INDIRECT_PAGE as u32);
        let segments = self
            .transport
            .indirect_segments
            .min(disk.features.max_indirect_segments)
            .min(pages_hold)
            .min(MAX_INDIRECT_SEGMENTS as u32);
        let resumed = self.phase == Phase::Resuming;
        let before = self.disk;
        self.indirect_segments = if segments as usize > BLKIF_MAX_SEGMENTS_PER_REQUEST { segments } else { 0 };
        self.disk = Some(disk);
        self.phase = Phase::Connected;
        if resumed {
            self.replay(before, disk);
        }
    }

    /// After a resume in a new domain (`xl restore`, `xl migrate`), with the old backend gone: starts over on
    /// fresh ring pages `ring` and the new event channel `evtchn`, and `regrant` grants every data and indirect
    /// page again to the new backend under the same refs (the new domain's grant table starts empty), so the
    /// requests the old backend had not answered can be sent again as they were (Linux's `blkif_recover`). The
    /// operations stay pending: their callers see nothing but a delay. The device is [`Phase::Resuming`] until
    /// [`Blkfront::backend_connected`], which sends them. Returns how many requests wait, or `regrant`'s error.
    ///
    /// Replaying is safe because every request is idempotent on the same data (a read, a write of the same bytes
    /// from the same pages, a flush, a discard), which also covers a request the old backend completed without
    /// its answer reaching us. A device already broken or closed is reset instead (nothing was pending).
    pub fn resume<X>(&mut self, ring: S, evtchn: E, regrant: impl FnOnce(&mut B) -> Result<(), X>) -> Result<usize, X> {
        self.evtchn = evtchn;
        if matches!(self.phase, Phase::Broken(_) | Phase::Closed) {
            self.reset(ring);
            regrant(&mut self.buffers)?;
            return Ok(0);
        }
        self.replay.extend(self.shadow.drain());
        self.ring = FrontRing::init_pages_at(ring, ENTRY_SIZE, self.transport.ring_pages(), 0);
        self.shadow = Shadow::new(self.ring.size());
        self.phase = Phase::Resuming;
        self.counters.resumes += 1;
        regrant(&mut self.buffers)?;
        Ok(self.replay.len())
    }

    /// Sends again what [`Blkfront::resume`] kept, now that the new backend is Connected: unless the disk changed
    /// under us (another size or sector size: then every pending operation fails with
    /// [`ErrorKind::BackendClosed`], since what it meant is gone) or the new backend takes fewer indirect segments
    /// than a kept request uses (its operation fails so, as its descriptors are not split again here). Failures
    /// are counted in `replay_failed`.
    fn replay(&mut self, before: Option<DiskInfo>, now: DiskInfo) {
        let replay = core::mem::take(&mut self.replay);
        if before.is_some_and(|b| (b.sectors, b.sector_size) != (now.sectors, now.sector_size)) {
            self.counters.replay_failed += self.fail_pending(ErrorKind::BackendClosed) as u64;
            return;
        }
        let mut summary = super::PollSummary::default();
        for (request, mut entry) in replay {
            let segments = u16::from_le_bytes(entry[field::INDIRECT_NR_SEGMENTS].try_into().expect("2 bytes"));
            if request.indirect && self.indirect_segments < u32::from(segments) {
                self.complete_part(&request, Some(ErrorKind::BackendClosed), false, &mut summary);
                self.counters.replay_failed += 1;
                continue;
            }
            let Some(id) = self.shadow.insert(request) else { unreachable_room() };
            entry[field::ID].copy_from_slice(&id.to_le_bytes());
            self.push(&entry);
            self.counters.replayed += 1;
        }
        self.publish();
    }

    /// Starts over on fresh ring pages `ring` (zeroed, not yet granted; `transport().ring_pages()` of them) for a
    /// new backend, once the old one has let go of our pages: its state reached Closed, or it is gone (the same
    /// moment netfront's reset is for). Works from any phase.
    ///
    /// Every operation still pending fails with [`ErrorKind::BackendClosed`] (an abandoned one is dropped);
    /// every data and indirect page is free again, lost requests' and failed operations' included, except those
    /// of successful reads whose data waits to be collected; request ids start afresh on the new ring. The
    /// device is back in [`Phase::Initialising`], the disk forgotten: I/O is refused until
    /// [`Blkfront::backend_connected`]. Returns how many operations failed.
    pub fn reset(&mut self, ring: S) -> usize {
        let failed = self.backend_closed();
        let mut held = alloc::vec![false; self.buffers.data_pages() as usize];
        self.ops.keep_only_read_data(&mut held);
        self.free_data = (0..self.buffers.data_pages()).rev().filter(|&p| !held[p as usize]).collect();
        self.free_indirect = (0..self.buffers.indirect_pages()).rev().collect();
        (self.quarantined_data, self.quarantined_indirect) = (0, 0);
        self.ring = FrontRing::init_pages_at(ring, ENTRY_SIZE, self.transport.ring_pages(), 0);
        self.shadow = Shadow::new(self.ring.size());
        self.phase = Phase::Initialising;
        self.disk = None;
        self.indirect_segments = 0;
        self.counters.resets += 1;
        failed
    }

    pub(super) fn error(&self, kind: ErrorKind) -> BlkError {
        BlkError { device: self.device, kind }
    }

    /// Counts and returns a refusal.
    fn refuse<T>(&mut self, kind: ErrorKind) -> Result<T, BlkError> {
        if matches!(kind, ErrorKind::Busy { .. } | ErrorKind::AfterAbandoned { .. } | ErrorKind::Resuming) {
            self.counters.busy += 1;
        } else {
            self.counters.refused += 1;
        }
        Err(self.error(kind))
    }

    /// The disk, if I/O may be submitted.
    fn ready(&mut self) -> Result<DiskInfo, BlkError> {
        match (self.phase, self.disk) {
            (Phase::Connected, Some(disk)) => Ok(disk),
            (Phase::Broken(fault), _) => self.refuse(ErrorKind::Broken(fault)),
            (Phase::Closed, _) => self.refuse(ErrorKind::BackendClosed),
            (Phase::Resuming, _) => self.refuse(ErrorKind::Resuming),
            _ => self.refuse(ErrorKind::NotConnected),
        }
    }

    /// Checks a byte range: non-empty, sector-aligned, inside the disk.
    fn check_extent(&mut self, disk: &DiskInfo, offset: u64, len: u64) -> Result<(), BlkError> {
        let sector_size = u64::from(disk.sector_size);
        if len == 0 {
            return self.refuse(ErrorKind::Empty);
        }
        if !offset.is_multiple_of(sector_size) || !len.is_multiple_of(sector_size) {
            return self.refuse(ErrorKind::Unaligned { offset, len, sector_size: disk.sector_size });
        }
        let capacity = disk.capacity();
        if offset.checked_add(len).is_none_or(|end| end > capacity) {
            return self.refuse(ErrorKind::OutOfRange { offset, len, capacity });
        }
        Ok(())
    }

    /// Refuses for now while an abandoned write or discard on these bytes is pending: a later operation on its
    /// sectors is sent only once the backend has answered it, so it is never reordered with it.
    fn check_abandoned(&mut self, offset: u64, len: u64) -> Result<(), BlkError> {
        match self.ops.abandoned_write(Some((offset, len))) {
            Some(op) => self.refuse(ErrorKind::AfterAbandoned { op }),
            None => Ok(()),
        }
    }

    /// Refuses for now unless `needed` is free.
    fn check_free(&mut self, needed: Resources) -> Result<(), BlkError> {
        let free = self.free();
        if needed.ring_slots > free.ring_slots
            || needed.data_pages > free.data_pages
            || needed.indirect_pages > free.indirect_pages
        {
            return self.refuse(ErrorKind::Busy { needed, free });
        }
        Ok(())
    }

    // ----- submitting -----

    /// Reads `len` bytes at byte `offset` of the disk (both multiples of its sector size) into data pages; once
    /// its [`Completion`](super::Completion) is taken, copy them out with [`Blkfront::read_into`]. Nothing is
    /// submitted on error.
    pub fn submit_read(&mut self, offset: u64, len: u64) -> Result<OpId, BlkError> {
        self.submit_transfer(OpKind::Read, offset, len, None)
    }

    /// Writes `data` at byte `offset` of the disk (both its length and the offset multiples of the sector size).
    /// The data is copied into data pages now: the caller's buffer is free again on return. Nothing is submitted
    /// on error.
    pub fn submit_write(&mut self, offset: u64, data: &[u8]) -> Result<OpId, BlkError> {
        self.submit_transfer(OpKind::Write, offset, data.len() as u64, Some(data))
    }

    fn submit_transfer(&mut self, kind: OpKind, offset: u64, len: u64, data: Option<&[u8]>) -> Result<OpId, BlkError> {
        let disk = self.ready()?;
        if kind == OpKind::Write && disk.read_only {
            return self.refuse(ErrorKind::ReadOnly);
        }
        self.check_extent(&disk, offset, len)?;
        let max = self.max_transfer();
        if len > max {
            return self.refuse(ErrorKind::TooLarge { len, max });
        }
        self.check_abandoned(offset, len)?;
        let plan = Plan::new(offset, len, self.indirect_segments);
        self.check_free(plan.resources())?;

        let pages = self.free_data.split_off(self.free_data.len() - plan.pages() as usize);
        if let Some(data) = data {
            for (chunk, &page) in data.chunks(PAGE_SIZE).zip(&pages) {
                self.buffers.write_data(page, 0, chunk);
            }
        }
        let operation = if kind == OpKind::Write { BLKIF_OP_WRITE } else { BLKIF_OP_READ };
        let id = self.ops.insert(kind, offset, len, plan.requests());
        for part in plan.parts() {
            let part_pages = &pages[part.first_page as usize..(part.first_page + part.pages) as usize];
            self.push_transfer_part(id.index, operation, &part, part_pages);
        }
        if let Some(op) = self.ops.get_mut(id) {
            op.pages = pages;
        }
        self.publish();
        match kind {
            OpKind::Write => self.counters.writes += 1,
            _ => self.counters.reads += 1,
        }
        Ok(id)
    }

    /// Pushes one read or write request (direct, or indirect with its descriptors written first).
    fn push_transfer_part(&mut self, op: u32, operation: u8, part: &Part, pages: &[u32]) {
        let segment = |buffers: &B, k: usize, page: u32| part.segment(k as u32, buffers.data_gref(page).0);
        let mut request =
            Request { indirect: part.is_indirect(), ..Request::new(op, operation, part.sector, part.sectors()) };
        if !part.is_indirect() {
            let mut seg = [BlkifRequestSegment::default(); BLKIF_MAX_SEGMENTS_PER_REQUEST];
            for (k, (slot, &page)) in seg.iter_mut().zip(pages).enumerate() {
                *slot = segment(&self.buffers, k, page);
            }
            let id = self.shadow.insert(request).unwrap_or_else(|| unreachable_room());
            let entry = BlkifRequest {
                operation,
                nr_segments: part.pages as u8,
                handle: self.handle,
                id,
                sector_number: part.sector,
                seg,
            };
            self.push(&entry.emit());
            return;
        }
        // The descriptors, 512 to an indirect page, written a batch at a time.
        const BATCH: usize = 32;
        let mut indirect_grefs = [0; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
        for (k, descriptors) in pages.chunks(SEGMENTS_PER_INDIRECT_PAGE).enumerate() {
            let indirect = self.free_indirect.pop().unwrap_or_else(|| unreachable_room());
            for (b, batch) in descriptors.chunks(BATCH).enumerate() {
                let mut bytes = [0u8; BATCH * SEGMENT_SIZE];
                for (i, &page) in batch.iter().enumerate() {
                    let n = k * SEGMENTS_PER_INDIRECT_PAGE + b * BATCH + i;
                    bytes[i * SEGMENT_SIZE..][..SEGMENT_SIZE].copy_from_slice(&segment(&self.buffers, n, page).emit());
                }
                self.buffers.write_indirect(indirect, b * BATCH * SEGMENT_SIZE, &bytes[..batch.len() * SEGMENT_SIZE]);
            }
            indirect_grefs[k] = self.buffers.indirect_gref(indirect).0;
            request.indirect_pages[k] = indirect;
            request.nr_indirect += 1;
        }
        let id = self.shadow.insert(request).unwrap_or_else(|| unreachable_room());
        let entry = BlkifRequestIndirect {
            operation: BLKIF_OP_INDIRECT,
            indirect_op: operation,
            nr_segments: part.pages as u16,
            id,
            sector_number: part.sector,
            handle: self.handle,
            indirect_grefs,
        };
        self.counters.indirect_requests += 1;
        self.push(&entry.emit());
    }

    /// Pushes one request (room was checked).
    fn push(&mut self, entry: &[u8; ENTRY_SIZE]) {
        if self.ring.push_request(entry).is_err() {
            unreachable_room();
        }
        self.shadow.record(entry);
        self.counters.requests += 1;
        trace::event(Category::Blk, trace::Phase::Counter, "requests in flight", u64::from(self.shadow.pending()));
    }

    /// Publishes the pushed requests, notifying the backend if it asked.
    fn publish(&mut self) {
        let notify = self.ring.push_and_check_notify();
        trace::event(Category::Blk, trace::Phase::Instant, "submit", u64::from(notify));
        if notify {
            self.counters.notifies += 1;
            self.evtchn.notify();
        }
    }

    /// Makes every write completed before it durable: `BLKIF_OP_FLUSH_DISKCACHE` if the backend offers
    /// `feature-flush-cache`, else an empty `BLKIF_OP_WRITE_BARRIER` if it offers `feature-barrier`. With neither,
    /// refused with [`ErrorKind::NoFlush`] rather than pretended: blkif.h gives the backend no way to say it has no
    /// volatile cache. (Linux's blkfront treats such a disk as write-through and turns flushes into no-ops; a
    /// caller that accepts that reasoning may do the same on `NoFlush`.) A flush answered
    /// `BLKIF_RSP_EOPNOTSUPP` fails with [`ErrorKind::NotSupported`] and is not tried that way again.
    ///
    /// While a write or discard [abandoned](Blkfront::abandon) while pending has not been answered, a flush is
    /// refused for now ([`ErrorKind::AfterAbandoned`], transient like `Busy`): sent after it, it makes durable
    /// whatever of the abandoned write reached the disk, and the abandoned write cannot land after it.
    pub fn submit_flush(&mut self) -> Result<OpId, BlkError> {
        let disk = self.ready()?;
        let Some(method) = disk.flush_method() else { return self.refuse(ErrorKind::NoFlush) };
        let operation = method.operation();
        let handle = self.handle;
        if let Some(op) = self.ops.abandoned_write(None) {
            return self.refuse(ErrorKind::AfterAbandoned { op });
        }
        let id = self.submit_single(OpKind::Flush, (0, 0), Request::new(0, operation, 0, 0), |id| {
            BlkifRequest { operation, nr_segments: 0, handle, id, ..BlkifRequest::default() }.emit()
        })?;
        self.counters.flushes += 1;
        Ok(id)
    }

    /// Submits an operation of one request and no data pages (a flush, a discard): `entry` makes the ring entry
    /// from the request id.
    fn submit_single(
        &mut self,
        kind: OpKind,
        (offset, len): (u64, u64),
        request: Request,
        entry: impl FnOnce(u64) -> [u8; ENTRY_SIZE],
    ) -> Result<OpId, BlkError> {
        self.check_free(Resources { ring_slots: 1, ..Resources::default() })?;
        let id = self.ops.insert(kind, offset, len, 1);
        let rid = self.shadow.insert(Request { op: id.index, ..request }).unwrap_or_else(|| unreachable_room());
        self.push(&entry(rid));
        self.publish();
        Ok(id)
    }

    /// Tells the backend that `len` bytes at byte `offset` (both multiples of the sector size) may be discarded:
    /// one `BLKIF_OP_DISCARD` request. Refused on a read-only disk and if the backend does not offer
    /// `feature-discard` ([`ErrorKind::NoDiscard`]). The granularity and alignment the backend prefers are in
    /// [`DiskInfo::features`]; the backend handles any sector-aligned range.
    pub fn submit_discard(&mut self, offset: u64, len: u64) -> Result<OpId, BlkError> {
        let disk = self.ready()?;
        if disk.read_only {
            return self.refuse(ErrorKind::ReadOnly);
        }
        if !disk.features.discard {
            return self.refuse(ErrorKind::NoDiscard);
        }
        self.check_extent(&disk, offset, len)?;
        let (sector, sectors) = (offset / SECTOR_SIZE as u64, len / SECTOR_SIZE as u64);
        let handle = self.handle;
        let request = Request::new(0, BLKIF_OP_DISCARD, sector, sectors);
        self.check_abandoned(offset, len)?;
        let id = self.submit_single(OpKind::Discard, (offset, len), request, |id| {
            let operation = BLKIF_OP_DISCARD;
            BlkifRequestDiscard { operation, flag: 0, handle, id, sector_number: sector, nr_sectors: sectors }.emit()
        })?;
        self.counters.discards += 1;
        Ok(id)
    }
}

/// Room on the ring, in the shadow table and in the page pools was checked before the requests were built.
#[cold]
fn unreachable_room() -> ! {
    unreachable!("room was checked before submitting")
}
