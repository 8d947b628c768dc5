//! `kv`: a crash-safe key-value store on the first vbd (`sirocco-store`, log-structured, every record
//! checksummed), served over HTTP on port 80 of the first vif:
//!
//! - `PUT /kv/<key>` (body = value): `204` once the value is **durable** (written and flushed); `GET /kv/<key>`:
//!   the value or `404`; `DELETE /kv/<key>`: `204` (durable) or `404`; `GET /kv`: the keys, one per line;
//!   `GET /stats`, `GET /metrics`, `GET /live`: the stats endpoint (`sirocco::stats`: the runtime's metrics, the
//!   vbd's and vif's counters, and kv's own: requests, the store's size and what recovery found) as JSON,
//!   Prometheus text and a live page.
//!
//! A PUT's body is buffered whole (the store takes whole values), charged to a memory budget all connections share
//! (a quarter of the heap at start): an upload that does not fit now is answered 503, never allowed to exhaust the
//! heap. Other requests' bodies are streamed past.
//!
//! One task owns the store; connections queue their requests to it. It answers reads at once and writes every
//! queued PUT and DELETE as one batch with one flush (group commit), then acknowledges them all: many clients
//! share each flush.
//!
//! With `tls=on` on the command line the same API is served over HTTPS too, on port 443 (`tls-port=` to change):
//! TLS 1.3 and 1.2 (`sirocco::tls`), the certificate from xenstore or made at boot for the vif's address (and
//! `tls-name=`, a DNS name), never started without trusted random numbers.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use sirocco::block::{self, ErrorKind};
use sirocco::metrics::{self, Counter, Desc, Gauge, Metric};
use sirocco::net::http;
use sirocco::net::{self, TcpListener, TcpStream};
use sirocco::sync::{Channel, Signal};
use sirocco::tls::{SubjectName, TlsAcceptor};
use sirocco_store::{Batch, DiskError, DiskErrorKind, DiskOp, Error, FormatOptions, Store};

/// The vbd as the store's disk.
struct XenDisk(block::Disk);

fn disk_error(op: DiskOp, offset: u64, e: block::BlkError) -> DiskError {
    let kind = match e.kind {
        ErrorKind::Unaligned { .. } => DiskErrorKind::Misaligned,
        ErrorKind::OutOfRange { .. } => DiskErrorKind::OutOfRange,
        ErrorKind::NoFlush | ErrorKind::NotSupported { .. } => DiskErrorKind::Unsupported,
        ErrorKind::NotConnected | ErrorKind::Broken(_) => DiskErrorKind::Disconnected,
        _ => DiskErrorKind::Io,
    };
    sirocco::log::warn!("kv: {op:?} at {offset}: {e}");
    DiskError { op, offset, kind }
}

impl sirocco_store::Disk for XenDisk {
    fn sector_size(&self) -> u32 {
        self.0.sector_size()
    }
    fn capacity(&self) -> u64 {
        self.0.capacity()
    }
    async fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.0.read(offset, buf).await.map_err(|e| disk_error(DiskOp::Read, offset, e))
    }
    async fn write(&self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        self.0.write(offset, buf).await.map_err(|e| disk_error(DiskOp::Write, offset, e))
    }
    async fn flush(&self) -> Result<(), DiskError> {
        self.0.flush().await.map_err(|e| disk_error(DiskOp::Flush, 0, e))
    }
}

enum Op {
    Get(Vec<u8>),
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    List,
}

struct Job {
    op: Op,
    keep_alive: bool,
    /// The whole HTTP response, signalled by the store task, awaited by the connection.
    reply: Arc<Signal<Vec<u8>>>,
}

