//! Two complete stacks on an in-memory wire, driven like the runtime drives them (see `common`).

mod common;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use common::dhcp::DhcpServer;
use common::*;
use sirocco_net::smoltcp::phy::ChecksumCapabilities;
use sirocco_net::smoltcp::time::Duration;
use sirocco_net::smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet,
    Ipv6Repr, NdiscNeighborFlags, NdiscPrefixInfoFlags, NdiscPrefixInformation, NdiscRepr, NdiscRouterFlags,
};
use sirocco_net::*;

const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const STATIC_V4: (&str, &str) = ("ip=10.0.0.1/24 slaac=off", "ip=10.0.0.2/24 slaac=off");

fn ip(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

/// Reads until end of stream.
async fn read_to_end(s: &mut TcpStream<WireEnd>) -> Result<Vec<u8>, NetError> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await? {
            0 => return Ok(out),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Echoes one connection until the peer closes, then closes.
async fn echo(mut s: TcpStream<WireEnd>) -> Result<usize, NetError> {
    let mut buf = [0u8; 8192];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            s.close().await?;
            return Ok(total);
        }
        s.write_all(&buf[..n]).await?;
        total += n;
    }
}

/// An ARP request whose sender and target address are the same, broadcast: an announcement (RFC 5227).
fn is_gratuitous_arp(f: &[u8]) -> bool {
    ethertype(f) == 0x0806 && f[0..6] == [0xff; 6] && f[20..22] == [0, 1] && f[28..32] == f[38..42]
}

/// Every gratuitous ARP on the wire, as (side, address announced), in order.
fn gratuitous_arps(sim: &Sim) -> Vec<(usize, Ipv4Addr)> {
    let log = sim.wire.log();
    log.iter()
        .filter(|(_, f)| is_gratuitous_arp(f))
        .map(|(side, f)| (*side, Ipv4Addr::new(f[28], f[29], f[30], f[31])))
        .collect()
}

#[test]
fn arp_then_icmp_echo() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let a = sim.a();
    let (r1, r2) = sim.run(async move {
        let mut p = Pinger::new(&a, 0x5150).unwrap();
        assert_eq!(Pinger::new(&a, 0x5150).err(), Some(NetError::AddressInUse));
        p.send_echo(ip(B4), 1, b"hello").await.unwrap();
        let r1 = p.recv_reply().await;
        p.send_echo(ip(B4), 2, &[0xa5; 1000]).await.unwrap();
        (r1, p.recv_reply().await)
    });
    assert_eq!(r1, EchoReply { from: ip(B4), seq: 1, len: 5 });
    assert_eq!(r2, EchoReply { from: ip(B4), seq: 2, len: 1000 });
    // Each side announced its static address once (a gratuitous ARP: broadcast, sender and target address its
    // own); then one ARP exchange: A asks, B answers (and learns A from the request); the second ping needs none.
    assert_eq!(gratuitous_arps(&sim), [(0, A4), (1, B4)]);
    let arp: Vec<(usize, u16)> = sim
        .wire
        .log()
        .iter()
        .filter(|(_, f)| ethertype(f) == 0x0806 && !is_gratuitous_arp(f))
        .map(|(side, f)| (*side, u16::from_be_bytes([f[20], f[21]])))
        .collect();
    assert_eq!(arp, [(0, 1), (1, 2)]);
    assert!(sim.now < 100, "took {} ms", sim.now);
}

#[test]
fn after_the_link_moved_every_address_is_announced_again_and_traffic_goes_on() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let a = sim.a();
    let ping = |a: &Net, seq: u16| {
        let a = a.clone();
        async move {
            let mut p = Pinger::new(&a, 0x600d).unwrap();
            p.send_echo(ip(B4), seq, b"moved").await.unwrap();
            p.recv_reply().await
        }
    };
    sim.run(ping(&a, 1));
    assert_eq!(gratuitous_arps(&sim), [(0, A4), (1, B4)]);
    let adverts = |sim: &Sim| -> Vec<Vec<u8>> {
        sim.wire
            .log()
            .iter()
            .filter(|(side, f)| *side == 0 && icmpv6_type(f) == Some(136))
            .map(|(_, f)| f.clone())
            .collect()
    };
    assert!(adverts(&sim).is_empty(), "no unsolicited advertisement before the move");
    // The domain migrated: its vif is a new port on another bridge.
    a.lock().link_moved();
    let r = sim.run(ping(&a, 2));
    assert_eq!(r, EchoReply { from: ip(B4), seq: 2, len: 5 });
    assert_eq!(gratuitous_arps(&sim), [(0, A4), (1, B4), (0, A4)], "A announced its IPv4 address again, once");
    let na = adverts(&sim);
    assert_eq!(na.len(), 1, "one per IPv6 address (the link-local one here)");
    let f = &na[0];
    assert_eq!(f[0..6], [0x33, 0x33, 0, 0, 0, 1], "to all nodes");
    let ip6 = Ipv6Packet::new_checked(&f[14..]).unwrap();
    let ip6_repr = Ipv6Repr::parse(&ip6).unwrap();
    assert_eq!(ip6_repr.dst_addr, Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1));
    assert_eq!(ip6_repr.hop_limit, 255);
    let icmp = Icmpv6Packet::new_checked(ip6.payload()).unwrap();
    let repr =
        Icmpv6Repr::parse(&ip6_repr.src_addr, &ip6_repr.dst_addr, &icmp, &ChecksumCapabilities::default()).unwrap();
    let Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { flags, target_addr, lladdr }) = repr else { panic!("{repr:?}") };
    assert_eq!(target_addr, link_local_address(MAC_A));
    assert!(flags.contains(NdiscNeighborFlags::OVERRIDE) && !flags.contains(NdiscNeighborFlags::SOLICITED));
    assert_eq!(lladdr.map(|l| l.as_bytes().to_vec()), Some(MAC_A.to_vec()));
}

