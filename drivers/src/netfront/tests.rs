//! netfront against the fake netback (`fake`), the ABI pinned against `xen/io/netif.h`, the checksum helper
//! against hand-built frames, and the xenstore connection against the fake xenstored.

use super::fake::{connected, harness_at, FakeEvtchn, Harness, RX_GREF_BASE, TX_GREF_BASE};
use super::wire::*;
use super::*;
use crate::ring::testing::{page, HeapRing};
use crate::ring::{offsets, RingError};
use std::cell::Cell;
use std::rc::Rc;

const SG: Features = Features::SG;
const GSO: Features = Features { gso_tcpv4: true, ..Features::SG };
const LRO: Features = Features { gso_tcpv4: true, gso_rx_tcpv4: true, ..Features::SG };
const SIX: Features = Features { gso_tcpv6: true, gso_rx_tcpv6: true, ..LRO };
const PLAIN: Features = Features::NONE;

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn rx_ok(h: &mut Harness) -> RxPacket {
    match h.nf.poll_rx() {
        Some(Ok(p)) => p,
        other => panic!("expected a packet, got {other:?}"),
    }
}

fn rx_drop(h: &mut Harness) -> RxDrop {
    match h.nf.poll_rx() {
        Some(Err(d)) => d,
        other => panic!("expected a drop, got {other:?}"),
    }
}

// ----- ABI -----

#[test]
fn wire_constants_match_netif_h() {
    assert_eq!((NETTXF_CSUM_BLANK, NETTXF_DATA_VALIDATED, NETTXF_MORE_DATA, NETTXF_EXTRA_INFO), (1, 2, 4, 8));
    assert_eq!((NETRXF_DATA_VALIDATED, NETRXF_CSUM_BLANK, NETRXF_MORE_DATA, NETRXF_EXTRA_INFO), (1, 2, 4, 8));
    assert_eq!(NETRXF_GSO_PREFIX, 16);
    assert_eq!((NETIF_RSP_DROPPED, NETIF_RSP_ERROR, NETIF_RSP_OKAY, NETIF_RSP_NULL), (-2, -1, 0, 1));
    assert_eq!((EXTRA_TYPE_NONE, EXTRA_TYPE_GSO, EXTRA_TYPE_MCAST_ADD, EXTRA_TYPE_MCAST_DEL), (0, 1, 2, 3));
    assert_eq!((EXTRA_TYPE_HASH, EXTRA_TYPE_MAX, EXTRA_FLAG_MORE), (4, 5, 1));
    assert_eq!((GSO_TYPE_TCPV4, GSO_TYPE_TCPV6), (1, 2));
    assert_eq!((MAX_TX_SIZE, NR_SLOTS_MIN, PAGE_SIZE), (0xFFFF, 18, 4096));
    assert_eq!((TX_ENTRY_SIZE, RX_ENTRY_SIZE), (12, 8));
    assert_eq!((crate::ring::ring_size(TX_ENTRY_SIZE), crate::ring::ring_size(RX_ENTRY_SIZE)), (256, 256));
    use core::mem::size_of;
    assert_eq!(size_of::<NetifTxRequest>(), 12);
    assert_eq!(size_of::<NetifTxResponse>(), 4);
    assert_eq!(size_of::<NetifRxRequest>(), 8);
    assert_eq!(size_of::<NetifRxResponse>(), 8);
    assert_eq!(size_of::<NetifExtraInfo>(), 8);
}

#[test]
fn the_csum_pair_is_swapped_between_tx_and_rx() {
    // The anchor bug: reading RX flags with the TX values. Bit 0 means csum_blank on TX, data_validated on RX.
    assert_eq!(NETTXF_CSUM_BLANK, NETRXF_DATA_VALIDATED);
    assert_eq!(NETTXF_DATA_VALIDATED, NETRXF_CSUM_BLANK);
    assert_ne!(NETTXF_CSUM_BLANK, NETRXF_CSUM_BLANK);
}

