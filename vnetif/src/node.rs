//! A node: one complete Sirocco network stack as the unikernel runs it on Xen. `Netfront` on heap ring pages and
//! buffer pages, wrapped in `sirocco_net::Vif`, under a `Stack` shared through a `NetHandle`; only the pages and
//! the event channel differ from the platform's (`boot/src/netfront.rs`).

use std::net::{IpAddr, Ipv4Addr};

use sirocco_drivers::netfront::{Features, Netfront};
use sirocco_drivers::ring::testing::{page, HeapRing, Page};
use sirocco_net::{NetConfig, NetHandle, SocketOptions, Stack, Vif};

use crate::backend::{Grants, HeapBuffers, Kick, Netback};

/// The network device of a node: netfront over heap pages, as the stack sees it.
pub type VifDevice = Vif<HeapRing, HeapBuffers, Kick>;
/// A node's stack, shared as the sockets hold it.
pub type Net = NetHandle<VifDevice>;
/// A node's TCP stream.
pub type TcpStream = sirocco_net::TcpStream<VifDevice>;
/// A node's TCP listener.
pub type TcpListener = sirocco_net::TcpListener<VifDevice>;
/// A node's UDP socket.
pub type UdpSocket = sirocco_net::UdpSocket<VifDevice>;

/// How to build a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// For messages and file names.
    pub name: String,
    /// Its MAC (the toolstack's `mac` key).
    pub mac: [u8; 6],
    /// The guest command line's network keys (`ip=10.0.0.1/24 slaac=off`...).
    pub cmdline: String,
    /// The vif's MTU (the toolstack's `mtu` key).
    pub mtu: u16,
    /// TX buffer pages (the platform uses 128).
    pub tx_buffers: u16,
    /// RX buffer pages (the platform posts the whole ring, 256, when its heap affords them).
    pub rx_buffers: u16,
    /// What netfront asks for (the platform asks for both).
    pub features: Features,
    /// Socket options for the stack.
    pub options: SocketOptions,
}

impl NodeConfig {
    /// Node `index` (from 0): MAC `02:00:00:00:00:<index + 1>`, `ip=10.0.0.<index + 1>/24 slaac=off`, MTU 1500,
    /// 128 TX and 256 RX buffers, scatter-gather and checksum offload, default socket options: the platform's setup.
    pub fn new(index: u8) -> NodeConfig {
        NodeConfig {
            name: format!("node{index}"),
            mac: [0x02, 0, 0, 0, 0, index + 1],
            cmdline: format!("ip=10.0.0.{}/24 slaac=off", u16::from(index) + 1),
            mtu: 1500,
            tx_buffers: 128,
            rx_buffers: 256,
            features: Features::SG,
            options: SocketOptions::default(),
        }
    }

    /// The stack configuration from [`NodeConfig::cmdline`].
    pub fn net_config(&self) -> NetConfig {
        let line = self.cmdline.clone();
        NetConfig::from_lookup(|k| {
            line.split_whitespace().filter_map(|w| w.split_once('=')).find(|(key, _)| *key == k).map(|(_, v)| v)
        })
        .unwrap_or_else(|e| panic!("{}: bad command line {:?}: {e}", self.name, self.cmdline))
    }
}

/// One node and the state of its "platform" loop.
pub struct Node {
    /// From the config.
    pub name: String,
    /// Its stack.
    pub net: Net,
    /// Its static IPv4 address, if it has one.
    pub ipv4: Option<Ipv4Addr>,
    /// The stack's next deadline (ms).
    pub(crate) deadline_ms: Option<u64>,
    /// The guest does not run (no polls) before this time: a busy or descheduled vCPU.
    pub(crate) stalled_until_us: u64,
    /// Stack polls so far.
    pub polls: u64,
}

impl Node {
    /// Builds the node and its backend: pages granted, netfront created, its RX buffers posted and the backend
    /// connected (what `netfront::connect` does over xenstore), then the stack on top.
    pub(crate) fn new(cfg: &NodeConfig, seed: u64, now_ms: u64) -> (Node, Netback) {
        let grants = Grants::default();
        let buffers = HeapBuffers::new(&grants, cfg.tx_buffers, cfg.rx_buffers);
        let kick = Kick::default();
        let (tx_page, rx_page) = (page(), page());
        let mut driver =
            Netfront::new(HeapRing(tx_page.clone()), HeapRing(rx_page.clone()), buffers, kick.clone(), cfg.features);
        let backend = Netback::attach(tx_page, rx_page, grants, kick);
        driver.post_rx_buffers();
        driver.backend_connected();
        let vif = Vif { id: 0, mac: cfg.mac, mtu: cfg.mtu, driver };
        let config = cfg.net_config();
        let mut stack = Stack::new(vif, &config, seed, now_ms)
            .unwrap_or_else(|e| panic!("{}: the stack refused its configuration: {e}", cfg.name));
        stack.set_socket_options(cfg.options);
        let ipv4 = stack.ipv4_address().map(|c| c.address());
        let node = Node {
            name: cfg.name.clone(),
            net: NetHandle::new(stack),
            ipv4,
            deadline_ms: Some(now_ms),
            stalled_until_us: 0,
            polls: 0,
        };
        (node, backend)
    }

    /// Its IPv4 address as an `IpAddr`.
    ///
    /// # Panics
    /// If it has none.
    pub fn ip(&self) -> IpAddr {
        IpAddr::V4(self.ipv4.unwrap_or_else(|| panic!("{} has no static IPv4 address", self.name)))
    }
}

/// Two new ring pages, as the platform would grant for a reconnect.
pub(crate) fn ring_pages() -> (Page, Page) {
    (page(), page())
}
