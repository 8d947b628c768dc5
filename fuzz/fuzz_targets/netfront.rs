//! netfront against a hostile netback: the fuzzer chooses what the backend does (answer honestly, answer with bad
//! or repeated ids, wrong statuses, offsets and sizes outside the page, extra-info chains, a producer index that
//! jumps past the requests, a flood of responses as fast as buffers are posted) interleaved with what the guest
//! does (transmit, TSO transmit with its GSO extra info slot, poll, reset).
//!
//! Oracles, checked after every step:
//! - no panic (the fake netback's own assertions check the requests the driver publishes);
//! - conservation: every TX buffer is free or in flight and every RX buffer free or posted, exactly once
//!   (`Netfront::audit`), and after the final reset every buffer is free again: none lost, none double-freed;
//! - grant refs: every request names the grant of the buffer its id stands for;
//! - bounded work: one `poll_rx` takes at most `RX_POLL_BUDGET` responses, one `poll_tx` at most the ring;
//! - received data comes only from buffers that were posted, within the page, once per posting;
//! - after a reset the device works again (a frame each way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sirocco_drivers::netfront::fake::{
    bad_id, endless_chain, harness_at, FakeEvtchn, Harness, RxBufferOp, RX_GREF_BASE, TX_GREF_BASE,
};
use sirocco_drivers::netfront::wire::{
    NetifExtraInfo, NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse, EXTRA_FLAG_MORE, EXTRA_TYPE_GSO,
    GSO_TYPE_TCPV4, NETIF_RSP_NULL, NETTXF_EXTRA_INFO, NETTXF_MORE_DATA, PAGE_SIZE, RX_ENTRY_SIZE, TX_ENTRY_SIZE,
};
use sirocco_drivers::netfront::{Features, Phase, TxChecksum, RX_POLL_BUDGET};
use sirocco_drivers::ring::offsets;

/// The fuzzer's bytes, read front to back; zeros once they run out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the harness knows of each RX buffer, from the driver's accesses to it.
#[derive(Clone, Copy, PartialEq, Debug)]
enum RxState {
    Free,
    Posted,
    Read,
}

struct Run {
    h: Harness,
    tx_count: u16,
    rx_count: u16,
    rx_state: Vec<RxState>,
    /// Whether the fake's view of each ring still matches the page (an index jump makes it lie: the fake then
    /// stays off that ring until the next reset).
    tx_sane: bool,
    rx_sane: bool,
    last_tx_id: u16,
    last_rx_id: u16,
    /// Bytes copied out of RX buffers since the last packet ended (delivered or dropped).
    read_since_packet: usize,
}

impl Run {
    /// Every oracle that holds at any point.
    fn check(&mut self, step: &str) {
        if let Err(e) = self.h.nf.audit() {
            panic!("after {step}: {e}");
        }
        let log: Vec<RxBufferOp> = std::mem::take(&mut self.h.nb.store.borrow_mut().rx_log);
        for op in log {
            match op {
                RxBufferOp::Posted(b) => {
                    assert!(b < self.rx_count, "after {step}: posted RX buffer {b} does not exist");
                    self.rx_state[usize::from(b)] = RxState::Posted;
                }
                RxBufferOp::Read { buf, offset, len } => {
                    let state = self.rx_state[usize::from(buf)];
                    assert_eq!(state, RxState::Posted, "after {step}: data read from RX buffer {buf} ({state:?})");
                    assert!(offset + len <= PAGE_SIZE, "after {step}: read {offset}+{len} past the page");
                    self.rx_state[usize::from(buf)] = RxState::Read;
                    self.read_since_packet += len;
                }
            }
        }
    }

    fn poll_rx(&mut self) {
        let before = self.h.nf.rx_rsp_cons();
        let r = self.h.nf.poll_rx();
        let taken = self.h.nf.rx_rsp_cons().wrapping_sub(before);
        assert!(taken <= RX_POLL_BUDGET, "one poll_rx took {taken} responses");
        self.check("poll_rx");
        match r {
            Some(Ok(p)) => {
                assert!(!p.data.is_empty() && p.data.len() <= 0xFFFF, "a {}-byte packet", p.data.len());
                // The packet is exactly the validated slots' data, each copied from a posted buffer.
                assert_eq!(p.data.len(), self.read_since_packet, "packet length vs bytes read from its buffers");
                self.read_since_packet = 0;
            }
            Some(Err(_)) => self.read_since_packet = 0,
            None => {}
        }
    }

