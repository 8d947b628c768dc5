//! Connecting a vif through xenstore: reading what the toolstack and the backend wrote ([`read_config`]), writing
//! our ring refs, event channel, requests and state in one transaction ([`write_connect_keys`]), and the whole
//! connect step ([`connect`]) that ends only once the backend is Connected (packets sent earlier are lost: an
//! anchor bug), and disconnecting from a backend that goes away and connecting again when one is back ([`disconnect`],
//! [`reconnect`]).

use core::fmt;

use alloc::format;
use alloc::vec;

use super::device::{Features, NetBuffers, Netfront, ResetReport};
use crate::frontend::{self, DeviceId, DeviceInfo, FrontendError, XenbusState};
use crate::grant::GrantRef;
use crate::ring::{Notify, SharedRing};
use crate::xenstore::{parse_decimal, InlineStr, Tx, Xenstore, XsError, XsPlatform, XsRing};

/// The MTU when the toolstack gives none.
pub const DEFAULT_MTU: u16 = 1500;

/// Slots of the one-page RX ring (256): the most RX buffers that can be posted at once.
pub const RX_RING_SLOTS: u16 = crate::ring::ring_size(super::wire::RX_ENTRY_SIZE) as u16;

/// Fewest RX buffers a vif posts, however small the guest: 64 full frames, 92 KiB of TCP window.
pub const MIN_RX_BUFFERS: u16 = 64;

/// TX buffer pages a vif takes at most (512 KiB): a TSO frame of 64 KiB takes 17, so several fit in flight.
pub const MAX_TX_BUFFERS: u16 = 128;

/// Fewest TX buffer pages: four TSO frames' worth of pages (with fewer, `Vif` turns TSO off).
pub const MIN_TX_BUFFERS: u16 = 64;

/// How many TX buffer pages to take given the free memory (heap and page pool): [`MAX_TX_BUFFERS`] when an eighth
/// of it holds them (4 MiB free and more), [`MIN_TX_BUFFERS`] on a smaller guest.
pub fn tx_buffer_count(free: usize) -> u16 {
    affordable_pages(free / 8, MIN_TX_BUFFERS, MAX_TX_BUFFERS)
}

/// How many RX buffer pages (one frame each) to post given the free memory (heap and page pool): the whole ring
/// when a quarter of it holds them (a guest of 16 MiB and more), fewer on a small guest, never below
/// [`MIN_RX_BUFFERS`]. Each buffer is one full frame the backend can deliver before we read: with the whole ring
/// posted, a TCP window of 256 frames (366 KiB) arrives without a drop (`Stack::max_tcp_window`).
pub fn rx_buffer_count(free: usize) -> u16 {
    affordable_pages(free / 4, MIN_RX_BUFFERS, RX_RING_SLOTS)
}

/// The pages `budget` bytes hold, kept within `min..=max`.
fn affordable_pages(budget: usize, min: u16, max: u16) -> u16 {
    (budget / super::wire::PAGE_SIZE).clamp(usize::from(min), usize::from(max)) as u16
}

/// What the backend offers (its `feature-*` keys; a missing key means 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendFeatures {
    /// `feature-rx-copy`: the backend copies received packets into our granted pages (required: we never flip).
    pub rx_copy: bool,
    /// `feature-sg`: scatter-gather.
    pub sg: bool,
    /// `feature-gso-tcpv4`: the backend accepts TCP/IPv4 segments to cut up (TSO on our transmit side).
    pub gso_tcpv4: bool,
    /// `feature-gso-tcpv6`: the backend accepts TCP/IPv6 segments to cut up.
    pub gso_tcpv6: bool,
    /// `feature-ipv6-csum-offload`: the backend accepts IPv6 packets with a partial checksum.
    pub ipv6_csum_offload: bool,
    /// `feature-rx-notify`, if the backend says so (we always write ours).
    pub rx_notify: bool,
    /// `feature-split-event-channels`: one event channel per ring.
    pub split_event_channels: bool,
    /// `multi-queue-max-queues` (0 if absent; we use one queue, written the single-queue way).
    pub max_queues: u32,
}

/// A vif's configuration, as the toolstack and the backend wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Our MAC (the frontend's `mac` key; the backend's vif has a different one).
    pub mac: [u8; 6],
    /// The frontend's `mtu` key, or [`DEFAULT_MTU`].
    pub mtu: u16,
    /// What the backend offers.
    pub backend: BackendFeatures,
}

