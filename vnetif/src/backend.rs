//! The host side of one vif: the buffer pages as a grant table on the heap ([`Grants`], [`HeapBuffers`]), the
//! event channel towards the backend ([`Kick`]), and [`Netback`], the backend ends of the node's TX and RX rings
//! (`ring::testing::BackRing`) speaking `io/netif.h` as Linux's netback does, with ways to misbehave: slow to
//! consume TX, not answering at all, gone.
//!
//! Like netback it is event-driven: it looks at the TX ring only when the front end kicked it (or when it left
//! work for later itself), and re-arms `req_event` with `RING_FINAL_CHECK_FOR_REQUESTS` before going idle, so a
//! front end that forgets a notification stalls here as it would on Xen. Frames for the guest wait in a bounded
//! queue until RX requests are posted (netback's `rx_queue`, 512 KiB by default), and are dropped beyond.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use sirocco_drivers::grant::GrantRef;
use sirocco_drivers::netfront::wire::{
    NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse, NETIF_RSP_ERROR, NETIF_RSP_OKAY,
    NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, NETRXF_MORE_DATA, NETTXF_MORE_DATA, PAGE_SIZE, RX_ENTRY_SIZE,
    TX_ENTRY_SIZE,
};
use sirocco_drivers::netfront::NetBuffers;
use sirocco_drivers::ring::offsets;
use sirocco_drivers::ring::testing::{BackRing, Page};
use sirocco_drivers::ring::Notify;

/// One granted page.
struct Granted {
    bytes: Vec<u8>,
    /// The backend may write it (RX buffers); else read only (TX buffers).
    writable: bool,
}

/// The grant table of one vif: heap pages by grant ref, as the backend maps them.
#[derive(Clone, Default)]
pub struct Grants(Rc<RefCell<BTreeMap<u32, Granted>>>);

impl Grants {
    /// Grants a new zeroed page; returns its ref.
    pub fn grant(&self, writable: bool) -> u32 {
        let mut t = self.0.borrow_mut();
        // Refs from 8, as Xen reserves the first ones.
        let gref = t.keys().next_back().map_or(8, |r| r + 1);
        t.insert(gref, Granted { bytes: vec![0; PAGE_SIZE], writable });
        gref
    }

    /// The backend's grant copy out of `gref` (`GNTTABOP_copy` from the guest).
    fn read(&self, gref: u32, offset: usize, len: usize) -> Result<Vec<u8>, &'static str> {
        let t = self.0.borrow();
        let page = t.get(&gref).ok_or("not a granted page")?;
        page.bytes.get(offset..offset + len).map(<[u8]>::to_vec).ok_or("runs past the page")
    }

    /// The backend's grant copy into `gref`.
    fn write(&self, gref: u32, offset: usize, data: &[u8]) -> Result<(), &'static str> {
        let mut t = self.0.borrow_mut();
        let page = t.get_mut(&gref).ok_or("not a granted page")?;
        if !page.writable {
            return Err("granted read-only");
        }
        page.bytes.get_mut(offset..offset + data.len()).ok_or("runs past the page")?.copy_from_slice(data);
        Ok(())
    }
}

/// The node's buffer pages, by index, as netfront sees them.
pub struct HeapBuffers {
    grants: Grants,
    tx: Vec<u32>,
    rx: Vec<u32>,
}

impl HeapBuffers {
    /// `tx` read-only and `rx` writable pages, granted in `grants`.
    pub fn new(grants: &Grants, tx: u16, rx: u16) -> HeapBuffers {
        HeapBuffers {
            grants: grants.clone(),
            tx: (0..tx).map(|_| grants.grant(false)).collect(),
            rx: (0..rx).map(|_| grants.grant(true)).collect(),
        }
    }
}

impl NetBuffers for HeapBuffers {
    fn tx_count(&self) -> u16 {
        self.tx.len() as u16
    }
    fn rx_count(&self) -> u16 {
        self.rx.len() as u16
    }
    fn tx_gref(&self, buf: u16) -> GrantRef {
        GrantRef(self.tx[usize::from(buf)])
    }
    fn rx_gref(&self, buf: u16) -> GrantRef {
        GrantRef(self.rx[usize::from(buf)])
    }
    fn tx_write(&mut self, buf: u16, offset: usize, data: &[u8]) {
        let mut t = self.grants.0.borrow_mut();
        let page = t.get_mut(&self.tx[usize::from(buf)]).expect("TX buffer granted");
        page.bytes[offset..offset + data.len()].copy_from_slice(data);
    }
    fn rx_read(&self, buf: u16, offset: usize, out: &mut [u8]) {
        let t = self.grants.0.borrow();
        out.copy_from_slice(&t[&self.rx[usize::from(buf)]].bytes[offset..offset + out.len()]);
    }
}

