//! Packet capture: every frame a node sends or receives, kept in memory with its simulated time, and written as
//! classic libpcap files (`LINKTYPE_ETHERNET`, microsecond timestamps), one per port, as `tcpdump -i vifN.0` in
//! dom0 would see it: the frames the guest put on its TX ring and the frames the backend wrote into its RX ring.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// `LINKTYPE_ETHERNET`: frames start with the Ethernet header, no FCS.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The magic of a little-endian, microsecond-resolution pcap file.
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;

/// Which way a captured frame went, from the node's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// The node transmitted it (taken off its TX ring by the backend).
    Sent,
    /// The node received it (written into its RX ring by the backend).
    Received,
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    /// Simulated time, microseconds.
    pub t_us: u64,
    /// The switch port (= node index).
    pub port: usize,
    /// Which way.
    pub way: Way,
    /// The frame's length on the wire.
    pub len: usize,
    /// Its first `snaplen` bytes.
    pub data: Vec<u8>,
}

/// Frames captured so far, every port.
#[derive(Clone, Debug)]
pub struct Capture {
    /// In order of capture (simulated time never goes back).
    pub frames: Vec<Captured>,
    /// Bytes kept per frame (the rest is counted in `len` only).
    pub snaplen: usize,
    /// Capturing at all.
    pub enabled: bool,
}

impl Capture {
    /// An empty capture keeping up to `snaplen` bytes of each frame.
    pub fn new(snaplen: usize) -> Capture {
        Capture { frames: Vec::new(), snaplen, enabled: true }
    }

    /// Records a frame.
    pub fn record(&mut self, t_us: u64, port: usize, way: Way, frame: &[u8]) {
        if self.enabled {
            let data = frame[..frame.len().min(self.snaplen)].to_vec();
            self.frames.push(Captured { t_us, port, way, len: frame.len(), data });
        }
    }

    /// The frames of one port, both ways.
    pub fn port(&self, port: usize) -> impl Iterator<Item = &Captured> {
        self.frames.iter().filter(move |c| c.port == port)
    }

    /// Writes `port`'s frames to `path` as a pcap file.
    pub fn write_port(&self, port: usize, path: &Path) -> io::Result<()> {
        let mut w = PcapWriter::new(BufWriter::new(File::create(path)?), self.snaplen as u32)?;
        for c in self.port(port) {
            w.write_frame(c.t_us, &c.data, c.len)?;
        }
        w.into_inner().flush()
    }
}

/// Writes a classic pcap stream: the 24-byte global header, then a 16-byte record header before each frame.
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header (version 2.4, UTC, `snaplen`, Ethernet).
    pub fn new(mut out: W, snaplen: u32) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&PCAP_MAGIC.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, snaplen })
    }

    /// Writes one record: `data` (at most `snaplen` bytes of it are kept) of a frame `orig_len` long, at `t_us`.
    pub fn write_frame(&mut self, t_us: u64, data: &[u8], orig_len: usize) -> io::Result<()> {
        let incl = data.len().min(self.snaplen as usize);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((t_us / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((t_us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(incl as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(orig_len.max(incl) as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&data[..incl])
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_header_and_records_follow_the_libpcap_format() {
        let mut w = PcapWriter::new(Vec::new(), 64).unwrap();
        w.write_frame(3_000_042, &[0xaa; 60], 60).unwrap();
        w.write_frame(3_500_000, &[0xbb; 100], 1514).unwrap();
        let b = w.into_inner();
        // Global header: magic, 2.4, zone 0, sigfigs 0, snaplen 64, LINKTYPE_ETHERNET (1).
        assert_eq!(
            &b[..24],
            &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 1, 0, 0, 0][..]
        );
        // First record: 3 s + 42 us, 60 of 60 bytes.
        assert_eq!(&b[24..40], &[3, 0, 0, 0, 42, 0, 0, 0, 60, 0, 0, 0, 60, 0, 0, 0][..]);
        assert_eq!(&b[40..100], &[0xaa; 60][..]);
        // Second: truncated to the snaplen, the original length kept.
        let r = &b[100..116];
        assert_eq!(u32::from_le_bytes(r[4..8].try_into().unwrap()), 500_000);
        assert_eq!(u32::from_le_bytes(r[8..12].try_into().unwrap()), 64);
        assert_eq!(u32::from_le_bytes(r[12..16].try_into().unwrap()), 1514);
        assert_eq!(b.len(), 116 + 64);
    }

    #[test]
    fn a_capture_is_written_per_port() {
        let mut c = Capture::new(65535);
        c.record(1, 0, Way::Sent, &[1; 60]);
        c.record(2, 1, Way::Received, &[1; 60]);
        c.record(3, 0, Way::Received, &[2; 70]);
        assert_eq!(c.port(0).count(), 2);
        let path = std::env::temp_dir().join(format!("sirocco-vnetif-pcap-test-{}.pcap", std::process::id()));
        c.write_port(0, &path).unwrap();
        let b = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(b.len(), 24 + 16 + 60 + 16 + 70);
        c.enabled = false;
        c.record(4, 0, Way::Sent, &[0; 60]);
        assert_eq!(c.frames.len(), 3);
    }
}
