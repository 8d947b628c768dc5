//! blkfront: the guest end of a Xen virtual block device (`io/blkif.h`), pure logic over the platform's ring pages
//! ([`SharedRing`](crate::ring::SharedRing)), granted data and indirect pages ([`BlockBuffers`]) and event channel
//! ([`Notify`](crate::ring::Notify)). Host tests run it against a fake blkback speaking the real wire format over
//! an in-memory disk (`fake`, also exported under the feature `fake`).
//!
//! The platform's sequence for `device/vbd/<id>` (each step a call here or in [`crate::frontend`]):
//! 1. [`frontend::enumerate`](crate::frontend::enumerate)`(Vbd)`; `set_state(Initialising)`;
//!    `wait_for_backend([InitWait])`.
//! 2. [`read_backend_params`] (`max-ring-page-order`, `feature-max-indirect-segments`, published by InitWait);
//!    [`Transport::negotiate`]`(&params, `[`Limits::default()`]`)`: up to 16 ring pages, up to 256 segments (1 MiB)
//!    per indirect request.
//! 3. Allocate and zero `transport.ring_pages()` ring pages, mapped virtually contiguous, and grant each to the
//!    backend (writable), in order; allocate the data pages (e.g. 512 = 2 MiB: the largest transfer is this many
//!    pages, see [`Blkfront::max_transfer`]) and the indirect pages (`transport.indirect_pages_per_request()` per
//!    indirect request you want in flight, e.g. 16), and grant them all **writable**, once, for the device's
//!    lifetime; `alloc_unbound` an event channel to the backend's domain; [`Blkfront::new`]`(dev.device(), ring,
//!    transport, buffers, evtchn)`.
//! 4. [`connect`]`(xs, &dev, &mut blk, &ring_refs, port, timeout)`: writes `ring-ref` (or `ring-page-order` and
//!    `ring-ref0..N-1`), `event-channel`, `protocol=x86_64-abi`, `feature-persistent=1` and `state=3` in one
//!    transaction (redone on `EAGAIN`), waits for the backend's Connected, reads the geometry ([`DiskInfo`]:
//!    `sectors` in 512-byte units, `sector-size`, `info`, `mode`, features), writes `state=4`, and lets the device
//!    take I/O. Log the [`DiskInfo`].
//! 5. I/O, many operations in flight: [`Blkfront::submit_read`] / [`Blkfront::submit_write`] /
//!    [`Blkfront::submit_flush`] / [`Blkfront::submit_discard`] take byte offsets and lengths (multiples of the
//!    disk's sector size) and return an [`OpId`] at once; an operation spans as many ring requests as it needs, and
//!    completes when all of them are answered, with the first error. [`ErrorKind::Busy`] (see
//!    [`BlkError::is_busy`]) means ring slots or pages are exhausted: wait for the next event and retry.
//! 6. On each event: [`Blkfront::poll`] (it re-arms the event), then for each waiter
//!    [`Blkfront::take_completion`]`(op)` (or drain [`Blkfront::next_completion`]); for a successful read,
//!    [`Blkfront::read_into`] copies the data into the caller's buffer and frees its pages (a read's pages stay held
//!    until then, or until [`Blkfront::release`]). Log the [`PollSummary::first_fault`] if any. A caller that
//!    gives up on an operation calls [`Blkfront::abandon`]: it frees itself once answered, and a later flush or
//!    overlapping operation waits for an abandoned write ([`ErrorKind::AfterAbandoned`]). [`transfer`] is this
//!    step as cancel-safe async functions over a [`transfer::DriverCell`], which the platform's `Disk` uses.
//! 7. Shutdown: wait for pending operations, then [`frontend::close`](crate::frontend::close). For a new backend
//!    after the old one closed: [`Blkfront::reset`] on fresh ring pages (every page and id is free again), then
//!    steps 4 to 6.
//!
//! Sector units: every sector quantity on the ring and `sectors` in xenstore count 512-byte sectors, whatever the
//! disk's `sector-size` (Linux's blkback ABI; we do not write `feature-large-sector-size`). A 4096-byte-sector disk
//! takes transfers that are multiples of 4096 at offsets that are multiples of 4096; unaligned ones are refused
//! before anything touches the ring.
//!
//! The backend is not trusted: every response's id (slot and generation), operation and status is validated before
//! it completes anything; a bad one is counted ([`Counters`]) and ignored. Since a backend gives exactly one
//! response per request, a bad response displaces a real one: once every request has had its response, the
//! requests still pending fail with [`ErrorKind::Lost`] and their pages are withheld from reuse. An `rsp_prod` that
//! runs ahead of our requests stops the device ([`Phase::Broken`]) and fails every pending operation.
//!
//! Every loop whose length the backend controls is bounded per call: [`Blkfront::poll`] takes at most as many
//! responses as requests were outstanding when it began (an `rsp_prod` claiming more is an overrun and stops
//! the device), so at most the ring's size, and fails at most that many lost requests.
//!
//! Not done here: multiple queues (`multi-queue-max-queues` is read, one queue is used), the xenbus sequence of
//! reconnecting after the backend closes (the platform's; [`Blkfront::reset`] is the driver's half),
//! `discard-secure` requests, and `feature-large-sector-size`.

mod complete;
mod config;
mod device;
mod disk_config;
mod error;
mod plan;
mod shadow;
pub mod transfer;
pub mod wire;

/// Test support: a fake blkback over heap pages and an in-memory disk (feature `fake`).
#[cfg(any(test, feature = "fake"))]
#[allow(missing_docs)] // test support, documented by its names
pub mod fake;
#[cfg(test)]
mod tests;

pub use config::{
    connect, read_backend_params, read_disk_info, write_connect_keys, BackendParams, ConfigError, DiskFeatures,
    DiskInfo, Limits, Transport, DEFAULT_MAX_INDIRECT_SEGMENTS, MAX_RING_PAGE_ORDER,
};
pub use device::{Blkfront, BlockBuffers, FlushMethod, Phase};
pub use disk_config::{vbd_id, DiskConfig, DiskConfigError, MIN_SEGMENTS};
pub use error::{BlkError, Completion, Counters, ErrorKind, Fault, FaultKind, OpId, OpKind, PollSummary, Resources};
