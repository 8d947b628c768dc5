//! Async reads, writes, flushes and discards over a [`Blkfront`] shared between tasks: what the platform's `Disk`
//! API runs. A large transfer is split into operations of [`chunk`] bytes, two in flight at once.
//!
//! The platform supplies a [`DriverCell`]: the driver behind its lock, and a progress count that moves (waking
//! the waiters) every time the driver is polled.
//!
//! # Cancellation
//!
//! Every future here is cancel-safe: dropped at any await, it [abandons](Blkfront::abandon) the operations it
//! has in flight. Their ring requests cannot be withdrawn, so their pages, request ids and operation ids come
//! back when the backend answers them (or at [`Blkfront::reset`] if it closes or breaks first), and no
//! completion is ever handed out for them. What that means for the data:
//!
//! - A cancelled **read** leaves its buffer holding unspecified bytes (pieces already copied, or not).
//! - A cancelled **write** is never reported done, and may or may not have reached the disk, in any part: the
//!   pieces already answered are written, the ones in flight may land, the ones never submitted did not. It is
//!   ordered before what comes after it: a later read, write or discard on its sectors is not sent until the
//!   backend has answered it, nor is any later [`flush`], so a successful flush started after the cancellation
//!   makes whatever of it reached the disk durable, and it cannot land after that flush. Rewrite the range to
//!   know what it holds.
//! - A cancelled **flush** promises nothing; flush again.
//!
//! An error mid-transfer stops submitting, waits for the pieces already in flight (so a caller that retries
//! does not race them) and returns the first error; cancelling that wait is cancellation as above.
//!
//! There are no timeouts here: a backend that never answers keeps the operation pending. Race the future with a
//! timer and drop it; the pages stay withheld until the backend answers or closes and the device is reset.

use alloc::collections::VecDeque;
use core::future::poll_fn;
use core::task::{Context, Poll};

use super::device::{Blkfront, BlockBuffers};
use super::error::{BlkError, Completion, OpId};
use crate::ring::{Notify, SharedRing};

/// The driver of one device as the tasks using it see it.
pub trait DriverCell {
    /// The ring pages.
    type Ring: SharedRing;
    /// The data and indirect pages.
    type Buffers: BlockBuffers;
    /// The event channel.
    type Notify: Notify;
    /// Runs `f` on the driver, locked. `f` never awaits.
    fn with<R>(&self, f: impl FnOnce(&mut Blkfront<Self::Ring, Self::Buffers, Self::Notify>) -> R) -> R;
    /// A count that moves every time the driver has been polled (or the device's state changed).
    fn progress(&self) -> u64;
    /// Ready once [`DriverCell::progress`] is no longer `seen`; until then, `cx`'s waker is woken when it moves.
    fn poll_progress(&self, seen: u64, cx: &mut Context<'_>) -> Poll<()>;
}

/// Waits until the driver has been polled since `seen`.
async fn progress_since<C: DriverCell>(dev: &C, seen: u64) {
    poll_fn(|cx| dev.poll_progress(seen, cx)).await
}

/// Submits with `submit`, waiting for room while the driver is busy.
async fn submit<C: DriverCell>(
    dev: &C,
    mut submit: impl FnMut(&mut Blkfront<C::Ring, C::Buffers, C::Notify>) -> Result<OpId, BlkError>,
) -> Result<OpId, BlkError> {
    loop {
        let seen = dev.progress();
        match dev.with(&mut submit) {
            Err(e) if e.is_busy() => progress_since(dev, seen).await,
            other => return other,
        }
    }
}

/// Waits for `op` to complete.
async fn complete<C: DriverCell>(dev: &C, op: OpId) -> Result<Completion, BlkError> {
    loop {
        let seen = dev.progress();
        if let Some(c) = dev.with(|d| d.take_completion(op))? {
            return Ok(c);
        }
        progress_since(dev, seen).await;
    }
}

/// One operation's size for large transfers: half the most the driver takes at once, so two are in flight (one
/// being answered while the next is queued), at most 1 MiB, whole sectors of `sector_size` bytes.
pub fn chunk<S: SharedRing, B: BlockBuffers, E: Notify>(driver: &Blkfront<S, B, E>, sector_size: u32) -> u64 {
    let sector = u64::from(sector_size.max(1));
    ((driver.max_transfer() / 2).min(1 << 20) / sector * sector).max(sector)
}

fn sector_size<C: DriverCell>(dev: &C) -> u32 {
    dev.with(|d| d.disk().map_or(512, |disk| disk.sector_size))
}

/// Reads `buf.len()` bytes at byte `offset` of the disk (both multiples of the sector size).
pub async fn read<C: DriverCell>(dev: &C, offset: u64, buf: &mut [u8]) -> Result<(), BlkError> {
    transfer(
        dev,
        buf.len(),
        |d, at, len| d.submit_read(offset + at as u64, len as u64),
        |d, op, at, len| d.read_into(op, &mut buf[at..at + len]).map(|_| ()),
    )
    .await
}

/// Writes `data` at byte `offset` of the disk (both multiples of the sector size). Not durable until [`flush`].
pub async fn write<C: DriverCell>(dev: &C, offset: u64, data: &[u8]) -> Result<(), BlkError> {
    transfer(dev, data.len(), |d, at, len| d.submit_write(offset + at as u64, &data[at..at + len]), |_, _, _, _| Ok(()))
        .await
}

/// Makes every completed write durable ([`Blkfront::submit_flush`]), and whatever reached the disk of every
/// write cancelled before it was called (it waits until the backend has answered those).
pub async fn flush<C: DriverCell>(dev: &C) -> Result<(), BlkError> {
    single(dev, |d| d.submit_flush()).await
}

/// Tells the backend the range's contents are no longer needed ([`Blkfront::submit_discard`]).
pub async fn discard<C: DriverCell>(dev: &C, offset: u64, len: u64) -> Result<(), BlkError> {
    single(dev, |d| d.submit_discard(offset, len)).await
}

type Driver<C> = Blkfront<<C as DriverCell>::Ring, <C as DriverCell>::Buffers, <C as DriverCell>::Notify>;

/// The operations a transfer has in flight, oldest first, with the byte range of the transfer each moves. The
/// drop guard of cancellation: dropped with operations still in it (the future was dropped, or an early return),
/// it [abandons](Blkfront::abandon) each, so the driver frees their pages and ids once the backend has answered
/// them and never reports them.
struct InFlight<'a, C: DriverCell> {
    dev: &'a C,
    ops: VecDeque<(OpId, usize, usize)>,
}

