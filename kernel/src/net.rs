//! Networking for apps: each vif the toolstack gave us is connected (netfront), gets a smoltcp stack
//! (`sirocco-net`) configured in code or from the command line, and a task that polls the stack whenever the vif's
//! event channel fires, a socket asks for it, or the stack's next deadline arrives.
//!
//! The network comes up once, for the domain's life, by the first of:
//! - [`interfaces_with`] / [`default_with`]: with the configuration given in code, a [`VifConfigs`] (every vif's)
//!   or a [`NetConfig`] (the first vif's; the others get the default);
//! - [`interfaces`] / [`default`]: with the command line's, [`VifConfigs::from_cmdline`]:
//!   `ip=10.0.0.2/24 gw=10.0.0.1 ip6=fd00::2/64 gw6=fd00::1 slaac=0 tso=off lro=off split-evtchn=on` configure
//!   vif 0, and vif N takes the same keys with N appended (`ip1=10.0.1.2/24`). Without `ip=`, DHCPv4; IPv6
//!   link-local always, SLAAC unless `slaac=0`.
//!
//! Once it is up, [`interfaces`] and [`default`] give the same stacks whichever way it came up, and
//! [`interfaces_with`] gives them only if its configuration is the one every vif came up with: otherwise it is an
//! error ([`UpError::AlreadyUp`]), never a configuration silently ignored.
//!
//! ```ignore
//! use core::net::Ipv4Addr;
//! use sirocco::net::{self, Ipv4Cidr, Ipv4Config, NetConfig, VifConfigs};
//! // In code:
//! let net = net::default_with(NetConfig {
//!     ipv4: Ipv4Config::Static {
//!         address: Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, 2), 24),
//!         gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
//!     },
//!     tso: false,
//!     ..NetConfig::default()
//! })?;
//! // Or the command line's, changed in code (here: no SLAAC on any vif the command line says nothing of):
//! let mut configs = VifConfigs::from_cmdline(&env.cmdline)?;
//! configs.others.slaac = false;
//! let nets = net::interfaces_with(configs)?;
//! ```

use crate::metrics::{Histogram, Labels, Snapshot};
use crate::raw::netfront::{self, Vif};
use crate::runtime::{self, Instant};
use crate::trace::{Category, Phase};
use crate::xenstore::{self, BackendWatch, RunLoop, CLOSE_TIMEOUT_NS, CONNECT_TIMEOUT_NS};
use crate::Either;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;
use sirocco_drivers::frontend;
use sirocco_drivers::frontend::lifecycle::{self, Action, Lifecycle, OnBackendGone};
use sirocco_drivers::frontend::XenbusState;
use sirocco_drivers::netfront::{self as nf, Features};
use sirocco_net::Stack;

pub use crate::raw::netfront::{VifCounters, VifError};
/// HTTP/1.1 request parsing and response writing over these sockets (what `httpd` and `kv` serve with).
pub use sirocco_net::http;
/// iperf3's protocol, the server side, without I/O (what `apps/iperf` serves with).
pub use sirocco_net::iperf3;
pub use sirocco_net::{ConfigError, ConfigProblem, Ipv4Config, NetConfig, VifConfigError, VifConfigs};
pub use sirocco_net::{IpCidr, Ipv4Cidr, Ipv6Cidr, NetError, NetStats, SocketOptions, TcpState};

/// A vif's network stack, shared by its sockets.
pub type Net = sirocco_net::NetHandle<Vif>;
/// A TCP listener on a vif.
pub type TcpListener = sirocco_net::TcpListener<Vif>;
/// A TCP connection on a vif.
pub type TcpStream = sirocco_net::TcpStream<Vif>;
/// A UDP socket on a vif.
pub type UdpSocket = sirocco_net::UdpSocket<Vif>;

/// The network, once up: every vif's stack, and the configuration each came up with.
struct Up {
    nets: Vec<Net>,
    configs: Vec<NetConfig>,
}

static NETS: spin::Once<Up> = spin::Once::new();

/// Why networking could not start.
#[derive(Debug)]
pub enum UpError {
    /// A vif failed to connect.
    Vif {
        /// Which one.
        id: u32,
        /// Why.
        error: alloc::boxed::Box<VifError>,
    },
    /// Listing the vifs failed.
    Enumerate(alloc::boxed::Box<VifError>),
    /// A setting is wrong (from the command line or built in code: a [`VifConfigError`]'s message).
    Config(String),
    /// The stack refused the device.
    Stack(NetError),
    /// The domain has no vif.
    NoVif,
    /// [`interfaces_with`] asked for another configuration than the one the network came up with.
    AlreadyUp {
        /// The first vif (by index) whose configuration differs.
        vif: usize,
    },
}

