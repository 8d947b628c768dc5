//! A fake blkback for host tests (here, and in other crates' tests with the feature `fake`): the backend end of the
//! ring over the same heap pages the driver uses, an in-memory disk, and the data and indirect pages "mapped" by
//! grant ref from the store the driver writes and reads by page index. It speaks the real wire format
//! ([`FakeBlkback`]), checks what the front end sends, and can be told to be slow or hostile. `xenbus` (tests of
//! this crate only) plays the backend's side of the connect sequence in the fake xenstored.

mod backend;
pub mod scenario;
#[cfg(test)]
pub(crate) mod xenbus;

pub use backend::{FakeBlkback, Seen};

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
#[allow(unused_imports)] // the prelude has them under cfg(test)
use std::{vec, vec::Vec};

use super::config::{BackendParams, DiskFeatures, DiskInfo, Limits, Transport};
use super::device::{Blkfront, BlockBuffers};
use super::wire::{PAGE_SIZE, SECTOR_SIZE, VDISK_READONLY};
use crate::frontend::{DeviceId, DeviceKind};
use crate::grant::GrantRef;
use crate::ring::testing::{pages, HeapRing};
use crate::ring::Notify;

/// The device the harness drives: `vbd/51712` (xvda).
pub const DEVICE: DeviceId = DeviceId { kind: DeviceKind::Vbd, id: 51712 };
/// Ring page `i` is granted as ref `RING_GREF_BASE + i`.
pub const RING_GREF_BASE: u32 = 50;
/// Data page `i` is granted as ref `DATA_GREF_BASE + i`.
pub const DATA_GREF_BASE: u32 = 2000;
/// Indirect page `i` is granted as ref `INDIRECT_GREF_BASE + i`.
pub const INDIRECT_GREF_BASE: u32 = 9000;
/// The event channel port the harness allocated.
pub const PORT: u32 = 17;

/// The granted pages, by grant ref, and which refs are data and which indirect pages.
pub struct Store {
    pub pages: BTreeMap<u32, Vec<u8>>,
    data: Vec<u32>,
    indirect: Vec<u32>,
}

impl Store {
    /// `data` data pages and `indirect` indirect pages, zeroed.
    pub fn new(data: u32, indirect: u32) -> Store {
        let data: Vec<u32> = (0..data).map(|i| DATA_GREF_BASE + i).collect();
        let indirect: Vec<u32> = (0..indirect).map(|i| INDIRECT_GREF_BASE + i).collect();
        let pages = data.iter().chain(&indirect).map(|&r| (r, vec![0; PAGE_SIZE])).collect();
        Store { pages, data, indirect }
    }

    /// A data page's ref.
    pub fn is_data(&self, gref: u32) -> bool {
        self.data.contains(&gref)
    }

    /// An indirect page's ref.
    pub fn is_indirect(&self, gref: u32) -> bool {
        self.indirect.contains(&gref)
    }
}

pub type SharedStore = Rc<RefCell<Store>>;

/// The driver's view of the pages: by index.
pub struct FakeBuffers(pub SharedStore);

impl BlockBuffers for FakeBuffers {
    fn data_pages(&self) -> u32 {
        self.0.borrow().data.len() as u32
    }
    fn data_gref(&self, page: u32) -> GrantRef {
        GrantRef(self.0.borrow().data[page as usize])
    }
    fn write_data(&mut self, page: u32, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= PAGE_SIZE, "write_data past the page");
        let mut s = self.0.borrow_mut();
        let gref = s.data[page as usize];
        s.pages.get_mut(&gref).unwrap()[offset..offset + data.len()].copy_from_slice(data);
    }
    fn read_data(&self, page: u32, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= PAGE_SIZE, "read_data past the page");
        let s = self.0.borrow();
        out.copy_from_slice(&s.pages[&s.data[page as usize]][offset..offset + out.len()]);
    }
    fn indirect_pages(&self) -> u32 {
        self.0.borrow().indirect.len() as u32
    }
    fn indirect_gref(&self, page: u32) -> GrantRef {
        GrantRef(self.0.borrow().indirect[page as usize])
    }
    fn write_indirect(&mut self, page: u32, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= PAGE_SIZE, "write_indirect past the page");
        let mut s = self.0.borrow_mut();
        let gref = s.indirect[page as usize];
        s.pages.get_mut(&gref).unwrap()[offset..offset + bytes.len()].copy_from_slice(bytes);
    }
}

/// The event channel: counts kicks.
pub struct FakeEvtchn(pub Rc<Cell<u32>>);

impl Notify for FakeEvtchn {
    fn notify(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// The disk the fake backend serves, and what it offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// `sector-size` (and `physical-sector-size`).
    pub sector_size: u32,
    /// Size in bytes (a multiple of `sector_size`).
    pub bytes: u64,
    /// `mode` "r" and `VDISK_READONLY`.
    pub read_only: bool,
    /// `feature-flush-cache`.
    pub flush_cache: bool,
    /// `feature-barrier`.
    pub barrier: bool,
    /// `feature-discard`.
    pub discard: bool,
    /// `feature-max-indirect-segments` (0: absent).
    pub max_indirect_segments: u32,
    /// `max-ring-page-order` (0: absent).
    pub max_ring_page_order: u32,
    /// `feature-persistent`.
    pub persistent: bool,
}

impl DiskSpec {
    /// A writable disk offering what Linux's blkback offers on a modern kernel: flush, discard, 256 indirect
    /// segments, ring order 4, persistent grants; no barrier.
    pub fn linux(sector_size: u32, bytes: u64) -> DiskSpec {
        DiskSpec {
            sector_size,
            bytes,
            read_only: false,
            flush_cache: true,
            barrier: false,
            discard: true,
            max_indirect_segments: 256,
            max_ring_page_order: 4,
            persistent: true,
        }
    }

