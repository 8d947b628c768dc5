//! A fake netback for host tests: the backend ends of the TX and RX rings over the same heap pages the driver
//! uses, and the buffer pages "mapped" by grant ref from the store the driver writes and reads by buffer index. It
//! speaks the real wire format and can be told to misbehave: tests write raw responses, hold responses back, stop
//! consuming, or move `rsp_prod` themselves.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
#[allow(unused_imports)] // the prelude has them under cfg(test)
use std::{boxed::Box, vec, vec::Vec};

use super::device::{Features, NetBuffers, Netfront};
use super::wire::{
    NetifExtraInfo, NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse, EXTRA_FLAG_MORE, NETIF_RSP_NULL,
    NETIF_RSP_OKAY, NETRXF_EXTRA_INFO, NETRXF_MORE_DATA, NETTXF_EXTRA_INFO, NETTXF_MORE_DATA, PAGE_SIZE, RX_ENTRY_SIZE,
    TX_ENTRY_SIZE,
};
use crate::grant::GrantRef;
use crate::ring::testing::{get, page, set, BackRing, HeapRing, Page};
use crate::ring::{offsets, Notify};

/// TX buffer `i` is granted as ref `TX_GREF_BASE + i`.
pub const TX_GREF_BASE: u32 = 100;
/// RX buffer `i` is granted as ref `RX_GREF_BASE + i`.
pub const RX_GREF_BASE: u32 = 1000;

/// The granted buffer pages, by grant ref.
pub struct Store {
    pub pages: BTreeMap<u32, Vec<u8>>,
    tx: Vec<u32>,
    rx: Vec<u32>,
    /// What the driver did with the RX buffers, in order (for oracles: data is read only from buffers that were
    /// posted, once per posting). Drained by whoever checks it.
    pub rx_log: Vec<RxBufferOp>,
}

/// An access by the driver to an RX buffer, as [`Store::rx_log`] records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxBufferOp {
    /// Its grant ref was taken for an RX request: it is being posted.
    Posted(u16),
    /// Data was copied out of it.
    Read { buf: u16, offset: usize, len: usize },
}

pub type SharedStore = Rc<RefCell<Store>>;

/// The driver's view of the buffers: by index.
pub struct FakeBuffers(pub SharedStore);

impl NetBuffers for FakeBuffers {
    fn tx_count(&self) -> u16 {
        self.0.borrow().tx.len() as u16
    }
    fn rx_count(&self) -> u16 {
        self.0.borrow().rx.len() as u16
    }
    fn tx_gref(&self, buf: u16) -> GrantRef {
        GrantRef(self.0.borrow().tx[usize::from(buf)])
    }
    fn rx_gref(&self, buf: u16) -> GrantRef {
        let mut s = self.0.borrow_mut();
        s.rx_log.push(RxBufferOp::Posted(buf));
        GrantRef(s.rx[usize::from(buf)])
    }
    fn tx_write(&mut self, buf: u16, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= PAGE_SIZE, "tx_write past the page");
        let mut s = self.0.borrow_mut();
        let gref = s.tx[usize::from(buf)];
        s.pages.get_mut(&gref).unwrap()[offset..offset + data.len()].copy_from_slice(data);
    }
    fn rx_read(&self, buf: u16, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= PAGE_SIZE, "rx_read past the page");
        let mut s = self.0.borrow_mut();
        s.rx_log.push(RxBufferOp::Read { buf, offset, len: out.len() });
        let gref = s.rx[usize::from(buf)];
        out.copy_from_slice(&s.pages[&gref][offset..offset + out.len()]);
    }
}

/// The event channel: counts kicks.
pub struct FakeEvtchn(pub Rc<Cell<u32>>);

