//! Logs: what the logger keeps and where it sends it besides the console.
//!
//! Every record (`log::info!` and friends, from the app, Sirocco or a library) carries its level, its target (the
//! module that logged it) and its time. The command line chooses which are kept and where they go:
//!
//! - `log=info,sirocco_net=debug,sirocco::net=trace`: a default level and levels per target, `env_logger`'s syntax
//!   (a directive covers its module and everything under it, the longest one wins, `off` silences; default
//!   `info`). A bad directive is left out with one warning on the console; the rest applies.
//! - `logring=64K`: the in-memory ring of the last records (64 KiB by default, `0` for none, at most a quarter of
//!   the free heap), which [`recent`] and [`text`] read, e.g. for a `/logs` page.
//! - `syslog=10.0.0.1:514` (or `[fd00::1]:514`, or an address alone for port 514): each record also goes to that
//!   collector as an RFC 5424 message over UDP, `<14>1 2026-12-05T16:42:01.123456Z web-1 httpd 7 sirocco::net -
//!   vif0: reconnected` (facility `user`, or `syslog-facility=local0`..`local7`/`daemon`; severity from the level:
//!   error 3, warn 4, info 6, debug and trace 7; HOSTNAME the domain's name from xenstore, APP-NAME the app's
//!   package name, PROCID the domain id, MSGID the target; the time is `-` while the guest does not know the wall
//!   clock). Sending starts when the app brings the network up ([`crate::net::interfaces`]), through the first
//!   vif; the records logged since boot (those still in the ring) go first.
//!
//! The collector never holds the guest up: the logger only queues a record (32 KiB of them at most) for a task
//! that sends them, and a record that finds the queue full (a slow or absent collector, no network yet) is
//! dropped and counted ([`stats`]); the console has its copy regardless. Records that could feed themselves stay
//! off the collector: those the network stack logs while it polls (it is what carries the datagrams) and those
//! of the sending task go to the console and the ring only. Records still queued when the domain ends are lost.

use crate::net::{Net, NetError, SocketOptions, UdpSocket};
use crate::runtime;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::future::{poll_fn, Future};
use core::net::SocketAddr;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use sirocco_boot::logs as boot;
use sirocco_boot_logic::cmdline::Cmdline;
use sirocco_boot_logic::logging::ring::LogRing;
use sirocco_boot_logic::logging::syslog::{self, Facility, Header, Rfc3339};
use sirocco_boot_logic::logging::{OwnedRecord, Record};

/// The `log=` spec's parts (`sirocco_boot_logic::logging::filter`): [`Cmdline::log_filter`] parses one, [`filter`]
/// is the logger's.
pub use sirocco_boot_logic::logging::filter::{Directive, FilterError, FilterProblem, Lenient, LogFilter};

/// The filter the logger runs with: the command line's `log=`, less any bad directive.
pub fn filter() -> LogFilter<'static> {
    boot::filter()
}

/// Bytes of records waiting for the syslog task.
const QUEUE_BYTES: usize = 32 * 1024;
/// The syslog socket's buffers (send and receive, each): a few dozen datagrams, not the 64 KiB of an app's.
const SOCKET_BUFFER: usize = 16 * 1024;

/// One record of the ring, as [`recent`] gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Time since boot.
    pub uptime: Duration,
    /// Wall-clock time (since the Unix epoch), when the guest knew it.
    pub wall_clock: Option<Duration>,
    /// Its level.
    pub level: log::Level,
    /// Its target: the module that logged it, unless it named another.
    pub target: String,
    /// The message (cut at 1 KiB, ending with `...`; the console has all of it).
    pub message: String,
}

impl LogEntry {
    fn new(r: OwnedRecord) -> Self {
        LogEntry {
            uptime: Duration::from_nanos(r.uptime_ns),
            wall_clock: r.wall_ns.map(Duration::from_nanos),
            level: r.level,
            target: r.target,
            message: r.message,
        }
    }
}

/// One line: the wall clock in RFC 3339 (or `-`), then the console's form,
/// `2026-12-05T16:42:01.123456Z [  12.345678] INFO  sirocco::net: vif0: reconnected`.
impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.wall_clock {
            Some(w) => write!(f, "{} ", Rfc3339(w.as_nanos() as u64))?,
            None => f.write_str("- ")?,
        }
        write!(
            f,
            "[{:4}.{:06}] {:<5} {}: {}",
            self.uptime.as_secs(),
            self.uptime.subsec_micros(),
            self.level,
            self.target,
            self.message
        )
    }
}

