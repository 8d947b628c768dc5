//! The front end of a Xen shared ring (`io/ring.h`): one page (or, for blkfront's multi-page rings, 2^order
//! contiguous pages) holding a 64-byte header `{req_prod, req_event, rsp_prod, rsp_event}` and then a power-of-two
//! number of fixed-size entries, each a request or, once the backend has answered it, a response. netfront (two
//! one-page rings) and blkfront (one ring of 1 to 16 pages) are built on [`FrontRing`].
//!
//! The platform maps the page and implements [`SharedRing`] over it: the indices as atomics with the explicit
//! orderings the trait names ([`SharedRing::load_acquire`], [`SharedRing::store_release`],
//! [`SharedRing::full_barrier`]), the entries as volatile byte copies; everything else (the free-running `u32`
//! indices, the notification decisions of `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY` and
//! `RING_FINAL_CHECK_FOR_RESPONSES`) is here and tested on the host.
//!
//! The backend is not trusted, and it can write the whole page at any time: an `rsp_prod` that claims more
//! responses than requests we published is refused ([`RingError::Overrun`]), each index is loaded once per
//! decision, and each response is copied out of the shared page once, so the caller validates a copy the backend
//! can no longer change (it can still change the slot, which we never read again).

use core::fmt;
use core::mem::{offset_of, size_of};

/// Size of a ring page (`XEN_PAGE_SIZE`).
pub const PAGE_SIZE: usize = 4096;

/// The header of a shared ring page (`struct __name##_sring` in `io/ring.h`, before `ring[]`), for the platform
/// to address its fields by name. Every field may be written by the backend at any time: access them only
/// atomically (the indices) or volatile (the rest), never through a reference.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SringHeader {
    /// `RING_IDX req_prod`: written by the front end.
    pub req_prod: u32,
    /// `RING_IDX req_event`: written by the back end (notify it when `req_prod` passes this).
    pub req_event: u32,
    /// `RING_IDX rsp_prod`: written by the back end.
    pub rsp_prod: u32,
    /// `RING_IDX rsp_event`: written by the front end (the backend notifies us when `rsp_prod` passes this).
    pub rsp_event: u32,
    /// `union { uint8_t pvt_pad[4]; ... } pvt`: private to the drivers (netif's and blkif's leave it zero).
    pub pvt: [u8; 4],
    /// `uint8_t __pad[44]`.
    pub pad: [u8; 44],
}

const _: () = {
    assert!(size_of::<SringHeader>() == 64);
    assert!(offset_of!(SringHeader, req_prod) == 0);
    assert!(offset_of!(SringHeader, req_event) == 4);
    assert!(offset_of!(SringHeader, rsp_prod) == 8);
    assert!(offset_of!(SringHeader, rsp_event) == 12);
    assert!(offset_of!(SringHeader, pvt) == 16);
    assert!(offset_of!(SringHeader, pad) == 20);
};

/// Byte offsets in the shared page (`struct __name##_sring`, `io/ring.h`), from [`SringHeader`].
pub mod offsets {
    use super::SringHeader;
    use core::mem::{offset_of, size_of};

    /// `RING_IDX req_prod`: written by the front end.
    pub const REQ_PROD: usize = offset_of!(SringHeader, req_prod);
    /// `RING_IDX req_event`: written by the back end (notify it when `req_prod` passes this).
    pub const REQ_EVENT: usize = offset_of!(SringHeader, req_event);
    /// `RING_IDX rsp_prod`: written by the back end.
    pub const RSP_PROD: usize = offset_of!(SringHeader, rsp_prod);
    /// `RING_IDX rsp_event`: written by the front end (the backend notifies us when `rsp_prod` passes this).
    pub const RSP_EVENT: usize = offset_of!(SringHeader, rsp_event);
    /// `ring[]`: the entries start after the 64-byte header (`pvt` 4 bytes, `__pad` 44 bytes).
    pub const RING: usize = size_of::<SringHeader>();
}

/// One of the four indices of the ring header, each a `RING_IDX` (`u32`) in shared memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingIndex {
    /// `req_prod` (ours).
    ReqProd,
    /// `req_event` (the backend's).
    ReqEvent,
    /// `rsp_prod` (the backend's).
    RspProd,
    /// `rsp_event` (ours).
    RspEvent,
}

impl RingIndex {
    /// The index's byte offset in the page.
    pub const fn offset(self) -> usize {
        match self {
            RingIndex::ReqProd => offsets::REQ_PROD,
            RingIndex::ReqEvent => offsets::REQ_EVENT,
            RingIndex::RspProd => offsets::RSP_PROD,
            RingIndex::RspEvent => offsets::RSP_EVENT,
        }
    }
}

/// The number of entries of `entry_size` bytes in a one-page ring (`__CONST_RING_SIZE`): `(4096 - 64) /
/// entry_size`, rounded down to a power of two (`__RD32`). 0 if not even one entry fits.
pub const fn ring_size(entry_size: usize) -> u32 {
    ring_size_for_pages(1, entry_size)
}

