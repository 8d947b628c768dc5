//! A running test's data: its streams, each counted, driven by the test's task beside its control connection,
//! and the test's clock (the omitted start, the deadline, the progress watchdog).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::convert::Infallible;
use core::future::{poll_fn, Future};
use core::net::SocketAddr;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;

use sirocco::net::iperf3::{
    self, udp, Control, CpuUtil, Error as TestError, Event, Phase, ServerResults, StreamResult, TestParams,
};
use sirocco::net::{NetError, TcpStream, UdpSocket};
use sirocco::profile::Profile;
use sirocco::sync::Signal;
use sirocco::{Either, Instant};

use crate::{feed, send};

/// A running test in which neither data nor control messages moved for this long is abandoned (iperf3's server
/// waits as long for data before giving up).
const NO_PROGRESS: Duration = Duration::from_secs(120);
/// Beyond `-t` and `-O`, how long a timed test may run before it is abandoned (iperf3's server allows the same).
const GRACE: Duration = Duration::from_secs(40);
/// Most bytes one read of a receiving TCP stream takes.
const READ_CHUNK: usize = 32 * 1024;
/// Most bytes one write of a sending TCP stream offers (a longer block is written in pieces).
const WRITE_CHUNK: u64 = 64 * 1024;
/// Room for one received UDP datagram (a test's datagrams are at most `iperf3::MAX_UDP_BLOCK_LEN`).
const UDP_BUFFER: usize = 2048;

/// A test's streams, once all are connected.
pub enum Streams {
    /// TCP connections, in the order they connected.
    Tcp(Vec<TcpStream>),
    /// The UDP socket on port 5201 and each stream's client address, in the order they opened.
    Udp(UdpSocket, Vec<SocketAddr>),
}

/// What one stream moved so far (its packet figures only for UDP).
#[derive(Default)]
struct Tally {
    bytes: AtomicU64,
    packets: AtomicU64,
    lost: AtomicU64,
    jitter_bits: AtomicU64,
}

type Task = Pin<Box<dyn Future<Output = Result<(), NetError>> + Send>>;

/// A test whose data flows.
pub struct Running {
    params: TestParams,
    tallies: Arc<Vec<Tally>>,
    /// The futures that move the data: one per TCP stream, one for all of a UDP test's.
    tasks: Vec<Option<Task>>,
    /// Counting starts here: the end of the omitted start (`-O`), until which `baseline` is not yet taken.
    counted_from: Instant,
    baseline: Option<Vec<u64>>,
    /// `-t` + `-O` + grace, for a timed test.
    deadline: Option<Instant>,
    last_total: u64,
    last_progress: Instant,
    profile: Profile,
}

