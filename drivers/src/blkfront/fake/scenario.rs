//! blkfront against a hostile blkback, the whole scenario written as bytes: what the fuzz target `blkfront` runs,
//! and what tests replay. The bytes choose the disk and the driver's pages, then a sequence of steps: operations
//! submitted on the driver's API or started as async transfers ([`super::super::transfer`]), the backend's
//! responses delivered in any order with any id (unknown, duplicate, stale after a cancellation), operation and
//! status, `rsp_prod` jumps, polls, completions taken, operations abandoned and futures dropped at any point, the
//! backend closing, the device reset.
//!
//! Oracles, checked as it goes and at the end:
//! - the requests the driver sends are well formed (the fake's `violations` stay empty), and a write's pages hold
//!   exactly the caller's bytes for that request;
//! - a successful read returns exactly what the backend wrote for each of that operation's requests (every 512-byte
//!   sector is stamped with the request's id and sector number), never another request's data;
//! - an abandoned operation is never reported;
//! - one poll takes at most as many responses as the ring holds; one poll of a transfer submits at most two
//!   operations;
//! - at the end, once every request is answered (or the device is reset), every data and indirect page, ring slot,
//!   request id and operation id is free again, and a write and read round trip works.
//!
//! Nothing here panics on any input except an oracle failing.

use core::future::Future;
use core::pin::Pin;
use core::task::Poll;
use std::boxed::Box;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
#[allow(unused_imports)] // the prelude has them under cfg(test)
use std::{vec, vec::Vec};

use super::{harness, poll_once, DiskSpec, FakeBlkback, FakeCell, Options};
use crate::blkfront::config::Limits;
use crate::blkfront::error::{BlkError, Counters, OpId, OpKind, Resources};
use crate::blkfront::transfer::{self, DriverCell};
use crate::blkfront::wire::{BlkifResponse, BLKIF_OP_READ, BLKIF_OP_WRITE, PAGE_SIZE, SECTOR_SIZE};
use crate::blkfront::Phase;
use crate::ring::testing::{pages, HeapRing};

/// The disk the scenarios use.
const DISK_BYTES: u64 = 1 << 20;
/// Steps in one scenario, at most.
const MAX_STEPS: usize = 400;
/// Async transfers alive at once, at most.
const MAX_FUTURES: usize = 6;

/// The input, read a field at a time; 0s once it runs out.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | u32::from(self.u16()) << 16
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
}

/// What the backend writes into 512-byte sector `sector` for read request `id`: the id and the sector, then bytes
/// derived from both (cheap: the fuzzer runs this for every sector it moves).
fn stamp(id: u64, sector: u64) -> [u8; SECTOR_SIZE] {
    let mut out = [0u8; SECTOR_SIZE];
    out[..8].copy_from_slice(&id.to_le_bytes());
    out[8..16].copy_from_slice(&sector.to_le_bytes());
    let seed = (id ^ sector.rotate_left(17) ^ id >> 32) as u8;
    for (i, b) in out[16..].iter_mut().enumerate() {
        *b = seed ^ (i as u8).wrapping_mul(31);
    }
    out
}

/// `len` bytes to write: [`stamp`]`(a, b)` over and over.
fn fill(a: u64, b: u64, len: u64) -> Vec<u8> {
    let one = stamp(a, b);
    let mut data = Vec::with_capacity(len as usize);
    while data.len() < len as usize {
        let n = (len as usize - data.len()).min(SECTOR_SIZE);
        data.extend_from_slice(&one[..n]);
    }
    data
}

/// Who submitted a set of requests, and what they must carry.
struct Owner {
    kind: OpKind,
    offset: u64,
    len: u64,
    /// A write's bytes.
    data: Vec<u8>,
    /// The read requests the backend took for it: id, first 512-byte sector, sectors.
    reads: Vec<(u64, u64, u64)>,
    /// Requests the backend took for it.
    requests: usize,
}