/// A setting that cannot be used: [`UpError::Config`].
impl From<VifConfigError<'_>> for UpError {
    fn from(e: VifConfigError<'_>) -> Self {
        UpError::Config(format!("{e}"))
    }
}

impl fmt::Display for UpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpError::Vif { id, error } => write!(f, "vif{id}: {error}"),
            UpError::Enumerate(e) => write!(f, "listing vifs: {e}"),
            UpError::Config(e) => write!(f, "network configuration: {e}"),
            UpError::Stack(e) => write!(f, "network stack: {e}"),
            UpError::NoVif => write!(f, "this domain has no vif (add vif = [ 'bridge=...' ] to its xl config)"),
            UpError::AlreadyUp { vif } => write!(
                f,
                "vif {vif} is up already, with another configuration than the one asked for (net::interfaces_with \
                 configures the network only when it brings it up: call it before net::interfaces or net::default)"
            ),
        }
    }
}

/// Display already says everything (it includes the wrapped error's message); `source` is there for code that
/// inspects the cause (`downcast_ref`), not for printing a chain.
impl core::error::Error for UpError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            UpError::Vif { error, .. } | UpError::Enumerate(error) => Some(&**error),
            UpError::Stack(e) => Some(e),
            UpError::Config(_) | UpError::NoVif | UpError::AlreadyUp { .. } => None,
        }
    }
}

fn now_ms() -> u64 {
    runtime::now_ns() / 1_000_000
}

/// Every vif's stack: the network brought up with the command line's configuration ([`VifConfigs::from_cmdline`])
/// if nothing has brought it up yet, the same stacks whichever way it came up otherwise.
pub fn interfaces() -> Result<&'static [Net], UpError> {
    if let Some(up) = NETS.get() {
        return Ok(&up.nets);
    }
    let configs = VifConfigs::from_cmdline(&crate::cmdline())?;
    bring_up(&configs)
}

/// Every vif's stack, the network brought up with `configs` (a [`VifConfigs`], or one [`NetConfig`] for the
/// first vif, the others getting the default): each vif's configuration is checked ([`NetConfig::check`]) before
/// any vif is connected. If the network is already up: the same stacks when every vif came up with the
/// configuration `configs` gives it, else [`UpError::AlreadyUp`]. So call it before [`interfaces`] or
/// [`default`], which bring the network up with the command line's configuration.
pub fn interfaces_with(configs: impl Into<VifConfigs>) -> Result<&'static [Net], UpError> {
    let configs = configs.into();
    match NETS.get() {
        None => bring_up(&configs),
        Some(up) => match configs.first_difference(&up.configs) {
            None => Ok(&up.nets),
            Some(vif) => Err(UpError::AlreadyUp { vif }),
        },
    }
}

/// The first vif's stack, the network brought up from the command line if it is not up yet ([`interfaces`]).
pub fn default() -> Result<Net, UpError> {
    interfaces()?.first().cloned().ok_or(UpError::NoVif)
}

/// The first vif's stack, the network brought up with `configs` ([`interfaces_with`]).
pub fn default_with(configs: impl Into<VifConfigs>) -> Result<Net, UpError> {
    interfaces_with(configs)?.first().cloned().ok_or(UpError::NoVif)
}

