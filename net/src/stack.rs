//! [`Stack`]: the smoltcp interface, its sockets, the device, DHCPv4 and SLAAC, driven by [`Stack::poll`].

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::task::Waker;

use smoltcp::iface::{Config, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, HardwareAddress,
    IpAddress, IpCidr, IpEndpoint, IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv6Cidr, Ipv6Packet, TcpPacket, IPV4_HEADER_LEN,
    TCP_HEADER_LEN,
};

use crate::config::{is_link_local, link_local_address, Ipv4Config, NetConfig};
use crate::device::{Adapter, DeviceCounters, NetDevice};
use crate::slaac::{self, Slaac};
use crate::{NetError, TcpState};

/// Frames taken from the device in one [`Stack::poll`] before it returns to let tasks run (a flood cannot
/// monopolise the CPU; the deadline it returns is "now").
pub const MAX_FRAMES_PER_POLL: usize = 256;

/// Ports handed out for `connect` and `UdpSocket::bind(_, 0)`: the IANA dynamic range (RFC 6335).
pub const EPHEMERAL_PORTS: core::ops::RangeInclusive<u16> = 49152..=65535;

/// Buffer sizes and timeouts given to sockets created from now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    /// TCP receive buffer per connection, bytes (the advertised window; above 64 KiB uses window scaling).
    pub tcp_rx_buffer: usize,
    /// TCP send buffer per connection, bytes: `write` waits while it is full.
    pub tcp_tx_buffer: usize,
    /// Abort a connection when the peer has been silent this long while we wait for it (data or SYN
    /// unacknowledged, or keep-alives unanswered). `None`: retransmit forever.
    pub tcp_timeout_ms: Option<u64>,
    /// Send a keep-alive after this much idle time, so a vanished peer is noticed through `tcp_timeout_ms`.
    pub tcp_keep_alive_ms: Option<u64>,
    /// How long `TcpStream::close` (and a dropped stream's orderly shutdown) may go without progress (queued
    /// data acknowledged, a FIN exchanged) before the connection is reset instead.
    pub tcp_close_timeout_ms: u64,
    /// Send small segments at once instead of waiting for outstanding data to be acknowledged (Nagle off).
    pub tcp_nodelay: bool,
    /// Most bytes of TCP socket buffers (receive + send, every connection and listener spare together) the
    /// stack holds at once. A new socket that would go past it first evicts connections nobody holds any more
    /// that wait in TIME-WAIT (as lwIP does under memory pressure; a FIN retransmitted to one of them is then
    /// answered with a RST instead of an ACK, which ends the peer's side just the same), and is refused if that
    /// is not enough: a listener keeps no spare socket, so SYNs are answered with a RST until memory frees up,
    /// and `TcpStream::connect` fails with [`NetError::NoMemory`]. Either way a flood of connections is turned
    /// away instead of exhausting the heap. `None`: no limit (the platform sets one from the heap's size).
    pub tcp_memory_limit: Option<usize>,
    /// UDP receive and send buffer per socket, bytes of payload.
    pub udp_buffer: usize,
    /// UDP datagrams per buffer.
    pub udp_datagrams: usize,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            tcp_rx_buffer: 64 * 1024,
            tcp_tx_buffer: 64 * 1024,
            tcp_timeout_ms: Some(90_000),
            tcp_keep_alive_ms: Some(30_000),
            tcp_close_timeout_ms: 30_000,
            tcp_nodelay: true,
            tcp_memory_limit: None,
            udp_buffer: 64 * 1024,
            udp_datagrams: 64,
        }
    }
}

/// Counts and counters for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// TCP sockets by state (listening sockets included).
    pub tcp: TcpStateCounts,
    /// TCP listeners.
    pub tcp_listeners: usize,
    /// UDP sockets.
    pub udp_sockets: usize,
    /// Device frame and byte counters.
    pub device: DeviceCounters,
    /// DHCPv4 leases applied (first lease and every change).
    pub dhcp_leases: u64,
    /// DHCPv4 leases lost (expired, or the server said no).
    pub dhcp_losses: u64,
    /// TCP connections that ended in an error, by cause: the only trace of the errors of streams nobody reads
    /// any more (dropped, closing in the background).
    pub tcp_errors: TcpErrorCounts,
    /// Duplicate ACKs absorbed while only a FIN of ours was unacknowledged: passed on, they would make smoltcp
    /// 0.14 stop retransmitting that FIN (a workaround, see `Stack::poll`'s ingress).
    pub fin_dup_acks_absorbed: u64,
    /// Bytes of TCP socket buffers held now (see [`SocketOptions::tcp_memory_limit`]).
    pub tcp_buffer_bytes: u64,
    /// Connections in TIME-WAIT freed early to make room under [`SocketOptions::tcp_memory_limit`].
    pub tcp_time_wait_evicted: u64,
    /// Sockets not created because of [`SocketOptions::tcp_memory_limit`]: listener spares not kept (each
    /// time a listener had to go without one) and connects refused.
    pub tcp_refused_no_memory: u64,
}

/// TCP connections that ended in an error, each counted once, by the error it ended with. Connections we
/// aborted ourselves are not counted; a close that had to be turned into a reset after
/// [`SocketOptions::tcp_close_timeout_ms`] is, as `timed_out`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpErrorCounts {
    /// [`NetError::Reset`]: the peer sent a RST.
    pub reset: u64,
    /// [`NetError::Refused`]: our SYN was answered with a RST.
    pub refused: u64,
    /// [`NetError::TimedOut`]: the peer stopped answering, or a close did not finish in time.
    pub timed_out: u64,
    /// [`NetError::AddressLost`]: the local address went away.
    pub address_lost: u64,
}

impl TcpErrorCounts {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.reset + self.refused + self.timed_out + self.address_lost
    }

    fn count(&mut self, e: NetError) {
        match e {
            NetError::Reset => self.reset += 1,
            NetError::Refused => self.refused += 1,
            NetError::TimedOut => self.timed_out += 1,
            NetError::AddressLost => self.address_lost += 1,
            _ => {}
        }
    }
}

