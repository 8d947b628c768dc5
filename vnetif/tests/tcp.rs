//! TCP over the virtual network: integrity under loss, duplication and reordering, and each recovery mechanism
//! proved from the capture (retransmission timeout, fast retransmit, duplicate ACKs, zero window and window
//! update, keep-alive), simultaneous open and close, link and MTU faults. Every test ends with every connection
//! closed cleanly and nothing logged (`Sim::assert_clean`), unless it is about an error, which it then checks is
//! reported.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::*;
use sirocco_net::{NetError, SocketOptions, TcpState};
use sirocco_vnetif::analysis::{analyse_flow, segments};
use sirocco_vnetif::packet::{window_changes_on_every_ack, Segment};
use sirocco_vnetif::transfer::{fill_pattern, receive, send};
use sirocco_vnetif::*;

/// Every lane's statistics, summed.
fn all_lanes(sim: &Sim) -> LaneStats {
    let mut t = LaneStats::default();
    for port in 0..sim.switch.ports.len() {
        for dir in [Direction::Uplink, Direction::Downlink] {
            let s = sim.lane_stats(port, dir);
            t.offered += s.offered;
            t.delivered += s.delivered;
            t.lost += s.lost;
            t.data_lost += s.data_lost;
            t.duplicated += s.duplicated;
            t.reordered += s.reordered;
            t.down += s.down;
            t.too_big += s.too_big;
            t.filtered += s.filtered;
            t.queue_full += s.queue_full;
        }
    }
    t
}

/// A filter that drops the `nth` (from 1) TCP segment carrying data, once, and remembers its sequence number.
fn drop_nth_data_segment(nth: u32, dropped: Rc<Cell<Option<u32>>>) -> Filter {
    let mut seen = 0;
    Box::new(move |frame| match Segment::parse(frame) {
        Some(s) if s.len > 0 => {
            seen += 1;
            if seen == nth {
                dropped.set(Some(s.seq));
                Verdict::Drop
            } else {
                Verdict::Pass
            }
        }
        _ => Verdict::Pass,
    })
}

/// A filter that drops the first data segment carrying each of `marks` (byte offsets into the stream, counted from
/// the first byte after the SYN), once per mark, and records the sequence numbers it dropped in `dropped`.
fn drop_bytes_once(mut marks: Vec<u32>, dropped: Rc<RefCell<Vec<u32>>>) -> Filter {
    let mut isn = None;
    Box::new(move |frame| {
        let Some(s) = Segment::parse(frame) else { return Verdict::Pass };
        if s.syn {
            isn = Some(s.seq);
        }
        let Some(isn) = isn.filter(|_| s.len > 0) else { return Verdict::Pass };
        let start = s.seq.wrapping_sub(isn).wrapping_sub(1);
        let before = marks.len();
        marks.retain(|&b| !(start <= b && b < start + s.len as u32));
        if marks.len() == before {
            return Verdict::Pass;
        }
        dropped.borrow_mut().push(s.seq);
        Verdict::Drop
    })
}

#[test]
fn data_integrity_under_1_percent_loss() {
    let mut sim = pair(101);
    sim.set_faults(1, Lanes::Both, Faults::loss(0.01));
    clean_transfer(&mut sim, QUICK);
    let (lanes, flow) = (all_lanes(&sim), upload_flow(&sim));
    assert!(lanes.lost > 0, "no frame was lost: the fault did not apply");
    assert!(!flow.retransmissions.is_empty(), "losses recovered without a retransmission?");
    settle_and_assert_clean(&mut sim);
}

#[test]
fn data_integrity_under_10_percent_loss() {
    let mut sim = pair(102);
    sim.set_faults(1, Lanes::Both, Faults::loss(0.10));
    clean_transfer(&mut sim, QUICK);
    let (lanes, flow) = (all_lanes(&sim), upload_flow(&sim));
    // 1 MiB is ~720 segments and ~360 ACKs.
    assert!(lanes.lost > 60, "{lanes:?}");
    assert!(flow.retransmissions.len() > 50, "{} retransmissions", flow.retransmissions.len());
    settle_and_assert_clean(&mut sim);
}

#[test]
fn data_integrity_under_duplication() {
    let mut sim = pair(103);
    sim.set_faults(1, Lanes::Both, Faults { duplicate: 0.05, delay_us: 500, ..Faults::NONE });
    clean_transfer(&mut sim, QUICK);
    let (lanes, flow) = (all_lanes(&sim), upload_flow(&sim));
    assert!(lanes.duplicated > 0);
    assert!(
        flow.data_segments_received > flow.data_segments,
        "the receiver got {} data segments for {} sent: no duplicate reached it",
        flow.data_segments_received,
        flow.data_segments
    );
    settle_and_assert_clean(&mut sim);
}

#[test]
fn data_integrity_under_reordering() {
    let mut sim = pair(104);
    sim.set_faults(1, Lanes::Both, Faults { reorder: 0.05, reorder_delay_us: 3_000, delay_us: 1_000, ..Faults::NONE });
    clean_transfer(&mut sim, QUICK);
    let (lanes, flow) = (all_lanes(&sim), upload_flow(&sim));
    assert!(lanes.reordered > 0);
    assert!(flow.dup_acks_sent > 0, "out-of-order segments must be answered with immediate duplicate ACKs");
    settle_and_assert_clean(&mut sim);
}