/// The number of entries of `entry_size` bytes in a ring of `pages` contiguous pages (`__CONST_RING_SIZE(name,
/// pages * XEN_PAGE_SIZE)`, as Linux sizes a multi-page blkif ring): `(pages * 4096 - 64) / entry_size`, rounded
/// down to a power of two, at most 2^31. 0 if not even one entry fits (or `pages` is 0).
pub const fn ring_size_for_pages(pages: usize, entry_size: usize) -> u32 {
    let bytes = match pages.checked_mul(PAGE_SIZE) {
        Some(bytes) => bytes,
        None => return 0,
    };
    if pages == 0 || entry_size == 0 || entry_size > bytes - offsets::RING {
        return 0;
    }
    let fit = (bytes - offsets::RING) / entry_size;
    let pow2 = 1usize << (usize::BITS - 1 - fit.leading_zeros());
    if pow2 > 1 << 31 {
        1 << 31
    } else {
        pow2 as u32
    }
}

/// One shared ring: a page, or `pages` contiguous pages for a multi-page ring, which the backend may write at any
/// time (a hostile one included). The platform implements it over the mapped page(s) without ever making a Rust
/// reference to them: the header indices through atomics (`AtomicU32::from_ptr`) with the orderings named here,
/// the entries through volatile byte copies. [`FrontRing`] only passes offsets of whole entries inside the ring
/// (`offsets::RING <= offset`, `offset + len <= pages * PAGE_SIZE`). In a multi-page ring an entry may straddle a
/// page boundary (112-byte blkif entries do), so the platform maps the pages virtually contiguous, in grant order
/// (`ring-ref0` first), or splits such a copy.
pub trait SharedRing {
    /// Loads a header index atomically with acquire ordering: what the backend wrote before it stored the index
    /// (for `rsp_prod`, the response entries before it) is visible to the copies made afterwards.
    fn load_acquire(&self, index: RingIndex) -> u32;
    /// Stores a header index atomically with release ordering: what we wrote before (for `req_prod`, the request
    /// entries) is visible to the backend before the new index is.
    fn store_release(&mut self, index: RingIndex, value: u32);
    /// A full memory barrier (`xen_mb()`, a sequentially consistent fence): stores before it are visible before
    /// loads after it are performed (the index stores and loads of the notification protocol).
    fn full_barrier(&mut self);
    /// Writes the four header indices and zeroes the rest of the 64-byte header (`SHARED_RING_INIT`). Called once,
    /// before the page is granted to the backend.
    fn init_header(&mut self, req_prod: u32, req_event: u32, rsp_prod: u32, rsp_event: u32);
    /// Copies `bytes` into the page at `offset` (volatile: the backend may be reading the slot).
    fn write_bytes(&mut self, offset: usize, bytes: &[u8]);
    /// Copies `out.len()` bytes from the page at `offset`, each byte read once (volatile: the backend may be
    /// writing the slot even now; the caller validates the copy, never the page).
    fn read_bytes(&self, offset: usize, out: &mut [u8]);
}

/// Kicks the backend: `EVTCHNOP_send` on the device's event channel.
pub trait Notify {
    /// Sends an event to the backend.
    fn notify(&mut self);
}

/// What went wrong on a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// No free request slot: every slot holds a request the backend has not answered yet.
    Full {
        /// Slots in the ring.
        size: u32,
    },
    /// The backend's `rsp_prod` claims more responses than we published requests: it is broken or hostile and
    /// nothing it says on this ring can be trusted.
    Overrun {
        /// The backend's `rsp_prod`.
        rsp_prod: u32,
        /// Our `rsp_cons`.
        rsp_cons: u32,
        /// The `req_prod` we published.
        req_prod: u32,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RingError::Full { size } => write!(f, "all {size} ring slots hold unanswered requests"),
            RingError::Overrun { rsp_prod, rsp_cons, req_prod } => write!(
                f,
                "the backend's rsp_prod {rsp_prod} claims {} responses past rsp_cons {rsp_cons}, but only {} requests \
                 were published (req_prod {req_prod})",
                rsp_prod.wrapping_sub(rsp_cons),
                req_prod.wrapping_sub(rsp_cons)
            ),
        }
    }
}

impl core::error::Error for RingError {}

/// Our end of a shared ring (`struct __name##_front_ring`): the private producer index of requests not yet
/// published, the consumer index of responses, and the published `req_prod` (only we write it, so we keep our own
/// copy rather than read back what the backend could scribble over).
pub struct FrontRing<S: SharedRing> {
    sring: S,
    entry_size: usize,
    pages: usize,
    size: u32,
    req_prod_pvt: u32,
    req_prod: u32,
    rsp_cons: u32,
    /// The last `rsp_prod` accepted by [`FrontRing::unconsumed_responses`]: responses up to it may be taken.
    rsp_prod: u32,
}

