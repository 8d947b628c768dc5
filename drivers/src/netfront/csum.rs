//! Transport checksums for received frames flagged `NETRXF_csum_blank`: a packet from a sender that offloaded its
//! checksum (another guest, or dom0 itself) arrives with the TCP/UDP checksum field holding only a partial sum.
//! It must be accepted, not dropped, and [`fill_transport_checksum`] computes the real checksum (pseudo-header and
//! payload, RFC 768/793/8200) so the stack can verify it as usual and a forwarded copy carries a valid one.

use core::fmt;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Which checksum was filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP (checksum at byte 16 of the segment).
    Tcp,
    /// UDP (checksum at byte 6 of the datagram).
    Udp,
}

/// Why a frame's checksum cannot be filled in; the frame is left unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsumError {
    /// The frame ends before a header it announces (or before the IP payload length says).
    Truncated {
        /// What was cut short.
        what: &'static str,
    },
    /// Not IPv4 or IPv6.
    NotIp {
        /// The ethertype.
        ethertype: u16,
    },
    /// The IP header is malformed (bad version or header length).
    BadIpHeader,
    /// An IP fragment: the checksum covers the reassembled datagram, which a single frame does not hold.
    Fragment,
    /// Not TCP or UDP, or behind an IPv6 extension header we do not walk.
    Unsupported {
        /// The IP protocol / next header.
        protocol: u8,
    },
}

impl fmt::Display for CsumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CsumError::Truncated { what } => write!(f, "cannot fill in the checksum: the frame is truncated ({what})"),
            CsumError::NotIp { ethertype } => {
                write!(f, "cannot fill in the checksum: ethertype {ethertype:#06x} is not IPv4 or IPv6")
            }
            CsumError::BadIpHeader => f.write_str("cannot fill in the checksum: malformed IP header"),
            CsumError::Fragment => f.write_str("cannot fill in the checksum of an IP fragment"),
            CsumError::Unsupported { protocol } => {
                write!(f, "cannot fill in the checksum: IP protocol {protocol} is not TCP or UDP")
            }
        }
    }
}

impl core::error::Error for CsumError {}

/// Where the transport segment is and what its pseudo-header sums to.
struct Segment {
    transport: Transport,
    start: usize,
    end: usize,
    /// The pseudo-header's one's-complement sum (not folded).
    pseudo: u32,
    ipv6: bool,
}

impl Segment {
    fn checksum_at(&self) -> usize {
        self.start
            + match self.transport {
                Transport::Tcp => 16,
                Transport::Udp => 6,
            }
    }
}

/// Computes and writes the TCP or UDP checksum of an Ethernet frame carrying IPv4 or IPv6 (one or two VLAN tags
/// allowed), ignoring whatever the checksum field held. Bytes after the IP packet (Ethernet padding) are ignored.
pub fn fill_transport_checksum(frame: &mut [u8]) -> Result<Transport, CsumError> {
    let seg = locate(frame)?;
    let at = seg.checksum_at();
    frame[at..at + 2].fill(0);
    let mut sum = !fold(seg.pseudo + sum_bytes(&frame[seg.start..seg.end]));
    if sum == 0 && seg.transport == Transport::Udp {
        sum = 0xFFFF; // UDP: 0 means "no checksum", so a computed 0 is sent as all ones.
    }
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(seg.transport)
}

/// Writes the partial TCP or UDP checksum a frame sent with `NETTXF_csum_blank` must carry: the pseudo-header sum
/// (addresses, protocol, transport length), folded and not complemented, as Linux leaves it for
/// `CHECKSUM_PARTIAL` (`~csum_tcpudp_magic(...)`). The backend (or the segmentation of a TSO segment) adds the
/// payload and writes the real checksum.
pub fn fill_partial_checksum(frame: &mut [u8]) -> Result<Transport, CsumError> {
    let seg = locate(frame)?;
    let at = seg.checksum_at();
    frame[at..at + 2].copy_from_slice(&fold(seg.pseudo).to_be_bytes());
    Ok(seg.transport)
}

/// Whether the frame's TCP or UDP checksum is correct (an IPv4 UDP checksum of 0, "none", counts as correct).
pub fn transport_checksum_ok(frame: &[u8]) -> Result<bool, CsumError> {
    let seg = locate(frame)?;
    let at = seg.checksum_at();
    if seg.transport == Transport::Udp && frame[at..at + 2] == [0, 0] {
        return Ok(!seg.ipv6); // IPv6 makes the UDP checksum mandatory (RFC 8200 8.1).
    }
    Ok(fold(seg.pseudo + sum_bytes(&frame[seg.start..seg.end])) == 0xFFFF)
}