/// Twenty holes in one window: every other segment of a full window is held back 3 ms. Regression test: smoltcp's
/// default reassembly keeps 4 out-of-order ranges and silently drops a segment that would make a fifth, so the
/// receiver threw away most of the window and the sender needed retransmission timeouts to recover; `sirocco-net`
/// now builds smoltcp with 32 ranges, and the held-back segments simply fill the holes.
#[test]
fn a_window_with_twenty_holes_is_reassembled() {
    let mut sim = pair(118);
    sim.set_faults(1, Lanes::Both, Faults { delay_us: 1_000, ..Faults::NONE });
    let mut distinct: Vec<u32> = Vec::new();
    sim.set_filter(
        0,
        Direction::Uplink,
        Box::new(move |frame| {
            let Some(s) = Segment::parse(frame) else { return Verdict::Pass };
            if s.len == 0 || distinct.contains(&s.seq) {
                return Verdict::Pass;
            }
            distinct.push(s.seq);
            // By segment 600 the congestion window has grown to the whole 64 KiB receive window.
            let k = distinct.len();
            if (600..640).contains(&k) && k.is_multiple_of(2) {
                Verdict::Delay(3_000)
            } else {
                Verdict::Pass
            }
        }),
    );
    clean_transfer(&mut sim, 2 * QUICK);
    assert_eq!(sim.lane_stats(0, Direction::Uplink).held_back, 20);
    let flow = upload_flow(&sim);
    assert_eq!(flow.timeout_retransmits(), 0, "out-of-order segments were thrown away: {:?}", flow.retransmissions);
    settle_and_assert_clean(&mut sim);
}

/// A lost segment with nothing behind it (no duplicate ACK can come) is recovered by the retransmission timer:
/// once, after smoltcp's minimum RTO (200 ms with the patch in third_party/README.md; 1 s in smoltcp 0.14.0).
#[test]
fn retransmission_after_loss() {
    let mut sim = pair(105);
    let dropped = Rc::new(Cell::new(None));
    sim.set_filter(0, Direction::Uplink, drop_nth_data_segment(1, dropped.clone()));
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let mut listener = TcpListener::bind(&b, 7, 1).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        let request = read_exact(&mut s, 100).await;
        s.write_all(&request).await.unwrap();
        assert_eq!(read_to_end(&mut s).await, b"");
        s.close().await.unwrap();
    });
    let echoed = sim.run(async move {
        let mut s = TcpStream::connect(&a, b_ip, 7).await.unwrap();
        s.write_all(&[0x5a; 100]).await.unwrap();
        let echoed = read_exact(&mut s, 100).await;
        s.close().await.unwrap();
        echoed
    });
    sim.join(server);
    assert_eq!(echoed, [0x5a; 100]);
    let flow = upload_flow(&sim);
    assert_eq!(flow.retransmissions.len(), 1, "{:?}", flow.retransmissions);
    let r = flow.retransmissions[0];
    assert_eq!(Some(r.seq), dropped.get());
    assert!(!r.fast, "nothing followed the lost segment, so no duplicate ACK could trigger a fast retransmit");
    let sent = segments(&sim.capture)
        .into_iter()
        .find(|s| s.port == 0 && s.way == Way::Sent && s.seg.seq == r.seq && s.seg.len == 100)
        .expect("the original transmission");
    let waited = r.t_us - sent.t_us;
    // smoltcp's minimum RTO is 200 ms, as Linux's (third_party/README.md): it was 1 s, which made every loss fast
    // retransmit cannot repair stall a connection for a second.
    assert!((200_000..300_000).contains(&waited), "retransmitted {waited} us after the original");
    settle_and_assert_clean(&mut sim);
}

/// One segment lost in the middle of a window: the segments behind it each draw an immediate duplicate ACK,
/// and the third makes the sender retransmit the lost one at once, long before its retransmission timer.
#[test]
fn fast_retransmit_after_three_duplicate_acks() {
    let mut sim = pair(106);
    // 20 ms round trip: a timeout-driven retransmission would come at least 200 ms (the minimum RTO) later.
    sim.set_faults_everywhere(Faults { delay_us: 5_000, ..Faults::NONE });
    let dropped = Rc::new(Cell::new(None));
    sim.set_filter(0, Direction::Uplink, drop_nth_data_segment(20, dropped.clone()));
    clean_transfer(&mut sim, 256 * 1024);
    let lost = dropped.get().expect("the 20th data segment was dropped");
    let flow = upload_flow(&sim);
    let dup_acks: Vec<u64> = flow.dup_ack_times.iter().filter(|(_, ack)| *ack == lost).map(|(t, _)| *t).collect();
    assert!(dup_acks.len() >= 3, "{} duplicate ACKs for the lost segment {lost}", dup_acks.len());
    let retx: Vec<_> = flow.retransmissions.iter().filter(|r| r.seq == lost).collect();
    assert_eq!(retx.len(), 1, "retransmitted exactly once: {:?}", flow.retransmissions);
    let r = retx[0];
    assert!(r.fast && r.dup_acks_before >= 3, "{r:?}");
    // It left once the third duplicate ACK was back at the sender (5 + 5 ms after the receiver sent it).
    assert!(r.t_us >= dup_acks[2] + 10_000 && r.t_us < dup_acks[2] + 20_000, "{r:?} vs dup ACKs at {dup_acks:?}");
    assert_eq!(flow.timeout_retransmits(), 0, "{:?}", flow.retransmissions);
    assert_eq!(flow.unprovoked_dup_acks, 0);
    settle_and_assert_clean(&mut sim);
}

