//! `httpd`: HTTP/1.1 on port 80 of the first vif (and of every other vif): keep-alive, pipelining-safe parsing
//! (requests answered strictly in order), a small built-in page at `/`, and `/stats` as JSON (uptime, per-vif
//! counters, TCP connections by state, heap). A malformed request gets its 4xx/5xx answer and that connection is
//! closed; other connections are not disturbed.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use sirocco::net::{self, Net, TcpListener, TcpStream};
use sirocco_net::http::{self, Parsed};

sirocco::main!(main);

static REQUESTS: AtomicU64 = AtomicU64::new(0);
static BAD_REQUESTS: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

const INDEX: &str = "<!doctype html>\n<html><head><title>Sirocco</title></head><body>\n<h1>Hello from Sirocco</h1>\n\
<p>A Rust unikernel on Xen: this page came from netfront, smoltcp and a single application image.</p>\n\
<p><a href=\"/stats\">/stats</a></p>\n</body></html>\n";

fn stats_json() -> String {
    let mut s = String::new();
    let heap = sirocco::heap_stats();
    let _ = write!(
        s,
        "{{\"uptime_ms\":{},\"requests\":{},\"bad_requests\":{},\"connections_accepted\":{},\"heap\":{{\"size\":{},\"used\":{},\"free\":{}}},",
        sirocco::uptime().as_millis(),
        REQUESTS.load(Ordering::Relaxed),
        BAD_REQUESTS.load(Ordering::Relaxed),
        CONNECTIONS.load(Ordering::Relaxed),
        heap.size,
        heap.used,
        heap.free
    );
    let _ = write!(s, "\"profile\":{{{}}},{}}}\n", sirocco::profile::Profile::now(), net::vifs_json());
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

async fn serve(mut s: TcpStream) {
    CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let result: Result<(), net::NetError> = async {
        loop {
            // Answer every complete request already buffered, in order, before reading more.
            loop {
                let (reply, used, keep_alive) = match http::parse(&buf) {
                    Parsed::Incomplete => break,
                    Parsed::Request(req, used) => {
                        REQUESTS.fetch_add(1, Ordering::Relaxed);
                        let keep = req.keep_alive;
                        let reply = if req.method == "GET" || req.method == "HEAD" {
                            let mut r = answer(req.target, keep);
                            if req.method == "HEAD" {
                                let head_len = r.windows(4).position(|w| w == b"\r\n\r\n").map_or(r.len(), |p| p + 4);
                                r.truncate(head_len);
                            }
                            r
                        } else {
                            http::response(405, "Method Not Allowed", "text/plain", b"method not allowed\n", keep)
                        };
                        (reply, used, keep)
                    }
                    Parsed::Bad(why) => {
                        BAD_REQUESTS.fetch_add(1, Ordering::Relaxed);
                        let (code, reason) = why.status();
                        let body = format!("{reason}: {why:?}\n");
                        (http::response(code, reason, "text/plain", body.as_bytes(), false), buf.len(), false)
                    }
                };
                s.write_all(&reply).await?;
                buf.drain(..used);
                if !keep_alive {
                    return s.close().await;
                }
            }
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return s.close().await;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
    .await;
    if let Err(e) = result {
        sirocco::log::debug!("httpd: connection ended: {e}");
    }
}

async fn listen(net: Net, port: u16) {
    let mut listener = match TcpListener::bind(&net, port, 16) {
        Ok(l) => l,
        Err(e) => return sirocco::log::error!("httpd: port {port}: {e}"),
    };
    loop {
        let stream = listener.accept().await;
        if let Err(e) = sirocco::spawn(serve(stream)) {
            sirocco::log::warn!("httpd: refusing a connection: {e}");
        }
    }
}

fn main(env: &sirocco::Env) -> Result<sirocco::Exit, net::UpError> {
    let port: u16 = env.cmdline.get("port").and_then(|p| p.parse().ok()).unwrap_or(80);
    let nets = net::interfaces()?;
    if nets.is_empty() {
        return Err(net::UpError::NoVif);
    }
    sirocco::block_on(async move {
        for (i, n) in nets.iter().enumerate() {
            let addr = n.wait_ipv4().await;
            sirocco::println!("httpd: vif{i} listening on http://{}:{port}/", addr.address());
            if sirocco::spawn(listen(n.clone(), port)).is_err() {
                sirocco::log::error!("httpd: no task slot for vif{i}");
            }
        }
        Ok(sirocco::shutdown::requested().await.exit())
    })
}