impl Features {
    /// What we use: scatter-gather if we want it and the backend offers it; checksum offload as we choose (the
    /// backend always accepts `feature-no-csum-offload`); TSO if the backend offers it; large receive as we
    /// choose. Both offloads need scatter-gather and checksum offload.
    pub fn negotiate(backend: &BackendFeatures, want: Features) -> Features {
        let sg = want.sg && backend.sg;
        Features {
            sg,
            csum_offload: want.csum_offload,
            gso_tcpv4: want.gso_tcpv4 && backend.gso_tcpv4 && sg && want.csum_offload,
            // Ours to offer: netback sends large segments to any frontend that writes the key.
            gso_rx_tcpv4: want.gso_rx_tcpv4 && sg && want.csum_offload,
            // IPv6 segments go with a partial checksum: the backend must take those (`feature-ipv6-csum-offload`).
            gso_tcpv6: want.gso_tcpv6 && backend.gso_tcpv6 && backend.ipv6_csum_offload && sg && want.csum_offload,
            gso_rx_tcpv6: want.gso_rx_tcpv6 && sg && want.csum_offload,
            split_event_channels: want.split_event_channels && backend.split_event_channels,
        }
    }
}

/// The grant refs and event channel that [`write_connect_keys`] publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectKeys {
    /// The TX ring page's grant ref (`tx-ring-ref`).
    pub tx_ring_ref: GrantRef,
    /// The RX ring page's grant ref (`rx-ring-ref`).
    pub rx_ring_ref: GrantRef,
    /// Our port, allocated unbound to the backend's domain (`event-channel`; with split event channels the TX
    /// ring's, `event-channel-tx`).
    pub event_channel: u32,
    /// With split event channels, the RX ring's port (`event-channel-rx`).
    pub rx_event_channel: Option<u32>,
}

/// Why a vif cannot be configured or connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Reading or writing xenstore, a missing or bad frontend key (`mac`, `mtu`), or the backend's state.
    Frontend(FrontendError),
    /// A backend `feature-*` key holds something other than a decimal number.
    BadBackendValue {
        /// The device.
        device: DeviceId,
        /// The key, under the backend's directory.
        key: &'static str,
        /// Its value.
        value: InlineStr<24>,
    },
    /// The backend does not offer `feature-rx-copy`; page flipping is not supported.
    NoRxCopy {
        /// The device.
        device: DeviceId,
    },
    /// On [`reconnect`], the backend no longer offers a feature the device was set up with (`feature-sg`); a
    /// different backend needs a new [`Netfront`].
    FeatureWithdrawn {
        /// The device.
        device: DeviceId,
        /// The backend's key.
        key: &'static str,
    },
}

impl From<FrontendError> for ConfigError {
    fn from(e: FrontendError) -> Self {
        ConfigError::Frontend(e)
    }
}

impl From<XsError> for ConfigError {
    fn from(e: XsError) -> Self {
        ConfigError::Frontend(FrontendError::Xenstore(e))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::Frontend(e) => write!(f, "{e}"),
            ConfigError::BadBackendValue { device, key, value } => {
                write!(f, "{device}: the backend's {key} holds {value:?}, not a number")
            }
            ConfigError::FeatureWithdrawn { device, key } => write!(
                f,
                "{device}: the backend came back without {key}, which the device was set up with; not reconnected"
            ),
            ConfigError::NoRxCopy { device } => write!(
                f,
                "{device}: the backend does not offer feature-rx-copy (page flipping is not supported); use a newer \
                 netback"
            ),
        }
    }
}

