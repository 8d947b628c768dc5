//! What the trace sees on the wire (issue 15): each TCP segment in and out is looked at (headers only, when the
//! `net` or `tcp` category is traced), so that a request's path starts where its data segment arrived and ends
//! where the answer's first data segment left, and so that retransmissions and window changes show in the trace
//! without hooks inside smoltcp. The observations are plain values, tested here; the adapter records them.

use sirocco_boot_logic::trace::flow_id;

/// A TCP segment's headers, as far as the trace cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    /// Payload bytes (a TSO super-segment's whole payload).
    pub payload: u32,
    /// The window field as sent (not scaled: the scale is in the SYN's options).
    pub window: u16,
    /// The SYN flag: a connection (maybe reusing the ports of an earlier one) starts its sequence space here.
    pub syn: bool,
}

/// The TCP segment in an Ethernet frame (IPv4, or IPv6 without extension headers), if it is one.
pub(crate) fn tcp_segment(frame: &[u8]) -> Option<Segment> {
    let be16 = |b: &[u8], at: usize| b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]));
    let (tcp_at, ip_payload) = match be16(frame, 12)? {
        0x0800 => {
            let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
            if *frame.get(23)? != 6 || ihl < 20 {
                return None;
            }
            (14 + ihl, usize::from(be16(frame, 16)?).checked_sub(ihl)?)
        }
        0x86dd => {
            if *frame.get(20)? != 6 {
                return None;
            }
            (54, usize::from(be16(frame, 18)?))
        }
        _ => return None,
    };
    let tcp = frame.get(tcp_at..tcp_at + 20)?;
    let header = usize::from(tcp[12] >> 4) * 4;
    Some(Segment {
        src_port: u16::from_be_bytes([tcp[0], tcp[1]]),
        dst_port: u16::from_be_bytes([tcp[2], tcp[3]]),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        payload: ip_payload.checked_sub(header)? as u32,
        window: u16::from_be_bytes([tcp[14], tcp[15]]),
        syn: tcp[13] & 0x02 != 0,
    })
}

/// Something the trace records about a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Data arrived on this flow: a request's path starts.
    DataIn(u64),
    /// Data left on this flow: the answer's path ends.
    DataOut(u64),
    /// Data we had sent already left again on this flow.
    Retransmit(u64),
    /// The peer's window field changed to this.
    PeerWindow(u16),
    /// Our window field changed to this.
    OurWindow(u16),
}

/// Connections whose highest sequence sent is remembered (direct-mapped by flow; a collision forgets the older).
const TRACKED: usize = 64;

/// The wire's state the trace needs: per connection the end of the highest data sent, and the last windows.
pub(crate) struct WireTrace {
    sent: [(u64, u32); TRACKED],
    peer_window: Option<u16>,
    our_window: Option<u16>,
}

impl WireTrace {
    pub(crate) const fn new() -> Self {
        WireTrace { sent: [(u64::MAX, 0); TRACKED], peer_window: None, our_window: None }
    }

    /// A frame that arrived: at most two observations.
    pub(crate) fn rx(&mut self, frame: &[u8]) -> [Option<Seen>; 2] {
        let Some(s) = tcp_segment(frame) else { return [None, None] };
        if s.syn {
            // A new connection on these ports: what was sent on an earlier one says nothing about it.
            self.forget(flow_id(s.dst_port, s.src_port));
        }
        let data = (s.payload > 0).then_some(Seen::DataIn(flow_id(s.dst_port, s.src_port)));
        let window = (self.peer_window.replace(s.window) != Some(s.window)).then_some(Seen::PeerWindow(s.window));
        [data, window]
    }

    /// A frame that left: at most two observations (its data, or its retransmission; a window change).
    pub(crate) fn tx(&mut self, frame: &[u8]) -> [Option<Seen>; 2] {
        let Some(s) = tcp_segment(frame) else { return [None, None] };
        let window = (self.our_window.replace(s.window) != Some(s.window)).then_some(Seen::OurWindow(s.window));
        let flow = flow_id(s.src_port, s.dst_port);
        if s.syn {
            self.forget(flow);
        }
        if s.payload == 0 {
            return [None, window];
        }
        let end = s.seq.wrapping_add(s.payload);
        let slot = &mut self.sent[(flow % TRACKED as u64) as usize];
        let seen = if slot.0 == flow && (slot.1.wrapping_sub(end) as i32) >= 0 {
            Seen::Retransmit(flow)
        } else {
            *slot = (flow, end);
            Seen::DataOut(flow)
        };
        [Some(seen), window]
    }