/// Regression test (smoltcp patch 2, third_party/README.md): a receiver whose advertised window changes on every
/// ACK while it holds out-of-order data, as Linux's does (it grows the window as its buffer auto-tunes), still
/// draws a fast retransmit. smoltcp 0.14.0 counted an ACK as a duplicate only if the window was unchanged
/// (RFC 5681), so against such a receiver every loss waited for the retransmission timer; it now also counts an ACK
/// that carries SACK blocks (RFC 6675). Here the receiver's uplink bumps the window field of every other pure ACK
/// (`packet::window_changes_on_every_ack`, the matrix's Linux-like receiver).
#[test]
fn fast_retransmit_when_the_receivers_window_changes_on_every_ack() {
    let mut sim = pair(119);
    sim.set_faults_everywhere(Faults { delay_us: 5_000, ..Faults::NONE });
    let dropped = Rc::new(Cell::new(None));
    sim.set_filter(0, Direction::Uplink, drop_nth_data_segment(20, dropped.clone()));
    sim.set_filter(1, Direction::Uplink, window_changes_on_every_ack());
    clean_transfer(&mut sim, 256 * 1024);
    let lost = dropped.get().expect("the 20th data segment was dropped");
    let sent = segments(&sim.capture)
        .into_iter()
        .find(|s| s.port == 0 && s.way == Way::Sent && s.seg.seq == lost && s.seg.len > 0)
        .expect("the original transmission");
    let flow = upload_flow(&sim);
    let retx: Vec<_> = flow.retransmissions.iter().filter(|r| r.seq == lost).collect();
    assert_eq!(retx.len(), 1, "retransmitted exactly once: {:?}", flow.retransmissions);
    // Three ACKs behind the loss come back one 20 ms round trip after it; the timer would wait at least 200 ms.
    let waited = retx[0].t_us - sent.t_us;
    assert!(waited < 60_000, "retransmitted {waited} us after the original: by the timer, not by duplicate ACKs");
    settle_and_assert_clean(&mut sim);
}

/// Regression test (smoltcp patch 3, third_party/README.md): two segments lost in one window, the second with too
/// few segments behind it to draw three more duplicate ACKs. The partial ACK that answers the first one's fast
/// retransmit points at the second, which NewReno (RFC 6582) retransmits at once; smoltcp 0.14.0 had no fast
/// recovery state and waited for the retransmission timer.
#[test]
fn a_partial_ack_retransmits_the_next_lost_segment_at_once() {
    const BYTES: u32 = 256 * 1024;
    let mut sim = pair(120);
    sim.set_faults_everywhere(Faults { delay_us: 5_000, ..Faults::NONE });
    // The sender's last full window leaves in one burst (segments at BYTES - 15,628 .. BYTES - 2,488 in this
    // replay); the rest of the data only once that window is acknowledged. Lose the burst's first segment (the
    // seven behind it draw its fast retransmit) and its third-last: only two segments of new data follow that one
    // after the partial ACK, too few for three duplicate ACKs, so without NewReno only the timer repairs it.
    let lost = Rc::new(RefCell::new(Vec::new()));
    sim.set_filter(0, Direction::Uplink, drop_bytes_once(vec![BYTES - 15_000, BYTES - 5_000], lost.clone()));
    clean_transfer(&mut sim, u64::from(BYTES));
    let lost = lost.borrow().clone();
    assert_eq!(lost.len(), 2, "both segments were dropped");
    let flow = upload_flow(&sim);
    let of = |seq| flow.retransmissions.iter().filter(|r| r.seq == seq).copied().collect::<Vec<_>>();
    let (a, b) = (of(lost[0]), of(lost[1]));
    assert!(a.len() == 1 && a[0].fast, "the first hole by fast retransmit: {:?}", flow.retransmissions);
    assert!(
        b.len() == 1 && b[0].after_partial_ack,
        "the second right after the partial ACK: {:?}",
        flow.retransmissions
    );
    assert_eq!(flow.timeout_retransmits(), 0, "{:?}", flow.retransmissions);
    settle_and_assert_clean(&mut sim);
}

/// Regression test (smoltcp patch 6, third_party/README.md): the fast retransmission of a lost segment is lost
/// too. Data sent after it is SACKed while the hole stays, which shows the retransmission is gone; it is sent
/// again at once. smoltcp 0.14.0 (and NewReno alone) cannot tell and waited for the retransmission timer.
#[test]
fn a_lost_fast_retransmission_is_sent_again_without_the_timer() {
    let mut sim = pair(121);
    sim.set_faults_everywhere(Faults { delay_us: 5_000, ..Faults::NONE });
    // Drop the 60th data segment and its first retransmission, once each.
    let (mut seen, mut target, mut drops) = (0u32, None, 0);
    sim.set_filter(
        0,
        Direction::Uplink,
        Box::new(move |frame| match Segment::parse(frame) {
            Some(s) if s.len > 0 => {
                seen += 1;
                if seen == 60 {
                    target = Some(s.seq);
                }
                if target == Some(s.seq) && drops < 2 {
                    drops += 1;
                    return Verdict::Drop;
                }
                Verdict::Pass
            }
            _ => Verdict::Pass,
        }),
    );
    sim.set_filter(1, Direction::Uplink, window_changes_on_every_ack());
    clean_transfer(&mut sim, 512 * 1024);
    assert_eq!(sim.lane_stats(0, Direction::Uplink).filtered, 2, "the segment and its retransmission were dropped");
    let flow = upload_flow(&sim);
    assert_eq!(flow.timeout_retransmits(), 0, "{:?}", flow.retransmissions);
    settle_and_assert_clean(&mut sim);
}