#[test]
fn icmpv6_echo_over_link_local_with_neighbor_discovery() {
    let mut sim = Sim::new("ip=off slaac=off", "ip=off slaac=off");
    let a = sim.a();
    let b_ll = link_local_address(MAC_B);
    let r = sim.run(async move {
        let mut p = Pinger::new(&a, 7).unwrap();
        p.send_echo(IpAddr::V6(b_ll), 9, b"six").await.unwrap();
        p.recv_reply().await
    });
    assert_eq!(r, EchoReply { from: IpAddr::V6(b_ll), seq: 9, len: 3 });
    let log = sim.wire.log();
    assert!(log.iter().any(|(side, f)| *side == 0 && icmpv6_type(f) == Some(135)), "no neighbor solicitation");
    assert!(log.iter().any(|(side, f)| *side == 1 && icmpv6_type(f) == Some(136)), "no neighbor advertisement");
}

#[test]
fn tcp_echo_of_one_mebibyte_keeps_every_byte() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 7, 4).unwrap();
    assert_eq!(TcpListener::bind(&b, 7, 4).err(), Some(NetError::AddressInUse));
    let server = sim.spawn(async move { echo(listener.accept().await).await });
    let data = pattern(1 << 20);
    let sent = data.clone();
    let got = sim.run(async move {
        let mut s = TcpStream::connect(&a, ip(B4), 7).await.unwrap();
        assert_eq!(s.peer_addr(), Some(SocketAddr::new(ip(B4), 7)));
        assert!(EPHEMERAL_PORTS.contains(&s.local_addr().unwrap().port()));
        let mut got = Vec::new();
        // 16 KiB rounds: write, then read the echo back (a single task cannot read and write at once).
        for chunk in sent.chunks(16 * 1024) {
            s.write_all(chunk).await.unwrap();
            let mut buf = vec![0u8; chunk.len()];
            let mut have = 0;
            while have < chunk.len() {
                have += s.read(&mut buf[have..]).await.unwrap();
            }
            got.extend_from_slice(&buf);
        }
        s.close().await.unwrap();
        assert_eq!(s.read(&mut [0u8; 1]).await, Ok(0));
        got
    });
    assert!(got == data, "echoed data differs");
    sim.run_until(|| server.done(), None);
    assert_eq!(server.take(), Ok(1 << 20));
    assert!(sim.now < 10_000, "1 MiB took {} simulated ms", sim.now);
    let tx = sim.b().lock().stats().device.tx_bytes;
    assert!(tx > 1 << 20, "B sent only {tx} bytes");
}

#[test]
fn tcp_upload_with_backpressure_then_eof() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 80, 1).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        let got = read_to_end(&mut s).await;
        s.close().await.unwrap();
        got
    });
    let data = pattern(1 << 20);
    let sent = data.clone();
    sim.run(async move {
        let mut s = TcpStream::connect(&a, ip(B4), 80).await.unwrap();
        s.write_all(&sent).await.unwrap();
        s.flush().await.unwrap();
        s.close().await.unwrap();
    });
    sim.run_until(|| server.done(), None);
    assert!(server.take().unwrap() == data, "uploaded data differs");
}