/// Display already says everything (it includes the wrapped error's message); `source` is there for code that
/// inspects the cause (`downcast_ref`), not for printing a chain.
impl core::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ConfigError::Frontend(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads our `mac` and `mtu` and the backend's features. Call once the backend is in InitWait (its features are
/// written by then).
pub fn read_config<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
) -> Result<NetConfig, ConfigError> {
    let device = dev.device();
    let bad = |key, value: &[u8]| FrontendError::BadValue { device, key, value: InlineStr::from_bytes(value) };
    let mac = xs
        .read_optional(Tx::NONE, &dev.frontend_key("mac"))?
        .ok_or(FrontendError::MissingKey { device, key: "mac" })?;
    let mac = parse_mac(&mac).ok_or_else(|| bad("mac", &mac))?;
    let mtu = match xs.read_optional(Tx::NONE, &dev.frontend_key("mtu"))? {
        None => DEFAULT_MTU,
        Some(v) => {
            parse_decimal(&v).and_then(|m| u16::try_from(m).ok()).filter(|&m| m >= 68).ok_or_else(|| bad("mtu", &v))?
        }
    };
    let mut number = |key: &'static str| -> Result<u32, ConfigError> {
        match xs.read_optional(Tx::NONE, &dev.backend_key(key))? {
            None => Ok(0),
            Some(v) => {
                parse_decimal(&v).ok_or(ConfigError::BadBackendValue { device, key, value: InlineStr::from_bytes(&v) })
            }
        }
    };
    let backend = BackendFeatures {
        rx_copy: number("feature-rx-copy")? != 0,
        sg: number("feature-sg")? != 0,
        gso_tcpv4: number("feature-gso-tcpv4")? != 0,
        gso_tcpv6: number("feature-gso-tcpv6")? != 0,
        ipv6_csum_offload: number("feature-ipv6-csum-offload")? != 0,
        rx_notify: number("feature-rx-notify")? != 0,
        split_event_channels: number("feature-split-event-channels")? != 0,
        max_queues: number("multi-queue-max-queues")?,
    };
    if !backend.rx_copy {
        return Err(ConfigError::NoRxCopy { device });
    }
    Ok(NetConfig { mac, mtu, backend })
}

/// `aa:bb:cc:dd:ee:ff` (hex, either case), a unicast address other than all zeros.
pub fn parse_mac(text: &[u8]) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(|&b| b == b':');
    for byte in mac.iter_mut() {
        let part = parts.next()?;
        let [hi, lo] = part else { return None };
        *byte = hex_digit(*hi)? << 4 | hex_digit(*lo)?;
    }
    let unicast = mac[0] & 1 == 0 && mac != [0; 6];
    (parts.next().is_none() && unicast).then_some(mac)
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Writes, in one transaction (run again from the start if the commit answers `EAGAIN`): `tx-ring-ref`,
/// `rx-ring-ref`, `event-channel` (or `event-channel-tx` and `event-channel-rx` with split event channels),
/// `request-rx-copy=1`, `feature-rx-notify=1`, `feature-sg` (1 if we use it, else
/// 0), `feature-no-csum-offload` (0 with checksum offload, else 1), `feature-gso-tcpv4` and `feature-gso-tcpv6` (1
/// with large receive of each, else 0), `feature-ipv6-csum-offload` (as `feature-gso-tcpv6`), and our `state` =
/// Connected (4). The backend sees all of them at once or none.
pub fn write_connect_keys<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    keys: ConnectKeys,
    features: Features,
) -> Result<(), XsError> {
    let flag = |on: bool| if on { "1" } else { "0" };
    let channels = match keys.rx_event_channel {
        None => vec![("event-channel", format!("{}", keys.event_channel))],
        Some(rx) => {
            vec![("event-channel-tx", format!("{}", keys.event_channel)), ("event-channel-rx", format!("{rx}"))]
        }
    };
    let values = [
        ("tx-ring-ref", format!("{}", keys.tx_ring_ref.0)),
        ("rx-ring-ref", format!("{}", keys.rx_ring_ref.0)),
        ("request-rx-copy", "1".into()),
        ("feature-rx-notify", "1".into()),
        ("feature-sg", flag(features.sg).into()),
        ("feature-no-csum-offload", flag(!features.csum_offload).into()),
        ("feature-gso-tcpv4", flag(features.gso_rx_tcpv4).into()),
        ("feature-gso-tcpv6", flag(features.gso_rx_tcpv6).into()),
        // IPv6 packets with a blank checksum are fine with us once we take IPv6 segments whole.
        ("feature-ipv6-csum-offload", flag(features.gso_rx_tcpv6).into()),
    ];
    xs.transaction(|xs, tx| {
        for (key, value) in channels.iter().chain(&values) {
            xs.write(tx, &dev.frontend_key(key), value.as_bytes())?;
        }
        frontend::set_state(xs, tx, dev, XenbusState::Connected)
    })
}

/// The connect step: posts the RX buffers, writes the connect keys ([`write_connect_keys`]), waits for the backend
/// to reach Connected, and only then lets the device transmit. Call with the backend in InitWait (see the module
/// documentation for the whole sequence). [`offer_connect`] then [`await_connected`], for a caller that marks the
/// time between them.
pub fn connect<R: XsRing, P: XsPlatform, S: SharedRing, B: NetBuffers, E: Notify>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    netfront: &mut Netfront<S, B, E>,
    keys: ConnectKeys,
    timeout_ns: u64,
) -> Result<(), ConfigError> {
    offer_connect(xs, dev, netfront, keys)?;
    await_connected(xs, dev, netfront, timeout_ns)
}

