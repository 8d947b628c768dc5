//! TCP behaviour read out of a capture, one direction of one connection at a time ([`analyse_flow`]): what the
//! data sender did (retransmissions, fast or after a timeout; zero-window probes; keep-alives; bytes sent past the
//! advertised window) and what the receiver did (duplicate ACKs, whether each was provoked by a segment, zero
//! windows and window updates). Tests assert on these to prove a behaviour, not just the end result.
//!
//! The sender's view is its own port: the segments it sent and the ACKs it received, in time order. The
//! receiver's view is the other port. Definitions follow RFC 5681 (duplicate ACK: no data, no SYN/FIN, same ACK
//! number and window as the last one, while data is outstanding) and RFC 9293 (keep-alive: one old byte
//! below `SND.UNA`; zero-window probe: one byte while the window is closed).

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::packet::{seq_le, seq_lt, Segment};
use crate::pcap::{Capture, Way};

/// A segment in the capture, where and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Simulated time, microseconds.
    pub t_us: u64,
    /// The port it was captured on.
    pub port: usize,
    /// Sent or received by that port's node.
    pub way: Way,
    /// The segment.
    pub seg: Segment,
}

/// Every TCP segment in the capture.
pub fn segments(capture: &Capture) -> Vec<Seen> {
    capture
        .frames
        .iter()
        .filter_map(|c| Segment::parse(&c.data).map(|seg| Seen { t_us: c.t_us, port: c.port, way: c.way, seg }))
        .collect()
}

/// The connections (as `(client, server)`: who sent the first SYN, to whom) in the capture, in order of their
/// first SYN.
pub fn connections(capture: &Capture) -> Vec<(SocketAddr, SocketAddr)> {
    let mut out = Vec::new();
    for s in segments(capture) {
        if s.way == Way::Sent && s.seg.syn && s.seg.ack.is_none() && !out.contains(&(s.seg.src, s.seg.dst)) {
            out.push((s.seg.src, s.seg.dst));
        }
    }
    out
}

/// One retransmitted segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retransmission {
    /// When it was sent.
    pub t_us: u64,
    /// Its sequence number.
    pub seq: u32,
    /// Its length.
    pub len: usize,
    /// Sent in answer to three or more duplicate ACKs, before a retransmission timeout could have fired.
    pub fast: bool,
    /// Sent in fast recovery in answer to a partial ACK (RFC 6582: an ACK that covers part of what was in flight
    /// when the fast retransmit began points at another lost segment), before a timeout could have fired.
    pub after_partial_ack: bool,
    /// A tail loss probe (RFC 8985, smoltcp patch 9): the last data sent, sent again sooner after it than a
    /// retransmission timeout could fire.
    pub tail_probe: bool,
    /// Duplicate ACKs received for this sequence number before it.
    pub dup_acks_before: u64,
}

/// The data flow from `src` to `dst`, read from the capture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowReport {
    /// Data segments the sender sent (retransmissions, probes and keep-alives included).
    pub data_segments: u64,
    /// Payload bytes sent (the end of the highest data segment minus the first sequence number).
    pub bytes: u64,
    /// Every retransmission, in order.
    pub retransmissions: Vec<Retransmission>,
    /// Duplicate ACKs the sender received.
    pub dup_acks_received: u64,
    /// The longest run of duplicate ACKs for one sequence number.
    pub longest_dup_ack_run: u64,
    /// Keep-alives the sender sent (one byte below `SND.UNA`, after idling).
    pub keepalives: u64,
    /// Zero-window probes the sender sent (one byte while the window was closed).
    pub window_probes: u64,
    /// Data bytes sent beyond the right edge of the window the sender had been offered (probes excepted).
    pub bytes_beyond_window: u64,
    /// Data segments the receiver received (duplicates included).
    pub data_segments_received: u64,
    /// Pure ACKs the receiver sent.
    pub acks_sent: u64,
    /// Duplicate ACKs the receiver sent (same ACK number and window as its previous ACK).
    pub dup_acks_sent: u64,
    /// Of those, the ones no received segment provoked (an ACK storm or ping-pong): each segment that occupies
    /// sequence space, or lies outside the advertised window, may provoke one ACK within 20 ms.
    pub unprovoked_dup_acks: u64,
    /// ACKs from the receiver advertising a zero window.
    pub zero_window_acks: u64,
    /// Pure ACKs from the receiver that only opened a closed window (window updates).
    pub window_updates: u64,
    /// Duplicate ACKs the receiver sent, in order: (time, ACK number).
    pub dup_ack_times: Vec<(u64, u32)>,
    /// The unprovoked ones: (time, ACK number).
    pub unprovoked_dup_ack_times: Vec<(u64, u32)>,
}