/// Regression test (smoltcp patch 7, third_party/README.md): ten segments in a row are lost at once, as when
/// netback or a qdisc drops one TSO frame of 64 KiB. The receiver's SACK blocks show where the hole ends, and the
/// whole hole is sent again at once. smoltcp 0.14.0 (and NewReno alone) resent one segment per round trip, each
/// after the partial ACK of the one before: ten round trips for one drop.
#[test]
fn a_burst_lost_at_once_is_resent_within_one_round_trip() {
    const LOST: u32 = 10;
    let mut sim = pair(122);
    sim.set_faults_everywhere(Faults { delay_us: 5_000, ..Faults::NONE });
    let (mut seen, mut gone) = (0u32, Vec::new());
    let lost = Rc::new(RefCell::new(Vec::new()));
    let record = lost.clone();
    sim.set_filter(
        0,
        Direction::Uplink,
        Box::new(move |frame| match Segment::parse(frame) {
            Some(s) if s.len > 0 => {
                seen += 1;
                if (80..80 + LOST).contains(&seen) && !gone.contains(&s.seq) {
                    gone.push(s.seq);
                    record.borrow_mut().push(s.seq);
                    return Verdict::Drop;
                }
                Verdict::Pass
            }
            _ => Verdict::Pass,
        }),
    );
    clean_transfer(&mut sim, 512 * 1024);
    let lost = lost.borrow().clone();
    assert_eq!(lost.len(), LOST as usize, "the burst was dropped");
    let flow = upload_flow(&sim);
    assert_eq!(flow.timeout_retransmits(), 0, "{:?}", flow.retransmissions);
    // When each lost segment went again: the first by fast retransmit, the rest must follow without waiting for
    // the ACKs of those before them (a round trip here is at least 20 ms: 5 ms on each of four lanes).
    let resent: Vec<u64> = lost
        .iter()
        .map(|seq| {
            let r = flow.retransmissions.iter().find(|r| r.seq <= *seq && *seq < r.seq + r.len as u32);
            r.unwrap_or_else(|| panic!("{seq} was never resent: {:?}", flow.retransmissions)).t_us
        })
        .collect();
    let spread = resent.iter().max().unwrap() - resent.iter().min().unwrap();
    assert!(spread < 10_000, "the hole took {spread} us to resend: {:?}", flow.retransmissions);
    settle_and_assert_clean(&mut sim);
}

/// Regression test (smoltcp patch 9, third_party/README.md): the last three segments of a transfer are lost. No
/// duplicate ACK can come (nothing follows them); a tail loss probe two round trips later sends the last one again,
/// its SACK shows the other two lost, and fast recovery sends them. smoltcp 0.14.0 waited for the retransmission
/// timer (and then restarted from a congestion window of one segment).
#[test]
fn a_lost_tail_is_repaired_by_a_probe_before_the_timer() {
    const BYTES: u32 = 256 * 1024;
    let mut sim = pair(123);
    sim.set_faults_everywhere(Faults { delay_us: 5_000, ..Faults::NONE });
    // Each of the last three segments' bytes is dropped once (the first segment that carries it).
    let marks = vec![BYTES - 1, BYTES - 1_500, BYTES - 3_000];
    sim.set_filter(0, Direction::Uplink, drop_bytes_once(marks, Rc::new(RefCell::new(Vec::new()))));
    clean_transfer(&mut sim, u64::from(BYTES));
    assert_eq!(sim.lane_stats(0, Direction::Uplink).filtered, 3, "the tail was dropped");
    let flow = upload_flow(&sim);
    assert!(flow.tail_probes() >= 1, "no tail loss probe: {:?}", flow.retransmissions);
    assert_eq!(flow.timeout_retransmits(), 0, "{:?}", flow.retransmissions);
    settle_and_assert_clean(&mut sim);
}

/// Regression test (smoltcp patch 4, third_party/README.md): a short message's first segment is lost; with so
/// little in flight three duplicate ACKs can never come. Early retransmit (RFC 5827) sends it again after fewer;
/// smoltcp 0.14.0 waited for the retransmission timer.
#[test]
fn early_retransmit_with_three_segments_in_flight() {
    let mut sim = pair(122);
    sim.set_faults_everywhere(Faults { delay_us: 5_000, ..Faults::NONE });
    let dropped = Rc::new(Cell::new(None));
    sim.set_filter(0, Direction::Uplink, drop_nth_data_segment(1, dropped.clone()));
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let mut listener = TcpListener::bind(&b, 7, 1).unwrap();
    let message = vec![0x3c; 3 * 1460];
    let len = message.len();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        let got = read_exact(&mut s, len).await;
        s.write_all(b"ok").await.unwrap();
        assert_eq!(read_to_end(&mut s).await, b"");
        s.close().await.unwrap();
        got
    });
    sim.run(async move {
        let mut s = TcpStream::connect(&a, b_ip, 7).await.unwrap();
        s.write_all(&message).await.unwrap();
        assert_eq!(read_exact(&mut s, 2).await, b"ok");
        s.close().await.unwrap();
    });
    assert_eq!(sim.join(server), vec![0x3c; len]);
    let flow = upload_flow(&sim);
    let lost = dropped.get().expect("the first data segment was dropped");
    let retx: Vec<_> = flow.retransmissions.iter().filter(|r| r.seq == lost).collect();
    assert_eq!(retx.len(), 1, "{:?}", flow.retransmissions);
    // The initial congestion window lets two of the three leave at first, so one duplicate ACK is all that can come.
    assert!(retx[0].fast && (1..3).contains(&retx[0].dup_acks_before), "early, on fewer than three: {:?}", retx[0]);
    settle_and_assert_clean(&mut sim);
}

