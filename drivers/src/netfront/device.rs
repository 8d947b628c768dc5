//! The netfront state machine over two [`FrontRing`]s, the buffer pages and the event channel.
//!
//! Buffers are granted once, by the platform, and reused: TX buffer `i` carries TX request id `i`, RX buffer `j`
//! RX request id `j`. A TX packet is copied into as many free TX buffers as it needs (one slot each, from offset
//! 0); an RX response's data is copied out of its buffer into the packet's `Vec` before the buffer is posted again.

use alloc::vec;
use alloc::vec::Vec;

use super::csum::{self, CsumError, Transport};
use super::error::{Counters, Direction, Fault, FaultKind, RxDrop, TxError};
use super::wire::{
    NetifExtraInfo, NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse, EXTRA_FLAG_MORE, EXTRA_TYPE_GSO,
    GSO_TYPE_TCPV4, GSO_TYPE_TCPV6, MAX_TX_SIZE, NETIF_RSP_DROPPED, NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY,
    NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, NETRXF_EXTRA_INFO, NETRXF_GSO_PREFIX, NETRXF_MORE_DATA,
    NETTXF_CSUM_BLANK, NETTXF_DATA_VALIDATED, NETTXF_EXTRA_INFO, NETTXF_MORE_DATA, NR_SLOTS_MIN, PAGE_SIZE,
    RX_ENTRY_SIZE, TX_ENTRY_SIZE,
};
use crate::grant::GrantRef;
use crate::ring::{FrontRing, Notify, RingError, SharedRing};

/// The most RX responses (ring slots) one [`Netfront::poll_rx`] takes, as NAPI's weight bounds one poll of a
/// Linux driver: a backend that answers as fast as buffers are posted (with bad ids, or a chain of slots that
/// never ends) cannot keep the guest inside the driver. A legitimate packet takes at most `NR_SLOTS_MIN` (18)
/// slots plus its extra info slots.
pub const RX_POLL_BUDGET: u32 = 64;

/// The buffer pages, granted to the backend once by the platform. Buffer indices run from 0 to the count; the
/// driver passes only those, and only `offset + len <= PAGE_SIZE`.
pub trait NetBuffers {
    /// How many TX buffer pages there are.
    fn tx_count(&self) -> u16;
    /// How many RX buffer pages there are.
    fn rx_count(&self) -> u16;
    /// The grant ref of TX buffer `buf` (granted read-only to the backend).
    fn tx_gref(&self, buf: u16) -> GrantRef;
    /// The grant ref of RX buffer `buf` (granted writable to the backend).
    fn rx_gref(&self, buf: u16) -> GrantRef;
    /// Copies `data` into TX buffer `buf` at `offset`.
    fn tx_write(&mut self, buf: u16, offset: usize, data: &[u8]);
    /// Copies `out.len()` bytes from RX buffer `buf` at `offset`.
    fn rx_read(&self, buf: u16, offset: usize, out: &mut [u8]);
}

/// What we use of what the backend offers (see [`Features::negotiate`](super::Features::negotiate)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// Scatter-gather (`feature-sg`): packets over one page, in several slots, both ways.
    pub sg: bool,
    /// Checksum offload: we accept received packets with a blank checksum (`feature-no-csum-offload=0`; fill
    /// them in with [`RxPacket::fill_checksum`]) and may send packets with a blank checksum
    /// ([`TxChecksum::Blank`]). Off: we write `feature-no-csum-offload=1` and refuse blank checksums on TX.
    pub csum_offload: bool,
    /// TCP/IPv4 segmentation offload on transmit (the backend's `feature-gso-tcpv4`): we may hand the backend one
    /// TCP segment of up to 64 KiB with a GSO extra info slot, and it cuts it into MSS-sized segments
    /// ([`Netfront::transmit_tcpv4_gso`]). Needs scatter-gather and checksum offload.
    pub gso_tcpv4: bool,
    /// Large receive (we write `feature-gso-tcpv4=1`): the backend may hand us a TCP/IPv4 segment of up to 64 KiB
    /// in several slots with a GSO extra info slot (its sender's, or dom0's, segment left whole), instead of cutting
    /// it into MTU-sized frames first. Needs scatter-gather and checksum offload (such segments come with a blank
    /// checksum).
    pub gso_rx_tcpv4: bool,
    /// TCP/IPv6 segmentation offload on transmit (the backend's `feature-gso-tcpv6`, with its
    /// `feature-ipv6-csum-offload`: the segments go with a partial checksum): [`Netfront::transmit_tcpv6_gso`].
    pub gso_tcpv6: bool,
    /// Large receive for TCP/IPv6 (we write `feature-gso-tcpv6=1` and `feature-ipv6-csum-offload=1`): as
    /// [`Features::gso_rx_tcpv4`], and IPv6 packets may then arrive with a blank checksum too.
    pub gso_rx_tcpv6: bool,
    /// Split event channels (the backend's `feature-split-event-channels`): one port for the TX ring and one for
    /// the RX ring (`event-channel-tx`, `event-channel-rx`), so a kick for one ring does not run the backend's
    /// handler for the other. The platform allocates the second port and gives it to
    /// [`Netfront::with_rx_event_channel`].
    pub split_event_channels: bool,
}