/// The first half of [`connect`]: posts the RX buffers and writes the connect keys (our state Connected).
pub fn offer_connect<R: XsRing, P: XsPlatform, S: SharedRing, B: NetBuffers, E: Notify>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    netfront: &mut Netfront<S, B, E>,
    keys: ConnectKeys,
) -> Result<(), ConfigError> {
    netfront.post_rx_buffers();
    write_connect_keys(xs, dev, keys, netfront.features())?;
    Ok(())
}

/// The second half of [`connect`]: waits for the backend to reach Connected, then lets the device transmit.
pub fn await_connected<R: XsRing, P: XsPlatform, S: SharedRing, B: NetBuffers, E: Notify>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    netfront: &mut Netfront<S, B, E>,
    timeout_ns: u64,
) -> Result<(), ConfigError> {
    frontend::wait_for_backend(xs, dev, &[XenbusState::Connected], timeout_ns)?;
    netfront.backend_connected();
    Ok(())
}

/// On a reconnect: the backend must still offer what the device was built around (`feature-sg`: packets may span
/// slots; `feature-split-event-channels`: the device has two ports), or [`ConfigError::FeatureWithdrawn`].
pub fn check_features_kept(dev: &DeviceInfo, features: Features, backend: &BackendFeatures) -> Result<(), ConfigError> {
    if features.sg && !backend.sg {
        return Err(ConfigError::FeatureWithdrawn { device: dev.device(), key: "feature-sg" });
    }
    if features.split_event_channels && !backend.split_event_channels {
        return Err(ConfigError::FeatureWithdrawn { device: dev.device(), key: "feature-split-event-channels" });
    }
    Ok(())
}

/// The backend is going away (its `state` went to Closing or Closed, or vanished: netback unbound, the driver
/// domain stopping, `xl network-detach`). In order:
/// 1. [`frontend::close`]: our state Closing, the backend's Closing or Closed (or gone), ours Closed, so the
///    toolstack's teardown completes;
/// 2. [`frontend::wait_for_backend_closed`]: by Closed the backend has unmapped the old rings;
/// 3. [`Netfront::reset`] onto `tx_page` and `rx_page`, new zeroed ring pages the platform granted to the backend:
///    the TX requests in flight are dropped and the RX buffers taken back.
///
/// The reset happens whatever the handshake gave (the second value: a backend that vanished without a word
/// cannot answer it); the device stays in [`super::Phase::Initialising`], sending nothing, until [`reconnect`].
pub fn disconnect<R: XsRing, P: XsPlatform, S: SharedRing, B: NetBuffers, E: Notify>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    netfront: &mut Netfront<S, B, E>,
    tx_page: S,
    rx_page: S,
    timeout_ns: u64,
) -> (ResetReport, Result<(), ConfigError>) {
    let closed = frontend::close(xs, dev, timeout_ns)
        .and_then(|_| frontend::wait_for_backend_closed(xs, dev, timeout_ns))
        .map(|_| ())
        .map_err(ConfigError::from);
    (netfront.reset(tx_page, rx_page), closed)
}

/// Connects a device that [`disconnect`] reset, once a backend is there again (the same one restarted, or a new
/// one attached with the same device id): our state Initialising, the backend's InitWait awaited (netback's
/// "prepare for reconnect"), [`read_config`] (the backend must still offer `feature-rx-copy`, and `feature-sg`
/// if the device uses it: [`ConfigError::FeatureWithdrawn`]), then [`connect`] with `keys` (the new rings' refs).
///
/// The event channel in `keys` may be the old one: when the backend closes its end, Xen puts ours back to
/// unbound to the same domain, and the new backend binds to it again. The buffers keep their grants. Returns the
/// configuration read (the toolstack may have changed the MAC). On error the device stays in
/// [`super::Phase::Initialising`] (nothing is sent); call again on the backend's next change.
pub fn reconnect<R: XsRing, P: XsPlatform, S: SharedRing, B: NetBuffers, E: Notify>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    netfront: &mut Netfront<S, B, E>,
    keys: ConnectKeys,
    timeout_ns: u64,
) -> Result<NetConfig, ConfigError> {
    frontend::set_state(xs, Tx::NONE, dev, XenbusState::Initialising)?;
    frontend::wait_for_backend(xs, dev, &[XenbusState::InitWait], timeout_ns)?;
    let config = read_config(xs, dev)?;
    check_features_kept(dev, netfront.features(), &config.backend)?;
    connect(xs, dev, netfront, keys, timeout_ns)?;
    Ok(config)
}
