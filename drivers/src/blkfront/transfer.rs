//! Async reads, writes, flushes and discards over a [`Blkfront`] shared between tasks: what the platform's `Disk`
//! API runs. A large transfer is split into operations of [`chunk`] bytes, two in flight at once.
//!
//! The platform supplies a [`DriverCell`]: the driver behind its lock, and a progress count that moves (waking
//! the waiters) every time the driver is polled.

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

/// Makes every completed write durable ([`Blkfront::submit_flush`]).
pub async fn flush<C: DriverCell>(dev: &C) -> Result<(), BlkError> {
    let op = submit(dev, |d| d.submit_flush()).await?;
    complete(dev, op).await?.result.map(|_| ())
}

/// Tells the backend the range's contents are no longer needed ([`Blkfront::submit_discard`]).
pub async fn discard<C: DriverCell>(dev: &C, offset: u64, len: u64) -> Result<(), BlkError> {
    let op = submit(dev, |d| d.submit_discard(offset, len)).await?;
    complete(dev, op).await?.result.map(|_| ())
}

type Driver<C> = Blkfront<<C as DriverCell>::Ring, <C as DriverCell>::Buffers, <C as DriverCell>::Notify>;

/// Moves `len` bytes as operations of [`chunk`] bytes, two in flight: `submit(driver, at, len)` starts the piece
/// at byte `at` of the transfer, `finish(driver, op, at, len)` takes a completed one (a read copies its data out).
/// Waits for room while the driver is busy. On an error, the pieces still in flight are waited for (their pages
/// must come back) before it is returned.
async fn transfer<C: DriverCell>(
    dev: &C,
    len: usize,
    mut submit: impl FnMut(&mut Driver<C>, usize, usize) -> Result<OpId, BlkError>,
    mut finish: impl FnMut(&mut Driver<C>, OpId, usize, usize) -> Result<(), BlkError>,
) -> Result<(), BlkError> {
    let sector = sector_size(dev);
    let chunk = dev.with(|d| chunk(d, sector)) as usize;
    let mut queued: VecDeque<(OpId, usize, usize)> = VecDeque::new();
    let mut next = 0usize;
    while next < len || !queued.is_empty() {
        // Keep submitting while the driver has room, then collect the oldest.
        while next < len && queued.len() < 2 {
            let piece = chunk.min(len - next);
            let seen = dev.progress();
            match dev.with(|d| submit(d, next, piece)) {
                Ok(op) => {
                    queued.push_back((op, next, piece));
                    next += piece;
                }
                Err(e) if e.is_busy() && !queued.is_empty() => break,
                Err(e) if e.is_busy() => progress_since(dev, seen).await,
                Err(e) => return abandon(dev, queued, e).await,
            }
        }
        if let Some((op, at, piece)) = queued.pop_front() {
            if let Err(e) = complete(dev, op).await?.result {
                return abandon(dev, queued, e).await;
            }
            dev.with(|d| finish(d, op, at, piece))?;
        }
    }
    Ok(())
}

/// After a failure: waits for the operations still in flight (their pages must come back), then returns `e`.
async fn abandon<C: DriverCell>(dev: &C, queued: VecDeque<(OpId, usize, usize)>, e: BlkError) -> Result<(), BlkError> {
    for (op, _, _) in queued {
        if let Ok(c) = complete(dev, op).await {
            if c.result.is_ok() && matches!(c.kind, super::error::OpKind::Read) {
                let _ = dev.with(|d| d.release(op));
            }
        }
    }
    Err(e)
}
