//! netfront, the platform half: ring pages and buffer pages granted to the backend once for the device's life,
//! the event channel, and the connect sequence. The protocol (request/response validation, scatter-gather,
//! checksum flags, counters, xenstore keys) is `sirocco_drivers::netfront`, tested on the host against a fake
//! netback.

use crate::xenstore::{self, CONNECT_TIMEOUT_NS};
use alloc::vec::Vec;
use core::fmt;
use sirocco_boot::evtchn::{EventChannel, EvtchnError};
use sirocco_boot::grant::{Grant, Page};
use sirocco_boot::ring::{Kick, RingPages};
use sirocco_drivers::frontend::{self, DeviceInfo, DeviceKind, FrontendError, XenbusState};
use sirocco_drivers::grant::{GrantError, GrantRef};
use sirocco_drivers::netfront::{self as nf, ConfigError, ConnectKeys, Features, NetBuffers};
use sirocco_drivers::xenstore::Tx;

pub use sirocco_drivers::netfront::{Counters as VifCounters, Phase, RxDrop, RxPacket, TxChecksum, TxError};

/// The buffer pages, each granted once (TX read-only, RX writable).
pub struct VifBuffers {
    tx: Vec<Grant>,
    rx: Vec<Grant>,
}

impl VifBuffers {
    /// Grants every buffer again to `domid`, under the same refs: after a resume in a new domain, whose grant
    /// table Xen starts empty.
    fn regrant(&mut self, domid: u16) -> Result<(), GrantError> {
        self.tx.iter_mut().chain(self.rx.iter_mut()).try_for_each(|g| g.regrant(domid))
    }
}

impl NetBuffers for VifBuffers {
    fn tx_count(&self) -> u16 {
        self.tx.len() as u16
    }
    fn rx_count(&self) -> u16 {
        self.rx.len() as u16
    }
    fn tx_gref(&self, buf: u16) -> GrantRef {
        self.tx[usize::from(buf)].gref()
    }
    fn rx_gref(&self, buf: u16) -> GrantRef {
        self.rx[usize::from(buf)].gref()
    }
    fn tx_write(&mut self, buf: u16, offset: usize, data: &[u8]) {
        // The driver writes a TX buffer only while no request names it, but the backend holds a read-only grant
        // of it for the device's life and may read it at any time: a volatile copy (`Grant::write`).
        self.tx[usize::from(buf)].write(offset, data);
    }
    fn rx_read(&self, buf: u16, offset: usize, out: &mut [u8]) {
        // The driver reads an RX buffer after the backend's response for it (ordered by the acquire load of
        // `rsp_prod`). That the backend has stopped writing is its word only: the page stays granted writable,
        // and a hostile backend may write it during this copy. The copy is volatile (`Grant::read`), so that can
        // only change the packet's bytes, which the stack treats as untrusted input anyway.
        self.rx[usize::from(buf)].read(offset, out);
    }
}

/// A connected vif: the driver over our pages, as a network device (`sirocco_net::Vif`).
pub type Vif = sirocco_net::Vif<RingPages, VifBuffers, Kick>;

/// Why a vif could not be brought up.
#[derive(Debug)]
pub enum VifError {
    /// Xenstore or the xenbus handshake failed.
    Frontend(FrontendError),
    /// The vif's configuration or connect step failed.
    Config(ConfigError),
    /// Xenstore refused an operation.
    Xenstore(sirocco_drivers::xenstore::XsError),
    /// Granting a page failed.
    Grant(GrantError),
    /// Allocating the event channel failed.
    Evtchn(EvtchnError),
}

impl fmt::Display for VifError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VifError::Frontend(e) => write!(f, "{e}"),
            VifError::Config(e) => write!(f, "{e}"),
            VifError::Xenstore(e) => write!(f, "{e}"),
            VifError::Grant(e) => write!(f, "{e}"),
            VifError::Evtchn(e) => write!(f, "{e}"),
        }
    }
}