/// The store task's queue: each connection has at most one request in it, so it fills only with more than
/// `QUEUED` connections, which then wait their turn.
const QUEUED: usize = 64;
static JOBS: Channel<Job, QUEUED> = Channel::new();
static PUTS: Counter = Counter::new("kv_puts_total", "PUTs acknowledged (durable).");
static GETS: Counter = Counter::new("kv_gets_total", "GETs of a key answered.");
static BATCHES: Counter =
    Counter::new("kv_write_batches_total", "Batches written, each with one flush (group commit).");
static LIVE_KEYS: Gauge = Gauge::new("kv_store_live_keys", "Keys stored.");
static LIVE_BYTES: Gauge = Gauge::new("kv_store_live_bytes", "Bytes of the live keys and values.");
static LOG_CAPACITY: Gauge = Gauge::new("kv_store_log_capacity_bytes", "The log area's size.");
static USED_BYTES: Gauge = Gauge::new("kv_store_used_bytes", "Log bytes in use (live and dead records).");
static FREE_BYTES: Gauge = Gauge::new("kv_store_free_bytes", "Log bytes free.");
static RECORDS: Gauge = Gauge::new("kv_store_records", "Records in the log.");
static COMPACTIONS: Gauge =
    Gauge::new("kv_store_compactions", "Compactions of the log so far (kept in its superblock).");
/// What all connections may hold at once (buffers and PUT bodies); set at start to a quarter of the free heap: a
/// PUT's value is copied once more for the store task, and the store needs room for its batch.
static BUDGET: http::MemoryBudget = http::MemoryBudget::new(0);

/// Hands `op` to the store task and waits for its whole HTTP response.
async fn ask(op: Op, keep_alive: bool) -> Vec<u8> {
    let reply = Arc::new(Signal::new());
    JOBS.send(Job { op, keep_alive, reply: reply.clone() }).await;
    reply.wait().await
}

fn answer(job: Job, response: Vec<u8>) {
    job.reply.signal(response);
}

fn text(code: u16, reason: &str, body: &str, keep_alive: bool) -> Vec<u8> {
    http::response(code, reason, "text/plain", body.as_bytes(), keep_alive)
}

fn error_response(e: &Error, keep_alive: bool) -> Vec<u8> {
    let (code, reason) = match e {
        Error::EmptyKey | Error::KeyTooLong { .. } => (400, "Bad Request"),
        Error::ValueTooLarge { .. } | Error::BatchTooLarge { .. } => (413, "Content Too Large"),
        Error::Full { .. } => (507, "Insufficient Storage"),
        _ => (500, "Internal Server Error"),
    };
    text(code, reason, &format!("{e}\n"), keep_alive)
}

/// The store's figures, into their gauges (after opening it and after each batch).
fn store_gauges(store: &Store<XenDisk>) {
    let s = store.stats();
    for (gauge, v) in [
        (&LIVE_KEYS, s.live_keys),
        (&LIVE_BYTES, s.live_bytes),
        (&LOG_CAPACITY, s.log_capacity),
        (&USED_BYTES, s.used_bytes),
        (&FREE_BYTES, s.free_bytes),
        (&RECORDS, s.records),
        (&COMPACTIONS, s.compactions),
    ] {
        gauge.set(v as i64);
    }
}

/// Registers kv's metrics, and what recovery found when the store was opened (`kv_store_recovery_info`).
fn register_metrics(recovery: String) -> Result<(), metrics::MetricError> {
    let ours: [&'static dyn Metric; 10] = [
        &PUTS,
        &GETS,
        &BATCHES,
        &LIVE_KEYS,
        &LIVE_BYTES,
        &LOG_CAPACITY,
        &USED_BYTES,
        &FREE_BYTES,
        &RECORDS,
        &COMPACTIONS,
    ];
    for m in ours {
        metrics::register(m)?;
    }
    metrics::add_http_budget(&BUDGET);
    const RECOVERY: Desc = Desc::new("kv_store_recovery_info", "What replaying the log found when the store opened.");
    metrics::add_collector(move |s| s.info(&RECOVERY, &[("recovery", &recovery)]));
    Ok(())
}

