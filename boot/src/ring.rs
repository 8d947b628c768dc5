//! A shared ring (`io/ring.h`; header layout in `sirocco_drivers::ring::offsets`) on granted pages: one page for
//! netfront's rings, up to 16 contiguous pages for blkfront's. Accessed volatile because the backend reads and
//! writes it concurrently; the orderings `FrontRing` needs are the fences here.

use crate::grant::SharedPages;
use core::sync::atomic::{fence, Ordering};
use sirocco_drivers::grant::{GrantError, GrantRef};
use sirocco_drivers::ring::offsets::{REQ_EVENT, REQ_PROD, RING, RSP_EVENT, RSP_PROD};
use sirocco_drivers::ring::{Notify, SharedRing};

/// The ring's pages, granted writable to the backend.
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

    fn word(&self, off: usize) -> *mut u32 {
        self.0.as_ptr().wrapping_add(off) as *mut u32
    }
}

impl SharedRing for RingPages {
    fn load_rsp_prod(&self) -> u32 {
        // SAFETY: aligned u32 of the ring header inside the live pages.
        let v = unsafe { self.word(RSP_PROD).read_volatile() };
        fence(Ordering::Acquire);
        v
    }
    fn load_req_event(&self) -> u32 {
        // SAFETY: as above.
        unsafe { self.word(REQ_EVENT).read_volatile() }
    }
    fn store_req_prod(&mut self, value: u32) {
        fence(Ordering::Release);
        // SAFETY: as above.
        unsafe { self.word(REQ_PROD).write_volatile(value) };
    }
    fn store_rsp_event(&mut self, value: u32) {
        // SAFETY: as above.
        unsafe { self.word(RSP_EVENT).write_volatile(value) };
    }
    fn full_barrier(&mut self) {
        fence(Ordering::SeqCst);
    }
    fn init_header(&mut self, req_prod: u32, req_event: u32, rsp_prod: u32, rsp_event: u32) {
        for (off, v) in [(REQ_PROD, req_prod), (REQ_EVENT, req_event), (RSP_PROD, rsp_prod), (RSP_EVENT, rsp_event)] {
            // SAFETY: as above.
            unsafe { self.word(off).write_volatile(v) };
        }
        for off in RSP_EVENT + 4..RING {
            // SAFETY: the header's pad bytes inside the live pages.
            unsafe { self.0.as_ptr().add(off).write_volatile(0) };
        }
    }
    fn write_bytes(&mut self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len(), "ring write past the pages");
        let base = self.0.as_ptr();
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: inside the live pages (checked above).
            unsafe { base.add(offset + i).write_volatile(b) };
        }
    }
    fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= self.len(), "ring read past the pages");
        let base = self.0.as_ptr();
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: inside the live pages (checked above).
            *b = unsafe { base.add(offset + i).read_volatile() };
        }
    }
}

/// Notifies the backend on our event channel (the port bound to it).
pub struct Kick(pub u32);

impl Notify for Kick {
    fn notify(&mut self) {
        crate::hypercall::evtchn_send(self.0);
    }
}