    /// A disk offering nothing optional: one ring page, direct requests, no flush, barrier or discard.
    pub fn basic(sector_size: u32, bytes: u64) -> DiskSpec {
        DiskSpec {
            flush_cache: false,
            discard: false,
            max_indirect_segments: 0,
            max_ring_page_order: 0,
            persistent: false,
            ..DiskSpec::linux(sector_size, bytes)
        }
    }

    /// What it publishes by InitWait.
    pub fn backend_params(&self) -> BackendParams {
        BackendParams {
            max_ring_page_order: self.max_ring_page_order,
            max_indirect_segments: self.max_indirect_segments,
            max_queues: 4,
        }
    }

    /// What it publishes by Connected.
    pub fn disk_info(&self) -> DiskInfo {
        DiskInfo {
            sectors: self.bytes / SECTOR_SIZE as u64,
            sector_size: self.sector_size,
            physical_sector_size: self.sector_size,
            info: if self.read_only { VDISK_READONLY } else { 0 },
            read_only: self.read_only,
            features: DiskFeatures {
                flush_cache: self.flush_cache,
                barrier: self.barrier,
                discard: self.discard,
                discard_secure: false,
                discard_granularity: self.sector_size,
                discard_alignment: 0,
                persistent: self.persistent,
                max_indirect_segments: self.max_indirect_segments,
            },
        }
    }
}

/// How the harness builds the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Data pages.
    pub data_pages: u32,
    /// Indirect pages.
    pub indirect_pages: u32,
    /// Our limits.
    pub limits: Limits,
    /// Where the ring's indices start.
    pub ring_start: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { data_pages: 512, indirect_pages: 16, limits: Limits::default(), ring_start: 0 }
    }
}

/// The driver under test, the fake backend, the kick counter and the ring's grant refs.
pub struct Harness {
    pub blk: Blkfront<HeapRing, FakeBuffers, FakeEvtchn>,
    pub back: FakeBlkback,
    pub kicks: Rc<Cell<u32>>,
    pub ring_refs: Vec<GrantRef>,
}

/// A driver for `spec` built as `options` say (the transport negotiated from `spec`'s parameters), not connected.
pub fn harness(spec: DiskSpec, options: Options) -> Harness {
    let transport = Transport::negotiate(&spec.backend_params(), options.limits);
    let store = Rc::new(RefCell::new(Store::new(options.data_pages, options.indirect_pages)));
    let ring = pages(transport.ring_pages());
    let kicks = Rc::new(Cell::new(0));
    let blk = Blkfront::with_ring_start(
        DEVICE,
        HeapRing(ring.clone()),
        transport,
        FakeBuffers(store.clone()),
        FakeEvtchn(kicks.clone()),
        options.ring_start,
    );
    let ring_refs = (0..transport.ring_pages() as u32).map(|i| GrantRef(RING_GREF_BASE + i)).collect();
    Harness { blk, back: FakeBlkback::new(ring, store, spec), kicks, ring_refs }
}

/// [`harness`], and the backend Connected with `spec`'s disk.
pub fn connected(spec: DiskSpec, options: Options) -> Harness {
    let mut h = harness(spec, options);
    h.blk.backend_connected(spec.disk_info());
    h
}

/// The harness as the async layer ([`super::transfer`]) sees a device: the driver behind a `RefCell`, and a
/// progress count moved by [`FakeCell::tick`].
pub struct FakeCell {
    pub h: RefCell<Harness>,
    pub progress: Cell<u64>,
}

impl FakeCell {
    /// Wraps `h`.
    pub fn new(h: Harness) -> FakeCell {
        FakeCell { h: RefCell::new(h), progress: Cell::new(0) }
    }

    /// The backend takes (and answers, unless it holds) every request, then the driver polls: what the
    /// platform's device task does on each event. Returns the poll's summary.
    pub fn tick(&self) -> super::PollSummary {
        let mut h = self.h.borrow_mut();
        h.back.process();
        let summary = h.blk.poll();
        self.progress.set(self.progress.get() + 1);
        summary
    }

    /// Only the driver polls (the backend does nothing).
    pub fn poll_only(&self) -> super::PollSummary {
        let summary = self.h.borrow_mut().blk.poll();
        self.progress.set(self.progress.get() + 1);
        summary
    }
}

impl super::transfer::DriverCell for FakeCell {
    type Ring = HeapRing;
    type Buffers = FakeBuffers;
    type Notify = FakeEvtchn;
    fn with<R>(&self, f: impl FnOnce(&mut Blkfront<HeapRing, FakeBuffers, FakeEvtchn>) -> R) -> R {
        f(&mut self.h.borrow_mut().blk)
    }
    fn progress(&self) -> u64 {
        self.progress.get()
    }
    fn poll_progress(&self, seen: u64, _cx: &mut core::task::Context<'_>) -> core::task::Poll<()> {
        // The tests poll again after every tick: no waker to keep.
        if self.progress.get() != seen {
            core::task::Poll::Ready(())
        } else {
            core::task::Poll::Pending
        }
    }
}

/// Polls `fut` once with a waker that does nothing.
pub fn poll_once<F: core::future::Future + ?Sized>(fut: core::pin::Pin<&mut F>) -> core::task::Poll<F::Output> {
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    fut.poll(&mut cx)
}
