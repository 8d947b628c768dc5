//! The driver-side trait ([`NetDevice`]) and the one adapter that turns it into a smoltcp [`phy::Device`].
//!
//! As in Hermit, transmit capacity travels in the tokens: the adapter hands smoltcp a token pair only when the
//! driver has room for one more frame, so a reply generated while processing a received frame always has
//! somewhere to go. While the transmit ring is full, received frames stay queued in the driver (receive
//! backpressure) and are processed on the poll after the ring drains.

use crate::wiretrace::{Seen, WireTrace};
use alloc::vec::Vec;
use core::fmt;
use sirocco_boot_logic::trace::{self, Category, Phase};

use core::num::NonZeroUsize;

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;

use crate::slaac::{self, RouterAdvert};

/// Size of an Ethernet header without VLAN tag (destination, source, EtherType).
pub const ETHERNET_HEADER_LEN: usize = 14;

/// A network interface card as a driver sees it: Ethernet frames in, Ethernet frames out.
///
/// Netfront implements this over its rings; the tests implement it over in-memory queues.
pub trait NetDevice {
    /// The interface's MAC address (must be unicast).
    fn mac(&self) -> [u8; 6];
    /// IP MTU: the largest IP packet one frame carries (1500 on a normal Ethernet; no Ethernet header).
    fn mtu(&self) -> usize;
    /// Reclaims whatever the device finished with (netfront: TX completions), so that [`NetDevice::can_transmit`]
    /// is up to date. [`Stack::poll`](crate::Stack::poll) calls it before anything else: the adapter hands out
    /// receive tokens only while the device can transmit, so a device that reclaimed transmit room only on
    /// receive would stall for good once every transmit buffer was in flight (a bulk send from the guest did,
    /// after 128 frames).
    fn reap(&mut self) {}
    /// The next received Ethernet frame, checksums already correct: netfront fills in the checksum of
    /// packets the backend marked `csum_blank` before handing them here, because the stack verifies
    /// every checksum in software.
    fn receive(&mut self) -> Option<Vec<u8>>;
    /// The last [`NetDevice::receive`] returned `None` because it had done its share of work (its budget), not
    /// because nothing was waiting: frames may be waiting that no event will announce, so
    /// [`Stack::poll`](crate::Stack::poll) asks to be polled again at once (after the runtime has run timers and
    /// other tasks), as NAPI keeps a device scheduled that used up its budget.
    fn rx_pending(&self) -> bool {
        false
    }
    /// Whether the device has room for one more frame of the largest size (MTU plus Ethernet header) right now.
    /// When it has not, it must raise an event once room comes back (netfront: the backend's TX completion):
    /// [`Stack::poll`](crate::Stack::poll) then waits for that event instead of asking to be polled at once.
    fn can_transmit(&self) -> bool;
    /// Queues one complete Ethernet frame (without FCS) for transmission.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), TxFull>;
    /// The largest TCP/IPv4 frame (Ethernet header included) the device cuts into MTU-sized segments itself
    /// (TSO), or `None` (the default). When it is `Some`, smoltcp builds TCP segments up to that size and leaves
    /// every TCP checksum for the device: frames go through [`NetDevice::transmit_offloaded`] instead.
    fn tso_tcpv4_max(&self) -> Option<usize> {
        None
    }
    /// As [`NetDevice::tso_tcpv4_max`], for TCP/IPv6.
    fn tso_tcpv6_max(&self) -> Option<usize> {
        None
    }
    /// Frames the device can take in from the wire before the stack reads them (RX buffers posted to the
    /// backend), or `None` (the default) when that is not bounded. The stack keeps every TCP receive window
    /// within what so many frames carry: a window's worth of data arriving in one burst is then never dropped
    /// for want of buffers.
    fn rx_frames(&self) -> Option<usize> {
        None
    }
    /// Queues a frame whose TCP checksum (if it is TCP) the device completes; `tso_mss` is set on a TCP segment
    /// larger than the MTU, for the device to cut into segments of that many payload bytes. Called only when
    /// [`NetDevice::tso_tcpv4_max`] or [`NetDevice::tso_tcpv6_max`] is `Some`.
    fn transmit_offloaded(&mut self, frame: &mut [u8], tso_mss: Option<u16>) -> Result<(), TxFull> {
        let _ = tso_mss;
        self.transmit(frame)
    }
}

/// [`NetDevice::transmit`] found no room for the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxFull;

impl fmt::Display for TxFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("transmit queue full")
    }
}

impl core::error::Error for TxFull {}

/// Frame and byte counters kept by the adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Frames taken from the driver.
    pub rx_frames: u64,
    /// Bytes in those frames.
    pub rx_bytes: u64,
    /// Frames the driver accepted for transmission.
    pub tx_frames: u64,
    /// Bytes in those frames.
    pub tx_bytes: u64,
    /// Frames lost because the driver refused them although it had reported room (a driver bug, or a
    /// ring shared with someone else).
    pub tx_dropped: u64,
}