/// Connects every vif with its configuration and starts its stack and task; records them for the domain's life.
fn bring_up(configs: &VifConfigs) -> Result<&'static [Net], UpError> {
    let devices = netfront::enumerate().map_err(|e| UpError::Enumerate(e.into()))?;
    let checked = (0..devices.len()).map(|vif| configs.checked(vif)).collect::<Result<Vec<NetConfig>, _>>()?;
    let mut nets = Vec::new();
    for (dev, config) in devices.iter().zip(&checked) {
        let want = Features {
            sg: true,
            csum_offload: true,
            gso_tcpv4: config.tso,
            gso_rx_tcpv4: config.lro,
            gso_tcpv6: config.tso,
            gso_rx_tcpv6: config.lro,
            split_event_channels: config.split_evtchn,
        };
        let (vif, channels) =
            netfront::connect(dev, want).map_err(|error| UpError::Vif { id: dev.id, error: error.into() })?;
        let seed = runtime::now_ns() ^ u64::from(dev.id) << 48;
        let mut stack = Stack::new(vif, config, seed, now_ms()).map_err(UpError::Stack)?;
        // TCP buffers may take 3/8 of the heap free now, shared by the vifs: a flood of connections is refused
        // (and TIME-WAIT recycled) rather than ending in an allocation failure (issue 10's soak found that).
        let tcp_memory = crate::heap_stats().free * 3 / 8 / devices.len().max(1);
        stack.set_socket_options(SocketOptions { tcp_memory_limit: Some(tcp_memory), ..stack.socket_options() });
        let net = Net::new(stack);
        let driver = net.clone();
        let ring = RingMetrics::register(nets.len());
        // Detached: the vif's task runs for the domain's life.
        runtime::spawn(drive(driver, channels, dev.clone(), ring));
        nets.push(net);
    }
    let nets = &NETS.call_once(|| Up { nets, configs: checked }).nets;
    crate::logs::network_up(nets);
    Ok(nets)
}

/// What woke the network task.
enum Wake {
    /// The event channel fired (false: it was closed).
    Event(bool),
    /// A socket asked for a poll, or the stack's deadline came.
    Poll,
    /// The backend's `state` changed.
    Backend,
}

fn flatten(e: Either<Either<Wake, Wake>, Wake>) -> Wake {
    match e {
        Either::Left(Either::Left(w)) | Either::Left(Either::Right(w)) | Either::Right(w) => w,
    }
}

/// The network task of one vif: polls the stack on each event, socket request or deadline, and reconnects the
/// vif when its backend goes away and comes back.
async fn drive(net: Net, mut channels: netfront::Channels, mut dev: frontend::DeviceInfo, ring: &'static RingMetrics) {
    let mut backend = BackendWatch::new(&dev).await;
    let mut lifecycle = Lifecycle::connected(OnBackendGone::Reconnect);
    let mut boot_steps_pending = true;
    let mut traced = (0, 0);
    loop {
        let started = runtime::now_ns();
        // What the stack logs while it polls stays off the syslog collector (`logs`): the poll is what sends the
        // collector's datagrams, so its records could otherwise feed themselves.
        crate::trace::event(Category::Tcp, Phase::Begin, "stack poll", 0);
        let next = sirocco_boot::logs::local_only(|| net.poll(started / 1_000_000));
        crate::trace::event(Category::Tcp, Phase::End, "stack poll", 0);
        if crate::trace::enabled(Category::Net) {
            let c = counters(&net);
            for (name, now, before) in [("rx batch", c.rx_packets, traced.0), ("tx batch", c.tx_packets, traced.1)] {
                if now > before {
                    crate::trace::event(Category::Net, Phase::Instant, name, now - before);
                }
            }
            crate::trace::event(Category::Net, Phase::Counter, "rx packets", c.rx_packets);
            crate::trace::event(Category::Net, Phase::Counter, "tx packets", c.tx_packets);
            traced = (c.rx_packets, c.tx_packets);
        }
        sirocco_boot::profile::add_net_poll(runtime::now_ns().saturating_sub(started));
        ring.observe(&net);
        if boot_steps_pending {
            boot_steps_pending = record_boot_steps(&net);
        }
        let wake = {
            let event = async { Wake::Event(channels.wait().await) };
            let requested = async {
                match next {
                    // More work at once (the stack or the driver used up its budget: a backend flooding us): let
                    // timers, events and other tasks run first, or a hostile backend would hold the vCPU.
                    Some(ms) if ms <= started / 1_000_000 => runtime::yield_now().await,
                    Some(ms) => {
                        let at = Instant::from_nanos(ms.saturating_mul(1_000_000));
                        runtime::select(net.poll_requested(), runtime::sleep_until(at)).await;
                    }
                    None => net.poll_requested().await,
                }
                Wake::Poll
            };
            let changed = async {
                backend.changed().await;
                Wake::Backend
            };
            flatten(runtime::select(runtime::select(event, requested), changed).await)
        };
        if channels.stale() {
            // Restored or migrated: the backend, the rings' grants and the event channels are the old domain's.
            if let Some(resumed) = resume(&net, &mut dev, &mut lifecycle).await {
                (channels, backend) = resumed;
            }
            continue;
        }
        match wake {
            Wake::Event(false) => return, // the event channel was closed
            Wake::Backend => follow_backend(&net, &dev, &backend, &mut lifecycle, &channels).await,
            Wake::Event(true) | Wake::Poll => {}
        }
    }
}

