//! Bulk transfers ("iperf"): one node streams a position-dependent byte pattern to another over one TCP
//! connection; the receiver checks every byte as it arrives (a lost, duplicated or misplaced byte is caught at
//! its offset), then both close cleanly.

use std::cell::Cell;
use std::rc::Rc;

use sirocco_net::NetError;

use crate::node::{TcpListener, TcpStream};
use crate::sim::Sim;

/// The pattern's bytes from `offset` into `buf`: 8 bytes at a time from a hash of their position and `seed`.
pub fn fill_pattern(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut i = 0;
    while i < buf.len() {
        let pos = offset + i as u64;
        let word = mix(seed ^ (pos / 8)).to_le_bytes();
        let skip = (pos % 8) as usize;
        let n = (8 - skip).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[skip..skip + n]);
        i += n;
    }
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What a transfer achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Bytes the receiver got and checked.
    pub received: u64,
    /// The offset of the first byte that did not match the pattern, if any.
    pub first_mismatch: Option<u64>,
    /// Simulated time from connect to the receiver's end of stream, ms.
    pub sim_ms: u64,
    /// The sender's outcome (write, then close).
    pub sender: Result<(), NetError>,
    /// The receiver's outcome (read to the end, then close).
    pub receiver: Result<(), NetError>,
}

impl Transfer {
    /// Every byte arrived, in order, and both ends closed without error.
    pub fn is_clean(&self, bytes: u64) -> bool {
        self.received == bytes && self.first_mismatch.is_none() && self.sender.is_ok() && self.receiver.is_ok()
    }
}

/// Node `from` sends `bytes` of the pattern for `seed` to node `to` (listening on `port`), in writes of
/// `chunk` bytes; runs the simulation until both ends are done.
pub fn bulk(sim: &mut Sim, from: usize, to: usize, port: u16, bytes: u64, seed: u64) -> Transfer {
    let (a, b, b_ip) = (sim.net(from), sim.net(to), sim.ip(to));
    let h = sim.handle();
    let started = Rc::new(Cell::new(0u64));
    let mut listener = TcpListener::bind(&b, port, 1).expect("bind the receiver's port");
    let (h2, started2) = (h.clone(), started.clone());
    let receiver = sim.spawn(async move {
        let mut s = listener.accept().await;
        drop(listener);
        let r = receive(&mut s, seed).await;
        let elapsed = h2.now_ms() - started2.get();
        let closed = s.close().await;
        (r, closed, elapsed)
    });
    let sender = sim.spawn(async move {
        started.set(h.now_ms());
        let mut s = TcpStream::connect(&a, b_ip, port).await?;
        send(&mut s, bytes, seed).await?;
        s.close().await
    });
    let sender = sim.join(sender);
    let ((received, first_mismatch, read), closed, sim_ms) = sim.join(receiver);
    Transfer { received, first_mismatch, sim_ms, sender, receiver: read.and(closed) }
}

/// Writes `bytes` of the pattern.
pub async fn send(s: &mut TcpStream, bytes: u64, seed: u64) -> Result<(), NetError> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(buf.len() as u64) as usize;
        fill_pattern(seed, sent, &mut buf[..n]);
        s.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    Ok(())
}

/// Reads to the end of the stream, checking each byte: (bytes, first mismatch, outcome).
pub async fn receive(s: &mut TcpStream, seed: u64) -> (u64, Option<u64>, Result<(), NetError>) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut want = vec![0u8; 16 * 1024];
    let mut got = 0u64;
    let mut mismatch = None;
    loop {
        match s.read(&mut buf).await {
            Ok(0) => return (got, mismatch, Ok(())),
            Ok(n) => {
                if mismatch.is_none() {
                    fill_pattern(seed, got, &mut want[..n]);
                    if let Some(i) = buf[..n].iter().zip(&want[..n]).position(|(a, b)| a != b) {
                        mismatch = Some(got + i as u64);
                    }
                }
                got += n as u64;
            }
            Err(e) => return (got, mismatch, Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_does_not_depend_on_how_it_is_cut() {
        let mut whole = vec![0u8; 1000];
        fill_pattern(5, 3, &mut whole);
        let mut parts = vec![0u8; 1000];
        let (a, b) = parts.split_at_mut(13);
        fill_pattern(5, 3, a);
        fill_pattern(5, 16, b);
        assert_eq!(whole, parts);
        let mut other = vec![0u8; 1000];
        fill_pattern(6, 3, &mut other);
        assert_ne!(whole, other);
        // Shifted by one byte: differs (a duplicated or lost byte is caught).
        let mut shifted = vec![0u8; 1000];
        fill_pattern(5, 4, &mut shifted);
        assert_ne!(&whole[..999], &shifted[..999]);
    }
}