/// Display already says everything (it includes the wrapped error's message); `source` is there for code that
/// inspects the cause (`downcast_ref`), not for printing a chain.
impl core::error::Error for VifError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(match self {
            VifError::Frontend(e) => e,
            VifError::Config(e) => e,
            VifError::Xenstore(e) => e,
            VifError::Grant(e) => e,
            VifError::Evtchn(e) => e,
        })
    }
}

fn grant(domid: u16, page: Page, readonly: bool) -> Result<Grant, VifError> {
    Grant::new(domid, page, readonly).map_err(|(_, e)| VifError::Grant(e))
}

/// Lists the vifs the toolstack gave us.
pub fn enumerate() -> Result<Vec<DeviceInfo>, VifError> {
    xenstore::with(|xs| frontend::enumerate(xs, DeviceKind::Vif)).map_err(VifError::Frontend)
}

/// A vif's event channels: one for both rings, or one per ring (split event channels).
pub struct Channels {
    /// The TX ring's port (both rings' without split event channels).
    pub tx: EventChannel,
    /// The RX ring's own port, with split event channels.
    pub rx: Option<EventChannel>,
}

impl Channels {
    /// Unbound ports for the backend's domain `backend`: one, or one per ring with split event channels.
    fn alloc(backend: u16, split: bool) -> Result<Channels, VifError> {
        Ok(Channels {
            tx: EventChannel::alloc_unbound(backend).map_err(VifError::Evtchn)?,
            rx: match split {
                true => Some(EventChannel::alloc_unbound(backend).map_err(VifError::Evtchn)?),
                false => None,
            },
        })
    }

    /// Whether the domain resumed in a new domain since these were bound (Xen closed them: see
    /// [`EventChannel::stale`]).
    pub fn stale(&self) -> bool {
        self.tx.stale()
    }

    /// The ports, as the connect keys name them.
    pub fn keys(&self, tx: &RingPages, rx: &RingPages) -> ConnectKeys {
        ConnectKeys {
            tx_ring_ref: tx.grefs()[0],
            rx_ring_ref: rx.grefs()[0],
            event_channel: self.tx.port(),
            rx_event_channel: self.rx.as_ref().map(EventChannel::port),
        }
    }

    /// Waits for an event on either port; false once a port is closed.
    pub async fn wait(&mut self) -> bool {
        match self.rx.as_mut() {
            None => self.tx.wait().await,
            Some(rx) => match crate::runtime::select(self.tx.wait(), rx.wait()).await {
                crate::Either::Left(open) | crate::Either::Right(open) => open,
            },
        }
    }
}

