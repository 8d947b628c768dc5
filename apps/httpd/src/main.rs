//! `httpd`: HTTP/1.1 on port 80 of the first vif (and of every other vif): keep-alive, pipelining-safe parsing
//! (requests answered strictly in order), a small built-in page at `/`, and `/stats` as JSON (uptime, per-vif
//! counters, TCP connections by state, heap, the connections' memory budget). A malformed request gets its 4xx/5xx
//! answer and that connection is closed; other connections are not disturbed. No resource takes a body: bodies are
//! streamed past (counted, never buffered), so a connection costs the same whatever a client uploads; connections
//! together hold at most half of the heap (`http::MemoryBudget`), beyond which they are answered 503.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use sirocco::net::http;
use sirocco::net::{self, Net, TcpListener, TcpStream};

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static BAD_REQUESTS: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
/// What all connections may hold at once; set at start to half the free heap.
static BUDGET: http::MemoryBudget = http::MemoryBudget::new(0);

const INDEX: &str = "<!doctype html>\n<html><head><title>Sirocco</title></head><body>\n<h1>Hello from Sirocco</h1>\n\
<p>A Rust unikernel on Xen: this page came from netfront, smoltcp and a single application image.</p>\n\
<p><a href=\"/stats\">/stats</a></p>\n</body></html>\n";

fn stats_json() -> String {
    let mut s = String::new();
    let heap = sirocco::heap_stats();
    let _ = write!(
        s,
        "{{\"uptime_ms\":{},\"requests\":{},\"bad_requests\":{},\"connections_accepted\":{},\"heap\":{{\"size\":{},\"used\":{},\"free\":{}}},\"http_budget\":{{\"limit\":{},\"used\":{},\"peak\":{},\"refusals\":{}}},",
        sirocco::uptime().as_millis(),
        REQUESTS.load(Ordering::Relaxed),
        BAD_REQUESTS.load(Ordering::Relaxed),
        CONNECTIONS.load(Ordering::Relaxed),
        heap.size,
        heap.used,
        heap.free,
        BUDGET.limit(),
        BUDGET.used(),
        BUDGET.peak(),
        BUDGET.refusals()
    );
    let _ = writeln!(
        s,
        "\"profile\":{{{}}},\"boot_steps_us\":{},{}}}",
        sirocco::profile::Profile::now(),
        sirocco::boot_steps::steps_json(),
        net::vifs_json()
    );
    s
}

fn answer(target: &str, keep_alive: bool) -> Vec<u8> {
    let path = target.split('?').next().unwrap_or(target);
    match path {
        "/" | "/index.html" => http::response(200, "OK", "text/html; charset=utf-8", INDEX.as_bytes(), keep_alive),
        "/stats" => http::response(200, "OK", "application/json", stats_json().as_bytes(), keep_alive),
        _ => http::response(404, "Not Found", "text/plain", b"not found\n", keep_alive),
    }
}

struct Httpd;

impl http::Handler for Httpd {
    fn body_mode(&mut self, _req: &http::Request<'_>) -> http::BodyMode {
        // Nothing here takes a body: let it stream past (the default `body_chunk` drops the pieces).
        http::BodyMode::Stream
    }

    async fn respond(&mut self, req: &http::Request<'_>) -> Vec<u8> {
        if REQUESTS.fetch_add(1, Ordering::Relaxed) == 0 {
            sirocco::boot_steps::step("first-request");
        }
        if req.method == "GET" || req.method == "HEAD" {
            answer(req.target, req.keep_alive)
        } else {
            http::response(405, "Method Not Allowed", "text/plain", b"method not allowed\n", req.keep_alive)
        }
    }
}

async fn serve(mut s: TcpStream) {
    CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    match http::serve(&mut s, &BUDGET, Httpd).await {
        Ok(served) if served.bad.is_some() => {
            BAD_REQUESTS.fetch_add(1, Ordering::Relaxed);
        }
        Ok(_) => {}
        Err(e) => sirocco::log::debug!("httpd: connection ended: {e}"),
    }
}

async fn listen(net: Net, port: u16) {
    let mut listener = match TcpListener::bind(&net, port, 16) {
        Ok(l) => l,
        Err(e) => return sirocco::log::error!("httpd: port {port}: {e}"),
    };
    sirocco::boot_steps::step("listen");
    loop {
        let stream = listener.accept().await;
        // One task per connection, detached: none is refused for want of a task.
        sirocco::spawn(serve(stream));
    }
}

#[sirocco::main]
async fn main(env: sirocco::Env) -> Result<sirocco::Exit, sirocco::Error> {
    let port: u16 = env.cmdline.get("port").and_then(|p| p.parse().ok()).unwrap_or(80);
    BUDGET.set_limit(sirocco::heap_stats().free / 2);
    let nets = net::interfaces()?;
    if nets.is_empty() {
        return Err(net::UpError::NoVif.into());
    }
    for (i, n) in nets.iter().enumerate() {
        let addr = n.wait_ipv4().await;
        sirocco::println!("httpd: vif{i} listening on http://{}:{port}/", addr.address());
        sirocco::spawn(listen(n.clone(), port));
    }
    Ok(sirocco::shutdown::requested().await.exit())
}
