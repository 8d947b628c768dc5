//! `iperf`: an iperf3 server on port 5201, so that an unmodified `iperf3 -c GUEST` measures the guest: TCP or UDP
//! (`-u`), data to it (the default), from it (`-R`) or both ways (`--bidir`), over `-P N` parallel streams, for
//! `-t` seconds or `-n` bytes or `-k` blocks, with `-O` omitted seconds and `-b` pacing of what it sends. One test
//! at a time, as iperf3's own server: another client meanwhile gets `ACCESS_DENIED` ("the server is busy running
//! a test"); tests follow one another for the domain's life, and a client that vanishes mid-test only ends its own
//! test. `tcpbuf=BYTES` on the command line sets every TCP connection's buffers (and so its window).
//!
//! The protocol is `sirocco::net::iperf3` (host-tested, no I/O); this app moves its bytes and the streams' data
//! (`streams.rs`). Every TCP connection arrives on port 5201: the first while idle becomes a test's control
//! connection; the others give their first 37 bytes (a cookie) and, while that test is collecting its streams, go
//! to it (kept if the cookie is the test's, in the order they connected, which is how both sides number the
//! streams), else are answered `ACCESS_DENIED`. A UDP test's streams are datagrams on UDP port 5201, told apart by
//! the client's port. Each test's streams run inside the test's own task, counted per stream.
#![no_std]
#![no_main]

extern crate alloc;

mod streams;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use sirocco::net::iperf3::{
    self, udp, ClientResults, Control, Error as TestError, Event, Protocol, ServerResults, State, TestParams,
    COOKIE_LEN, PORT,
};
use sirocco::net::{self, NetError, TcpListener, TcpStream, UdpSocket};
use sirocco::sync::{Channel, Signal, TrySendError};
use sirocco::{Either, ErrorContext, Instant};

use streams::{Running, Streams};

/// How long the client may be silent while setting up a test or exchanging results.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection that is not a test's control connection has to send its cookie.
const COOKIE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client that arrives while a test holds the server waits for it to end (its client's `IPERF_DONE`
/// may still be on its way) before it is turned away.
const TAKEOVER_WAIT: Duration = Duration::from_secs(2);
/// How long every stream of a test has to connect once `CREATE_STREAMS` is sent.
const STREAMS_TIMEOUT: Duration = Duration::from_secs(30);

/// A test holds the server (its control connection arrived first, while idle).
static BUSY: AtomicBool = AtomicBool::new(false);
/// The test is collecting TCP streams: connections that carry a cookie go to it.
static COLLECTING: AtomicBool = AtomicBool::new(false);
/// Connections for the test, with their cookie and the order they were accepted in.
static ARRIVALS: Channel<Arrival, 16> = Channel::new();
/// The domain is shutting down: a running test tells its client (`SERVER_TERMINATE`).
static TERMINATE: Signal<()> = Signal::new();

struct Arrival {
    order: u64,
    stream: TcpStream,
    cookie: [u8; COOKIE_LEN],
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
        let mut listener = TcpListener::bind(&net, PORT, 16).context("listening on TCP port 5201")?;
        sirocco::println!("iperf: iperf3 server on {addr} port {PORT} (TCP and UDP, one test at a time)");
        let mut order = 0u64;
        loop {
            match sirocco::select(listener.accept(), sirocco::shutdown::requested()).await {
                Either::Left(stream) => {
                    order += 1;
                    if BUSY.swap(true, Ordering::AcqRel) {
                        sirocco::spawn(arrival(net.clone(), order, stream));
                    } else {
                        sirocco::spawn(test(net.clone(), stream, None));
                    }
                }
                Either::Right(request) => {
                    if BUSY.load(Ordering::Acquire) {
                        // Give a running test a moment to tell its client.
                        TERMINATE.signal(());
                        for _ in 0..40 {
                            if !BUSY.load(Ordering::Acquire) {
                                break;
                            }
                            sirocco::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    return Ok(request.exit());
                }
            }
        }
    })
}

/// A connection while a test holds the server: a stream of that test, the next client (if the test ends within
/// [`TAKEOVER_WAIT`]), or another client to turn away.
async fn arrival(net: net::Net, order: u64, mut stream: TcpStream) {
    let mut cookie = [0u8; COOKIE_LEN];
    let read = sirocco::select(read_exact(&mut stream, &mut cookie), sirocco::sleep(COOKIE_TIMEOUT)).await;
    if !matches!(read, Either::Left(true)) {
        return deny(stream).await;
    }
    if COLLECTING.load(Ordering::Acquire) {
        match ARRIVALS.try_send(Arrival { order, stream, cookie }) {
            Ok(()) => return,
            Err(TrySendError::Full(a)) => return deny(a.stream).await,
        }
    }
    let until = Instant::now().after(TAKEOVER_WAIT);
    while Instant::now() < until {
        if BUSY.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return test(net, stream, Some(cookie)).await;
        }
        sirocco::sleep(Duration::from_millis(10)).await;
    }
    deny(stream).await;
}