/// Regression test for a smoltcp 0.14 bug that `Stack` works around: with only our FIN unacknowledged, three
/// duplicate ACKs made smoltcp start a fast retransmit with nothing to send and switch its retransmission timer
/// off, so the FIN was never sent again and the close timed out 30 s later (the peer got a RST after all the
/// data; under 1% loss, one bulk transfer in ten ended so, mostly from go-back-N retransmissions still in
/// flight). Scripted: all data is acknowledged, the FIN is lost, and four late copies of the last data segment
/// reach the receiver, which answers each with an ACK of the data's end (the first also updates the window, the
/// other three are duplicates).
#[test]
fn a_lone_fin_is_retransmitted_after_duplicate_acks() {
    let mut sim = pair(117);
    sim.set_faults(1, Lanes::Both, Faults { delay_us: 1_000, ..Faults::NONE });
    const BYTES: u32 = 20 * 1460;
    let (mut first_byte, mut fins, mut copied) = (None, 0, false);
    sim.set_filter(
        0,
        Direction::Uplink,
        Box::new(move |frame| {
            let Some(s) = Segment::parse(frame) else { return Verdict::Pass };
            if s.syn {
                first_byte = Some(s.seq.wrapping_add(1));
            } else if s.fin {
                fins += 1;
                if fins == 1 {
                    return Verdict::Drop;
                }
            } else if !copied && s.len > 0 && first_byte.map(|f| f.wrapping_add(BYTES)) == Some(s.seq_end()) {
                // Late copies of the last data segment, arriving after the (lost) FIN was sent.
                copied = true;
                return Verdict::Copies { extra: 4, after_us: 50_000 };
            }
            Verdict::Pass
        }),
    );
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let mut listener = TcpListener::bind(&b, 80, 1).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        let r = receive(&mut s, 5).await;
        s.close().await.unwrap();
        r
    });
    let h = sim.handle();
    let (closed, took) = sim.run(async move {
        let mut s = TcpStream::connect(&a, b_ip, 80).await.unwrap();
        send(&mut s, u64::from(BYTES), 5).await.unwrap();
        s.flush().await.unwrap();
        let start = h.now_ms();
        let closed = s.close().await;
        (closed, h.now_ms() - start)
    });
    assert_eq!(sim.join(server), (u64::from(BYTES), None, Ok(())));
    assert_eq!(closed, Ok(()), "the close hung on the FIN");
    assert!(took < 5_000, "closing took {took} ms");
    let up = sim.lane_stats(0, Direction::Uplink);
    assert_eq!((up.filtered, up.duplicated), (1, 4), "the script ran as planned");
    let flow = upload_flow(&sim);
    assert!(flow.longest_dup_ack_run >= 3, "{flow:?}");
    assert!(sim.stats(0).fin_dup_acks_absorbed >= 2, "{:?}", sim.stats(0));
    let fins = segments(&sim.capture).iter().filter(|s| s.port == 0 && s.way == Way::Sent && s.seg.fin).count();
    assert_eq!(fins, 2, "the FIN, then its retransmission");
    settle_and_assert_clean(&mut sim);
}

/// Under data loss and reordering, every duplicate ACK answers a segment that arrived (RFC 5681's one ACK per
/// out-of-order segment, not more).
#[test]
fn no_storm_of_duplicate_acks() {
    let mut sim = pair(107);
    sim.set_faults(
        1,
        Lanes::Both,
        Faults { data_loss: 0.05, reorder: 0.05, reorder_delay_us: 2_000, delay_us: 1_000, ..Faults::NONE },
    );
    clean_transfer(&mut sim, QUICK);
    let flow = upload_flow(&sim);
    assert!(flow.dup_acks_sent > 10, "the faults made no duplicate ACKs: {flow:?}");
    assert_eq!(flow.unprovoked_dup_acks, 0, "duplicate ACKs no segment asked for");
    assert!(flow.dup_acks_sent <= flow.data_segments_received);
    settle_and_assert_clean(&mut sim);
}

/// An open connection with keep-alive off stays open through a long silence, and nothing is sent meanwhile (no
/// ACK ping-pong). Regression test: smoltcp 0.14 applied the connection timeout to idle connections too, so
/// this one was reset after 90 s; `Stack` now arms the timeout only while it waits for the peer.
#[test]
fn an_idle_connection_without_keep_alive_stays_open_and_silent() {
    let mut sim = pair(119);
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let options = SocketOptions { tcp_keep_alive_ms: None, ..SocketOptions::default() };
    a.lock().set_socket_options(options);
    b.lock().set_socket_options(options);
    let mut listener = TcpListener::bind(&b, 9, 1).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        assert_eq!(read_exact(&mut s, 4).await, b"ping");
        s.write_all(b"pong").await.unwrap();
        assert_eq!(read_to_end(&mut s).await, b"");
        s.close().await.unwrap();
    });
    let h = sim.handle();
    let frames_idle = Rc::new(Cell::new((0, 0)));
    let idle = frames_idle.clone();
    let client = sim.spawn(async move {
        let mut s = TcpStream::connect(&a, b_ip, 9).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        assert_eq!(read_exact(&mut s, 4).await, b"pong");
        h.sleep(1_000).await; // the delayed ACKs go out
        idle.set((h.now_us(), 0));
        h.sleep(120_000).await;
        idle.set((idle.get().0, h.now_us()));
        s.close().await.unwrap();
    });
    sim.join(client);
    sim.join(server);
    let (from, to) = frames_idle.get();
    let during = sim.capture.frames.iter().filter(|c| c.t_us > from && c.t_us < to).count();
    assert_eq!(during, 0, "frames on an idle connection during {} s", (to - from) / 1_000_000);
    settle_and_assert_clean(&mut sim);
}