impl Owner {
    fn new(kind: OpKind, offset: u64, len: u64, data: Vec<u8>) -> Owner {
        Owner { kind, offset, len, data, reads: Vec::new(), requests: 0 }
    }

    /// A successful read's bytes are exactly what the backend wrote for each of its requests.
    fn check_read(&self, out: &[u8]) {
        let sectors: u64 = self.reads.iter().map(|r| r.2).sum();
        assert_eq!(sectors * SECTOR_SIZE as u64, self.len, "a successful read's requests cover it exactly");
        for &(id, first, count) in &self.reads {
            for sector in first..first + count {
                let at = (sector * SECTOR_SIZE as u64 - self.offset) as usize;
                assert!(
                    out[at..at + SECTOR_SIZE] == stamp(id, sector),
                    "read at {}+{}: sector {sector} is not what the backend wrote for request {id:#x} (it holds \
                     request {:#x}'s sector {})",
                    self.offset,
                    self.len,
                    u64::from_le_bytes(out[at..at + 8].try_into().unwrap()),
                    u64::from_le_bytes(out[at + 8..at + 16].try_into().unwrap()),
                );
            }
        }
    }
}

struct SyncOp {
    id: OpId,
    owner: Owner,
}

type Transfer = Pin<Box<dyn Future<Output = (Result<(), BlkError>, Vec<u8>)>>>;

struct AsyncOp {
    fut: Transfer,
    owner: Owner,
}

struct World {
    cell: Rc<FakeCell>,
    spec: DiskSpec,
    data_pages: u32,
    indirect_pages: u32,
    sync: Vec<SyncOp>,
    futures: Vec<AsyncOp>,
    abandoned: BTreeSet<OpId>,
    /// Ids of requests answered (for stale responses).
    answered: Vec<u64>,
    /// Log entries of the backend handled so far.
    seen: usize,
    /// Reads and writes the backend took and has not performed yet, by id.
    unperformed: BTreeMap<u64, Unperformed>,
}

/// Runs the scenario `input` describes (see the module documentation); panics only if an oracle fails. Returns
/// the driver's counters at the end.
pub fn run(input: &[u8]) -> Counters {
    let mut b = Bytes { data: input, at: 0 };
    let config = b.u8();
    let spec = DiskSpec {
        max_ring_page_order: u32::from(config & 3),
        max_indirect_segments: [0, 32, 256, 8][usize::from(config >> 2 & 3)],
        ..DiskSpec::linux(if config & 0x10 != 0 { 4096 } else { 512 }, DISK_BYTES)
    };
    let options = Options {
        data_pages: 8 + u32::from(b.u8() % 128),
        indirect_pages: u32::from(b.u8() % 6),
        limits: Limits::default(),
        ring_start: if config & 0x20 != 0 { u32::MAX - 40 } else { 0 },
    };
    let mut h = harness(spec, options);
    h.blk.backend_connected(spec.disk_info());
    h.back.hold = true;
    let mut w = World {
        cell: Rc::new(FakeCell::new(h)),
        spec,
        data_pages: options.data_pages,
        indirect_pages: options.indirect_pages,
        sync: Vec::new(),
        futures: Vec::new(),
        abandoned: BTreeSet::new(),
        answered: Vec::new(),
        seen: 0,
        unperformed: BTreeMap::new(),
    };
    for _ in 0..MAX_STEPS {
        if b.done() {
            break;
        }
        w.step(&mut b);
    }
    w.finish()
}

impl World {
    /// An extent on the disk from two fuzz bytes: sector-aligned, inside the disk, up to 64 pages long.
    fn extent(&self, b: &mut Bytes) -> (u64, u64) {
        let sector = u64::from(self.spec.sector_size);
        let sectors = DISK_BYTES / sector;
        let len_sectors = 1 + u64::from(b.u16()) % (64 * PAGE_SIZE as u64 / sector);
        let start = u64::from(b.u16()) * 37 % sectors;
        let len_sectors = len_sectors.min(sectors - start);
        (start * sector, len_sectors * sector)
    }