/// Number of TCP sockets in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpStateCounts {
    /// Waiting for a connection (one per listener plus spares).
    pub listen: usize,
    /// `connect` sent a SYN.
    pub syn_sent: usize,
    /// A SYN arrived, our SYN-ACK is out.
    pub syn_received: usize,
    /// Open both ways.
    pub established: usize,
    /// We closed; our FIN is not acknowledged yet.
    pub fin_wait_1: usize,
    /// We closed and the peer acknowledged; it has not closed yet.
    pub fin_wait_2: usize,
    /// The peer closed; we have not.
    pub close_wait: usize,
    /// Both closed at once.
    pub closing: usize,
    /// The peer closed, then we did; waiting for the last ACK.
    pub last_ack: usize,
    /// Closed both ways, lingering for stray segments.
    pub time_wait: usize,
    /// Closed, not yet freed.
    pub closed: usize,
}

impl TcpStateCounts {
    /// The count for `state`.
    pub fn get(&self, state: TcpState) -> usize {
        match state {
            TcpState::Listen => self.listen,
            TcpState::SynSent => self.syn_sent,
            TcpState::SynReceived => self.syn_received,
            TcpState::Established => self.established,
            TcpState::FinWait1 => self.fin_wait_1,
            TcpState::FinWait2 => self.fin_wait_2,
            TcpState::CloseWait => self.close_wait,
            TcpState::Closing => self.closing,
            TcpState::LastAck => self.last_ack,
            TcpState::TimeWait => self.time_wait,
            TcpState::Closed => self.closed,
        }
    }

    fn slot(&mut self, state: TcpState) -> &mut usize {
        match state {
            TcpState::Listen => &mut self.listen,
            TcpState::SynSent => &mut self.syn_sent,
            TcpState::SynReceived => &mut self.syn_received,
            TcpState::Established => &mut self.established,
            TcpState::FinWait1 => &mut self.fin_wait_1,
            TcpState::FinWait2 => &mut self.fin_wait_2,
            TcpState::CloseWait => &mut self.close_wait,
            TcpState::Closing => &mut self.closing,
            TcpState::LastAck => &mut self.last_ack,
            TcpState::TimeWait => &mut self.time_wait,
            TcpState::Closed => &mut self.closed,
        }
    }

    /// All sockets.
    pub fn total(&self) -> usize {
        use TcpState::*;
        [Listen, SynSent, SynReceived, Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait, Closed]
            .into_iter()
            .map(|s| self.get(s))
            .sum()
    }
}

/// Who holds a TCP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A `TcpStream`.
    Stream,
    /// Listener `id`, until `accept` hands it out.
    Listener(u64),
    /// Nobody: the stream was dropped; freed once closed.
    Orphan,
}

/// What the stack knows about a TCP socket beyond smoltcp's state.
#[derive(Debug)]
pub(crate) struct TcpRecord {
    pub(crate) owner: Owner,
    /// State at the last observation, to see transitions.
    pub(crate) last_state: TcpState,
    /// Local address once known (to tell a lost address from a timeout).
    pub(crate) local: Option<IpAddress>,
    /// Why the connection ended abnormally, once it has.
    pub(crate) error: Option<NetError>,
    /// We aborted it (or the close deadline did): not the peer's doing.
    pub(crate) aborted: bool,
    /// `close` was called or the stream dropped: `deadline_ms` applies.
    pub(crate) closing: bool,
    /// When a closing connection gets reset; set on the first poll after `closing` (so a stale clock cannot
    /// make it fire early).
    pub(crate) deadline_ms: Option<u64>,
    /// An orphan in CLOSED already waited one poll for its RST to go out.
    pub(crate) rst_grace_used: bool,
    /// The last pure ACK (number, window) from the peer while only our FIN was outstanding (see
    /// `Stack::is_dup_ack_for_a_lone_fin`).
    pub(crate) fin_peer_ack: Option<(u32, u16)>,
    /// While closing: the send queue and state at the last progress (see `Stack::expire_close_deadlines`).
    pub(crate) close_progress: Option<(usize, TcpState)>,
    /// [`SocketOptions::tcp_timeout_ms`] when the socket was made; armed only while we wait for the peer (see
    /// `Stack::arm_timeouts`).
    pub(crate) timeout: Option<smoltcp::time::Duration>,
}

impl TcpRecord {
    pub(crate) fn new(owner: Owner, state: TcpState, options: &SocketOptions) -> Self {
        TcpRecord {
            timeout: options.tcp_timeout_ms.map(smoltcp::time::Duration::from_millis),
            owner,
            last_state: state,
            local: None,
            error: None,
            aborted: false,
            closing: false,
            deadline_ms: None,
            rst_grace_used: false,
            fin_peer_ack: None,
            close_progress: None,
        }
    }
}

/// A TCP listener: one spare socket in LISTEN, plus connections not yet accepted.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) port: u16,
    pub(crate) backlog: usize,
    /// The socket waiting for the next SYN.
    pub(crate) spare: Option<SocketHandle>,
    /// Sockets that took a SYN, in arrival order, until `accept` takes them.
    pub(crate) pending: Vec<SocketHandle>,
    pub(crate) waker: Option<Waker>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Ingress,
    Egress,
}