impl<S: SharedRing> FrontRing<S> {
    /// Initialises the page (`SHARED_RING_INIT`: indices 0, `req_event = rsp_event = 1`) and our end of it
    /// (`FRONT_RING_INIT`), for entries of `entry_size` bytes (the size of the request/response union).
    ///
    /// # Panics
    /// If not even one entry fits in the page (a programming error: entry sizes are protocol constants).
    pub fn init(sring: S, entry_size: usize) -> Self {
        Self::init_at(sring, entry_size, 0)
    }

    /// As [`FrontRing::init`] with every index starting at `start` (and the event indices at `start + 1`): the
    /// same ring at another point of the `u32` index space, so tests can exercise wrap-around.
    ///
    /// # Panics
    /// If not even one entry fits in the page.
    pub fn init_at(sring: S, entry_size: usize, start: u32) -> Self {
        Self::init_pages_at(sring, entry_size, 1, start)
    }

    /// As [`FrontRing::init`] for a ring of `pages` contiguous pages ([`ring_size_for_pages`] entries).
    ///
    /// # Panics
    /// If not even one entry fits in the ring (or `pages` is 0).
    pub fn init_pages(sring: S, entry_size: usize, pages: usize) -> Self {
        Self::init_pages_at(sring, entry_size, pages, 0)
    }

    /// As [`FrontRing::init_pages`] with every index starting at `start` (tests of the wrap-around).
    ///
    /// # Panics
    /// If not even one entry fits in the ring (or `pages` is 0).
    pub fn init_pages_at(mut sring: S, entry_size: usize, pages: usize, start: u32) -> Self {
        let size = ring_size_for_pages(pages, entry_size);
        assert!(size > 0, "a {entry_size}-byte ring entry does not fit in a {pages}-page ring");
        sring.init_header(start, start.wrapping_add(1), start, start.wrapping_add(1));
        FrontRing {
            sring,
            entry_size,
            pages,
            size,
            req_prod_pvt: start,
            req_prod: start,
            rsp_cons: start,
            rsp_prod: start,
        }
    }

    /// Slots in the ring (`RING_SIZE`), a power of two.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Bytes per entry.
    pub fn entry_size(&self) -> usize {
        self.entry_size
    }

    /// Pages the ring spans.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// The index the next request will get (`req_prod_pvt`).
    pub fn req_prod_pvt(&self) -> u32 {
        self.req_prod_pvt
    }

    /// The `req_prod` last published.
    pub fn req_prod(&self) -> u32 {
        self.req_prod
    }

    /// The index of the next response to take (`rsp_cons`).
    pub fn rsp_cons(&self) -> u32 {
        self.rsp_cons
    }

    /// The slot an index maps to.
    pub fn slot(&self, index: u32) -> usize {
        (index & (self.size - 1)) as usize
    }

    /// The shared page.
    pub fn shared(&self) -> &S {
        &self.sring
    }

    /// The shared page, mutably.
    pub fn shared_mut(&mut self) -> &mut S {
        &mut self.sring
    }

    /// Requests pushed (published or not) whose responses we have not taken yet.
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Free request slots (`RING_FREE_REQUESTS`).
    pub fn free_requests(&self) -> u32 {
        self.size - self.outstanding()
    }

    /// No free request slot (`RING_FULL`).
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Writes a request into the next slot (`RING_GET_REQUEST(req_prod_pvt++)`), without publishing it; returns
    /// its index. Shorter requests than the entry leave the rest of the slot as it was.
    ///
    /// # Panics
    /// If `bytes` is longer than an entry.
    pub fn push_request(&mut self, bytes: &[u8]) -> Result<u32, RingError> {
        assert!(
            bytes.len() <= self.entry_size,
            "a {}-byte request in a {}-byte ring entry",
            bytes.len(),
            self.entry_size
        );
        if self.is_full() {
            return Err(RingError::Full { size: self.size });
        }
        let index = self.req_prod_pvt;
        let offset = offsets::RING + self.slot(index) * self.entry_size;
        self.sring.write_bytes(offset, bytes);
        self.req_prod_pvt = index.wrapping_add(1);
        Ok(index)
    }

    /// Publishes the pushed requests and says whether the backend must be notified
    /// (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`): store `req_prod` (after the entries), a full barrier, then notify
    /// iff `req_event` lies in `(old, new]`, i.e. `new - req_event < new - old` in wrapping `u32` arithmetic. The
    /// barrier is what makes this safe: the backend either sees our `req_prod` when it re-checks after setting
    /// `req_event`, or we see its new `req_event` here.
    pub fn push_and_check_notify(&mut self) -> bool {
        let old = self.req_prod;
        let new = self.req_prod_pvt;
        self.sring.store_release(RingIndex::ReqProd, new);
        self.req_prod = new;
        self.sring.full_barrier();
        let req_event = self.sring.load_acquire(RingIndex::ReqEvent);
        new.wrapping_sub(req_event) < new.wrapping_sub(old)
    }