#[test]
fn twenty_concurrent_connections_through_one_listener() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 7, 32).unwrap();
    let spawner = sim.spawner();
    sim.spawn(async move {
        loop {
            let s = listener.accept().await;
            spawner.spawn(echo(s));
        }
    });
    let echoed = Arc::new(AtomicUsize::new(0));
    let finish = Gate::default();
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let (a, echoed, finish) = (a.clone(), echoed.clone(), finish.clone());
            sim.spawn(async move {
                let mut s = TcpStream::connect(&a, ip(B4), 7).await.unwrap();
                let msg = format!("hello from client {i}");
                s.write_all(msg.as_bytes()).await.unwrap();
                let mut buf = vec![0u8; msg.len()];
                let mut have = 0;
                while have < buf.len() {
                    have += s.read(&mut buf[have..]).await.unwrap();
                }
                assert_eq!(buf, msg.as_bytes());
                echoed.fetch_add(1, Ordering::SeqCst);
                finish.wait().await;
                s.close().await.unwrap();
            })
        })
        .collect();
    let e = echoed.clone();
    sim.run_until(move || e.load(Ordering::SeqCst) == 20, None);
    // All twenty open at once, on both sides.
    assert_eq!(sim.a().lock().stats().tcp.established, 20);
    let b_stats = sim.b().lock().stats();
    assert_eq!(b_stats.tcp.established, 20);
    assert_eq!(b_stats.tcp.listen, 1);
    assert_eq!(b_stats.tcp_listeners, 1);
    finish.open();
    sim.run_until(|| clients.iter().all(|c| c.done()), None);
    // After TIME-WAIT every connection socket is freed; only the listener's spare remains.
    sim.advance(15_000);
    assert_eq!(sim.a().lock().stats().tcp.total(), 0);
    let b_tcp = sim.b().lock().stats().tcp;
    assert_eq!((b_tcp.total(), b_tcp.listen), (1, 1));
}

#[test]
fn backlog_limits_waiting_connections_and_refills_after_accept() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let listener = Arc::new(Mutex::new(Some(TcpListener::bind(&b, 9, 2).unwrap())));
    let results: Vec<_> = (0..3)
        .map(|_| {
            let a = a.clone();
            sim.spawn(async move { TcpStream::connect(&a, ip(B4), 9).await.map(|s| s.state()) })
        })
        .collect();
    sim.run_until(|| results.iter().all(|r| r.done()), None);
    let mut outcomes: Vec<_> = results.iter().map(|r| r.take()).collect();
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [Err(NetError::Refused), Ok(TcpState::Established), Ok(TcpState::Established)]);
    // Those two streams were dropped (closed) by their tasks; accept still hands out the connections in order.
    let l = listener.clone();
    let a2 = a.clone();
    let state = sim.run(async move {
        let mut listener = l.lock().unwrap().take().unwrap();
        let first = listener.accept().await;
        drop(first);
        // With one slot free again, a new connection gets in.
        let s = TcpStream::connect(&a2, ip(B4), 9).await;
        s.map(|s| s.state())
    });
    assert_eq!(state, Ok(TcpState::Established));
}

#[test]
fn peer_reset_surfaces_as_error_from_read_and_write() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 5000, 4).unwrap();
    sim.spawn(async move {
        let mut s = listener.accept().await;
        let mut byte = [0u8; 1];
        assert_eq!(s.read(&mut byte).await, Ok(1));
        s.abort();
        assert_eq!(s.write(b"x").await, Err(NetError::InvalidState));
    });
    let (read, write, flush) = sim.run(async move {
        let mut s = TcpStream::connect(&a, ip(B4), 5000).await.unwrap();
        s.write_all(b"!").await.unwrap();
        // Blocks until the RST arrives, then fails instead of hanging.
        let read = s.read(&mut [0u8; 16]).await;
        (read, s.write(b"more").await, s.flush().await)
    });
    assert_eq!(read, Err(NetError::Reset));
    assert_eq!(write, Err(NetError::Reset));
    assert_eq!(flush, Err(NetError::Reset));
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let a = sim.a();
    let r = sim.run(async move { TcpStream::connect(&a, ip(B4), 4444).await.map(|_| ()) });
    assert_eq!(r, Err(NetError::Refused));
    assert_eq!(sim.a().lock().stats().tcp.total(), 0, "the failed socket was freed");
}

#[test]
fn graceful_close_client_first() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 80, 4).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        let request = read_to_end(&mut s).await.unwrap(); // ends with the client's FIN
                                                          // Half-closed: we can still answer.
        s.write_all(b"response").await.unwrap();
        let closed = s.close().await;
        (request, closed, s.state())
    });
    let (closed, state, response, eof) = sim.run(async move {
        let mut s = TcpStream::connect(&a, ip(B4), 80).await.unwrap();
        s.write_all(b"request").await.unwrap();
        let closed = s.close().await;
        let state = s.state();
        // What arrived while closing is still readable, then end of stream.
        let mut buf = [0u8; 32];
        let n = s.read(&mut buf).await.unwrap();
        (closed, state, buf[..n].to_vec(), s.read(&mut buf).await)
    });
    assert_eq!(closed, Ok(()));
    assert_eq!(state, TcpState::TimeWait);
    assert_eq!(response, b"response");
    assert_eq!(eof, Ok(0));
    sim.run_until(|| server.done(), None);
    assert_eq!(server.take(), (b"request".to_vec(), Ok(()), TcpState::Closed));
}

