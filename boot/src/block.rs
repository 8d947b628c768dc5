//! Block devices for apps: each vbd the toolstack gave us is connected (blkfront) and served by a task that polls
//! the driver whenever its event channel fires. [`Disk`] is a cheap handle (clone it into as many tasks as you
//! like) with async `read`, `write`, `flush` and `discard` of whole sectors at byte offsets; large transfers are
//! split and kept in flight together, and every error reaches the caller.

use crate::blkfront::{self, Driver};
use crate::evtchn::EventChannel;
use crate::runtime;
use crate::xenstore::BackendWatch;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::poll_fn;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Poll, Waker};
use sirocco_drivers::blkfront::{Completion, OpId};
use sirocco_drivers::frontend::lifecycle::{self, Action, Lifecycle, OnBackendGone};

pub use crate::blkfront::ConnectError;
pub use sirocco_drivers::blkfront::{BlkError, Counters, DiskInfo, ErrorKind, FlushMethod};

struct Shared {
    id: u32,
    disk: DiskInfo,
    driver: spin::Mutex<Driver>,
    /// Bumped after every driver poll: operations waiting for a completion or for room wait for it to move.
    progress: AtomicU64,
    waiters: spin::Mutex<Vec<Waker>>,
}

/// A connected virtual block device.
#[derive(Clone)]
pub struct Disk(Arc<Shared>);

static DISKS: spin::Once<Vec<Disk>> = spin::Once::new();

/// Connects every vbd and starts its task (once; later calls return the same disks).
pub fn disks() -> Result<&'static [Disk], ConnectError> {
    if let Some(d) = DISKS.get() {
        return Ok(d);
    }
    let mut disks = Vec::new();
    for dev in blkfront::enumerate()? {
        let (driver, channel, disk) = blkfront::connect(&dev)?;
        let shared = Arc::new(Shared {
            id: dev.id,
            disk,
            driver: spin::Mutex::new(driver),
            progress: AtomicU64::new(0),
            waiters: spin::Mutex::new(Vec::new()),
        });
        if runtime::spawn(drive(shared.clone(), channel, dev.clone())).is_err() {
            log::error!("vbd{}: no task slot to drive it; skipped", dev.id);
            continue;
        }
        disks.push(Disk(shared));
    }
    Ok(DISKS.call_once(|| disks))
}

/// The task of one vbd: poll the driver on each event, then let waiting operations look; if the backend closes
/// the device, fail what is pending (nothing would ever answer it) instead of leaving callers waiting.
async fn drive(shared: Arc<Shared>, mut channel: EventChannel, dev: sirocco_drivers::frontend::DeviceInfo) {
    let mut faults_logged = 0u64;
    let mut backend = BackendWatch::new(&dev).await;
    let mut lifecycle = Lifecycle::connected(OnBackendGone::Detach);
    loop {
        match runtime::select(channel.wait(), backend.changed()).await {
            crate::Either::Left(open) => {
                let summary = shared.driver.lock().poll();
                if let Some(fault) = summary.first_fault {
                    faults_logged += 1;
                    if faults_logged <= 16 || faults_logged.is_multiple_of(1000) {
                        log::warn!(
                            "vbd{}: backend fault: {fault} ({faults_logged} polls with faults so far)",
                            shared.id
                        );
                    }
                }
                if !open {
                    shared.driver.lock().backend_closed();
                    wake_waiters(&shared);
                    return;
                }
            }
            crate::Either::Right(()) => {
                let (action, state) = backend.follow(&mut lifecycle).await;
                if action == Action::Detach {
                    let failed = shared.driver.lock().backend_closed();
                    log::error!(
                        "vbd{}: the backend closed the device (state {state:?}); {failed} pending operation(s) failed",
                        shared.id
                    );
                    // Finish the handshake on our side too, so the toolstack's detach completes (through the run
                    // loop: other disks, vifs and timers keep running meanwhile).
                    wake_waiters(&shared);
                    let mut xs = crate::xenstore::RunLoop;
                    let closed =
                        lifecycle::close_after_backend_left_async(&mut xs, &dev, OnBackendGone::Detach, 5_000_000_000)
                            .await;
                    if let Err(e) = closed {
                        log::warn!("vbd{}: closing our end: {e}", shared.id);
                    }
                }
            }
        }
        wake_waiters(&shared);
    }
}

fn wake_waiters(shared: &Shared) {
    shared.progress.fetch_add(1, Ordering::Release);
    for w in core::mem::take(&mut *shared.waiters.lock()) {
        w.wake();
    }
}

impl Disk {
    /// The device id (`device/vbd/<id>`, e.g. 51712 for xvda).
    pub fn id(&self) -> u32 {
        self.0.id
    }
    /// Geometry and features.
    pub fn info(&self) -> &DiskInfo {
        &self.0.disk
    }
    /// Logical sector size: every transfer is a whole number of these, at a multiple of it.
    pub fn sector_size(&self) -> u32 {
        self.0.disk.sector_size
    }
    /// Size in bytes.
    pub fn capacity(&self) -> u64 {
        self.0.disk.capacity()
    }
    /// The driver's counters.
    pub fn counters(&self) -> Counters {
        self.0.driver.lock().counters()
    }