/// The network's boot steps (`boot_steps`): the first frame sent and received, and an IPv4 address (static, or a
/// DHCP lease). Returns whether any is still to come.
fn record_boot_steps(net: &Net) -> bool {
    let stack = net.lock();
    let c = stack.device().driver.counters();
    if c.tx_packets > 0 {
        crate::boot_steps::step("first-frame-sent");
    }
    if c.rx_packets > 0 {
        crate::boot_steps::step("first-frame-received");
    }
    if stack.ipv4_address().is_some() {
        crate::boot_steps::step("ipv4-address");
    }
    !(c.tx_packets > 0 && c.rx_packets > 0 && stack.ipv4_address().is_some())
}

/// Follows the backend's xenbus state (the policy is `frontend::lifecycle`, `OnBackendGone::Reconnect`): when it
/// goes away (Closing, Closed, gone) while we are connected, close our end and reset the driver; when it is at
/// InitWait while we are not connected (it came back, or a new one was attached with the same device id),
/// connect again. Meanwhile nothing is sent: TCP retransmits across the gap. The handshakes wait through the run
/// loop, without the stack lock: other vifs, disks and timers keep running.
async fn follow_backend(
    net: &Net,
    dev: &frontend::DeviceInfo,
    backend: &BackendWatch,
    lifecycle: &mut Lifecycle,
    channels: &netfront::Channels,
) {
    let (action, state) = backend.follow(lifecycle).await;
    match action {
        Action::Disconnect => {
            log::warn!("vif{}: backend state {state:?}: disconnecting", dev.id);
            // Our end follows the backend's (Closing, then Closed) so the toolstack's teardown completes, and by
            // the backend's Closed the old rings are unmapped. A backend that vanished cannot answer: reset anyway.
            let closed = lifecycle::close_after_backend_left_async(
                &mut RunLoop,
                dev,
                OnBackendGone::Reconnect,
                CLOSE_TIMEOUT_NS,
            )
            .await;
            if let Err(e) = closed {
                log::warn!("vif{}: closing our end: {e}", dev.id);
            }
            match netfront::reset(net.lock().device_mut(), dev) {
                Ok(report) => log::info!("vif{}: disconnected ({report:?}); waiting for the backend", dev.id),
                Err(e) => log::error!("vif{}: reset after the backend left: {e}", dev.id),
            }
        }
        Action::Reconnect => {
            log::info!("vif{}: backend at InitWait: reconnecting", dev.id);
            match reconnect(net, dev, channels).await {
                Ok(()) => {
                    lifecycle.reconnected();
                    log::info!("vif{}: reconnected", dev.id)
                }
                Err(e) => log::error!("vif{}: reconnect failed: {e}; retrying on the next backend change", dev.id),
            }
            net.request_poll();
        }
        Action::Stay | Action::Detach => {}
    }
}

/// After a resume in a new domain: reads the device's backend again (its path names our new domain id), resets
/// the driver onto new rings and event channels with every buffer granted to the backend again, watches the new
/// backend and reconnects to it; then the stack announces its addresses on the new link (gratuitous ARP,
/// unsolicited neighbour advertisements). TCP retransmits what was in flight. Returns the new channels and watch;
/// `None` if the device could not even be reset (logged: the vif stays down).
async fn resume(
    net: &Net,
    dev: &mut frontend::DeviceInfo,
    lifecycle: &mut Lifecycle,
) -> Option<(netfront::Channels, BackendWatch)> {
    lifecycle.resumed();
    let moved =
        xenstore::with(|xs| frontend::device_info(xs, dev.kind, dev.id)).map_err(VifError::Frontend).and_then(|now| {
            *dev = now;
            netfront::resume(net.lock().device_mut(), dev)
        });
    let (channels, report) = match moved {
        Ok(moved) => moved,
        Err(e) => {
            log::error!("vif{}: after the resume: {e}; the vif stays down", dev.id);
            return None;
        }
    };
    log::info!("vif{}: resumed ({report:?}); reconnecting to {}", dev.id, dev.backend_path);
    let backend = BackendWatch::new(dev).await;
    match reconnect(net, dev, &channels).await {
        Ok(()) => {
            lifecycle.reconnected();
            net.lock().link_moved();
            log::info!("vif{}: reconnected after the resume; announcing our addresses", dev.id);
        }
        Err(e) => {
            log::error!("vif{}: reconnect after the resume failed: {e}; retrying on the next backend change", dev.id)
        }
    }
    net.request_poll();
    Some((channels, backend))
}