/// Turns a connection away as a busy iperf3 server does: the one byte `ACCESS_DENIED`, then close.
async fn deny(mut stream: TcpStream) {
    sirocco::log::info!("iperf: {}: busy with another test (or not this test's cookie): ACCESS_DENIED", peer(&stream));
    let answer = async {
        stream.write_all(&[State::AccessDenied.byte()]).await?;
        stream.flush().await
    };
    let _ = sirocco::select(answer, sirocco::sleep(Duration::from_secs(5))).await;
}

/// One test, from its control connection (whose cookie may have been read already): runs it, logs how it ended,
/// and frees the server.
async fn test(net: net::Net, mut ctl: TcpStream, cookie: Option<[u8; COOKIE_LEN]>) {
    let who = peer(&ctl);
    TERMINATE.reset();
    let mut control = Control::new();
    if let Some(cookie) = cookie {
        control.receive(&cookie);
    }
    let outcome = run(&net, &mut ctl, &mut control, &who).await;
    COLLECTING.store(false, Ordering::Release);
    while let Ok(late) = ARRIVALS.try_receive() {
        sirocco::spawn(deny(late.stream));
    }
    match outcome {
        Ok(line) => sirocco::log::info!("iperf: {who}: {line}"),
        Err(e) => match e.server_error() {
            Some((code, errno)) => sirocco::log::warn!("iperf: {who}: {e} (sent SERVER_ERROR {code}/{errno})"),
            None => sirocco::log::warn!("iperf: {who}: {e}"),
        },
    }
    // Whatever the client is owed (a SERVER_ERROR, SERVER_TERMINATE) goes out before the connection is dropped.
    let last = async {
        send(&mut ctl, &mut control).await;
        ctl.flush().await
    };
    let _ = sirocco::select(last, sirocco::sleep(Duration::from_secs(5))).await;
    BUSY.store(false, Ordering::Release);
}

/// The test's steps; `Ok` with a summary for the log once the client said `IPERF_DONE`.
async fn run(net: &net::Net, ctl: &mut TcpStream, control: &mut Control, who: &str) -> Result<String, TestError> {
    let mut buf = vec![0u8; 4096];
    let mut running: Option<Running> = None;
    let mut summary = String::new();
    loop {
        let event = match running.as_mut() {
            None => next_event(ctl, control, &mut buf, SETUP_TIMEOUT).await,
            Some(r) => r.next_event(ctl, control, &mut buf, &TERMINATE).await,
        };
        match event {
            Event::CreateStreams(params) => {
                sirocco::log::info!("iperf: {who}: test: {params}");
                let streams = match params.protocol {
                    Protocol::Udp => {
                        // Bound before CREATE_STREAMS goes out: the client's first datagram follows at once.
                        let socket = bind_udp(net).await.map_err(|e| control.abort(e))?;
                        send(ctl, control).await;
                        collect_udp(ctl, control, &mut buf, &params, socket).await?
                    }
                    _ => {
                        // Streams may arrive as soon as CREATE_STREAMS is out.
                        COLLECTING.store(true, Ordering::Release);
                        send(ctl, control).await;
                        let streams = collect_tcp(ctl, control, &mut buf, &params).await;
                        COLLECTING.store(false, Ordering::Release);
                        Streams::Tcp(streams?)
                    }
                };
                control.streams_connected();
                running = Some(Running::start(params, streams));
            }
            Event::TestEnd => {
                let Some(r) = running.take() else { return Err(out_of_turn(control, "TEST_END")) };
                let results = r.finish();
                summary = results_line(&results);
                control.end_test(&results);
            }
            Event::ClientResults(Ok(theirs)) => summary = format!("{summary}; {}", client_line(&theirs)),
            Event::ClientResults(Err(e)) => sirocco::log::warn!("iperf: {who}: {e} (results sent anyway)"),
            Event::Done => {
                send(ctl, control).await;
                return Ok(summary);
            }
            Event::Failed(e) => return Err(e),
        }
    }
}