/// The store task: reads answered in order; every queued write goes into one batch, one flush, then all acked.
async fn serve_store(mut store: Store<XenDisk>) {
    loop {
        // Everything queued now: the first job awaited, the rest taken as they are.
        let mut jobs = vec![JOBS.receive().await];
        while let Ok(job) = JOBS.try_receive() {
            jobs.push(job);
        }
        let mut batch = Batch::new();
        let mut writers = Vec::new();
        for job in jobs {
            let k = job.keep_alive;
            match &job.op {
                Op::Get(key) => {
                    GETS.inc();
                    let r = match store.get(key).await {
                        Ok(Some(v)) => http::response(200, "OK", "application/octet-stream", &v, k),
                        Ok(None) => text(404, "Not Found", "no such key\n", k),
                        Err(e) => error_response(&e, k),
                    };
                    answer(job, r);
                }
                Op::List => {
                    let mut body = Vec::new();
                    for key in store.keys() {
                        body.extend_from_slice(key);
                        body.push(b'\n');
                    }
                    answer(job, http::response(200, "OK", "text/plain", &body, k));
                }
                Op::Put(key, value) => {
                    batch.put(key, value);
                    writers.push(job);
                }
                Op::Delete(key) => {
                    if store.contains_key(key) {
                        batch.delete(key);
                        writers.push(job);
                    } else {
                        answer(job, text(404, "Not Found", "no such key\n", k));
                    }
                }
            }
        }
        if writers.is_empty() {
            continue;
        }
        // One write and one flush for every queued PUT and DELETE; acknowledged only once durable.
        let result = if batch.len() == 1 {
            match &writers[0].op {
                Op::Put(key, value) => store.put(key, value).await,
                Op::Delete(key) => store.delete(key).await.map(|_| ()),
                _ => unreachable!("only writes are queued here"),
            }
        } else {
            store.write_batch(&batch).await
        };
        BATCHES.inc();
        store_gauges(&store);
        match &result {
            Ok(()) => PUTS.add(writers.iter().filter(|j| matches!(j.op, Op::Put(..))).count() as u64),
            Err(e) => sirocco::log::warn!("kv: batch of {} writes failed: {e}", writers.len()),
        }
        for job in writers {
            let k = job.keep_alive;
            let r = match &result {
                Ok(()) => http::response(204, "No Content", "text/plain", b"", k),
                Err(e) => error_response(e, k),
            };
            answer(job, r);
        }
    }
}

fn path<'a>(req: &http::Request<'a>) -> &'a str {
    req.target.split('?').next().unwrap_or(req.target)
}

/// A copy of `bytes`, or `None` when the heap cannot hold it now.
fn try_copy(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(bytes.len()).ok()?;
    v.extend_from_slice(bytes);
    Some(v)
}

struct Kv;

impl http::Handler for Kv {
    fn body_mode(&mut self, req: &http::Request<'_>) -> http::BodyMode {
        if req.method == "PUT" && path(req).starts_with("/kv/") {
            http::BodyMode::Buffer
        } else {
            http::BodyMode::Stream
        }
    }

    async fn respond(&mut self, req: &http::Request<'_>) -> Vec<u8> {
        let k = req.keep_alive;
        if let Some(stats) = sirocco::stats::respond(req) {
            return stats; // /metrics, /stats, /live, /logs
        }
        let path = path(req);
        let key = path.strip_prefix("/kv/").map(|k| k.as_bytes().to_vec());
        let op = match (req.method, path, key) {
            ("GET" | "HEAD", "/kv", _) => Op::List,
            ("GET" | "HEAD", _, Some(key)) => Op::Get(key),
            ("PUT", _, Some(key)) => match try_copy(req.body) {
                Some(value) => Op::Put(key, value),
                None => return text(503, "Service Unavailable", "no memory for this value now; retry it\n", k),
            },
            ("DELETE", _, Some(key)) => Op::Delete(key),
            (_, _, Some(_)) => return text(405, "Method Not Allowed", "GET, PUT or DELETE\n", k),
            _ => return text(404, "Not Found", "try /kv/<key>, /kv, /stats, /metrics or /live\n", k),
        };
        ask(op, k).await
    }
}