#[test]
fn graceful_close_server_first() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 80, 4).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        s.write_all(b"bye").await.unwrap();
        let closed = s.close().await;
        // The peer wrote after our FIN; it is buffered.
        (closed, read_to_end(&mut s).await)
    });
    let (got, closed) = sim.run(async move {
        let mut s = TcpStream::connect(&a, ip(B4), 80).await.unwrap();
        let got = read_to_end(&mut s).await.unwrap();
        assert_eq!(s.state(), TcpState::CloseWait);
        s.write_all(b"late").await.unwrap();
        (got, s.close().await)
    });
    assert_eq!(got, b"bye");
    assert_eq!(closed, Ok(()));
    sim.run_until(|| server.done(), None);
    assert_eq!(server.take(), (Ok(()), Ok(b"late".to_vec())));
    sim.advance(15_000);
    // Everything freed: the connection after TIME-WAIT, and the listener with the task that owned it.
    let b_stats = sim.b().lock().stats();
    assert_eq!((b_stats.tcp.total(), b_stats.tcp_listeners), (0, 0));
    assert_eq!(sim.a().lock().stats().tcp.total(), 0);
}

#[test]
fn close_times_out_when_the_peer_never_closes() {
    let options = SocketOptions { tcp_close_timeout_ms: 5_000, ..SocketOptions::default() };
    let mut sim = Sim::with_options(STATIC_V4.0, STATIC_V4.1, options);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 80, 4).unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        g.wait().await; // never closes; reads only once the test says so
        s.read(&mut [0u8; 8]).await
    });
    let (closed, took) = sim.run(async move {
        let mut s = TcpStream::connect(&a, ip(B4), 80).await.unwrap();
        let start = a.lock().now_ms();
        let closed = s.close().await;
        let end = a.lock().now_ms();
        (closed, end - start)
    });
    assert_eq!(closed, Err(NetError::TimedOut));
    assert!((5_000..6_000).contains(&took), "close took {took} ms");
    gate.open();
    sim.run_until(|| server.done(), None);
    // EOF first (our FIN), then the server's side learns nothing more: the RST after the timeout ended it.
    let r = server.take();
    assert!(r == Ok(0) || r == Err(NetError::Reset), "server read {r:?}");
}

#[test]
fn silent_peer_times_out_writes_and_connects() {
    let options = SocketOptions { tcp_timeout_ms: Some(10_000), ..SocketOptions::default() };
    let mut sim = Sim::with_options(STATIC_V4.0, STATIC_V4.1, options);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 80, 4).unwrap();
    sim.spawn(async move {
        let s = listener.accept().await;
        std::future::pending::<()>().await;
        drop(s);
    });
    let wire = sim.wire.clone();
    let (flushed, connect) = sim.run(async move {
        let mut s = TcpStream::connect(&a, ip(B4), 80).await.unwrap();
        // The peer vanishes: every frame is lost from now on.
        wire.set_hook(Box::new(|_, _| Vec::new()));
        s.write_all(b"anyone there?").await.unwrap();
        let flushed = s.flush().await;
        // An address on the subnet that nobody owns: ARP goes unanswered.
        let connect = TcpStream::connect(&a, ip(Ipv4Addr::new(10, 0, 0, 99)), 80).await.map(|_| ());
        (flushed, connect)
    });
    assert_eq!(flushed, Err(NetError::TimedOut));
    assert_eq!(connect, Err(NetError::TimedOut));
}

#[test]
fn lossy_wire_still_delivers_every_byte() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut n = 0u64;
    sim.wire.set_hook(Box::new(move |from, frame| {
        n += 1;
        let to = 1 - from;
        match n {
            _ if n.is_multiple_of(17) => Vec::new(), // drop
            _ if n.is_multiple_of(23) => vec![(to, frame.to_vec()), (to, frame.to_vec())], // duplicate
            _ => vec![(to, frame.to_vec())],
        }
    }));
    let mut listener = TcpListener::bind(&b, 80, 1).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        read_to_end(&mut s).await
    });
    let data = pattern(256 * 1024);
    let sent = data.clone();
    sim.run(async move {
        let mut s = TcpStream::connect(&a, ip(B4), 80).await.unwrap();
        s.write_all(&sent).await.unwrap();
        s.close().await.unwrap();
    });
    sim.run_until(|| server.done(), None);
    assert!(server.take().unwrap() == data, "data differs after loss and duplication");
}

