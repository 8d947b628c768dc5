//! Reading captured frames with smoltcp's wire views: what a frame is (TCP segment, data-carrying or not) and the
//! TCP header fields the tests reason about. Works on frames cut to a snap length: lengths come from the IP
//! header, not from the bytes kept. Also the one rewrite filters make: a TCP window (a Linux-like receiver).

use std::net::{IpAddr, SocketAddr};

use sirocco_net::smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpOption, TcpPacket,
};

/// The TCP header of a captured frame, and its payload length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number, if ACK is set.
    pub ack: Option<u32>,
    /// SYN.
    pub syn: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
    /// The window field, unscaled.
    pub window: u16,
    /// The window scale option (SYN segments only).
    pub window_scale: Option<u8>,
    /// Carries SACK blocks (RFC 2018).
    pub sack: bool,
    /// Payload bytes (from the IP length: right even when the capture cut the frame).
    pub len: usize,
}

impl Segment {
    /// The TCP segment in an Ethernet frame (IPv4 or IPv6 without extension headers), or `None`.
    pub fn parse(frame: &[u8]) -> Option<Segment> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let (src, dst, l4, l4_len) = match eth.ethertype() {
            EthernetProtocol::Ipv4 => {
                let ip = Ipv4Packet::new_unchecked(eth.payload());
                if eth.payload().len() < 20 || ip.next_header() != IpProtocol::Tcp {
                    return None;
                }
                let hlen = usize::from(ip.header_len());
                let total = usize::from(ip.total_len());
                let payload = eth.payload().get(hlen..)?;
                (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()), payload, total.checked_sub(hlen)?)
            }
            EthernetProtocol::Ipv6 => {
                let ip = Ipv6Packet::new_unchecked(eth.payload());
                if eth.payload().len() < 40 || ip.next_header() != IpProtocol::Tcp {
                    return None;
                }
                let payload = eth.payload().get(40..)?;
                (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()), payload, usize::from(ip.payload_len()))
            }
            _ => return None,
        };
        if l4.len() < 20 {
            return None;
        }
        let tcp = TcpPacket::new_unchecked(l4);
        let hlen = usize::from(tcp.header_len());
        if hlen < 20 || l4.len() < hlen {
            return None;
        }
        let (mut window_scale, mut sack) = (None, false);
        let mut options = tcp.options();
        while !options.is_empty() {
            let Ok((rest, option)) = TcpOption::parse(options) else { break };
            match option {
                TcpOption::EndOfList => break,
                TcpOption::WindowScale(s) => window_scale = Some(s),
                TcpOption::SackRange(r) => sack |= r.iter().any(Option::is_some),
                _ => {}
            }
            options = rest;
        }
        Some(Segment {
            src: SocketAddr::new(src, tcp.src_port()),
            dst: SocketAddr::new(dst, tcp.dst_port()),
            seq: tcp.seq_number().0 as u32,
            ack: tcp.ack().then(|| tcp.ack_number().0 as u32),
            syn: tcp.syn(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            window: tcp.window_len(),
            window_scale,
            sack,
            len: l4_len.checked_sub(hlen)?,
        })
    }

    /// The sequence number after this segment (SYN and FIN count one each).
    pub fn seq_end(&self) -> u32 {
        self.seq.wrapping_add(self.len as u32 + u32::from(self.syn) + u32::from(self.fin))
    }

    /// An ACK with no data, SYN, FIN or RST.
    pub fn is_pure_ack(&self) -> bool {
        self.ack.is_some() && self.len == 0 && !self.syn && !self.fin && !self.rst
    }
}

/// `a` is before `b` in sequence space (RFC 1982 serial arithmetic on 32 bits).
pub fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` is at or before `b`.
pub fn seq_le(a: u32, b: u32) -> bool {
    a == b || seq_lt(a, b)
}

/// A TCP segment carrying payload (what [`crate::Faults::data_loss`] drops).
pub fn is_tcp_data(frame: &[u8]) -> bool {
    Segment::parse(frame).is_some_and(|s| s.len > 0)
}

/// The IP packet's length (the frame minus its Ethernet header), for MTU checks.
pub fn ip_len(frame: &[u8]) -> usize {
    frame.len().saturating_sub(14)
}

/// Sets the window field of the TCP segment in `frame` (Ethernet + IPv4) to `f(old)`, and the checksum to match.
/// Does nothing to anything else.
pub fn set_tcp_window(frame: &mut [u8], f: impl FnOnce(u16) -> u16) {
    let Ok(mut eth) = EthernetFrame::new_checked(frame) else { return };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else { return };
    if ip.next_header() != IpProtocol::Tcp {
        return;
    }
    let (src, dst) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
    let len = usize::from(ip.total_len()).saturating_sub(usize::from(ip.header_len()));
    let Some(payload) = ip.payload_mut().get_mut(..len) else { return };
    let Ok(mut tcp) = TcpPacket::new_checked(payload) else { return };
    let w = f(tcp.window_len());
    tcp.set_window_len(w);
    tcp.fill_checksum(&src, &dst);
}

/// A filter for a receiver's uplink that makes its pure ACKs look like Linux's: the window field of every other
/// one is one unit larger, so no two ACKs in a row advertise the same window (Linux grows its window as the
/// receive buffer auto-tunes, even while it holds out-of-order data; smoltcp's stays put).
pub fn window_changes_on_every_ack() -> crate::fault::Filter {
    let mut n = 0u16;
    Box::new(move |frame| {
        if Segment::parse(frame).is_some_and(|s| s.len == 0 && !s.syn && !s.fin && !s.rst && s.ack.is_some()) {
            n = n.wrapping_add(1);
            set_tcp_window(frame, |w| w.saturating_add(n % 2));
        }
        crate::fault::Verdict::Pass
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// 10.0.0.1:12345 -> 10.0.0.2:80, seq 1, ack 0 (flag off), PSH|ACK... as in netfront's checksum tests: "hello".
    const TCP4: &str =
        "02000000000202000000000108004500002d1c46400040060a830a0000010a0000023039005000000001000000005018ffff\
                        2769000068656c6c6f";

    #[test]
    fn a_data_segment_is_read_from_a_frame_and_from_its_first_bytes() {
        let f = hex(TCP4);
        let s = Segment::parse(&f).unwrap();
        assert_eq!(s.src, "10.0.0.1:12345".parse().unwrap());
        assert_eq!(s.dst, "10.0.0.2:80".parse().unwrap());
        assert_eq!((s.seq, s.ack, s.len, s.window), (1, Some(0), 5, 0xffff));
        assert!(!s.syn && !s.fin && !s.rst && !s.is_pure_ack());
        assert_eq!(s.seq_end(), 6);
        assert!(is_tcp_data(&f));
        assert_eq!(Segment::parse(&f[..54]), Some(s), "cut to the headers: the length comes from IP");
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(Segment::parse(&arp), None);
        assert!(!is_tcp_data(&arp));
        assert_eq!(Segment::parse(&f[..30]), None);
    }

    #[test]
    fn sequence_numbers_compare_across_the_wrap() {
        assert!(seq_lt(u32::MAX - 5, 3));
        assert!(!seq_lt(3, u32::MAX - 5));
        assert!(seq_le(7, 7) && !seq_lt(7, 7));
    }
}