/// A receiver that stops reading: its window closes, the sender stops at the window's edge and probes, and the
/// window update after the reads resumes the transfer.
#[test]
fn zero_window_then_window_update() {
    let mut sim = pair(108);
    sim.set_faults_everywhere(Faults { delay_us: 1_000, ..Faults::NONE });
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let h = sim.handle();
    let mut listener = TcpListener::bind(&b, 80, 1).unwrap();
    let bytes = 256 * 1024;
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        // Not reading for 10 s: the 64 KiB receive buffer fills and the window closes.
        h.sleep(10_000).await;
        let r = receive(&mut s, 9).await;
        s.close().await.unwrap();
        r
    });
    sim.run(async move {
        let mut s = TcpStream::connect(&a, b_ip, 80).await.unwrap();
        send(&mut s, bytes, 9).await.unwrap();
        s.close().await.unwrap();
    });
    let (got, mismatch, outcome) = sim.join(server);
    assert_eq!((got, mismatch, outcome), (bytes, None, Ok(())));
    let flow = upload_flow(&sim);
    assert!(flow.zero_window_acks > 0, "the window never closed: {flow:?}");
    assert!(flow.window_probes > 0, "no zero-window probe in 10 s of closed window");
    assert!(flow.window_updates > 0, "no window update after the reads");
    assert_eq!(flow.bytes_beyond_window, 0, "the sender overran the advertised window");
    settle_and_assert_clean(&mut sim);
}

/// Both ends connect to each other from the ports the other targets, at the same moment: each SYN crosses the
/// other (RFC 9293 3.5, MUST-10), and the connection opens once. (First: a port a listener holds is refused, and
/// free again as soon as the listener is dropped.)
#[test]
fn simultaneous_open() {
    let mut sim = pair(109);
    sim.set_faults_everywhere(Faults { delay_us: 2_000, ..Faults::NONE });
    let (a, b, a_ip, b_ip) = (sim.net(0), sim.net(1), sim.ip(0), sim.ip(1));
    {
        let _listener = TcpListener::bind(&a, 7000, 1).unwrap();
        let a2 = a.clone();
        let taken = sim.run(async move { TcpStream::connect_from(&a2, 7000, b_ip, 7000).await.err() });
        assert_eq!(taken, Some(NetError::AddressInUse), "a listener has the port");
    }
    let left = sim.spawn(async move {
        let mut s = TcpStream::connect_from(&a, 7000, b_ip, 7000).await?;
        s.write_all(b"from a").await?;
        let got = read_exact(&mut s, 6).await;
        s.close().await?;
        Ok::<_, NetError>(got)
    });
    let right = sim.spawn(async move {
        let mut s = TcpStream::connect_from(&b, 7000, a_ip, 7000).await?;
        s.write_all(b"from b").await?;
        let got = read_exact(&mut s, 6).await;
        s.close().await?;
        Ok::<_, NetError>(got)
    });
    assert_eq!(sim.join(left), Ok(b"from b".to_vec()));
    assert_eq!(sim.join(right), Ok(b"from a".to_vec()));
    // Each side sent a bare SYN before it received the other's.
    let segs = segments(&sim.capture);
    for port in [0, 1] {
        let sent = segs.iter().find(|s| s.port == port && s.way == Way::Sent && s.seg.syn).unwrap();
        let got = segs.iter().find(|s| s.port == port && s.way == Way::Received && s.seg.syn).unwrap();
        assert!(sent.seg.ack.is_none() && got.seg.ack.is_none(), "{sent:?} {got:?}");
        assert!(sent.t_us < got.t_us, "port {port} answered a SYN instead of crossing it");
    }
    settle_and_assert_clean(&mut sim);
}

/// Both ends close at the same moment: the FINs cross, both go through CLOSING to TIME-WAIT, both closes
/// succeed.
#[test]
fn simultaneous_close() {
    let mut sim = pair(110);
    sim.set_faults_everywhere(Faults { delay_us: 2_000, ..Faults::NONE });
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let h = sim.handle();
    let mut listener = TcpListener::bind(&b, 80, 1).unwrap();
    // Both close at 300 ms, well after the exchange and every ACK.
    const CLOSE_AT_US: u64 = 300_000;
    let h2 = h.clone();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        assert_eq!(read_exact(&mut s, 5).await, b"hello");
        s.write_all(b"world").await.unwrap();
        h2.sleep_until_us(CLOSE_AT_US).await;
        let r = s.close().await;
        (r, s.state())
    });
    let client = sim.spawn(async move {
        let mut s = TcpStream::connect(&a, b_ip, 80).await.unwrap();
        s.write_all(b"hello").await.unwrap();
        assert_eq!(read_exact(&mut s, 5).await, b"world");
        h.sleep_until_us(CLOSE_AT_US).await;
        let r = s.close().await;
        (r, s.state())
    });
    let (client, server) = (sim.join(client), sim.join(server));
    assert_eq!(client, (Ok(()), TcpState::TimeWait));
    assert_eq!(server, (Ok(()), TcpState::TimeWait), "both ends closed first, so both wait");
    let segs = segments(&sim.capture);
    for port in [0, 1] {
        let fin_sent = segs.iter().find(|s| s.port == port && s.way == Way::Sent && s.seg.fin).unwrap();
        let fin_got = segs.iter().find(|s| s.port == port && s.way == Way::Received && s.seg.fin).unwrap();
        assert_eq!(fin_sent.t_us, CLOSE_AT_US);
        assert!(fin_sent.t_us < fin_got.t_us, "port {port}'s FIN did not cross the other's");
    }
    settle_and_assert_clean(&mut sim);
}

