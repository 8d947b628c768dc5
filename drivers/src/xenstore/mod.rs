//! The xenstore client (`io/xs_wire.h`): requests and replies over the shared page `struct
//! xenstore_domain_interface`, watch events, transactions.
//!
//! The platform maps the page and binds the event channel (`start_info.store_mfn`, `store_evtchn`), then implements
//! [`XsRing`] over the page and [`XsPlatform`] over the event channel and clock. Everything here is pure logic over
//! those two traits; host tests run it against a fake xenstored (`fake`, also exported under the feature `fake`)
//! on a heap page.
//!
//! xenstored is not trusted: indices that run too far, oversized headers, replies with an unknown id or the wrong
//! type are reported as [`Violation`]s, never acted on.

mod asynch;
mod client;
mod error;
mod queue;
mod text;
mod wire;

/// Test support: a fake xenstored over a heap page (feature `fake`), for host tests here and in other crates.
#[cfg(any(test, feature = "fake"))]
pub mod fake;
#[cfg(test)]
mod tests;

pub use asynch::{complete_now, XsAsync};
pub use client::{
    parse_directory, parse_transaction_id, Pending, Request, Tx, WatchEvent, Xenstore, DEFAULT_TIMEOUT_NS,
    DEFAULT_TRANSACTION_ATTEMPTS, MAX_IN_FLIGHT, WATCHES_MAX,
};
pub use error::{ErrorPath, Violation, XsError, ERROR_PATH_MAX};
pub use queue::{Pushed, WatchQueue, WATCH_EVENTS_MAX, WATCH_PATHS_PER_TOKEN_MAX};
pub use text::InlineStr;
pub use wire::{
    mask_idx, offsets, Errno, MsgType, XenstoreDomainInterface, XsdSockmsg, ABS_PATH_MAX, ERRNO_NAME_MAX, HEADER_SIZE,
    PAYLOAD_MAX, REL_PATH_MAX, RING_SIZE, XS_INVALID,
};

pub(crate) use client::parse_decimal;

/// The shared xenstore page (`struct xenstore_domain_interface`, see [`offsets`]). The platform implements it with
/// volatile accesses and the barriers each method names; indices are free-running `u32`s, reduced with
/// [`mask_idx`] by the caller.
pub trait XsRing {
    /// `req_cons`, read with acquire ordering: the daemon's progress, after which the bytes it consumed may be
    /// overwritten.
    fn req_cons(&self) -> u32;
    /// `req_prod` (only we write it): read once, when the client starts; after that it keeps its own copy.
    fn req_prod(&self) -> u32;
    /// Stores `byte` at `req[index]` (`index < RING_SIZE`).
    fn write_req(&mut self, index: usize, byte: u8);
    /// A write barrier (the request bytes become visible first), then stores `req_prod`.
    fn publish_req_prod(&mut self, prod: u32);
    /// `rsp_prod`, read with acquire ordering (the response bytes before it are then readable).
    fn rsp_prod(&self) -> u32;
    /// `rsp_cons` (only we write it): read once, when the client starts; after that it keeps its own copy.
    fn rsp_cons(&self) -> u32;
    /// Loads `rsp[index]` (`index < RING_SIZE`).
    fn read_rsp(&self, index: usize) -> u8;
    /// A full barrier (our reads of the response bytes complete first), then stores `rsp_cons`.
    fn publish_rsp_cons(&mut self, cons: u32);
}

/// The xenstore event channel and the clock.
pub trait XsPlatform {
    /// Kicks the xenstore event channel (`EVTCHNOP_send`).
    fn notify(&mut self);
    /// Blocks until the xenstore event channel fires or system time reaches `deadline_ns`; returns false on
    /// timeout. It must return at once if the channel fired since the previous `wait` returned (clear the pending
    /// bit on return, not before the next block: the client checks the ring after each `wait`). Spurious returns
    /// are fine.
    fn wait(&mut self, deadline_ns: u64) -> bool;
    /// Xen system time, in nanoseconds.
    fn now_ns(&self) -> u64;
}