impl Features {
    /// Scatter-gather and checksum offload, no segmentation offload either way: the base the others build on.
    pub const SG: Features = Features {
        sg: true,
        csum_offload: true,
        gso_tcpv4: false,
        gso_rx_tcpv4: false,
        gso_tcpv6: false,
        gso_rx_tcpv6: false,
        split_event_channels: false,
    };
    /// Nothing: one page per packet, full checksums both ways.
    pub const NONE: Features = Features { sg: false, csum_offload: false, ..Features::SG };
}

/// The state of a packet's transport checksum, as the caller of [`Netfront::transmit`] knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxChecksum {
    /// Already correct: `NETTXF_data_validated`.
    Valid,
    /// Left blank (partial, pseudo-header sum only) for the backend to fill in: `NETTXF_csum_blank |
    /// NETTXF_data_validated`. Needs [`Features::csum_offload`].
    Blank,
    /// Not checked (a forwarded packet): no flag, the receiver verifies it.
    Unchecked,
}

/// A received packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxPacket {
    /// The Ethernet frame.
    pub data: Vec<u8>,
    /// `NETRXF_csum_blank`: the transport checksum is not filled in yet; call [`RxPacket::fill_checksum`] before
    /// the stack verifies it or the packet is forwarded.
    pub csum_blank: bool,
    /// `NETRXF_data_validated`: the backend (or the sender's stack) vouches for the data.
    pub data_validated: bool,
    /// A large TCP segment (GSO extra info, with [`Features::gso_rx_tcpv4`] or [`Features::gso_rx_tcpv6`]): the
    /// segment size its sender would have cut it into.
    pub gso_size: Option<u16>,
}

impl RxPacket {
    /// If the checksum is blank, computes and writes it (and clears `csum_blank`); says which one it filled in.
    pub fn fill_checksum(&mut self) -> Result<Option<Transport>, CsumError> {
        if !self.csum_blank {
            return Ok(None);
        }
        let transport = csum::fill_transport_checksum(&mut self.data)?;
        self.csum_blank = false;
        Ok(Some(transport))
    }
}

/// Where the device is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Rings initialised; RX buffers may be posted; transmitting is refused until the backend is Connected.
    Initialising,
    /// The backend is Connected ([`Netfront::backend_connected`]): packets flow.
    Connected,
    /// The backend broke a ring's index protocol; nothing more is read from or written to the rings (until a
    /// [`Netfront::reset`] for a new backend).
    Broken(Fault),
}

/// What [`Netfront::poll_tx`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxPoll {
    /// TX buffers freed (one per slot answered, whatever the status).
    pub freed: u32,
    /// Bad responses (each also counted in [`Counters`]).
    pub faults: u32,
    /// The first of them, to log.
    pub first_fault: Option<Fault>,
}

/// What [`Netfront::reset`] dropped and took back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResetReport {
    /// TX slots that were in flight (requests the old backend never answered), now free again; their packets are
    /// lost.
    pub tx_dropped: u32,
    /// RX buffers that were posted to the old backend, now free again (posted anew by the next connect).
    pub rx_reclaimed: u32,
    /// A packet whose first slots had arrived was dropped.
    pub rx_partial_dropped: bool,
}

/// What the next RX response is expected to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// The first slot of a packet.
    First,
    /// An extra info slot; then a fragment if the first slot had `more_data`.
    Extra { more_data: bool },
    /// A further data slot of the packet.
    Fragment,
}

/// A received packet being put together, across calls if its slots arrive in several batches.
struct RxChain {
    data: Vec<u8>,
    flags: u16,
    /// The GSO extra info's segment size, if one came.
    gso_size: Option<u16>,
    expect: Expect,
    /// The first fault: the packet will be dropped, its remaining slots consumed and recycled.
    fault: Option<Fault>,
}

/// A netfront device: the TX and RX rings over pages `S`, the buffers `B`, the event channel `E`.
///
/// The platform calls [`Netfront::post_rx_buffers`] before connecting (or lets [`super::connect`] do it),
/// [`Netfront::backend_connected`] once the backend is Connected, then, on each event and whenever it wants to
/// send: [`Netfront::poll_tx`], [`Netfront::poll_rx`] until `None`, [`Netfront::transmit`]. The driver sends the
/// event itself (through `E`) whenever the ring protocol says the backend must be woken. If the backend goes away,
/// [`Netfront::reset`] (or [`super::reconnect`], which calls it) starts over on new ring pages.
pub struct Netfront<S: SharedRing, B: NetBuffers, E: Notify> {
    tx: FrontRing<S>,
    rx: FrontRing<S>,
    buffers: B,
    evtchn: E,
    /// The RX ring's own event channel, with split event channels (`evtchn` is then the TX ring's).
    rx_evtchn: Option<E>,
    features: Features,
    phase: Phase,
    /// TX buffers free, the next to use last.
    tx_free: Vec<u16>,
    /// Per TX buffer: a request with its id is outstanding.
    tx_outstanding: Vec<bool>,
    /// GSO extra info slots sent and not yet answered (each is answered `NETIF_RSP_NULL`, with no id).
    tx_extras_outstanding: u32,
    /// RX buffers free (not posted).
    rx_free: Vec<u16>,
    /// Per RX ring slot: the buffer whose request occupies it (netif.h: the backend answers in that slot).
    rx_posted: Vec<Option<u16>>,
    /// Post RX buffers again once this many are free (and whenever `poll_rx` runs dry).
    rx_batch: usize,
    rx_chain: Option<RxChain>,
    /// The last `poll_rx` stopped on its budget: responses may be waiting that no event will announce.
    rx_more: bool,
    counters: Counters,
}