impl Running {
    pub fn start(params: TestParams, streams: Streams) -> Running {
        let started = Instant::now();
        let n = params.streams() as usize;
        let tallies: Arc<Vec<Tally>> = Arc::new((0..n).map(|_| Tally::default()).collect());
        let tasks: Vec<Option<Task>> = match streams {
            Streams::Tcp(streams) => streams
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let task: Task = if params.server_sends(i as u32) {
                        Box::pin(send_tcp(s, tallies.clone(), i, params.block_len, params.rate_bps, started))
                    } else {
                        Box::pin(receive_tcp(s, tallies.clone(), i))
                    };
                    Some(task)
                })
                .collect(),
            Streams::Udp(socket, peers) => {
                vec![Some(Box::pin(run_udp(socket, peers, params.clone(), tallies.clone(), started)) as Task)]
            }
        };
        let omit = Duration::from_secs(params.omit_s);
        let deadline =
            (params.duration_s != 0).then(|| started.after(Duration::from_secs(params.duration_s) + omit + GRACE));
        Running {
            tallies,
            tasks,
            counted_from: started.after(omit),
            baseline: (params.omit_s == 0).then(|| vec![0; n]),
            deadline,
            last_total: 0,
            last_progress: started,
            profile: Profile::now(),
            params,
        }
    }

    /// The next control event, while driving the streams and the clock; `terminate` (the domain shutting down)
    /// ends the test with `SERVER_TERMINATE`.
    pub async fn next_event(
        &mut self,
        ctl: &mut TcpStream,
        control: &mut Control,
        buf: &mut [u8],
        terminate: &Signal<()>,
    ) -> Event {
        loop {
            if let Some(e) = control.next_event() {
                return e;
            }
            send(ctl, control).await;
            let tick = self.next_tick();
            let data = poll_fn(|cx| self.poll_tasks(cx));
            let clock = sirocco::select(sirocco::sleep_until(tick), terminate.wait());
            let next = sirocco::select(sirocco::select(ctl.read(buf), data), clock).await;
            match next {
                Either::Left(Either::Left(read)) => {
                    self.last_progress = Instant::now();
                    feed(control, read, buf);
                }
                Either::Left(Either::Right(never)) => match never {},
                Either::Right(Either::Left(())) => {
                    if let Some(e) = self.on_tick(control.phase()) {
                        return Event::Failed(control.abort(e));
                    }
                }
                Either::Right(Either::Right(())) => return Event::Failed(control.abort(TestError::ServerTerminated)),
            }
        }
    }

    /// Polls every task still going; never completes (a task that ends is logged and left out).
    fn poll_tasks(&mut self, cx: &mut Context<'_>) -> Poll<Infallible> {
        let udp = self.params.protocol == iperf3::Protocol::Udp;
        for (i, slot) in self.tasks.iter_mut().enumerate() {
            if let Some(task) = slot {
                if let Poll::Ready(end) = task.as_mut().poll(cx) {
                    let what = if udp {
                        "the UDP streams".into()
                    } else {
                        alloc::format!("stream {}", iperf3::stream_id(i as u32))
                    };
                    match end {
                        Ok(()) => sirocco::log::info!("iperf: {what} closed by the client"),
                        Err(e) => sirocco::log::warn!("iperf: {what}: {e}"),
                    }
                    *slot = None;
                }
            }
        }
        Poll::Pending
    }

    /// When the clock next needs looking at: the end of the omitted start, else a second from now.
    fn next_tick(&self) -> Instant {
        let soon = Instant::now().after(Duration::from_secs(1));
        if self.baseline.is_none() {
            soon.min(self.counted_from)
        } else {
            soon
        }
    }

    /// The omitted start's end, the watchdog and the deadline.
    fn on_tick(&mut self, phase: Phase) -> Option<TestError> {
        let now = Instant::now();
        let counts: Vec<u64> = self.tallies.iter().map(|t| t.bytes.load(Ordering::Relaxed)).collect();
        if self.baseline.is_none() && now >= self.counted_from {
            self.counted_from = now;
            self.baseline = Some(counts.clone());
        }
        let total: u64 = counts.iter().sum();
        if total != self.last_total {
            self.last_total = total;
            self.last_progress = now;
        }
        let silent = now >= self.last_progress.after(NO_PROGRESS);
        let late = self.deadline.is_some_and(|d| now >= d);
        (silent || late).then_some(TestError::TimedOut { phase })
    }

    /// Stops the streams (dropping them closes them) and counts.
    pub fn finish(mut self) -> ServerResults {
        let end = Instant::now();
        self.tasks.clear();
        let seconds = end.as_nanos().saturating_sub(self.counted_from.as_nanos()) as f64 / 1e9;
        let streams = self
            .tallies
            .iter()
            .enumerate()
            .map(|(i, t)| StreamResult {
                id: iperf3::stream_id(i as u32),
                bytes: match &self.baseline {
                    Some(base) => t.bytes.load(Ordering::Relaxed).saturating_sub(base[i]),
                    None => 0,
                },
                seconds,
                jitter_s: f64::from_bits(t.jitter_bits.load(Ordering::Relaxed)),
                errors: t.lost.load(Ordering::Relaxed),
                packets: t.packets.load(Ordering::Relaxed),
            })
            .collect();
        let now = Profile::now();
        let up = now.uptime_ns.saturating_sub(self.profile.uptime_ns).max(1) as f64;
        let idle = now.idle_ns.saturating_sub(self.profile.idle_ns) as f64;
        let stack = now.net_poll_ns.saturating_sub(self.profile.net_poll_ns) as f64;
        let total = ((up - idle) / up * 100.0).clamp(0.0, 100.0);
        let system = (stack / up * 100.0).clamp(0.0, total);
        ServerResults::new(&self.params, CpuUtil { total, user: total - system, system }, streams)
    }
}