/// The records in the ring (`logring=`), oldest first: a copy, so logging meanwhile is fine. Empty when the ring
/// is off.
pub fn recent() -> impl Iterator<Item = LogEntry> {
    boot::recent().into_iter().map(LogEntry::new)
}

/// The records in the ring as text, one line each ([`LogEntry`]'s form): what a `/logs` page serves.
pub fn text() -> String {
    let mut s = String::new();
    for e in recent() {
        let _ = writeln!(s, "{e}");
    }
    s
}

/// What the ring holds and what became of the records meant for the collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// The ring's size, bytes (0: off).
    pub ring_capacity: usize,
    /// Bytes of records in the ring.
    pub ring_bytes: usize,
    /// Records in the ring.
    pub ring_records: usize,
    /// Records the ring forgot to make room for newer ones.
    pub ring_evicted: u64,
    /// The syslog collector (`syslog=`), if any.
    pub syslog: Option<SocketAddr>,
    /// Records waiting to be sent.
    pub syslog_queued: usize,
    /// Datagrams handed to the network stack.
    pub syslog_sent: u64,
    /// Records dropped because the queue was full: the collector or the network is slower than the logging, or
    /// the network is not up.
    pub syslog_dropped: u64,
    /// Records dropped because the network stack refused to send them.
    pub syslog_send_errors: u64,
}

/// The ring's and the syslog queue's counts.
pub fn stats() -> LogStats {
    let ring = boot::ring_stats();
    LogStats {
        ring_capacity: ring.capacity,
        ring_bytes: ring.bytes,
        ring_records: ring.records,
        ring_evicted: ring.evicted,
        syslog: SYSLOG.get().map(|s| s.collector),
        syslog_queued: QUEUE.lock().as_ref().map_or(0, |q| q.ring.len()),
        syslog_sent: SENT.load(Ordering::Relaxed),
        syslog_dropped: DROPPED.load(Ordering::Relaxed),
        syslog_send_errors: SEND_ERRORS.load(Ordering::Relaxed),
    }
}

/// Where records go, from `syslog=`, and the header fields read at start.
struct Syslog {
    collector: SocketAddr,
    facility: Facility,
    hostname: String,
}

/// The domain id for PROCID (`NO_DOMID` until read): read at start and again after a resume in a new domain.
static DOMID: AtomicU32 = AtomicU32::new(NO_DOMID);
const NO_DOMID: u32 = u32::MAX;

/// After a resume in a new domain (`xl restore`, `xl migrate`): the domain id changed; PROCID follows it.
pub(crate) fn resumed() {
    if SYSLOG.get().is_some() {
        let domid = crate::xenstore::read("domid").ok().and_then(|d| d.trim().parse().ok());
        DOMID.store(domid.unwrap_or(NO_DOMID), Ordering::Relaxed);
    }
}

/// The records waiting for the syslog task, and the task waiting for them.
struct Queue {
    ring: LogRing,
    waker: Option<Waker>,
}

static SYSLOG: spin::Once<Syslog> = spin::Once::new();
static QUEUE: spin::Mutex<Option<Queue>> = spin::Mutex::new(None);
static SENDING: AtomicBool = AtomicBool::new(false);
static SENT: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static SEND_ERRORS: AtomicU64 = AtomicU64::new(0);