/// The network stack of one interface: smoltcp's [`Interface`] and [`SocketSet`], the device behind one
/// adapter, the DHCPv4 client, SLAAC, and the bookkeeping that turns smoltcp's socket states into errors.
///
/// Usually shared through a [`crate::NetHandle`]; [`Stack::poll`] is the only thing that moves frames.
pub struct Stack<D: NetDevice> {
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) device: Adapter<D>,
    pub(crate) options: SocketOptions,
    pub(crate) tcp: BTreeMap<SocketHandle, TcpRecord>,
    pub(crate) listeners: BTreeMap<u64, Listener>,
    next_listener: u64,
    /// UDP sockets; `Some` when dropped with datagrams still queued: freed once they are sent, or at the
    /// deadline inside (close timeout, set on the first poll after the drop) if they cannot be.
    pub(crate) udp: BTreeMap<SocketHandle, Option<Option<u64>>>,
    /// ICMP sockets and their echo identifiers.
    pub(crate) icmp: Vec<(SocketHandle, u16)>,
    next_port: u16,
    now_ms: u64,
    /// Poll again at once (frame budget used up, addresses changed).
    repoll: bool,
    config: NetConfig,
    mac: EthernetAddress,
    dhcp: Option<SocketHandle>,
    dns_servers: Vec<Ipv4Addr>,
    slaac: Option<Slaac>,
    /// The IPv4 address last announced with a gratuitous ARP.
    announced_ipv4: Option<Ipv4Addr>,
    /// IPv6 addresses still to announce with an unsolicited neighbour advertisement ([`Stack::link_moved`]).
    unannounced_ipv6: Vec<Ipv6Addr>,
    address_waiters: Vec<Waker>,
    dhcp_leases: u64,
    dhcp_losses: u64,
    tcp_errors: TcpErrorCounts,
    fin_dup_acks_absorbed: u64,
    tcp_time_wait_evicted: u64,
    tcp_refused_no_memory: u64,
}

impl<D: NetDevice> Stack<D> {
    /// Builds the interface: link-local IPv6 always, the static addresses and routers of `config`, a DHCPv4
    /// client when `config.ipv4` is [`Ipv4Config::Dhcp`], SLAAC when `config.slaac`.
    ///
    /// `seed` randomises TCP initial sequence numbers, DHCP transaction ids and the first ephemeral port: give
    /// something that differs per boot (the TSC, the wall clock). `now_ms` is the runtime's monotonic clock.
    pub fn new(device: D, config: &NetConfig, seed: u64, now_ms: u64) -> Result<Self, NetError> {
        let mac = EthernetAddress(device.mac());
        if !mac.is_unicast() {
            return Err(NetError::InvalidMac);
        }
        let mut adapter = Adapter::new(device, config.slaac);
        let mut iface_config = Config::new(HardwareAddress::Ethernet(mac));
        iface_config.random_seed = seed;
        let mut iface = Interface::new(iface_config, &mut adapter, Instant::from_millis(now_ms as i64));
        let link_local = Ipv6Cidr::new(link_local_address(mac.0), 64);
        iface.update_ip_addrs(|addrs| {
            // Capacity is 4 (`iface-max-addr-count-4`): IPv4, link-local, static IPv6, SLAAC.
            let _ = addrs.push(IpCidr::Ipv6(link_local));
            if let Ipv4Config::Static { address, .. } = config.ipv4 {
                let _ = addrs.insert(0, IpCidr::Ipv4(address));
            }
            if let Some(address) = config.ipv6_address {
                let _ = addrs.push(IpCidr::Ipv6(address));
            }
        });
        if let Ipv4Config::Static { gateway: Some(gw), .. } = config.ipv4 {
            let _ = iface.routes_mut().add_default_ipv4_route(gw);
        }
        if let Some(gw) = config.ipv6_gateway {
            let _ = iface.routes_mut().add_default_ipv6_route(gw);
        }
        let mut sockets = SocketSet::new(Vec::new());
        let dhcp = (config.ipv4 == Ipv4Config::Dhcp).then(|| sockets.add(dhcpv4::Socket::new()));
        let span = (EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start()) as u64 + 1;
        log::info!(
            "net: {mac} link-local {} ipv4 {} ipv6 {}{}",
            link_local.address(),
            match config.ipv4 {
                Ipv4Config::Static { address, .. } => alloc::format!("{address}"),
                Ipv4Config::Dhcp => "dhcp".into(),
                Ipv4Config::Off => "off".into(),
            },
            config.ipv6_address.map_or_else(|| "-".into(), |a| alloc::format!("{a}")),
            if config.slaac { " +slaac" } else { "" },
        );
        let mut stack = Stack {
            iface,
            sockets,
            device: adapter,
            options: SocketOptions::default(),
            tcp: BTreeMap::new(),
            listeners: BTreeMap::new(),
            next_listener: 0,
            udp: BTreeMap::new(),
            icmp: Vec::new(),
            next_port: EPHEMERAL_PORTS.start() + (seed % span) as u16,
            now_ms,
            repoll: false,
            config: *config,
            mac,
            dhcp,
            dns_servers: Vec::new(),
            slaac: config.slaac.then(|| Slaac::new(mac.0)),
            announced_ipv4: None,
            unannounced_ipv6: Vec::new(),
            address_waiters: Vec::new(),
            dhcp_leases: 0,
            dhcp_losses: 0,
            tcp_errors: TcpErrorCounts::default(),
            fin_dup_acks_absorbed: 0,
            tcp_time_wait_evicted: 0,
            tcp_refused_no_memory: 0,
        };
        // The defaults too must fit the device (`set_socket_options`).
        stack.set_socket_options(SocketOptions::default());
        Ok(stack)
    }

