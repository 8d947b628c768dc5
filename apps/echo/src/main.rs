//! `echo`: TCP echo and UDP echo on port 7 (RFC 862), on the first vif. Each TCP connection echoes until the peer
//! closes its side, then closes gracefully; many connections at once. For throughput measurements also TCP
//! discard on port 9 (reads and drops) and a zero source on port 19 (writes zeros until the peer closes), on
//! port 11 ("systat") the metrics' JSON document on one line (the runtime's profile, the vif counters...), for
//! `make bench`, and the stats endpoint (`sirocco::stats`: `/metrics`, `/stats`, the live page) on port 9100.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use sirocco::net::{self, TcpListener, TcpStream, UdpSocket};
use sirocco::{Either, ErrorContext};

async fn echo_tcp(mut s: TcpStream) {
    let peer = s.peer_addr();
    let mut buf = vec![0u8; 16384];
    let mut total = 0u64;
    let result = async {
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).await?;
            total += n as u64;
        }
        s.close().await
    }
    .await;
    match result {
        Ok(()) => sirocco::log::info!("echo: {peer:?}: {total} bytes echoed, closed"),
        Err(e) => sirocco::log::warn!("echo: {peer:?}: {e} after {total} bytes"),
    }
}

async fn discard(mut s: TcpStream) {
    let mut buf = vec![0u8; 16384];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
    let _ = s.close().await;
}

async fn source(mut s: TcpStream) {
    let zeros = vec![0u8; 16384];
    while s.write_all(&zeros).await.is_ok() {}
}

async fn systat(mut s: TcpStream) {
    let mut line = sirocco::metrics::json();
    line.push('\n');
    if s.write_all(line.as_bytes()).await.is_ok() {
        let _ = s.close().await;
    }
}

async fn serve_port(net: net::Net, port: u16, kind: u8) {
    let mut listener = match TcpListener::bind(&net, port, 4) {
        Ok(l) => l,
        Err(e) => return sirocco::log::error!("echo: tcp port {port}: {e}"),
    };
    loop {
        let s = listener.accept().await;
        match kind {
            0 => sirocco::spawn(discard(s)),
            1 => sirocco::spawn(source(s)),
            _ => sirocco::spawn(systat(s)),
        };
    }
}

async fn echo_udp(mut s: UdpSocket) {
    let mut buf = vec![0u8; 65536];
    loop {
        match s.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if let Err(e) = s.send_to(&buf[..n], from).await {
                    sirocco::log::warn!("echo: udp reply to {from}: {e}");
                }
            }
            Err(e) => sirocco::log::warn!("echo: udp: {e}"),
        }
    }
}

#[sirocco::main]
fn main(env: &sirocco::Env) -> Result<sirocco::Exit, sirocco::Error> {
    let net = net::default()?;
    // `tcpbuf=BYTES`: TCP buffers (and so the window) per connection, for throughput experiments.
    if let Some(bytes) = env.cmdline.get("tcpbuf").and_then(|v| v.parse::<usize>().ok()) {
        let mut stack = net.lock();
        let options = stack.socket_options();
        stack.set_socket_options(net::SocketOptions { tcp_rx_buffer: bytes, tcp_tx_buffer: bytes, ..options });
    }
    sirocco::block_on(async move {
        let addr = net.wait_ipv4().await;
        let udp = UdpSocket::bind(&net, 7).context("binding UDP port 7")?;
        sirocco::spawn(echo_udp(udp));
        sirocco::spawn(serve_port(net.clone(), 9, 0));
        sirocco::spawn(serve_port(net.clone(), 19, 1));
        sirocco::spawn(serve_port(net.clone(), 11, 2));
        sirocco::stats::serve(&net, 9100).context("serving the stats endpoint on port 9100")?;
        let mut listener = TcpListener::bind(&net, 7, 8).context("listening on TCP port 7")?;
        sirocco::println!(
            "echo: listening on {addr} port 7 (TCP and UDP), discard on 9, zero source on 19, stats on 9100"
        );
        loop {
            match sirocco::select(listener.accept(), sirocco::shutdown::requested()).await {
                Either::Left(stream) => {
                    sirocco::spawn(echo_tcp(stream));
                }
                Either::Right(request) => return Ok(request.exit()),
            }
        }
    })
}