#[test]
fn udp_echo_over_ipv4_and_ipv6() {
    let mut sim = Sim::new("ip=10.0.0.1/24 ip6=fd00::1/64 slaac=off", "ip=10.0.0.2/24 ip6=fd00::2/64 slaac=off");
    let (a, b) = (sim.a(), sim.b());
    let mut server = UdpSocket::bind(&b, 9000).unwrap();
    assert_eq!(UdpSocket::bind(&b, 9000).err(), Some(NetError::AddressInUse));
    sim.spawn(async move {
        let mut buf = [0u8; 2048];
        loop {
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            server.send_to(&buf[..n], from).await.unwrap();
        }
    });
    let b6: Ipv6Addr = "fd00::2".parse().unwrap();
    let (v4, v6, errors) = sim.run(async move {
        let mut c = UdpSocket::bind(&a, 0).unwrap();
        assert!(EPHEMERAL_PORTS.contains(&c.local_port()));
        let mut buf = [0u8; 64];
        c.send_to(b"ping4", SocketAddr::new(ip(B4), 9000)).await.unwrap();
        let (n, from) = c.recv_from(&mut buf).await.unwrap();
        let v4 = (buf[..n].to_vec(), from);
        c.send_to(b"ping6", SocketAddr::new(IpAddr::V6(b6), 9000)).await.unwrap();
        let (n, from) = c.recv_from(&mut buf).await.unwrap();
        let v6 = (buf[..n].to_vec(), from);
        let errors = (
            c.send_to(b"x", SocketAddr::new(ip(Ipv4Addr::new(192, 168, 1, 1)), 9)).await,
            c.send_to(&vec![0u8; 70_000], SocketAddr::new(ip(B4), 9000)).await,
            c.send_to(b"x", SocketAddr::new(ip(B4), 0)).await,
        );
        (v4, v6, errors)
    });
    assert_eq!(v4, (b"ping4".to_vec(), SocketAddr::new(ip(B4), 9000)));
    assert_eq!(v6, (b"ping6".to_vec(), SocketAddr::new(IpAddr::V6(b6), 9000)));
    assert_eq!(errors, (Err(NetError::NoRoute), Err(NetError::TooLarge), Err(NetError::InvalidAddress)));
}

#[test]
fn ipv6_tcp_over_static_and_link_local_addresses() {
    let mut sim = Sim::new("ip=off ip6=fd00::1/64 slaac=off", "ip=off ip6=fd00::2/64 slaac=off");
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 8080, 4).unwrap();
    let spawner = sim.spawner();
    sim.spawn(async move {
        loop {
            let s = listener.accept().await;
            spawner.spawn(echo(s));
        }
    });
    let b_ll = link_local_address(MAC_B);
    let (via_static, via_ll) = sim.run(async move {
        let mut out = Vec::new();
        for addr in ["fd00::2".parse::<Ipv6Addr>().unwrap(), b_ll] {
            let mut s = TcpStream::connect(&a, IpAddr::V6(addr), 8080).await.unwrap();
            let local = s.local_addr().unwrap().ip();
            s.write_all(b"over six").await.unwrap();
            let mut buf = [0u8; 8];
            let mut have = 0;
            while have < 8 {
                have += s.read(&mut buf[have..]).await.unwrap();
            }
            s.close().await.unwrap();
            out.push((local, buf));
        }
        (out[0], out[1])
    });
    assert_eq!(via_static, ("fd00::1".parse::<IpAddr>().unwrap(), *b"over six"));
    assert_eq!(via_ll, (IpAddr::V6(link_local_address(MAC_A)), *b"over six"));
    let log = sim.wire.log();
    assert!(log.iter().any(|(_, f)| icmpv6_type(f) == Some(135)), "no neighbor solicitation");
    assert!(log.iter().any(|(_, f)| icmpv6_type(f) == Some(136)), "no neighbor advertisement");
    // IPv4 is off: no route, and no IPv4 frame ever left either stack.
    assert!(!sim.a().lock().has_route(ip(B4)));
    assert!(log.iter().all(|(_, f)| ethertype(f) != 0x0800 && ethertype(f) != 0x0806));
}