    /// Moves frames: takes received frames from the device (up to [`MAX_FRAMES_PER_POLL`]), runs timers,
    /// DHCP and SLAAC, and sends whatever the sockets have queued while the device has room.
    ///
    /// Returns when the stack next needs a poll if nothing else happens (milliseconds on the same clock as
    /// `now_ms`; `<= now_ms` means at once: the frame budget or the device's receive budget
    /// ([`NetDevice::rx_pending`]) was used up, so the caller should let timers and other tasks run and poll
    /// again), or `None` when only a device event or a socket operation can give it work. Wakers of sockets whose state changed are woken during the call.
    pub fn poll(&mut self, now_ms: u64) -> Option<u64> {
        let now_ms = now_ms.max(self.now_ms);
        self.now_ms = now_ms;
        let now = Instant::from_millis(now_ms as i64);
        self.repoll = false;

        self.device.dev.reap();
        self.device.start_poll();
        self.iface.poll_maintenance(now);
        let mut budget = MAX_FRAMES_PER_POLL;
        loop {
            if let Some(frame) = self.device.next_frame() {
                if self.is_dup_ack_for_a_lone_fin(&frame) {
                    self.fin_dup_acks_absorbed += 1;
                    self.device.counters.rx_frames += 1;
                    self.device.counters.rx_bytes += frame.len() as u64;
                    budget -= 1;
                    if budget == 0 {
                        self.repoll = true;
                        break;
                    }
                    continue;
                }
                self.device.hold(frame);
            }
            if self.iface.poll_ingress_single(now, &mut self.device, &mut self.sockets) == PollIngressSingleResult::None
            {
                break;
            }
            self.after_frame();
            budget -= 1;
            if budget == 0 {
                self.repoll = true;
                break;
            }
        }
        self.observe_tcp(Phase::Ingress);
        self.poll_dhcp();
        self.announce_ipv4();
        self.announce_ipv6();
        self.poll_slaac(now_ms);
        self.expire_close_deadlines(now_ms);
        self.arm_timeouts();
        while self.iface.poll_egress(now, &mut self.device, &mut self.sockets) == PollResult::SocketStateChanged {}
        self.observe_tcp(Phase::Egress);
        let ids: Vec<u64> = self.listeners.keys().copied().collect();
        for id in ids {
            self.maintain_listener(id);
        }
        self.reap();
        self.next_deadline(now_ms)
    }

    fn next_deadline(&mut self, now_ms: u64) -> Option<u64> {
        // The device stopped on its receive budget: more may be waiting, with no event to say so. (While it cannot
        // transmit, received frames wait for its TX completion event anyway.)
        let rx_pending = self.device.dev.rx_pending() && self.device.dev.can_transmit();
        if self.repoll || rx_pending {
            return Some(now_ms);
        }
        let now = Instant::from_millis(now_ms as i64);
        let iface = self.iface.poll_at(now, &self.sockets).map(|t| t.total_millis().max(0) as u64);
        // "At once" means frames to send; with the device full they cannot go until it reclaims room, and the
        // device's event (netfront: a TX completion) will bring the next poll. Asking for one now would spin.
        let blocked = !self.device.dev.can_transmit();
        let iface = iface.filter(|&t| !(blocked && t <= now_ms));
        let closing = self.tcp.values().filter_map(|r| r.deadline_ms).min();
        let slaac = self.slaac.as_ref().and_then(|s| s.poll_at());
        [iface, closing, slaac].into_iter().flatten().min().map(|t| t.max(now_ms))
    }

    /// Work after each received frame: router advertisements for SLAAC, and a fresh spare socket for any
    /// listener whose spare just took a SYN (so a burst of SYNs finds one socket each).
    fn after_frame(&mut self) {
        if !self.device.router_adverts.is_empty() {
            let adverts = core::mem::take(&mut self.device.router_adverts);
            if let Some(slaac) = self.slaac.as_mut() {
                let mut changed = false;
                for ra in &adverts {
                    changed |= slaac.on_advert(ra, self.now_ms);
                }
                if changed {
                    self.apply_slaac();
                }
            }
        }
        let busy: Vec<u64> = self
            .listeners
            .iter()
            .filter(|(_, l)| l.spare.is_none_or(|h| self.sockets.get::<tcp::Socket>(h).state() != TcpState::Listen))
            .map(|(id, _)| *id)
            .collect();
        for id in busy {
            self.maintain_listener(id);
        }
    }

    /// Works around a smoltcp 0.14 bug that leaves a connection unable to finish closing. When only our FIN is
    /// unacknowledged (FIN-WAIT-1, CLOSING or LAST-ACK with an empty send buffer), smoltcp still counts duplicate
    /// ACKs; at the third it starts a "fast retransmit" that has no data to send and, on the way, turns the
    /// retransmission timer off, so the FIN is never sent again and the close times out and resets the connection
    /// (found by vnetif: without congestion control, one 1 MiB transfer in eight at 1% loss ended so, the FIN
    /// ignored because it came before a retransmission filled a hole, then late duplicates of the re-sent window;
    /// rarer with Reno, but any late duplicates do it). A pure ACK repeating, for such a connection, the
    /// ACK number and window of the one before carries nothing smoltcp needs (no data, no window change, no ACK
    /// progress, and there is nothing to fast-retransmit), so it is absorbed here; the FIN's own retransmission
    /// timer then does its job. Remove once smoltcp keeps the timer (or ignores duplicate ACKs with an empty send
    /// buffer).
    fn is_dup_ack_for_a_lone_fin(&mut self, frame: &[u8]) -> bool {
        let Some((from, dst_port, ack, window)) = pure_tcp_ack(frame) else { return false };
        for (&h, rec) in self.tcp.iter_mut() {
            let s = self.sockets.get::<tcp::Socket>(h);
            if !matches!(s.state(), TcpState::FinWait1 | TcpState::Closing | TcpState::LastAck)
                || s.send_queue() != 0
                || s.local_endpoint().is_none_or(|e| e.port != dst_port)
                || s.remote_endpoint() != Some(from)
            {
                continue;
            }
            let repeat = rec.fin_peer_ack == Some((ack, window));
            rec.fin_peer_ack = Some((ack, window));
            return repeat;
        }
        false
    }

