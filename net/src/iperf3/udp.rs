//! UDP tests (`iperf3 -u`): the datagram that opens a stream and its answer, each data datagram's header, and the
//! receiver's count of what arrived (iperf3's loss, out-of-order and RFC 3550 jitter figures).
//!
//! A UDP stream starts with the client sending [`CONNECT_MSG`] from the stream's own port to the server's 5201;
//! the server answers it with [`connect_reply`] (the stream is then that client address), and the client opens the
//! next. Each data datagram is `len` bytes starting with the sender's wall-clock time (seconds and microseconds,
//! 4 bytes each) and a packet number counting from 1 (4 bytes, or 8 when the parameters say
//! `udp_counters_64bit`), all big-endian.

/// The 4 bytes that open a UDP stream, as iperf3 on a little-endian machine writes them ("9876"; it writes the
/// number 0x36373839 in the machine's byte order).
pub const CONNECT_MSG: [u8; 4] = *b"9876";
/// Older iperf3 versions' opening number (123456789), little-endian.
pub const LEGACY_CONNECT_MSG: [u8; 4] = 123_456_789u32.to_le_bytes();

/// The answer to a stream's opening datagram, in the byte order it came in (iperf3 reads the answer as a number in
/// its machine's order: "6789" from a little-endian client, "9876" reversed); `None` if it is not one.
pub fn connect_reply(msg: &[u8]) -> Option<[u8; 4]> {
    let msg: [u8; 4] = msg.try_into().ok()?;
    let reply = |n: u32, little: bool| if little { n.to_le_bytes() } else { n.to_be_bytes() };
    let current = (0x3637_3839, 0x3938_3736);
    let legacy = (123_456_789, 987_654_321);
    for (open, answer) in [current, legacy] {
        for little in [true, false] {
            if reply(open, little) == msg {
                return Some(reply(answer, little));
            }
        }
    }
    None
}

/// Bytes of a data datagram's header (time and packet number) with 4-byte or 8-byte packet numbers.
pub const fn header_len(counters_64bit: bool) -> usize {
    if counters_64bit {
        16
    } else {
        12
    }
}

/// Writes a data datagram's header into the start of `datagram` (at least [`header_len`] bytes): sent at
/// `wall_us` microseconds of wall-clock time, packet number `packet` (a 32-bit number wraps).
pub fn write_header(datagram: &mut [u8], wall_us: u64, packet: u64, counters_64bit: bool) {
    let secs = (wall_us / 1_000_000) as u32;
    let usecs = (wall_us % 1_000_000) as u32;
    datagram[..4].copy_from_slice(&secs.to_be_bytes());
    datagram[4..8].copy_from_slice(&usecs.to_be_bytes());
    if counters_64bit {
        datagram[8..16].copy_from_slice(&packet.to_be_bytes());
    } else {
        datagram[8..12].copy_from_slice(&(packet as u32).to_be_bytes());
    }
}

/// A data datagram's header: (sent at, in microseconds of the sender's wall clock; packet number). `None` if the
/// datagram is shorter than a header.
pub fn read_header(datagram: &[u8], counters_64bit: bool) -> Option<(u64, u64)> {
    let word = |at: usize| u32::from_be_bytes(datagram[at..at + 4].try_into().unwrap_or([0; 4]));
    if datagram.len() < header_len(counters_64bit) {
        return None;
    }
    let sent_us = word(0) as u64 * 1_000_000 + word(4) as u64;
    let packet =
        if counters_64bit { u64::from_be_bytes(datagram[8..16].try_into().unwrap_or([0; 8])) } else { word(8) as u64 };
    Some((sent_us, packet))
}

/// What a receiving UDP stream counted, as iperf3 counts it: each datagram's bytes; the highest packet number
/// seen (its `packets`); a gap in the numbers as that many lost (`errors`), one of which an out-of-order late
/// arrival takes back; and the jitter, RFC 3550's running mean of the change in transit time (arrival minus the
/// sender's time stamp), so the two clocks need not agree.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UdpReceiver {
    /// Bytes received.
    pub bytes: u64,
    /// The highest packet number seen.
    pub packets: u64,
    /// Datagrams lost (gaps in the packet numbers, less the late arrivals).
    pub lost: u64,
    /// Datagrams that arrived after one with a higher number.
    pub out_of_order: u64,
    /// Jitter, in seconds.
    pub jitter_s: f64,
    /// The last datagram's transit time, in microseconds (`None` before the first).
    prev_transit_us: Option<i64>,
}

