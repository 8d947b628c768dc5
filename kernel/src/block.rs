//! Block devices for apps: each vbd the toolstack gave us is connected (blkfront) and served by a task that polls
//! the driver whenever its event channel fires. [`Disk`] is a cheap handle (clone it into as many tasks as you
//! like) with async `read`, `write`, `flush` and `discard` of whole sectors at byte offsets; large transfers are
//! split and kept in flight together, and every error reaches the caller. The transfer logic, cancel-safe, is
//! `sirocco_drivers::blkfront::transfer`, host-tested against the fake blkback; this file is the platform half.

use crate::blkfront::{self, DiskBuffers, Driver};
use crate::evtchn::EventChannel;
use crate::ring::{Kick, RingPages};
use crate::runtime;
use crate::xenstore::{BackendWatch, CLOSE_TIMEOUT_NS};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use sirocco_drivers::blkfront::transfer::{self, DriverCell};
use sirocco_drivers::frontend::lifecycle::{self, Action, Lifecycle, OnBackendGone};

pub use crate::blkfront::ConnectError;
pub use sirocco_drivers::blkfront::{BlkError, Counters as DiskCounters, DiskInfo, ErrorKind, FlushMethod};

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
        // Detached: the vbd's task runs for the domain's life.
        runtime::spawn(drive(shared.clone(), channel, dev.clone()));
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
                    let closed = lifecycle::close_after_backend_left_async(
                        &mut xs,
                        &dev,
                        OnBackendGone::Detach,
                        CLOSE_TIMEOUT_NS,
                    )
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
    pub fn counters(&self) -> DiskCounters {
        self.0.driver.lock().counters()
    }

    /// Reads `buf.len()` bytes at `offset` (both multiples of the sector size). Large reads are split and kept in
    /// flight together. Cancel-safe: dropping the future gives every page and request back (once the backend has
    /// answered what it was sent), and `buf` then holds unspecified data.
    pub async fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        transfer::read(&*self.0, offset, buf).await
    }

    /// Writes `data` at `offset` (both multiples of the sector size). Not durable until [`Disk::flush`].
    /// Cancel-safe: a write dropped before it returned may or may not have reached the disk, in any part; it is
    /// ordered before every later flush and every later operation on its sectors (see
    /// [`sirocco_drivers::blkfront::transfer`]).
    pub async fn write(&self, offset: u64, data: &[u8]) -> Result<(), BlkError> {
        transfer::write(&*self.0, offset, data).await
    }

    /// Makes every completed write durable (`FLUSH_DISKCACHE`, or a barrier), and every cancelled one that
    /// reached the disk. A disk that offers neither reports [`ErrorKind::NoFlush`]: Linux treats such a disk as
    /// having no volatile cache; callers decide.
    pub async fn flush(&self) -> Result<(), BlkError> {
        transfer::flush(&*self.0).await
    }

    /// Tells the backend the range's contents are no longer needed (where it offers discard).
    pub async fn discard(&self, offset: u64, len: u64) -> Result<(), BlkError> {
        transfer::discard(&*self.0, offset, len).await
    }
}

/// What the transfer logic in the driver crate needs: the driver behind its lock, and the poll count the device
/// task moves (waking the waiters) after every poll.
impl DriverCell for Shared {
    type Ring = RingPages;
    type Buffers = DiskBuffers;
    type Notify = Kick;
    fn with<R>(&self, f: impl FnOnce(&mut Driver) -> R) -> R {
        f(&mut self.driver.lock())
    }
    fn progress(&self) -> u64 {
        self.progress.load(Ordering::Acquire)
    }
    fn poll_progress(&self, seen: u64, cx: &mut Context<'_>) -> Poll<()> {
        if self.progress.load(Ordering::Acquire) != seen {
            return Poll::Ready(());
        }
        // One vCPU and no interrupts: nothing can poll the driver between the check and the registration. A
        // future polled again before any progress (woken by something else it waits for) is registered once.
        let mut waiters = self.waiters.lock();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The first vbd.
pub fn default() -> Result<Disk, ConnectError> {
    disks()?.first().cloned().ok_or(ConnectError::NoDisk)
}
