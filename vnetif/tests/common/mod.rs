//! Helpers shared by the vnetif tests.
#![allow(dead_code)]

use std::net::SocketAddr;

use sirocco_vnetif::analysis::{analyse_flow, connections, FlowReport};
use sirocco_vnetif::transfer::{bulk, Transfer};
use sirocco_vnetif::{Sim, TcpStream};

/// The running test's name (libtest names each test's thread after it).
pub fn test_name() -> String {
    std::thread::current().name().unwrap_or("vnetif").to_string()
}

/// A network of two default nodes (10.0.0.1 and 10.0.0.2) named after the running test.
pub fn pair(seed: u64) -> Sim {
    Sim::pair(&test_name(), seed)
}

/// An empty network named after the running test.
pub fn sim(seed: u64) -> Sim {
    Sim::new(&test_name(), seed)
}

/// The quick bulk transfer: 1 MiB from node 0 to node 1.
pub const QUICK: u64 = 1 << 20;

/// Transfers `bytes` from node 0 to node 1 and asserts every byte arrived in order and both ends closed without
/// error.
pub fn clean_transfer(sim: &mut Sim, bytes: u64) -> Transfer {
    let t = bulk(sim, 0, 1, 5001, bytes, sim.seed);
    assert!(t.is_clean(bytes), "{}: {t:?}", sim.name);
    t
}

/// The first connection in the capture, as (client, server).
pub fn first_connection(sim: &Sim) -> (SocketAddr, SocketAddr) {
    *connections(&sim.capture).first().expect("a connection in the capture")
}

/// The data flow of the first connection, client to server.
pub fn upload_flow(sim: &Sim) -> FlowReport {
    let (c, s) = first_connection(sim);
    analyse_flow(&sim.capture, c, s)
}

/// Lets TIME-WAIT (10 s in smoltcp) run out, then asserts nothing went wrong quietly.
pub fn settle_and_assert_clean(sim: &mut Sim) {
    sim.advance_ms(11_000);
    sim.assert_clean();
}

/// Reads exactly `n` bytes.
pub async fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut have = 0;
    while have < n {
        let got = s.read(&mut out[have..]).await.expect("read");
        assert!(got > 0, "end of stream after {have} of {n} bytes");
        have += got;
    }
    out
}

/// Reads until the end of the stream.
pub async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf).await.expect("read") {
            0 => return out,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}