/// Connects a driver `follow_backend` reset, once a backend is at InitWait again: the steps of
/// `netfront::reconnect` (our state Initialising, the backend's InitWait, the configuration read and the
/// features checked, RX buffers posted, the connect keys written in one transaction, the backend's Connected,
/// then transmitting allowed), with the two waits through the run loop and the stack lock taken only for the
/// driver's own steps. The event channels are the old ones (Xen put them back to unbound when the backend closed);
/// the buffers keep their grants. On error the driver stays unconnected (nothing is sent).
async fn reconnect(net: &Net, dev: &frontend::DeviceInfo, channels: &netfront::Channels) -> Result<(), VifError> {
    let mut xs = RunLoop;
    frontend::set_state_async(&mut xs, dev, XenbusState::Initialising).await.map_err(VifError::Xenstore)?;
    frontend::wait_for_backend_async(&mut xs, dev, &[XenbusState::InitWait], CONNECT_TIMEOUT_NS)
        .await
        .map_err(VifError::Frontend)?;
    // A few short requests, blocking: the netfront key logic is written against the blocking client.
    let config = xenstore::with(|xs| nf::read_config(xs, dev)).map_err(VifError::Config)?;
    let (features, keys, mac) = {
        let mut stack = net.lock();
        let vif = stack.device_mut();
        let features = vif.driver.features();
        nf::check_features_kept(dev, features, &config.backend).map_err(VifError::Config)?;
        vif.driver.post_rx_buffers();
        let (tx, rx) = vif.driver.rings();
        let keys = channels.keys(tx, rx);
        (features, keys, vif.mac)
    };
    xenstore::with(|xs| nf::write_connect_keys(xs, dev, keys, features)).map_err(VifError::Xenstore)?;
    frontend::wait_for_backend_async(&mut xs, dev, &[XenbusState::Connected], CONNECT_TIMEOUT_NS)
        .await
        .map_err(VifError::Frontend)?;
    net.lock().device_mut().driver.backend_connected();
    if config.mac != mac {
        log::warn!("vif{}: the backend came back with another MAC; keeping ours", dev.id);
    }
    Ok(())
}

/// Counters of a vif's driver.
pub fn counters(net: &Net) -> VifCounters {
    net.lock().device().driver.counters()
}