impl<S: SharedRing, B: NetBuffers, E: Notify> Netfront<S, B, E> {
    /// Initialises the TX and RX ring pages (`tx_page`, `rx_page`, before they are granted) and takes the
    /// buffers, all free, and the event channel. `features` is what we will ask for ([`super::Features::negotiate`]).
    pub fn new(tx_page: S, rx_page: S, buffers: B, evtchn: E, features: Features) -> Self {
        Self::with_ring_start(tx_page, rx_page, buffers, evtchn, features, 0)
    }

    /// As [`Netfront::new`], both rings' indices starting at `start` (tests of the `u32` wrap-around).
    pub(crate) fn with_ring_start(
        tx_page: S,
        rx_page: S,
        buffers: B,
        evtchn: E,
        features: Features,
        start: u32,
    ) -> Self {
        let tx = FrontRing::init_at(tx_page, TX_ENTRY_SIZE, start);
        let rx = FrontRing::init_at(rx_page, RX_ENTRY_SIZE, start);
        let (tx_count, rx_count) = (buffers.tx_count(), buffers.rx_count());
        let rx_batch = (usize::from(rx_count) / 4).clamp(1, 64);
        let rx_slots = rx.size() as usize;
        Netfront {
            tx,
            rx,
            buffers,
            evtchn,
            rx_evtchn: None,
            features,
            phase: Phase::Initialising,
            tx_free: (0..tx_count).rev().collect(),
            tx_outstanding: vec![false; usize::from(tx_count)],
            tx_extras_outstanding: 0,
            rx_free: (0..rx_count).rev().collect(),
            rx_posted: vec![None; rx_slots],
            rx_batch,
            rx_chain: None,
            rx_more: false,
            counters: Counters::default(),
        }
    }

    /// With split event channels ([`Features::split_event_channels`]): `rx` is the RX ring's event channel, and the
    /// one given to [`Netfront::new`] the TX ring's.
    pub fn with_rx_event_channel(mut self, rx: E) -> Self {
        self.rx_evtchn = Some(rx);
        self
    }

    /// The device's phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// TX buffers the device was given.
    pub fn tx_buffer_count(&self) -> u16 {
        self.buffers.tx_count()
    }

    /// RX buffers the device was given (posted to the backend whenever the ring has room).
    pub fn rx_buffer_count(&self) -> u16 {
        self.buffers.rx_count()
    }