/// The node's event channel to its backend: counts the kicks.
#[derive(Clone, Default)]
pub struct Kick(pub Rc<Cell<u64>>);

impl Notify for Kick {
    fn notify(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Whether the backend does its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendState {
    /// Connected and working.
    Connected,
    /// Connected but not answering: it neither takes TX requests nor fills RX requests; frames for the guest
    /// wait in its queue (and overflow it). The xenbus state still says Connected.
    Paused,
    /// Gone (its xenbus state went to Closed): frames for the guest are dropped, the rings are not touched.
    Gone,
}

/// What the backend did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetbackStats {
    /// Frames taken off the TX ring.
    pub tx_frames: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Frames written into the RX ring.
    pub rx_frames: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// TX requests answered with an error (a bad gref, offset or size: a front-end bug).
    pub tx_errors: u64,
    /// Frames for the guest dropped because the queue was full.
    pub rx_queue_drops: u64,
    /// Frames for the guest dropped because the backend was gone.
    pub rx_gone_drops: u64,
    /// Times frames had to wait for RX requests (the guest had not posted enough buffers).
    pub rx_starved: u64,
    /// The most TX requests published and not yet answered, seen when taking requests.
    pub max_tx_in_flight: u32,
    /// Kicks from the front end.
    pub kicks: u64,
    /// Events sent to the front end.
    pub events: u64,
    /// Times the backend attached to (new) rings.
    pub attaches: u64,
}

/// The backend ends of one vif's rings.
pub struct Netback {
    tx: BackRing,
    rx: BackRing,
    grants: Grants,
    kick: Kick,
    kicks_seen: u64,
    /// Look at both rings on the next service, kicked or not (after a pause).
    wake: bool,
    /// An event for the front end is pending (the next response push decided to notify).
    pub(crate) event: bool,
    /// Working, paused or gone.
    pub state: BackendState,
    /// Take at most this many TX requests per service, then come back after [`Netback::tx_interval_us`] (a
    /// slow backend; `None`: all there are).
    pub tx_batch: Option<usize>,
    /// See [`Netback::tx_batch`].
    pub tx_interval_us: u64,
    next_tx_us: Option<u64>,
    rx_queue: VecDeque<Vec<u8>>,
    rx_queued_bytes: usize,
    /// The most bytes waiting for RX requests; frames beyond are dropped.
    pub rx_queue_limit: usize,
    /// RX data per slot: frames longer are split into slots chained with `NETRXF_more_data` (needs
    /// `feature-sg`).
    pub rx_slot_len: usize,
    /// Deliver IPv4 TCP and UDP frames with `NETRXF_csum_blank` and a garbage checksum, as netback does with
    /// packets from a sender that offloads its checksums.
    pub rx_csum_blank: bool,
    partial: Vec<NetifTxRequest>,
    /// What it did.
    pub stats: NetbackStats,
}

impl Netback {
    /// Attaches to the rings on `tx_page` and `rx_page`, over `grants`, woken by `kick`.
    pub fn attach(tx_page: Page, rx_page: Page, grants: Grants, kick: Kick) -> Netback {
        let kicks_seen = kick.0.get();
        Netback {
            tx: BackRing::attach(tx_page, TX_ENTRY_SIZE),
            rx: BackRing::attach(rx_page, RX_ENTRY_SIZE),
            grants,
            kick,
            kicks_seen,
            wake: false,
            event: false,
            state: BackendState::Connected,
            tx_batch: None,
            tx_interval_us: 1000,
            next_tx_us: None,
            rx_queue: VecDeque::new(),
            rx_queued_bytes: 0,
            rx_queue_limit: 512 * 1024,
            rx_slot_len: PAGE_SIZE,
            rx_csum_blank: false,
            partial: Vec::new(),
            stats: NetbackStats { attaches: 1, ..NetbackStats::default() },
        }
    }