    /// Records state transitions of TCP sockets: why connections ended (a RST arrives on ingress; timeouts and
    /// lost addresses happen on egress), and wakes acceptors when a pending connection completes.
    fn observe_tcp(&mut self, phase: Phase) {
        for (&h, rec) in self.tcp.iter_mut() {
            let s = self.sockets.get::<tcp::Socket>(h);
            let state = s.state();
            if let Some(ep) = s.local_endpoint() {
                rec.local = Some(ep.addr);
            }
            if state == rec.last_state {
                continue;
            }
            let prev = core::mem::replace(&mut rec.last_state, state);
            if let Owner::Listener(id) = rec.owner {
                if matches!(state, TcpState::Established | TcpState::CloseWait) {
                    if let Some(w) = self.listeners.get_mut(&id).and_then(|l| l.waker.take()) {
                        w.wake();
                    }
                }
                continue;
            }
            if state != TcpState::Closed || rec.error.is_some() || rec.aborted {
                continue;
            }
            rec.error = match (phase, prev) {
                (_, TcpState::TimeWait | TcpState::LastAck | TcpState::Closing) => None,
                (Phase::Ingress, TcpState::SynSent) => Some(NetError::Refused),
                (Phase::Ingress, _) => Some(NetError::Reset),
                (Phase::Egress, _) if rec.local.is_some_and(|a| !self.iface.has_ip_addr(a)) => {
                    Some(NetError::AddressLost)
                }
                (Phase::Egress, _) => Some(NetError::TimedOut),
            };
            if let Some(e) = rec.error {
                self.tcp_errors.count(e);
                let peer = s.remote_endpoint();
                log::debug!("net: tcp {:?} {prev} -> CLOSED: {e} (peer {peer:?})", h);
            }
        }
    }

    /// Arms each connection's timeout only while we wait for the peer: a handshake, data unacknowledged, or
    /// keep-alives running. smoltcp 0.14 aborts a connection once its timeout passes without a segment from the
    /// peer even when nothing is outstanding (contrary to its documentation), so with keep-alive off an idle
    /// connection was reset after `tcp_timeout_ms` (found by vnetif). smoltcp restarts the count when data is
    /// queued on an empty send buffer, so arming it then is safe; it does not when a FIN is queued, so a FIN after
    /// an idle spell is left to the close deadline ([`SocketOptions::tcp_close_timeout_ms`]), which every close
    /// starts anyway.
    fn arm_timeouts(&mut self) {
        for (&h, rec) in self.tcp.iter() {
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            let waiting = s.keep_alive().is_some()
                || s.send_queue() > 0
                || matches!(s.state(), TcpState::SynSent | TcpState::SynReceived);
            let timeout = if waiting { rec.timeout } else { None };
            if s.timeout() != timeout {
                s.set_timeout(timeout);
            }
        }
    }

    /// Starts (and restarts, on progress) the close deadline of sockets being closed, and resets those past it.
    fn expire_close_deadlines(&mut self, now_ms: u64) {
        let timeout = self.options.tcp_close_timeout_ms;
        for (&h, rec) in self.tcp.iter_mut() {
            if !rec.closing {
                continue;
            }
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            // The deadline runs from the last progress: data queued before the close still draining to a peer
            // that acknowledges it (slowly, over a slow or lossy link) is not cut off with a reset, only a close
            // that stalls is (found by vnetif: the 30 s ran out while data was still flowing).
            let progress = (s.send_queue(), s.state());
            if rec.close_progress != Some(progress) {
                rec.close_progress = Some(progress);
                rec.deadline_ms = Some(now_ms + timeout);
            }
            let deadline = *rec.deadline_ms.get_or_insert(now_ms + timeout);
            // TIME-WAIT ends by itself (smoltcp's timer); resetting it would only confuse the peer.
            if now_ms >= deadline && !matches!(s.state(), TcpState::Closed | TcpState::TimeWait) {
                log::debug!("net: tcp {:?} close did not finish in {timeout} ms (state {}); resetting", h, s.state());
                s.abort();
                rec.aborted = true;
                if rec.error.is_none() {
                    rec.error = Some(NetError::TimedOut);
                    self.tcp_errors.count(NetError::TimedOut);
                }
            }
            if matches!(s.state(), TcpState::Closed | TcpState::TimeWait) {
                rec.closing = false;
                rec.deadline_ms = None;
                rec.close_progress = None;
            }
        }
    }

    /// Frees sockets nobody holds any more once they are done.
    fn reap(&mut self) {
        let mut done = Vec::new();
        for (&h, rec) in self.tcp.iter_mut().filter(|(_, r)| r.owner == Owner::Orphan) {
            let s = self.sockets.get::<tcp::Socket>(h);
            if s.state() != TcpState::Closed {
                continue;
            }
            // An aborted socket keeps its remote endpoint until its RST is out: give it one more poll (the
            // neighbour may be unknown), then free it anyway.
            if s.remote_endpoint().is_none() || rec.rst_grace_used {
                done.push(h);
            } else {
                rec.rst_grace_used = true;
            }
        }
        for h in done {
            self.free_tcp(h);
        }
        let (now_ms, timeout) = (self.now_ms, self.options.tcp_close_timeout_ms);
        let mut gone = Vec::new();
        for (&h, orphan) in self.udp.iter_mut() {
            let Some(deadline) = orphan else { continue };
            let deadline = *deadline.get_or_insert(now_ms + timeout);
            if self.sockets.get::<udp::Socket>(h).send_queue() == 0 || now_ms >= deadline {
                gone.push(h);
            }
        }
        for h in gone {
            self.udp.remove(&h);
            self.sockets.remove(h);
        }
    }

    /// Bytes of buffers held by every TCP socket.
    fn tcp_buffer_bytes(&self) -> usize {
        self.tcp
            .keys()
            .map(|&h| {
                let s = self.sockets.get::<tcp::Socket>(h);
                s.recv_capacity() + s.send_capacity()
            })
            .sum()
    }