    /// The features in use.
    pub fn features(&self) -> Features {
        self.features
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The buffers.
    pub fn buffers(&self) -> &B {
        &self.buffers
    }

    /// The TX and RX ring pages (for their grant references after a [`Netfront::reset`]).
    pub fn rings(&self) -> (&S, &S) {
        (self.tx.shared(), self.rx.shared())
    }

    /// The event channel (the TX ring's, with split event channels).
    pub fn evtchn(&self) -> &E {
        &self.evtchn
    }

    /// TX buffers free now.
    pub fn tx_free_buffers(&self) -> usize {
        self.tx_free.len()
    }

    /// TX ring slots free now (a packet takes one per page; see [`Netfront::tx_free_buffers`] for the other
    /// limit).
    pub fn tx_free_slots(&self) -> u32 {
        self.tx.free_requests()
    }

    /// RX buffers not posted now.
    pub fn rx_free_buffers(&self) -> usize {
        self.rx_free.len()
    }

    /// RX buffers posted to the backend now (with [`Netfront::rx_free_buffers`], every buffer: none is lost).
    pub fn rx_posted_buffers(&self) -> usize {
        self.rx_posted.iter().filter(|b| b.is_some()).count()
    }

    /// TX buffers in flight now: sent and not answered (with [`Netfront::tx_free_buffers`], every buffer).
    pub fn tx_in_flight(&self) -> usize {
        self.tx_outstanding.iter().filter(|&&o| o).count()
    }

    /// The TX ring's consumer index (`rsp_cons`): how many TX responses were ever taken (wrapping).
    pub fn tx_rsp_cons(&self) -> u32 {
        self.tx.rsp_cons()
    }

    /// The RX ring's consumer index (`rsp_cons`): how many RX responses were ever taken (wrapping).
    pub fn rx_rsp_cons(&self) -> u32 {
        self.rx.rsp_cons()
    }

    /// Checks the driver's buffer bookkeeping, for tests and fuzzing (linear in buffers and ring slots): every TX
    /// buffer is free or in flight, exactly once; every RX buffer is free or posted, exactly once; the posted ones
    /// occupy exactly the RX ring slots whose responses are still to come. A description of the first breach.
    pub fn audit(&self) -> Result<(), alloc::string::String> {
        use alloc::format;
        let mut tx_seen = vec![0u32; usize::from(self.buffers.tx_count())];
        for &b in &self.tx_free {
            *tx_seen.get_mut(usize::from(b)).ok_or(format!("free TX buffer {b} does not exist"))? += 1;
        }
        for (b, _) in self.tx_outstanding.iter().enumerate().filter(|(_, &o)| o) {
            *tx_seen.get_mut(b).ok_or(format!("in-flight TX buffer {b} does not exist"))? += 1;
        }
        if let Some((b, n)) = tx_seen.iter().enumerate().find(|(_, &n)| n != 1) {
            return Err(format!("TX buffer {b} is free or in flight {n} times, not once"));
        }
        let mut rx_seen = vec![0u32; usize::from(self.buffers.rx_count())];
        for &b in self.rx_free.iter().chain(self.rx_posted.iter().flatten()) {
            *rx_seen.get_mut(usize::from(b)).ok_or(format!("RX buffer {b} does not exist"))? += 1;
        }
        if let Some((b, n)) = rx_seen.iter().enumerate().find(|(_, &n)| n != 1) {
            return Err(format!("RX buffer {b} is free or posted {n} times, not once"));
        }
        let outstanding = self.rx.outstanding();
        for (k, posted) in self.rx_posted.iter().enumerate() {
            // Slot k holds a request still to be answered iff its index lies in [rsp_cons, req_prod_pvt).
            let index =
                self.rx.rsp_cons().wrapping_add((k as u32).wrapping_sub(self.rx.rsp_cons()) & (self.rx.size() - 1));
            let waiting = index.wrapping_sub(self.rx.rsp_cons()) < outstanding;
            if waiting != posted.is_some() {
                return Err(format!(
                    "RX slot {k}: posted buffer {posted:?}, but {} requests are outstanding from rsp_cons {}",
                    outstanding,
                    self.rx.rsp_cons()
                ));
            }
        }
        Ok(())
    }

    /// The last [`Netfront::poll_rx`] stopped on its budget: responses may be waiting, and since `rsp_event` was
    /// not re-armed no event will announce them. Poll again soon (after letting timers and other work run).
    pub fn rx_pending(&self) -> bool {
        self.rx_more
    }

    /// The largest packet [`Netfront::transmit`] accepts: one page without scatter-gather, else what the ring,
    /// the TX buffers and the protocol (65535 bytes) allow.
    pub fn max_packet(&self) -> usize {
        let slots = if self.features.sg {
            usize::from(self.buffers.tx_count()).min(self.tx.size() as usize).min(NR_SLOTS_MIN)
        } else {
            1
        };
        (slots * PAGE_SIZE).min(MAX_TX_SIZE)
    }

    /// The backend reached Connected (after [`crate::frontend::wait_for_backend`]): transmitting is allowed from
    /// now on. Ignored once the device is broken.
    pub fn backend_connected(&mut self) {
        if self.phase == Phase::Initialising {
            self.phase = Phase::Connected;
        }
    }

    /// Starts over on fresh ring pages after the backend went away (its xenbus state went to Closing or Closed:
    /// netback restarted, the driver domain rebooted), so that [`super::connect`] can connect the device again (see
    /// [`super::reconnect`] for the whole xenbus sequence). Works from any phase, [`Phase::Broken`] included: a
    /// new backend gets a new chance.
    ///
    /// Every TX request in flight is dropped (its buffer freed; the stack's retransmissions recover the data),
    /// every posted RX buffer is taken back (a packet half received is dropped), and the rings are initialised on
    /// `tx_page` and `rx_page` (`SHARED_RING_INIT`, `FRONT_RING_INIT`): new pages, as Linux's netfront allocates on
    /// reconnect, so that a backend still holding the old ones cannot write into the new rings. The old pages are
    /// dropped here (the platform's grant ends access, deferred while the backend still maps them). The buffers,
    /// their grants, the event channel and the negotiated features are kept. The device is back in
    /// [`Phase::Initialising`]: transmitting is refused until [`Netfront::backend_connected`].
    pub fn reset(&mut self, tx_page: S, rx_page: S) -> ResetReport {
        let mut report = ResetReport::default();
        self.tx_extras_outstanding = 0;
        for (id, outstanding) in self.tx_outstanding.iter_mut().enumerate() {
            if core::mem::take(outstanding) {
                // Buffer indices fit in u16: there are `tx_count()` of them.
                self.tx_free.push(id as u16);
                report.tx_dropped += 1;
            }
        }
        for posted in self.rx_posted.iter_mut() {
            if let Some(buf) = posted.take() {
                self.rx_free.push(buf);
                report.rx_reclaimed += 1;
            }
        }
        report.rx_partial_dropped = self.rx_chain.take().is_some();
        self.rx_more = false;
        self.tx = FrontRing::init(tx_page, TX_ENTRY_SIZE);
        self.rx = FrontRing::init(rx_page, RX_ENTRY_SIZE);
        self.phase = Phase::Initialising;
        self.counters.resets += 1;
        self.counters.tx_dropped_in_reset += u64::from(report.tx_dropped);
        report
    }

    /// After a resume in a new domain (`xl restore`, `xl migrate`): as [`Netfront::reset`] (the TX requests in
    /// flight dropped, for TCP to retransmit; the RX buffers taken back; fresh ring pages), and the event channels
    /// replaced by `evtchn` (and `rx_evtchn` with split event channels), since Xen closed the old ones with the old
    /// domain. `regrant` grants every buffer again to the new backend (the new domain's grant table starts empty);
    /// its error is returned, the device then still reset and unconnected.
    pub fn resume<X>(
        &mut self,
        tx_page: S,
        rx_page: S,
        evtchn: E,
        rx_evtchn: Option<E>,
        regrant: impl FnOnce(&mut B) -> Result<(), X>,
    ) -> Result<ResetReport, X> {
        let report = self.reset(tx_page, rx_page);
        self.evtchn = evtchn;
        self.rx_evtchn = rx_evtchn;
        regrant(&mut self.buffers)?;
        Ok(report)
    }

    /// Kicks the backend for `ring`: on that ring's own event channel when they are split.
    fn notify(&mut self, ring: Direction) {
        self.counters.notifies += 1;
        match (ring, self.rx_evtchn.as_mut()) {
            (Direction::Rx, Some(rx)) => rx.notify(),
            _ => self.evtchn.notify(),
        }
    }

    /// Stops the device after a ring's indices broke.
    fn stop(&mut self, dir: Direction, e: RingError) -> Fault {
        let index = match dir {
            Direction::Tx => self.tx.rsp_cons(),
            Direction::Rx => self.rx.rsp_cons(),
        };
        let fault = Fault { dir, index, kind: FaultKind::Ring(e) };
        self.counters.ring_overruns += 1;
        self.phase = Phase::Broken(fault);
        fault
    }

    fn is_broken(&self) -> bool {
        matches!(self.phase, Phase::Broken(_))
    }

    // ----- transmit -----

    /// Queues one Ethernet frame: copies it into free TX buffers, one slot per page (`NETTXF_more_data` on all but
    /// the last; the first slot's size is the whole length), publishes the requests and notifies the backend if it
    /// asked. On error nothing is queued.
    pub fn transmit(&mut self, packet: &[u8], csum: TxChecksum) -> Result<(), TxError> {
        self.transmit_with(packet, csum, None)
    }

    /// Queues one TCP/IPv4 segment larger than the MTU for the backend to cut into segments of `mss` payload
    /// bytes (TSO): the first slot carries `NETTXF_extra_info`, the next slot a GSO extra info (type TCPv4, size
    /// `mss`), then the rest of the data. The TCP checksum must hold the pseudo-header sum only (partial, as
    /// Linux's `CHECKSUM_PARTIAL`): the backend fills in each segment's. Needs [`Features::gso_tcpv4`].
    pub fn transmit_tcpv4_gso(&mut self, packet: &[u8], mss: u16) -> Result<(), TxError> {
        self.transmit_gso(packet, mss, self.features.gso_tcpv4, GSO_TYPE_TCPV4)
    }

    /// As [`Netfront::transmit_tcpv4_gso`], for a TCP/IPv6 segment (GSO type TCPv6). Needs
    /// [`Features::gso_tcpv6`].
    pub fn transmit_tcpv6_gso(&mut self, packet: &[u8], mss: u16) -> Result<(), TxError> {
        self.transmit_gso(packet, mss, self.features.gso_tcpv6, GSO_TYPE_TCPV6)
    }

    fn transmit_gso(&mut self, packet: &[u8], mss: u16, negotiated: bool, gso_type: u8) -> Result<(), TxError> {
        if !negotiated || mss == 0 {
            self.counters.tx_gso_refused += 1;
            return Err(TxError::GsoOff);
        }
        self.transmit_with(packet, TxChecksum::Blank, Some((mss, gso_type)))
    }

    fn transmit_with(&mut self, packet: &[u8], csum: TxChecksum, gso: Option<(u16, u8)>) -> Result<(), TxError> {
        match self.phase {
            Phase::Connected => {}
            Phase::Initialising => {
                self.counters.tx_not_connected += 1;
                return Err(TxError::NotConnected);
            }
            Phase::Broken(fault) => {
                self.counters.tx_not_connected += 1;
                return Err(TxError::Broken(fault));
            }
        }
        let len = packet.len();
        let slots = len.div_ceil(PAGE_SIZE);
        let max = self.max_packet();
        if len == 0 {
            self.counters.tx_too_big += 1;
            return Err(TxError::Empty);
        }
        if slots > 1 && !self.features.sg && len <= MAX_TX_SIZE {
            self.counters.tx_needs_sg += 1;
            return Err(TxError::NeedsScatterGather { len, slots });
        }
        if len > max {
            self.counters.tx_too_big += 1;
            return Err(TxError::TooBig { len, max });
        }
        let flags = match csum {
            TxChecksum::Valid => NETTXF_DATA_VALIDATED,
            TxChecksum::Blank if self.features.csum_offload => NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED,
            TxChecksum::Blank => {
                self.counters.tx_csum_refused += 1;
                return Err(TxError::ChecksumOffloadOff);
            }
            TxChecksum::Unchecked => 0,
        };
        let extra = usize::from(gso.is_some());
        let flags = if extra > 0 { flags | NETTXF_EXTRA_INFO } else { flags };
        let (free_slots, free_buffers) = (self.tx.free_requests(), self.tx_free.len());
        if (free_slots as usize) < slots + extra || free_buffers < slots {
            if (free_slots as usize) < slots + extra {
                self.counters.tx_ring_full += 1;
            } else {
                self.counters.tx_no_buffer += 1;
            }
            return Err(TxError::RingFull { needed: slots + extra, free_slots, free_buffers });
        }
        for (k, chunk) in packet.chunks(PAGE_SIZE).enumerate() {
            let Some(buf) = self.tx_free.pop() else { unreachable_free_list() };
            self.buffers.tx_write(buf, 0, chunk);
            let more = if k + 1 < slots { NETTXF_MORE_DATA } else { 0 };
            let request = NetifTxRequest {
                gref: self.buffers.tx_gref(buf).0,
                offset: 0,
                flags: if k == 0 { flags | more } else { more },
                id: buf,
                // Both fit: len <= MAX_TX_SIZE, chunks <= PAGE_SIZE.
                size: if k == 0 { len as u16 } else { chunk.len() as u16 },
            };
            if self.tx.push_request(&request.emit()).is_err() {
                unreachable_free_list();
            }
            self.tx_outstanding[usize::from(buf)] = true;
            if let (0, Some((mss, gso_type))) = (k, gso) {
                // The GSO extra info follows the first slot (netif.h): `struct netif_extra_info` at the start of
                // a request slot, its `gso` member = size, type, pad, features.
                let m = mss.to_le_bytes();
                let info = NetifExtraInfo { ty: EXTRA_TYPE_GSO, flags: 0, data: [m[0], m[1], gso_type, 0, 0, 0] };
                let mut slot = [0u8; TX_ENTRY_SIZE];
                slot[..8].copy_from_slice(&info.emit());
                if self.tx.push_request(&slot).is_err() {
                    unreachable_free_list();
                }
                self.tx_extras_outstanding += 1;
            }
        }
        if self.tx.push_and_check_notify() {
            self.notify(Direction::Tx);
        }
        self.counters.tx_packets += 1;
        self.counters.tx_bytes += len as u64;
        if extra > 0 {
            self.counters.tx_gso_packets += 1;
        }
        Ok(())
    }

    /// Takes every TX response: frees the buffer of each outstanding id (whatever the status), counts errors, and
    /// counts and ignores ids that are not outstanding. Re-arms `rsp_event` before returning so the next response
    /// raises an event. A broken `rsp_prod` stops the device (reported as the first fault).
    ///
    /// The work is bounded without a budget: this call publishes nothing, and the ring refuses an `rsp_prod`
    /// beyond the requests published ([`RingError::Overrun`]), so one call takes at most the ring's size (256) of
    /// responses, however fast or hostile the backend.
    pub fn poll_tx(&mut self) -> TxPoll {
        let mut poll = TxPoll::default();
        let mut raw = [0u8; 4];
        while !self.is_broken() {
            match self.tx.unconsumed_responses() {
                Ok(0) => match self.tx.final_check_for_responses() {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        poll.first_fault.get_or_insert(self.stop(Direction::Tx, e));
                        poll.faults += 1;
                    }
                },
                Ok(_) => {
                    while let Some(index) = self.tx.take_response(&mut raw) {
                        let (freed, fault) = self.complete_tx(NetifTxResponse::parse(&raw));
                        poll.freed += u32::from(freed);
                        if let Some(kind) = fault {
                            poll.faults += 1;
                            poll.first_fault.get_or_insert(Fault { dir: Direction::Tx, index, kind });
                        }
                    }
                }
                Err(e) => {
                    poll.first_fault.get_or_insert(self.stop(Direction::Tx, e));
                    poll.faults += 1;
                }
            }
        }
        poll
    }