/// At start of day, once xenstore is up: with `syslog=`, reads the domain's name and id, queues the records
/// logged so far (those in the ring) and has the logger queue every record from now on.
pub(crate) fn init(cmdline: &Cmdline<'static>) {
    let Some(value) = cmdline.get("syslog") else { return };
    let collector = match syslog::parse_collector(value) {
        Ok(a) => a,
        Err(e) => return log::warn!("syslog={e}; logs go to no collector"),
    };
    let facility = match cmdline.get("syslog-facility") {
        None => Facility::User,
        Some(name) => Facility::from_name(name).unwrap_or_else(|| {
            log::warn!("syslog-facility={name:?} is not user, daemon or local0..local7; using user");
            Facility::User
        }),
    };
    // xenstore's service hook is set once its client is connected; without it a read would panic.
    let xenstore_up = runtime::SERVICE_HOOK.get().is_some();
    let read = |key: &str| match xenstore_up {
        true => crate::xenstore::read(key).map_err(|e| alloc::format!("{e}")),
        false => Err(String::from("xenstore is not connected")),
    };
    let hostname = read("name").unwrap_or_else(|e| {
        log::warn!("syslog: reading the domain's name from xenstore: {e}; HOSTNAME will be -");
        String::new()
    });
    DOMID.store(read("domid").ok().and_then(|d| d.trim().parse().ok()).unwrap_or(NO_DOMID), Ordering::Relaxed);
    let Some(mut ring) = LogRing::try_new(QUEUE_BYTES) else {
        return log::warn!("syslog: no room for a {QUEUE_BYTES}-byte queue; logs go to no collector");
    };
    for r in boot::recent() {
        if !ring.try_push(&r.as_record()) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
    *QUEUE.lock() = Some(Queue { ring, waker: None });
    SYSLOG.call_once(|| Syslog { collector, facility, hostname });
    boot::set_forward(forward);
    log::info!("syslog: logs go to {collector} (facility {facility}) once the network is up");
}

/// The logger's forwarder: queues the record for the syslog task, or counts it dropped. Never waits.
fn forward(r: &Record<'_>) {
    let waker = {
        // The queue's lock is held only briefly by the task, never around code that logs; `try_lock` all the same,
        // so the logger could never wait on it.
        let Some(mut queue) = QUEUE.try_lock() else {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(queue) = queue.as_mut() else { return };
        if !queue.ring.try_push(r) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        queue.waker.take()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// Called when the network is up (`net::interfaces`): with `syslog=`, starts the task that sends the queued
/// records, through the first vif.
pub(crate) fn network_up(nets: &[Net]) {
    let (Some(s), Some(net)) = (SYSLOG.get(), nets.first()) else { return };
    if !SENDING.swap(true, Ordering::SeqCst) {
        // Detached: it runs for the domain's life.
        runtime::spawn(LocalOnly(Box::pin(send(net.clone(), s.collector))));
    }
}

/// A future each poll of which runs in `local_only`: what it logs (itself, or the code it calls: the socket,
/// smoltcp) reaches the console and the ring, never the collector.
struct LocalOnly<F>(Pin<Box<F>>);

impl<F: Future> Future for LocalOnly<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        boot::local_only(|| self.0.as_mut().poll(cx))
    }
}

/// The next queued record.
async fn next() -> OwnedRecord {
    poll_fn(|cx| {
        let mut queue = QUEUE.lock();
        let Some(queue) = queue.as_mut() else { return Poll::Pending };
        match queue.ring.pop() {
            Some(r) => Poll::Ready(r),
            None => {
                queue.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
}

/// A UDP socket with buffers sized for log records (the stack's options give every new socket 64 KiB each way).
fn bind(net: &Net) -> Result<UdpSocket, NetError> {
    let options = net.lock().socket_options();
    net.lock().set_socket_options(SocketOptions { udp_buffer: SOCKET_BUFFER, udp_datagrams: 32, ..options });
    let socket = UdpSocket::bind(net, 0);
    net.lock().set_socket_options(options);
    socket
}

/// The syslog task: sends each queued record to the collector. It runs in [`LocalOnly`]: what it logs stays on
/// the console and in the ring (a record per datagram sent, at trace level, would otherwise never end).
async fn send(net: Net, collector: SocketAddr) {
    let mut socket = match bind(&net) {
        Ok(s) => s,
        Err(e) => return log::warn!("syslog: no UDP socket ({e}); logs go to no collector"),
    };
    let Some(s) = SYSLOG.get() else { return };
    let mut datagram: Vec<u8> = alloc::vec![0; syslog::MAX_DATAGRAM];
    let (mut said_no_route, mut said_error) = (false, false);
    loop {
        let record = next().await;
        let header = Header {
            facility: s.facility,
            hostname: &s.hostname,
            app_name: crate::app_name().unwrap_or("sirocco"),
            procid: Some(DOMID.load(Ordering::Relaxed)).filter(|&d| d != NO_DOMID),
        };
        let len = syslog::encode(&mut datagram, &header, &record.as_record());
        loop {
            match socket.send_to(&datagram[..len], collector).await {
                Ok(_) => {
                    SENT.fetch_add(1, Ordering::Relaxed);
                    log::trace!("syslog: sent {len} bytes ({} records queued)", stats().syslog_queued);
                    break;
                }
                // No address yet (DHCP) or no route to the collector: keep the record and look again; the queue
                // fills (and counts its drops) meanwhile.
                Err(NetError::NoRoute) => {
                    if !said_no_route {
                        said_no_route = true;
                        log::info!("syslog: no route to {collector} yet; holding the records");
                    }
                    runtime::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    SEND_ERRORS.fetch_add(1, Ordering::Relaxed);
                    if !said_error {
                        said_error = true;
                        log::warn!("syslog: sending to {collector}: {e}; such records are dropped and counted");
                    }
                    break;
                }
            }
        }
    }
}