    /// Whether one more TCP socket with the current options fits under [`SocketOptions::tcp_memory_limit`],
    /// after evicting orphaned TIME-WAIT connections if that is what it takes. Counts a refusal.
    pub(crate) fn room_for_tcp_socket(&mut self) -> bool {
        let Some(limit) = self.options.tcp_memory_limit else { return true };
        let need = self.options.tcp_rx_buffer + self.options.tcp_tx_buffer;
        let mut held = self.tcp_buffer_bytes();
        if held + need > limit {
            let evictable: Vec<SocketHandle> = self
                .tcp
                .iter()
                .filter(|(&h, r)| {
                    r.owner == Owner::Orphan && self.sockets.get::<tcp::Socket>(h).state() == TcpState::TimeWait
                })
                .map(|(&h, _)| h)
                .collect();
            for h in evictable {
                if held + need <= limit {
                    break;
                }
                let s = self.sockets.get::<tcp::Socket>(h);
                held -= s.recv_capacity() + s.send_capacity();
                self.free_tcp(h);
                self.tcp_time_wait_evicted += 1;
            }
        }
        let room = held + need <= limit;
        if !room {
            self.tcp_refused_no_memory += 1;
        }
        room
    }

    pub(crate) fn free_tcp(&mut self, h: SocketHandle) {
        self.tcp.remove(&h);
        self.sockets.remove(h);
    }

    fn poll_dhcp(&mut self) {
        let Some(h) = self.dhcp else { return };
        let lease = match self.sockets.get_mut::<dhcpv4::Socket>(h).poll() {
            None => return,
            Some(dhcpv4::Event::Configured(c)) => Some((c.address, c.router, c.dns_servers.iter().copied().collect())),
            Some(dhcpv4::Event::Deconfigured) => None,
        };
        match lease {
            Some((address, router, dns)) => self.apply_lease(address, router, dns),
            None => self.drop_lease(),
        }
    }

    fn apply_lease(&mut self, address: Ipv4Cidr, router: Option<Ipv4Addr>, dns: Vec<Ipv4Addr>) {
        log::info!("net: DHCP lease {address}, router {router:?}, DNS {dns:?}");
        self.set_ipv4(Some(address));
        match router {
            Some(gw) => {
                let _ = self.iface.routes_mut().add_default_ipv4_route(gw);
            }
            None => {
                self.iface.routes_mut().remove_default_ipv4_route();
            }
        }
        self.dns_servers = dns;
        self.dhcp_leases += 1;
    }

    fn drop_lease(&mut self) {
        if self.iface.ipv4_addr().is_some() {
            log::warn!("net: DHCP lease on {:?} lost; IPv4 unconfigured until a new lease", self.iface.ipv4_addr());
            self.dhcp_losses += 1;
        }
        self.set_ipv4(None);
        self.iface.routes_mut().remove_default_ipv4_route();
        self.dns_servers.clear();
    }

