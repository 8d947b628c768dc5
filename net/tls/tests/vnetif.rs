//! TLS between two Sirocco network stacks on vnetif (netfront, the stack and the sockets, unchanged, against fake
//! netbacks joined by a switch with seeded faults): handshakes in TLS 1.3 and 1.2 with a certificate made by
//! `SelfSigned`, bulk data both ways checked by SHA-256, lossy and reordering links, and clients that misbehave.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use embedded_io_async::{Read, Write};
use sha2::{Digest, Sha256};
use sirocco_tls::rustls::{self, ProtocolVersion};
use sirocco_tls::*;
use sirocco_vnetif::profile::named;
use sirocco_vnetif::transfer::fill_pattern;
use sirocco_vnetif::{Sim, TcpListener, TcpStream};

/// The tests' wall clock: 2027-01-15.
fn now() -> Option<Duration> {
    Some(Duration::from_secs(1_800_000_000))
}

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_core::SeedableRng::seed_from_u64(seed)
}

/// A certificate for node 1's address, and a server and a client that trust it.
fn pki(sim: &Sim) -> (SelfSigned, TlsAcceptor, TlsConnector) {
    let cert = SelfSigned::generate(
        &[SubjectName::Ip(sim.ip(1)), SubjectName::Dns("guest.test")],
        now().unwrap(),
        30,
        &mut rng(7),
    )
    .expect("a certificate");
    let server = TlsAcceptor::new(Identity::from_self_signed(&cert), now).expect("a server");
    let client = TlsConnector::new(std::slice::from_ref(&cert.cert), now).expect("a client");
    (cert, server, client)
}

/// A client for TLS 1.2 only (the server takes both).
fn tls12_client(cert: &SelfSigned) -> TlsConnector {
    TlsConnector::with_versions(std::slice::from_ref(&cert.cert), now, &[&rustls::version::TLS12]).unwrap()
}

async fn send_pattern<W: Write>(w: &mut W, bytes: u64, seed: u64) -> Result<[u8; 32], W::Error> {
    let mut buf = vec![0u8; 13_000]; // not a multiple of a record: records and writes do not line up
    let (mut sent, mut hash) = (0u64, Sha256::new());
    while sent < bytes {
        let n = (bytes - sent).min(buf.len() as u64) as usize;
        fill_pattern(seed, sent, &mut buf[..n]);
        w.write_all(&buf[..n]).await?;
        hash.update(&buf[..n]);
        sent += n as u64;
    }
    w.flush().await?;
    Ok(hash.finalize().into())
}

async fn read_all<R: Read>(r: &mut R, bytes: u64) -> Result<[u8; 32], R::Error> {
    let mut buf = vec![0u8; 7_000];
    let (mut got, mut hash) = (0u64, Sha256::new());
    while got < bytes {
        let want = (bytes - got).min(buf.len() as u64) as usize;
        let n = r.read(&mut buf[..want]).await?;
        assert!(n > 0, "end of stream after {got} of {bytes} bytes");
        hash.update(&buf[..n]);
        got += n as u64;
    }
    Ok(hash.finalize().into())
}

/// Client (node 0) sends `bytes` to the server (node 1) and closes with close_notify, then the server sends
/// `bytes` back and closes; each side's SHA-256 of what it sent must be the other's of what it read. Answers the
/// protocol version.
fn both_ways(sim: &mut Sim, client: TlsConnector, server: TlsAcceptor, bytes: u64) -> ProtocolVersion {
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let mut listener = TcpListener::bind(&b, 443, 1).unwrap();
    let server = sim.spawn(async move {
        let tcp = listener.accept().await;
        let mut tls = server.accept(tcp).await.expect("server handshake");
        // The client sends, then closes its side (close_notify); the server reads it all and the close, then
        // answers on the half-closed connection.
        let got = read_all(&mut tls, bytes).await.expect("server read");
        let mut end = [0u8; 1];
        assert_eq!(tls.read(&mut end).await.expect("close_notify"), 0, "more than the client sent");
        let sent = send_pattern(&mut tls, bytes, 2).await.expect("server send");
        tls.close().await.expect("server close");
        tls.into_inner().close().await.expect("server TCP close");
        (sent, got)
    });
    let (version, sent, got) = sim.run(async move {
        let tcp = TcpStream::connect(&a, b_ip, 443).await.expect("connect");
        let mut tls = client.connect(&b_ip.to_string(), tcp).await.expect("client handshake");
        let version = tls.protocol_version().unwrap();
        let sent = send_pattern(&mut tls, bytes, 1).await.expect("client send");
        tls.close().await.expect("client close");
        let got = read_all(&mut tls, bytes).await.expect("client read");
        let mut end = [0u8; 1];
        assert_eq!(tls.read(&mut end).await.expect("server's close_notify"), 0);
        tls.into_inner().close().await.expect("client TCP close");
        (version, sent, got)
    });
    let (server_sent, server_got) = sim.join(server);
    assert_eq!(server_got, sent, "the server read other bytes than the client sent");
    assert_eq!(got, server_sent, "the client read other bytes than the server sent");
    version
}