#[test]
fn dhcp_lease_is_applied_used_and_lost() {
    let mut sim = Sim::new("slaac=off", "ip=10.0.0.1/24 slaac=off");
    let server = DhcpServer::new(A4, Ipv4Addr::new(10, 0, 0, 50), 120);
    let dhcp = server.clone();
    sim.wire.set_hook(Box::new(move |from, frame| match dhcp.handle(frame) {
        Some(Some(reply)) => vec![(from, reply)],
        Some(None) => Vec::new(),
        None => vec![(1 - from, frame.to_vec())],
    }));
    let (a, b) = (sim.a(), sim.b());
    assert_eq!(a.lock().ipv4_address(), None);
    assert!(!a.lock().has_route(ip(A4)));
    let lease = sim.run({
        let a = a.clone();
        async move { a.wait_ipv4().await }
    });
    assert_eq!(lease, Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, 50), 24));
    sim.advance(1);
    // The lease was announced once with a gratuitous ARP (and B's static address at its start).
    assert_eq!(gratuitous_arps(&sim), [(1, A4), (0, Ipv4Addr::new(10, 0, 0, 50))]);
    {
        let s = a.lock();
        assert_eq!(s.ipv4_gateway(), Some(A4));
        assert_eq!(s.dns_servers(), [Ipv4Addr::new(10, 0, 0, 53)]);
        assert_eq!((s.stats().dhcp_leases, s.stats().dhcp_losses), (1, 0));
    }
    assert_eq!(server.acks.load(Ordering::SeqCst), 1);

    // The leased address works: a connection to the server's host.
    let mut listener = TcpListener::bind(&b, 22, 1).unwrap();
    let peer = sim.spawn(async move {
        let mut s = listener.accept().await;
        let from = s.peer_addr();
        s.write_all(b"welcome").await.unwrap();
        std::future::pending::<()>().await;
        from
    });
    let a2 = a.clone();
    let mut stream = sim.run(async move {
        let mut s = TcpStream::connect(&a2, ip(A4), 22).await.unwrap();
        let mut buf = [0u8; 7];
        let mut have = 0;
        while have < 7 {
            have += s.read(&mut buf[have..]).await.unwrap();
        }
        assert_eq!(&buf, b"welcome");
        s
    });
    assert!(!peer.done());

    // The server disappears: renewals go unanswered and the lease runs out at 120 s.
    server.enabled.store(false, Ordering::SeqCst);
    let read = sim.run(async move { stream.read(&mut [0u8; 8]).await });
    assert_eq!(read, Err(NetError::AddressLost));
    assert!((120_000..121_000).contains(&sim.now), "lease lost at {} ms", sim.now);
    let s = a.lock();
    assert_eq!(s.ipv4_address(), None);
    assert_eq!(s.ipv4_gateway(), None);
    assert_eq!(s.stats().dhcp_losses, 1);
}

/// A router advertisement as radvd sends it, from `fe80::1`.
fn router_advert(router_lifetime_s: u64) -> Vec<u8> {
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    let dst: Ipv6Addr = "ff02::1".parse().unwrap();
    let mac = EthernetAddress([0x02, 0, 0, 0, 0, 0xfe]);
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
        hop_limit: 64,
        flags: NdiscRouterFlags::empty(),
        router_lifetime: Duration::from_secs(router_lifetime_s),
        reachable_time: Duration::ZERO,
        retrans_time: Duration::ZERO,
        lladdr: Some(mac.into()),
        mtu: None,
        prefix_info: Some(NdiscPrefixInformation {
            prefix_len: 64,
            flags: NdiscPrefixInfoFlags::ADDRCONF | NdiscPrefixInfoFlags::ON_LINK,
            valid_lifetime: Duration::from_secs(86400),
            preferred_lifetime: Duration::from_secs(14400),
            prefix: "2001:db8:1:2::".parse().unwrap(),
        }),
    });
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: 255,
    };
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut frame = vec![0u8; 14 + ip.buffer_len() + icmp.buffer_len()];
    let mut e = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.emit(&mut e);
    let mut i = Ipv6Packet::new_unchecked(e.payload_mut());
    ip.emit(&mut i);
    icmp.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(i.payload_mut()), &ChecksumCapabilities::default());
    frame
}

#[test]
fn slaac_solicits_then_configures_address_and_router_from_an_advert() {
    let mut sim = Sim::new("ip=off", "ip=off slaac=off");
    let solicitations =
        |sim: &Sim| sim.wire.log().iter().filter(|(s, f)| *s == 0 && icmpv6_type(f) == Some(133)).count();
    // No router: three solicitations four seconds apart, then silence (and no busy loop: the driver would
    // panic on a deadline stuck in the past).
    sim.advance(30_000);
    assert_eq!(solicitations(&sim), MAX_SOLICITATIONS as usize);
    let global: Ipv6Addr = "2001:db8:9::1".parse().unwrap();
    assert!(!sim.a().lock().has_route(IpAddr::V6(global)));

    sim.wire.inject(0, router_advert(1800));
    sim.advance(1);
    let expected = Ipv6Cidr::new("2001:db8:1:2:0:ff:fe00:a".parse().unwrap(), 64);
    {
        let a = sim.a();
        let s = a.lock();
        assert_eq!(s.ipv6_addresses(), [Ipv6Cidr::new(link_local_address(MAC_A), 64), expected]);
        assert_eq!(s.ipv6_gateway(), Some("fe80::1".parse().unwrap()));
        assert!(s.has_route(IpAddr::V6(global)));
    }
    // The router lifetime runs out; the address (valid for a day) stays.
    sim.advance(1_800_000);
    let a = sim.a();
    let s = a.lock();
    assert_eq!(s.ipv6_gateway(), None);
    assert!(s.ipv6_addresses().contains(&expected));
    assert_eq!(solicitations(&sim), MAX_SOLICITATIONS as usize);
}

