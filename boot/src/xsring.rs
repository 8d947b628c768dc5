//! The shared xenstore page (`struct xenstore_domain_interface`) as the client in `sirocco-drivers` reads and
//! writes it: indices through fences and volatile accesses, bytes with volatile accesses, since xenstored writes the
//! page concurrently.

use core::sync::atomic::{fence, Ordering};
use sirocco_drivers::xenstore::offsets::{REQ, REQ_CONS, REQ_PROD, RSP, RSP_CONS, RSP_PROD};
use sirocco_drivers::xenstore::XsRing;

/// The shared xenstore page (`struct xenstore_domain_interface`).
pub struct StorePage(*mut u8);

impl StorePage {
    /// The page mapped at `va`.
    ///
    /// # Safety
    /// `va` must be where the domain's xenstore page is mapped, for the domain's life, and nothing else may
    /// access the page.
    pub unsafe fn new(va: u64) -> StorePage {
        StorePage(va as *mut u8)
    }
}

// SAFETY: the page is mapped for the domain's life; one vCPU, and the client's Mutex serialises our side.
unsafe impl Send for StorePage {}

impl StorePage {
    fn load(&self, off: usize) -> u32 {
        // SAFETY: an aligned u32 index inside the mapped page; xenstored writes some of them, hence volatile.
        let v = unsafe { (self.0.add(off) as *const u32).read_volatile() };
        fence(Ordering::Acquire);
        v
    }
    fn store(&mut self, off: usize, v: u32) {
        fence(Ordering::SeqCst);
        // SAFETY: an aligned u32 index inside the mapped page.
        unsafe { (self.0.add(off) as *mut u32).write_volatile(v) };
        fence(Ordering::SeqCst);
    }
}

impl XsRing for StorePage {
    fn req_cons(&self) -> u32 {
        self.load(REQ_CONS)
    }
    fn req_prod(&self) -> u32 {
        self.load(REQ_PROD)
    }
    fn write_req(&mut self, index: usize, byte: u8) {
        assert!(index < 1024);
        // SAFETY: req[index] inside the mapped page (checked above).
        unsafe { self.0.add(REQ + index).write_volatile(byte) };
    }
    fn publish_req_prod(&mut self, prod: u32) {
        self.store(REQ_PROD, prod);
    }
    fn rsp_prod(&self) -> u32 {
        self.load(RSP_PROD)
    }
    fn rsp_cons(&self) -> u32 {
        self.load(RSP_CONS)
    }
    fn read_rsp(&self, index: usize) -> u8 {
        assert!(index < 1024);
        // SAFETY: rsp[index] inside the mapped page (checked above).
        unsafe { self.0.add(RSP + index).read_volatile() }
    }
    fn publish_rsp_cons(&mut self, cons: u32) {
        self.store(RSP_CONS, cons);
    }
}
