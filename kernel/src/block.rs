//! Block devices for apps: each vbd the toolstack gave us is connected (blkfront) and served by a task that polls
//! the driver whenever its event channel fires. [`Disk`] is a cheap handle (clone it into as many tasks as you
//! like) with async `read`, `write`, `flush` and `discard` of whole sectors at byte offsets; large transfers are
//! split and kept in flight together, and every error reaches the caller. The transfer logic, cancel-safe, is
//! `sirocco_drivers::blkfront::transfer`, host-tested against the fake blkback; this file is the platform half.
//!
//! A disk is connected once, for the domain's life, by the first of:
//! - [`open`]: one vbd, with the configuration given in code, a [`DiskConfig`] (which vbd, segments per request,
//!   ring size);
//! - [`disks`] / [`default`]: every vbd, with the command line's configuration ([`DiskConfig::from_cmdline`]:
//!   `blk-segments=N`).
//!
//! Later, [`disks`] and [`default`] give the disks connected already as they are, and [`open`] gives one only if
//! it was connected with the configuration asked for: otherwise it is an error
//! ([`ConnectError::AlreadyOpen`]), never a configuration silently ignored.
//!
//! ```ignore
//! use sirocco::block::{self, vbd_id, DiskConfig};
//! // The second disk (vdev=xvdb in the xl config), with at most 128 KiB per request:
//! let disk = block::open(DiskConfig { vbd: vbd_id("xvdb"), max_segments: 32, ..DiskConfig::default() })?;
//! // The first, as the command line says (blk-segments=...):
//! let first = block::open(DiskConfig::from_cmdline(&env.cmdline)?)?;
//! ```

use crate::metrics::{Desc, Histogram, Labels, Snapshot};
use crate::raw::blkfront::{self, DiskBuffers, Driver};
use crate::runtime;
use crate::xenstore::{BackendWatch, CLOSE_TIMEOUT_NS};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use sirocco_boot::evtchn::EventChannel;
use sirocco_boot::ring::{Kick, RingPages};
use sirocco_drivers::blkfront::transfer::{self, DriverCell};
use sirocco_drivers::frontend::lifecycle::{self, Action, Lifecycle, OnBackendGone};
use sirocco_drivers::frontend::DeviceInfo;

pub use crate::raw::blkfront::ConnectError;
pub use sirocco_drivers::blkfront::{vbd_id, DiskConfig, DiskConfigError, MIN_SEGMENTS};
pub use sirocco_drivers::blkfront::{BlkError, Counters as DiskCounters, DiskInfo, ErrorKind, FlushMethod};

struct Shared {
    id: u32,
    disk: DiskInfo,
    driver: spin::Mutex<Driver>,
    /// Bumped after every driver poll: operations waiting for a completion or for room wait for it to move.
    progress: AtomicU64,
    waiters: spin::Mutex<Vec<Waker>>,
    /// Operations in flight, seen after each poll of the driver.
    in_flight: Histogram<10>,
}

/// A connected virtual block device.
#[derive(Clone)]
pub struct Disk(Arc<Shared>);

/// What [`disks`] found: every vbd, connected.
static DISKS: spin::Once<Vec<Disk>> = spin::Once::new();
/// Every vbd connected so far, with the configuration it was connected with (`vbd` set).
static CONNECTED: spin::Mutex<Vec<(Disk, DiskConfig)>> = spin::Mutex::new(Vec::new());

/// Every vbd, connected, each task started: those not connected yet with the command line's configuration
/// ([`DiskConfig::from_cmdline`]), those [`open`] connected already as they are. The vbds are those there at the
/// first call; later calls give the same disks.
pub fn disks() -> Result<&'static [Disk], ConnectError> {
    if let Some(d) = DISKS.get() {
        return Ok(d);
    }
    let config = DiskConfig::from_cmdline(&crate::cmdline())?;
    let mut disks = Vec::new();
    for dev in blkfront::enumerate()? {
        disks.push(connect_once(&dev, config, Reuse::AsItIs)?);
    }
    Ok(DISKS.call_once(|| disks))
}