    fn forget(&mut self, flow: u64) {
        let slot = &mut self.sent[(flow % TRACKED as u64) as usize];
        if slot.0 == flow {
            *slot = (u64::MAX, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// An Ethernet frame with an IPv4 (or IPv6) TCP segment of `payload` bytes.
    fn frame(v6: bool, src: u16, dst: u16, seq: u32, window: u16, payload: usize) -> Vec<u8> {
        let mut f = alloc::vec![0u8; 12];
        let mut tcp = alloc::vec![0u8; 20];
        tcp[0..2].copy_from_slice(&src.to_be_bytes());
        tcp[2..4].copy_from_slice(&dst.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[14..16].copy_from_slice(&window.to_be_bytes());
        tcp.resize(20 + payload, b'x');
        if v6 {
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            let mut ip = alloc::vec![0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(tcp.len() as u16).to_be_bytes());
            ip[6] = 6;
            f.extend_from_slice(&ip);
        } else {
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let mut ip = alloc::vec![0u8; 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
            ip[9] = 6;
            f.extend_from_slice(&ip);
        }
        f.extend_from_slice(&tcp);
        f
    }

    #[test]
    fn segments_are_read_from_ipv4_and_ipv6_frames_and_others_are_not() {
        for v6 in [false, true] {
            let s = tcp_segment(&frame(v6, 40000, 80, 7, 512, 100)).unwrap();
            assert_eq!(s, Segment { src_port: 40000, dst_port: 80, seq: 7, payload: 100, window: 512, syn: false });
        }
        let mut udp = frame(false, 1, 2, 0, 0, 10);
        udp[23] = 17;
        assert_eq!(tcp_segment(&udp), None);
        let arp = {
            let mut f = frame(false, 1, 2, 0, 0, 0);
            f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
            f
        };
        assert_eq!(tcp_segment(&arp), None);
        // Cut short anywhere: never a panic, never a segment.
        let whole = frame(false, 40000, 80, 7, 512, 0);
        for len in 0..whole.len() {
            assert_eq!(tcp_segment(&whole[..len]), None, "{len}");
        }
        let mut lying = frame(false, 1, 2, 0, 0, 0);
        lying[16..18].copy_from_slice(&10u16.to_be_bytes()); // total length shorter than the headers
        assert_eq!(tcp_segment(&lying), None);
    }

    #[test]
    fn a_request_flows_in_and_out_and_a_resent_segment_is_a_retransmission() {
        let mut w = WireTrace::new();
        let flow = flow_id(80, 40000);
        assert_eq!(
            w.rx(&frame(false, 40000, 80, 1, 500, 120)),
            [Some(Seen::DataIn(flow)), Some(Seen::PeerWindow(500))]
        );
        // A pure ACK in with the same window: nothing.
        assert_eq!(w.rx(&frame(false, 40000, 80, 121, 500, 0)), [None, None]);
        assert_eq!(
            w.tx(&frame(false, 80, 40000, 1000, 800, 300)),
            [Some(Seen::DataOut(flow)), Some(Seen::OurWindow(800))]
        );
        assert_eq!(w.tx(&frame(false, 80, 40000, 1300, 800, 300)), [Some(Seen::DataOut(flow)), None]);
        // The first segment again (a timeout), and a part of the second: retransmissions.
        assert_eq!(w.tx(&frame(false, 80, 40000, 1000, 800, 300)), [Some(Seen::Retransmit(flow)), None]);
        assert_eq!(
            w.tx(&frame(false, 80, 40000, 1300, 700, 100)),
            [Some(Seen::Retransmit(flow)), Some(Seen::OurWindow(700))]
        );
        // Across the sequence space's wrap.
        assert_eq!(w.tx(&frame(false, 80, 40001, u32::MAX - 10, 700, 100)).len(), 2);
        assert_eq!(w.tx(&frame(false, 80, 40001, 89, 700, 50))[0], Some(Seen::DataOut(flow_id(80, 40001))));
        assert_eq!(w.tx(&frame(false, 80, 40001, 40, 700, 49))[0], Some(Seen::Retransmit(flow_id(80, 40001))));
    }

    #[test]
    fn a_new_connection_on_the_same_ports_is_not_a_retransmission() {
        let mut w = WireTrace::new();
        let flow = flow_id(80, 40000);
        assert_eq!(w.tx(&frame(false, 80, 40000, 5000, 800, 300))[0], Some(Seen::DataOut(flow)));
        // The client comes back from the same port with a new SYN; our new sequence space starts lower.
        let mut syn = frame(false, 40000, 80, 1, 500, 0);
        syn[14 + 20 + 13] = 0x02;
        w.rx(&syn);
        assert_eq!(w.tx(&frame(false, 80, 40000, 100, 800, 300))[0], Some(Seen::DataOut(flow)));
        // And our own SYN-ACK starts it too.
        let mut syn_ack = frame(false, 80, 40000, 10, 800, 0);
        syn_ack[14 + 20 + 13] = 0x12;
        w.tx(&syn_ack);
        assert_eq!(w.tx(&frame(false, 80, 40000, 11, 800, 300))[0], Some(Seen::DataOut(flow)));
    }
}