/// The adapter from [`NetDevice`] to smoltcp's [`phy::Device`].
pub(crate) struct Adapter<D> {
    pub(crate) dev: D,
    pub(crate) counters: DeviceCounters,
    /// Reused for every transmitted frame, so transmitting does not allocate once it has grown.
    scratch: Vec<u8>,
    /// Router advertisements seen on the way in, for [`crate::slaac`]; smoltcp drops them itself.
    pub(crate) router_adverts: Vec<RouterAdvert>,
    pub(crate) watch_router_adverts: bool,
    /// A frame taken from the driver for the stack to look at ([`Adapter::next_frame`]) before smoltcp gets it.
    held: Option<Vec<u8>>,
    /// The device said it had no more frames during this poll ([`Adapter::start_poll`] clears it): it is not asked
    /// again until the next poll, so one poll costs the device at most one receive budget
    /// ([`NetDevice::rx_pending`]).
    rx_done: bool,
    /// What the trace sees on the wire (used only while `net` or `tcp` is traced).
    wire: WireTrace,
}

/// Records what the wire trace saw.
fn record(seen: [Option<Seen>; 2]) {
    for s in seen.into_iter().flatten() {
        match s {
            Seen::DataIn(flow) => trace::event(Category::Net, Phase::FlowStart, "rx segment", flow),
            Seen::DataOut(flow) => trace::event(Category::Net, Phase::FlowEnd, "tx segment", flow),
            Seen::Retransmit(flow) => trace::event(Category::Tcp, Phase::Instant, "retransmit", flow),
            Seen::PeerWindow(w) => trace::event(Category::Tcp, Phase::Counter, "peer window", u64::from(w)),
            Seen::OurWindow(w) => trace::event(Category::Tcp, Phase::Counter, "our window", u64::from(w)),
        }
    }
}

/// Whether the wire trace has anything to record.
fn wire_traced() -> bool {
    trace::enabled(Category::Net) || trace::enabled(Category::Tcp)
}

impl<D: NetDevice> Adapter<D> {
    pub(crate) fn new(dev: D, watch_router_adverts: bool) -> Self {
        Adapter {
            dev,
            counters: DeviceCounters::default(),
            scratch: Vec::new(),
            router_adverts: Vec::new(),
            watch_router_adverts,
            held: None,
            rx_done: false,
            wire: WireTrace::new(),
        }
    }

    /// The next received frame, taken from the driver while it can transmit (as [`phy::Device::receive`] would);
    /// give it back with [`Adapter::hold`] for smoltcp, or drop it.
    pub(crate) fn next_frame(&mut self) -> Option<Vec<u8>> {
        if !self.dev.can_transmit() {
            return None;
        }
        self.held.take().or_else(|| self.device_frame())
    }

    /// A new [`Stack::poll`](crate::Stack::poll): the device may be asked for frames again.
    pub(crate) fn start_poll(&mut self) {
        self.rx_done = false;
    }

    fn device_frame(&mut self) -> Option<Vec<u8>> {
        if self.rx_done {
            return None;
        }
        let frame = self.dev.receive();
        self.rx_done = frame.is_none();
        frame
    }

    /// Makes `frame` the next one smoltcp receives.
    pub(crate) fn hold(&mut self, frame: Vec<u8>) {
        self.held = Some(frame);
    }

    /// Sends a frame built outside smoltcp (router solicitations); false when there is no room.
    pub(crate) fn send_raw(&mut self, frame: &[u8]) -> bool {
        if !self.dev.can_transmit() {
            return false;
        }
        // Router solicitations are ICMPv6: nothing for an offloading device to complete.
        let sent = self.dev.transmit(frame);
        count_sent(&mut self.counters, frame.len(), sent);
        true
    }
}

fn send<D: NetDevice>(dev: &mut D, counters: &mut DeviceCounters, frame: &mut [u8], tso_mss: Option<u16>) {
    let offloading = dev.tso_tcpv4_max().is_some() || dev.tso_tcpv6_max().is_some();
    let sent = if offloading { dev.transmit_offloaded(frame, tso_mss) } else { dev.transmit(frame) };
    count_sent(counters, frame.len(), sent);
}

fn count_sent(counters: &mut DeviceCounters, frame_len: usize, sent: Result<(), TxFull>) {
    match sent {
        Ok(()) => {
            counters.tx_frames += 1;
            counters.tx_bytes += frame_len as u64;
        }
        Err(TxFull) => {
            counters.tx_dropped += 1;
            log::warn!("net: driver refused a {frame_len}-byte frame after reporting room; dropped");
        }
    }
}

