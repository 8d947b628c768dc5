//! The ecosystem's I/O traits on real connections between two stacks (see `common`): embedded-io-async's `Read`,
//! `Write`, `ReadReady` and `WriteReady` on `TcpStream`, embedded-nal-async's `UnconnectedUdp` on `UdpSocket`.
//! The protocol functions here are written against the traits only, as a no_std protocol crate would be.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::*;
use embedded_io_async::{Error as _, ErrorKind, Read, ReadExactError, ReadReady, Write, WriteReady};
use embedded_nal_async::UnconnectedUdp;
use sirocco_net::*;

const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const STATIC_V4: (&str, &str) = ("ip=10.0.0.1/24 slaac=off", "ip=10.0.0.2/24 slaac=off");

fn b4(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(B4), port)
}

/// A length-prefixed exchange: `u16` big-endian length, then the bytes.
async fn send_message<W: Write>(w: &mut W, msg: &[u8]) -> Result<(), W::Error> {
    w.write_all(&(msg.len() as u16).to_be_bytes()).await?;
    w.write_all(msg).await?;
    w.flush().await
}

async fn receive_message<R: Read>(r: &mut R) -> Result<Vec<u8>, ReadExactError<R::Error>> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut msg).await?;
    Ok(msg)
}

/// Answers each message with the message reversed, until the peer closes.
async fn reverse_server<S: Read + Write>(s: &mut S) -> Result<usize, ReadExactError<S::Error>> {
    let mut answered = 0;
    loop {
        let msg = match receive_message(s).await {
            Ok(msg) => msg,
            Err(ReadExactError::UnexpectedEof) => return Ok(answered),
            Err(e) => return Err(e),
        };
        let reply: Vec<u8> = msg.iter().rev().copied().collect();
        send_message(s, &reply).await?;
        answered += 1;
    }
}

/// Reads until end of stream, with the trait's `read` only.
async fn read_to_end<R: Read>(r: &mut R) -> Result<Vec<u8>, R::Error> {
    let mut out = Vec::new();
    let mut buf = [0u8; 3000];
    loop {
        match r.read(&mut buf).await? {
            0 => return Ok(out),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn generic_embedded_io_protocol_runs_over_a_tcp_connection() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 7000, 4).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        let answered = reverse_server(&mut s).await;
        s.close().await.unwrap();
        answered
    });
    let replies = sim.run(async move {
        let mut s = TcpStream::connect(&a, IpAddr::V4(B4), 7000).await.unwrap();
        let mut replies = Vec::new();
        for msg in [&b"hello"[..], b"", &[7u8; 4000][..]] {
            send_message(&mut s, msg).await.unwrap();
            replies.push(receive_message(&mut s).await.unwrap());
        }
        s.close().await.unwrap();
        replies
    });
    assert_eq!(replies, [b"olleh".to_vec(), Vec::new(), vec![7u8; 4000]]);
    sim.run_until(|| server.done(), None);
    assert_eq!(server.take().unwrap(), 3);
}

#[test]
fn read_at_end_of_stream_returns_zero_and_an_empty_buffer_returns_zero_at_once() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 7001, 4).unwrap();
    sim.spawn(async move {
        let mut s = listener.accept().await;
        Write::write_all(&mut s, b"last words").await.unwrap();
        s.close().await.unwrap();
    });
    let (got, again, empty) = sim.run(async move {
        let mut s = TcpStream::connect(&a, IpAddr::V4(B4), 7001).await.unwrap();
        // Nothing has arrived yet: an empty buffer must not wait for it.
        let empty = Read::read(&mut s, &mut []).await;
        let got = read_to_end(&mut s).await.unwrap();
        (got, Read::read(&mut s, &mut [0u8; 8]).await, empty)
    });
    assert_eq!(got, b"last words");
    assert_eq!(again, Ok(0), "end of stream stays end of stream");
    assert_eq!(empty, Ok(0));
}