    fn step(&mut self, b: &mut Bytes) {
        match b.u8() % 16 {
            0 => {
                let (offset, len) = self.extent(b);
                let submitted = self.cell.with(|d| d.submit_read(offset, len));
                if let Ok(id) = submitted {
                    self.sync.push(SyncOp { id, owner: Owner::new(OpKind::Read, offset, len, Vec::new()) });
                    self.take_requests(Target::Sync);
                }
            }
            1 => {
                let (offset, len) = self.extent(b);
                let data = fill(offset, len, len);
                let submitted = self.cell.with(|d| d.submit_write(offset, &data));
                if let Ok(id) = submitted {
                    self.sync.push(SyncOp { id, owner: Owner::new(OpKind::Write, offset, len, data) });
                    self.take_requests(Target::Sync);
                }
            }
            2 => {
                let submitted = self.cell.with(|d| d.submit_flush());
                if let Ok(id) = submitted {
                    self.sync.push(SyncOp { id, owner: Owner::new(OpKind::Flush, 0, 0, Vec::new()) });
                    self.take_requests(Target::Sync);
                }
            }
            3 => {
                let (offset, len) = self.extent(b);
                let submitted = self.cell.with(|d| d.submit_discard(offset, len));
                if let Ok(id) = submitted {
                    self.sync.push(SyncOp { id, owner: Owner::new(OpKind::Discard, offset, len, Vec::new()) });
                    self.take_requests(Target::Sync);
                }
            }
            4 | 5 => self.poll(),
            6 | 7 => self.respond(b),
            8 => self.cell.h.borrow_mut().back.publish(),
            9 => {
                let by = b.u32();
                self.cell.h.borrow_mut().back.run_rsp_prod_ahead(by);
            }
            10 => self.settle_sync(b),
            11 => {
                if let Some(c) = self.cell.with(|d| d.next_completion()) {
                    self.completed(c.op, c.result.is_ok());
                }
            }
            12 => self.start_transfer(b),
            13 => {
                if !self.futures.is_empty() {
                    let i = usize::from(b.u8()) % self.futures.len();
                    self.poll_transfer(i);
                }
            }
            14 => {
                if !self.futures.is_empty() {
                    let i = usize::from(b.u8()) % self.futures.len();
                    drop(self.futures.remove(i)); // cancelled
                }
            }
            _ => match b.u8() % 4 {
                0 => {
                    self.cell.with(|d| d.backend_closed());
                    self.moved();
                }
                1 => self.reset(),
                _ => {
                    // Every future gets a turn.
                    for i in (0..self.futures.len()).rev() {
                        self.poll_transfer(i);
                    }
                }
            },
        }
    }

    /// The driver polled: what the device task does on an event.
    fn poll(&mut self) {
        let ring = self.cell.with(|d| d.ring_size());
        let summary = self.cell.with(|d| d.poll());
        assert!(summary.responses <= ring, "one poll took {} responses from a {ring}-slot ring", summary.responses);
        self.moved();
    }

    fn moved(&self) {
        self.cell.progress.set(self.cell.progress.get() + 1);
    }