#[test]
fn tls13_handshake_and_16_mib_each_way_with_identical_hashes() {
    let mut sim = Sim::pair("tls13_16mib", 1);
    sim.limit_us = 600_000_000;
    let (_, server, client) = pki(&sim);
    let version = both_ways(&mut sim, client, server, 16 << 20);
    assert_eq!(version, ProtocolVersion::TLSv1_3);
    sim.advance_ms(11_000);
    sim.assert_clean();
}

#[test]
fn tls12_client_is_served() {
    let mut sim = Sim::pair("tls12", 2);
    let (cert, server, _) = pki(&sim);
    let version = both_ways(&mut sim, tls12_client(&cert), server, 256 << 10);
    assert_eq!(version, ProtocolVersion::TLSv1_2);
    sim.advance_ms(11_000);
    sim.assert_clean();
}

#[test]
fn chacha20_is_chosen_over_the_clients_order() {
    let mut sim = Sim::pair("tls_suite", 3);
    let (_, server, client) = pki(&sim);
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let mut listener = TcpListener::bind(&b, 443, 1).unwrap();
    let s = sim.spawn(async move {
        let tls = server.accept(listener.accept().await).await.expect("handshake");
        tls.cipher_suite().unwrap().suite()
    });
    sim.run(async move {
        // rustls' own client order puts AES-GCM first.
        let tcp = TcpStream::connect(&a, b_ip, 443).await.unwrap();
        let tls = client.connect("guest.test", tcp).await.expect("handshake by DNS name");
        drop(tls);
    });
    assert_eq!(sim.join(s), rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
}

/// The fault profiles with loss and reordering: TCP recovers under TLS, every byte arrives, records intact.
#[test]
fn bulk_over_loss_and_reordering() {
    for profile in ["loss 1%", "reorder 5%", "bad wifi"] {
        let mut sim = named(profile).sim(&format!("tls_{}", profile.replace([' ', '%'], "_")), 11);
        sim.limit_us = 600_000_000;
        let (_, server, client) = pki(&sim);
        both_ways(&mut sim, client, server, 1 << 20);
        sim.advance_ms(11_000);
        sim.assert_clean();
    }
}

/// Bytes that are not a TLS record at all: the server's accept fails with a protocol error, and it serves the
/// next client.
#[test]
fn garbage_instead_of_a_client_hello_fails_that_connection_only() {
    let mut sim = Sim::pair("tls_garbage", 4);
    let (_, server, client) = pki(&sim);
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let mut listener = TcpListener::bind(&b, 443, 2).unwrap();
    let s = sim.spawn(async move {
        let first = server.accept(listener.accept().await).await.err().expect("garbage accepted");
        let mut second = server.accept(listener.accept().await).await.expect("the next client");
        let mut buf = [0u8; 5];
        second.read_exact(&mut buf).await.unwrap();
        second.close().await.unwrap();
        (format!("{first}"), buf)
    });
    sim.run(async move {
        let mut tcp = TcpStream::connect(&a, b_ip, 443).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        // The server answers with an alert or closes; either way the connection ends.
        let mut buf = [0u8; 64];
        let _ = tcp.read(&mut buf).await;
        drop(tcp);
        let tcp = TcpStream::connect(&a, b_ip, 443).await.unwrap();
        let mut tls = client.connect("guest.test", tcp).await.unwrap();
        tls.write_all(b"hello").await.unwrap();
        tls.flush().await.unwrap();
        let mut end = [0u8; 1];
        let _ = tls.read(&mut end).await;
    });
    let (err, buf) = sim.join(s);
    assert!(err.starts_with("TLS: "), "{err}");
    assert_eq!(&buf, b"hello");
}

/// A client that stops mid-handshake (sends half its hello, then closes) and one that vanishes mid-stream:
/// the server sees Truncated, never a panic or a hang, and still serves.
#[test]
fn truncated_hello_and_truncated_stream() {
    let mut sim = Sim::pair("tls_truncated", 5);
    let (_, server, client) = pki(&sim);
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let mut listener = TcpListener::bind(&b, 443, 2).unwrap();
    let truncated = Rc::new(Cell::new(0));
    let t = truncated.clone();
    let s = sim.spawn(async move {
        match server.accept(listener.accept().await).await {
            Err(TlsError::Truncated) => t.set(t.get() + 1),
            Err(e) => panic!("half a hello: {e}"),
            Ok(_) => panic!("half a hello accepted"),
        }
        let mut tls = server.accept(listener.accept().await).await.expect("second client");
        let mut buf = vec![0u8; 100];
        read_all(&mut tls, 100).await.expect("the 100 bytes before the cut");
        match tls.read(&mut buf).await {
            Err(TlsError::Truncated) => t.set(t.get() + 1),
            other => panic!("a stream cut without close_notify: {other:?}"),
        }
    });
    sim.run(async move {
        // The first 20 bytes of a real ClientHello record (its header says more follows), then FIN.
        let mut tcp = TcpStream::connect(&a, b_ip, 443).await.unwrap();
        tcp.write_all(&[0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0xfc, 0x03, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 9])
            .await
            .unwrap();
        tcp.close().await.unwrap();
        let tcp = TcpStream::connect(&a, b_ip, 443).await.unwrap();
        let mut tls = client.connect("guest.test", tcp).await.unwrap();
        tls.write_all(&[9u8; 100]).await.unwrap();
        tls.flush().await.unwrap();
        // Close the TCP connection under TLS: no close_notify.
        let mut tcp = tls.into_inner();
        tcp.close().await.unwrap();
    });
    sim.join(s);
    assert_eq!(truncated.get(), 2);
}

/// A client that does not trust the server's certificate refuses the handshake (and says why); so does one
/// asking for a name the certificate does not carry.
#[test]
fn wrong_certificate_or_name_is_refused() {
    let mut sim = Sim::pair("tls_untrusted", 6);
    let (_, server, _) = pki(&sim);
    let other = SelfSigned::generate(&[SubjectName::Ip(sim.ip(1))], now().unwrap(), 30, &mut rng(8)).unwrap();
    let stranger = TlsConnector::new(std::slice::from_ref(&other.cert), now).unwrap();
    let (_, _, trusting) = pki(&sim);
    let (a, b, b_ip) = (sim.net(0), sim.net(1), sim.ip(1));
    let mut listener = TcpListener::bind(&b, 443, 2).unwrap();
    let s = sim.spawn(async move {
        for _ in 0..2 {
            assert!(server.accept(listener.accept().await).await.is_err());
        }
    });
    let errors = sim.run(async move {
        let tcp = TcpStream::connect(&a, b_ip, 443).await.unwrap();
        let e1 = stranger.connect(&b_ip.to_string(), tcp).await.err().expect("a stranger's certificate accepted");
        let tcp = TcpStream::connect(&a, b_ip, 443).await.unwrap();
        let e2 = trusting.connect("not-the-guest.test", tcp).await.err().expect("a wrong name accepted");
        (format!("{e1}"), format!("{e2}"))
    });
    sim.join(s);
    assert!(errors.0.contains("certificate"), "{}", errors.0);
    assert!(errors.1.contains("certificate"), "{}", errors.1);
}