impl FlowReport {
    /// Retransmissions triggered by duplicate ACKs.
    pub fn fast_retransmits(&self) -> usize {
        self.retransmissions.iter().filter(|r| r.fast).count()
    }

    /// Retransmissions in answer to a partial ACK in fast recovery.
    pub fn partial_ack_retransmits(&self) -> usize {
        self.retransmissions.iter().filter(|r| r.after_partial_ack).count()
    }

    /// Tail loss probes.
    pub fn tail_probes(&self) -> usize {
        self.retransmissions.iter().filter(|r| r.tail_probe).count()
    }

    /// Retransmissions after a timeout.
    pub fn timeout_retransmits(&self) -> usize {
        self.retransmissions.iter().filter(|r| !r.fast && !r.after_partial_ack && !r.tail_probe).count()
    }
}

/// smoltcp's smallest retransmission timeout (200 ms, third_party/README.md): a retransmission sooner than this
/// after the third duplicate ACK (or a partial ACK) is a fast retransmit.
const RTO_MIN_US: u64 = 200_000;

/// Reads the flow of data from `src` to `dst`.
pub fn analyse_flow(capture: &Capture, src: SocketAddr, dst: SocketAddr) -> FlowReport {
    let all = segments(capture);
    let is_fwd = |s: &Segment| s.src == src && s.dst == dst;
    let is_rev = |s: &Segment| s.src == dst && s.dst == src;
    let Some(sender_port) = all.iter().find(|s| s.way == Way::Sent && is_fwd(&s.seg)).map(|s| s.port) else {
        return FlowReport::default();
    };
    let receiver_port = all.iter().find(|s| s.way == Way::Sent && is_rev(&s.seg)).map(|s| s.port);
    // Window scaling applies when both SYNs carry the option; each side scales the windows it advertises.
    let fwd_syn_scale = all.iter().find(|s| is_fwd(&s.seg) && s.seg.syn).and_then(|s| s.seg.window_scale);
    let rev_syn_scale = all.iter().find(|s| is_rev(&s.seg) && s.seg.syn).and_then(|s| s.seg.window_scale);
    let rcv_shift = match (fwd_syn_scale, rev_syn_scale) {
        (Some(_), Some(r)) => u32::from(r),
        _ => 0,
    };

    let mut r = FlowReport::default();
    sender_view(&all, sender_port, &is_fwd, &is_rev, rcv_shift, &mut r);
    if let Some(port) = receiver_port {
        receiver_view(&all, port, &is_fwd, &is_rev, rcv_shift, &mut r);
    }
    r
}

