//! Sirocco's network stack: [smoltcp] behind one device adapter, configured from the guest command line, with
//! runtime-agnostic async sockets. Free of `unsafe`, and tested on the host with two stacks joined by an
//! in-memory wire (`tests/`).
//!
//! # Pieces
//! - [`NetDevice`]: what a driver (netfront) implements; [`Stack`] wraps it in a smoltcp `phy::Device`.
//! - [`NetConfig`]: one interface's addresses, SLAAC, offloads and event channels, built in code or read from the
//!   command line (`ip=`/`gw=`/`ip6=`/`gw6=`/`slaac=`...: [`NetConfig::from_cmdline`]); [`VifConfigs`]: every
//!   vif's (`ip1=`... for the second: [`VifConfigs::from_cmdline`]).
//! - [`Stack`]: interface, sockets, DHCPv4 client, SLAAC; [`Stack::poll`] moves frames.
//! - [`NetHandle`]: the shared stack (`Arc<spin::Mutex<Stack>>`) that sockets hold, plus the poll request.
//! - [`TcpListener`], [`TcpStream`], [`UdpSocket`], [`Pinger`]: async sockets whose futures are `Send`.
//!   `TcpStream` implements embedded-io-async's `Read`, `Write`, `ReadReady` and `WriteReady`, `UdpSocket`
//!   embedded-nal-async's `UnconnectedUdp`; their error is [`NetError`].
//!
//! # Driving it from a runtime
//! One task owns the polling:
//! ```ignore
//! let net = NetHandle::new(Stack::new(netfront, &NetConfig::from_lookup(|k| cmdline.get(k))?, seed, now_ms())?);
//! loop {
//!     let deadline = net.poll(now_ms());                       // moves frames, wakes socket futures
//!     select3(netfront_event.wait(),                            // frames arrived or transmit ring drained
//!             sleep_until(deadline),                            // None: no timer needed
//!             net.poll_requested()).await;                      // a socket queued data, closed, connected...
//! }
//! ```
//! Socket futures register smoltcp's wakers (feature `async`); [`Stack::poll`] wakes them, so they need no
//! timers of their own. Wakers are called with the stack locked: they must only schedule, never poll.
//! Timeouts live in the stack ([`SocketOptions`]): a connection never hangs silently, it ends with
//! [`NetError::TimedOut`] or [`NetError::Reset`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod config;
mod device;
mod handle;
pub mod http;
mod icmp;
pub mod iperf3;
mod slaac;
mod stack;
mod tcp;
mod udp;
mod vif;
mod wiretrace;

use core::fmt;

pub use config::{
    eui64_interface_id, link_local_address, ConfigError, ConfigProblem, Ipv4Config, NetConfig, VifConfigError,
    VifConfigs,
};
pub use device::{DeviceCounters, NetDevice, TxFull, ETHERNET_HEADER_LEN};
pub use handle::NetHandle;
pub use icmp::{EchoReply, Pinger};
pub use slaac::{MAX_SOLICITATIONS, SOLICITATION_INTERVAL_MS};
pub use stack::{NetStats, SocketOptions, Stack, TcpErrorCounts, TcpStateCounts, EPHEMERAL_PORTS, MAX_FRAMES_PER_POLL};
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use vif::Vif;

/// smoltcp itself, for what this crate does not wrap (wire formats in tests, DNS...).
pub use smoltcp;
/// The TCP states of RFC 793, as smoltcp names them.
pub use smoltcp::socket::tcp::State as TcpState;
/// Address with prefix length.
pub use smoltcp::wire::{IpCidr, Ipv4Cidr, Ipv6Cidr};