    /// Waits until the driver has been polled since `seen` (a value of `progress`).
    async fn progress_since(&self, seen: u64) {
        poll_fn(|cx| {
            if self.0.progress.load(Ordering::Acquire) != seen {
                return Poll::Ready(());
            }
            // One vCPU and no interrupts: nothing can poll the driver between the check and the registration.
            self.0.waiters.lock().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Submits with `submit`, waiting for room while the driver is busy.
    async fn submit(&self, mut submit: impl FnMut(&mut Driver) -> Result<OpId, BlkError>) -> Result<OpId, BlkError> {
        loop {
            let seen = self.0.progress.load(Ordering::Acquire);
            match submit(&mut self.0.driver.lock()) {
                Err(e) if e.is_busy() => self.progress_since(seen).await,
                other => return other,
            }
        }
    }

    /// Waits for `op` to complete.
    async fn complete(&self, op: OpId) -> Result<Completion, BlkError> {
        loop {
            let seen = self.0.progress.load(Ordering::Acquire);
            if let Some(c) = self.0.driver.lock().take_completion(op)? {
                return Ok(c);
            }
            self.progress_since(seen).await;
        }
    }

    /// One operation's size for large transfers: half the most the driver takes at once, so two are in
    /// flight (one being answered while the next is queued), at most 1 MiB, whole sectors.
    fn chunk(&self) -> u64 {
        let max = self.0.driver.lock().max_transfer();
        let sector = u64::from(self.sector_size());
        ((max / 2).min(1 << 20) / sector * sector).max(sector)
    }

    /// Reads `buf.len()` bytes at `offset` (both multiples of the sector size).
    pub async fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        self.transfer(
            buf.len(),
            |d, at, len| d.submit_read(offset + at as u64, len as u64),
            |d, op, at, len| d.read_into(op, &mut buf[at..at + len]).map(|_| ()),
        )
        .await
    }

    /// Writes `data` at `offset` (both multiples of the sector size). Not durable until [`Disk::flush`].
    pub async fn write(&self, offset: u64, data: &[u8]) -> Result<(), BlkError> {
        self.transfer(
            data.len(),
            |d, at, len| d.submit_write(offset + at as u64, &data[at..at + len]),
            |_, _, _, _| Ok(()),
        )
        .await
    }

    /// Moves `len` bytes as operations of [`Disk::chunk`] bytes, two in flight: `submit(driver, at, len)` starts
    /// the piece at byte `at` of the transfer, `finish(driver, op, at, len)` takes a completed one (a read copies
    /// its data out). Waits for room while the driver is busy. On an error, the pieces still in flight are waited
    /// for (their pages must come back) before it is returned.
    async fn transfer(
        &self,
        len: usize,
        mut submit: impl FnMut(&mut Driver, usize, usize) -> Result<OpId, BlkError>,
        mut finish: impl FnMut(&mut Driver, OpId, usize, usize) -> Result<(), BlkError>,
    ) -> Result<(), BlkError> {
        let chunk = self.chunk() as usize;
        let mut queued: alloc::collections::VecDeque<(OpId, usize, usize)> = alloc::collections::VecDeque::new();
        let mut next = 0usize;
        while next < len || !queued.is_empty() {
            // Keep submitting while the driver has room, then collect the oldest.
            while next < len && queued.len() < 2 {
                let piece = chunk.min(len - next);
                let seen = self.0.progress.load(Ordering::Acquire);
                let submitted = submit(&mut self.0.driver.lock(), next, piece);
                match submitted {
                    Ok(op) => {
                        queued.push_back((op, next, piece));
                        next += piece;
                    }
                    Err(e) if e.is_busy() && !queued.is_empty() => break,
                    Err(e) if e.is_busy() => self.progress_since(seen).await,
                    Err(e) => return self.abandon(queued, e).await,
                }
            }
            if let Some((op, at, piece)) = queued.pop_front() {
                if let Err(e) = self.complete(op).await?.result {
                    return self.abandon(queued, e).await;
                }
                finish(&mut self.0.driver.lock(), op, at, piece)?;
            }
        }
        Ok(())
    }

    /// After a failure: waits for the operations still in flight (their pages must come back), then returns `e`.
    async fn abandon(
        &self,
        queued: alloc::collections::VecDeque<(OpId, usize, usize)>,
        e: BlkError,
    ) -> Result<(), BlkError> {
        for (op, _, _) in queued {
            if let Ok(c) = self.complete(op).await {
                if c.result.is_ok() && matches!(c.kind, sirocco_drivers::blkfront::OpKind::Read) {
                    let _ = self.0.driver.lock().release(op);
                }
            }
        }
        Err(e)
    }

    /// Makes every completed write durable (`FLUSH_DISKCACHE`, or a barrier). A disk that offers neither reports
    /// [`ErrorKind::NoFlush`]: Linux treats such a disk as having no volatile cache; callers decide.
    pub async fn flush(&self) -> Result<(), BlkError> {
        let op = self.submit(|d| d.submit_flush()).await?;
        self.complete(op).await?.result.map(|_| ())
    }

    /// Tells the backend the range's contents are no longer needed (where it offers discard).
    pub async fn discard(&self, offset: u64, len: u64) -> Result<(), BlkError> {
        let op = self.submit(|d| d.submit_discard(offset, len)).await?;
        self.complete(op).await?.result.map(|_| ())
    }
}

/// The first vbd.
pub fn default() -> Result<Disk, ConnectError> {
    disks()?.first().cloned().ok_or(ConnectError::NoDisk)
}