fn sender_view(
    all: &[Seen],
    port: usize,
    is_fwd: &dyn Fn(&Segment) -> bool,
    is_rev: &dyn Fn(&Segment) -> bool,
    rcv_shift: u32,
    r: &mut FlowReport,
) {
    let mut first: Option<u32> = None;
    let mut data_end: Option<u32> = None;
    let mut snd_max: Option<u32> = None;
    let mut snd_una: Option<u32> = None;
    let mut window: Option<u64> = None;
    let mut last_ack: Option<(u32, u16)> = None;
    let mut dup_run = 0u64;
    let mut last_dup_at: Option<u64> = None;
    // Fast recovery as the sender must see it: the highest sequence number sent when a fast retransmit went out,
    // and when the last ACK below it moved SND.UNA on (a partial ACK).
    let mut recover: Option<u32> = None;
    let mut partial_ack_at: Option<u64> = None;
    // When new data last went out (SND.MAX moved on).
    let mut last_new_data_at: Option<u64> = None;
    for s in all.iter().filter(|s| s.port == port) {
        let seg = s.seg;
        match s.way {
            Way::Sent if is_fwd(&seg) => {
                if seg.syn {
                    first = Some(seg.seq.wrapping_add(1));
                    snd_max = Some(seg.seq_end());
                    continue;
                }
                if seg.len == 0 && !seg.fin {
                    continue;
                }
                let (Some(max), Some(una)) = (snd_max, snd_una.or(first)) else { continue };
                if seg.len > 0 {
                    r.data_segments += 1;
                    let end = seg.seq.wrapping_add(seg.len as u32);
                    if data_end.is_none_or(|e| seq_lt(e, end)) {
                        data_end = Some(end);
                    }
                }
                if seg.len <= 1 && seq_le(seg.seq_end(), una) && seq_lt(seg.seq, una) {
                    r.keepalives += 1;
                    continue;
                }
                let probe = window == Some(0) && seg.len == 1;
                if probe {
                    r.window_probes += 1;
                }
                if seq_lt(seg.seq, max) && seg.len > 0 && !probe {
                    // Fast: in answer to duplicate ACKs (three, or fewer with little in flight: early retransmit,
                    // RFC 5827), sooner after the last of them than a retransmission timeout could fire.
                    let fast = seg.seq == una && dup_run >= 1 && last_dup_at.is_some_and(|t| s.t_us - t < RTO_MIN_US);
                    let after_partial_ack =
                        !fast && seg.seq == una && partial_ack_at.is_some_and(|t| s.t_us - t < RTO_MIN_US);
                    // The rest of a hole sent right behind its first segment (SACK-based recovery, smoltcp patch
                    // 7) is what that first segment was: fast, after a partial ACK, or after a timeout.
                    let continued = r.retransmissions.last().filter(|p| {
                        !fast
                            && !after_partial_ack
                            && p.seq.wrapping_add(p.len as u32) == seg.seq
                            && s.t_us - p.t_us < RTO_MIN_US
                    });
                    let (fast, after_partial_ack) =
                        continued.map_or((fast, after_partial_ack), |p| (p.fast, p.after_partial_ack));
                    let tail_probe = !fast
                        && !after_partial_ack
                        && seg.seq_end() == max
                        && last_new_data_at.is_some_and(|t| s.t_us - t < RTO_MIN_US);
                    if fast && recover.is_none() {
                        recover = Some(max);
                    }
                    partial_ack_at = None;
                    r.retransmissions.push(Retransmission {
                        t_us: s.t_us,
                        seq: seg.seq,
                        len: seg.len,
                        fast,
                        after_partial_ack,
                        tail_probe,
                        dup_acks_before: dup_run,
                    });
                }
                if let Some(w) = window {
                    let edge = u64::from(una) + w;
                    let end = u64::from(una) + u64::from(seg.seq_end().wrapping_sub(una));
                    if !probe && end > edge + u64::from(seg.fin) {
                        r.bytes_beyond_window += end - edge - u64::from(seg.fin);
                    }
                }
                // A probe's byte is sent again once the window opens: not a retransmission then.
                if !probe && seq_lt(max, seg.seq_end()) {
                    snd_max = Some(seg.seq_end());
                    last_new_data_at = Some(s.t_us);
                }
            }
            Way::Received if is_rev(&seg) => {
                let Some(ack) = seg.ack else { continue };
                let scaled = u64::from(seg.window) << if seg.syn { 0 } else { rcv_shift };
                let outstanding = snd_max.is_some_and(|m| seq_lt(ack, m));
                // A duplicate as the sender counts them (the patched smoltcp, RFC 6675): the same ACK with no data,
                // and the same window or SACK blocks.
                let same = last_ack.is_some_and(|(a, w)| a == ack && (w == seg.window || seg.sack));
                let dup = seg.is_pure_ack() && same && outstanding;
                if dup {
                    r.dup_acks_received += 1;
                    dup_run += 1;
                    last_dup_at = Some(s.t_us);
                    r.longest_dup_ack_run = r.longest_dup_ack_run.max(dup_run);
                } else if last_ack.is_none_or(|(a, _)| a != ack) {
                    dup_run = 0;
                    last_dup_at = None;
                }
                if snd_una.is_none_or(|u| seq_lt(u, ack)) {
                    snd_una = Some(ack);
                    match recover {
                        Some(end) if seq_lt(ack, end) => partial_ack_at = Some(s.t_us),
                        Some(_) => (recover, partial_ack_at) = (None, None),
                        None => {}
                    }
                }
                last_ack = Some((ack, seg.window));
                window = Some(scaled);
            }
            _ => {}
        }
    }
    if let (Some(f), Some(e)) = (first, data_end) {
        r.bytes = u64::from(e.wrapping_sub(f));
    }
}

