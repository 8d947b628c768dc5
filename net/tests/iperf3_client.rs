//! Debian's real iperf3 client (3.12) against `sirocco_net::iperf3`'s server side, over loopback: the state
//! machine, the parameters and the results JSON driven the way `apps/iperf` drives them, but with std sockets and
//! a thread per stream, so a real client can judge them without Xen. Needs `iperf3` on PATH, hence ignored by
//! default: `cargo test -p sirocco-net --test iperf3_client -- --ignored` (`apt-get install iperf3` first).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sirocco_net::iperf3::udp::{connect_reply, write_header, UdpReceiver};
use sirocco_net::iperf3::{
    pacing_delay_ns, stream_id, ClientResults, Control, CpuUtil, Error, Event, Protocol, ServerResults, StreamResult,
    TestParams, COOKIE_LEN,
};

/// A test's streams once connected.
enum Streams {
    Tcp(Vec<TcpStream>),
    Udp(UdpSocket, Vec<SocketAddr>),
}

/// What a stream moved: bytes, and for UDP the receiver's figures or the datagrams sent.
#[derive(Default)]
struct Tally {
    bytes: AtomicU64,
    udp: Mutex<(UdpReceiver, u64)>,
}

/// A running test's streams: a thread each (UDP: one receiving thread for all), counting.
struct Running {
    params: TestParams,
    started: Instant,
    stop: Arc<AtomicBool>,
    tallies: Vec<Arc<Tally>>,
    tcp: Vec<TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

impl Running {
    fn start(params: TestParams, streams: Streams) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let n = params.streams() as usize;
        let tallies: Vec<Arc<Tally>> = (0..n).map(|_| Arc::new(Tally::default())).collect();
        let (rate, len, wide) = (params.rate_bps, params.block_len as usize, params.udp_counters_64bit);
        let mut threads = Vec::new();
        let mut tcp = Vec::new();
        match streams {
            Streams::Tcp(streams) => {
                for (i, mut s) in streams.into_iter().enumerate() {
                    tcp.push(s.try_clone().unwrap());
                    let (t, halt, sends) = (tallies[i].clone(), stop.clone(), params.server_sends(i as u32));
                    threads.push(thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        let t0 = Instant::now();
                        while !halt.load(Ordering::Relaxed) {
                            let sent = t.bytes.load(Ordering::Relaxed);
                            let wait = pacing_delay_ns(sent, rate, t0.elapsed().as_nanos() as u64);
                            if sends && wait > 0 {
                                thread::sleep(Duration::from_nanos(wait));
                                continue;
                            }
                            let n = if sends { s.write(&buf) } else { s.read(&mut buf) };
                            match n {
                                Ok(0) | Err(_) => return,
                                Ok(n) => t.bytes.fetch_add(n as u64, Ordering::Relaxed),
                            };
                        }
                    }));
                }
            }
            Streams::Udp(socket, peers) => {
                socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                for i in (0..n).filter(|&i| params.server_sends(i as u32)) {
                    let (t, halt, socket, to) =
                        (tallies[i].clone(), stop.clone(), socket.try_clone().unwrap(), peers[i]);
                    threads.push(thread::spawn(move || {
                        let mut d = vec![0u8; len];
                        let t0 = Instant::now();
                        while !halt.load(Ordering::Relaxed) {
                            let wait =
                                pacing_delay_ns(t.bytes.load(Ordering::Relaxed), rate, t0.elapsed().as_nanos() as u64);
                            if wait > 0 {
                                thread::sleep(Duration::from_nanos(wait.min(50_000_000)));
                                continue;
                            }
                            let packet = {
                                let mut u = t.udp.lock().unwrap();
                                u.1 += 1;
                                u.1
                            };
                            write_header(&mut d, wall_us(), packet, wide);
                            if let Ok(n) = socket.send_to(&d, to) {
                                t.bytes.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        }
                    }));
                }
                let (tallies, halt) = (tallies.clone(), stop.clone());
                threads.push(thread::spawn(move || {
                    let mut buf = [0u8; 2048];
                    while !halt.load(Ordering::Relaxed) {
                        let Ok((len, from)) = socket.recv_from(&mut buf) else { continue };
                        if let Some(i) = peers.iter().position(|p| *p == from) {
                            let mut u = tallies[i].udp.lock().unwrap();
                            u.0.datagram(&buf[..len], wall_us(), wide);
                            tallies[i].bytes.store(u.0.bytes, Ordering::Relaxed);
                        }
                    }
                }));
            }
        }
        Running { params, started: Instant::now(), stop, tallies, tcp, threads }
    }

    fn finish(self) -> ServerResults {
        let seconds = self.started.elapsed().as_secs_f64();
        self.stop.store(true, Ordering::Relaxed);
        for s in &self.tcp {
            let _ = s.shutdown(Shutdown::Both);
        }
        for t in self.threads {
            t.join().unwrap();
        }
        let results = (0..self.tallies.len())
            .map(|i| {
                let t = &self.tallies[i];
                let (r, sent) = *t.udp.lock().unwrap();
                let sends = self.params.server_sends(i as u32);
                StreamResult {
                    id: stream_id(i as u32),
                    bytes: t.bytes.load(Ordering::Relaxed),
                    seconds,
                    jitter_s: r.jitter_s,
                    errors: r.lost,
                    packets: if sends { sent } else { r.packets },
                }
            })
            .collect();
        ServerResults::new(&self.params, CpuUtil { total: 1.0, user: 0.25, system: 0.75 }, results)
    }
}

fn wall_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