    /// A new backend instance on new rings (after the front end's reset): what the old one held is lost.
    pub fn reattach(&mut self, tx_page: Page, rx_page: Page) {
        self.tx = BackRing::attach(tx_page, TX_ENTRY_SIZE);
        self.rx = BackRing::attach(rx_page, RX_ENTRY_SIZE);
        self.kicks_seen = self.kick.0.get();
        self.partial.clear();
        self.rx_queue.clear();
        self.rx_queued_bytes = 0;
        self.next_tx_us = None;
        self.state = BackendState::Connected;
        self.stats.attaches += 1;
    }

    /// Stops answering ([`BackendState::Paused`]) or, with `false`, answers again (and looks at both rings at
    /// once, as an event would make it).
    pub fn set_paused(&mut self, paused: bool) {
        match (paused, self.state) {
            (true, BackendState::Connected) => self.state = BackendState::Paused,
            (false, BackendState::Paused) => {
                self.state = BackendState::Connected;
                self.wake = true;
            }
            _ => {}
        }
    }

    /// Work to do on the next service without any event (just resumed).
    pub(crate) fn wants_service(&self) -> bool {
        self.wake && self.state == BackendState::Connected
    }

    /// When the backend will look at the TX ring again by itself (a slow backend's next batch).
    pub fn next_wakeup_us(&self) -> Option<u64> {
        match self.state {
            BackendState::Connected => self.next_tx_us,
            _ => None,
        }
    }

    /// RX requests posted and not yet filled.
    pub fn rx_requests(&self) -> u32 {
        self.rx.unconsumed_requests()
    }

    /// TX requests published and not yet answered.
    pub fn tx_in_flight(&self) -> u32 {
        self.tx.header(offsets::REQ_PROD).wrapping_sub(self.tx.rsp_prod_pvt)
    }

    /// Frames waiting for RX requests.
    pub fn rx_queued(&self) -> usize {
        self.rx_queue.len()
    }

    /// Does what an event or its own timer asks: takes TX requests (returned: the frames the guest sent) and
    /// fills RX requests with queued frames (appended to `delivered`).
    pub fn service(&mut self, now_us: u64, delivered: &mut Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        if self.state != BackendState::Connected {
            return Vec::new();
        }
        let kicks = self.kick.0.get();
        let kicked = kicks != self.kicks_seen || std::mem::take(&mut self.wake);
        self.stats.kicks += kicks - self.kicks_seen;
        self.kicks_seen = kicks;
        let mut sent = Vec::new();
        if kicked || self.next_tx_us.is_some_and(|t| t <= now_us) {
            self.service_tx(now_us, &mut sent);
        }
        if kicked && !self.rx_queue.is_empty() {
            self.service_rx(delivered);
        }
        sent
    }

    /// A frame from the switch for the guest: queued, and delivered at once if requests are posted.
    pub fn deliver(&mut self, frame: Vec<u8>, delivered: &mut Vec<Vec<u8>>) {
        if self.state == BackendState::Gone {
            self.stats.rx_gone_drops += 1;
            return;
        }
        if self.rx_queued_bytes + frame.len() > self.rx_queue_limit {
            self.stats.rx_queue_drops += 1;
            return;
        }
        self.rx_queued_bytes += frame.len();
        self.rx_queue.push_back(frame);
        if self.state == BackendState::Connected {
            self.service_rx(delivered);
        }
    }

    fn push_tx(&mut self) {
        if self.tx.push_responses_and_check_notify() {
            self.event = true;
            self.stats.events += 1;
        }
    }

    fn push_rx(&mut self) {
        if self.rx.push_responses_and_check_notify() {
            self.event = true;
            self.stats.events += 1;
        }
    }