    fn poll_tx(&mut self) {
        let before = self.h.nf.tx_rsp_cons();
        let poll = self.h.nf.poll_tx();
        let taken = self.h.nf.tx_rsp_cons().wrapping_sub(before);
        assert!(taken <= 256, "one poll_tx took {taken} responses");
        assert!(poll.freed <= taken && poll.faults <= taken + 1, "{poll:?} from {taken} responses");
        self.check("poll_tx");
    }

    /// The backend takes the next whole packet off the TX ring and answers each slot as the fuzzer says.
    fn hostile_tx(&mut self, input: &mut Input) {
        if !self.tx_sane {
            return;
        }
        let (mut first, mut extra_due, mut last_data) = (true, false, false);
        while let Some(bytes) = self.h.nb.tx.take_request() {
            if extra_due {
                // A GSO extra info slot follows a TSO packet's first request; netback answers it NULL.
                let info = NetifExtraInfo::parse(bytes[..8].try_into().unwrap());
                assert_eq!((info.ty, info.data[2]), (EXTRA_TYPE_GSO, GSO_TYPE_TCPV4), "extra info slot {info:?}");
                assert_ne!(u16::from_le_bytes([info.data[0], info.data[1]]), 0, "a GSO slot with MSS 0");
                extra_due = info.flags & EXTRA_FLAG_MORE != 0;
                let status = if input.u8() % 4 == 0 { input.u16() as i16 } else { NETIF_RSP_NULL };
                self.h.nb.tx.put_response(&NetifTxResponse { id: input.u16(), status }.emit());
                if !extra_due && last_data {
                    break;
                }
                continue;
            }
            let req = NetifTxRequest::parse(bytes[..TX_ENTRY_SIZE].try_into().unwrap());
            extra_due = first && req.flags & NETTXF_EXTRA_INFO != 0;
            first = false;
            assert!(req.id < self.tx_count, "TX request id {} for {} buffers", req.id, self.tx_count);
            assert_eq!(req.gref, TX_GREF_BASE + u32::from(req.id), "TX request {} names another grant", req.id);
            assert!(usize::from(req.offset) < PAGE_SIZE, "TX request offset {}", req.offset);
            let id = match input.u8() % 4 {
                0 => req.id,
                1 => self.last_tx_id,
                2 => req.id.wrapping_add(1),
                _ => input.u16(),
            };
            let status = match input.u8() % 4 {
                0 => 0,
                1 => -1,
                2 => -2,
                _ => input.u16() as i16,
            };
            self.last_tx_id = req.id;
            self.h.nb.tx.put_response(&NetifTxResponse { id, status }.emit());
            if req.flags & NETTXF_MORE_DATA == 0 {
                if extra_due {
                    last_data = true;
                    continue;
                }
                break;
            }
        }
        self.h.nb.tx.push_responses_and_check_notify();
    }

    /// The backend answers the next RX request with a response of the fuzzer's making (or an extra-info slot).
    fn hostile_rx(&mut self, input: &mut Input) {
        if !self.rx_sane || self.h.nb.rx_requests() == 0 {
            return;
        }
        let (kind, a, b, c) = (input.u8(), input.u16(), input.u16(), input.u16());
        let last = self.last_rx_id;
        let mut seen = None;
        self.h.nb.respond_rx_raw(|req: NetifRxRequest| {
            seen = Some(req);
            match kind % 6 {
                // Right id, fuzzed offset, flags, status.
                0 | 1 => NetifRxResponse { id: req.id, offset: a, flags: b, status: c as i16 }.emit(),
                2 => NetifRxResponse { id: last, offset: a % 64, flags: b & 0x1f, status: (c % 1600) as i16 }.emit(),
                3 => NetifRxResponse { id: a, offset: 0, flags: b, status: c as i16 }.emit(),
                // An extra-info slot, of any type, maybe chaining more.
                4 => NetifExtraInfo { ty: (a % 7) as u8, flags: (a >> 8) as u8 & 1, data: [b as u8, 0, 0, 0, 0, 0] }
                    .emit(),
                _ => {
                    let mut raw = [0u8; RX_ENTRY_SIZE];
                    raw[..2].copy_from_slice(&a.to_le_bytes());
                    raw[2..4].copy_from_slice(&b.to_le_bytes());
                    raw[4..6].copy_from_slice(&c.to_le_bytes());
                    raw[6..].copy_from_slice(&a.to_be_bytes());
                    raw
                }
            }
        });
        let req = seen.expect("a request was answered");
        assert!(req.id < self.rx_count, "RX request id {} for {} buffers", req.id, self.rx_count);
        assert_eq!(req.gref, RX_GREF_BASE + u32::from(req.id), "RX request {} names another grant", req.id);
        self.last_rx_id = req.id;
    }