async fn serve(mut s: TcpStream) {
    if let Err(e) = http::serve(&mut s, &BUDGET, Kv).await {
        sirocco::log::debug!("kv: connection ended: {e}");
    }
}

async fn serve_tls(tls: TlsAcceptor, s: TcpStream) {
    match tls.accept(s).await {
        Ok(mut s) => {
            if let Err(e) = http::serve(&mut s, &BUDGET, Kv).await {
                sirocco::log::debug!("kv: https connection ended: {e}");
            }
        }
        Err(e) => sirocco::log::debug!("kv: https handshake: {e}"),
    }
}

#[derive(Debug)]
enum StartError {
    Cmdline(&'static str),
    Tls(sirocco::Error),
    Net(net::UpError),
    Disk(block::ConnectError),
    Store(Error),
    Metric(metrics::MetricError),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::Cmdline(e) => f.write_str(e),
            StartError::Tls(e) => write!(f, "starting HTTPS: {e}"),
            StartError::Net(e) => write!(f, "network: {e}"),
            StartError::Disk(e) => write!(f, "disk: {e}"),
            StartError::Store(e) => write!(f, "store: {e}"),
            StartError::Metric(e) => write!(f, "{e}"),
        }
    }
}

#[sirocco::main]
fn main(env: &sirocco::Env) -> Result<sirocco::Exit, StartError> {
    let tls_port: Option<u16> = match env.cmdline.get("tls") {
        None | Some("off") => None,
        Some("on") => Some(env.cmdline.get("tls-port").and_then(|p| p.parse().ok()).unwrap_or(443)),
        Some(_) => return Err(StartError::Cmdline("tls= takes on or off")),
    };
    let tls_name = env.cmdline.get("tls-name");
    BUDGET.set_limit(sirocco::heap_stats().free / 4);
    let disk = block::default().map_err(StartError::Disk)?;
    let net = net::default().map_err(StartError::Net)?;
    sirocco::block_on(async move {
        let options = FormatOptions { volume_nonce: sirocco::wall_clock().as_nanos() as u64, ..Default::default() };
        let store = Store::open_or_format(XenDisk(disk), options).await.map_err(StartError::Store)?;
        let s = store.stats();
        sirocco::println!(
            "kv: store open: {} keys, {} of {} log bytes used; recovery: {}",
            s.live_keys,
            s.used_bytes,
            s.log_capacity,
            s.recovery
        );
        store_gauges(&store);
        register_metrics(format!("{}", s.recovery)).map_err(StartError::Metric)?;
        sirocco::spawn(serve_store(store));
        let addr = net.wait_ipv4().await;
        let mut listener = TcpListener::bind(&net, 80, 16).map_err(|e| StartError::Net(net::UpError::Stack(e)))?;
        sirocco::println!("kv: serving http://{}/kv/<key>", addr.address());
        if let Some(port) = tls_port {
            let mut names = vec![SubjectName::Ip(addr.address().into())];
            names.extend(tls_name.map(SubjectName::Dns));
            let tls = sirocco::tls::server(&names).map_err(StartError::Tls)?;
            let mut tls_listener =
                TcpListener::bind(&net, port, 16).map_err(|e| StartError::Net(net::UpError::Stack(e)))?;
            sirocco::println!("kv: serving https://{}:{port}/kv/<key>", addr.address());
            sirocco::spawn(async move {
                loop {
                    let stream = tls_listener.accept().await;
                    sirocco::spawn(serve_tls(tls.acceptor.clone(), stream));
                }
            });
        }
        loop {
            let stream = listener.accept().await;
            sirocco::spawn(serve(stream));
        }
    })
}