/// An event the protocol's state machine does not give at this point (its host tests say it cannot happen):
/// the test is ended rather than the domain.
fn out_of_turn(control: &mut Control, what: &str) -> TestError {
    sirocco::log::error!("iperf: {what} out of turn during {} (a bug); ending the test", control.phase());
    control.abort(TestError::ServerTerminated)
}

/// The next event from the control connection, waiting at most `limit` for each read.
async fn next_event(ctl: &mut TcpStream, control: &mut Control, buf: &mut [u8], limit: Duration) -> Event {
    loop {
        if let Some(e) = control.next_event() {
            return e;
        }
        send(ctl, control).await;
        let read = sirocco::select(ctl.read(buf), sirocco::sleep(limit)).await;
        match read {
            Either::Left(read) => feed(control, read, buf),
            Either::Right(()) => {
                let phase = control.phase();
                return Event::Failed(control.abort(TestError::TimedOut { phase }));
            }
        }
    }
}

/// Hands the result of a read of the control connection to `control`.
fn feed(control: &mut Control, read: Result<usize, NetError>, buf: &[u8]) {
    match read {
        Ok(0) | Err(_) => control.peer_closed(),
        Ok(n) => control.receive(&buf[..n]),
    }
}

/// Writes what `control` has queued; a connection that cannot take it is as good as closed.
async fn send(ctl: &mut TcpStream, control: &mut Control) {
    let out = control.take_output();
    if !out.is_empty() && ctl.write_all(&out).await.is_err() {
        control.peer_closed();
    }
}

/// A control event while the streams are being collected: only a failure can come.
fn collecting_event(control: &mut Control) -> Result<(), TestError> {
    match control.next_event() {
        None => Ok(()),
        Some(Event::Failed(e)) => Err(e),
        Some(_) => Err(out_of_turn(control, "an event")),
    }
}

/// The test's TCP streams, in the order they connected, once all have.
async fn collect_tcp(
    ctl: &mut TcpStream,
    control: &mut Control,
    buf: &mut [u8],
    params: &TestParams,
) -> Result<Vec<TcpStream>, TestError> {
    let wanted = params.streams();
    let cookie = control.cookie().ok_or_else(|| out_of_turn(control, "CREATE_STREAMS"))?;
    let mut got: Vec<(u64, TcpStream)> = Vec::new();
    let deadline = Instant::now().after(STREAMS_TIMEOUT);
    while got.len() < wanted as usize {
        collecting_event(control)?;
        send(ctl, control).await;
        let arrived = sirocco::select(ARRIVALS.receive(), ctl.read(buf));
        let next = sirocco::select(arrived, sirocco::sleep_until(deadline)).await;
        match next {
            Either::Left(Either::Left(a)) if cookie.matches(&a.cookie) => got.push((a.order, a.stream)),
            Either::Left(Either::Left(a)) => {
                sirocco::spawn(deny(a.stream));
            }
            Either::Left(Either::Right(read)) => feed(control, read, buf),
            Either::Right(()) => {
                let connected = got.len() as u32;
                return Err(control.abort(TestError::StreamsMissing { connected, wanted }));
            }
        }
    }
    got.sort_by_key(|(order, _)| *order);
    Ok(got.into_iter().map(|(_, s)| s).collect())
}

