//! `httpd`: HTTP/1.1 on port 80 of the first vif (and of every other vif): keep-alive, pipelining-safe parsing
//! (requests answered strictly in order), a small built-in page at `/`, and the stats endpoint's paths
//! (`sirocco::stats`): `/metrics` (Prometheus), `/stats` (JSON: uptime, per-vif counters, TCP connections by state,
//! heap, profile, and httpd's own requests, latency and memory budget) and `/live` (the live page). A malformed
//! request gets its 4xx/5xx answer and that connection is closed; other connections are not disturbed. No resource
//! takes a body: bodies are streamed past (counted, never buffered), so a connection costs the same whatever a
//! client uploads; connections together hold at most half of the heap (`http::MemoryBudget`), beyond which they
//! are answered 503.
//!
//! With `tls=on` on the command line it serves HTTPS too, on port 443 (`tls-port=` to change), the same
//! resources: TLS 1.3 and 1.2 (`sirocco::tls`), with the certificate from xenstore or a self-signed one made at
//! boot for the vifs' addresses (and `tls-name=`, a DNS name). It will not start TLS without trusted random
//! numbers (`entropy=weak` accepts a seed from timing jitter alone).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use sirocco::metrics::{self, Counter, LatencyHistogram};
use sirocco::net::http;
use sirocco::net::{self, Net, TcpListener, TcpStream};
use sirocco::tls::{SubjectName, TlsAcceptor};
use sirocco::Instant;

static REQUESTS: Counter = Counter::new("http_requests_total", "HTTP requests answered (any status).");
static BAD_REQUESTS: Counter =
    Counter::new("http_bad_requests_total", "Connections ended by a request refused as malformed or too large.");
static CONNECTIONS: Counter = Counter::new("http_connections_total", "TCP connections accepted.");
static LATENCY: LatencyHistogram = LatencyHistogram::latency(
    "http_request_duration_seconds",
    "Time from a request (its body read) to its response handed to the socket.",
);
static TLS_HANDSHAKES: Counter = Counter::new("https_handshakes_total", "TLS handshakes completed.");
static TLS_FAILED: Counter =
    Counter::new("https_handshake_failures_total", "TLS handshakes that failed (protocol error or the peer left).");
/// What all connections may hold at once; set at start to half the free heap.
static BUDGET: http::MemoryBudget = http::MemoryBudget::new(0);

const INDEX: &str = "<!doctype html>\n<html><head><title>Sirocco</title></head><body>\n<h1>Hello from Sirocco</h1>\n\
<p>A Rust unikernel on Xen: this page came from netfront, smoltcp and a single application image.</p>\n\
<p><a href=\"/live\">/live</a> (live stats), <a href=\"/stats\">/stats</a>, <a href=\"/metrics\">/metrics</a>, <a href=\"/logs\">/logs</a></p>\n\
</body></html>\n";

fn answer(req: &http::Request<'_>) -> Vec<u8> {
    if let Some(stats) = sirocco::stats::respond(req) {
        return stats; // /metrics, /stats, /live, /logs
    }
    let path = req.target.split('?').next().unwrap_or(req.target);
    match path {
        "/" | "/index.html" => http::response(200, "OK", "text/html; charset=utf-8", INDEX.as_bytes(), req.keep_alive),
        _ => http::response(404, "Not Found", "text/plain", b"not found\n", req.keep_alive),
    }
}

/// One connection's handler: when its current request started (for the latency histogram).
struct Httpd {
    started: Option<Instant>,
}

impl http::Handler for Httpd {
    fn body_mode(&mut self, _req: &http::Request<'_>) -> http::BodyMode {
        // Nothing here takes a body: let it stream past (the default `body_chunk` drops the pieces).
        http::BodyMode::Stream
    }

    async fn respond(&mut self, req: &http::Request<'_>) -> Vec<u8> {
        self.started = Some(Instant::now());
        if REQUESTS.get() == 0 {
            sirocco::boot_steps::step("first-request");
        }
        REQUESTS.inc();
        if req.method == "GET" || req.method == "HEAD" {
            answer(req)
        } else {
            http::response(405, "Method Not Allowed", "text/plain", b"method not allowed\n", req.keep_alive)
        }
    }

    fn sent(&mut self, _req: &http::Request<'_>) {
        if let Some(t) = self.started.take() {
            LATENCY.observe(t.elapsed().as_micros() as u64);
        }
    }
}

async fn serve(mut s: TcpStream) {
    CONNECTIONS.inc();
    match http::serve(&mut s, &BUDGET, Httpd { started: None }).await {
        Ok(served) if served.bad.is_some() => BAD_REQUESTS.inc(),
        Ok(_) => {}
        Err(e) => sirocco::log::debug!("httpd: connection ended: {e}"),
    }
}

async fn serve_tls(tls: TlsAcceptor, s: TcpStream) {
    CONNECTIONS.inc();
    let mut s = match tls.accept(s).await {
        Ok(s) => s,
        Err(e) => {
            TLS_FAILED.inc();
            return sirocco::log::debug!("https: handshake: {e}");
        }
    };
    TLS_HANDSHAKES.inc();
    match http::serve(&mut s, &BUDGET, Httpd { started: None }).await {
        Ok(served) if served.bad.is_some() => BAD_REQUESTS.inc(),
        Ok(_) => {}
        Err(e) => sirocco::log::debug!("https: connection ended: {e}"),
    }
}

async fn listen_tls(net: Net, port: u16, tls: TlsAcceptor) {
    let mut listener = match TcpListener::bind(&net, port, 16) {
        Ok(l) => l,
        Err(e) => return sirocco::log::error!("https: port {port}: {e}"),
    };
    loop {
        let stream = listener.accept().await;
        sirocco::spawn(serve_tls(tls.clone(), stream));
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
    let tls_port: Option<u16> = match env.cmdline.get("tls") {
        None | Some("off") => None,
        Some("on") => Some(env.cmdline.get("tls-port").and_then(|p| p.parse().ok()).unwrap_or(443)),
        Some(other) => {
            sirocco::log::error!("httpd: tls={other}: use tls=on or tls=off");
            return Ok(sirocco::Exit::Crash);
        }
    };
    for m in [&REQUESTS as &dyn metrics::Metric, &BAD_REQUESTS, &CONNECTIONS, &LATENCY, &TLS_HANDSHAKES, &TLS_FAILED] {
        metrics::register(m)?;
    }
    metrics::add_http_budget(&BUDGET);
    let nets = net::interfaces()?;
    if nets.is_empty() {
        return Err(net::UpError::NoVif.into());
    }
    let mut addrs = Vec::new();
    for (i, n) in nets.iter().enumerate() {
        let addr = n.wait_ipv4().await;
        sirocco::println!("httpd: vif{i} listening on http://{}:{port}/", addr.address());
        sirocco::spawn(listen(n.clone(), port));
        addrs.push(addr.address());
    }
    if let Some(tls_port) = tls_port {
        let mut names: Vec<SubjectName<'_>> = addrs.iter().map(|a| SubjectName::Ip((*a).into())).collect();
        if let Some(name) = env.cmdline.get("tls-name") {
            names.push(SubjectName::Dns(name));
        }
        let tls = sirocco::tls::server(&names).map_err(|e| e.context("starting HTTPS"))?;
        for (n, addr) in nets.iter().zip(&addrs) {
            sirocco::println!("httpd: listening on https://{addr}:{tls_port}/");
            sirocco::spawn(listen_tls(n.clone(), tls_port, tls.acceptor.clone()));
        }
    }
    Ok(sirocco::shutdown::requested().await.exit())
}
