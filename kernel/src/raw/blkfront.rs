//! blkfront, the platform half: the (possibly multi-page) ring, the pool of data pages and the indirect-descriptor
//! pages, each granted to the backend once for the device's life, the event channel, and the connect sequence.
//! The protocol (request building and splitting, response validation, sector arithmetic, xenstore keys) is
//! `sirocco_drivers::blkfront`, tested on the host against a fake blkback.

use crate::xenstore::{self, CONNECT_TIMEOUT_NS};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use sirocco_boot::evtchn::{EventChannel, EvtchnError};
use sirocco_boot::grant::SharedPages;
use sirocco_boot::ring::{Kick, RingPages};
use sirocco_drivers::blkfront::{
    self as bf, BlockBuffers, ConfigError, DiskConfig, DiskConfigError, DiskInfo, Limits, Transport,
};
use sirocco_drivers::frontend::{self, DeviceInfo, DeviceKind, FrontendError, XenbusState};
use sirocco_drivers::grant::{GrantError, GrantRef};
use sirocco_drivers::xenstore::Tx;

/// Data pages per disk: the largest operation in flight at once is this many pages (2 MiB).
pub const DATA_PAGES: usize = 512;
/// Indirect requests in flight at once (each needs its descriptor pages).
const INDIRECT_REQUESTS: usize = 16;

/// The data and indirect-descriptor pages, granted writable once (the backend writes reads' data into them).
pub struct DiskBuffers {
    data: SharedPages,
    indirect: Option<SharedPages>,
}

impl DiskBuffers {
    /// Grants every data and indirect page again to `domid`, under the same refs (which the requests kept for
    /// replay name): after a resume in a new domain, whose grant table Xen starts empty.
    fn regrant(&mut self, domid: u16) -> Result<(), GrantError> {
        self.data.regrant(domid)?;
        self.indirect.as_mut().map_or(Ok(()), |p| p.regrant(domid))
    }
}

impl BlockBuffers for DiskBuffers {
    fn data_pages(&self) -> u32 {
        self.data.count() as u32
    }
    fn data_gref(&self, page: u32) -> GrantRef {
        self.data.gref(page as usize)
    }
    fn write_data(&mut self, page: u32, offset: usize, data: &[u8]) {
        self.data.write(page as usize, offset, data);
    }
    fn read_data(&self, page: u32, offset: usize, out: &mut [u8]) {
        self.data.read(page as usize, offset, out);
    }
    fn indirect_pages(&self) -> u32 {
        self.indirect.as_ref().map_or(0, |p| p.count() as u32)
    }
    fn indirect_gref(&self, page: u32) -> GrantRef {
        self.indirect.as_ref().expect("indirect pages allocated").gref(page as usize)
    }
    fn write_indirect(&mut self, page: u32, offset: usize, bytes: &[u8]) {
        self.indirect.as_mut().expect("indirect pages allocated").write(page as usize, offset, bytes);
    }
}

/// The driver over our pages.
pub type Driver = bf::Blkfront<RingPages, DiskBuffers, Kick>;

/// Why a vbd could not be brought up.
#[derive(Debug)]
pub enum ConnectError {
    /// Xenstore or the xenbus handshake failed.
    Frontend(FrontendError),
    /// The vbd's keys or the connect step failed.
    Config(ConfigError),
    /// Xenstore refused an operation.
    Xenstore(sirocco_drivers::xenstore::XsError),
    /// Granting pages failed.
    Grant(GrantError),
    /// Allocating the event channel failed.
    Evtchn(EvtchnError),
    /// A setting (`blk-segments=` on the command line, or a `DiskConfig` built in code) is wrong.
    Setting(String),
    /// The domain has no vbd.
    NoDisk,
    /// The domain has no vbd of the id asked for (`DiskConfig::vbd`).
    NoSuchDisk {
        /// The id asked for.
        vbd: u32,
        /// The ids of the vbds it has.
        present: Vec<u32>,
    },
    /// `block::open` asked for another configuration than the vbd was connected with (by an earlier `open`, or by
    /// `block::disks` from the command line).
    AlreadyOpen {
        /// The configuration it was connected with (`vbd` is its id).
        connected: DiskConfig,
        /// The configuration asked for (`vbd` is its id).
        asked: DiskConfig,
    },
}