    fn service_tx(&mut self, now_us: u64, sent: &mut Vec<Vec<u8>>) {
        let mut budget = self.tx_batch.unwrap_or(usize::MAX);
        self.next_tx_us = None;
        loop {
            self.stats.max_tx_in_flight = self.stats.max_tx_in_flight.max(self.tx_in_flight());
            while budget > 0 {
                let Some(bytes) = self.tx.take_request() else { break };
                budget -= 1;
                let req = NetifTxRequest::parse(bytes[..TX_ENTRY_SIZE].try_into().expect("a whole entry"));
                self.partial.push(req);
                if req.flags & NETTXF_MORE_DATA == 0 {
                    let requests = std::mem::take(&mut self.partial);
                    let status = match self.assemble(&requests) {
                        Ok(frame) => {
                            self.stats.tx_frames += 1;
                            self.stats.tx_bytes += frame.len() as u64;
                            sent.push(frame);
                            NETIF_RSP_OKAY
                        }
                        Err(e) => {
                            self.stats.tx_errors += 1;
                            log::error!("netback: bad TX request chain {requests:?}: {e}");
                            NETIF_RSP_ERROR
                        }
                    };
                    for r in &requests {
                        self.tx.put_response(&NetifTxResponse { id: r.id, status }.emit());
                    }
                }
            }
            self.push_tx();
            if budget == 0 {
                if self.tx.unconsumed_requests() > 0 {
                    self.next_tx_us = Some(now_us + self.tx_interval_us);
                    return;
                }
                budget = 1; // only to re-arm below
            }
            if !self.tx.final_check_for_requests() {
                return;
            }
        }
    }

    /// Reassembles a packet from its slots, checking each against netif.h's rules and the grants.
    fn assemble(&self, requests: &[NetifTxRequest]) -> Result<Vec<u8>, &'static str> {
        let total = usize::from(requests[0].size);
        let rest: usize = requests[1..].iter().map(|r| usize::from(r.size)).sum();
        if rest > total {
            return Err("later slots exceed the packet size");
        }
        let mut frame = Vec::with_capacity(total);
        for (k, r) in requests.iter().enumerate() {
            let own = if k == 0 { total - rest } else { usize::from(r.size) };
            if usize::from(r.offset) + own > PAGE_SIZE {
                return Err("a slot crosses its page");
            }
            frame.extend_from_slice(&self.grants.read(r.gref, usize::from(r.offset), own)?);
        }
        Ok(frame)
    }

    fn service_rx(&mut self, delivered: &mut Vec<Vec<u8>>) {
        let mut any = false;
        while let Some(frame) = self.rx_queue.front() {
            let slots = frame.len().div_ceil(self.rx_slot_len).max(1) as u32;
            if self.rx.unconsumed_requests() < slots {
                // Ask for an event when the guest posts more, and look once more (the lost-wakeup check).
                self.rx.final_check_for_requests();
                if self.rx.unconsumed_requests() < slots {
                    self.stats.rx_starved += 1;
                    break;
                }
            }
            let mut frame = self.rx_queue.pop_front().expect("peeked");
            self.rx_queued_bytes -= frame.len();
            let mut flags = NETRXF_DATA_VALIDATED;
            if self.rx_csum_blank && blank_checksum(&mut frame) {
                flags |= NETRXF_CSUM_BLANK;
            }
            let chunks: Vec<&[u8]> = frame.chunks(self.rx_slot_len).collect();
            for (k, chunk) in chunks.iter().enumerate() {
                let bytes = self.rx.take_request().expect("counted above");
                let req = NetifRxRequest::parse(bytes[..8].try_into().expect("8 bytes"));
                let mut f = if k == 0 { flags } else { 0 };
                if k + 1 < chunks.len() {
                    f |= NETRXF_MORE_DATA;
                }
                let status = match self.grants.write(req.gref, 0, chunk) {
                    Ok(()) => chunk.len() as i16,
                    Err(e) => {
                        log::error!("netback: RX request {req:?} names a bad buffer: {e}");
                        NETIF_RSP_ERROR
                    }
                };
                let rsp = NetifRxResponse { id: req.id, offset: 0, flags: f, status };
                self.rx.put_response(&rsp.emit()[..RX_ENTRY_SIZE]);
            }
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += frame.len() as u64;
            delivered.push(frame);
            any = true;
        }
        if any {
            self.push_rx();
        }
    }
}

/// Overwrites the TCP or UDP checksum of an IPv4 frame with garbage (what a `csum_blank` sender leaves is a
/// partial sum the receiver must not trust); false if the frame is something else.
fn blank_checksum(frame: &mut [u8]) -> bool {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[20] & 0x3f != 0 || frame[21] != 0 {
        return false;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let at = match frame[23] {
        6 => 14 + ihl + 16,
        17 => 14 + ihl + 6,
        _ => return false,
    };
    if frame.len() < at + 2 {
        return false;
    }
    frame[at..at + 2].copy_from_slice(&[0xde, 0xad]);
    true
}