impl UdpReceiver {
    /// Counts one datagram that arrived at `arrival_us` microseconds of this side's wall clock. A datagram too
    /// short for a header counts as bytes only.
    pub fn datagram(&mut self, datagram: &[u8], arrival_us: u64, counters_64bit: bool) {
        self.bytes += datagram.len() as u64;
        let Some((sent_us, packet)) = read_header(datagram, counters_64bit) else { return };
        if packet > self.packets {
            self.lost += packet - self.packets - 1;
            self.packets = packet;
        } else {
            self.out_of_order += 1;
            self.lost = self.lost.saturating_sub(1);
        }
        let transit = arrival_us as i64 - sent_us as i64;
        let change = transit.abs_diff(self.prev_transit_us.unwrap_or(transit)) as f64 / 1e6;
        self.prev_transit_us = Some(transit);
        self.jitter_s += (change - self.jitter_s) / 16.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opening_datagram_is_answered_in_its_own_byte_order() {
        // iperf3 3.12 on x86 (little-endian): writes 0x36373839, reads 0x39383736.
        assert_eq!(connect_reply(&CONNECT_MSG), Some(*b"6789"));
        assert_eq!(connect_reply(b"6789"), Some(*b"9876"), "a big-endian client");
        assert_eq!(connect_reply(&LEGACY_CONNECT_MSG), Some(987_654_321u32.to_le_bytes()));
        assert_eq!(connect_reply(&123_456_789u32.to_be_bytes()), Some(987_654_321u32.to_be_bytes()));
        for bad in [&b"9877"[..], b"987", b"98765", b""] {
            assert_eq!(connect_reply(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn headers_with_32_and_64_bit_packet_numbers() {
        let mut d = [0xaau8; 20];
        write_header(&mut d, 1_700_000_000_123_456, 7, false);
        assert_eq!(d[..12], [0x65, 0x53, 0xf1, 0x00, 0x00, 0x01, 0xe2, 0x40, 0, 0, 0, 7]);
        assert_eq!(d[12], 0xaa, "the payload is left alone");
        assert_eq!(read_header(&d, false), Some((1_700_000_000_123_456, 7)));
        write_header(&mut d, 5_000_001, 1 << 40, true);
        assert_eq!(d[8..16], [0, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(read_header(&d, true), Some((5_000_001, 1 << 40)));
        assert_eq!(read_header(&d[..11], false), None);
        assert_eq!(read_header(&d[..15], true), None);
    }

    fn datagram(sent_us: u64, packet: u64) -> Vec<u8> {
        let mut d = vec![0u8; 100];
        write_header(&mut d, sent_us, packet, false);
        d
    }

    #[test]
    fn loss_and_late_arrivals_are_counted_as_iperf3_does() {
        let mut r = UdpReceiver::default();
        for (packet, at) in [(1, 0), (2, 1000), (5, 4000), (3, 4100), (6, 5000)] {
            r.datagram(&datagram(packet * 1000, packet), 10_000 + at, false);
        }
        // 3 and 4 missing when 5 came; 3 came late (out of order), so one lost in the end.
        assert_eq!((r.bytes, r.packets, r.lost, r.out_of_order), (500, 6, 1, 1));
    }

    #[test]
    fn jitter_is_the_smoothed_change_in_transit_time() {
        let mut r = UdpReceiver::default();
        // Every datagram 5 ms in transit (the clocks 1 h apart: no matter): no jitter.
        for p in 1..=10 {
            r.datagram(&datagram(p * 10_000, p), 3_600_000_000 + p * 10_000 + 5_000, false);
        }
        assert_eq!(r.jitter_s, 0.0);
        // One 1.6 ms later than the rest: jitter moves 1/16 of the way to 1.6 ms.
        r.datagram(&datagram(110_000, 11), 3_600_000_000 + 110_000 + 6_600, false);
        assert!((r.jitter_s - 0.0001).abs() < 1e-12, "{}", r.jitter_s);
    }

    #[test]
    fn a_runt_counts_its_bytes_only() {
        let mut r = UdpReceiver::default();
        r.datagram(&[1, 2, 3], 0, false);
        assert_eq!((r.bytes, r.packets, r.lost), (3, 0, 0));
    }
}