    /// One TX response: (buffer freed, fault).
    fn complete_tx(&mut self, rsp: NetifTxResponse) -> (bool, Option<FaultKind>) {
        let c = &mut self.counters;
        if rsp.status == NETIF_RSP_NULL {
            // The answer to a GSO extra info slot (no id of its own). One we never sent is a fault.
            if self.tx_extras_outstanding > 0 {
                self.tx_extras_outstanding -= 1;
                return (false, None);
            }
            c.tx_bad_status += 1;
            return (false, Some(FaultKind::Status { status: rsp.status }));
        }
        let id = usize::from(rsp.id);
        if !self.tx_outstanding.get(id).copied().unwrap_or(false) {
            c.tx_bad_id += 1;
            return (false, Some(FaultKind::BadId { id: rsp.id, expected: None }));
        }
        self.tx_outstanding[id] = false;
        self.tx_free.push(rsp.id);
        let fault = Some(FaultKind::Status { status: rsp.status });
        match rsp.status {
            NETIF_RSP_OKAY => (true, None),
            NETIF_RSP_ERROR => {
                c.tx_error += 1;
                (true, fault)
            }
            NETIF_RSP_DROPPED => {
                c.tx_dropped += 1;
                (true, fault)
            }
            _ => {
                c.tx_bad_status += 1;
                (true, fault)
            }
        }
    }