/// Every vif's metrics, for `metrics::snapshot` (none before the network is up; this does not bring it up): the
/// driver's counters, the TCP stack's connections by state and memory, under `"vifs"` in the JSON document.
pub(crate) fn collect(s: &mut Snapshot) {
    for (i, n) in NETS.get().map_or(&[][..], |up| &up.nets).iter().enumerate() {
        let (c, stats, limit, addr, mac) = {
            let stack = n.lock();
            let vif = stack.device();
            (
                vif.driver.counters(),
                stack.stats(),
                stack.socket_options().tcp_memory_limit.unwrap_or(0),
                stack.ipv4_address().map(|a| format!("{a}")).unwrap_or_default(),
                vif.mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"),
            )
        };
        let vif = format!("{i}");
        let l = [("vif", vif.as_str())];
        s.info(&m::VIF_INFO, &[("vif", &vif), ("ipv4", &addr), ("mac", &mac)]);
        s.counter(&m::RX_PACKETS, &l, c.rx_packets);
        s.counter(&m::RX_BYTES, &l, c.rx_bytes);
        s.counter(&m::TX_PACKETS, &l, c.tx_packets);
        s.counter(&m::TX_BYTES, &l, c.tx_bytes);
        s.counter(&m::RX_GSO, &l, c.rx_gso_packets);
        s.counter(&m::TX_GSO, &l, c.tx_gso_packets);
        s.counter(&m::RX_DROPPED, &l, c.rx_dropped);
        s.counter(&m::TX_DROPPED, &l, c.tx_dropped);
        s.counter(&m::NOTIFIES, &l, c.notifies);
        for (reason, n) in [
            ("ring_full", c.tx_ring_full),
            ("no_buffer", c.tx_no_buffer),
            ("too_big", c.tx_too_big),
            ("needs_sg", c.tx_needs_sg),
            ("csum", c.tx_csum_refused),
            ("gso", c.tx_gso_refused),
            ("not_connected", c.tx_not_connected),
        ] {
            s.counter(&m::TX_REFUSED, &[("vif", &vif), ("reason", reason)], n);
        }
        for (fault, n) in [
            ("tx_bad_id", c.tx_bad_id),
            ("tx_error", c.tx_error),
            ("tx_bad_status", c.tx_bad_status),
            ("rx_bad_id", c.rx_bad_id),
            ("rx_bad_status", c.rx_bad_status),
            ("rx_bad_offset", c.rx_bad_offset),
            ("rx_bad_flags", c.rx_bad_flags),
            ("rx_bad_extra", c.rx_bad_extra),
            ("rx_too_big", c.rx_too_big),
            ("ring_overrun", c.ring_overruns),
        ] {
            s.counter(&m::FAULTS, &[("vif", &vif), ("fault", fault)], n);
        }
        s.counter(&m::RESETS, &l, c.resets);
        for (state, name) in m::TCP_STATES {
            s.gauge(&m::TCP, &[("vif", &vif), ("state", name)], stats.tcp.get(state) as i64);
        }
        s.gauge(&m::TCP_BUFFER, &l, stats.tcp_buffer_bytes as i64);
        s.gauge(&m::TCP_LIMIT, &l, limit as i64);
        s.counter(&m::TCP_EVICTED, &l, stats.tcp_time_wait_evicted);
        s.counter(&m::TCP_REFUSED, &l, stats.tcp_refused_no_memory);
        let e = stats.tcp_errors;
        for (error, n) in
            [("reset", e.reset), ("refused", e.refused), ("timed_out", e.timed_out), ("address_lost", e.address_lost)]
        {
            s.counter(&m::TCP_ERRORS, &[("vif", &vif), ("error", error)], n);
        }
    }
}

/// The vifs' metrics (see `collect`).
mod m {
    use super::TcpState;
    use crate::metrics::Desc;

    pub const VIF_INFO: Desc = Desc::new("sirocco_vif_info", "A vif's addresses.").json("vifs[vif]");
    pub const RX_PACKETS: Desc =
        Desc::new("sirocco_vif_rx_packets_total", "Packets received and delivered.").json("vifs[vif].rx_packets");
    pub const RX_BYTES: Desc =
        Desc::new("sirocco_vif_rx_bytes_total", "Bytes of the packets received.").json("vifs[vif].rx_bytes");
    pub const TX_PACKETS: Desc =
        Desc::new("sirocco_vif_tx_packets_total", "Packets queued for transmission.").json("vifs[vif].tx_packets");
    pub const TX_BYTES: Desc =
        Desc::new("sirocco_vif_tx_bytes_total", "Bytes of the packets transmitted.").json("vifs[vif].tx_bytes");
    pub const RX_GSO: Desc = Desc::new("sirocco_vif_rx_gso_packets_total", "Large segments received (LRO).")
        .json("vifs[vif].rx_gso_packets");
    pub const TX_GSO: Desc =
        Desc::new("sirocco_vif_tx_gso_packets_total", "Large segments handed to the backend to cut up (TSO).")
            .json("vifs[vif].tx_gso_packets");
    pub const RX_DROPPED: Desc =
        Desc::new("sirocco_vif_rx_dropped_total", "Received packets dropped.").json("vifs[vif].rx_dropped");
    pub const TX_DROPPED: Desc =
        Desc::new("sirocco_vif_tx_dropped_total", "Transmits the backend answered NETIF_RSP_DROPPED.")
            .json("vifs[vif].tx_dropped");
    pub const NOTIFIES: Desc =
        Desc::new("sirocco_vif_notifies_total", "Events sent to the backend.").json("vifs[vif].notifies");
    pub const TX_REFUSED: Desc =
        Desc::new("sirocco_vif_tx_refused_total", "Transmits refused by the driver, by reason.")
            .json("vifs[vif].tx_refused");
    pub const FAULTS: Desc =
        Desc::new("sirocco_vif_backend_faults_total", "Responses from the backend that broke the protocol, by fault.")
            .json("vifs[vif].faults");
    pub const RESETS: Desc =
        Desc::new("sirocco_vif_resets_total", "Times the vif started over after its backend left.")
            .json("vifs[vif].resets");
    pub const TCP: Desc =
        Desc::new("sirocco_tcp_sockets", "TCP sockets by state (listening ones included).").json("vifs[vif].tcp");
    pub const TCP_BUFFER: Desc =
        Desc::new("sirocco_tcp_buffer_bytes", "Bytes of TCP socket buffers held.").json("vifs[vif].tcp.buffer_bytes");
    pub const TCP_LIMIT: Desc =
        Desc::new("sirocco_tcp_memory_limit_bytes", "What TCP socket buffers may hold at once.")
            .json("vifs[vif].tcp.memory_limit");
    pub const TCP_EVICTED: Desc = Desc::new(
        "sirocco_tcp_time_wait_evicted_total",
        "Connections in TIME-WAIT freed early to make room under the memory limit.",
    )
    .json("vifs[vif].tcp.time_wait_evicted");
    pub const TCP_REFUSED: Desc =
        Desc::new("sirocco_tcp_refused_no_memory_total", "Sockets not created because of the TCP memory limit.")
            .json("vifs[vif].tcp.refused_no_memory");
    pub const TCP_ERRORS: Desc =
        Desc::new("sirocco_tcp_errors_total", "TCP connections that ended in an error, by error.")
            .json("vifs[vif].tcp.errors");
    pub const TX_IN_FLIGHT: Desc =
        Desc::new("sirocco_vif_tx_in_flight", "TX buffers awaiting the backend's response, seen at each network poll.")
            .json("vifs[vif].tx_in_flight");
    pub const RX_POSTED: Desc =
        Desc::new("sirocco_vif_rx_posted", "RX buffers posted to the backend, seen at each network poll.")
            .json("vifs[vif].rx_posted");