    /// An index the backend writes that no response backs: `rsp_prod` moved by the fuzzer.
    fn jump(&mut self, input: &mut Input) {
        let rx = input.u8() & 1 == 1;
        let delta = match input.u8() % 4 {
            0 => 1,
            1 => 257,
            2 => u32::MAX,
            _ => input.u32(),
        };
        let ring = if rx { &self.h.nb.rx } else { &self.h.nb.tx };
        let now = ring.header(offsets::RSP_PROD);
        ring.set_header(offsets::RSP_PROD, now.wrapping_add(delta));
        if rx {
            self.rx_sane = false;
        } else {
            self.tx_sane = false;
        }
    }

    /// The backend answers every posted buffer the moment the driver looks, for a while.
    fn flood(&mut self, input: &mut Input) {
        if !self.rx_sane {
            return;
        }
        let limit = u64::from(input.u16() % 2048);
        let made = if input.u8() & 1 == 0 {
            self.h.nb.answer_rx_forever(limit, bad_id)
        } else {
            self.h.nb.answer_rx_forever(limit, endless_chain)
        };
        let polls = 1 + input.u8() % 8;
        for _ in 0..polls {
            self.poll_rx();
        }
        assert!(made.get() <= limit);
        self.h.nb.stop_answering_rx();
        self.check("flood");
    }

    fn reset(&mut self) {
        let report = self.h.reset();
        assert!(report.tx_dropped <= u32::from(self.tx_count) && report.rx_reclaimed <= u32::from(self.rx_count));
        self.rx_state.fill(RxState::Free);
        self.read_since_packet = 0;
        self.tx_sane = true;
        self.rx_sane = true;
        self.check("reset");
        // The whole pool is back: every buffer free.
        assert_eq!(self.h.nf.tx_free_buffers(), usize::from(self.tx_count), "TX buffers lost across reset");
        assert_eq!(self.h.nf.rx_free_buffers(), usize::from(self.rx_count), "RX buffers lost across reset");
    }
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let setup = input.u8();
    let features = Features {
        sg: setup & 1 != 0,
        csum_offload: setup & 2 != 0,
        gso_tcpv4: setup & 16 != 0,
        gso_rx_tcpv4: setup & 32 != 0,
        gso_tcpv6: false,
        gso_rx_tcpv6: false,
        split_event_channels: setup & 64 != 0,
    };
    let tx_count = 1 + u16::from(input.u8() % 24);
    let rx_count = 1 + u16::from(input.u8() % 48);
    let start = match setup >> 2 & 3 {
        0 => 0,
        1 => u32::MAX - 2,
        2 => u32::MAX - 300,
        _ => input.u32(),
    };
    let mut h = harness_at(features, tx_count, rx_count, start);
    if features.split_event_channels {
        // The RX ring kicked on a port of its own: the same driver state, another notifier.
        let Harness { nf, nb, kicks } = h;
        let rx_kicks = std::rc::Rc::new(std::cell::Cell::new(0));
        h = Harness { nf: nf.with_rx_event_channel(FakeEvtchn(rx_kicks)), nb, kicks };
    }
    let mut run = Run {
        h,
        tx_count,
        rx_count,
        rx_state: vec![RxState::Free; usize::from(rx_count)],
        tx_sane: true,
        rx_sane: true,
        last_tx_id: 0,
        last_rx_id: 0,
        read_since_packet: 0,
    };
    run.h.nf.post_rx_buffers();
    run.h.nf.backend_connected();
    run.check("connect");