/// A TCP stream the server receives on: counts what arrives until the client closes it.
async fn receive_tcp(mut s: TcpStream, tallies: Arc<Vec<Tally>>, i: usize) -> Result<(), NetError> {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        tallies[i].bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A TCP stream the server sends on: blocks of zeros as fast as TCP takes them, or paced to `rate_bps` (`-b`).
async fn send_tcp(
    mut s: TcpStream,
    tallies: Arc<Vec<Tally>>,
    i: usize,
    block_len: u64,
    rate_bps: u64,
    started: Instant,
) -> Result<(), NetError> {
    let block = vec![0u8; block_len.min(WRITE_CHUNK) as usize];
    loop {
        let sent = tallies[i].bytes.load(Ordering::Relaxed);
        let wait = iperf3::pacing_delay_ns(sent, rate_bps, started.elapsed().as_nanos() as u64);
        if wait > 0 {
            sirocco::sleep(Duration::from_nanos(wait)).await;
            continue;
        }
        let n = s.write(&block).await?;
        tallies[i].bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Microseconds of wall-clock time, as a UDP datagram's time stamp.
fn wall_us() -> u64 {
    sirocco::wall_clock().as_micros() as u64
}

/// All of a UDP test's streams on its one socket: datagrams from each receiving stream's client address counted
/// (bytes, loss, jitter), and each sending stream's datagrams sent at its rate (`-b`, 1 Mbit/s by default), the
/// stream furthest behind first.
async fn run_udp(
    mut socket: UdpSocket,
    peers: Vec<SocketAddr>,
    params: TestParams,
    tallies: Arc<Vec<Tally>>,
    started: Instant,
) -> Result<(), NetError> {
    let n = peers.len();
    let sends: Vec<bool> = (0..n).map(|i| params.server_sends(i as u32)).collect();
    let wide = params.udp_counters_64bit;
    let mut receivers = vec![udp::UdpReceiver::default(); n];
    let mut sent = vec![(0u64, 0u64); n]; // (bytes, datagrams) per stream
    let mut datagram = vec![0u8; params.block_len as usize];
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let elapsed = started.elapsed().as_nanos() as u64;
        let due = (0..n)
            .filter(|&i| sends[i])
            .map(|i| (iperf3::pacing_delay_ns(sent[i].0, params.rate_bps, elapsed), i))
            .min();
        let wake = match due {
            Some((delay, _)) => Instant::now().after(Duration::from_nanos(delay)),
            None => Instant::now().after(Duration::from_secs(3600)),
        };
        // Receiving first: a datagram waiting is taken before a send that is due.
        let next = sirocco::select(socket.recv_from(&mut buf), sirocco::sleep_until(wake)).await;
        match next {
            Either::Left(got) => {
                let (len, from) = got?;
                if let Some(i) = peers.iter().position(|p| *p == from).filter(|&i| !sends[i]) {
                    let r = &mut receivers[i];
                    r.datagram(&buf[..len], wall_us(), wide);
                    let t = &tallies[i];
                    t.bytes.store(r.bytes, Ordering::Relaxed);
                    t.packets.store(r.packets, Ordering::Relaxed);
                    t.lost.store(r.lost, Ordering::Relaxed);
                    t.jitter_bits.store(r.jitter_s.to_bits(), Ordering::Relaxed);
                }
            }
            Either::Right(()) => {
                let Some((_, i)) = due else { continue };
                sent[i].1 += 1;
                udp::write_header(&mut datagram, wall_us(), sent[i].1, wide);
                let len = socket.send_to(&datagram, peers[i]).await?;
                sent[i].0 += len as u64;
                tallies[i].bytes.store(sent[i].0, Ordering::Relaxed);
                tallies[i].packets.store(sent[i].1, Ordering::Relaxed);
            }
        }
    }
}