#[test]
fn static_gw6_wins_over_advertised_router() {
    let mut sim = Sim::new("ip=off ip6=fd00::1/64 gw6=fd00::fe", "ip=off slaac=off");
    sim.wire.inject(0, router_advert(1800));
    sim.advance(1);
    assert_eq!(sim.a().lock().ipv6_gateway(), Some("fd00::fe".parse().unwrap()));
    assert_eq!(sim.a().lock().ipv6_addresses().len(), 3, "link-local, static and SLAAC");
}

#[test]
fn poll_request_wakes_the_network_task() {
    // Driven by hand: the waiting future stands for the runtime's network task.
    struct Count(AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let wire = Wire::new();
    let net = NetHandle::new(Stack::new(wire.end(0, MAC_A), &config(STATIC_V4.0), 1, 0).unwrap());
    net.poll(0);
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = std::task::Waker::from(count.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    let mut requested = Box::pin(net.poll_requested());
    assert!(requested.as_mut().poll(&mut cx).is_pending());

    let mut sock = UdpSocket::bind(&net, 1234).unwrap();
    let mut send = Box::pin(sock.send_to(b"x", SocketAddr::new(ip(B4), 9)));
    assert_eq!(send.as_mut().poll(&mut cx), Poll::Ready(Ok(1)));
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "queuing a datagram must wake the network task once");
    assert!(requested.as_mut().poll(&mut cx).is_ready());

    // Polling the stack answers the request: the datagram leaves (after ARP) and the flag is clear.
    net.poll(1);
    assert!(!net.is_poll_requested());
    assert!(Box::pin(net.poll_requested()).as_mut().poll(&mut cx).is_pending());
    assert!(wire.log().iter().any(|(_, f)| ethertype(f) == 0x0806), "ARP for the datagram's destination");
}

#[test]
fn stack_rejects_a_multicast_mac() {
    let wire = Wire::new();
    let r = Stack::new(wire.end(0, [0x01, 0, 0x5e, 0, 0, 1]), &NetConfig::default(), 0, 0);
    assert_eq!(r.err().map(|e| e.to_string()), Some("device MAC address is not unicast".into()));
}

#[test]
fn socket_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let a = sim.a();
    send(&TcpStream::connect(&a, ip(B4), 1));
    send(&a.poll_requested());
    send(&a.wait_ipv4());
    let mut l = TcpListener::bind(&a, 1, 1).unwrap();
    send(&l.accept());
    let mut u = UdpSocket::bind(&a, 1).unwrap();
    let mut buf = [0u8; 4];
    send(&u.recv_from(&mut buf));
    send(&u.send_to(b"x", SocketAddr::new(ip(B4), 1)));
    let mut p = Pinger::new(&a, 1).unwrap();
    send(&p.recv_reply());
    fn stream_ops(s: &mut TcpStream<WireEnd>) {
        let mut buf = [0u8; 4];
        send(&s.read(&mut buf));
        send(&s.write(b"x"));
        send(&s.flush());
        send(&s.close());
    }
    let _ = stream_ops;
}

#[test]
fn http_serve_answers_pipelined_requests_in_order_then_refuses_a_bad_one() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 80, 4).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        let budget = http::MemoryBudget::new(1 << 20);
        let handler = http::Respond(async |req: &http::Request<'_>| {
            let body = format!("{} {} {}", req.method, req.target, req.body.len());
            http::response(200, "OK", "text/plain", body.as_bytes(), req.keep_alive)
        });
        http::serve(&mut s, &budget, handler).await
    });
    let got = sim.run(async move {
        let mut s = TcpStream::connect(&a, ip(B4), 80).await.unwrap();
        // Two pipelined requests and a HEAD in one write, then a malformed one.
        s.write_all(b"GET /a HTTP/1.1\r\nHost: b\r\n\r\nPUT /b HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nxyzHEAD /c HTTP/1.1\r\nHost: b\r\n\r\n")
            .await
            .unwrap();
        s.write_all(b"BROKEN\r\n\r\n").await.unwrap();
        read_to_end(&mut s).await.unwrap()
    });
    let text = String::from_utf8(got).unwrap();
    let statuses: Vec<&str> = text.matches("HTTP/1.1 ").map(|_| "").collect();
    assert_eq!(statuses.len(), 4, "{text}");
    let a = text.find("GET /a 0").expect("first answer");
    let b = text.find("PUT /b 3").expect("second answer");
    assert!(a < b, "answered out of order: {text}");
    assert!(!text.contains("HEAD /c"), "HEAD got a body: {text}");
    assert!(text.ends_with("400 Bad Request: request line is not METHOD TARGET VERSION\n"), "{text}");
    sim.run_until(|| server.done(), None);
    let served = server.take().unwrap();
    assert_eq!(served.requests, 3);
    assert_eq!(served.bad, Some(http::BadRequest::Malformed("request line is not METHOD TARGET VERSION")));
}