    for _ in 0..256 {
        if input.is_empty() {
            break;
        }
        match input.u8() % 13 {
            op @ (0 | 1) => {
                let max = run.h.nf.max_packet();
                let len = 1 + usize::from(input.u16()) % max;
                let csum = [TxChecksum::Valid, TxChecksum::Blank, TxChecksum::Unchecked][usize::from(input.u8() % 3)];
                let before = run.h.nf.tx_free_buffers();
                let data = frame(len, input.u8());
                // With TSO negotiated, op 1 sends a segment for the backend to cut up (a GSO extra info slot).
                let sent = if op == 1 && features.gso_tcpv4 {
                    run.h.nf.transmit_tcpv4_gso(&data, input.u16())
                } else {
                    run.h.nf.transmit(&data, csum)
                };
                match sent {
                    Ok(()) => assert_eq!(run.h.nf.tx_free_buffers(), before - len.div_ceil(PAGE_SIZE)),
                    Err(_) => assert_eq!(run.h.nf.tx_free_buffers(), before, "a refused packet took buffers"),
                }
                run.check("transmit");
            }
            2 => {
                if run.tx_sane {
                    run.h.nb.hold_tx_responses = input.u8() % 4 == 0;
                    run.h.nb.consume_tx();
                }
            }
            3 => {
                if run.tx_sane {
                    run.h.nb.release_tx_responses();
                }
            }
            4 => run.hostile_tx(&mut input),
            5 => {
                if run.rx_sane {
                    let len = 1 + usize::from(input.u16()) % 9000;
                    let slot_len = 1 + usize::from(input.u16()) % PAGE_SIZE;
                    let flags = u16::from(input.u8() & 3);
                    let extras: Vec<NetifExtraInfo> = (0..input.u8() % 3)
                        // A well-formed GSO extra first (MSS 1448, TCPv4): taken with large receive, refused
                        // without it.
                        .map(|k| NetifExtraInfo { ty: 1 + k, flags: 0, data: [0xa8 * u8::from(k == 0), 5, 1, 0, 0, 0] })
                        .collect();
                    let extras = match extras.len() {
                        2 => vec![NetifExtraInfo { flags: 1, ..extras[0] }, extras[1]],
                        _ => extras,
                    };
                    run.h.nb.deliver_slots(&frame(len, input.u8()), flags, slot_len, &extras);
                }
            }
            6 | 7 => run.hostile_rx(&mut input),
            8 | 9 => run.poll_rx(),
            10 => run.poll_tx(),
            11 => match input.u8() % 8 {
                0 => run.jump(&mut input),
                1 | 2 => run.flood(&mut input),
                3 => run.reset(),
                _ => {
                    run.h.nf.post_rx_buffers();
                    run.check("post_rx_buffers");
                }
            },
            _ => {
                // The guest's event loop: reap, then receive until nothing is left (or the budget says stop).
                run.poll_tx();
                for _ in 0..4 {
                    run.poll_rx();
                }
            }
        }
    }

    // Close: the backend goes away; everything comes back; a new, honest backend gets a working device.
    run.reset();
    run.h.nb.hold_tx_responses = false;
    run.h.nf.post_rx_buffers();
    run.h.nf.backend_connected();
    assert_eq!(run.h.nf.phase(), Phase::Connected);
    run.check("reconnect");
    let out = frame(60, 9);
    run.h.nf.transmit(&out, TxChecksum::Valid).expect("transmit after reset");
    assert_eq!(run.h.nb.consume_tx(), 1);
    assert_eq!(run.h.nb.sent.last().unwrap().data, out);
    run.poll_tx();
    assert_eq!(run.h.nf.tx_free_buffers(), usize::from(tx_count));
    let inbound = frame(60, 3);
    run.h.nb.deliver(&inbound, 0);
    match run.h.nf.poll_rx() {
        Some(Ok(p)) => assert_eq!(p.data, inbound),
        other => panic!("after reset, a good frame came back as {other:?}"),
    }
    run.read_since_packet = 0;
    run.check("final");
});