/// How long after a segment arrives the receiver may still answer it: smoltcp ACKs out-of-order and duplicate
/// segments at once, others within its 10 ms ACK delay.
const ACK_WINDOW_US: u64 = 20_000;

fn receiver_view(
    all: &[Seen],
    port: usize,
    is_fwd: &dyn Fn(&Segment) -> bool,
    is_rev: &dyn Fn(&Segment) -> bool,
    rcv_shift: u32,
    r: &mut FlowReport,
) {
    let mut last: Option<(u32, u16)> = None;
    // Arrival times of the segments not yet answered: each may provoke one ACK (RFC 5681 wants an immediate ACK
    // for every out-of-order or duplicate segment), within ACK_WINDOW_US.
    let mut unanswered: VecDeque<u64> = VecDeque::new();
    let mut closed = false;
    for s in all.iter().filter(|s| s.port == port) {
        let seg = s.seg;
        match s.way {
            Way::Received if is_fwd(&seg) => {
                if seg.len > 0 {
                    r.data_segments_received += 1;
                }
                // Segments that occupy sequence space call for an ACK; so does one outside the window we
                // advertised (RFC 9293 3.10.7.4: an unacceptable segment is answered with an ACK). An acceptable
                // ACK is not ACKed.
                let outside = last.is_some_and(|(ack, win)| {
                    let edge = ack.wrapping_add(u32::from(win) << rcv_shift);
                    seq_lt(seg.seq, ack) || !seq_lt(seg.seq, edge) && (win > 0 || seg.seq != ack)
                });
                if seg.len > 0 || seg.syn || seg.fin || outside {
                    unanswered.push_back(s.t_us);
                }
            }
            Way::Sent if is_rev(&seg) => {
                let Some(ack) = seg.ack else { continue };
                if seg.window == 0 && !seg.rst {
                    r.zero_window_acks += 1;
                    closed = true;
                }
                while unanswered.front().is_some_and(|&t| t + ACK_WINDOW_US < s.t_us) {
                    unanswered.pop_front();
                }
                let provoked = unanswered.pop_front().is_some();
                if seg.is_pure_ack() {
                    r.acks_sent += 1;
                    if last == Some((ack, seg.window)) {
                        r.dup_acks_sent += 1;
                        r.dup_ack_times.push((s.t_us, ack));
                        if !provoked {
                            r.unprovoked_dup_acks += 1;
                            r.unprovoked_dup_ack_times.push((s.t_us, ack));
                        }
                    } else if closed && seg.window > 0 && last.is_some_and(|(a, _)| a == ack) {
                        r.window_updates += 1;
                    }
                }
                if seg.window > 0 {
                    closed = false;
                }
                last = Some((ack, seg.window));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sirocco_net::smoltcp::phy::ChecksumCapabilities;
    use sirocco_net::smoltcp::wire::{
        EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet,
        Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
    };

    const A: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);
    const B: ([u8; 4], u16) = ([10, 0, 0, 2], 80);

    /// A TCP frame from `from` to `to`.
    fn frame(
        from: ([u8; 4], u16),
        to: ([u8; 4], u16),
        control: TcpControl,
        seq: u32,
        ack: Option<u32>,
        len: usize,
        window: u16,
    ) -> Vec<u8> {
        let payload = vec![0u8; len];
        let tcp = TcpRepr {
            src_port: from.1,
            dst_port: to.1,
            control,
            seq_number: TcpSeqNumber(seq as i32),
            ack_number: ack.map(|a| TcpSeqNumber(a as i32)),
            window_len: window,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &payload,
        };
        let (src, dst) = (Ipv4Address::from(from.0), Ipv4Address::from(to.0));
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut buf = vec![0u8; 14 + ip.buffer_len() + tcp.buffer_len()];
        let mut e = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.emit(&mut e);
        let caps = ChecksumCapabilities::default();
        let mut p = Ipv4Packet::new_unchecked(e.payload_mut());
        ip.emit(&mut p, &caps);
        tcp.emit(&mut TcpPacket::new_unchecked(p.payload_mut()), &IpAddress::Ipv4(src), &IpAddress::Ipv4(dst), &caps);
        buf
    }

    /// Records `f` as seen by both ends: sent by its source's port at `t`, received by the other at `t + 1000`.
    fn both(c: &mut Capture, t: u64, from_a: bool, f: &[u8]) {
        let (tx, rx) = if from_a { (0, 1) } else { (1, 0) };
        c.record(t, tx, Way::Sent, f);
        c.record(t + 1000, rx, Way::Received, f);
    }

    fn addr(x: ([u8; 4], u16)) -> SocketAddr {
        SocketAddr::from((x.0, x.1))
    }

    /// A handshake, then data segments 1..=n of 100 bytes from A (sequence 1 + 100 k).
    fn opened(c: &mut Capture) {
        both(c, 0, true, &frame(A, B, TcpControl::Syn, 0, None, 0, 1000));
        both(c, 2000, false, &frame(B, A, TcpControl::Syn, 500, Some(1), 0, 1000));
        both(c, 4000, true, &frame(A, B, TcpControl::None, 1, Some(501), 0, 1000));
    }

    /// A sends 100 bytes at sequence `seq` at `t`.
    fn data(c: &mut Capture, t: u64, seq: u32) {
        both(c, t, true, &frame(A, B, TcpControl::None, seq, Some(501), 100, 1000));
    }

    /// B sends `n` pure ACKs of `ack` at `t`.
    fn acks(c: &mut Capture, t: u64, n: usize, ack: u32) {
        for _ in 0..n {
            both(c, t, false, &frame(B, A, TcpControl::None, 501, Some(ack), 0, 1000));
        }
    }

    /// [`opened`], then data segments 0..5 (sequence 1 + 100 k) at 10 ms.
    fn five_sent() -> Capture {
        let mut c = Capture::new(65535);
        opened(&mut c);
        for k in 0..5u32 {
            data(&mut c, 10_000, 1 + 100 * k);
        }
        c
    }

    #[test]
    fn a_retransmission_right_after_a_partial_ack_in_fast_recovery_is_not_a_timeout() {
        let mut c = five_sent();
        // Segments 0 and 2 lost: three duplicate ACKs of 1 (for 1, 3 and 4), the fast retransmit of 1, then the
        // partial ACK 201 (below 501, the highest sent) and at once the retransmission of 201, then the full ACK.
        acks(&mut c, 12_000, 3, 1);
        data(&mut c, 14_000, 1);
        acks(&mut c, 16_000, 1, 201);
        data(&mut c, 17_000, 201);
        acks(&mut c, 19_000, 1, 501);
        // Later a lone loss after the recovery ended: a partial ACK from before must not make its timeout fast.
        data(&mut c, 30_000, 501);
        data(&mut c, 230_000, 501);
        let r = analyse_flow(&c, addr(A), addr(B));
        assert_eq!(r.retransmissions.len(), 3, "{:?}", r.retransmissions);
        assert!(r.retransmissions[0].fast && !r.retransmissions[0].after_partial_ack);
        assert!(!r.retransmissions[1].fast && r.retransmissions[1].after_partial_ack);
        assert!(!r.retransmissions[2].fast && !r.retransmissions[2].after_partial_ack);
        assert_eq!((r.fast_retransmits(), r.partial_ack_retransmits(), r.timeout_retransmits()), (1, 1, 1));
    }

    #[test]
    fn a_retransmission_after_three_duplicate_acks_is_fast_and_one_after_silence_is_not() {
        let mut c = five_sent();
        // Segment 0 was lost; the receiver answers the other four with duplicate ACKs of 1 (duplicates of the
        // SYN-ACK's ACK).
        acks(&mut c, 12_000, 4, 1);
        data(&mut c, 14_000, 1);
        acks(&mut c, 16_000, 1, 501);
        // Segment 5 lost, nothing behind it: retransmitted after a timeout.
        data(&mut c, 20_000, 501);
        data(&mut c, 1_020_000, 501);
        let r = analyse_flow(&c, addr(A), addr(B));
        assert_eq!(r.dup_acks_received, 4);
        assert_eq!(r.longest_dup_ack_run, 4);
        assert_eq!(r.retransmissions.len(), 2, "{:?}", r.retransmissions);
        assert!(r.retransmissions[0].fast && r.retransmissions[0].seq == 1);
        assert!(!r.retransmissions[1].fast && r.retransmissions[1].seq == 501);
        assert_eq!((r.fast_retransmits(), r.timeout_retransmits()), (1, 1));
        assert_eq!(r.bytes, 600);
        assert_eq!((r.dup_acks_sent, r.unprovoked_dup_acks), (4, 0), "each answered a segment");
    }

    #[test]
    fn duplicate_acks_without_segments_to_answer_are_a_storm() {
        let mut c = Capture::new(65535);
        opened(&mut c);
        both(&mut c, 10_000, true, &frame(A, B, TcpControl::None, 1, Some(501), 100, 1000));
        both(&mut c, 12_000, false, &frame(B, A, TcpControl::None, 501, Some(101), 0, 1000));
        // Then the receiver keeps repeating itself, with nothing arriving (ACKs from A do not count).
        for k in 0..5 {
            both(&mut c, 100_000 + k * 1000, true, &frame(A, B, TcpControl::None, 101, Some(501), 0, 1000));
            both(&mut c, 100_500 + k * 1000, false, &frame(B, A, TcpControl::None, 501, Some(101), 0, 1000));
        }
        let r = analyse_flow(&c, addr(A), addr(B));
        assert_eq!((r.dup_acks_sent, r.unprovoked_dup_acks), (5, 5));
        assert_eq!(r.unprovoked_dup_ack_times[0], (100_500, 101));
    }

    #[test]
    fn zero_windows_probes_updates_and_keepalives_are_recognised() {
        let mut c = Capture::new(65535);
        opened(&mut c);
        both(&mut c, 10_000, true, &frame(A, B, TcpControl::None, 1, Some(501), 1000, 1000));
        both(&mut c, 12_000, false, &frame(B, A, TcpControl::None, 501, Some(1001), 0, 0));
        // A probe with one byte, answered with the window still closed; then the window opens.
        both(&mut c, 1_012_000, true, &frame(A, B, TcpControl::None, 1001, Some(501), 1, 1000));
        both(&mut c, 1_014_000, false, &frame(B, A, TcpControl::None, 501, Some(1001), 0, 0));
        both(&mut c, 2_000_000, false, &frame(B, A, TcpControl::None, 501, Some(1001), 0, 500));
        both(&mut c, 2_002_000, true, &frame(A, B, TcpControl::None, 1001, Some(501), 500, 1000));
        // Sending past the 500-byte window by 100 bytes.
        both(&mut c, 2_004_000, true, &frame(A, B, TcpControl::None, 1501, Some(501), 100, 1000));
        both(&mut c, 2_006_000, false, &frame(B, A, TcpControl::None, 501, Some(1601), 0, 1000));
        // Idle, then a keep-alive: one byte below SND.UNA.
        both(&mut c, 40_000_000, true, &frame(A, B, TcpControl::None, 1600, Some(501), 1, 1000));
        let r = analyse_flow(&c, addr(A), addr(B));
        assert_eq!(r.zero_window_acks, 2);
        assert_eq!(r.window_probes, 1);
        assert_eq!(r.window_updates, 1);
        assert_eq!(r.bytes_beyond_window, 100);
        assert_eq!(r.keepalives, 1);
        assert!(r.retransmissions.is_empty(), "{:?}", r.retransmissions);
        assert_eq!(connections(&c), [(addr(A), addr(B))]);
    }
}