/// The vbd `config` names (the first if none), connected with its limits and its task started; the configuration is
/// checked first ([`DiskConfig::check`]). If that vbd is connected already (by an earlier `open`, [`disks`] or
/// [`default`]): the same disk when it was connected with `config`'s settings, else
/// [`ConnectError::AlreadyOpen`]. So open a disk with its own configuration before [`disks`] or [`default`] connect
/// every vbd from the command line.
pub fn open(config: DiskConfig) -> Result<Disk, ConnectError> {
    config.check()?;
    let devices = blkfront::enumerate()?;
    let dev = match config.vbd {
        None => devices.first().ok_or(ConnectError::NoDisk)?,
        Some(vbd) => devices
            .iter()
            .find(|d| d.id == vbd)
            .ok_or_else(|| ConnectError::NoSuchDisk { vbd, present: devices.iter().map(|d| d.id).collect() })?,
    };
    connect_once(dev, config, Reuse::IfSame)
}

/// What [`connect_once`] does with a vbd connected already.
enum Reuse {
    /// Give it, whatever its configuration ([`disks`]: the command line's configuration is the default, not a
    /// demand).
    AsItIs,
    /// Give it if it was connected with the same configuration, else fail ([`open`]: an explicit one).
    IfSame,
}

/// `dev`'s disk: the one connected already (see [`Reuse`]), or `dev` connected now with `config`'s limits, its
/// task started and the disk recorded.
fn connect_once(dev: &DeviceInfo, config: DiskConfig, reuse: Reuse) -> Result<Disk, ConnectError> {
    let config = DiskConfig { vbd: Some(dev.id), ..config };
    if let Some((disk, connected)) = CONNECTED.lock().iter().find(|(disk, _)| disk.id() == dev.id) {
        return match reuse {
            Reuse::IfSame if *connected != config => {
                Err(ConnectError::AlreadyOpen { connected: *connected, asked: config })
            }
            Reuse::AsItIs | Reuse::IfSame => Ok(disk.clone()),
        };
    }
    // Not under the lock: the handshake waits for the backend.
    let (driver, channel, info) = blkfront::connect(dev, config.limits())?;
    let shared = Arc::new(Shared {
        id: dev.id,
        disk: info,
        driver: spin::Mutex::new(driver),
        progress: AtomicU64::new(0),
        waiters: spin::Mutex::new(Vec::new()),
        in_flight: Histogram::new(IN_FLIGHT, RING_BUCKETS).labels(vbd_label(dev.id)),
    });
    // The disk is kept for the domain's life (CONNECTED holds it), so its histogram can be registered for good.
    let registered: &'static Arc<Shared> = alloc::boxed::Box::leak(alloc::boxed::Box::new(shared.clone()));
    if let Err(e) = crate::metrics::register(&registered.in_flight) {
        log::warn!("vbd{}: {e}", dev.id);
    }
    // Detached: the vbd's task runs for the domain's life.
    runtime::spawn(drive(shared.clone(), channel, dev.clone()));
    let disk = Disk(shared);
    CONNECTED.lock().push((disk.clone(), config));
    Ok(disk)
}