impl<C: DriverCell> Drop for InFlight<'_, C> {
    fn drop(&mut self) {
        if self.ops.is_empty() {
            return;
        }
        self.dev.with(|d| {
            for &(op, _, _) in &self.ops {
                // An id the driver no longer knows was freed already: nothing to give back.
                let _ = d.abandon(op);
            }
        });
    }
}

/// One operation (a flush, a discard): submitted when the driver has room, waited for.
async fn single<C: DriverCell>(
    dev: &C,
    submit_op: impl FnMut(&mut Driver<C>) -> Result<OpId, BlkError>,
) -> Result<(), BlkError> {
    let op = submit(dev, submit_op).await?;
    let mut flight = InFlight { dev, ops: VecDeque::from([(op, 0, 0)]) };
    let completion = complete(dev, op).await;
    flight.ops.clear();
    completion?.result.map(|_| ())
}

/// Moves `len` bytes as operations of [`chunk`] bytes, two in flight: `submit(driver, at, len)` starts the piece
/// at byte `at` of the transfer, `finish(driver, op, at, len)` takes a completed one (a read copies its data out).
/// Waits for room while the driver is busy.
///
/// Every operation submitted stays in an [`InFlight`] guard until its completion is taken, so cancellation at any
/// await, and any early return, abandons exactly the operations still in flight. On an error nothing more is
/// submitted, but the pieces already in flight are waited for before the first error is returned: a caller that
/// retries a failed write must not race its own earlier pieces.
async fn transfer<C: DriverCell>(
    dev: &C,
    len: usize,
    mut submit: impl FnMut(&mut Driver<C>, usize, usize) -> Result<OpId, BlkError>,
    mut finish: impl FnMut(&mut Driver<C>, OpId, usize, usize) -> Result<(), BlkError>,
) -> Result<(), BlkError> {
    let sector = sector_size(dev);
    let chunk = dev.with(|d| chunk(d, sector)) as usize;
    let mut flight = InFlight { dev, ops: VecDeque::new() };
    let mut failed: Option<BlkError> = None;
    let mut next = 0usize;
    while (failed.is_none() && next < len) || !flight.ops.is_empty() {
        // Keep submitting while the driver has room, then collect the oldest.
        while failed.is_none() && next < len && flight.ops.len() < 2 {
            let piece = chunk.min(len - next);
            let seen = dev.progress();
            match dev.with(|d| submit(d, next, piece)) {
                Ok(op) => {
                    flight.ops.push_back((op, next, piece));
                    next += piece;
                }
                Err(e) if e.is_busy() && !flight.ops.is_empty() => break,
                Err(e) if e.is_busy() => progress_since(dev, seen).await,
                Err(e) => failed = Some(e),
            }
        }
        let Some(&(op, at, piece)) = flight.ops.front() else { continue };
        let completion = complete(dev, op).await;
        flight.ops.pop_front();
        // No await from here to the end of the iteration: `op` is out of the guard, so it is settled now.
        let outcome = completion.and_then(|c| c.result.map(|_| ()));
        let outcome = match (outcome, &failed) {
            (Ok(()), None) => dev.with(|d| finish(d, op, at, piece)),
            (outcome, _) => outcome,
        };
        if let Err(e) = outcome {
            failed.get_or_insert(e);
        }
        if failed.is_some() {
            // A read whose data will not be collected (or a completion someone else took): let it go.
            let _ = dev.with(|d| d.abandon(op));
        }
    }
    failed.map_or(Ok(()), Err)
}