    // ----- receive -----

    /// Posts every free RX buffer the ring has room for (request id = buffer index) and notifies the backend if
    /// it asked (`feature-rx-notify`). Returns how many were posted.
    pub fn post_rx_buffers(&mut self) -> u32 {
        if self.is_broken() {
            return 0;
        }
        let mut posted = 0;
        while !self.rx.is_full() {
            let Some(buf) = self.rx_free.pop() else { break };
            let request = NetifRxRequest { id: buf, pad: 0, gref: self.buffers.rx_gref(buf).0 };
            match self.rx.push_request(&request.emit()) {
                Ok(index) => {
                    let slot = self.rx.slot(index);
                    self.rx_posted[slot] = Some(buf);
                    posted += 1;
                }
                Err(_) => {
                    self.rx_free.push(buf);
                    break;
                }
            }
        }
        if posted > 0 && self.rx.push_and_check_notify() {
            self.notify(Direction::Rx);
        }
        posted
    }

    /// The next received packet, or why it was dropped; `None` once no complete packet is waiting (the RX buffers
    /// are then posted again and `rsp_event` re-armed, so the next packet raises an event), or once this call has
    /// taken [`RX_POLL_BUDGET`] responses ([`Netfront::rx_pending`] then says so). Every response is
    /// validated before its data is used: its id must be the request in its slot, its status a positive length,
    /// its data inside the page; extra info slots are skipped (their type checked); slots chained with
    /// `NETRXF_more_data` make one packet. A bad slot drops its whole packet; its buffer is recycled either way.
    pub fn poll_rx(&mut self) -> Option<Result<RxPacket, RxDrop>> {
        let mut budget = RX_POLL_BUDGET;
        self.poll_rx_budget(&mut budget)
    }