    fn set_ipv4(&mut self, address: Option<Ipv4Cidr>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.retain(|a| !matches!(a, IpCidr::Ipv4(_)));
            if let Some(a) = address {
                let _ = addrs.insert(0, IpCidr::Ipv4(a));
            }
        });
        self.address_changed();
    }

    fn address_changed(&mut self) {
        // Multicast joins (MLD) for new addresses go out on the next egress.
        self.repoll = true;
        for w in self.address_waiters.drain(..) {
            w.wake();
        }
    }

    /// Announces a new IPv4 address (static, or a DHCP lease) with one gratuitous ARP, as Linux does when an
    /// address comes up: a peer that already tried to reach it (its ARP entry incomplete or failed) learns our MAC
    /// at once instead of on its next ARP retry, a second later (issue 12's boot breakdown: dom0's first HTTP
    /// request waited for that retry); and a peer holding an old MAC for the address (a restarted guest) updates it.
    fn announce_ipv4(&mut self) {
        let Some(addr) = self.ipv4_address().map(|c| c.address()) else { return };
        if self.announced_ipv4 == Some(addr) {
            return;
        }
        if self.device.send_raw(&gratuitous_arp(self.mac, addr)) {
            self.announced_ipv4 = Some(addr);
        } else {
            self.repoll = true;
        }
    }

    /// Sends the unsolicited neighbour advertisements [`Stack::link_moved`] asked for, as the device takes them.
    fn announce_ipv6(&mut self) {
        while let Some(&target) = self.unannounced_ipv6.last() {
            if !self.device.send_raw(&slaac::unsolicited_neighbor_advert(self.mac, target)) {
                self.repoll = true;
                return;
            }
            self.unannounced_ipv6.pop();
        }
    }

    /// The interface is on another link now, with the same addresses: the domain migrated, or was restored on
    /// another host (its new vif is a new port on the bridge). At the next poll the stack announces every address
    /// it has, as Linux's `netdev_notify_peers` does, so that the bridge and the neighbours learn where the
    /// guest is without waiting for their caches to expire: a gratuitous ARP for its IPv4 address and an
    /// unsolicited neighbour advertisement (override) for each IPv6 address; and SLAAC solicits a router again.
    pub fn link_moved(&mut self) {
        self.announced_ipv4 = None;
        self.unannounced_ipv6 = self.ipv6_addresses().iter().map(|c| c.address()).collect();
        if let Some(slaac) = self.slaac.as_mut() {
            slaac.solicit_again();
        }
        self.repoll = true;
    }

    fn poll_slaac(&mut self, now_ms: u64) {
        let Some(slaac) = self.slaac.as_mut() else { return };
        if slaac.expire(now_ms) {
            self.apply_slaac();
        }
        let slaac = self.slaac.as_mut().expect("checked above");
        if slaac.solicitation_due(now_ms) {
            let frame = slaac::router_solicitation(self.mac, link_local_address(self.mac.0));
            if self.device.send_raw(&frame) {
                slaac.solicitation_sent(now_ms);
            } else {
                self.repoll = true;
            }
        }
    }

    /// Brings the interface's SLAAC address and default router in line with [`Slaac`]'s.
    fn apply_slaac(&mut self) {
        let Some(slaac) = self.slaac.as_ref() else { return };
        let wanted = slaac.address().map(|a| a.cidr);
        let router = slaac.router().map(|r| r.address);
        let link_local = link_local_address(self.mac.0);
        let fixed = self.config.ipv6_address;
        let mut full = false;
        self.iface.update_ip_addrs(|addrs| {
            addrs.retain(|a| match a {
                IpCidr::Ipv6(c) => c.address() == link_local || Some(*c) == fixed || Some(*c) == wanted,
                _ => true,
            });
            if let Some(w) = wanted {
                if !addrs.contains(&IpCidr::Ipv6(w)) {
                    full = addrs.push(IpCidr::Ipv6(w)).is_err();
                }
            }
        });
        if full {
            log::warn!("net: no room for SLAAC address {wanted:?}");
        }
        if self.config.ipv6_gateway.is_none() {
            match router {
                Some(r) => {
                    let _ = self.iface.routes_mut().add_default_ipv6_route(r);
                }
                None => {
                    self.iface.routes_mut().remove_default_ipv6_route();
                }
            }
        }
        log::info!("net: SLAAC address {wanted:?}, router {router:?}");
        self.address_changed();
    }

    /// Makes sure listener `id` has a spare socket in LISTEN unless `backlog` connections already wait, and
    /// frees pending connections that died before `accept`.
    pub(crate) fn maintain_listener(&mut self, id: u64) {
        let Some(l) = self.listeners.get_mut(&id) else { return };
        if let Some(h) = l.spare {
            if self.sockets.get::<tcp::Socket>(h).state() != TcpState::Listen {
                l.pending.push(h);
                l.spare = None;
            }
        }
        let mut i = 0;
        while i < l.pending.len() {
            let h = l.pending[i];
            match self.sockets.get::<tcp::Socket>(h).state() {
                // A RST in SYN-RECEIVED puts smoltcp's socket back into LISTEN.
                TcpState::Listen if l.spare.is_none() => {
                    l.spare = Some(h);
                    l.pending.remove(i);
                }
                TcpState::Listen | TcpState::Closed => {
                    l.pending.remove(i);
                    self.tcp.remove(&h);
                    self.sockets.remove(h);
                }
                _ => i += 1,
            }
        }
        if l.spare.is_none() && l.pending.len() < l.backlog {
            // Without room, no spare: SYNs are refused (RST) until connections end. Checked on every poll.
            if !self.room_for_tcp_socket() {
                return;
            }
            let Some(l) = self.listeners.get_mut(&id) else { return };
            let mut s = new_tcp_socket(&self.options);
            // Cannot fail: the socket is new and the port non-zero.
            let _ = s.listen(l.port);
            let h = self.sockets.add(s);
            self.tcp.insert(h, TcpRecord::new(Owner::Listener(id), TcpState::Listen, &self.options));
            l.spare = Some(h);
        }
    }

    pub(crate) fn add_listener(&mut self, port: u16, backlog: usize) -> u64 {
        let id = self.next_listener;
        self.next_listener += 1;
        self.listeners
            .insert(id, Listener { port, backlog: backlog.max(1), spare: None, pending: Vec::new(), waker: None });
        self.maintain_listener(id);
        id
    }

    /// The clock value of the last [`Stack::poll`].
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// A free port from [`EPHEMERAL_PORTS`] for TCP (`tcp`) or UDP.
    pub(crate) fn ephemeral_port(&mut self, tcp: bool) -> Result<u16, NetError> {
        for _ in EPHEMERAL_PORTS {
            let p = self.next_port;
            self.next_port = if p == *EPHEMERAL_PORTS.end() { *EPHEMERAL_PORTS.start() } else { p + 1 };
            let used = if tcp { self.tcp_port_in_use(p) } else { self.udp_port_in_use(p) };
            if !used {
                return Ok(p);
            }
        }
        Err(NetError::PortsExhausted)
    }

    pub(crate) fn tcp_port_in_use(&self, port: u16) -> bool {
        self.listeners.values().any(|l| l.port == port)
            || self.tcp.keys().any(|&h| {
                let s = self.sockets.get::<tcp::Socket>(h);
                // A closed socket with no peer (a dropped listener's spare, waiting to be freed by the next poll)
                // holds no port any more.
                let gone = s.state() == TcpState::Closed && s.remote_endpoint().is_none();
                !gone && (s.local_endpoint().is_some_and(|e| e.port == port) || s.listen_endpoint().port == port)
            })
    }

    pub(crate) fn udp_port_in_use(&self, port: u16) -> bool {
        self.udp.keys().any(|&h| self.sockets.get::<udp::Socket>(h).endpoint().port == port)
    }

    /// Whether the interface can send to `addr`: an address of the same family, and the destination on-link
    /// (inside one of our subnets, or IPv6 link-local) or a default router for its family.
    pub fn has_route(&self, addr: IpAddr) -> bool {
        let on_link = self.iface.ip_addrs().iter().any(|c| c.contains_addr(&addr.into()));
        match addr {
            IpAddr::V4(a) => {
                self.iface.ipv4_addr().is_some()
                    && (on_link || a.is_broadcast() || self.iface.routes().get_default_ipv4_route().is_some())
            }
            IpAddr::V6(a) => {
                on_link
                    || is_link_local(a)
                    || a.is_multicast()
                    || self.iface.routes().get_default_ipv6_route().is_some()
            }
        }
    }

    pub(crate) fn wait_address(&mut self, waker: &Waker) {
        if !self.address_waiters.iter().any(|w| w.will_wake(waker)) {
            self.address_waiters.push(waker.clone());
        }
    }

    /// The interface's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac.0
    }

    /// The IPv4 address and prefix, static or leased.
    pub fn ipv4_address(&self) -> Option<Ipv4Cidr> {
        self.iface.ip_addrs().iter().find_map(|c| match c {
            IpCidr::Ipv4(c) => Some(*c),
            _ => None,
        })
    }

    /// The IPv4 default router.
    pub fn ipv4_gateway(&self) -> Option<Ipv4Addr> {
        match self.iface.routes().get_default_ipv4_route()?.via_router {
            IpAddress::Ipv4(a) => Some(a),
            _ => None,
        }
    }

    /// DNS servers from the DHCP lease.
    pub fn dns_servers(&self) -> &[Ipv4Addr] {
        &self.dns_servers
    }

    /// IPv6 addresses: link-local first, then static and autoconfigured ones.
    pub fn ipv6_addresses(&self) -> Vec<Ipv6Cidr> {
        self.iface
            .ip_addrs()
            .iter()
            .filter_map(|c| match c {
                IpCidr::Ipv6(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// The IPv6 default router (static `gw6=`, else the one learnt from advertisements).
    pub fn ipv6_gateway(&self) -> Option<Ipv6Addr> {
        match self.iface.routes().get_default_ipv6_route()?.via_router {
            IpAddress::Ipv6(a) => Some(a),
            _ => None,
        }
    }

    /// Counts by state and device counters.
    pub fn stats(&self) -> NetStats {
        let mut tcp = TcpStateCounts::default();
        for &h in self.tcp.keys() {
            *tcp.slot(self.sockets.get::<tcp::Socket>(h).state()) += 1;
        }
        NetStats {
            tcp,
            tcp_listeners: self.listeners.len(),
            udp_sockets: self.udp.len(),
            device: self.device.counters,
            dhcp_leases: self.dhcp_leases,
            dhcp_losses: self.dhcp_losses,
            tcp_errors: self.tcp_errors,
            fin_dup_acks_absorbed: self.fin_dup_acks_absorbed,
            tcp_buffer_bytes: self.tcp_buffer_bytes() as u64,
            tcp_time_wait_evicted: self.tcp_time_wait_evicted,
            tcp_refused_no_memory: self.tcp_refused_no_memory,
        }
    }

    /// Options for sockets created from now on.
    pub fn socket_options(&self) -> SocketOptions {
        self.options
    }

    /// Changes the options for sockets created from now on (existing ones keep theirs). A TCP receive buffer
    /// larger than [`Stack::max_tcp_window`] is cut down to it (and logged): a window the device cannot take
    /// in one burst only gets data dropped.
    pub fn set_socket_options(&mut self, options: SocketOptions) {
        let mut options = options;
        if let Some(max) = self.max_tcp_window() {
            if options.tcp_rx_buffer > max {
                log::info!(
                    "net: TCP receive buffer {} bytes cut to {max}: the device takes {} frames at once",
                    options.tcp_rx_buffer,
                    self.device.dev.rx_frames().unwrap_or(0)
                );
                options.tcp_rx_buffer = max;
            }
        }
        self.options = options;
    }

    /// The largest TCP receive window the device can take in one burst: as many full-sized segments (an MTU
    /// less the IPv4 and TCP headers) as it takes frames ([`NetDevice::rx_frames`]); `None` when unbounded.
    pub fn max_tcp_window(&self) -> Option<usize> {
        let frames = self.device.dev.rx_frames()?;
        Some(frames * self.device.dev.mtu().saturating_sub(IPV4_HEADER_LEN + TCP_HEADER_LEN))
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device.dev
    }

    /// The device, mutably (e.g. to feed it from an interrupt-free event handler).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device.dev
    }

    /// The configuration the stack was built with.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }
}

/// The sender, destination port, ACK number and window of a TCP segment that is a pure ACK (no data, no SYN, FIN
/// or RST), over IPv4 or IPv6 (no extension headers).
fn pure_tcp_ack(frame: &[u8]) -> Option<(IpEndpoint, u16, u32, u16)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (src, tcp) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            (IpAddress::Ipv4(ip.src_addr()), TcpPacket::new_checked(ip.payload()).ok()?)
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            (IpAddress::Ipv6(ip.src_addr()), TcpPacket::new_checked(ip.payload()).ok()?)
        }
        _ => return None,
    };
    if !tcp.ack() || tcp.syn() || tcp.fin() || tcp.rst() || !tcp.payload().is_empty() {
        return None;
    }
    Some((IpEndpoint::new(src, tcp.src_port()), tcp.dst_port(), tcp.ack_number().0 as u32, tcp.window_len()))
}