/// UDP port 5201 for a UDP test. The previous UDP test's socket may still be draining its last datagrams: a few
/// tries over a second.
async fn bind_udp(net: &net::Net) -> Result<UdpSocket, TestError> {
    let mut tries = 0;
    loop {
        match UdpSocket::bind(net, PORT) {
            Ok(socket) => return Ok(socket),
            Err(NetError::AddressInUse) if tries < 20 => {
                tries += 1;
                sirocco::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                let reason = format!("UDP port {PORT}: {e}");
                return Err(TestError::Refused { code: iperf3::code::STREAM_LISTEN, reason });
            }
        }
    }
}

/// The test's UDP streams: each client port that sent the opening datagram, in order, answered.
async fn collect_udp(
    ctl: &mut TcpStream,
    control: &mut Control,
    buf: &mut [u8],
    params: &TestParams,
    mut socket: UdpSocket,
) -> Result<Streams, TestError> {
    let wanted = params.streams() as usize;
    let mut peers: Vec<SocketAddr> = Vec::new();
    let mut datagram = vec![0u8; 2048];
    let deadline = Instant::now().after(STREAMS_TIMEOUT);
    while peers.len() < wanted {
        collecting_event(control)?;
        send(ctl, control).await;
        let arrived = sirocco::select(socket.recv_from(&mut datagram), ctl.read(buf));
        let next = sirocco::select(arrived, sirocco::sleep_until(deadline)).await;
        match next {
            Either::Left(Either::Left(Ok((n, from)))) => match udp::connect_reply(&datagram[..n]) {
                Some(reply) => {
                    // A repeated opening (its answer lost) is answered again, not counted again.
                    if !peers.contains(&from) {
                        peers.push(from);
                    }
                    if let Err(e) = socket.send_to(&reply, from).await {
                        sirocco::log::warn!("iperf: UDP stream from {from}: answering its opening: {e}");
                    }
                }
                None => sirocco::log::info!("iperf: {n}-byte UDP datagram from {from} before its stream opened"),
            },
            Either::Left(Either::Left(Err(e))) => {
                let reason = format!("UDP port {PORT}: {e}");
                return Err(control.abort(TestError::Refused { code: iperf3::code::STREAM_ACCEPT, reason }));
            }
            Either::Left(Either::Right(read)) => feed(control, read, buf),
            Either::Right(()) => {
                let connected = peers.len() as u32;
                return Err(control.abort(TestError::StreamsMissing { connected, wanted: wanted as u32 }));
            }
        }
    }
    Ok(Streams::Udp(socket, peers))
}

/// Reads exactly `buf.len()` bytes; false if the connection ends or fails first.
async fn read_exact(s: &mut TcpStream, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    true
}

fn peer(s: &TcpStream) -> String {
    s.peer_addr().map_or_else(|| String::from("?"), |a| format!("{a}"))
}

/// Our side's figures, for the log.
fn results_line(r: &ServerResults) -> String {
    let bytes = r.total_bytes();
    let seconds = r.streams.first().map_or(0.0, |s| s.seconds);
    let mbit = if seconds > 0.0 { bytes as f64 * 8.0 / seconds / 1e6 } else { 0.0 };
    let mut line = format!(
        "done: {bytes} bytes over {} stream(s) in {seconds:.2} s here ({mbit:.1} Mbit/s), CPU {:.0}% busy",
        r.streams.len(),
        r.cpu.total
    );
    let lost: u64 = r.streams.iter().map(|s| s.errors).sum();
    if lost > 0 {
        line += &format!(", {lost} datagram(s) lost");
    }
    line
}

/// The client's figures, for the log.
fn client_line(c: &ClientResults) -> String {
    format!("the client counted {} bytes", c.total_bytes())
}