    /// The backend takes what was just submitted (for `target`), holding the answers: a read's pages get the
    /// stamps of its sectors, a write's pages are checked against the caller's bytes.
    fn take_requests(&mut self, target: Target) {
        let mut h = self.cell.h.borrow_mut();
        h.back.process();
        assert!(h.back.violations.is_empty(), "the driver sent a bad request: {:?}", h.back.violations);
        let owner = match target {
            Target::Sync => &mut self.sync.last_mut().expect("just submitted").owner,
            Target::Future(i) => &mut self.futures[i].owner,
        };
        let back = &mut h.back;
        for seen in &back.log[self.seen..] {
            owner.requests += 1;
            let operation = seen.indirect_op.unwrap_or(seen.operation);
            let mut store = back.store.borrow_mut();
            let mut sector = seen.sector;
            let first = sector;
            for s in &seen.segments {
                let page = store.pages.get_mut(&s.gref).expect("a data page");
                for k in s.first_sect..=s.last_sect {
                    let bytes = &mut page[usize::from(k) * SECTOR_SIZE..][..SECTOR_SIZE];
                    match operation {
                        BLKIF_OP_READ => bytes.copy_from_slice(&stamp(seen.id, sector)),
                        BLKIF_OP_WRITE => {
                            assert_eq!(owner.kind, OpKind::Write);
                            let at = (sector * SECTOR_SIZE as u64 - owner.offset) as usize;
                            assert!(
                                bytes[..] == owner.data[at..at + SECTOR_SIZE],
                                "write request {:#x}: sector {sector} is not the caller's data",
                                seen.id
                            );
                        }
                        _ => {}
                    }
                    sector += 1;
                }
            }
            if operation == BLKIF_OP_READ {
                assert_eq!(owner.kind, OpKind::Read);
                owner.reads.push((seen.id, first, sector - first));
            }
            if matches!(operation, BLKIF_OP_READ | BLKIF_OP_WRITE) {
                let segments = seen.segments.iter().map(|s| (s.gref, s.first_sect, s.last_sect)).collect();
                let data = (operation == BLKIF_OP_WRITE).then(|| {
                    let at = (first * SECTOR_SIZE as u64 - owner.offset) as usize;
                    owner.data[at..at + ((sector - first) as usize * SECTOR_SIZE)].to_vec()
                });
                self.unperformed.insert(seen.id, (segments, first, data));
            }
        }
        self.seen = back.log.len();
    }

    /// The backend performs request `id` as a real one does, between taking it and answering it: a read's data
    /// goes into its pages now (so pages the driver reused too early would show another request's stamps), and a
    /// write's pages must still hold the caller's bytes.
    fn perform(&mut self, id: u64) {
        let Some((segments, mut sector, data)) = self.unperformed.remove(&id) else { return };
        let h = self.cell.h.borrow();
        let mut store = h.back.store.borrow_mut();
        let mut at = 0;
        for (gref, first, last) in segments {
            let page = store.pages.get_mut(&gref).expect("a data page");
            for k in first..=last {
                let bytes = &mut page[usize::from(k) * SECTOR_SIZE..][..SECTOR_SIZE];
                match &data {
                    None => bytes.copy_from_slice(&stamp(id, sector)),
                    Some(data) => assert!(
                        bytes[..] == data[at..at + SECTOR_SIZE],
                        "write request {id:#x}: its page for sector {sector} was changed while it was in flight"
                    ),
                }
                sector += 1;
                at += SECTOR_SIZE;
            }
        }
    }

    /// The backend writes one response: a held one as it is, or changed, or a copy; unpublished.
    fn respond(&mut self, b: &mut Bytes) {
        let how = b.u8();
        let pick = usize::from(b.u8());
        if !has_room(&self.cell.h.borrow().back) {
            // As many responses as requests taken: the held ones were displaced by bad ones and are never sent
            // (but the backend did the work).
            let displaced = std::mem::take(&mut self.cell.h.borrow_mut().back.held);
            for rsp in displaced {
                self.perform(rsp.id);
            }
        }
        let Some(real) = ({
            let h = self.cell.h.borrow();
            (!h.back.held.is_empty()).then(|| h.back.held[pick % h.back.held.len()])
        }) else {
            return;
        };
        self.perform(real.id);
        let mut h = self.cell.h.borrow_mut();
        let back: &mut FakeBlkback = &mut h.back;
        let i = pick % back.held.len();
        let rsp = match how % 8 {
            0..=2 => real,
            3 => BlkifResponse { id: b.u64(), ..real },
            4 if !self.answered.is_empty() => {
                let j = usize::from(b.u8()) % self.answered.len();
                BlkifResponse { id: self.answered[j], ..real }
            }
            5 => BlkifResponse { operation: b.u8(), ..real },
            6 => BlkifResponse { status: b.u16() as i16, ..real },
            _ => real, // a duplicate: the real one stays held
        };
        if how % 8 != 7 {
            back.held.remove(i);
        }
        drop(h);
        // A response with another pending request's id answers that one: the backend performs it first.
        self.perform(rsp.id);
        self.answered.push(rsp.id);
        let back = &mut self.cell.h.borrow_mut().back;
        back.put_raw(rsp);
        if how & 0x80 != 0 {
            back.publish();
        }
    }