/// One test on `listener` (and, for UDP, the UDP port of the same number), as `apps/iperf` runs it (minus the
/// omitted start and the busy answer).
fn serve_test(listener: &TcpListener) -> Result<Option<ClientResults>, Error> {
    let (mut ctl, _) = listener.accept().unwrap();
    ctl.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut control = Control::new();
    let mut running = None;
    let mut theirs = None;
    let mut buf = [0u8; 4096];
    loop {
        while let Some(event) = control.next_event() {
            match event {
                Event::CreateStreams(params) => {
                    let streams = if params.protocol == Protocol::Udp {
                        let socket = UdpSocket::bind(listener.local_addr().unwrap()).unwrap();
                        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        ctl.write_all(&control.take_output()).unwrap();
                        let mut peers = Vec::new();
                        while peers.len() < params.streams() as usize {
                            let mut d = [0u8; 64];
                            let (n, from) = socket.recv_from(&mut d).unwrap();
                            let reply = connect_reply(&d[..n]).expect("a stream's opening datagram");
                            socket.send_to(&reply, from).unwrap();
                            peers.push(from);
                        }
                        Streams::Udp(socket, peers)
                    } else {
                        ctl.write_all(&control.take_output()).unwrap();
                        let cookie = control.cookie().unwrap();
                        let streams = (0..params.streams())
                            .map(|_| {
                                let (mut s, _) = listener.accept().unwrap();
                                let mut c = [0u8; COOKIE_LEN];
                                s.read_exact(&mut c).unwrap();
                                assert!(cookie.matches(&c), "a stream with another cookie");
                                s
                            })
                            .collect();
                        Streams::Tcp(streams)
                    };
                    control.streams_connected();
                    running = Some(Running::start(params, streams));
                }
                Event::TestEnd => {
                    let results = running.take().expect("TEST_END while running").finish();
                    control.end_test(&results);
                }
                Event::ClientResults(r) => theirs = Some(r?),
                Event::Done => {
                    ctl.write_all(&control.take_output()).unwrap();
                    return Ok(theirs);
                }
                Event::Failed(e) => {
                    let _ = ctl.write_all(&control.take_output());
                    return Err(e);
                }
            }
        }
        if ctl.write_all(&control.take_output()).is_err() {
            control.peer_closed();
        }
        match ctl.read(&mut buf) {
            Ok(0) | Err(_) => control.peer_closed(),
            Ok(n) => control.receive(&buf[..n]),
        }
    }
}

fn iperf3(port: u16, args: &[&str]) -> Output {
    Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("iperf3 on PATH (apt-get install iperf3)")
}

/// A number after `"key":` in `section` of iperf3's JSON output.
fn number(json: &str, section: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{section}\":"))?;
    let rest = &json[at..];
    let at = rest.find(&format!("\"{key}\":"))? + key.len() + 3;
    let digits: String =
        rest[at..].trim_start().chars().take_while(|c| c.is_ascii_digit() || ".e+-".contains(*c)).collect();
    digits.parse().ok()
}

#[test]
#[ignore = "needs Debian's iperf3 on PATH: cargo test -p sirocco-net --test iperf3_client -- --ignored"]
fn real_iperf3_client_measures_the_server_side() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let runs: &[&[&str]] = &[
        &["-t", "1"],
        &["-t", "1", "-R"],
        &["-t", "1", "-P", "3"],
        &["-t", "1", "--bidir"],
        &["-t", "1", "-R", "-P", "2", "-b", "100M"],
        &["-n", "64M", "-l", "64K"],
        &["-k", "200"],
        &["-u", "-l", "1400", "-b", "20M", "-t", "1"],
        &["-u", "-l", "1400", "-b", "20M", "-t", "1", "-R", "-P", "2", "--udp-counters-64bit"],
        &["-u", "-l", "1400", "-t", "1", "--bidir"],
    ];
    let count = runs.len() + 1;
    let server = thread::spawn(move || (0..count).map(|_| serve_test(&listener)).collect::<Vec<_>>());
    for args in runs {
        let out = iperf3(port, &[&["-J"], *args].concat());
        let json = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "iperf3 {args:?}: {json}");
        assert!(!json.contains("\"error\""), "iperf3 {args:?}: {json}");
        let received = number(&json, "sum_received", "bytes").unwrap_or(0.0);
        let sent = number(&json, "sum_sent", "bytes").unwrap_or(0.0);
        println!("iperf3 {args:?}: sent {sent} bytes, received {received}");
        assert!(received > 0.0 && sent > 0.0, "iperf3 {args:?}: {json}");
        if args.contains(&"100M") {
            // Paced to 100 Mbit/s per stream, two streams: at most ~25 MB in a second.
            assert!(received < 40e6, "pacing: {received} bytes in a second");
        }
        if args.contains(&"-u") {
            let lost = number(&json, "sum_received", "lost_percent").unwrap_or(100.0);
            println!("  lost {lost}%, jitter {:?} ms", number(&json, "sum_received", "jitter_ms"));
            assert!(lost < 50.0, "iperf3 {args:?}: {json}");
        }
    }
    // A UDP datagram bigger than one Ethernet frame is refused with iperf3's "block size invalid".
    let out = iperf3(port, &["-u", "-l", "32768", "-t", "1"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && said.contains("block size invalid"), "{said}");

    let outcomes = server.join().unwrap();
    for (args, outcome) in runs.iter().zip(&outcomes) {
        let theirs = outcome.as_ref().unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(theirs.as_ref().is_some_and(|r| r.total_bytes() > 0), "{args:?}: {theirs:?}");
    }
    assert!(matches!(outcomes.last(), Some(Err(Error::Refused { code: 20, .. }))), "{:?}", outcomes.last());
}