/// An idle connection with keep-alive: each end probes every interval with one old byte, the other answers with
/// an ACK, and the connection stays open.
#[test]
fn keep_alive_on_an_idle_connection() {
    let mut sim = pair(111);
    let options = SocketOptions { tcp_keep_alive_ms: Some(10_000), ..SocketOptions::default() };
    for i in 0..2 {
        sim.net(i).lock().set_socket_options(options);
    }
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let h = sim.handle();
    let mut listener = TcpListener::bind(&b, 80, 1).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        assert_eq!(read_to_end(&mut s).await, b"after 35 s");
        s.close().await.unwrap();
    });
    let state = sim.run(async move {
        let mut s = TcpStream::connect(&a, b_ip, 80).await.unwrap();
        h.sleep(35_000).await;
        let state = s.state();
        s.write_all(b"after 35 s").await.unwrap();
        s.close().await.unwrap();
        state
    });
    sim.join(server);
    assert_eq!(state, TcpState::Established);
    let (c, s) = first_connection(&sim);
    let (up, down) = (analyse_flow(&sim.capture, c, s), analyse_flow(&sim.capture, s, c));
    assert!(
        up.keepalives >= 3 && down.keepalives >= 3,
        "keep-alives: client {}, server {}",
        up.keepalives,
        down.keepalives
    );
    // Each keep-alive drew an ACK from the other end (the ACK of a keep-alive repeats the ACK number).
    for (port, from) in [(1, c), (0, s)] {
        let segs = segments(&sim.capture);
        let probes: Vec<u64> = segs
            .iter()
            .filter(|x| x.port == port && x.way == Way::Received && x.seg.src == from && x.seg.len == 1)
            .map(|x| x.t_us)
            .collect();
        for t in probes {
            assert!(
                segs.iter().any(|x| x.port == port
                    && x.way == Way::Sent
                    && x.t_us >= t
                    && x.t_us < t + 1_000
                    && x.seg.is_pure_ack()),
                "port {port} did not answer the keep-alive at {t} us"
            );
        }
    }
    settle_and_assert_clean(&mut sim);
}

/// The peer vanishes (its backend is gone for good): the keep-alives go unanswered and the connection ends with
/// a timeout that the reader sees and the stack counts.
#[test]
fn keep_alive_detects_a_vanished_peer() {
    let mut sim = pair(112);
    let options =
        SocketOptions { tcp_keep_alive_ms: Some(5_000), tcp_timeout_ms: Some(20_000), ..SocketOptions::default() };
    for i in 0..2 {
        sim.net(i).lock().set_socket_options(options);
    }
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let h = sim.handle();
    let mut listener = TcpListener::bind(&b, 80, 1).unwrap();
    let server = sim.spawn(async move { listener.accept().await });
    let client = sim.spawn(async move {
        let mut s = TcpStream::connect(&a, b_ip, 80).await.unwrap();
        let mut buf = [0u8; 16];
        let r = s.read(&mut buf).await;
        (r, h.now_ms())
    });
    let peer = sim.join(server);
    let gone_at = sim.now_ms();
    sim.backend_gone(1);
    let (r, at) = sim.join(client);
    assert_eq!(r, Err(NetError::TimedOut));
    let waited = at - gone_at;
    assert!((20_000..26_000).contains(&waited), "noticed after {waited} ms");
    assert_eq!(sim.stats(0).tcp_errors.timed_out, 1);
    let (c, s) = first_connection(&sim);
    assert!(analyse_flow(&sim.capture, c, s).keepalives >= 3);
    assert_eq!(sim.log_problems(), []);
    drop(peer);
    sim.drop_tasks();
}

/// `close` after a large write on a slow link: the queued data takes about a minute to drain, longer than the
/// 30 s close timeout, but it keeps draining, so the close waits. Regression test: the close deadline ran from the
/// call, so the connection was reset mid-drain and the peer lost the end of the stream; it now runs from the
/// last progress.
#[test]
fn close_waits_while_queued_data_drains_on_a_slow_link() {
    let mut sim = pair(120);
    sim.set_faults(1, Lanes::Both, Faults { bandwidth_bps: Some(8_000), ..Faults::NONE });
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let mut listener = TcpListener::bind(&b, 80, 1).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        let r = receive(&mut s, 6).await;
        s.close().await.unwrap();
        r
    });
    let h = sim.handle();
    let (closed, took) = sim.run(async move {
        let mut s = TcpStream::connect(&a, b_ip, 80).await.unwrap();
        send(&mut s, 48 * 1024, 6).await.unwrap();
        let start = h.now_ms();
        (s.close().await, h.now_ms() - start)
    });
    assert_eq!(sim.join(server), (48 * 1024, None, Ok(())));
    assert_eq!(closed, Ok(()));
    assert!(took > 40_000, "the data drained in {took} ms: not slower than the close timeout, no test");
    settle_and_assert_clean(&mut sim);
}