    /// As [`Netfront::poll_rx`], taking at most `*budget` responses (ring slots), less the ones it takes: a caller
    /// that drops bad packets and asks again (as `sirocco_net::Vif` does) shares one budget between the calls.
    /// When the budget runs out before a packet is complete, returns `None` with [`Netfront::rx_pending`] set and
    /// `rsp_event` not re-armed: the caller must poll again soon, without waiting for an event.
    pub fn poll_rx_budget(&mut self, budget: &mut u32) -> Option<Result<RxPacket, RxDrop>> {
        let mut raw = [0u8; RX_ENTRY_SIZE];
        self.rx_more = false;
        loop {
            if self.is_broken() {
                return None;
            }
            match self.rx.unconsumed_responses() {
                Ok(0) => {
                    self.post_rx_buffers();
                    match self.rx.final_check_for_responses() {
                        Ok(true) => continue,
                        Ok(false) => return None,
                        Err(e) => return Some(Err(self.stop(Direction::Rx, e))),
                    }
                }
                Ok(_) => {}
                Err(e) => return Some(Err(self.stop(Direction::Rx, e))),
            }
            loop {
                if *budget == 0 {
                    // NAPI's "budget exhausted": stay scheduled. Keep the ring supplied (bounded by its size).
                    self.rx_more = true;
                    if self.rx_free.len() >= self.rx_batch {
                        self.post_rx_buffers();
                    }
                    return None;
                }
                let Some(index) = self.rx.take_response(&mut raw) else { break };
                *budget -= 1;
                if let Some(done) = self.rx_slot(index, &raw) {
                    if self.rx_free.len() >= self.rx_batch {
                        self.post_rx_buffers();
                    }
                    return Some(done);
                }
            }
        }
    }