/// The task of one vbd: poll the driver on each event, then let waiting operations look; if the backend closes
/// the device, fail what is pending (nothing would ever answer it) instead of leaving callers waiting.
async fn drive(shared: Arc<Shared>, mut channel: EventChannel, mut dev: DeviceInfo) {
    let mut faults_logged = 0u64;
    let mut backend = BackendWatch::new(&dev).await;
    let mut lifecycle = Lifecycle::connected(OnBackendGone::Detach);
    loop {
        let woke = runtime::select(channel.wait(), backend.changed()).await;
        if channel.stale() {
            // Restored or migrated: the backend, the ring's grants and the event channel are the old domain's.
            // Checked before anything else woke for: the old backend's watch fires too (re-registered with the
            // others), and its state, unreadable now, would read as a backend gone (the lab saw pending writes
            // failed that way).
            if let Some(resumed) = resume(&shared, &mut dev, &mut lifecycle).await {
                (channel, backend) = resumed;
            }
            wake_waiters(&shared);
            continue;
        }
        match woke {
            crate::Either::Left(open) => {
                let (summary, pending) = {
                    let mut driver = shared.driver.lock();
                    (driver.poll(), driver.pending())
                };
                shared.in_flight.observe(pending as u64);
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

/// After a resume in a new domain: reads the disk's backend again, moves the driver onto a new ring and event
/// channel with its pages granted to the new backend (what was pending kept), watches the new backend and
/// reconnects, which sends the kept requests again: the callers see a delay, nothing fails (unless the disk
/// changed). Returns the new channel and watch; `None` if the disk could not even be moved (logged: its I/O then
/// waits for good, failing nothing it cannot know the outcome of).
async fn resume(
    shared: &Shared,
    dev: &mut DeviceInfo,
    lifecycle: &mut Lifecycle,
) -> Option<(EventChannel, BackendWatch)> {
    lifecycle.resumed();
    let moved = crate::xenstore::with(|xs| sirocco_drivers::frontend::device_info(xs, dev.kind, dev.id))
        .map_err(ConnectError::Frontend)
        .and_then(|now| {
            *dev = now;
            blkfront::resume(&mut shared.driver.lock(), dev)
        });
    let (channel, ring_refs, waiting) = match moved {
        Ok(moved) => moved,
        Err(e) => {
            log::error!("vbd{}: after the resume: {e}; the disk stays disconnected", shared.id);
            return None;
        }
    };
    log::info!("vbd{}: resumed, {waiting} request(s) to send again; reconnecting to {}", shared.id, dev.backend_path);
    let backend = BackendWatch::new(dev).await;
    match blkfront::reconnect(&shared.driver, dev, &ring_refs, channel.port()).await {
        Ok(_) => {
            lifecycle.reconnected();
            let c = shared.driver.lock().counters();
            if c.replay_failed > 0 {
                log::error!("vbd{}: {} operation(s) failed at the resume: {c}", shared.id, c.replay_failed);
            }
            log::info!("vbd{}: reconnected after the resume ({} request(s) sent again)", shared.id, c.replayed);
        }
        Err(e) => log::error!("vbd{}: reconnect after the resume failed: {e}", shared.id),
    }
    Some((channel, backend))
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

/// The first vbd, every vbd connected as [`disks`] connects them (with the command line's configuration). To
/// connect only the first, or with a configuration of your own: [`open`].
pub fn default() -> Result<Disk, ConnectError> {
    disks()?.first().cloned().ok_or(ConnectError::NoDisk)
}

/// Every disk's metrics, for `metrics::snapshot` (none before a disk is connected; this connects none): the
/// driver's counters, under `"disks"` in the JSON document, one object per vbd (`"vbd":"51712"`).
pub(crate) fn collect(s: &mut Snapshot) {
    let disks: Vec<Disk> = CONNECTED.lock().iter().map(|(d, _)| d.clone()).collect();
    for disk in disks {
        let c = disk.counters();
        let vbd = alloc::format!("{}", disk.id());
        let l = [("vbd", vbd.as_str())];
        s.gauge(&m::CAPACITY, &l, disk.capacity() as i64);
        for (op, n) in [("read", c.reads), ("write", c.writes), ("flush", c.flushes), ("discard", c.discards)] {
            s.counter(&m::OPS, &[("vbd", &vbd), ("op", op)], n);
        }
        for (op, n) in [("read", c.bytes_read), ("write", c.bytes_written), ("discard", c.bytes_discarded)] {
            s.counter(&m::BYTES, &[("vbd", &vbd), ("op", op)], n);
        }
        s.counter(&m::REQUESTS, &l, c.requests);
        s.counter(&m::INDIRECT, &l, c.indirect_requests);
        s.counter(&m::NOTIFIES, &l, c.notifies);
        for (result, n) in [("ok", c.ops_ok), ("failed", c.ops_failed)] {
            s.counter(&m::COMPLETED, &[("vbd", &vbd), ("result", result)], n);
        }
        for (answer, n) in [("error", c.rsp_error), ("not_supported", c.rsp_not_supported), ("lost", c.lost_requests)] {
            s.counter(&m::FAILED_REQUESTS, &[("vbd", &vbd), ("answer", answer)], n);
        }
        s.counter(&m::ABANDONED, &l, c.abandoned);
        for (reason, n) in [("busy", c.busy), ("refused", c.refused)] {
            s.counter(&m::REFUSED, &[("vbd", &vbd), ("reason", reason)], n);
        }
        s.counter(&m::FAULTS, &l, c.faults());
        s.counter(&m::RESETS, &l, c.resets);
    }
}

/// The label of vbd `id`'s own instruments, made once per disk for the domain's life.
fn vbd_label(id: u32) -> Labels {
    alloc::vec![("vbd", &*alloc::format!("{id}").leak())].leak()
}

const IN_FLIGHT: Desc = Desc::new("sirocco_vbd_in_flight", "Operations in flight, seen after each poll of the driver.")
    .json("disks[vbd].in_flight");
/// 0, then powers of two up to a whole 256-slot ring.
const RING_BUCKETS: [u64; 10] = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256];

/// The disks' metrics (see `collect`).
mod m {
    use crate::metrics::Desc;

    pub const CAPACITY: Desc = Desc::new("sirocco_vbd_capacity_bytes", "The disk's size.").json("disks[vbd].capacity");
    pub const OPS: Desc = Desc::new("sirocco_vbd_ops_total", "Operations submitted, by kind.").json("disks[vbd].ops");
    pub const BYTES: Desc =
        Desc::new("sirocco_vbd_bytes_total", "Bytes moved by successful operations, by kind.").json("disks[vbd].bytes");
    pub const REQUESTS: Desc =
        Desc::new("sirocco_vbd_requests_total", "Ring requests pushed.").json("disks[vbd].requests");
    pub const INDIRECT: Desc = Desc::new("sirocco_vbd_indirect_requests_total", "Ring requests that were indirect.")
        .json("disks[vbd].indirect_requests");
    pub const NOTIFIES: Desc =
        Desc::new("sirocco_vbd_notifies_total", "Events sent to the backend.").json("disks[vbd].notifies");
    pub const COMPLETED: Desc =
        Desc::new("sirocco_vbd_completed_total", "Operations completed, by result.").json("disks[vbd].completed");
    pub const FAILED_REQUESTS: Desc = Desc::new(
        "sirocco_vbd_failed_requests_total",
        "Requests the backend answered BLKIF_RSP_ERROR or EOPNOTSUPP, or never answered (lost).",
    )
    .json("disks[vbd].failed_requests");
    pub const ABANDONED: Desc =
        Desc::new("sirocco_vbd_abandoned_total", "Operations their caller gave up on.").json("disks[vbd].abandoned");
    pub const REFUSED: Desc =
        Desc::new("sirocco_vbd_refused_total", "Submissions refused, by reason.").json("disks[vbd].refused");
    pub const FAULTS: Desc = Desc::new(
        "sirocco_vbd_backend_faults_total",
        "Responses from the backend that broke the protocol (bad ids, duplicates, ring overruns).",
    )
    .json("disks[vbd].faults");
    pub const RESETS: Desc =
        Desc::new("sirocco_vbd_resets_total", "Times the disk was reset for a new backend.").json("disks[vbd].resets");
}