impl Notify for FakeEvtchn {
    fn notify(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// A packet as the backend took it off the TX ring.
#[derive(Clone, Debug)]
pub struct Sent {
    pub data: Vec<u8>,
    /// The first slot's flags.
    pub flags: u16,
    pub requests: Vec<NetifTxRequest>,
    /// The extra info slots that followed the first request (a GSO one for TSO).
    pub extras: Vec<NetifExtraInfo>,
}

pub struct FakeNetback {
    pub tx: BackRing,
    pub rx: BackRing,
    pub store: SharedStore,
    /// Packets taken off the TX ring, in order.
    pub sent: Vec<Sent>,
    /// The status TX requests are answered with.
    pub tx_status: i16,
    /// Consume TX requests but do not answer them (until [`FakeNetback::release_tx_responses`]).
    pub hold_tx_responses: bool,
    pub held: Vec<NetifTxResponse>,
    /// Where delivered data goes in an RX page.
    pub rx_offset: u16,
    /// Times a response push decided the front end must be notified.
    pub notified_front: u32,
    partial: Vec<NetifTxRequest>,
    partial_extras: Vec<NetifExtraInfo>,
    /// Extra info slots still to come for the packet being taken.
    extras_due: bool,
    /// The packet's last data slot was taken but its extras were not (a one-slot packet with extras).
    complete_after_extras: bool,
}

/// The driver under test, the fake backend, and the kick counter.
pub struct Harness {
    pub nf: Netfront<HeapRing, FakeBuffers, FakeEvtchn>,
    pub nb: FakeNetback,
    pub kicks: Rc<Cell<u32>>,
}

/// A driver with `tx` and `rx` buffers, both rings' indices starting at `start`; not yet posted or connected.
pub fn harness_at(features: Features, tx: u16, rx: u16, start: u32) -> Harness {
    let mut pages = BTreeMap::new();
    let tx_refs: Vec<u32> = (0..u32::from(tx)).map(|i| TX_GREF_BASE + i).collect();
    let rx_refs: Vec<u32> = (0..u32::from(rx)).map(|i| RX_GREF_BASE + i).collect();
    for &r in tx_refs.iter().chain(&rx_refs) {
        pages.insert(r, vec![0u8; PAGE_SIZE]);
    }
    let store = Rc::new(RefCell::new(Store { pages, tx: tx_refs, rx: rx_refs, rx_log: Vec::new() }));
    let (tx_page, rx_page) = (page(), page());
    let kicks = Rc::new(Cell::new(0));
    let nf = Netfront::with_ring_start(
        HeapRing(tx_page.clone()),
        HeapRing(rx_page.clone()),
        FakeBuffers(store.clone()),
        FakeEvtchn(kicks.clone()),
        features,
        start,
    );
    let nb = FakeNetback {
        tx: BackRing::attach(tx_page, TX_ENTRY_SIZE),
        rx: BackRing::attach(rx_page, RX_ENTRY_SIZE),
        store,
        sent: Vec::new(),
        tx_status: NETIF_RSP_OKAY,
        hold_tx_responses: false,
        held: Vec::new(),
        rx_offset: 0,
        notified_front: 0,
        partial: Vec::new(),
        partial_extras: Vec::new(),
        extras_due: false,
        complete_after_extras: false,
    };
    Harness { nf, nb, kicks }
}

impl Harness {
    /// The backend went away and a new one attaches: the driver resets onto two new ring pages
    /// ([`Netfront::reset`]) and the fake backend attaches to them, forgetting what it held.
    pub fn reset(&mut self) -> super::ResetReport {
        let (tx_page, rx_page) = (page(), page());
        let report = self.nf.reset(HeapRing(tx_page.clone()), HeapRing(rx_page.clone()));
        self.nb.reattach(tx_page, rx_page);
        report
    }
}

/// [`harness_at`] from index 0, RX buffers posted and the backend Connected.
pub fn connected(features: Features, tx: u16, rx: u16) -> Harness {
    let mut h = harness_at(features, tx, rx, 0);
    h.nf.post_rx_buffers();
    h.nf.backend_connected();
    h
}

impl FakeNetback {
    /// Attaches to new ring pages (a new backend after [`Netfront::reset`]): held responses and a half-taken
    /// packet are forgotten.
    pub fn reattach(&mut self, tx_page: Page, rx_page: Page) {
        self.tx = BackRing::attach(tx_page, TX_ENTRY_SIZE);
        self.rx = BackRing::attach(rx_page, RX_ENTRY_SIZE);
        self.held.clear();
        self.partial.clear();
    }

    fn push_tx(&mut self) {
        if self.tx.push_responses_and_check_notify() {
            self.notified_front += 1;
        }
    }

    fn push_rx(&mut self) {
        if self.rx.push_responses_and_check_notify() {
            self.notified_front += 1;
        }
    }

    /// Takes every published TX request, reassembling packets (checking each slot stays in its page and the
    /// sizes add up) and answering each slot with its id and [`FakeNetback::tx_status`]. Then re-arms
    /// `req_event` as netback does. Returns how many packets were completed.
    pub fn consume_tx(&mut self) -> usize {
        let mut completed = 0;
        loop {
            while let Some(bytes) = self.tx.take_request() {
                if self.extras_due {
                    // An extra info slot: answered NULL, as netback does (its id means nothing).
                    let info = NetifExtraInfo::parse(bytes[..8].try_into().unwrap());
                    self.extras_due = info.flags & EXTRA_FLAG_MORE != 0;
                    self.partial_extras.push(info);
                    let response = NetifTxResponse { id: 0xFFFF, status: NETIF_RSP_NULL };
                    if self.hold_tx_responses {
                        self.held.push(response);
                    } else {
                        self.tx.put_response(&response.emit());
                    }
                    if !self.extras_due && std::mem::take(&mut self.complete_after_extras) {
                        let requests = std::mem::take(&mut self.partial);
                        self.sent.push(self.reassemble(requests));
                        self.partial_extras.clear();
                        completed += 1;
                    }
                    continue;
                }
                let req = NetifTxRequest::parse(bytes[..12].try_into().unwrap());
                let response = NetifTxResponse { id: req.id, status: self.tx_status };
                if self.hold_tx_responses {
                    self.held.push(response);
                } else {
                    self.tx.put_response(&response.emit());
                }
                self.partial.push(req);
                if self.partial.len() == 1 && req.flags & NETTXF_EXTRA_INFO != 0 {
                    self.extras_due = true;
                    if req.flags & NETTXF_MORE_DATA == 0 {
                        self.complete_after_extras = true;
                        continue;
                    }
                }
                if req.flags & NETTXF_MORE_DATA == 0 {
                    let requests = std::mem::take(&mut self.partial);
                    self.sent.push(self.reassemble(requests));
                    self.partial_extras.clear();
                    completed += 1;
                }
            }
            self.push_tx();
            if !self.tx.final_check_for_requests() {
                return completed;
            }
        }
    }

    fn reassemble(&self, requests: Vec<NetifTxRequest>) -> Sent {
        let total = usize::from(requests[0].size);
        let rest: usize = requests[1..].iter().map(|r| usize::from(r.size)).sum();
        assert!(rest <= total, "later slots ({rest}) exceed the packet size {total}");
        let store = self.store.borrow();
        let mut data = Vec::with_capacity(total);
        for (k, r) in requests.iter().enumerate() {
            let own = if k == 0 { total - rest } else { usize::from(r.size) };
            let start = usize::from(r.offset);
            assert!(start + own <= PAGE_SIZE, "slot {k} crosses its page: offset {start} size {own}");
            assert!(store.tx.contains(&r.gref), "gref {} is not a TX buffer", r.gref);
            data.extend_from_slice(&store.pages[&r.gref][start..start + own]);
        }
        Sent { data, flags: requests[0].flags, requests, extras: self.partial_extras.clone() }
    }

    /// Answers the held TX requests.
    pub fn release_tx_responses(&mut self) {
        for response in std::mem::take(&mut self.held) {
            self.tx.put_response(&response.emit());
        }
        self.push_tx();
    }

    /// Answers one consumed-but-unanswered TX slot with whatever response the test likes.
    pub fn respond_tx_raw(&mut self, response: NetifTxResponse) {
        self.tx.put_response(&response.emit());
        self.push_tx();
    }

    /// RX requests available to fill.
    pub fn rx_requests(&self) -> u32 {
        self.rx.unconsumed_requests()
    }

    fn take_rx_request(&mut self) -> NetifRxRequest {
        let bytes = self.rx.take_request().expect("an RX request is posted");
        NetifRxRequest::parse(bytes[..8].try_into().unwrap())
    }

    /// Writes into the page granted as `gref`, as the backend's grant copy would.
    pub fn write_page(&self, gref: u32, offset: usize, data: &[u8]) {
        let mut store = self.store.borrow_mut();
        assert!(store.rx.contains(&gref), "gref {gref} is not an RX buffer");
        store.pages.get_mut(&gref).unwrap()[offset..offset + data.len()].copy_from_slice(data);
    }

    /// Delivers `frame` in one slot (it must fit from [`FakeNetback::rx_offset`]).
    pub fn deliver(&mut self, frame: &[u8], flags: u16) {
        assert!(self.deliver_slots(frame, flags, PAGE_SIZE - usize::from(self.rx_offset), &[]));
    }

    /// Delivers `frame` in slots of at most `slot_len` bytes chained with `NETRXF_more_data` (`flags` on the
    /// first), with `extras` after the first slot. False (nothing consumed) if not enough requests are posted.
    pub fn deliver_slots(&mut self, frame: &[u8], flags: u16, slot_len: usize, extras: &[NetifExtraInfo]) -> bool {
        let chunks: Vec<&[u8]> = frame.chunks(slot_len).collect();
        if (self.rx_requests() as usize) < chunks.len() + extras.len() {
            return false;
        }
        for (k, chunk) in chunks.iter().enumerate() {
            let req = self.take_rx_request();
            self.write_page(req.gref, usize::from(self.rx_offset), chunk);
            let mut f = if k == 0 { flags } else { 0 };
            if k + 1 < chunks.len() {
                f |= NETRXF_MORE_DATA;
            }
            if k == 0 && !extras.is_empty() {
                f |= NETRXF_EXTRA_INFO;
            }
            let rsp = NetifRxResponse { id: req.id, offset: self.rx_offset, flags: f, status: chunk.len() as i16 };
            self.rx.put_response(&rsp.emit());
            if k == 0 {
                for extra in extras {
                    self.take_rx_request();
                    self.rx.put_response(&extra.emit());
                }
            }
        }
        self.push_rx();
        true
    }

    /// Consumes one RX request and answers it with the bytes `make` returns (given the request).
    pub fn respond_rx_raw(&mut self, make: impl FnOnce(NetifRxRequest) -> [u8; RX_ENTRY_SIZE]) {
        let req = self.take_rx_request();
        self.rx.put_response(&make(req));
        self.push_rx();
    }

    /// Hostile mode: from now on the backend answers every RX request the moment it is published (it runs each
    /// time the driver loads `rsp_prod`, as a backend on another CPU would), with the response `make` returns for
    /// it, until it has made `limit` responses; then it goes silent, so that a test of code without a budget ends
    /// and can report how much work it did. Returns the count of responses made so far. The fake's own RX ring
    /// state is not used in this mode.
    pub fn answer_rx_forever(
        &mut self,
        limit: u64,
        mut make: impl FnMut(NetifRxRequest) -> [u8; RX_ENTRY_SIZE] + 'static,
    ) -> Rc<Cell<u64>> {
        let made = Rc::new(Cell::new(0u64));
        let count = made.clone();
        let size = self.rx.size;
        self.rx.page.borrow_mut().before_load_rsp_prod = Some(Box::new(move |bytes: &mut Vec<u8>| {
            let req_prod = get(bytes, offsets::REQ_PROD);
            let mut rsp_prod = get(bytes, offsets::RSP_PROD);
            while rsp_prod != req_prod && count.get() < limit {
                let at = offsets::RING + (rsp_prod & (size - 1)) as usize * RX_ENTRY_SIZE;
                let req = NetifRxRequest::parse(bytes[at..at + RX_ENTRY_SIZE].try_into().unwrap());
                bytes[at..at + RX_ENTRY_SIZE].copy_from_slice(&make(req));
                rsp_prod = rsp_prod.wrapping_add(1);
                count.set(count.get() + 1);
            }
            set(bytes, offsets::RSP_PROD, rsp_prod);
        }));
        made
    }
}

impl FakeNetback {
    /// Ends [`FakeNetback::answer_rx_forever`]: the backend answers only when told again, from where the hostile
    /// mode left the ring (every request it saw is answered).
    pub fn stop_answering_rx(&mut self) {
        self.rx.page.borrow_mut().before_load_rsp_prod = None;
        let rsp_prod = self.rx.header(offsets::RSP_PROD);
        self.rx.req_cons = rsp_prod;
        self.rx.rsp_prod_pvt = rsp_prod;
    }
}

/// For [`FakeNetback::answer_rx_forever`]: a plausible response (60 bytes at offset 0) carrying the wrong id.
pub fn bad_id(req: NetifRxRequest) -> [u8; RX_ENTRY_SIZE] {
    NetifRxResponse { id: !req.id, offset: 0, flags: 0, status: 60 }.emit()
}

/// For [`FakeNetback::answer_rx_forever`]: a correct 60-byte slot that says more of its packet follows, forever.
pub fn endless_chain(req: NetifRxRequest) -> [u8; RX_ENTRY_SIZE] {
    NetifRxResponse { id: req.id, offset: 0, flags: NETRXF_MORE_DATA, status: 60 }.emit()
}