/// The lab's soak found it: every connection the server closes first waits in TIME-WAIT with its buffers
/// (128 KiB by default) for smoltcp's TIME-WAIT period, so a few hundred short connections a second exhausted
/// httpd's heap and the allocation failure crashed the domain. Under `tcp_memory_limit` the stack evicts
/// orphaned TIME-WAIT connections to make room, and never holds more than the limit.
#[test]
fn short_connections_recycle_time_wait_under_the_memory_limit() {
    let per_socket = 2 * 4096;
    let options = SocketOptions {
        tcp_rx_buffer: 4096,
        tcp_tx_buffer: 4096,
        tcp_memory_limit: Some(4 * per_socket),
        ..SocketOptions::default()
    };
    let mut sim = Sim::with_options(STATIC_V4.0, STATIC_V4.1, options);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 80, 2).unwrap();
    // The server answers each connection and closes first (HTTP's Connection: close): it ends in TIME-WAIT.
    sim.spawn(async move {
        loop {
            let mut s = listener.accept().await;
            s.write_all(b"bye").await.unwrap();
            let _ = s.close().await;
        }
    });
    let got = sim.run(async move {
        let mut answered = 0;
        for _ in 0..40 {
            let mut s = TcpStream::connect(&a, ip(B4), 80).await.unwrap();
            if read_to_end(&mut s).await.unwrap() == b"bye" {
                answered += 1;
            }
            s.close().await.unwrap();
        }
        answered
    });
    assert_eq!(got, 40, "every short connection answered");
    let stats = sim.b().lock().stats();
    assert!(stats.tcp_buffer_bytes <= 4 * per_socket as u64, "held {} bytes", stats.tcp_buffer_bytes);
    assert!(stats.tcp_time_wait_evicted >= 30, "evicted {} TIME-WAIT connections", stats.tcp_time_wait_evicted);
}

/// Connections that stay open fill the limit: further SYNs are refused (the listener keeps no spare), a
/// `connect` from the full stack fails with `NoMemory`, and once a connection ends a new one gets in.
#[test]
fn connections_beyond_the_memory_limit_are_refused_then_admitted_when_room_frees() {
    let per_socket = 2 * 4096;
    let tight = SocketOptions {
        tcp_rx_buffer: 4096,
        tcp_tx_buffer: 4096,
        tcp_memory_limit: Some(3 * per_socket),
        ..SocketOptions::default()
    };
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    sim.b().lock().set_socket_options(tight);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 80, 8).unwrap();
    let (held, listener) = sim.run(async move {
        let mut held = Vec::new();
        // The spare and two accepted connections fill three sockets' worth.
        for _ in 0..2 {
            let c = TcpStream::connect(&a, ip(B4), 80).await.unwrap();
            let s = listener.accept().await;
            held.push((c, s));
        }
        (held, listener)
    });
    // The spare takes a third connection (it waits in the backlog); no new spare fits, so a fourth is refused.
    let a = sim.a();
    let (third, refused) = sim.run(async move {
        let third = TcpStream::connect(&a, ip(B4), 80).await;
        let fourth = TcpStream::connect(&a, ip(B4), 80).await.map(|_| ());
        (third, fourth)
    });
    assert!(third.is_ok());
    assert_eq!(refused, Err(NetError::Refused), "a SYN beyond the limit is refused");
    assert!(sim.b().lock().stats().tcp_refused_no_memory > 0);
    assert!(sim.b().lock().stats().tcp_buffer_bytes <= 3 * per_socket as u64);
    // The full stack cannot open a connection either.
    let b = sim.b();
    let outgoing = sim.run(async move { TcpStream::connect(&b, ip(A4), 7).await.map(|_| ()) });
    assert_eq!(outgoing, Err(NetError::NoMemory));
    // The connections end (dropped streams close in the background) and room frees up.
    drop((held, third));
    sim.advance(20_000);
    let a = sim.a();
    let again = sim.run(async move {
        let mut listener = listener;
        let c = TcpStream::connect(&a, ip(B4), 80).await.map(|s| s.state());
        let _s = listener.accept().await;
        c
    });
    assert_eq!(again, Ok(TcpState::Established));
}