    /// One of the operations submitted on the driver's API: its completion taken, its data collected or let go,
    /// or it is abandoned.
    fn settle_sync(&mut self, b: &mut Bytes) {
        if self.sync.is_empty() {
            return;
        }
        let how = b.u8();
        let i = usize::from(b.u8()) % self.sync.len();
        let id = self.sync[i].id;
        if how.is_multiple_of(4) {
            self.cell.with(|d| d.abandon(id)).expect("an operation we hold");
            self.abandoned.insert(id);
            self.sync.remove(i);
            return;
        }
        let taken = self.cell.with(|d| d.take_completion(id)).expect("an operation we hold");
        if let Some(c) = taken {
            assert_eq!(c.kind, self.sync[i].owner.kind);
            self.completed(id, c.result.is_ok());
        }
    }

    /// `op`'s completion was taken, successful or not.
    fn completed(&mut self, op: OpId, ok: bool) {
        assert!(!self.abandoned.contains(&op), "{op} was abandoned, yet reported");
        let Some(i) = self.sync.iter().position(|s| s.id == op) else {
            // One of a transfer's operations (taken from under it): let it go; the transfer fails.
            let _ = self.cell.with(|d| d.abandon(op));
            return;
        };
        let s = self.sync.remove(i);
        assert!(s.owner.requests > 0 || !ok, "{op} succeeded without a request");
        if ok && s.owner.kind == OpKind::Read {
            let mut out = vec![0; s.owner.len as usize];
            let copied = self.cell.with(|d| d.read_into(op, &mut out)).expect("a successful read's data");
            assert_eq!(copied, s.owner.len);
            s.owner.check_read(&out);
        }
    }

    fn start_transfer(&mut self, b: &mut Bytes) {
        let write = b.u8() & 1 == 1;
        let (offset, len) = self.extent(b);
        if self.futures.len() >= MAX_FUTURES {
            return;
        }
        let cell = self.cell.clone();
        let (fut, owner): (Transfer, Owner) = if write {
            let data = fill(len, offset, len);
            let owner = Owner::new(OpKind::Write, offset, len, data.clone());
            (Box::pin(async move { (transfer::write(&*cell, offset, &data).await, Vec::new()) }), owner)
        } else {
            let owner = Owner::new(OpKind::Read, offset, len, Vec::new());
            let fut = async move {
                let mut buf = vec![0; len as usize];
                let r = transfer::read(&*cell, offset, &mut buf).await;
                (r, buf)
            };
            (Box::pin(fut), owner)
        };
        self.futures.push(AsyncOp { fut, owner });
        self.poll_transfer(self.futures.len() - 1);
    }

    /// Polls transfer `i` once; the backend then takes what it submitted.
    fn poll_transfer(&mut self, i: usize) {
        let before = self.cell.with(|d| d.counters());
        let polled = poll_once(self.futures[i].fut.as_mut());
        let after = self.cell.with(|d| d.counters());
        let submitted = (after.reads + after.writes) - (before.reads + before.writes);
        assert!(submitted <= 2, "one poll of a transfer submitted {submitted} operations");
        self.take_requests(Target::Future(i));
        if let Poll::Ready((result, out)) = polled {
            let done = self.futures.remove(i);
            if result.is_ok() && done.owner.kind == OpKind::Read {
                done.owner.check_read(&out);
            }
        }
    }