#[test]
fn slots_are_little_endian_bytes_in_header_order() {
    let tx = NetifTxRequest { gref: 0x0403_0201, offset: 0x0605, flags: 0x0807, id: 0x0a09, size: 0x0c0b };
    assert_eq!(tx.emit(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(NetifTxRequest::parse(&tx.emit()), tx);
    let txr = NetifTxResponse { id: 0x0201, status: -2 };
    assert_eq!(txr.emit(), [1, 2, 0xfe, 0xff]);
    assert_eq!(NetifTxResponse::parse(&txr.emit()), txr);
    let rx = NetifRxRequest { id: 0x0201, pad: 0, gref: 0x0807_0605 };
    assert_eq!(rx.emit(), [1, 2, 0, 0, 5, 6, 7, 8]);
    assert_eq!(NetifRxRequest::parse(&rx.emit()), rx);
    let rxr = NetifRxResponse { id: 0x0201, offset: 0x0403, flags: 0x0605, status: -1 };
    assert_eq!(rxr.emit(), [1, 2, 3, 4, 5, 6, 0xff, 0xff]);
    assert_eq!(NetifRxResponse::parse(&rxr.emit()), rxr);
    let extra = NetifExtraInfo { ty: EXTRA_TYPE_GSO, flags: EXTRA_FLAG_MORE, data: [0xb4, 0x05, 1, 0, 0, 0] };
    assert_eq!(extra.emit(), [1, 1, 0xb4, 0x05, 1, 0, 0, 0]);
    assert_eq!(NetifExtraInfo::parse(&extra.emit()), extra);
    assert!(extra.type_is_valid());
    for ty in [EXTRA_TYPE_NONE, EXTRA_TYPE_MAX, 200] {
        assert!(!NetifExtraInfo { ty, ..extra }.type_is_valid(), "{ty}");
    }
}

// ----- transmit -----

#[test]
fn transmit_before_the_backend_is_connected_is_refused() {
    let mut h = harness_at(SG, 8, 8, 0);
    assert_eq!(h.nf.phase(), Phase::Initialising);
    assert_eq!(h.nf.post_rx_buffers(), 8, "RX buffers may be posted before connecting");
    assert_eq!(h.nf.transmit(&frame(60, 0), TxChecksum::Valid), Err(TxError::NotConnected));
    assert_eq!(h.nf.counters().tx_not_connected, 1);
    assert_eq!(h.nb.consume_tx(), 0, "nothing reached the ring");
    assert_eq!(h.nf.tx_free_buffers(), 8);
    h.nf.backend_connected();
    assert_eq!(h.nf.phase(), Phase::Connected);
    h.nf.transmit(&frame(60, 0), TxChecksum::Valid).unwrap();
    assert_eq!(h.nb.consume_tx(), 1);
    assert_eq!(TxError::NotConnected.to_string(), "not sent: the backend is not connected yet");
}

#[test]
fn a_single_slot_packet_reaches_the_backend_and_its_buffer_comes_back() {
    let mut h = connected(PLAIN, 4, 4);
    let data = frame(1514, 7);
    h.nf.transmit(&data, TxChecksum::Valid).unwrap();
    assert_eq!(h.nf.tx_free_buffers(), 3);
    assert_eq!(h.nb.consume_tx(), 1);
    let sent = &h.nb.sent[0];
    assert_eq!(sent.data, data);
    let r = sent.requests[0];
    assert_eq!(sent.requests.len(), 1);
    assert_eq!((r.gref, r.offset, r.flags, r.size), (TX_GREF_BASE + u32::from(r.id), 0, NETTXF_DATA_VALIDATED, 1514));
    let poll = h.nf.poll_tx();
    assert_eq!(poll, TxPoll { freed: 1, faults: 0, first_fault: None });
    assert_eq!(h.nf.tx_free_buffers(), 4);
    let c = h.nf.counters();
    assert_eq!((c.tx_packets, c.tx_bytes), (1, 1514));
}

#[test]
fn tx_checksum_flags_follow_the_callers_word_and_the_offload_choice() {
    let mut h = connected(SG, 8, 4);
    h.nf.transmit(&frame(100, 0), TxChecksum::Valid).unwrap();
    h.nf.transmit(&frame(100, 0), TxChecksum::Blank).unwrap();
    h.nf.transmit(&frame(100, 0), TxChecksum::Unchecked).unwrap();
    h.nb.consume_tx();
    let flags: Vec<u16> = h.nb.sent.iter().map(|s| s.flags).collect();
    assert_eq!(flags, [NETTXF_DATA_VALIDATED, NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED, 0]);
    assert_eq!(flags, [2, 3, 0], "TX values: csum_blank is bit 0 on this side");

    let mut h = connected(PLAIN, 8, 4);
    assert_eq!(h.nf.transmit(&frame(100, 0), TxChecksum::Blank), Err(TxError::ChecksumOffloadOff));
    assert_eq!(h.nf.counters().tx_csum_refused, 1);
    assert_eq!(h.nf.tx_free_buffers(), 8);
}

#[test]
fn a_tso_segment_goes_out_with_a_gso_extra_info_slot_answered_null() {
    let mut h = connected(GSO, 32, 4);
    let data = frame(30_000, 3);
    h.nf.transmit_tcpv4_gso(&data, 1448).unwrap();
    assert_eq!(h.nf.tx_free_buffers(), 32 - 8, "8 pages of data; the extra slot takes no buffer");
    assert_eq!(h.nf.tx_free_slots(), 256 - 9, "8 data slots and the extra info slot");
    assert_eq!(h.nb.consume_tx(), 1);
    let sent = &h.nb.sent[0];
    assert_eq!(sent.data, data);
    assert_eq!(sent.requests.len(), 8);
    assert_eq!(sent.flags, NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED | NETTXF_MORE_DATA | NETTXF_EXTRA_INFO);
    assert!(sent.requests[1..].iter().all(|r| r.flags & NETTXF_EXTRA_INFO == 0), "only the first slot says so");
    let m = 1448u16.to_le_bytes();
    let gso = NetifExtraInfo { ty: EXTRA_TYPE_GSO, flags: 0, data: [m[0], m[1], GSO_TYPE_TCPV4, 0, 0, 0] };
    assert_eq!(sent.extras, [gso]);
    // Eight OKAY responses and one NULL (the extra slot's): every buffer back, nothing counted as a fault.
    let poll = h.nf.poll_tx();
    assert_eq!(poll, TxPoll { freed: 8, faults: 0, first_fault: None });
    assert_eq!(h.nf.tx_free_buffers(), 32);
    let c = h.nf.counters();
    assert_eq!((c.tx_packets, c.tx_gso_packets, c.tx_bad_status), (1, 1, 0));
    // A NULL nobody was owed stays a fault (tx_error_statuses_free_the_buffer_and_are_counted).
}

#[test]
fn a_tcpv6_tso_segment_carries_a_tcpv6_gso_slot_and_needs_its_own_negotiation() {
    let mut h = connected(SIX, 32, 4);
    let data = frame(20_000, 5);
    h.nf.transmit_tcpv6_gso(&data, 1428).unwrap();
    assert_eq!(h.nb.consume_tx(), 1);
    let m = 1428u16.to_le_bytes();
    let gso = NetifExtraInfo { ty: EXTRA_TYPE_GSO, flags: 0, data: [m[0], m[1], GSO_TYPE_TCPV6, 0, 0, 0] };
    assert_eq!((h.nb.sent[0].extras.as_slice(), h.nb.sent[0].data.as_slice()), ([gso].as_slice(), data.as_slice()));
    assert_eq!(h.nf.counters().tx_gso_packets, 1);
    // TCPv4 TSO does not imply TCPv6 TSO.
    let mut h = connected(LRO, 32, 4);
    assert_eq!(h.nf.transmit_tcpv6_gso(&data, 1428), Err(TxError::GsoOff));
    assert_eq!(h.nf.counters().tx_gso_refused, 1);
}

#[test]
fn a_large_tcpv6_segment_is_taken_only_with_ipv6_large_receive() {
    let gso6 = NetifExtraInfo { ty: EXTRA_TYPE_GSO, flags: 0, data: [0xa0, 0x05, GSO_TYPE_TCPV6, 0, 0, 0] };
    let mut h = connected(SIX, 4, 16);
    assert!(h.nb.deliver_slots(&frame(9000, 2), NETRXF_CSUM_BLANK, PAGE_SIZE, &[gso6]));
    let p = rx_ok(&mut h);
    assert_eq!((p.data.len(), p.gso_size), (9000, Some(1440)));
    let mut h = connected(LRO, 4, 16);
    assert!(h.nb.deliver_slots(&frame(9000, 2), NETRXF_CSUM_BLANK, PAGE_SIZE, &[gso6]));
    assert_eq!(rx_drop(&mut h).kind, FaultKind::BadGso { gso_type: GSO_TYPE_TCPV6, size: 1440, asked: true });
}

#[test]
fn a_one_slot_tso_segment_still_carries_its_extra_slot() {
    let mut h = connected(GSO, 8, 4);
    h.nf.transmit_tcpv4_gso(&frame(3000, 1), 1448).unwrap();
    h.nf.transmit(&frame(60, 2), TxChecksum::Valid).unwrap();
    assert_eq!(h.nb.consume_tx(), 2, "the packet after it is taken apart correctly");
    assert_eq!((h.nb.sent[0].requests.len(), h.nb.sent[0].extras.len()), (1, 1));
    assert_eq!(h.nb.sent[0].flags & NETTXF_MORE_DATA, 0);
    assert_eq!((h.nb.sent[1].data.len(), h.nb.sent[1].extras.len()), (60, 0));
    assert_eq!(h.nf.poll_tx(), TxPoll { freed: 2, faults: 0, first_fault: None });
}

#[test]
fn tso_without_negotiation_is_refused_and_the_extra_slot_counts_for_room() {
    let mut h = connected(SG, 32, 4);
    assert_eq!(h.nf.transmit_tcpv4_gso(&frame(9000, 0), 1448), Err(TxError::GsoOff));
    assert_eq!(h.nf.counters().tx_gso_refused, 1);
    let mut h = connected(GSO, 32, 4);
    assert_eq!(h.nf.transmit_tcpv4_gso(&frame(9000, 0), 0), Err(TxError::GsoOff), "MSS 0");
    // 253 one-slot packets in flight (unanswered) leave three slots and three buffers: a 3-page segment fits the
    // buffers but needs a fourth slot for its extra info.
    let mut h = connected(GSO, 256, 4);
    for _ in 0..253 {
        h.nf.transmit(&frame(60, 0), TxChecksum::Valid).unwrap();
    }
    assert_eq!((h.nf.tx_free_slots(), h.nf.tx_free_buffers()), (3, 3));
    let pages = 3;
    let e = h.nf.transmit_tcpv4_gso(&frame(pages * PAGE_SIZE, 0), 1448);
    assert!(matches!(e, Err(TxError::RingFull { needed, .. }) if needed == pages + 1), "{e:?}");
}

#[test]
fn a_large_packet_is_split_into_chained_slots() {
    let mut h = connected(SG, 32, 4);
    let data = frame(MAX_TX_SIZE, 3);
    h.nf.transmit(&data, TxChecksum::Blank).unwrap();
    assert_eq!(h.nf.tx_free_buffers(), 32 - 16);
    assert_eq!(h.nb.consume_tx(), 1);
    let sent = &h.nb.sent[0];
    assert_eq!(sent.data, data, "reassembled by the backend");
    assert_eq!(sent.requests.len(), 16);
    assert_eq!(sent.requests[0].size, 65535, "the first slot carries the whole length");
    assert_eq!(sent.requests[0].flags, NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED | NETTXF_MORE_DATA);
    for r in &sent.requests[1..15] {
        assert_eq!((r.size, r.flags, r.offset), (4096, NETTXF_MORE_DATA, 0));
    }
    assert_eq!((sent.requests[15].size, sent.requests[15].flags), (65535 - 15 * 4096, 0));
    let ids: std::collections::BTreeSet<u16> = sent.requests.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 16, "one buffer, one id per slot");
    assert_eq!(h.nf.poll_tx().freed, 16);
    assert_eq!(h.nf.tx_free_buffers(), 32);
}

#[test]
fn page_boundaries_decide_the_slot_count() {
    let mut h = connected(SG, 8, 4);
    for (len, slots) in [(4095, 1), (4096, 1), (4097, 2), (8192, 2), (8193, 3)] {
        h.nf.transmit(&frame(len, 1), TxChecksum::Valid).unwrap();
        h.nb.consume_tx();
        let sent = h.nb.sent.last().unwrap();
        assert_eq!((sent.requests.len(), sent.data.len()), (slots, len), "{len}");
        h.nf.poll_tx();
    }
}

#[test]
fn several_slots_without_scatter_gather_are_refused() {
    let mut h = connected(PLAIN, 8, 4);
    h.nf.transmit(&frame(4096, 0), TxChecksum::Valid).unwrap();
    let e = h.nf.transmit(&frame(4097, 0), TxChecksum::Valid).unwrap_err();
    assert_eq!(e, TxError::NeedsScatterGather { len: 4097, slots: 2 });
    assert!(e.to_string().contains("feature-sg"), "{e}");
    assert_eq!(h.nf.counters().tx_needs_sg, 1);
    assert_eq!(h.nf.max_packet(), 4096);
    assert_eq!(h.nf.tx_free_buffers(), 7);
}

#[test]
fn oversized_and_empty_packets_are_refused() {
    let mut h = connected(SG, 32, 4);
    assert_eq!(h.nf.max_packet(), 65535);
    assert_eq!(h.nf.transmit(&frame(65536, 0), TxChecksum::Valid), Err(TxError::TooBig { len: 65536, max: 65535 }));
    assert_eq!(h.nf.transmit(&[], TxChecksum::Valid), Err(TxError::Empty));
    assert_eq!(h.nf.counters().tx_too_big, 2);
    let mut h = connected(PLAIN, 32, 4);
    assert_eq!(h.nf.transmit(&frame(70000, 0), TxChecksum::Valid), Err(TxError::TooBig { len: 70000, max: 4096 }));
    // Fewer TX buffers than a packet needs slots: refused outright, not "retry later".
    let mut h = connected(SG, 4, 4);
    assert_eq!(h.nf.max_packet(), 4 * 4096);
    assert_eq!(h.nf.transmit(&frame(20000, 0), TxChecksum::Valid), Err(TxError::TooBig { len: 20000, max: 16384 }));
    h.nf.transmit(&frame(16384, 0), TxChecksum::Valid).unwrap();
}

#[test]
fn a_full_ring_is_refused_and_counted_until_the_backend_catches_up() {
    let mut h = connected(SG, 300, 4);
    for i in 0..256 {
        h.nf.transmit(&frame(64, i as u8), TxChecksum::Valid).unwrap();
    }
    let e = h.nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap_err();
    assert_eq!(e, TxError::RingFull { needed: 1, free_slots: 0, free_buffers: 44 });
    assert!(e.to_string().contains("retry after poll_tx"), "{e}");
    assert_eq!(h.nf.poll_tx().freed, 0, "the backend has not consumed anything");
    assert_eq!(h.nf.counters().tx_ring_full, 1);
    assert_eq!(h.nb.consume_tx(), 256);
    assert_eq!(h.nf.poll_tx().freed, 256);
    h.nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap();
    assert_eq!(h.nb.sent.len(), 256);
}

#[test]
fn running_out_of_buffers_is_refused_until_the_backend_answers() {
    let mut h = connected(SG, 8, 4);
    for _ in 0..6 {
        h.nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap();
    }
    // Two buffers left: a three-slot packet does not fit.
    let e = h.nf.transmit(&frame(9000, 0), TxChecksum::Valid).unwrap_err();
    assert_eq!(e, TxError::RingFull { needed: 3, free_slots: 250, free_buffers: 2 });
    h.nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap();
    h.nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap();
    assert!(matches!(h.nf.transmit(&frame(64, 0), TxChecksum::Valid), Err(TxError::RingFull { .. })));
    assert_eq!(h.nf.counters().tx_no_buffer, 2);
    // The backend consumes but stops answering: still nothing to free.
    h.nb.hold_tx_responses = true;
    assert_eq!(h.nb.consume_tx(), 8);
    assert_eq!(h.nf.poll_tx().freed, 0);
    assert!(h.nf.transmit(&frame(64, 0), TxChecksum::Valid).is_err());
    h.nb.release_tx_responses();
    assert_eq!(h.nf.poll_tx().freed, 8);
    h.nf.transmit(&frame(9000, 0), TxChecksum::Valid).unwrap();
}

#[test]
fn tx_responses_with_unknown_or_repeated_ids_are_counted_and_ignored() {
    let mut h = connected(SG, 16, 4);
    for _ in 0..3 {
        h.nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap();
    }
    h.nb.hold_tx_responses = true;
    h.nb.consume_tx();
    let ids: Vec<u16> = h.nb.held.iter().map(|r| r.id).collect();
    h.nb.respond_tx_raw(NetifTxResponse { id: 999, status: NETIF_RSP_OKAY });
    h.nb.respond_tx_raw(NetifTxResponse { id: ids[1], status: NETIF_RSP_OKAY });
    h.nb.respond_tx_raw(NetifTxResponse { id: ids[1], status: NETIF_RSP_OKAY });
    let poll = h.nf.poll_tx();
    let unknown = Fault { dir: Direction::Tx, index: 0, kind: FaultKind::BadId { id: 999, expected: None } };
    assert_eq!(poll, TxPoll { freed: 1, faults: 2, first_fault: Some(unknown) });
    assert_eq!(unknown.to_string(), "tx response at ring index 0: id 999 is not an outstanding request");
    assert_eq!(h.nf.counters().tx_bad_id, 2);
    assert_eq!(h.nf.tx_free_buffers(), 14, "only the one real completion freed a buffer");
    assert_eq!(h.nf.phase(), Phase::Connected, "bad ids are contained, not fatal");
}

#[test]
fn tx_error_statuses_free_the_buffer_and_are_counted() {
    let mut h = connected(SG, 8, 4);
    for _ in 0..4 {
        h.nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap();
    }
    h.nb.hold_tx_responses = true;
    h.nb.consume_tx();
    let ids: Vec<u16> = h.nb.held.iter().map(|r| r.id).collect();
    for (id, status) in [(ids[0], NETIF_RSP_ERROR), (ids[1], NETIF_RSP_DROPPED), (ids[2], 7), (ids[3], NETIF_RSP_NULL)]
    {
        h.nb.respond_tx_raw(NetifTxResponse { id, status });
    }
    let poll = h.nf.poll_tx();
    assert_eq!((poll.freed, poll.faults), (3, 4));
    let first = poll.first_fault.unwrap();
    assert_eq!(first.kind, FaultKind::Status { status: -1 });
    assert_eq!(first.to_string(), "tx response at ring index 0: status -1 (NETIF_RSP_ERROR)");
    let c = h.nf.counters();
    assert_eq!((c.tx_error, c.tx_dropped, c.tx_bad_status), (1, 1, 2));
    assert_eq!(h.nf.tx_free_buffers(), 7, "a NULL response names no buffer");
}

#[test]
fn tx_rsp_prod_running_ahead_stops_the_device() {
    let mut h = connected(SG, 8, 4);
    h.nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap();
    h.nb.tx.set_header(offsets::RSP_PROD, 5);
    let poll = h.nf.poll_tx();
    let overrun = RingError::Overrun { rsp_prod: 5, rsp_cons: 0, req_prod: 1 };
    let fault = Fault { dir: Direction::Tx, index: 0, kind: FaultKind::Ring(overrun) };
    assert_eq!(poll.first_fault, Some(fault));
    assert_eq!(poll.freed, 0);
    assert_eq!(h.nf.phase(), Phase::Broken(fault));
    assert!(fault.to_string().ends_with("the device is stopped"), "{fault}");
    assert_eq!(h.nf.transmit(&frame(64, 0), TxChecksum::Valid), Err(TxError::Broken(fault)));
    assert_eq!(h.nf.poll_rx(), None);
    assert_eq!(h.nf.post_rx_buffers(), 0);
    h.nf.backend_connected();
    assert!(matches!(h.nf.phase(), Phase::Broken(_)), "no way back");
    assert_eq!(h.nf.counters().ring_overruns, 1);
}

#[test]
fn the_backend_is_notified_only_when_it_waits() {
    let mut h = connected(SG, 8, 4);
    assert_eq!(h.kicks.get(), 1, "posting the RX buffers: the backend waits for its first request");
    h.nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap();
    assert_eq!(h.kicks.get(), 2, "the first TX request");
    h.nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap();
    assert_eq!(h.kicks.get(), 2, "the backend has not gone idle since: no kick");
    h.nb.consume_tx(); // goes idle: req_event = req_cons + 1
    h.nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap();
    assert_eq!(h.kicks.get(), 3);
    assert_eq!(h.nf.counters().notifies, 3);
}

#[test]
fn with_split_event_channels_each_ring_is_kicked_on_its_own_port() {
    let split = Features { split_event_channels: true, ..SG };
    let Harness { nf, mut nb, kicks } = harness_at(split, 8, 4, 0);
    let rx_kicks = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut nf = nf.with_rx_event_channel(FakeEvtchn(rx_kicks.clone()));
    assert_eq!(nf.post_rx_buffers(), 4);
    nf.backend_connected();
    assert_eq!((kicks.get(), rx_kicks.get()), (0, 1), "posting RX buffers kicks the RX port only");
    nf.transmit(&frame(64, 0), TxChecksum::Valid).unwrap();
    assert_eq!((kicks.get(), rx_kicks.get()), (1, 1), "a TX request kicks the TX port only");
    for i in 0..4 {
        nb.deliver(&frame(100, i), 0);
    }
    // Every posted buffer used: netback waits for more (`req_event` past its `req_cons`, as it leaves it).
    assert!(!nb.rx.final_check_for_requests());
    while nf.poll_rx().is_some() {}
    nf.post_rx_buffers();
    assert_eq!((kicks.get(), rx_kicks.get()), (1, 2), "RX buffers posted again: the RX port");
    assert_eq!(nf.counters().notifies, 3);
}

#[test]
fn both_rings_wrap_around_u32() {
    let mut h = harness_at(SG, 40, 40, u32::MAX - 5);
    h.nf.post_rx_buffers();
    h.nf.backend_connected();
    for i in 0..600usize {
        let out = frame(60 + (i * 97) % 9000, i as u8);
        h.nf.transmit(&out, TxChecksum::Valid).unwrap();
        assert_eq!(h.nb.consume_tx(), 1);
        assert_eq!(h.nb.sent.last().unwrap().data, out);
        assert_eq!(h.nf.poll_tx().faults, 0);
        let inp = frame(60 + (i * 131) % 9000, !(i as u8));
        assert!(h.nb.deliver_slots(&inp, 0, 4096, &[]));
        assert_eq!(rx_ok(&mut h).data, inp, "packet {i}");
        assert_eq!(h.nf.poll_rx(), None);
    }
    assert!(h.nb.tx.req_cons < 10_000 && h.nb.rx.req_cons < 10_000, "indices went through 0");
    let c = h.nf.counters();
    assert_eq!((c.tx_packets, c.rx_packets, c.rx_dropped), (600, 600, 0));
}

// ----- receive -----

#[test]
fn rx_buffers_are_posted_with_their_ids_and_grant_refs() {
    let mut h = harness_at(PLAIN, 4, 300, 0);
    assert_eq!(h.nf.post_rx_buffers(), 256, "as many as the ring holds");
    assert_eq!(h.nf.rx_free_buffers(), 44);
    assert_eq!(h.kicks.get(), 1);
    assert_eq!(h.nf.post_rx_buffers(), 0, "ring full");
    for expected in 0..3u16 {
        let req = NetifRxRequest::parse(h.nb.rx.take_request().unwrap()[..8].try_into().unwrap());
        assert_eq!(req, NetifRxRequest { id: expected, pad: 0, gref: RX_GREF_BASE + u32::from(expected) });
    }
}

#[test]
fn a_single_slot_frame_is_received_and_its_buffer_reposted() {
    let mut h = connected(PLAIN, 4, 8);
    h.nb.rx_offset = 10;
    let data = frame(1514, 9);
    h.nb.deliver(&data, 0);
    let p = rx_ok(&mut h);
    assert_eq!(p, RxPacket { data: data.clone(), csum_blank: false, data_validated: false, gso_size: None });
    assert_eq!(h.nf.poll_rx(), None);
    assert_eq!((h.nf.rx_free_buffers(), h.nb.rx_requests()), (0, 8), "reposted");
    let c = h.nf.counters();
    assert_eq!((c.rx_packets, c.rx_bytes), (1, 1514));
}

#[test]
fn rx_checksum_flags_are_read_with_the_rx_values() {
    let mut h = connected(SG, 4, 8);
    h.nb.deliver(&frame(60, 0), NETRXF_CSUM_BLANK);
    let p = rx_ok(&mut h);
    assert!(p.csum_blank && !p.data_validated, "bit 1 on RX is csum_blank");
    h.nb.deliver(&frame(60, 0), NETRXF_DATA_VALIDATED);
    let p = rx_ok(&mut h);
    assert!(!p.csum_blank && p.data_validated, "bit 0 on RX is data_validated");
    h.nb.deliver(&frame(60, 0), NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED);
    let p = rx_ok(&mut h);
    assert!(p.csum_blank && p.data_validated);
}

#[test]
fn chained_rx_slots_make_one_packet() {
    let mut h = connected(SG, 4, 32);
    h.nb.rx_offset = 100;
    let data = frame(9000, 5);
    assert!(h.nb.deliver_slots(&data, NETRXF_DATA_VALIDATED, 3996, &[]));
    let p = rx_ok(&mut h);
    assert_eq!(p.data, data);
    assert!(p.data_validated && !p.csum_blank, "the first slot's flags");
    // Many small slots.
    let data = frame(300, 6);
    assert!(h.nb.deliver_slots(&data, 0, 13, &[]));
    assert_eq!(rx_ok(&mut h).data, data);
    assert_eq!(h.nf.poll_rx(), None);
    assert_eq!(h.nb.rx_requests(), 32);
}

#[test]
fn a_chain_split_across_batches_waits_for_its_end() {
    let mut h = connected(SG, 4, 8);
    let (a, b) = (frame(100, 1), frame(50, 2));
    let mut first_id = 0;
    h.nb.respond_rx_raw(|req| {
        first_id = req.id;
        NetifRxResponse { id: req.id, offset: 0, flags: NETRXF_MORE_DATA, status: 100 }.emit()
    });
    h.nb.write_page(RX_GREF_BASE + u32::from(first_id), 0, &a);
    assert_eq!(h.nf.poll_rx(), None, "incomplete");
    assert_eq!(h.nb.rx_requests(), 8, "its buffer was copied out and reposted meanwhile");
    let nb = &mut h.nb;
    let mut second = None;
    nb.respond_rx_raw(|req| {
        second = Some(req);
        NetifRxResponse { id: req.id, offset: 8, flags: 0, status: 50 }.emit()
    });
    nb.write_page(second.unwrap().gref, 8, &b);
    let p = rx_ok(&mut h);
    assert_eq!(p.data, [a, b].concat());
}

#[test]
fn extra_info_slots_are_skipped() {
    let mut h = connected(LRO, 4, 16);
    let gso = NetifExtraInfo { ty: EXTRA_TYPE_GSO, flags: EXTRA_FLAG_MORE, data: [0xb4, 0x05, 1, 0, 0, 0] };
    let hash = NetifExtraInfo { ty: EXTRA_TYPE_HASH, flags: 0, data: [1, 1, 0xde, 0xad, 0xbe, 0xef] };
    let data = frame(7000, 3);
    assert!(h.nb.deliver_slots(&data, NETRXF_DATA_VALIDATED, 3000, &[gso, hash]));
    let p = rx_ok(&mut h);
    assert_eq!(p.data, data, "the extras are not data");
    assert!(p.data_validated);
    assert_eq!(p.gso_size, Some(1460));
    let single = frame(64, 4);
    assert!(h.nb.deliver_slots(&single, 0, 4096, &[hash]));
    let p = rx_ok(&mut h);
    assert_eq!((p.data, p.gso_size), (single, None));
    assert_eq!(h.nf.poll_rx(), None);
    let c = h.nf.counters();
    assert_eq!((c.rx_extra_skipped, c.rx_gso_packets, c.rx_packets, c.rx_dropped), (2, 1, 2, 0));
    assert_eq!(h.nb.rx_requests(), 16, "the extras' slots' buffers were reposted too");
}

/// Large receive: the backend hands over dom0's 64 KiB TCP segment whole, in 16 page-sized slots after a GSO extra
/// info slot, its checksum blank; it comes out as one packet whose checksum can be filled in.
#[test]
fn a_large_segment_arrives_whole_with_its_gso_size() {
    let mut h = connected(LRO, 4, 32);
    // FRAMES[0]'s Ethernet, IPv4 and TCP headers (54 bytes), 65481 bytes of payload, the IP length to match.
    let mut segment = hex(FRAMES[0].1);
    segment.truncate(54);
    segment.extend((0..65535 - 54).map(|i| (i % 251) as u8));
    segment[16..18].copy_from_slice(&((65535 - 14) as u16).to_be_bytes());
    let gso = NetifExtraInfo { ty: EXTRA_TYPE_GSO, flags: 0, data: [0xa8, 0x05, GSO_TYPE_TCPV4, 0, 0, 0] };
    assert!(h.nb.deliver_slots(&segment, NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED, PAGE_SIZE, &[gso]));
    let mut p = rx_ok(&mut h);
    assert_eq!((p.data.len(), p.gso_size, p.csum_blank), (65535, Some(1448), true));
    assert_eq!(p.fill_checksum(), Ok(Some(csum::Transport::Tcp)));
    assert_eq!(&p.data[54..], &segment[54..]);
    let c = h.nf.counters();
    assert_eq!((c.rx_gso_packets, c.rx_packets, c.rx_dropped), (1, 1, 0));
    assert_eq!(h.nb.rx_requests(), 32, "all 17 buffers (16 data, 1 extra) were posted again");
}

/// A GSO extra info slot we cannot take drops its packet, and only it: one without large receive asked for (the
/// backend could then hand us segments over the MTU), a TCPv6 one (we ask only for TCPv4), a segment size of 0.
#[test]
fn a_gso_extra_we_cannot_take_drops_its_packet() {
    let gso = |size: u16, ty: u8| {
        let s = size.to_le_bytes();
        NetifExtraInfo { ty: EXTRA_TYPE_GSO, flags: 0, data: [s[0], s[1], ty, 0, 0, 0] }
    };
    for (features, extra, asked) in [
        (SG, gso(1448, GSO_TYPE_TCPV4), false),
        (LRO, gso(1448, GSO_TYPE_TCPV6), true),
        (LRO, gso(0, GSO_TYPE_TCPV4), true),
    ] {
        let mut h = connected(features, 4, 16);
        assert!(h.nb.deliver_slots(&frame(9000, 0), NETRXF_CSUM_BLANK, PAGE_SIZE, &[extra]));
        let d = rx_drop(&mut h);
        let (size, gso_type) = (u16::from_le_bytes([extra.data[0], extra.data[1]]), extra.data[2]);
        assert_eq!(d, Fault { dir: Direction::Rx, index: 1, kind: FaultKind::BadGso { gso_type, size, asked } });
        h.nb.deliver(&frame(64, 1), 0);
        assert_eq!(rx_ok(&mut h).data, frame(64, 1), "the next packet is fine");
        assert_eq!(h.nf.poll_rx(), None);
        let c = h.nf.counters();
        assert_eq!((c.rx_bad_extra, c.rx_dropped, c.rx_packets, c.rx_gso_packets), (1, 1, 1, 0));
        assert_eq!(h.nb.rx_requests(), 16, "every buffer of the dropped packet was posted again");
    }
    let d = Fault { dir: Direction::Rx, index: 1, kind: FaultKind::BadGso { gso_type: 1, size: 1448, asked: false } };
    assert_eq!(
        d.to_string(),
        "rx response at ring index 1: a GSO extra info slot, but we never asked for large receive"
    );
}

#[test]
fn an_unknown_extra_type_drops_the_packet() {
    let mut h = connected(SG, 4, 16);
    let bad = NetifExtraInfo { ty: EXTRA_TYPE_NONE, flags: 0, data: [0; 6] };
    assert!(h.nb.deliver_slots(&frame(5000, 0), 0, 4000, &[bad]));
    let d = rx_drop(&mut h);
    assert_eq!(d, Fault { dir: Direction::Rx, index: 1, kind: FaultKind::BadExtra { ty: 0 } });
    assert_eq!(d.to_string(), "rx response at ring index 1: extra info slot of unknown type 0");
    h.nb.deliver(&frame(64, 1), 0);
    assert_eq!(rx_ok(&mut h).data, frame(64, 1), "the next packet is fine");
    let c = h.nf.counters();
    assert_eq!((c.rx_bad_extra, c.rx_dropped, c.rx_packets), (1, 1, 1));
}

#[test]
fn an_rx_response_with_an_unknown_id_is_dropped_and_its_slot_recycled() {
    let mut h = connected(SG, 4, 8);
    let mut posted = 0;
    h.nb.respond_rx_raw(|req| {
        posted = req.id;
        NetifRxResponse { id: 9999, offset: 0, flags: 0, status: 60 }.emit()
    });
    let d = rx_drop(&mut h);
    assert_eq!(d.kind, FaultKind::BadId { id: 9999, expected: Some(posted) });
    assert_eq!(
        d.to_string(),
        format!("rx response at ring index 0: id 9999, but the request in that slot has id {posted}")
    );
    assert_eq!(h.nf.poll_rx(), None);
    assert_eq!((h.nf.rx_free_buffers(), h.nb.rx_requests()), (0, 8), "the slot's buffer was reposted");
    let c = h.nf.counters();
    assert_eq!((c.rx_bad_id, c.rx_dropped), (1, 1));
}

#[test]
fn a_repeated_rx_id_is_refused() {
    let mut h = connected(SG, 4, 8);
    let mut first = 0;
    h.nb.respond_rx_raw(|req| {
        first = req.id;
        NetifRxResponse { id: req.id, offset: 0, flags: 0, status: 60 }.emit()
    });
    rx_ok(&mut h);
    // The same id again, in the next slot (whose request is another buffer's).
    let mut second = 0;
    h.nb.respond_rx_raw(|req| {
        second = req.id;
        NetifRxResponse { id: first, offset: 0, flags: 0, status: 60 }.emit()
    });
    assert_ne!(first, second);
    assert_eq!(rx_drop(&mut h).kind, FaultKind::BadId { id: first, expected: Some(second) });
    assert_eq!(h.nf.counters().rx_bad_id, 1);
}

#[test]
fn error_and_zero_rx_statuses_drop_the_packet() {
    let mut h = connected(SG, 4, 8);
    for status in [NETIF_RSP_ERROR, NETIF_RSP_DROPPED, 0, i16::MIN] {
        h.nb.respond_rx_raw(|req| NetifRxResponse { id: req.id, offset: 0, flags: 0, status }.emit());
        assert_eq!(rx_drop(&mut h).kind, FaultKind::Status { status });
    }
    let c = h.nf.counters();
    assert_eq!((c.rx_bad_status, c.rx_dropped, c.rx_packets), (4, 4, 0));
    assert_eq!(
        Fault { dir: Direction::Rx, index: 3, kind: FaultKind::Status { status: -2 } }.to_string(),
        "rx response at ring index 3: status -2 (NETIF_RSP_DROPPED)"
    );
}

#[test]
fn rx_data_outside_the_page_is_refused() {
    let mut h = connected(SG, 4, 8);
    for (offset, status) in [(4000u16, 97i16), (4096, 1), (0, 4097), (u16::MAX, i16::MAX)] {
        h.nb.respond_rx_raw(|req| NetifRxResponse { id: req.id, offset, flags: 0, status }.emit());
        assert_eq!(rx_drop(&mut h).kind, FaultKind::OutsidePage { offset, len: status as u16 });
    }
    h.nb.respond_rx_raw(|req| NetifRxResponse { id: req.id, offset: 4000, flags: 0, status: 96 }.emit());
    assert_eq!(rx_ok(&mut h).data.len(), 96, "exactly to the end of the page is fine");
    assert_eq!(h.nf.counters().rx_bad_offset, 4);
}

#[test]
fn an_unrequested_gso_prefix_is_refused() {
    let mut h = connected(SG, 4, 8);
    h.nb.respond_rx_raw(|req| NetifRxResponse { id: req.id, offset: 1448, flags: NETRXF_GSO_PREFIX, status: 2 }.emit());
    assert_eq!(rx_drop(&mut h).kind, FaultKind::BadFlags { flags: NETRXF_GSO_PREFIX });
    assert_eq!(h.nf.counters().rx_bad_flags, 1);
}

#[test]
fn one_bad_slot_drops_its_whole_chain_and_nothing_else() {
    let mut h = connected(SG, 4, 8);
    h.nb.respond_rx_raw(|req| NetifRxResponse { id: req.id, offset: 0, flags: NETRXF_MORE_DATA, status: 100 }.emit());
    h.nb.respond_rx_raw(|req| {
        NetifRxResponse { id: req.id, offset: 0, flags: NETRXF_MORE_DATA, status: NETIF_RSP_ERROR }.emit()
    });
    h.nb.respond_rx_raw(|req| NetifRxResponse { id: req.id, offset: 0, flags: 0, status: 100 }.emit());
    let d = rx_drop(&mut h);
    assert_eq!((d.index, d.kind), (1, FaultKind::Status { status: -1 }));
    h.nb.deliver(&frame(80, 2), 0);
    assert_eq!(rx_ok(&mut h).data, frame(80, 2));
    assert_eq!(h.nf.poll_rx(), None);
    let c = h.nf.counters();
    assert_eq!((c.rx_dropped, c.rx_bad_status, c.rx_packets), (1, 1, 1));
    assert_eq!(h.nb.rx_requests(), 8);
}

#[test]
fn a_chain_over_65535_bytes_is_dropped() {
    let mut h = connected(SG, 4, 32);
    assert!(h.nb.deliver_slots(&frame(17 * 4000, 0), 0, 4000, &[]));
    let d = rx_drop(&mut h);
    assert_eq!((d.index, d.kind), (16, FaultKind::TooBig { len: 68000 }));
    assert_eq!(h.nf.counters().rx_too_big, 1);
    assert_eq!(h.nf.poll_rx(), None);
    assert_eq!(h.nb.rx_requests(), 32);
}

#[test]
fn rx_rsp_prod_running_ahead_stops_the_device() {
    let mut h = connected(SG, 4, 8);
    h.nb.deliver(&frame(60, 0), 0);
    rx_ok(&mut h);
    h.nb.rx.set_header(offsets::RSP_PROD, 1 + 9);
    let d = rx_drop(&mut h);
    let overrun = RingError::Overrun { rsp_prod: 10, rsp_cons: 1, req_prod: 8 };
    assert_eq!(d, Fault { dir: Direction::Rx, index: 1, kind: FaultKind::Ring(overrun) });
    assert_eq!(h.nf.poll_rx(), None, "reported once, then silent");
    assert_eq!(h.nf.phase(), Phase::Broken(d));
    assert_eq!(h.nf.transmit(&frame(60, 0), TxChecksum::Valid), Err(TxError::Broken(d)));
    let c = h.nf.counters();
    assert_eq!((c.ring_overruns, c.rx_packets), (1, 1));
}

#[test]
fn a_chain_that_never_ends_is_cut_off_by_the_poll_budget() {
    // Issue 10.6: a backend on another CPU answers every posted buffer at once, each slot saying "more data
    // follows". Without a budget, poll_rx reposts the buffers and keeps taking slots for as long as it answers.
    let mut h = connected(SG, 4, 32);
    let made = h.nb.answer_rx_forever(200_000, super::fake::endless_chain);
    for round in 1..=100u64 {
        assert_eq!(h.nf.poll_rx(), None);
        assert!(h.nf.rx_pending(), "stopped on the budget, not because the ring is idle");
        assert!(
            made.get() <= round * u64::from(RX_POLL_BUDGET) + 32,
            "{round} poll_rx calls took {} slots from a chain that never ends",
            made.get()
        );
        assert_eq!(h.nf.rx_free_buffers() + h.nf.rx_posted_buffers(), 32, "no RX buffer lost");
        h.nf.audit().unwrap();
    }
    // The chain passed 65535 bytes long ago: it will be dropped if it ever ends. A backend that finally stops
    // leaves the device idle and armed.
    h.nb.rx.page.borrow_mut().before_load_rsp_prod = None;
    let d = rx_drop_or_none(&mut h);
    assert!(d.is_none(), "the chain has not ended: {d:?}");
    assert!(!h.nf.rx_pending());
    assert_eq!((h.nf.counters().rx_packets, h.nf.counters().rx_dropped), (0, 0));
}

fn rx_drop_or_none(h: &mut Harness) -> Option<RxDrop> {
    match h.nf.poll_rx() {
        Some(Err(d)) => Some(d),
        None => None,
        other => panic!("expected a drop or nothing, got {other:?}"),
    }
}

#[test]
fn bad_ids_as_fast_as_buffers_are_posted_cost_one_budget_per_poll() {
    let mut h = connected(SG, 4, 32);
    let made = h.nb.answer_rx_forever(200_000, super::fake::bad_id);
    let mut budget = RX_POLL_BUDGET;
    let mut drops = 0;
    while let Some(r) = h.nf.poll_rx_budget(&mut budget) {
        assert!(matches!(r, Err(Fault { kind: FaultKind::BadId { .. }, .. })), "{r:?}");
        drops += 1;
        assert!(drops <= RX_POLL_BUDGET, "more drops than the budget allows");
    }
    assert_eq!((drops, budget), (RX_POLL_BUDGET, 0));
    assert!(h.nf.rx_pending());
    assert!(made.get() <= u64::from(RX_POLL_BUDGET) + 32);
    assert_eq!(h.nf.rx_free_buffers() + h.nf.rx_posted_buffers(), 32);
    h.nf.audit().unwrap();
    let mut none_left = 0;
    assert_eq!(h.nf.poll_rx_budget(&mut none_left), None, "an empty budget takes nothing");
    assert!(h.nf.rx_pending());
}

#[test]
fn after_draining_the_next_response_raises_an_event() {
    let mut h = connected(SG, 4, 8);
    h.nb.deliver(&frame(60, 0), 0);
    assert_eq!(h.nb.notified_front, 1, "rsp_event starts at 1");
    h.nb.deliver(&frame(60, 0), 0);
    assert_eq!(h.nb.notified_front, 1, "we have not drained yet: no event needed");
    rx_ok(&mut h);
    rx_ok(&mut h);
    assert_eq!(h.nf.poll_rx(), None);
    h.nb.deliver(&frame(60, 0), 0);
    assert_eq!(h.nb.notified_front, 2, "re-armed by the final check");
    // TX completions too.
    h.nf.transmit(&frame(60, 0), TxChecksum::Valid).unwrap();
    h.nb.consume_tx();
    assert_eq!(h.nb.notified_front, 3);
    h.nf.poll_tx();
    h.nf.transmit(&frame(60, 0), TxChecksum::Valid).unwrap();
    h.nb.consume_tx();
    assert_eq!(h.nb.notified_front, 4);
}

#[test]
fn counters_display_every_field() {
    let mut h = connected(SG, 4, 8);
    h.nf.transmit(&frame(100, 0), TxChecksum::Valid).unwrap();
    h.nb.deliver(&frame(60, 0), 0);
    rx_ok(&mut h);
    let text = h.nf.counters().to_string();
    assert!(text.starts_with("tx 1 pkts (0 gso) 100 B (refused: ring full 0"), "{text}");
    assert!(text.contains("csum 0, gso 0, not connected 0"), "{text}");
    assert!(text.contains("rx 1 pkts (0 gso) 60 B (dropped 0: bad id 0"), "{text}");
    assert!(text.ends_with("ring overruns 0; resets 0 (tx slots dropped 0); notifies 2"), "{text}");
}

// ----- the backend goes away and comes back -----

#[test]
fn reset_drops_tx_in_flight_takes_rx_buffers_back_and_starts_over() {
    let mut h = connected(SG, 8, 8);
    for i in 0..3 {
        h.nf.transmit(&frame(100, i), TxChecksum::Valid).unwrap();
    }
    // The old backend takes the three packets but dies before answering; it had also begun a chained packet.
    h.nb.hold_tx_responses = true;
    assert_eq!(h.nb.consume_tx(), 3);
    h.nb.respond_rx_raw(|req| NetifRxResponse { id: req.id, offset: 0, flags: NETRXF_MORE_DATA, status: 100 }.emit());
    assert_eq!(h.nf.poll_rx(), None, "half a packet");
    assert_eq!((h.nf.tx_free_buffers(), h.nf.rx_free_buffers()), (5, 0), "the first slot's buffer was reposted");
    let old_tx = h.nb.tx.page.clone();
    let mut old = std::mem::replace(&mut h.nb.tx, crate::ring::testing::BackRing::attach(old_tx, TX_ENTRY_SIZE));

    let report = h.reset();
    assert_eq!(report, ResetReport { tx_dropped: 3, rx_reclaimed: 8, rx_partial_dropped: true });
    assert_eq!(h.nf.phase(), Phase::Initialising);
    assert_eq!((h.nf.tx_free_buffers(), h.nf.rx_free_buffers()), (8, 8), "every buffer is ours again");
    assert_eq!(h.nf.transmit(&frame(60, 0), TxChecksum::Valid), Err(TxError::NotConnected));
    // The new rings start at 0, as SHARED_RING_INIT leaves them.
    assert_eq!([0, 4, 8, 12].map(|at| h.nb.tx.header(at)), [0, 1, 0, 1]);
    assert_eq!([0, 4, 8, 12].map(|at| h.nb.rx.header(at)), [0, 1, 0, 1]);
    // A late answer on the old ring reaches nobody.
    for r in std::mem::take(&mut h.nb.held) {
        old.put_response(&r.emit());
    }
    old.push_responses_and_check_notify();
    assert_eq!(h.nf.poll_tx().freed, 0);

    // The new backend connects: everything works on the new rings.
    assert_eq!(h.nf.post_rx_buffers(), 8);
    assert_eq!(h.nb.rx_requests(), 8);
    h.nf.backend_connected();
    let out = frame(1500, 9);
    h.nf.transmit(&out, TxChecksum::Valid).unwrap();
    h.nb.hold_tx_responses = false;
    assert_eq!(h.nb.consume_tx(), 1);
    assert_eq!(h.nb.sent.last().unwrap().data, out);
    assert_eq!(h.nf.poll_tx(), TxPoll { freed: 1, faults: 0, first_fault: None });
    h.nb.deliver(&frame(70, 3), 0);
    assert_eq!(rx_ok(&mut h).data, frame(70, 3));
    let c = h.nf.counters();
    assert_eq!((c.resets, c.tx_dropped_in_reset, c.rx_dropped), (1, 3, 0));
}

#[test]
fn resume_in_a_new_domain_kicks_the_new_channel_and_regrants_every_buffer() {
    let mut h = connected(SG, 4, 4);
    h.nf.transmit(&frame(100, 1), TxChecksum::Valid).unwrap();
    h.nb.hold_tx_responses = true;
    assert_eq!(h.nb.consume_tx(), 1);
    let kicks_before = h.kicks.get();
    let new_kicks = Rc::new(Cell::new(0));
    let (tx_page, rx_page) = (page(), page());
    let mut regranted = 0;
    let report =
        h.nf.resume(HeapRing(tx_page.clone()), HeapRing(rx_page.clone()), FakeEvtchn(new_kicks.clone()), None, |b| {
            regranted = b.tx_count() + b.rx_count();
            Ok::<(), ()>(())
        })
        .unwrap();
    h.nb.reattach(tx_page, rx_page);
    assert_eq!(report, ResetReport { tx_dropped: 1, rx_reclaimed: 4, rx_partial_dropped: false });
    assert_eq!(regranted, 8, "every TX and RX buffer");
    assert_eq!(h.nf.transmit(&frame(60, 0), TxChecksum::Valid), Err(TxError::NotConnected));
    h.nf.post_rx_buffers();
    h.nf.backend_connected();
    h.nf.transmit(&frame(60, 2), TxChecksum::Valid).unwrap();
    assert_eq!((h.kicks.get(), new_kicks.get()), (kicks_before, 2), "the old port is never kicked again");
    h.nb.hold_tx_responses = false;
    assert_eq!(h.nb.consume_tx(), 1);
    assert_eq!(h.nb.sent.last().unwrap().data, frame(60, 2));
    h.nb.deliver(&frame(70, 3), 0);
    assert_eq!(rx_ok(&mut h).data, frame(70, 3));
    // A failed regrant is reported, the device left unconnected.
    let err = h.nf.resume(HeapRing(page()), HeapRing(page()), FakeEvtchn(new_kicks), None, |_| Err("no grant"));
    assert_eq!(err, Err("no grant"));
    assert_eq!(h.nf.phase(), Phase::Initialising);
}

#[test]
fn reset_gives_a_broken_device_a_new_backend() {
    let mut h = connected(SG, 4, 4);
    h.nb.rx.set_header(offsets::RSP_PROD, 9);
    assert!(matches!(rx_drop(&mut h).kind, FaultKind::Ring(_)));
    assert!(matches!(h.nf.phase(), Phase::Broken(_)));
    let report = h.reset();
    assert_eq!(report, ResetReport { tx_dropped: 0, rx_reclaimed: 4, rx_partial_dropped: false });
    assert_eq!(h.nf.phase(), Phase::Initialising);
    h.nf.post_rx_buffers();
    h.nf.backend_connected();
    assert_eq!(h.nf.phase(), Phase::Connected);
    h.nf.transmit(&frame(60, 1), TxChecksum::Valid).unwrap();
    assert_eq!(h.nb.consume_tx(), 1);
    h.nb.deliver(&frame(60, 2), 0);
    assert_eq!(rx_ok(&mut h).data, frame(60, 2));
}

#[test]
fn reset_twice_in_a_row_loses_nothing() {
    let mut h = connected(SG, 4, 4);
    h.nf.transmit(&frame(60, 1), TxChecksum::Valid).unwrap();
    assert_eq!(h.reset().tx_dropped, 1);
    assert_eq!(h.reset(), ResetReport::default(), "nothing was posted or sent in between");
    assert_eq!((h.nf.tx_free_buffers(), h.nf.rx_free_buffers()), (4, 4));
    assert_eq!(h.nf.counters().resets, 2);
}

// ----- checksums -----

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Known-good frames (checksums computed independently of this code), the checksum's offset and value.
const FRAMES: &[(&str, &str, usize, u16)] = &[
    (
        "tcp4",
        "02000000000202000000000108004500002d1c46400040060a830a0000010a0000023039005000000001000000005018ffff\
         2769000068656c6c6f",
        50,
        0x2769,
    ),
    (
        "udp4 with Ethernet padding",
        "02000000000202000000000108004500001f1c46400040119a2ec0a8010ac0a801ff14e90035000ba1fd6162630000000000\
         00",
        40,
        0xa1fd,
    ),
    (
        "tcp6",
        "02000000000202000000000186dd6000000000190640fe800000000000000000000000000001fe8000000000000000000000\
         0000000201bbc35000000001000000005018ffffed0f00006970763621",
        70,
        0xed0f,
    ),
    (
        "udp6 after a hop-by-hop header",
        "02000000000202000000000186dd6000000000160001fe800000000000000000000000000001fe8000000000000000000000\
         00000002110001040000000002220223000ec079646863707636",
        68,
        0xc079,
    ),
    (
        "udp4 in a VLAN",
        "020000000002020000000001810000640800450000271c464000401106780a0102030a010204000700070013c295766c616e\
         20746167676564",
        44,
        0xc295,
    ),
];

#[test]
fn blank_checksums_are_filled_in_correctly() {
    for &(name, text, at, expected) in FRAMES {
        let mut f = hex(text);
        // What a csum_blank sender leaves: a partial sum (here garbage), not the checksum.
        f[at..at + 2].copy_from_slice(&[0x12, 0x34]);
        assert_eq!(csum::transport_checksum_ok(&f), Ok(false), "{name}");
        let transport = csum::fill_transport_checksum(&mut f).unwrap();
        assert_eq!(u16::from_be_bytes([f[at], f[at + 1]]), expected, "{name}");
        assert_eq!(f, hex(text), "{name}: nothing else changed");
        assert_eq!(csum::transport_checksum_ok(&f), Ok(true), "{name}");
        let tcp = name.starts_with("tcp");
        assert_eq!(transport, if tcp { csum::Transport::Tcp } else { csum::Transport::Udp }, "{name}");
    }
}

/// What a backend does with a `csum_blank` frame: sum the transport segment from its header (the checksum field
/// holding the partial sum) and write the complement.
fn finish_partial(f: &mut [u8], start: usize, at: usize) -> u16 {
    let mut sum = 0u32;
    for pair in f[start..].chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    let c = !(sum as u16);
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
    c
}

#[test]
fn partial_checksums_are_what_a_backend_completes() {
    for &(name, text, at, expected) in FRAMES {
        // Only frames with no padding after the IP packet (the backend sums to the packet's end).
        let mut f = hex(text);
        f[at..at + 2].copy_from_slice(&[0x12, 0x34]);
        csum::fill_partial_checksum(&mut f).unwrap();
        let start = at - if name.starts_with("tcp") { 16 } else { 6 };
        assert_eq!(finish_partial(&mut f, start, at), expected, "{name}");
        assert_eq!(f, hex(text), "{name}");
    }
}

#[test]
fn frames_whose_checksum_cannot_be_filled_are_left_alone() {
    use csum::CsumError;
    let tcp4 = hex(FRAMES[0].1);
    let mut arp = tcp4.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut fragment = tcp4.clone();
    fragment[20] = 0x20; // MF
    let mut icmp = tcp4.clone();
    icmp[23] = 1;
    let mut bad_ihl = tcp4.clone();
    bad_ihl[14] = 0x44;
    let cases: Vec<(Vec<u8>, CsumError)> = vec![
        (arp, CsumError::NotIp { ethertype: 0x0806 }),
        (fragment, CsumError::Fragment),
        (icmp, CsumError::Unsupported { protocol: 1 }),
        (bad_ihl, CsumError::BadIpHeader),
        (tcp4[..50].to_vec(), CsumError::Truncated { what: "IPv4 packet" }),
        (tcp4[..12].to_vec(), CsumError::Truncated { what: "Ethernet header" }),
    ];
    for (mut f, e) in cases {
        let before = f.clone();
        assert_eq!(csum::fill_transport_checksum(&mut f), Err(e));
        assert_eq!(f, before);
    }
    assert_eq!(CsumError::Fragment.to_string(), "cannot fill in the checksum of an IP fragment");
}

#[test]
fn a_received_csum_blank_packet_is_accepted_and_fixed() {
    let mut h = connected(SG, 4, 8);
    let mut blank = hex(FRAMES[2].1);
    blank[70..72].copy_from_slice(&[0x12, 0x34]);
    h.nb.deliver(&blank, NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED);
    let mut p = rx_ok(&mut h);
    assert!(p.csum_blank);
    assert_eq!(p.fill_checksum(), Ok(Some(csum::Transport::Tcp)));
    assert!(!p.csum_blank);
    assert_eq!(p.data, hex(FRAMES[2].1));
    assert_eq!(p.fill_checksum(), Ok(None), "nothing to do any more");
}

// ----- xenstore -----

mod xenbus {
    use super::*;
    use crate::frontend::{self, DeviceInfo, DeviceKind, FrontendError, XenbusState};
    use crate::grant::GrantRef;
    use crate::xenstore::fake::{self, FakeClient, Shared};
    use crate::xenstore::MsgType;

    const BACKEND: &str = "/local/domain/0/backend/vif/7/0";
    const SECOND: u64 = 1_000_000_000;
    const KEYS: ConnectKeys =
        ConnectKeys { tx_ring_ref: GrantRef(8), rx_ring_ref: GrantRef(9), event_channel: 5, rx_event_channel: None };

    fn with_vif() -> (FakeClient, Shared, DeviceInfo) {
        let (mut xs, fake) = fake::client();
        {
            let mut f = fake.borrow_mut();
            f.set("device/vif/0/backend", BACKEND.as_bytes());
            f.set("device/vif/0/backend-id", b"0");
            f.set("device/vif/0/mac", b"00:16:3E:0a:bb:cc");
            f.set("device/vif/0/state", b"1");
            f.set(&format!("{BACKEND}/state"), b"2");
            f.set(&format!("{BACKEND}/feature-rx-copy"), b"1");
            f.set(&format!("{BACKEND}/feature-sg"), b"1");
            f.set(&format!("{BACKEND}/feature-gso-tcpv4"), b"1");
            f.set(&format!("{BACKEND}/multi-queue-max-queues"), b"4");
        }
        let dev = frontend::enumerate(&mut xs, DeviceKind::Vif).unwrap().remove(0);
        (xs, fake, dev)
    }

    #[test]
    fn config_is_read_with_missing_features_as_zero() {
        let (mut xs, fake, dev) = with_vif();
        let config = read_config(&mut xs, &dev).unwrap();
        assert_eq!(
            config,
            NetConfig {
                mac: [0x00, 0x16, 0x3e, 0x0a, 0xbb, 0xcc],
                mtu: 1500,
                backend: BackendFeatures {
                    rx_copy: true,
                    sg: true,
                    gso_tcpv4: true,
                    max_queues: 4,
                    ..BackendFeatures::default()
                },
            }
        );
        fake.borrow_mut().set("device/vif/0/mtu", b"9000");
        fake.borrow_mut().set(&format!("{BACKEND}/feature-sg"), b"0");
        let config = read_config(&mut xs, &dev).unwrap();
        assert_eq!((config.mtu, config.backend.sg), (9000, false));
    }

    #[test]
    fn features_are_negotiated_against_the_backend() {
        let offered = BackendFeatures { rx_copy: true, sg: true, gso_tcpv4: true, ..BackendFeatures::default() };
        let all = LRO;
        assert_eq!(Features::negotiate(&offered, all), all);
        // Large receive is ours to offer, whatever the backend's own keys say.
        // TCPv6 TSO needs the backend's feature-gso-tcpv6 and its feature-ipv6-csum-offload (partial checksums).
        let six = BackendFeatures { gso_tcpv6: true, ipv6_csum_offload: true, ..offered };
        assert_eq!(Features::negotiate(&six, SIX), SIX);
        let no_csum6 = BackendFeatures { ipv6_csum_offload: false, ..six };
        assert_eq!(Features::negotiate(&no_csum6, SIX), Features { gso_tcpv6: false, ..SIX });
        assert_eq!(Features::negotiate(&offered, SIX), Features { gso_tcpv6: false, ..SIX });
        let nothing = BackendFeatures { rx_copy: true, sg: true, ..BackendFeatures::default() };
        assert_eq!(Features::negotiate(&nothing, all), Features { gso_tcpv4: false, ..LRO });
        // TSO needs scatter-gather (a segment spans pages) and checksum offload (the backend fills each segment's).
        let no_sg = BackendFeatures { sg: false, ..offered };
        assert_eq!(
            Features::negotiate(&no_sg, all),
            Features {
                sg: false,
                csum_offload: true,
                gso_tcpv4: false,
                gso_rx_tcpv4: false,
                gso_tcpv6: false,
                gso_rx_tcpv6: false,
                split_event_channels: false
            }
        );
        let no_csum = Features { csum_offload: false, ..all };
        assert_eq!(
            Features::negotiate(&offered, no_csum),
            Features { gso_tcpv4: false, gso_rx_tcpv4: false, ..no_csum }
        );
        let no_gso = BackendFeatures { gso_tcpv4: false, ..offered };
        assert_eq!(Features::negotiate(&no_gso, GSO), SG);
        assert_eq!(Features::negotiate(&offered, PLAIN), PLAIN);
    }

    #[test]
    fn a_backend_without_rx_copy_is_refused() {
        let (mut xs, fake, dev) = with_vif();
        fake.borrow_mut().set(&format!("{BACKEND}/feature-rx-copy"), b"0");
        let e = read_config(&mut xs, &dev).unwrap_err();
        assert_eq!(e, ConfigError::NoRxCopy { device: dev.device() });
        assert!(e.to_string().starts_with("vif/0: the backend does not offer feature-rx-copy"), "{e}");
        fake.borrow_mut().remove(&format!("{BACKEND}/feature-rx-copy"));
        assert_eq!(read_config(&mut xs, &dev), Err(ConfigError::NoRxCopy { device: dev.device() }));
    }

    #[test]
    fn bad_config_values_name_the_key() {
        let (mut xs, fake, dev) = with_vif();
        for mac in [
            &b"00:16:3e:0a:bb"[..],
            b"00:16:3e:0a:bb:cc:dd",
            b"01:00:5e:00:00:01",
            b"00:00:00:00:00:00",
            b"0:16:3e:a:b:c",
        ] {
            fake.borrow_mut().set("device/vif/0/mac", mac);
            let e = read_config(&mut xs, &dev).unwrap_err();
            assert!(matches!(e, ConfigError::Frontend(FrontendError::BadValue { key: "mac", .. })), "{e:?}");
        }
        fake.borrow_mut().remove("device/vif/0/mac");
        let e = read_config(&mut xs, &dev).unwrap_err();
        assert_eq!(e, ConfigError::Frontend(FrontendError::MissingKey { device: dev.device(), key: "mac" }));
        fake.borrow_mut().set("device/vif/0/mac", b"00:16:3e:0a:bb:cc");
        for mtu in [&b"jumbo"[..], b"67", b"70000"] {
            fake.borrow_mut().set("device/vif/0/mtu", mtu);
            let e = read_config(&mut xs, &dev).unwrap_err();
            assert!(matches!(e, ConfigError::Frontend(FrontendError::BadValue { key: "mtu", .. })), "{e:?}");
        }
        fake.borrow_mut().remove("device/vif/0/mtu");
        fake.borrow_mut().set(&format!("{BACKEND}/feature-sg"), b"yes");
        let e = read_config(&mut xs, &dev).unwrap_err();
        assert!(matches!(e, ConfigError::BadBackendValue { key: "feature-sg", .. }), "{e:?}");
        assert_eq!(e.to_string(), "vif/0: the backend's feature-sg holds \"yes\", not a number");
    }

    #[test]
    fn macs_parse_in_either_case() {
        assert_eq!(parse_mac(b"aa:BB:0c:dd:ee:ff"), Some([0xaa, 0xbb, 0x0c, 0xdd, 0xee, 0xff]));
        assert_eq!(parse_mac(b"aa:bb:cc:dd:ee:f"), None);
        assert_eq!(parse_mac(b"aa-bb-cc-dd-ee-ff"), None);
        assert_eq!(parse_mac(b"aa:bb:cc:dd:ee:gg"), None);
        assert_eq!(parse_mac(b"aa:bb:cc:dd:ee:+f"), None);
    }

    /// The connect keys and values written, each with its transaction id.
    fn connect_writes(fake: &Shared) -> Vec<(u32, String)> {
        fake.borrow()
            .received(MsgType::Write)
            .into_iter()
            .map(|w| (w.tx_id, String::from_utf8(w.payload).unwrap().replace('\0', "=")))
            .collect()
    }

    const EXPECTED: [&str; 11] = [
        "device/vif/0/event-channel=5",
        "device/vif/0/tx-ring-ref=8",
        "device/vif/0/rx-ring-ref=9",
        "device/vif/0/request-rx-copy=1",
        "device/vif/0/feature-rx-notify=1",
        "device/vif/0/feature-sg=1",
        "device/vif/0/feature-no-csum-offload=0",
        "device/vif/0/feature-gso-tcpv4=0",
        "device/vif/0/feature-gso-tcpv6=0",
        "device/vif/0/feature-ipv6-csum-offload=0",
        "device/vif/0/state=4",
    ];

    #[test]
    fn split_event_channels_are_used_only_when_both_sides_want_them() {
        let split = Features { split_event_channels: true, ..LRO };
        let offered = BackendFeatures { rx_copy: true, sg: true, gso_tcpv4: true, ..BackendFeatures::default() };
        assert!(!Features::negotiate(&offered, split).split_event_channels, "not offered");
        let both = BackendFeatures { split_event_channels: true, ..offered };
        assert!(Features::negotiate(&both, split).split_event_channels);
        assert!(!Features::negotiate(&both, LRO).split_event_channels, "not wanted (split-evtchn=off)");
    }

    #[test]
    fn split_event_channels_write_one_port_per_ring_and_no_shared_port() {
        let (mut xs, fake, dev) = with_vif();
        let keys = ConnectKeys { rx_event_channel: Some(6), ..KEYS };
        write_connect_keys(&mut xs, &dev, keys, Features { split_event_channels: true, ..SG }).unwrap();
        let values: Vec<String> = connect_writes(&fake).into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            values[..4],
            [
                "device/vif/0/event-channel-tx=5",
                "device/vif/0/event-channel-rx=6",
                "device/vif/0/tx-ring-ref=8",
                "device/vif/0/rx-ring-ref=9"
            ]
        );
        assert!(!values.iter().any(|v| v.starts_with("device/vif/0/event-channel=")), "{values:?}");
        assert_eq!(fake.borrow().get("device/vif/0/state").unwrap(), b"4");
    }

    #[test]
    fn connect_keys_and_state_are_written_in_one_transaction() {
        let (mut xs, fake, dev) = with_vif();
        write_connect_keys(&mut xs, &dev, KEYS, SG).unwrap();
        let writes = connect_writes(&fake);
        let values: Vec<&str> = writes.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, EXPECTED);
        let (mut xs, fake, dev) = with_vif();
        write_connect_keys(&mut xs, &dev, KEYS, LRO).unwrap();
        let values: Vec<String> = connect_writes(&fake).into_iter().map(|(_, v)| v).collect();
        assert!(values.contains(&"device/vif/0/feature-gso-tcpv4=1".to_string()), "{values:?}");
        let (mut xs, fake, dev) = with_vif();
        write_connect_keys(&mut xs, &dev, KEYS, SIX).unwrap();
        let values: Vec<String> = connect_writes(&fake).into_iter().map(|(_, v)| v).collect();
        for key in ["feature-gso-tcpv4=1", "feature-gso-tcpv6=1", "feature-ipv6-csum-offload=1"] {
            assert!(values.contains(&format!("device/vif/0/{key}")), "{key}: {values:?}");
        }
        let tx = writes[0].0;
        assert!(tx != 0 && writes.iter().all(|(t, _)| *t == tx), "{writes:?}");
        let f = fake.borrow();
        assert_eq!((f.received(MsgType::TransactionStart).len(), f.commits), (1, 1));
        assert_eq!(f.get("device/vif/0/state").unwrap(), b"4");
        assert_eq!(f.get("device/vif/0/feature-no-csum-offload").unwrap(), b"0");

        let (mut xs, fake, dev) = with_vif();
        write_connect_keys(&mut xs, &dev, KEYS, PLAIN).unwrap();
        let f = fake.borrow();
        assert_eq!(f.get("device/vif/0/feature-sg").unwrap(), b"0");
        assert_eq!(f.get("device/vif/0/feature-no-csum-offload").unwrap(), b"1");
    }

    #[test]
    fn the_connect_transaction_is_redone_on_eagain() {
        let (mut xs, fake, dev) = with_vif();
        fake.borrow_mut().eagain_commits = 1;
        write_connect_keys(&mut xs, &dev, KEYS, SG).unwrap();
        let writes = connect_writes(&fake);
        assert_eq!(writes.len(), 22, "all of it, twice");
        assert_ne!(writes[0].0, writes[11].0, "in a fresh transaction");
        assert_eq!(writes[11..].iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(), EXPECTED);
        let f = fake.borrow();
        assert_eq!(f.commits, 2);
        assert_eq!(f.get("device/vif/0/tx-ring-ref").unwrap(), b"8");
    }

    #[test]
    fn transmit_waits_for_the_backend_to_connect() {
        let (mut xs, fake, dev) = with_vif();
        let backend_state = format!("{BACKEND}/state");
        fake.borrow_mut().on_write("device/vif/0/state", b"4", &[(&backend_state, Some(b"4"))], 3);
        let mut h = harness_at(SG, 8, 8, 0);
        assert_eq!(h.nf.transmit(&frame(60, 0), TxChecksum::Valid), Err(TxError::NotConnected));
        connect(&mut xs, &dev, &mut h.nf, KEYS, SECOND).unwrap();
        assert_eq!(h.nb.rx_requests(), 8, "RX buffers posted before the keys");
        assert_eq!(h.nf.phase(), Phase::Connected);
        assert_eq!(frontend::backend_state(&mut xs, &dev).unwrap(), XenbusState::Connected);
        h.nf.transmit(&frame(60, 0), TxChecksum::Valid).unwrap();
        assert_eq!(h.nb.consume_tx(), 1);
    }

    /// A backend that follows netback's xenbus moves: Closing -> Closed when we close, InitWait when we are
    /// Initialising again ("prepare for reconnect"), Connected when we are.
    fn restartable_backend(fake: &Shared) {
        let backend_state = format!("{BACKEND}/state");
        let mut f = fake.borrow_mut();
        f.on_write("device/vif/0/state", b"4", &[(&backend_state, Some(b"4"))], 3);
        f.on_write("device/vif/0/state", b"6", &[(&backend_state, Some(b"6"))], 2);
        f.on_write("device/vif/0/state", b"1", &[(&backend_state, Some(b"2"))], 2);
    }

    fn our_states(fake: &Shared) -> Vec<String> {
        connect_writes(fake)
            .into_iter()
            .filter_map(|(_, w)| w.strip_prefix("device/vif/0/state=").map(Into::into))
            .collect()
    }

    #[test]
    fn reconnect_runs_the_xenbus_handshake_again_on_new_rings() {
        let (mut xs, fake, dev) = with_vif();
        restartable_backend(&fake);
        let mut h = harness_at(SG, 8, 8, 0);
        connect(&mut xs, &dev, &mut h.nf, KEYS, SECOND).unwrap();
        h.nf.transmit(&frame(60, 0), TxChecksum::Valid).unwrap();
        // The backend goes away with our packet unanswered.
        fake.borrow_mut().set(&format!("{BACKEND}/state"), b"5");
        let (tx_page, rx_page) = (crate::ring::testing::page(), crate::ring::testing::page());
        let keys = ConnectKeys { tx_ring_ref: GrantRef(18), rx_ring_ref: GrantRef(19), ..KEYS };
        let (report, closed) = disconnect(
            &mut xs,
            &dev,
            &mut h.nf,
            crate::ring::testing::HeapRing(tx_page.clone()),
            crate::ring::testing::HeapRing(rx_page.clone()),
            SECOND,
        );
        closed.unwrap();
        reconnect(&mut xs, &dev, &mut h.nf, keys, SECOND).unwrap();
        assert_eq!(report, ResetReport { tx_dropped: 1, rx_reclaimed: 8, rx_partial_dropped: false });
        assert_eq!(our_states(&fake), ["4", "5", "6", "1", "4"], "Connected, Closing, Closed, Initialising, Connected");
        let f = fake.borrow();
        assert_eq!(f.get("device/vif/0/tx-ring-ref").unwrap(), b"18");
        assert_eq!(f.get("device/vif/0/rx-ring-ref").unwrap(), b"19");
        assert_eq!(f.get(&format!("{BACKEND}/state")).unwrap(), b"4");
        drop(f);
        assert_eq!(h.nf.phase(), Phase::Connected);
        h.nb.reattach(tx_page, rx_page);
        assert_eq!(h.nb.rx_requests(), 8, "RX buffers posted on the new ring");
        h.nf.transmit(&frame(60, 1), TxChecksum::Valid).unwrap();
        assert_eq!(h.nb.consume_tx(), 1);
        assert_eq!(h.nf.poll_tx().freed, 1);
    }

    #[test]
    fn reconnect_waits_for_closed_through_closing() {
        let (mut xs, fake, dev) = with_vif();
        restartable_backend(&fake);
        let mut h = harness_at(SG, 4, 4, 0);
        connect(&mut xs, &dev, &mut h.nf, KEYS, SECOND).unwrap();
        // The backend answers our Closing with Closing, and reaches Closed only later: a reconnect started
        // before Closed would never see InitWait.
        let backend_state = format!("{BACKEND}/state");
        fake.borrow_mut().on_write("device/vif/0/state", b"5", &[(&backend_state, Some(b"5"))], 1);
        fake.borrow_mut().set(&backend_state, b"5");
        let pages = (crate::ring::testing::page(), crate::ring::testing::page());
        let (_, closed) = disconnect(
            &mut xs,
            &dev,
            &mut h.nf,
            crate::ring::testing::HeapRing(pages.0),
            crate::ring::testing::HeapRing(pages.1),
            SECOND,
        );
        closed.unwrap();
        reconnect(&mut xs, &dev, &mut h.nf, KEYS, SECOND).unwrap();
        assert_eq!(h.nf.phase(), Phase::Connected);
    }

    /// Connects with `features` and `keys` to a backend offering `key`, which comes back without it: the
    /// reconnect's error, the device and its id.
    fn reconnect_without(key: &str, features: Features, keys: ConnectKeys) -> (ConfigError, Harness, DeviceInfo) {
        let (mut xs, fake, dev) = with_vif();
        restartable_backend(&fake);
        fake.borrow_mut().set(&format!("{BACKEND}/{key}"), b"1");
        let mut h = harness_at(features, 4, 4, 0);
        connect(&mut xs, &dev, &mut h.nf, keys, SECOND).unwrap();
        fake.borrow_mut().set(&format!("{BACKEND}/{key}"), b"0");
        fake.borrow_mut().set(&format!("{BACKEND}/state"), b"6");
        let pages = (crate::ring::testing::page(), crate::ring::testing::page());
        let (_, closed) = disconnect(
            &mut xs,
            &dev,
            &mut h.nf,
            crate::ring::testing::HeapRing(pages.0),
            crate::ring::testing::HeapRing(pages.1),
            SECOND,
        );
        closed.unwrap();
        let e = reconnect(&mut xs, &dev, &mut h.nf, keys, SECOND).unwrap_err();
        (e, h, dev)
    }

    #[test]
    fn reconnect_to_a_backend_that_lost_scatter_gather_is_refused() {
        let (e, mut h, dev) = reconnect_without("feature-sg", SG, KEYS);
        assert_eq!(e, ConfigError::FeatureWithdrawn { device: dev.device(), key: "feature-sg" });
        assert_eq!(
            e.to_string(),
            "vif/0: the backend came back without feature-sg, which the device was set up with; not reconnected"
        );
        assert_eq!(h.nf.phase(), Phase::Initialising, "nothing is sent");
        assert_eq!(h.nf.transmit(&frame(60, 0), TxChecksum::Valid), Err(TxError::NotConnected));
    }

    #[test]
    fn a_backend_that_comes_back_without_split_event_channels_is_refused() {
        let split = Features { split_event_channels: true, ..SG };
        let keys = ConnectKeys { rx_event_channel: Some(6), ..KEYS };
        let (e, h, dev) = reconnect_without("feature-split-event-channels", split, keys);
        assert_eq!(e, ConfigError::FeatureWithdrawn { device: dev.device(), key: "feature-split-event-channels" });
        assert_eq!(h.nf.phase(), Phase::Initialising, "nothing is sent");
    }

    #[test]
    fn a_backend_that_never_connects_leaves_transmit_refused() {
        let (mut xs, _fake, dev) = with_vif();
        let mut h = harness_at(SG, 8, 8, 0);
        let e = connect(&mut xs, &dev, &mut h.nf, KEYS, SECOND).unwrap_err();
        assert!(matches!(e, ConfigError::Frontend(FrontendError::Timeout { .. })), "{e:?}");
        assert_eq!(h.nf.phase(), Phase::Initialising);
        assert_eq!(h.nf.transmit(&frame(60, 0), TxChecksum::Valid), Err(TxError::NotConnected));
    }
}