    /// One RX slot; the packet's outcome if this slot ends it.
    fn rx_slot(&mut self, index: u32, raw: &[u8; RX_ENTRY_SIZE]) -> Option<Result<RxPacket, RxDrop>> {
        // The buffer whose request the backend consumed for this slot goes back to the free list whatever the
        // response says; its data is copied out below, before any repost.
        let posted = self.rx_posted[self.rx.slot(index)].take();
        if let Some(buf) = posted {
            self.rx_free.push(buf);
        }
        let counters = &mut self.counters;
        let chain = self.rx_chain.get_or_insert_with(|| RxChain {
            data: Vec::new(),
            flags: 0,
            gso_size: None,
            expect: Expect::First,
            fault: None,
        });
        match chain.expect {
            Expect::Extra { more_data } => {
                let extra = NetifExtraInfo::parse(raw);
                if extra.ty == EXTRA_TYPE_GSO {
                    // netif.h's `u.gso`: size (u16), type, pad, features. Only the type we asked for, with a
                    // segment size (Linux's netfront drops the same ones).
                    let (size, gso_type) = (u16::from_le_bytes([extra.data[0], extra.data[1]]), extra.data[2]);
                    let f = self.features;
                    let taken = match gso_type {
                        GSO_TYPE_TCPV4 => f.gso_rx_tcpv4,
                        GSO_TYPE_TCPV6 => f.gso_rx_tcpv6,
                        _ => false,
                    };
                    if taken && size != 0 {
                        chain.gso_size = Some(size);
                    } else {
                        let asked = f.gso_rx_tcpv4 || f.gso_rx_tcpv6;
                        rx_fault(counters, chain, index, FaultKind::BadGso { gso_type, size, asked });
                    }
                } else if extra.type_is_valid() {
                    counters.rx_extra_skipped += 1;
                } else {
                    rx_fault(counters, chain, index, FaultKind::BadExtra { ty: extra.ty });
                }
                if extra.flags & EXTRA_FLAG_MORE != 0 {
                    return None;
                }
                if more_data {
                    chain.expect = Expect::Fragment;
                    return None;
                }
            }
            Expect::First | Expect::Fragment => {
                let rsp = NetifRxResponse::parse(raw);
                let first = chain.expect == Expect::First;
                let len = rsp.status.max(0) as usize;
                let fault = if posted != Some(rsp.id) {
                    Some(FaultKind::BadId { id: rsp.id, expected: posted })
                } else if rsp.status <= 0 {
                    Some(FaultKind::Status { status: rsp.status })
                } else if usize::from(rsp.offset) + len > PAGE_SIZE {
                    Some(FaultKind::OutsidePage { offset: rsp.offset, len: len as u16 })
                } else if rsp.flags & NETRXF_GSO_PREFIX != 0 {
                    Some(FaultKind::BadFlags { flags: rsp.flags })
                } else if chain.data.len() + len > MAX_TX_SIZE {
                    Some(FaultKind::TooBig { len: chain.data.len() + len })
                } else {
                    None
                };
                match (fault, posted) {
                    (Some(kind), _) => rx_fault(counters, chain, index, kind),
                    (None, Some(buf)) if chain.fault.is_none() => {
                        let start = chain.data.len();
                        chain.data.resize(start + len, 0);
                        self.buffers.rx_read(buf, usize::from(rsp.offset), &mut chain.data[start..]);
                    }
                    (None, _) => {}
                }
                if first {
                    chain.flags = rsp.flags;
                }
                let more_data = rsp.flags & NETRXF_MORE_DATA != 0;
                if first && rsp.flags & NETRXF_EXTRA_INFO != 0 {
                    chain.expect = Expect::Extra { more_data };
                    return None;
                }
                if more_data {
                    chain.expect = Expect::Fragment;
                    return None;
                }
            }
        }
        let chain = self.rx_chain.take()?;
        if let Some(fault) = chain.fault {
            self.counters.rx_dropped += 1;
            return Some(Err(fault));
        }
        self.counters.rx_packets += 1;
        self.counters.rx_gso_packets += u64::from(chain.gso_size.is_some());
        self.counters.rx_bytes += chain.data.len() as u64;
        Some(Ok(RxPacket {
            data: chain.data,
            csum_blank: chain.flags & NETRXF_CSUM_BLANK != 0,
            data_validated: chain.flags & NETRXF_DATA_VALIDATED != 0,
            gso_size: chain.gso_size,
        }))
    }
}

/// Counts a bad RX slot and keeps the packet's first fault.
fn rx_fault(counters: &mut Counters, chain: &mut RxChain, index: u32, kind: FaultKind) {
    match kind {
        FaultKind::BadId { .. } => counters.rx_bad_id += 1,
        FaultKind::Status { .. } => counters.rx_bad_status += 1,
        FaultKind::OutsidePage { .. } => counters.rx_bad_offset += 1,
        FaultKind::BadFlags { .. } => counters.rx_bad_flags += 1,
        FaultKind::BadExtra { .. } | FaultKind::BadGso { .. } => counters.rx_bad_extra += 1,
        FaultKind::TooBig { .. } => counters.rx_too_big += 1,
        FaultKind::Ring(_) => counters.ring_overruns += 1,
    }
    chain.fault.get_or_insert(Fault { dir: Direction::Rx, index, kind });
}

/// The free list and the ring were both checked for room before the loop that takes from them.
#[cold]
fn unreachable_free_list() -> ! {
    unreachable!("TX room was checked before queueing")
}
