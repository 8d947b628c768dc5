//! A shared ring (`io/ring.h`; header layout `sirocco_drivers::ring::SringHeader`) on granted pages: one page for
//! netfront's rings, up to 16 contiguous pages for blkfront's. The backend may write any of it at any time, so it
//! is never reached through a reference to plain memory: the indices are atomics (`AtomicU32::from_ptr`) with the
//! acquire/release orderings `SharedRing` names, the entries volatile byte copies.

use crate::grant::SharedPages;
use core::ptr::addr_of_mut;
use core::sync::atomic::{fence, AtomicU32, Ordering};
use sirocco_drivers::grant::{GrantError, GrantRef};
use sirocco_drivers::ring::offsets::RING;
use sirocco_drivers::ring::{Notify, RingIndex, SharedRing, SringHeader};

/// The ring's pages, granted writable to the backend. Never accessed through a reference: the backend may write
/// any byte of them at any time.
pub struct RingPages(SharedPages);

impl RingPages {
    /// `count` zeroed pages granted to `domid`; the driver initialises the header.
    pub fn new(domid: u16, count: usize) -> Result<RingPages, GrantError> {
        SharedPages::new(domid, count, false).map(RingPages)
    }

    /// The grant references to publish (`ring-ref`, or `ring-ref0..N`).
    pub fn grefs(&self) -> &[GrantRef] {
        self.0.grefs()
    }

    fn len(&self) -> usize {
        self.0.count() * 4096
    }

    fn header(&self) -> *mut SringHeader {
        self.0.as_ptr() as *mut SringHeader
    }

    /// A header index, as the atomic it is shared as.
    fn index(&self, index: RingIndex) -> &AtomicU32 {
        let h = self.header();
        // SAFETY: `h` points at the 64-byte header at the start of the live, page-aligned allocation, so each
        // field is in bounds and 4-aligned; `addr_of_mut!` takes its address without making a reference.
        let field = unsafe {
            match index {
                RingIndex::ReqProd => addr_of_mut!((*h).req_prod),
                RingIndex::ReqEvent => addr_of_mut!((*h).req_event),
                RingIndex::RspProd => addr_of_mut!((*h).rsp_prod),
                RingIndex::RspEvent => addr_of_mut!((*h).rsp_event),
            }
        };
        // SAFETY: the field is a valid, aligned u32 for as long as `self` (the allocation lives as long as the
        // RingPages, and longer if the peer keeps it mapped). We access it only atomically, and the peer's
        // accesses to a RING_IDX are aligned 32-bit loads and stores (single instructions on x86), so no
        // non-atomic or mixed-size access races ours, whatever the peer does.
        unsafe { AtomicU32::from_ptr(field) }
    }
}

impl SharedRing for RingPages {
    fn load_acquire(&self, index: RingIndex) -> u32 {
        self.index(index).load(Ordering::Acquire)
    }
    fn store_release(&mut self, index: RingIndex, value: u32) {
        self.index(index).store(value, Ordering::Release);
    }
    fn full_barrier(&mut self) {
        fence(Ordering::SeqCst);
    }
    fn init_header(&mut self, req_prod: u32, req_event: u32, rsp_prod: u32, rsp_event: u32) {
        let h = self.header();
        // SAFETY: `pvt` and `pad` (48 bytes after the indices) lie inside the header of the live allocation;
        // volatile byte stores through a raw pointer, no reference.
        let (pvt, pad) = unsafe { (addr_of_mut!((*h).pvt) as *mut u8, addr_of_mut!((*h).pad) as *mut u8) };
        for (base, len) in [(pvt, 4), (pad, 44)] {
            for i in 0..len {
                // SAFETY: byte `i` of `pvt` (4 bytes) or `pad` (44 bytes), inside the header.
                unsafe { base.add(i).write_volatile(0) };
            }
        }
        for (index, value) in [
            (RingIndex::ReqProd, req_prod),
            (RingIndex::ReqEvent, req_event),
            (RingIndex::RspProd, rsp_prod),
            (RingIndex::RspEvent, rsp_event),
        ] {
            self.store_release(index, value);
        }
    }
    fn write_bytes(&mut self, offset: usize, bytes: &[u8]) {
        assert!(offset >= RING && offset + bytes.len() <= self.len(), "ring write outside the entries");
        // SAFETY: `offset..offset + bytes.len()` is inside the live pages (checked above); `copy_to_shared` stores
        // with volatile writes through a raw pointer, since the backend may read (or, if hostile, write) the slot
        // concurrently.
        unsafe { crate::grant::copy_to_shared(self.0.as_ptr().add(offset), bytes) };
    }
    fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        assert!(offset >= RING && offset + out.len() <= self.len(), "ring read outside the entries");
        // SAFETY: `offset..offset + out.len()` is inside the live pages (checked above); `copy_from_shared` reads
        // each byte once with volatile loads through a raw pointer: the backend may be writing the slot right now,
        // and the driver validates only this copy.
        unsafe { crate::grant::copy_from_shared(self.0.as_ptr().add(offset), out) };
    }
}

/// Notifies the backend on our event channel (the port bound to it).
pub struct Kick(pub u32);

impl Notify for Kick {
    fn notify(&mut self) {
        crate::hypercall::evtchn_send(self.0);
    }
}