/// A setting that cannot be used: [`ConnectError::Setting`].
impl From<DiskConfigError> for ConnectError {
    fn from(e: DiskConfigError) -> Self {
        ConnectError::Setting(format!("{e}"))
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Frontend(e) => write!(f, "{e}"),
            ConnectError::Config(e) => write!(f, "{e}"),
            ConnectError::Xenstore(e) => write!(f, "{e}"),
            ConnectError::Grant(e) => write!(f, "{e}"),
            ConnectError::Evtchn(e) => write!(f, "{e}"),
            ConnectError::Setting(e) => write!(f, "{e}"),
            ConnectError::NoDisk => write!(f, "this domain has no vbd (add disk = [ '...' ] to its xl config)"),
            ConnectError::NoSuchDisk { vbd, present } => {
                write!(f, "this domain has no vbd/{vbd} (its vbds: {present:?}; add disk = [ '...' ] to its xl config)")
            }
            ConnectError::AlreadyOpen { connected, asked } => write!(
                f,
                "vbd/{} is connected already, with at most {} segments per request and a ring of order {}, not {} \
                 and {} as asked (block::open configures a disk only when it connects it: open it before \
                 block::disks or block::default)",
                connected.vbd.unwrap_or_default(),
                connected.max_segments,
                connected.max_ring_page_order,
                asked.max_segments,
                asked.max_ring_page_order
            ),
        }
    }
}

/// Display already says everything (it includes the wrapped error's message); `source` is there for code that
/// inspects the cause (`downcast_ref`), not for printing a chain.
impl core::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ConnectError::Frontend(e) => Some(e),
            ConnectError::Config(e) => Some(e),
            ConnectError::Xenstore(e) => Some(e),
            ConnectError::Grant(e) => Some(e),
            ConnectError::Evtchn(e) => Some(e),
            ConnectError::Setting(_)
            | ConnectError::NoDisk
            | ConnectError::NoSuchDisk { .. }
            | ConnectError::AlreadyOpen { .. } => None,
        }
    }
}

/// Lists the vbds the toolstack gave us.
pub fn enumerate() -> Result<Vec<DeviceInfo>, ConnectError> {
    xenstore::with(|xs| frontend::enumerate(xs, DeviceKind::Vbd)).map_err(ConnectError::Frontend)
}

