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

use crate::raw::netfront::{self, Vif};
use crate::runtime::{self, Instant};
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
        // Detached: the vif's task runs for the domain's life.
        runtime::spawn(drive(driver, channels, dev.clone()));
        nets.push(net);
    }
    Ok(&NETS.call_once(|| Up { nets, configs: checked }).nets)
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
async fn drive(net: Net, mut channels: netfront::Channels, dev: frontend::DeviceInfo) {
    let mut backend = BackendWatch::new(&dev).await;
    let mut lifecycle = Lifecycle::connected(OnBackendGone::Reconnect);
    let mut boot_steps_pending = true;
    loop {
        let started = runtime::now_ns();
        let next = net.poll(started / 1_000_000);
        sirocco_boot::profile::add_net_poll(runtime::now_ns().saturating_sub(started));
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

/// Every vif's counters and TCP connection counts as a JSON member `"vifs":[...]`, for apps' status reports (no
/// vif before the network is up; this does not bring it up).
pub fn vifs_json() -> String {
    use core::fmt::Write;
    let mut s = String::from("\"vifs\":[");
    for (i, n) in NETS.get().map_or(&[][..], |up| &up.nets).iter().enumerate() {
        let c = counters(n);
        let (stats, addr, limit) = {
            let stack = n.lock();
            let limit = stack.socket_options().tcp_memory_limit.unwrap_or(0);
            (stack.stats(), stack.ipv4_address().map(|a| format!("{a}")).unwrap_or_default(), limit)
        };
        let _ = write!(
            s,
            "{}{{\"vif\":{i},\"ipv4\":\"{addr}\",\"rx_packets\":{},\"rx_bytes\":{},\"tx_packets\":{},\"tx_bytes\":{},\"rx_dropped\":{},\"tx_dropped\":{},\"tx_ring_full\":{},\"tcp\":{{\"established\":{},\"time_wait\":{},\"total\":{},\"buffer_bytes\":{},\"memory_limit\":{},\"time_wait_evicted\":{},\"refused_no_memory\":{}}},\"counters\":\"{}\"}}",
            if i == 0 { "" } else { "," },
            c.rx_packets,
            c.rx_bytes,
            c.tx_packets,
            c.tx_bytes,
            c.rx_dropped,
            c.tx_dropped,
            c.tx_ring_full,
            stats.tcp.get(TcpState::Established),
            stats.tcp.get(TcpState::TimeWait),
            stats.tcp.total(),
            stats.tcp_buffer_bytes,
            limit,
            stats.tcp_time_wait_evicted,
            stats.tcp_refused_no_memory,
            format!("{c}").replace('"', "'")
        );
    }
    s.push(']');
    s
}

/// A short pause, for apps that poll (e.g. waiting for a DHCP lease with a timeout).
pub async fn pause(ms: u64) {
    runtime::sleep(Duration::from_millis(ms)).await
}