    /// Ring occupancy buckets: 0, then powers of two up to a whole 256-slot ring.
    pub const RING_BUCKETS: [u64; 10] = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256];

    /// Every TCP state and its label (`time_wait` before the last, `closed`, so `"time_wait":N,` is followed by
    /// a comma in the JSON document, as lab scripts grep it).
    pub const TCP_STATES: [(TcpState, &str); 11] = [
        (TcpState::Listen, "listen"),
        (TcpState::SynSent, "syn_sent"),
        (TcpState::SynReceived, "syn_received"),
        (TcpState::Established, "established"),
        (TcpState::FinWait1, "fin_wait_1"),
        (TcpState::FinWait2, "fin_wait_2"),
        (TcpState::CloseWait, "close_wait"),
        (TcpState::Closing, "closing"),
        (TcpState::LastAck, "last_ack"),
        (TcpState::TimeWait, "time_wait"),
        (TcpState::Closed, "closed"),
    ];
}

/// The ring occupancy histograms of one vif, observed after each poll of its stack.
struct RingMetrics {
    tx_in_flight: Histogram<10>,
    rx_posted: Histogram<10>,
}

impl RingMetrics {
    /// Vif `index`'s histograms, registered for the domain's life.
    fn register(index: usize) -> &'static RingMetrics {
        let labels: Labels = alloc::vec![("vif", &*format!("{index}").leak())].leak();
        let ring: &'static RingMetrics = alloc::boxed::Box::leak(alloc::boxed::Box::new(RingMetrics {
            tx_in_flight: Histogram::new(m::TX_IN_FLIGHT, m::RING_BUCKETS).labels(labels),
            rx_posted: Histogram::new(m::RX_POSTED, m::RING_BUCKETS).labels(labels),
        }));
        for h in [&ring.tx_in_flight, &ring.rx_posted] {
            if let Err(e) = crate::metrics::register(h) {
                log::warn!("vif{index}: {e}");
            }
        }
        ring
    }

    fn observe(&self, net: &Net) {
        let stack = net.lock();
        let d = &stack.device().driver;
        self.tx_in_flight.observe((usize::from(d.tx_buffer_count()).saturating_sub(d.tx_free_buffers())) as u64);
        self.rx_posted.observe((usize::from(d.rx_buffer_count()).saturating_sub(d.rx_free_buffers())) as u64);
    }
}

/// A short pause, for apps that poll (e.g. waiting for a DHCP lease with a timeout).
pub async fn pause(ms: u64) {
    runtime::sleep(Duration::from_millis(ms)).await
}
