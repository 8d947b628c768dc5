//! Networking for apps: each vif the toolstack gave us is connected (netfront), gets a smoltcp stack
//! (`sirocco-net`) configured from the command line, and a task that polls the stack whenever the vif's event
//! channel fires, a socket asks for it, or the stack's next deadline arrives.
//!
//! Command line, per vif: `ip=10.0.0.2/24 gw=10.0.0.1 ip6=fd00::2/64 gw6=fd00::1 slaac=0` configure vif 0;
//! vif N takes the same keys with N appended (`ip1=10.0.1.2/24`). Without `ip=`, DHCPv4; IPv6 link-local always,
//! SLAAC unless `slaac=0`.

use crate::netfront::{self, NetError as VifError, Vif};
use crate::runtime::{self, Instant};
use crate::Either;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use sirocco_drivers::netfront::{Phase, TxChecksum, TxError};
use sirocco_net::{NetConfig, Stack};
use sirocco_net::{NetDevice, TxFull};

pub use crate::netfront::Counters;
pub use sirocco_net::{IpCidr, Ipv4Cidr, NetError, NetStats, TcpState};

/// A vif's network stack, shared by its sockets.
pub type Net = sirocco_net::NetHandle<Vif>;
/// A TCP listener on a vif.
pub type TcpListener = sirocco_net::TcpListener<Vif>;
/// A TCP connection on a vif.
pub type TcpStream = sirocco_net::TcpStream<Vif>;
/// A UDP socket on a vif.
pub type UdpSocket = sirocco_net::UdpSocket<Vif>;

static DROPS_LOGGED: AtomicU64 = AtomicU64::new(0);

/// Logs the first few dropped responses in full, then every thousandth, so a hostile backend cannot flood the
/// console; the counters keep every one.
fn log_drop(vif: u32, what: &dyn fmt::Display) {
    let n = DROPS_LOGGED.fetch_add(1, Ordering::Relaxed);
    if n < 16 || n.is_multiple_of(1000) {
        log::warn!("vif{vif}: dropped: {what} ({} so far)", n + 1);
    }
}

impl NetDevice for Vif {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn mtu(&self) -> usize {
        usize::from(self.mtu)
    }
    fn receive(&mut self) -> Option<Vec<u8>> {
        // TX completions are reaped by the network task before each poll (and by `transmit` on a full ring),
        // not here: receive runs once per frame.
        loop {
            match self.driver.poll_rx()? {
                Ok(mut packet) => {
                    if packet.csum_blank {
                        // The backend left the transport checksum blank (offload): fill it in, since the stack
                        // verifies every checksum.
                        if let Err(e) = packet.fill_checksum() {
                            log_drop(
                                self.id,
                                &format_args!("csum_blank packet whose checksum cannot be filled: {e:?}"),
                            );
                            continue;
                        }
                    }
                    return Some(packet.data);
                }
                Err(drop) => log_drop(self.id, &drop),
            }
        }
    }
    fn can_transmit(&self) -> bool {
        self.driver.tx_free_buffers() > 0 && matches!(self.driver.phase(), Phase::Connected)
    }
    fn transmit(&mut self, frame: &[u8]) -> Result<(), TxFull> {
        // smoltcp computed every checksum: tell the backend they are valid.
        match self.driver.transmit(frame, TxChecksum::Valid) {
            Ok(()) => Ok(()),
            Err(TxError::RingFull { .. }) => {
                self.driver.poll_tx();
                self.driver.transmit(frame, TxChecksum::Valid).map_err(|_| TxFull)
            }
            Err(e) => {
                // Not retryable (device broken, packet too big): the frame is dropped and counted by the driver.
                log_drop(self.id, &format_args!("transmit: {e}"));
                Ok(())
            }
        }
    }
}

static NETS: spin::Once<Vec<Net>> = spin::Once::new();
static CMDLINE: spin::Once<crate::Cmdline<'static>> = spin::Once::new();

pub(crate) fn set_cmdline(c: crate::Cmdline<'static>) {
    CMDLINE.call_once(|| c);
}

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
    /// A command-line setting is wrong.
    Config(String),
    /// The stack refused the device.
    Stack(NetError),
    /// The domain has no vif.
    NoVif,
}

impl fmt::Display for UpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpError::Vif { id, error } => write!(f, "vif{id}: {error}"),
            UpError::Enumerate(e) => write!(f, "listing vifs: {e}"),
            UpError::Config(e) => write!(f, "network configuration: {e}"),
            UpError::Stack(e) => write!(f, "network stack: {e}"),
            UpError::NoVif => write!(f, "this domain has no vif (add vif = [ 'bridge=...' ] to its xl config)"),
        }
    }
}

fn config_for(index: usize) -> Result<NetConfig, String> {
    let cmdline = CMDLINE.get().copied().unwrap_or_else(|| crate::Cmdline::parse("").expect("empty parses"));
    let suffix = if index == 0 { String::new() } else { format!("{index}") };
    NetConfig::from_lookup(|key| cmdline.get(&format!("{key}{suffix}"))).map_err(|e| format!("{e}"))
}

fn now_ms() -> u64 {
    runtime::now_ns() / 1_000_000
}

/// Connects every vif and starts its stack (once; later calls return the same stacks).
pub fn interfaces() -> Result<&'static [Net], UpError> {
    if let Some(n) = NETS.get() {
        return Ok(n);
    }
    let devices = netfront::enumerate().map_err(|e| UpError::Enumerate(e.into()))?;
    let mut nets = Vec::new();
    for (index, dev) in devices.iter().enumerate() {
        let config = config_for(index).map_err(UpError::Config)?;
        let (vif, channel) =
            netfront::connect(dev).map_err(|error| UpError::Vif { id: dev.id, error: error.into() })?;
        let seed = runtime::now_ns() ^ u64::from(dev.id) << 48;
        let stack = Stack::new(vif, &config, seed, now_ms()).map_err(UpError::Stack)?;
        let net = Net::new(stack);
        let driver = net.clone();
        runtime::spawn(drive(driver, channel)).map_err(|_| UpError::Config("no task slot for the network".into()))?;
        nets.push(net);
    }
    Ok(NETS.call_once(|| nets))
}

/// The first vif's stack.
pub fn default() -> Result<Net, UpError> {
    interfaces()?.first().cloned().ok_or(UpError::NoVif)
}

/// The network task of one vif.
async fn drive(net: Net, mut channel: crate::evtchn::EventChannel) {
    loop {
        // Reap TX completions first: the stack asks the device for receive tokens only while it can transmit, so
        // with every TX buffer in flight nothing else would ever free them (found in the lab: a bulk send from
        // the guest stalled after 128 frames).
        net.lock().device_mut().driver.poll_tx();
        let next = net.poll(now_ms());
        let wake = runtime::select(channel.wait(), net.poll_requested());
        match next {
            Some(ms) => {
                let at = Instant::from_nanos(ms.saturating_mul(1_000_000));
                if let Either::Left(Either::Left(false)) = runtime::select(wake, runtime::sleep_until(at)).await {
                    return; // the event channel was closed
                }
            }
            None => {
                if let Either::Left(false) = wake.await {
                    return;
                }
            }
        }
    }
}

/// Counters of a vif's driver.
pub fn counters(net: &Net) -> Counters {
    net.lock().device().driver.counters()
}

/// A short pause, for apps that poll (e.g. waiting for a DHCP lease with a timeout).
pub async fn pause(ms: u64) {
    runtime::sleep(Duration::from_millis(ms)).await
}