/// Why a socket operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The peer reset the connection (it sent a TCP RST).
    Reset,
    /// The peer refused the connection: it answered our SYN with a RST (nothing listens on that port).
    Refused,
    /// The peer stopped answering for longer than the socket's timeout, or `close` did not finish in time.
    TimedOut,
    /// The connection's local address was removed (for example, the DHCP lease was lost).
    AddressLost,
    /// No address of the right family, or no route to the destination (for example, no IPv4 address yet while
    /// DHCP runs, or no default router for an off-link destination).
    NoRoute,
    /// An unspecified or multicast address, or port 0, where a unicast endpoint is needed.
    InvalidAddress,
    /// The port is already bound (TCP: by a listener; UDP: by a socket).
    AddressInUse,
    /// Every ephemeral port is in use.
    PortsExhausted,
    /// Not possible in the socket's state: writing after `close`, anything after `abort`.
    InvalidState,
    /// The datagram is larger than the socket's send buffer and could never be sent.
    TooLarge,
    /// The device reported a MAC address that is not unicast.
    InvalidMac,
    /// No room for another connection's buffers under [`SocketOptions::tcp_memory_limit`].
    NoMemory,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetError::Reset => "connection reset by peer",
            NetError::Refused => "connection refused",
            NetError::TimedOut => "connection timed out",
            NetError::AddressLost => "local address removed (DHCP lease lost?)",
            NetError::NoRoute => "no address or route to the destination",
            NetError::InvalidAddress => "unspecified or multicast address, or port 0",
            NetError::AddressInUse => "port already in use",
            NetError::PortsExhausted => "no free ephemeral port",
            NetError::InvalidState => "operation not valid in the socket's state",
            NetError::TooLarge => "datagram larger than the socket buffer",
            NetError::InvalidMac => "device MAC address is not unicast",
            NetError::NoMemory => "no memory for another connection (TCP memory limit reached)",
        })
    }
}

impl core::error::Error for NetError {}

/// The closest [`embedded_io_async::ErrorKind`], for protocol code written against the embedded-io traits
/// ([`TcpStream`] implements them with this error). embedded-io 0.6 has no kind for an unreachable network:
/// [`NetError::NoRoute`] is `Other`.
impl embedded_io_async::Error for NetError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        use embedded_io_async::ErrorKind;
        match self {
            NetError::Reset => ErrorKind::ConnectionReset,
            NetError::Refused => ErrorKind::ConnectionRefused,
            NetError::TimedOut => ErrorKind::TimedOut,
            // The stack ended the connection itself: its address is gone (Linux says ECONNABORTED).
            NetError::AddressLost => ErrorKind::ConnectionAborted,
            NetError::NoRoute => ErrorKind::Other,
            NetError::InvalidAddress | NetError::TooLarge => ErrorKind::InvalidInput,
            NetError::AddressInUse => ErrorKind::AddrInUse,
            // Linux answers a connect with no ephemeral port left EADDRNOTAVAIL.
            NetError::PortsExhausted => ErrorKind::AddrNotAvailable,
            // Writing after `close`, anything after `abort`: the connection no longer carries this operation.
            NetError::InvalidState => ErrorKind::NotConnected,
            NetError::InvalidMac => ErrorKind::InvalidData,
            NetError::NoMemory => ErrorKind::OutOfMemory,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(NetError::Reset.to_string(), "connection reset by peer");
        assert_eq!(NetError::TimedOut.to_string(), "connection timed out");
        assert_eq!(TxFull.to_string(), "transmit queue full");
    }

    #[test]
    fn errors_map_to_embedded_io_kinds() {
        use embedded_io_async::{Error, ErrorKind};
        assert_eq!(NetError::Reset.kind(), ErrorKind::ConnectionReset);
        assert_eq!(NetError::Refused.kind(), ErrorKind::ConnectionRefused);
        assert_eq!(NetError::TimedOut.kind(), ErrorKind::TimedOut);
        assert_eq!(NetError::AddressLost.kind(), ErrorKind::ConnectionAborted);
        assert_eq!(NetError::InvalidState.kind(), ErrorKind::NotConnected);
        assert_eq!(NetError::AddressInUse.kind(), ErrorKind::AddrInUse);
        assert_eq!(NetError::PortsExhausted.kind(), ErrorKind::AddrNotAvailable);
        assert_eq!(NetError::NoMemory.kind(), ErrorKind::OutOfMemory);
        assert_eq!(NetError::TooLarge.kind(), ErrorKind::InvalidInput);
    }
}