impl<D: NetDevice> phy::Device for Adapter<D> {
    type RxToken<'a>
        = RxToken
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, D>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_, D>)> {
        // No room for a reply: leave the frame in the driver until the transmit ring drains.
        if !self.dev.can_transmit() {
            trace::event(Category::Net, Phase::Instant, "tx ring full", 1);
            return None;
        }
        let frame = self.held.take().or_else(|| self.device_frame())?;
        self.counters.rx_frames += 1;
        self.counters.rx_bytes += frame.len() as u64;
        if wire_traced() {
            record(self.wire.rx(&frame));
        }
        if self.watch_router_adverts {
            if let Some(ra) = slaac::parse_router_advert(&frame) {
                self.router_adverts.push(ra);
            }
        }
        let tx = TxToken {
            dev: &mut self.dev,
            counters: &mut self.counters,
            scratch: &mut self.scratch,
            wire: &mut self.wire,
            tso_mss: None,
        };
        Some((RxToken { frame }, tx))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_, D>> {
        if !self.dev.can_transmit() {
            trace::event(Category::Net, Phase::Instant, "tx ring full", 0);
            return None;
        }
        Some(TxToken {
            dev: &mut self.dev,
            counters: &mut self.counters,
            scratch: &mut self.scratch,
            wire: &mut self.wire,
            tso_mss: None,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.dev.mtu() + ETHERNET_HEADER_LEN;
        caps.max_burst_size = None;
        // Compute and verify every checksum in software: netfront fixes up offloaded (csum_blank) packets
        // before they reach us. A device that segments TCP itself also completes the TCP checksums we send.
        caps.checksum = ChecksumCapabilities::default();
        if let Some(max) = self.dev.tso_tcpv4_max() {
            caps.segmentation.tcpv4 = NonZeroUsize::new(max);
            caps.checksum.tcp = Checksum::Rx;
        }
        if let Some(max) = self.dev.tso_tcpv6_max() {
            caps.segmentation.tcpv6 = NonZeroUsize::new(max);
            caps.checksum.tcp = Checksum::Rx;
        }
        caps
    }
}

/// One received frame.
pub(crate) struct RxToken {
    frame: Vec<u8>,
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.frame)
    }
}

/// Room for one frame in the driver, checked when the token was made.
pub(crate) struct TxToken<'a, D> {
    dev: &'a mut D,
    counters: &'a mut DeviceCounters,
    scratch: &'a mut Vec<u8>,
    wire: &'a mut WireTrace,
    /// smoltcp asked the device to segment this frame (TSO) with this payload size.
    tso_mss: Option<u16>,
}

impl<D: NetDevice> phy::TxToken for TxToken<'_, D> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.scratch.clear();
        self.scratch.resize(len, 0);
        let r = f(self.scratch);
        if wire_traced() {
            record(self.wire.tx(self.scratch));
        }
        send(self.dev, self.counters, self.scratch, self.tso_mss);
        r
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.tso_mss = meta.segmentation_offload_size.map(|m| m.get());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use smoltcp::phy::{Device, RxToken as _, TxToken as _};

    struct Ring {
        rx: VecDeque<Vec<u8>>,
        tx: Vec<Vec<u8>>,
        room: usize,
    }

    impl NetDevice for Ring {
        fn mac(&self) -> [u8; 6] {
            [2, 0, 0, 0, 0, 1]
        }
        fn mtu(&self) -> usize {
            1500
        }
        fn receive(&mut self) -> Option<Vec<u8>> {
            self.rx.pop_front()
        }
        fn can_transmit(&self) -> bool {
            self.tx.len() < self.room
        }
        fn transmit(&mut self, frame: &[u8]) -> Result<(), TxFull> {
            if !self.can_transmit() {
                return Err(TxFull);
            }
            self.tx.push(frame.to_vec());
            Ok(())
        }
    }

    #[test]
    fn capabilities_are_ethernet_with_software_checksums() {
        let a = Adapter::new(Ring { rx: VecDeque::new(), tx: Vec::new(), room: 1 }, false);
        let caps = a.capabilities();
        assert_eq!(caps.medium, Medium::Ethernet);
        assert_eq!(caps.max_transmission_unit, 1514);
        assert!(caps.checksum.ipv4.tx() && caps.checksum.ipv4.rx());
        assert!(caps.checksum.tcp.tx() && caps.checksum.tcp.rx());
        assert!(caps.checksum.udp.tx() && caps.checksum.udp.rx());
    }

    #[test]
    fn tokens_carry_transmit_capacity() {
        let rx = VecDeque::from([vec![1u8; 60], vec![2u8; 60]]);
        let mut a = Adapter::new(Ring { rx, tx: Vec::new(), room: 1 }, false);
        let (rx, tx) = a.receive(Instant::ZERO).expect("a frame and room");
        assert_eq!(rx.consume(|f| f[0]), 1);
        tx.consume(42, |b| b.fill(7));
        assert_eq!(a.dev.tx, [vec![7u8; 42]]);
        // The ring is full now: no transmit token, and received frames wait in the driver.
        assert!(a.transmit(Instant::ZERO).is_none());
        assert!(a.receive(Instant::ZERO).is_none());
        assert_eq!(a.dev.rx.len(), 1);
        a.dev.room = 2;
        assert!(a.receive(Instant::ZERO).is_some());
        assert_eq!(a.counters.rx_frames, 2);
        assert_eq!(a.counters.tx_frames, 1);
        assert_eq!(a.counters.tx_bytes, 42);
    }
}