/// Connects one vbd: the xenbus handshake, ring and pages granted under `limits` (negotiated with the backend's),
/// keys written in one transaction, the backend's Connected awaited and the geometry read. Returns the driver, its
/// event channel and the disk.
pub(crate) fn connect(dev: &DeviceInfo, limits: Limits) -> Result<(Driver, EventChannel, DiskInfo), ConnectError> {
    let backend = dev.backend_id;
    let params = xenstore::with(|xs| -> Result<_, ConnectError> {
        frontend::set_state(xs, Tx::NONE, dev, XenbusState::Initialising).map_err(ConnectError::Xenstore)?;
        frontend::wait_for_backend(xs, dev, &[XenbusState::InitWait], CONNECT_TIMEOUT_NS)
            .map_err(ConnectError::Frontend)?;
        bf::read_backend_params(xs, dev).map_err(ConnectError::Config)
    })?;
    let transport = Transport::negotiate(&params, limits);
    let ring = RingPages::new(backend, transport.ring_pages()).map_err(ConnectError::Grant)?;
    let ring_refs: Vec<GrantRef> = ring.grefs().to_vec();
    let data = SharedPages::new(backend, DATA_PAGES, false).map_err(ConnectError::Grant)?;
    let indirect_pages = transport.indirect_pages_per_request() as usize * INDIRECT_REQUESTS;
    let indirect = if indirect_pages > 0 {
        Some(SharedPages::new(backend, indirect_pages, false).map_err(ConnectError::Grant)?)
    } else {
        None
    };
    let channel = EventChannel::alloc_unbound(backend).map_err(ConnectError::Evtchn)?;
    let mut driver =
        bf::Blkfront::new(dev.device(), ring, transport, DiskBuffers { data, indirect }, Kick(channel.port()));
    let disk = xenstore::with(|xs| bf::connect(xs, dev, &mut driver, &ring_refs, channel.port(), CONNECT_TIMEOUT_NS))
        .map_err(ConnectError::Config)?;
    log::info!(
        "vbd{}: connected, {} sectors of 512 B ({} MiB), sector size {}, {}, ring {} page(s) ({} slots), {} segments per request, flush {:?}, discard {}, event channel {}",
        dev.id,
        disk.sectors,
        disk.capacity() >> 20,
        disk.sector_size,
        if disk.read_only { "read-only" } else { "read-write" },
        transport.ring_pages(),
        driver.ring_size(),
        driver.segments_per_request(),
        disk.flush_method(),
        disk.features.discard,
        channel.port()
    );
    Ok((driver, channel, disk))
}

/// After a resume in a new domain (`xl restore`, `xl migrate`), `dev` read again: the driver moved onto a fresh
/// ring and a new event channel for the (maybe new) backend domain, its pages granted to it again, the requests
/// the old backend had not answered kept for replay (`Blkfront::resume`). Returns the channel, the ring's refs
/// and how many requests wait.
pub(crate) fn resume(
    driver: &mut Driver,
    dev: &DeviceInfo,
) -> Result<(EventChannel, Vec<GrantRef>, usize), ConnectError> {
    let backend = dev.backend_id;
    let ring = RingPages::new(backend, driver.transport().ring_pages()).map_err(ConnectError::Grant)?;
    let ring_refs = ring.grefs().to_vec();
    let channel = EventChannel::alloc_unbound(backend).map_err(ConnectError::Evtchn)?;
    let waiting = driver.resume(ring, Kick(channel.port()), |b| b.regrant(backend)).map_err(ConnectError::Grant)?;
    Ok((channel, ring_refs, waiting))
}

/// Connects a disk [`resume`]d, through the run loop (other tasks run while the backend answers): our state
/// Initialising, the backend's InitWait, the connect keys, the backend's Connected, the disk read again (the
/// driver checks it is the same disk before it replays what was pending), our state Connected.
pub(crate) async fn reconnect(
    driver: &spin::Mutex<Driver>,
    dev: &DeviceInfo,
    ring_refs: &[GrantRef],
    port: u32,
) -> Result<DiskInfo, ConnectError> {
    let mut xs = xenstore::RunLoop;
    frontend::set_state_async(&mut xs, dev, XenbusState::Initialising).await.map_err(ConnectError::Xenstore)?;
    frontend::wait_for_backend_async(&mut xs, dev, &[XenbusState::InitWait], CONNECT_TIMEOUT_NS)
        .await
        .map_err(ConnectError::Frontend)?;
    // A few short requests, blocking: the blkfront key logic is written against the blocking client.
    xenstore::with(|xs| bf::write_connect_keys(xs, dev, ring_refs, port)).map_err(ConnectError::Config)?;
    frontend::wait_for_backend_async(&mut xs, dev, &[XenbusState::Connected], CONNECT_TIMEOUT_NS)
        .await
        .map_err(ConnectError::Frontend)?;
    let disk = xenstore::with(|xs| bf::read_disk_info(xs, dev)).map_err(ConnectError::Config)?;
    frontend::set_state_async(&mut xs, dev, XenbusState::Connected).await.map_err(ConnectError::Xenstore)?;
    driver.lock().backend_connected(disk);
    Ok(disk)
}