pub(crate) fn new_tcp_socket(o: &SocketOptions) -> tcp::Socket<'static> {
    let rx = tcp::SocketBuffer::new(alloc::vec![0u8; o.tcp_rx_buffer]);
    let tx = tcp::SocketBuffer::new(alloc::vec![0u8; o.tcp_tx_buffer]);
    let mut s = tcp::Socket::new(rx, tx);
    s.set_timeout(o.tcp_timeout_ms.map(smoltcp::time::Duration::from_millis));
    s.set_keep_alive(o.tcp_keep_alive_ms.map(smoltcp::time::Duration::from_millis));
    s.set_nagle_enabled(!o.tcp_nodelay);
    // A lost tail is repaired a few round trips after it went, not after the retransmission timeout (smoltcp
    // patch 9, third_party/README.md).
    s.set_tail_loss_probe(true);
    s
}

/// A gratuitous ARP request for `addr` from `mac` (RFC 5227's announcement: sender and target address both ours,
/// broadcast).
fn gratuitous_arp(mac: EthernetAddress, addr: Ipv4Addr) -> Vec<u8> {
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: addr,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: addr,
    };
    let eth = EthernetRepr { src_addr: mac, dst_addr: EthernetAddress::BROADCAST, ethertype: EthernetProtocol::Arp };
    let mut frame = alloc::vec![0u8; eth.buffer_len() + arp.buffer_len()];
    let mut e = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut e);
    arp.emit(&mut ArpPacket::new_unchecked(e.payload_mut()));
    frame
}