#[test]
fn write_all_of_a_large_buffer_arrives_intact() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 7002, 1).unwrap();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        read_to_end(&mut s).await
    });
    // Many times the send buffer: `write` takes what fits and `write_all` goes round (never `Ok(0)`: the
    // provided `write_all` would panic).
    let data = pattern(3 << 20);
    let sent = data.clone();
    sim.run(async move {
        let mut s = TcpStream::connect(&a, IpAddr::V4(B4), 7002).await.unwrap();
        Write::write_all(&mut s, &sent).await.unwrap();
        Write::flush(&mut s).await.unwrap();
        s.close().await.unwrap();
    });
    sim.run_until(|| server.done(), None);
    assert!(server.take().unwrap() == data, "data differs");
}

#[test]
fn errors_carry_the_right_error_kind() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 7003, 4).unwrap();
    // Its connections complete without an accept (the backlog), and stay.
    let _idle = TcpListener::bind(&b, 7013, 4).unwrap();
    sim.spawn(async move {
        let mut s = listener.accept().await;
        let mut byte = [0u8; 1];
        Read::read_exact(&mut s, &mut byte).await.unwrap();
        s.abort();
    });
    let (reset, aborted, refused) = sim.run(async move {
        let mut s = TcpStream::connect(&a, IpAddr::V4(B4), 7003).await.unwrap();
        Write::write_all(&mut s, b"!").await.unwrap();
        let reset = read_to_end(&mut s).await.map(|_| ()).unwrap_err();
        let mut mine = TcpStream::connect(&a, IpAddr::V4(B4), 7013).await.unwrap();
        mine.abort();
        let aborted = Write::write(&mut mine, b"x").await.unwrap_err();
        let refused = TcpStream::connect(&a, IpAddr::V4(B4), 7999).await.map(|_| ()).unwrap_err();
        (reset, aborted, refused)
    });
    assert_eq!((reset, reset.kind()), (NetError::Reset, ErrorKind::ConnectionReset));
    assert_eq!((aborted, aborted.kind()), (NetError::InvalidState, ErrorKind::NotConnected));
    assert_eq!((refused, refused.kind()), (NetError::Refused, ErrorKind::ConnectionRefused));
}

#[test]
fn read_ready_and_write_ready_say_whether_the_call_would_wait() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 7004, 4).unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        g.wait().await;
        Write::write_all(&mut s, b"now").await.unwrap();
        Write::flush(&mut s).await.unwrap();
        // Dropped: closed in the background (the test's end never closes, so `close` would wait for it).
    });
    let mut s = sim.run(async move { TcpStream::connect(&a, IpAddr::V4(B4), 7004).await.unwrap() });
    assert_eq!(s.read_ready(), Ok(false), "nothing sent yet");
    assert_eq!(s.write_ready(), Ok(true), "an empty send buffer");
    gate.open();
    sim.run_until(|| server.done(), None);
    assert_eq!(s.read_ready(), Ok(true), "bytes buffered");
    let mut buf = [0u8; 8];
    let (n, eof, ready_at_eof) = sim.run(async move {
        let n = Read::read(&mut s, &mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"now");
        let eof = Read::read(&mut s, &mut buf).await;
        // At end of stream a read does not wait either (it returns 0).
        (n, eof, s.read_ready())
    });
    assert_eq!((n, eof, ready_at_eof), (3, Ok(0), Ok(true)));
}