#[test]
fn the_audit_holds_through_traffic_faults_and_reset() {
    let mut h = connected(SG, 4, 8);
    h.nf.audit().unwrap();
    h.nf.transmit(&frame(5000, 1), TxChecksum::Valid).unwrap();
    assert_eq!((h.nf.tx_in_flight(), h.nf.tx_free_buffers()), (2, 2));
    h.nf.audit().unwrap();
    h.nb.deliver(&frame(60, 0), 0);
    h.nb.respond_rx_raw(|req| NetifRxResponse { id: req.id ^ 1, offset: 0, flags: 0, status: 60 }.emit());
    rx_ok(&mut h);
    rx_drop(&mut h);
    h.nf.audit().unwrap();
    assert_eq!((h.nf.rx_posted_buffers(), h.nf.rx_free_buffers()), (8, 0), "reposted once the ring ran dry");
    let report = h.reset();
    assert_eq!((report.tx_dropped, report.rx_reclaimed), (2, 8));
    h.nf.audit().unwrap();
    assert_eq!((h.nf.tx_free_buffers(), h.nf.rx_free_buffers(), h.nf.tx_in_flight()), (4, 8, 0));
}

/// Issue 12: the whole RX ring is posted when the heap affords it, fewer buffers on a small guest, never too few.
#[test]
fn rx_buffers_fill_the_ring_when_the_heap_affords_them() {
    use super::{rx_buffer_count, MIN_RX_BUFFERS, RX_RING_SLOTS};
    assert_eq!(RX_RING_SLOTS, 256, "one page of 8-byte RX entries");
    assert_eq!(rx_buffer_count(16 << 20), 256);
    assert_eq!(rx_buffer_count(4 << 20), 256);
    assert_eq!(rx_buffer_count(2 << 20), 128);
    assert_eq!(rx_buffer_count(0), MIN_RX_BUFFERS);
}

/// Issue 12 (density): a small guest takes fewer TX buffers, but never so few that TSO goes off.
#[test]
fn tx_buffers_shrink_on_a_small_heap_but_keep_tso() {
    use super::{tx_buffer_count, MAX_TX_BUFFERS, MIN_TX_BUFFERS};
    assert_eq!(tx_buffer_count(16 << 20), MAX_TX_BUFFERS);
    assert_eq!(tx_buffer_count(4 << 20), 128);
    assert_eq!(tx_buffer_count(2 << 20), MIN_TX_BUFFERS);
    assert_eq!(tx_buffer_count(0), 64);
}