    /// Responses the backend has produced that we have not taken (`RING_HAS_UNCONSUMED_RESPONSES`), after
    /// checking `rsp_prod` (acquire) against what we published: more responses than outstanding published
    /// requests is [`RingError::Overrun`], and nothing is accepted.
    pub fn unconsumed_responses(&mut self) -> Result<u32, RingError> {
        let rsp_prod = self.sring.load_acquire(RingIndex::RspProd);
        let available = rsp_prod.wrapping_sub(self.rsp_cons);
        if available > self.req_prod.wrapping_sub(self.rsp_cons) {
            return Err(RingError::Overrun { rsp_prod, rsp_cons: self.rsp_cons, req_prod: self.req_prod });
        }
        self.rsp_prod = rsp_prod;
        Ok(available)
    }

    /// Copies the next response accepted by [`FrontRing::unconsumed_responses`] into `out` (once: validate the
    /// copy) and consumes it; returns its index, or `None` if no accepted response is left.
    ///
    /// # Panics
    /// If `out` is longer than an entry.
    pub fn take_response(&mut self, out: &mut [u8]) -> Option<u32> {
        assert!(
            out.len() <= self.entry_size,
            "a {}-byte response from a {}-byte ring entry",
            out.len(),
            self.entry_size
        );
        if self.rsp_cons == self.rsp_prod {
            return None;
        }
        let index = self.rsp_cons;
        self.sring.read_bytes(offsets::RING + self.slot(index) * self.entry_size, out);
        self.rsp_cons = index.wrapping_add(1);
        Some(index)
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`, before going idle: if no response is waiting, ask to be notified of the
    /// next one (`rsp_event = rsp_cons + 1`), a full barrier, and check again, so a response produced while we
    /// were setting `rsp_event` is not left unnoticed (the lost wakeup). True if there are responses to take.
    pub fn final_check_for_responses(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_responses()? > 0 {
            return Ok(true);
        }
        self.sring.store_release(RingIndex::RspEvent, self.rsp_cons.wrapping_add(1));
        self.sring.full_barrier();
        Ok(self.unconsumed_responses()? > 0)
    }
}

/// Heap pages standing in for shared ring pages, and the backend's end of a ring, for host tests of the drivers
/// built on [`FrontRing`].
/// Test support: a ring page on the heap shared by a front end under test and a fake backend end.
#[cfg(any(test, feature = "fake"))]
#[allow(missing_docs)] // test support, documented by its names
pub mod testing {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    #[allow(unused_imports)] // the prelude has them under cfg(test)
    use std::{boxed::Box, vec, vec::Vec};

    /// An access to the page, in the order the front end made it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Op {
        LoadRspProd,
        LoadReqEvent,
        StoreReqProd(u32),
        StoreRspEvent(u32),
        Barrier,
    }

    type Hook = Box<dyn FnMut(&mut Vec<u8>)>;

    pub struct PageState {
        pub bytes: Vec<u8>,
        /// The front end's index accesses and barriers.
        pub ops: Vec<Op>,
        /// Runs (as the backend, on the page) right after the front end stores `rsp_event`, before its barrier.
        pub after_rsp_event: Option<Hook>,
        /// Runs (as the backend, on the page) each time the front end is about to load `rsp_prod`: a backend on
        /// another CPU that answers as fast as requests appear.
        pub before_load_rsp_prod: Option<Hook>,
    }

    /// A ring page shared by the front end under test ([`HeapRing`]) and a fake backend ([`BackRing`]).
    pub type Page = Rc<RefCell<PageState>>;

    pub fn page() -> Page {
        pages(1)
    }

    /// `n` contiguous ring pages (a multi-page ring), zeroed.
    pub fn pages(n: usize) -> Page {
        Rc::new(RefCell::new(PageState {
            bytes: vec![0; n * PAGE_SIZE],
            ops: Vec::new(),
            after_rsp_event: None,
            before_load_rsp_prod: None,
        }))
    }

    pub fn get(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    pub fn set(bytes: &mut [u8], at: usize, value: u32) {
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// The front end's view of a [`Page`].
    pub struct HeapRing(pub Page);

    impl SharedRing for HeapRing {
        fn load_acquire(&self, index: RingIndex) -> u32 {
            let mut p = self.0.borrow_mut();
            match index {
                RingIndex::RspProd => {
                    p.ops.push(Op::LoadRspProd);
                    if let Some(mut hook) = p.before_load_rsp_prod.take() {
                        hook(&mut p.bytes);
                        p.before_load_rsp_prod = Some(hook);
                    }
                }
                RingIndex::ReqEvent => p.ops.push(Op::LoadReqEvent),
                // The front end has no reason to read back its own indices.
                RingIndex::ReqProd | RingIndex::RspEvent => panic!("the front end loaded its own {index:?}"),
            }
            get(&p.bytes, index.offset())
        }
        fn store_release(&mut self, index: RingIndex, value: u32) {
            let mut p = self.0.borrow_mut();
            match index {
                RingIndex::ReqProd => p.ops.push(Op::StoreReqProd(value)),
                RingIndex::RspEvent => p.ops.push(Op::StoreRspEvent(value)),
                RingIndex::ReqEvent | RingIndex::RspProd => panic!("the front end stored the backend's {index:?}"),
            }
            set(&mut p.bytes, index.offset(), value);
            if index == RingIndex::RspEvent {
                if let Some(mut hook) = p.after_rsp_event.take() {
                    hook(&mut p.bytes);
                    p.after_rsp_event = Some(hook);
                }
            }
        }
        fn full_barrier(&mut self) {
            self.0.borrow_mut().ops.push(Op::Barrier);
        }
        fn init_header(&mut self, req_prod: u32, req_event: u32, rsp_prod: u32, rsp_event: u32) {
            let mut p = self.0.borrow_mut();
            p.bytes[..offsets::RING].fill(0);
            set(&mut p.bytes, offsets::REQ_PROD, req_prod);
            set(&mut p.bytes, offsets::REQ_EVENT, req_event);
            set(&mut p.bytes, offsets::RSP_PROD, rsp_prod);
            set(&mut p.bytes, offsets::RSP_EVENT, rsp_event);
        }
        fn write_bytes(&mut self, offset: usize, bytes: &[u8]) {
            let mut p = self.0.borrow_mut();
            assert!(offset >= offsets::RING && offset + bytes.len() <= p.bytes.len(), "write outside the entries");
            p.bytes[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
        fn read_bytes(&self, offset: usize, out: &mut [u8]) {
            let p = self.0.borrow();
            assert!(offset >= offsets::RING && offset + out.len() <= p.bytes.len(), "read outside the entries");
            out.copy_from_slice(&p.bytes[offset..offset + out.len()]);
        }
    }

    /// The backend's end of a ring (`struct __name##_back_ring`), following `io/ring.h`'s back-end macros, over a
    /// [`Page`] the front end initialised.
    pub struct BackRing {
        pub page: Page,
        pub entry_size: usize,
        pub size: u32,
        pub req_cons: u32,
        pub rsp_prod_pvt: u32,
    }

    impl BackRing {
        /// `BACK_RING_ATTACH` at the page's current `req_prod`/`rsp_prod` (equal on a fresh ring), sized for the
        /// page's length (one page or several).
        pub fn attach(page: Page, entry_size: usize) -> BackRing {
            let (start, pages) = {
                let p = page.borrow();
                (get(&p.bytes, offsets::RSP_PROD), p.bytes.len() / PAGE_SIZE)
            };
            let size = ring_size_for_pages(pages, entry_size);
            BackRing { page, entry_size, size, req_cons: start, rsp_prod_pvt: start }
        }

        fn at(&self, index: u32) -> usize {
            offsets::RING + (index & (self.size - 1)) as usize * self.entry_size
        }

        pub fn header(&self, at: usize) -> u32 {
            get(&self.page.borrow().bytes, at)
        }

        pub fn set_header(&self, at: usize, value: u32) {
            set(&mut self.page.borrow_mut().bytes, at, value);
        }

        /// Requests published and not consumed (`RING_HAS_UNCONSUMED_REQUESTS`), asserting the front end never
        /// overran the ring (`RING_REQUEST_PROD_OVERFLOW`).
        pub fn unconsumed_requests(&self) -> u32 {
            let req_prod = self.header(offsets::REQ_PROD);
            assert!(req_prod.wrapping_sub(self.rsp_prod_pvt) <= self.size, "the front end overran the ring");
            let req = req_prod.wrapping_sub(self.req_cons);
            let rsp = self.size - self.req_cons.wrapping_sub(self.rsp_prod_pvt);
            req.min(rsp)
        }

        /// Copies and consumes the next request.
        pub fn take_request(&mut self) -> Option<Vec<u8>> {
            if self.unconsumed_requests() == 0 {
                return None;
            }
            let at = self.at(self.req_cons);
            let bytes = self.page.borrow().bytes[at..at + self.entry_size].to_vec();
            self.req_cons = self.req_cons.wrapping_add(1);
            Some(bytes)
        }

        /// Writes a response at `rsp_prod_pvt++`, unpublished.
        pub fn put_response(&mut self, bytes: &[u8]) {
            assert!(bytes.len() <= self.entry_size);
            let at = self.at(self.rsp_prod_pvt);
            self.page.borrow_mut().bytes[at..at + bytes.len()].copy_from_slice(bytes);
            self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        }

        /// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`: true if the front end asked to be notified.
        pub fn push_responses_and_check_notify(&mut self) -> bool {
            let old = self.header(offsets::RSP_PROD);
            let new = self.rsp_prod_pvt;
            self.set_header(offsets::RSP_PROD, new);
            let rsp_event = self.header(offsets::RSP_EVENT);
            new.wrapping_sub(rsp_event) < new.wrapping_sub(old)
        }

        /// `RING_FINAL_CHECK_FOR_REQUESTS`: sets `req_event = req_cons + 1` if idle; true if there is work.
        pub fn final_check_for_requests(&mut self) -> bool {
            if self.unconsumed_requests() > 0 {
                return true;
            }
            self.set_header(offsets::REQ_EVENT, self.req_cons.wrapping_add(1));
            self.unconsumed_requests() > 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    fn ring_pair(entry_size: usize, start: u32) -> (FrontRing<HeapRing>, BackRing) {
        let p = page();
        let front = FrontRing::init_at(HeapRing(p.clone()), entry_size, start);
        (front, BackRing::attach(p, entry_size))
    }

    #[test]
    fn header_layout_matches_ring_h() {
        // struct __name##_sring: four RING_IDX, then pvt (4 bytes) and __pad[44], then ring[].
        assert_eq!((offsets::REQ_PROD, offsets::REQ_EVENT, offsets::RSP_PROD, offsets::RSP_EVENT), (0, 4, 8, 12));
        assert_eq!(offsets::RING, 16 + 4 + 44);
    }

    #[test]
    fn ring_sizes_round_down_to_a_power_of_two() {
        // __CONST_RING_SIZE for one 4 KiB page: (4096 - 64) / sizeof(entry), then __RD32.
        assert_eq!(ring_size(12), 256, "netif_tx: 336 entries fit, 256 used");
        assert_eq!(ring_size(8), 256, "netif_rx: 504 fit");
        assert_eq!(ring_size(112), 32, "blkif: 36 fit");
        assert_eq!(ring_size(4), 1 << 9, "1008 fit");
        assert_eq!(ring_size(4032), 1);
        assert_eq!((ring_size(4033), ring_size(0)), (0, 0));
        for e in 1..=4032 {
            let n = ring_size(e);
            assert!(n.is_power_of_two() && n as usize * e <= 4032 && 2 * n as usize * e > 4032, "{e}");
        }
    }

    #[test]
    fn init_writes_the_event_indices_as_one() {
        let p = page();
        p.borrow_mut().bytes.fill(0xaa);
        let front = FrontRing::init(HeapRing(p.clone()), 12);
        let b = &p.borrow().bytes;
        assert_eq!([0, 4, 8, 12].map(|at| get(b, at)), [0, 1, 0, 1]);
        assert!(b[16..64].iter().all(|&x| x == 0), "pvt and padding zeroed");
        assert_eq!((front.size(), front.free_requests(), front.req_prod_pvt(), front.rsp_cons()), (256, 256, 0, 0));
    }

    #[test]
    fn requests_and_responses_round_trip() {
        let (mut front, mut back) = ring_pair(12, 0);
        for i in 0..3u8 {
            assert_eq!(front.push_request(&[i; 12]).unwrap(), u32::from(i));
        }
        assert_eq!(back.unconsumed_requests(), 0, "nothing published yet");
        assert!(front.push_and_check_notify(), "req_event 1 is in (0, 3]");
        for i in 0..3u8 {
            assert_eq!(back.take_request().unwrap(), [i; 12]);
            back.put_response(&[i + 10; 4]);
        }
        back.push_responses_and_check_notify();
        assert_eq!(front.unconsumed_responses().unwrap(), 3);
        let mut out = [0; 4];
        for i in 0..3u8 {
            assert_eq!(front.take_response(&mut out), Some(u32::from(i)));
            assert_eq!(out, [i + 10; 4]);
        }
        assert_eq!(front.take_response(&mut out), None);
        assert_eq!(front.free_requests(), 256);
    }

    #[test]
    fn indices_wrap_around_u32_max() {
        let start = u32::MAX - 2;
        let (mut front, mut back) = ring_pair(8, start);
        for round in 0..3u32 {
            for i in 0..5u8 {
                front.push_request(&[i; 8]).unwrap();
            }
            front.push_and_check_notify();
            while let Some(req) = back.take_request() {
                back.put_response(&req);
            }
            back.push_responses_and_check_notify();
            assert_eq!(front.unconsumed_responses().unwrap(), 5, "round {round}");
            let mut out = [0; 8];
            for i in 0..5u8 {
                let index = front.take_response(&mut out).unwrap();
                assert_eq!(index, start.wrapping_add(round * 5 + u32::from(i)));
                assert_eq!(out, [i; 8]);
            }
        }
        assert_eq!(front.rsp_cons(), 12, "wrapped through 0");
        assert_eq!(front.slot(u32::MAX), 255);
        assert_eq!(front.slot(0), 0);
        assert_eq!(front.free_requests(), 256);
    }

    #[test]
    fn ring_full_is_refused_until_a_response_is_taken() {
        let (mut front, mut back) = ring_pair(112, u32::MAX - 10);
        for _ in 0..32 {
            front.push_request(&[1; 112]).unwrap();
        }
        assert!(front.is_full());
        assert_eq!(front.push_request(&[2; 112]), Err(RingError::Full { size: 32 }));
        front.push_and_check_notify();
        back.take_request().unwrap();
        back.put_response(&[0; 8]);
        back.push_responses_and_check_notify();
        assert!(front.is_full(), "a response frees a slot only once taken");
        assert_eq!(front.unconsumed_responses().unwrap(), 1);
        front.take_response(&mut [0; 8]).unwrap();
        assert_eq!(front.free_requests(), 1);
        front.push_request(&[2; 112]).unwrap();
        assert_eq!(RingError::Full { size: 32 }.to_string(), "all 32 ring slots hold unanswered requests");
    }

    /// The notify decision of `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`, written out from the macro.
    fn macro_notify(old: u32, new: u32, req_event: u32) -> bool {
        new.wrapping_sub(req_event) < new.wrapping_sub(old)
    }

    #[test]
    fn notify_decision_follows_the_macro() {
        // (old req_prod, requests pushed, req_event, notify?)
        let table: &[(u32, u32, u32, bool)] = &[
            (0, 1, 1, true),                   // the backend waits for the first request
            (0, 3, 2, true),                   // req_event inside (old, new]
            (0, 3, 3, true),                   // ... at new
            (0, 3, 4, false),                  // beyond new: the backend is not waiting yet
            (5, 2, 5, false),                  // at old: already passed, it was notified then (or is still running)
            (5, 2, 1, false),                  // long passed: the backend is busy and will see the requests
            (u32::MAX - 1, 3, u32::MAX, true), // across the wrap
            (u32::MAX - 1, 3, 1, true),        // event after the wrap, within range
            (u32::MAX - 1, 3, 2, false),       // just beyond new (= 1)
            (u32::MAX, 1, 0, true),
        ];
        for &(old, pushed, req_event, expected) in table {
            let (mut front, back) = ring_pair(12, old);
            for _ in 0..pushed {
                front.push_request(&[0; 12]).unwrap();
            }
            back.set_header(offsets::REQ_EVENT, req_event);
            let new = old.wrapping_add(pushed);
            assert_eq!(macro_notify(old, new, req_event), expected, "table row {old} {pushed} {req_event}");
            assert_eq!(front.push_and_check_notify(), expected, "old {old} new {new} req_event {req_event}");
            assert_eq!(back.header(offsets::REQ_PROD), new);
        }
    }

    #[test]
    fn push_publishes_then_barriers_then_reads_req_event() {
        let (mut front, _back) = ring_pair(12, 0);
        front.push_request(&[0; 12]).unwrap();
        front.shared().0.borrow_mut().ops.clear();
        front.push_and_check_notify();
        assert_eq!(front.shared().0.borrow().ops, [Op::StoreReqProd(1), Op::Barrier, Op::LoadReqEvent]);
        // Nothing new: publishing again never notifies.
        assert!(!front.push_and_check_notify());
    }

    #[test]
    fn a_response_produced_while_going_idle_is_not_lost() {
        let start = u32::MAX - 1;
        let (mut front, mut back) = ring_pair(8, start);
        // A first exchange, taken without re-arming: rsp_event (start + 1) is now behind us.
        front.push_request(&[1; 8]).unwrap();
        front.push_and_check_notify();
        back.take_request().unwrap();
        back.put_response(&[1; 8]);
        assert!(back.push_responses_and_check_notify());
        assert_eq!(front.unconsumed_responses().unwrap(), 1);
        front.take_response(&mut [0; 8]).unwrap();
        front.push_request(&[2; 8]).unwrap();
        front.push_and_check_notify();
        back.take_request().unwrap();
        // We go idle. The backend answers just as we store rsp_event, before that store is visible to it: it
        // checks against the stale rsp_event and does not notify.
        let stale_event = back.header(offsets::RSP_EVENT);
        let notified = Rc::new(RefCell::new(None));
        let seen = notified.clone();
        front.shared().0.borrow_mut().after_rsp_event = Some(Box::new(move |bytes: &mut Vec<u8>| {
            if seen.borrow().is_some() {
                return;
            }
            let old = get(bytes, offsets::RSP_PROD);
            let at = offsets::RING + (old & 255) as usize * 8;
            bytes[at..at + 8].copy_from_slice(&[9; 8]);
            let new = old.wrapping_add(1);
            set(bytes, offsets::RSP_PROD, new);
            *seen.borrow_mut() = Some(new.wrapping_sub(stale_event) < new.wrapping_sub(old));
        }));
        front.shared().0.borrow_mut().ops.clear();
        assert!(front.final_check_for_responses().unwrap(), "the re-check after the barrier finds the response");
        assert_eq!(*notified.borrow(), Some(false), "no event will come: only the re-check saves us");
        assert_eq!(
            front.shared().0.borrow().ops,
            [Op::LoadRspProd, Op::StoreRspEvent(start.wrapping_add(2)), Op::Barrier, Op::LoadRspProd]
        );
        let mut out = [0; 8];
        assert_eq!(front.take_response(&mut out), Some(start.wrapping_add(1)));
        assert_eq!(out, [9; 8]);
        // Idle again, properly armed this time: the backend's next response notifies.
        front.shared().0.borrow_mut().after_rsp_event = None;
        back.rsp_prod_pvt = back.header(offsets::RSP_PROD);
        assert!(!front.final_check_for_responses().unwrap());
        assert_eq!(back.header(offsets::RSP_EVENT), start.wrapping_add(3));
        front.push_request(&[3; 8]).unwrap();
        front.push_and_check_notify();
        back.take_request().unwrap();
        back.put_response(&[3; 8]);
        assert!(back.push_responses_and_check_notify());
    }

    #[test]
    fn final_check_with_work_pending_does_not_touch_rsp_event() {
        let (mut front, mut back) = ring_pair(8, 0);
        front.push_request(&[0; 8]).unwrap();
        front.push_and_check_notify();
        back.take_request().unwrap();
        back.put_response(&[0; 8]);
        back.push_responses_and_check_notify();
        assert!(front.final_check_for_responses().unwrap());
        assert_eq!(back.header(offsets::RSP_EVENT), 1);
    }

    #[test]
    fn a_hostile_rsp_prod_is_refused() {
        let (mut front, back) = ring_pair(8, u32::MAX - 1);
        for _ in 0..4 {
            front.push_request(&[0; 8]).unwrap();
        }
        front.push_and_check_notify();
        front.push_request(&[0; 8]).unwrap(); // pushed, not published: cannot have been answered
        back.set_header(offsets::RSP_PROD, (u32::MAX - 1).wrapping_add(5));
        let e = front.unconsumed_responses().unwrap_err();
        assert_eq!(e, RingError::Overrun { rsp_prod: 3, rsp_cons: u32::MAX - 1, req_prod: 2 });
        assert_eq!(
            e.to_string(),
            "the backend's rsp_prod 3 claims 5 responses past rsp_cons 4294967294, but only 4 requests were \
             published (req_prod 2)"
        );
        assert_eq!(front.take_response(&mut [0; 8]), None, "nothing accepted");
        // Going backwards is as bad (it reads as ~4 billion responses).
        back.set_header(offsets::RSP_PROD, u32::MAX - 2);
        assert!(front.unconsumed_responses().is_err());
        assert!(front.final_check_for_responses().is_err());
        // Exactly what was published is fine.
        back.set_header(offsets::RSP_PROD, 2);
        assert_eq!(front.unconsumed_responses(), Ok(4));
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn an_entry_larger_than_the_page_is_a_programming_error() {
        let _ = FrontRing::init(HeapRing(page()), 4033);
    }

    #[test]
    fn multi_page_ring_sizes_follow_linux() {
        // __CONST_RING_SIZE(blkif, XEN_PAGE_SIZE << order) with sizeof(union blkif_sring_entry) = 112.
        let blkif: Vec<u32> = (0..=5).map(|order| ring_size_for_pages(1 << order, 112)).collect();
        assert_eq!(blkif, [32, 64, 128, 256, 512, 1024]);
        assert_eq!(ring_size_for_pages(1, 12), ring_size(12));
        assert_eq!(ring_size_for_pages(3, 112), 64, "(3 * 4096 - 64) / 112 = 109 fit");
        assert_eq!(
            (ring_size_for_pages(0, 112), ring_size_for_pages(2, 8129), ring_size_for_pages(2, 8128)),
            (0, 0, 1)
        );
        assert_eq!(ring_size_for_pages(usize::MAX, 8), 0, "no overflow");
        assert_eq!(ring_size_for_pages(1 << 20, 1), 1 << 31, "capped at 2^31");
    }

    #[test]
    fn a_multi_page_ring_carries_entries_across_page_boundaries() {
        let p = pages(4);
        let mut front = FrontRing::init_pages_at(HeapRing(p.clone()), 112, 4, u32::MAX - 20);
        let mut back = BackRing::attach(p, 112);
        assert_eq!((front.size(), back.size, front.pages()), (128, 128, 4));
        for round in 0..3u8 {
            for i in 0..128u8 {
                front.push_request(&[i ^ round; 112]).unwrap();
            }
            assert!(front.is_full());
            front.push_and_check_notify();
            for i in 0..128u8 {
                let req = back.take_request().unwrap();
                assert_eq!(req, [i ^ round; 112], "entry {i}: slot 36 straddles the first page boundary");
                back.put_response(&[i; 16]);
            }
            back.push_responses_and_check_notify();
            assert_eq!(front.unconsumed_responses().unwrap(), 128);
            let mut out = [0; 16];
            for i in 0..128u8 {
                front.take_response(&mut out).unwrap();
                assert_eq!(out, [i; 16]);
            }
        }
        assert_eq!(front.free_requests(), 128);
    }
}