/// Connects one vif: the xenbus handshake, rings and buffers granted, keys written in one transaction, and the
/// backend's Connected awaited before anything is transmitted. `want` is what we ask for (the command line's
/// `tso=`, `lro=` and `split-evtchn=`), negotiated against what the backend offers. Returns the vif and its
/// event channels.
pub fn connect(dev: &DeviceInfo, want: Features) -> Result<(Vif, Channels), VifError> {
    let backend = dev.backend_id;
    let config = xenstore::with(|xs| -> Result<_, VifError> {
        frontend::set_state(xs, Tx::NONE, dev, XenbusState::Initialising).map_err(VifError::Xenstore)?;
        crate::boot_steps::step("vif-initialising");
        frontend::wait_for_backend(xs, dev, &[XenbusState::InitWait, XenbusState::Connected], CONNECT_TIMEOUT_NS)
            .map_err(VifError::Frontend)?;
        crate::boot_steps::step("vif-backend-initwait");
        nf::read_config(xs, dev).map_err(VifError::Config)
    })?;
    let features = Features::negotiate(&config.backend, want);
    // RX: the whole ring (256 pages) when the heap affords it; TX: 128 pages, 64 on a small guest (TSO stays on).
    let free = crate::heap_stats().free + crate::page_pool_free();
    let (tx_buffers, rx_buffers) = (nf::tx_buffer_count(free), nf::rx_buffer_count(free));
    let mut tx = Vec::with_capacity(usize::from(tx_buffers));
    let mut rx = Vec::with_capacity(usize::from(rx_buffers));
    for _ in 0..tx_buffers {
        tx.push(grant(backend, Page::new(), true)?);
    }
    for _ in 0..rx_buffers {
        rx.push(grant(backend, Page::new(), false)?);
    }
    // Granted before `Netfront::new` initialises them: the backend learns the refs only from the keys written
    // by `connect`, after that.
    let tx_ring = RingPages::new(backend, 1).map_err(VifError::Grant)?;
    let rx_ring = RingPages::new(backend, 1).map_err(VifError::Grant)?;
    let channels = Channels::alloc(backend, features.split_event_channels)?;
    let keys = channels.keys(&tx_ring, &rx_ring);
    let mut driver = nf::Netfront::new(tx_ring, rx_ring, VifBuffers { tx, rx }, Kick(channels.tx.port()), features);
    if let Some(rx) = &channels.rx {
        driver = driver.with_rx_event_channel(Kick(rx.port()));
    }
    crate::boot_steps::step("vif-buffers-granted");
    xenstore::with(|xs| nf::offer_connect(xs, dev, &mut driver, keys)).map_err(VifError::Config)?;
    crate::boot_steps::step("vif-keys-written");
    xenstore::with(|xs| nf::await_connected(xs, dev, &mut driver, CONNECT_TIMEOUT_NS)).map_err(VifError::Config)?;
    crate::boot_steps::step("vif-connected");
    log::info!(
        "vif{}: connected, mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, mtu {}, sg {}, csum offload {}, tso {}/{}, large receive {}/{} (IPv4/IPv6), buffers {} tx / {} rx, event channel {}{}",
        dev.id,
        config.mac[0],
        config.mac[1],
        config.mac[2],
        config.mac[3],
        config.mac[4],
        config.mac[5],
        config.mtu,
        features.sg,
        features.csum_offload,
        features.gso_tcpv4,
        features.gso_tcpv6,
        features.gso_rx_tcpv4,
        features.gso_rx_tcpv6,
        tx_buffers,
        rx_buffers,
        channels.tx.port(),
        channels.rx.as_ref().map(|rx| alloc::format!(" (TX), {} (RX)", rx.port())).unwrap_or_default()
    );
    Ok((Vif { id: dev.id, mac: config.mac, mtu: config.mtu, driver }, channels))
}

/// The backend left and our end followed it through the close handshake (`net`'s lifecycle, async): reset the
/// driver onto fresh ring pages granted to the backend (`Netfront::reset`: the TX requests in flight dropped,
/// the RX buffers taken back). It stays unconnected, sending nothing, until a reconnect.
pub(crate) fn reset(vif: &mut Vif, dev: &DeviceInfo) -> Result<nf::ResetReport, VifError> {
    let tx_ring = RingPages::new(dev.backend_id, 1).map_err(VifError::Grant)?;
    let rx_ring = RingPages::new(dev.backend_id, 1).map_err(VifError::Grant)?;
    Ok(vif.driver.reset(tx_ring, rx_ring))
}

/// After a resume in a new domain (`xl restore`, `xl migrate`), `dev` read again: the driver reset onto fresh ring
/// pages and new event channels for the (maybe new) backend domain, every buffer granted to it again
/// (`Netfront::resume`: the TX requests in flight dropped, for TCP to retransmit). It stays unconnected until a
/// reconnect. Returns the new channels.
pub(crate) fn resume(vif: &mut Vif, dev: &DeviceInfo) -> Result<(Channels, nf::ResetReport), VifError> {
    let backend = dev.backend_id;
    let channels = Channels::alloc(backend, vif.driver.features().split_event_channels)?;
    let tx_ring = RingPages::new(backend, 1).map_err(VifError::Grant)?;
    let rx_ring = RingPages::new(backend, 1).map_err(VifError::Grant)?;
    let (tx, rx) = (Kick(channels.tx.port()), channels.rx.as_ref().map(|c| Kick(c.port())));
    let report = vif.driver.resume(tx_ring, rx_ring, tx, rx, |b| b.regrant(backend)).map_err(VifError::Grant)?;
    Ok((channels, report))
}