#[test]
fn write_ready_is_false_while_the_send_buffer_is_full() {
    let options = SocketOptions { tcp_tx_buffer: 4096, ..SocketOptions::default() };
    let mut sim = Sim::with_options(STATIC_V4.0, STATIC_V4.1, options);
    let (a, b) = (sim.a(), sim.b());
    let mut listener = TcpListener::bind(&b, 7005, 4).unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    // The server reads nothing until the gate opens: its window closes, our send buffer fills.
    let server = sim.spawn(async move {
        let mut s = listener.accept().await;
        g.wait().await;
        read_to_end(&mut s).await
    });
    let mut s = sim.run(async move { TcpStream::connect(&a, IpAddr::V4(B4), 7005).await.unwrap() });
    let data = pattern(1 << 20);
    let mut queued = 0;
    while s.write_ready() == Ok(true) {
        // Each write is promised not to wait.
        let n = sim.run({
            let (mut stream, chunk) = (s, data[queued..].to_vec());
            async move {
                let n = Write::write(&mut stream, &chunk).await.unwrap();
                (stream, n)
            }
        });
        (s, queued) = (n.0, queued + n.1);
        assert!(n.1 > 0);
        assert!(queued < data.len(), "the peer's window never closed");
        sim.advance(10);
    }
    assert!(queued >= 4096, "only {queued} bytes queued before the buffer was full");
    gate.open();
    let rest = data[queued..].to_vec();
    sim.run(async move {
        Write::write_all(&mut s, &rest).await.unwrap();
        s.close().await.unwrap();
    });
    sim.run_until(|| server.done(), None);
    assert!(server.take().unwrap() == data, "data differs");
}

#[test]
fn unconnected_udp_gives_both_addresses_and_the_full_length() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut server = UdpSocket::bind(&b, 9000).unwrap();
    let served = sim.spawn(async move {
        let mut buf = [0u8; 4];
        let (len, local, remote) = server.receive_into(&mut buf).await.unwrap();
        // Answer from the address the datagram was sent to.
        server.send(local, remote, &buf).await.unwrap();
        (len, local, remote)
    });
    let unspecified = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    let (reply, local_port, errors) = sim.run(async move {
        let mut c = UdpSocket::bind(&a, 0).unwrap();
        let port = c.local_port();
        c.send(unspecified, b4(9000), b"truncated").await.unwrap();
        let mut buf = [0u8; 16];
        let (n, local, remote) = c.receive_into(&mut buf).await.unwrap();
        let errors = (
            // Not one of our addresses, not our port.
            c.send(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), 0), b4(9000), b"x").await,
            c.send(SocketAddr::new(IpAddr::V4(A4), port + 1), b4(9000), b"x").await,
        );
        ((buf[..n].to_vec(), local, remote), port, errors)
    });
    sim.run_until(|| served.done(), None);
    let from_a = SocketAddr::new(IpAddr::V4(A4), local_port);
    assert_eq!(served.take(), (9, b4(9000), from_a), "the full length, though 4 bytes were kept");
    assert_eq!(reply, (b"trun".to_vec(), from_a, b4(9000)));
    assert_eq!(errors, (Err(NetError::InvalidAddress), Err(NetError::InvalidAddress)));
}

#[test]
fn unconnected_udp_answers_a_broadcast_from_its_own_address() {
    let mut sim = Sim::new(STATIC_V4.0, STATIC_V4.1);
    let (a, b) = (sim.a(), sim.b());
    let mut server = UdpSocket::bind(&b, 5683).unwrap();
    let served = sim.spawn(async move {
        let mut buf = [0u8; 16];
        let (len, local, remote) = server.receive_into(&mut buf).await.unwrap();
        // `local` is where the datagram went (the subnet's broadcast address): no answer can come from there, so
        // the stack picks the source.
        server.send(local, remote, &buf[..len]).await.unwrap();
        local
    });
    let subnet_broadcast = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 255)), 5683);
    let (reply, from) = sim.run(async move {
        let mut c = UdpSocket::bind(&a, 0).unwrap();
        let unspecified = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        c.send(unspecified, subnet_broadcast, b"who is there").await.unwrap();
        let mut buf = [0u8; 16];
        let (n, _, from) = c.receive_into(&mut buf).await.unwrap();
        (buf[..n].to_vec(), from)
    });
    sim.run_until(|| served.done(), None);
    assert_eq!(served.take(), subnet_broadcast);
    assert_eq!((reply, from), (b"who is there".to_vec(), b4(5683)));
}