    /// The backend went away and a new one came: the driver reset on new ring pages, a new fake attached.
    fn reset(&mut self) {
        let ring_pages = self.cell.with(|d| d.transport().ring_pages());
        let page = pages(ring_pages);
        let mut h = self.cell.h.borrow_mut();
        h.blk.reset(HeapRing(page.clone()));
        let store = h.back.store.clone();
        h.back = FakeBlkback::new(page, store, self.spec);
        h.back.hold = true;
        h.blk.backend_connected(self.spec.disk_info());
        drop(h);
        self.seen = 0;
        self.unperformed.clear();
        self.moved();
    }

    /// Every page, slot and id is free.
    fn assert_whole(&self, when: &str) {
        let h = self.cell.h.borrow();
        let full = Resources {
            ring_slots: h.blk.ring_size(),
            data_pages: self.data_pages,
            indirect_pages: self.indirect_pages,
        };
        assert_eq!(h.blk.free(), full, "the pool is not whole {when}");
        assert_eq!(h.blk.ops_in_use(), 0, "operations still held {when}");
    }

    /// Cancels what is left, answers every request, collects every completion; checks the pool is whole, resets
    /// and checks again, then a round trip on the reset device.
    fn finish(mut self) -> Counters {
        self.futures.clear();
        if self.cell.with(|d| d.phase()) == Phase::Connected {
            let held = std::mem::take(&mut self.cell.h.borrow_mut().back.held);
            for rsp in held {
                self.perform(rsp.id);
                let back = &mut self.cell.h.borrow_mut().back;
                if has_room(back) {
                    back.put_raw(rsp);
                }
            }
            self.cell.h.borrow_mut().back.publish();
            self.poll();
        }
        while let Some(c) = self.cell.with(|d| d.next_completion()) {
            self.completed(c.op, c.result.is_ok());
        }
        for s in std::mem::take(&mut self.sync) {
            // Still pending only if the backend never got to answer (it was reset or closed meanwhile).
            let _ = self.cell.with(|d| d.abandon(s.id));
        }
        let (phase, counters) = self.cell.with(|d| (d.phase(), d.counters()));
        if phase == Phase::Connected {
            assert_eq!(self.cell.with(|d| d.pending()), 0, "every request was answered");
            if counters.quarantined_pages == 0 {
                self.assert_whole("after every request was answered");
            }
        }
        self.reset();
        self.assert_whole("after a reset");
        // And it works.
        let mut h = self.cell.h.borrow_mut();
        h.back.hold = false;
        drop(h);
        let len = u64::from(self.spec.sector_size) * 3;
        let data = fill(7, 7, len);
        let written = self.cell.with(|d| d.submit_write(0, &data)).expect("a write after the reset");
        self.cell.tick();
        let c = self.cell.with(|d| d.take_completion(written)).unwrap().expect("answered");
        assert_eq!(c.result, Ok(len));
        let read = self.cell.with(|d| d.submit_read(0, len)).expect("a read after the reset");
        self.cell.tick();
        assert!(self.cell.with(|d| d.take_completion(read)).unwrap().expect("answered").result.is_ok());
        let mut out = vec![0; len as usize];
        self.cell.with(|d| d.read_into(read, &mut out)).unwrap();
        assert_eq!(out, data);
        self.assert_whole("after a round trip");
        self.cell.with(|d| d.counters())
    }
}

/// The backend has taken more requests than it has answered: one more response fits its ring. (Responses beyond
/// that are the `rsp_prod` jumps, which break the driver's ring without breaking the fake's.)
fn has_room(back: &FakeBlkback) -> bool {
    back.ring.req_cons != back.ring.rsp_prod_pvt
}

/// A read or write the backend took: its segments (gref, first and last sector in the page) from 512-byte sector
/// `.1`, and a write's bytes.
type Unperformed = (Vec<(u32, u8, u8)>, u64, Option<Vec<u8>>);

/// Whose requests the backend is taking.
#[derive(Clone, Copy)]
enum Target {
    Sync,
    Future(usize),
}