/// The receiver's link goes down for 2 s in the middle of a transfer: the sender's retransmission timer carries
/// the connection over the outage.
#[test]
fn link_down_then_up_mid_transfer() {
    let mut sim = pair(113);
    sim.set_faults_everywhere(Faults { delay_us: 1_000, bandwidth_bps: Some(50_000_000), ..Faults::NONE });
    sim.at_ms(60, |sim| sim.set_faults(1, Lanes::Both, Faults { up: false, ..Faults::NONE }));
    sim.at_ms(2_060, |sim| sim.set_faults(1, Lanes::Both, Faults { delay_us: 1_000, ..Faults::NONE }));
    let t = clean_transfer(&mut sim, QUICK);
    assert!(t.sim_ms > 2_060, "the transfer ended before the outage did: {t:?}");
    let lanes = all_lanes(&sim);
    assert!(lanes.down > 0);
    assert!(upload_flow(&sim).timeout_retransmits() > 0);
    settle_and_assert_clean(&mut sim);
}

/// A link with a smaller MTU than the nodes' (1400 < 1500): smoltcp has no path MTU discovery, so full-size
/// segments never get through. Small exchanges work; a bulk write ends in a timeout the writer sees and the
/// stack counts. (Documented behaviour: the fix is the vif's `mtu` key, not the stack.)
#[test]
fn a_link_mtu_below_the_nodes_stalls_full_segments_and_says_so() {
    let mut sim = pair(114);
    sim.set_faults(1, Lanes::Both, Faults { mtu: Some(1400), ..Faults::NONE });
    let options = SocketOptions { tcp_timeout_ms: Some(10_000), ..SocketOptions::default() };
    for i in 0..2 {
        sim.net(i).lock().set_socket_options(options);
    }
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let mut listener = TcpListener::bind(&b, 80, 1).unwrap();
    let _server = sim.spawn(async move {
        let mut s = listener.accept().await;
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
        s
    });
    let (small, big) = sim.run(async move {
        let mut s = TcpStream::connect(&a, b_ip, 80).await.unwrap();
        s.write_all(&[1; 500]).await.unwrap();
        let small = s.flush().await;
        let mut big = vec![0u8; 64 * 1024];
        fill_pattern(1, 0, &mut big);
        s.write_all(&big).await.unwrap();
        let big = s.flush().await;
        (small, big)
    });
    assert_eq!(small, Ok(()));
    assert_eq!(big, Err(NetError::TimedOut));
    assert!(sim.lane_stats(1, Direction::Downlink).too_big > 0);
    assert_eq!(sim.stats(0).tcp_errors.timed_out, 1);
    assert_eq!(sim.log_problems(), []);
    sim.drop_tasks();
}

/// Nodes with different MTUs (9000 and 1500) agree on the smaller segment size through the MSS option.
#[test]
fn different_node_mtus_agree_through_the_mss() {
    let mut sim = sim(115);
    let mut jumbo = NodeConfig::new(0);
    jumbo.mtu = 9000;
    sim.add_node(jumbo);
    sim.add_node(NodeConfig::new(1));
    clean_transfer(&mut sim, QUICK);
    let largest = segments(&sim.capture).iter().map(|s| s.seg.len).max().unwrap();
    assert_eq!(largest, 1460, "segments sized for the 1500-byte side");
    settle_and_assert_clean(&mut sim);
}

/// Three nodes on the switch: two upload to the third at once. The switch floods only until it has learnt the
/// MACs; both transfers arrive intact.
#[test]
fn two_uploads_to_one_server_through_the_switch() {
    let mut sim = sim(116);
    for i in 0..3 {
        sim.add_node(NodeConfig::new(i));
    }
    sim.set_faults_everywhere(Faults { loss: 0.01, delay_us: 500, ..Faults::NONE });
    let server_net = sim.net(2);
    let server_ip = sim.ip(2);
    let mut listener = TcpListener::bind(&server_net, 80, 4).unwrap();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r2 = results.clone();
    let h = sim.handle();
    let server = sim.spawn(async move {
        let mut done = Vec::new();
        for _ in 0..2 {
            let mut s = listener.accept().await;
            let seed = match s.peer_addr().unwrap().ip() {
                std::net::IpAddr::V4(a) => u64::from(a.octets()[3]),
                _ => unreachable!(),
            };
            let r2 = r2.clone();
            done.push(h.spawn(async move {
                let r = receive(&mut s, seed).await;
                s.close().await.unwrap();
                r2.borrow_mut().push((seed, r));
            }));
        }
        for d in done {
            d.await;
        }
    });
    let clients: Vec<_> = (0..2)
        .map(|i| {
            let net = sim.net(i);
            let seed = i as u64 + 1;
            sim.spawn(async move {
                let mut s = TcpStream::connect(&net, server_ip, 80).await.unwrap();
                send(&mut s, 512 * 1024, seed).await.unwrap();
                s.close().await.unwrap();
            })
        })
        .collect();
    for c in clients {
        sim.join(c);
    }
    sim.join(server);
    let mut results = results.borrow().clone();
    results.sort_by_key(|(seed, _)| *seed);
    assert_eq!(results, [(1, (512 * 1024, None, Ok(()))), (2, (512 * 1024, None, Ok(())))]);
    let sw = sim.switch.stats;
    assert!(sw.forwarded > 100 * sw.flooded, "{sw:?}");
    settle_and_assert_clean(&mut sim);
}