/// The ethertype of the IP packet and where it starts, past up to two VLAN tags.
fn l3(frame: &[u8]) -> Result<(u16, usize), CsumError> {
    let truncated = CsumError::Truncated { what: "Ethernet header" };
    let mut at = 12;
    for _ in 0..3 {
        let ethertype = be16(frame, at).ok_or(truncated)?;
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            return Ok((ethertype, at + 2));
        }
        at += 4;
    }
    Err(CsumError::NotIp { ethertype: ETHERTYPE_VLAN })
}

fn locate(frame: &[u8]) -> Result<Segment, CsumError> {
    let (ethertype, ip) = l3(frame)?;
    let (protocol, start, end, pseudo) = match ethertype {
        ETHERTYPE_IPV4 => ipv4(frame, ip)?,
        ETHERTYPE_IPV6 => ipv6(frame, ip)?,
        other => return Err(CsumError::NotIp { ethertype: other }),
    };
    let transport = match protocol {
        PROTO_TCP => Transport::Tcp,
        PROTO_UDP => Transport::Udp,
        other => return Err(CsumError::Unsupported { protocol: other }),
    };
    let header = match transport {
        Transport::Tcp => 20,
        Transport::Udp => 8,
    };
    if end - start < header {
        return Err(CsumError::Truncated { what: "transport header" });
    }
    let length = (end - start) as u32;
    let pseudo = pseudo + u32::from(protocol) + (length >> 16) + (length & 0xFFFF);
    Ok(Segment { transport, start, end, pseudo, ipv6: ethertype == ETHERTYPE_IPV6 })
}

/// IPv4: (protocol, segment start, segment end, sum of source and destination).
fn ipv4(frame: &[u8], ip: usize) -> Result<(u8, usize, usize, u32), CsumError> {
    let header = frame.get(ip..ip + 20).ok_or(CsumError::Truncated { what: "IPv4 header" })?;
    if header[0] >> 4 != 4 {
        return Err(CsumError::BadIpHeader);
    }
    let ihl = usize::from(header[0] & 0x0F) * 4;
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if ihl < 20 || total < ihl {
        return Err(CsumError::BadIpHeader);
    }
    if frame.len() < ip + total {
        return Err(CsumError::Truncated { what: "IPv4 packet" });
    }
    if u16::from_be_bytes([header[6], header[7]]) & 0x3FFF != 0 {
        return Err(CsumError::Fragment);
    }
    Ok((header[9], ip + ihl, ip + total, sum_bytes(&header[12..20])))
}

/// IPv6: (next header of the segment, segment start, segment end, sum of source and destination), past
/// hop-by-hop and destination options headers.
fn ipv6(frame: &[u8], ip: usize) -> Result<(u8, usize, usize, u32), CsumError> {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const DEST_OPTS: u8 = 60;
    let header = frame.get(ip..ip + 40).ok_or(CsumError::Truncated { what: "IPv6 header" })?;
    if header[0] >> 4 != 6 {
        return Err(CsumError::BadIpHeader);
    }
    let payload = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let end = ip + 40 + payload;
    if frame.len() < end {
        return Err(CsumError::Truncated { what: "IPv6 packet" });
    }
    let pseudo = sum_bytes(&header[8..40]);
    let (mut next, mut at) = (header[6], ip + 40);
    loop {
        match next {
            HOP_BY_HOP | DEST_OPTS => {
                let ext = frame.get(at..at + 2).filter(|_| at + 2 <= end);
                let ext = ext.ok_or(CsumError::Truncated { what: "IPv6 extension header" })?;
                next = ext[0];
                at += (usize::from(ext[1]) + 1) * 8;
                if at > end {
                    return Err(CsumError::Truncated { what: "IPv6 extension header" });
                }
            }
            FRAGMENT => return Err(CsumError::Fragment),
            // With a routing header the pseudo-header uses the final destination; not worth walking here.
            ROUTING => return Err(CsumError::Unsupported { protocol: ROUTING }),
            protocol => return Ok((protocol, at, end, pseudo)),
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The one's-complement sum of big-endian 16-bit words (an odd last byte padded with zero), not folded. Fits a
/// `u32` for anything up to 128 KiB, far beyond a 64 KiB packet.
fn sum_bytes(bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u32 = chunks.by_ref().map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Folds the carries back in: the 16-bit one's-complement sum.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}
