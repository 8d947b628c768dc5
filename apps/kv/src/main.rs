//! `kv`: a crash-safe key-value store on the first vbd (`sirocco-store`, log-structured, every record
//! checksummed), served over HTTP on port 80 of the first vif:
//!
//! - `PUT /kv/<key>` (body = value): `204` once the value is **durable** (written and flushed); `GET /kv/<key>`:
//!   the value or `404`; `DELETE /kv/<key>`: `204` (durable) or `404`; `GET /kv`: the keys, one per line;
//!   `GET /stats`: JSON (store, recovery, runtime profile, vif counters).
//!
//! A PUT's body is buffered whole (the store takes whole values), charged to a memory budget all connections share
//! (a quarter of the heap at start): an upload that does not fit now is answered 503, never allowed to exhaust the
//! heap. Other requests' bodies are streamed past.
//!
//! One task owns the store; connections queue their requests to it. It answers reads at once and writes every
//! queued PUT and DELETE as one batch with one flush (group commit), then acknowledges them all: many clients
//! share each flush.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use sirocco::block::{self, ErrorKind};
use sirocco::net::http;
use sirocco::net::{self, TcpListener, TcpStream};
use sirocco::sync::{Channel, Signal};
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
    Stats,
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
static PUTS: AtomicU64 = AtomicU64::new(0);
static GETS: AtomicU64 = AtomicU64::new(0);
static BATCHES: AtomicU64 = AtomicU64::new(0);
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

fn stats_json(store: &Store<XenDisk>, disk: &block::Disk) -> String {
    let s = store.stats();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{{\"uptime_ms\":{},\"http_budget\":{{\"limit\":{},\"used\":{},\"peak\":{},\"refusals\":{}}},\"store\":{{\"live_keys\":{},\"live_bytes\":{},\"log_capacity\":{},\"used_bytes\":{},\"free_bytes\":{},\"records\":{},\"compactions\":{},\"puts\":{},\"gets\":{},\"batches\":{},\"recovery\":\"{}\"}},\"disk\":\"{}\",\"profile\":{{{}}},{}}}",
        sirocco::uptime().as_millis(),
        BUDGET.limit(),
        BUDGET.used(),
        BUDGET.peak(),
        BUDGET.refusals(),
        s.live_keys,
        s.live_bytes,
        s.log_capacity,
        s.used_bytes,
        s.free_bytes,
        s.records,
        s.compactions,
        PUTS.load(Ordering::Relaxed),
        GETS.load(Ordering::Relaxed),
        BATCHES.load(Ordering::Relaxed),
        format!("{}", s.recovery).replace('"', "'"),
        disk.counters(),
        sirocco::profile::Profile::now(),
        net::vifs_json()
    );
    out
}

/// The store task: reads answered in order; every queued write goes into one batch, one flush, then all acked.
async fn serve_store(mut store: Store<XenDisk>, disk: block::Disk) {
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
                    GETS.fetch_add(1, Ordering::Relaxed);
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
                Op::Stats => {
                    let r = http::response(200, "OK", "application/json", stats_json(&store, &disk).as_bytes(), k);
                    answer(job, r);
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
        BATCHES.fetch_add(1, Ordering::Relaxed);
        match &result {
            Ok(()) => {
                let puts = writers.iter().filter(|j| matches!(j.op, Op::Put(..))).count() as u64;
                PUTS.fetch_add(puts, Ordering::Relaxed);
            }
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
        let path = path(req);
        let key = path.strip_prefix("/kv/").map(|k| k.as_bytes().to_vec());
        let op = match (req.method, path, key) {
            ("GET" | "HEAD", "/kv", _) => Op::List,
            ("GET" | "HEAD", "/stats", _) => Op::Stats,
            ("GET" | "HEAD", _, Some(key)) => Op::Get(key),
            ("PUT", _, Some(key)) => match try_copy(req.body) {
                Some(value) => Op::Put(key, value),
                None => return text(503, "Service Unavailable", "no memory for this value now; retry it\n", k),
            },
            ("DELETE", _, Some(key)) => Op::Delete(key),
            (_, _, Some(_)) => return text(405, "Method Not Allowed", "GET, PUT or DELETE\n", k),
            _ => return text(404, "Not Found", "try /kv/<key>, /kv or /stats\n", k),
        };
        ask(op, k).await
    }
}

async fn serve(mut s: TcpStream) {
    if let Err(e) = http::serve(&mut s, &BUDGET, Kv).await {
        sirocco::log::debug!("kv: connection ended: {e}");
    }
}

#[derive(Debug)]
enum StartError {
    Net(net::UpError),
    Disk(block::ConnectError),
    Store(Error),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StartError::Net(e) => write!(f, "network: {e}"),
            StartError::Disk(e) => write!(f, "disk: {e}"),
            StartError::Store(e) => write!(f, "store: {e}"),
        }
    }
}

#[sirocco::main]
fn main(_env: &sirocco::Env) -> Result<sirocco::Exit, StartError> {
    BUDGET.set_limit(sirocco::heap_stats().free / 4);
    let disk = block::default().map_err(StartError::Disk)?;
    let net = net::default().map_err(StartError::Net)?;
    sirocco::block_on(async move {
        let options = FormatOptions { volume_nonce: sirocco::wall_clock().as_nanos() as u64, ..Default::default() };
        let store = Store::open_or_format(XenDisk(disk.clone()), options).await.map_err(StartError::Store)?;
        let s = store.stats();
        sirocco::println!(
            "kv: store open: {} keys, {} of {} log bytes used; recovery: {}",
            s.live_keys,
            s.used_bytes,
            s.log_capacity,
            s.recovery
        );
        sirocco::spawn(serve_store(store, disk));
        let addr = net.wait_ipv4().await;
        let mut listener = TcpListener::bind(&net, 80, 16).map_err(|e| StartError::Net(net::UpError::Stack(e)))?;
        sirocco::println!("kv: serving http://{}/kv/<key>", addr.address());
        loop {
            let stream = listener.accept().await;
            sirocco::spawn(serve(stream));
        }
    })
}
