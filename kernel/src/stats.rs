//! The stats endpoint: the domain's metrics ([`crate::metrics`]) over HTTP, and a live page that charts them.
//!
//! - `GET /metrics`: Prometheus text exposition (format 0.0.4), for a Prometheus server to scrape.
//! - `GET /stats`: the same metrics as one JSON document (`uptime_ms`, `build`, `heap`, `profile`, `tasks`,
//!   `boot_steps_us`, `vifs`, `disks`, and the app's own under `app`).
//! - `GET /live` (and `/` on the endpoint's own port): [`LIVE_PAGE`], a page with no external assets that polls
//!   `/stats` every second and charts packets and bytes per second, requests per second (the app's counters
//!   named `*_requests_total`), latency percentiles (its first histogram named `*_seconds`), the heap and the
//!   vCPU.
//! - `GET /logs`: the recent log records ([`crate::logs::text`]: the in-memory ring, `logring=`), as text.
//!
//! One line turns it on, on a port of its own:
//! ```ignore
//! sirocco::stats::serve(&net, 9100)?;
//! ```
//! An app that serves HTTP already answers the same paths from its own router with [`respond`].

use crate::metrics;
use crate::net::{http, Net, NetError, TcpListener, TcpStream};
use crate::runtime::JoinHandle;
use alloc::vec::Vec;

/// The live page (HTML and script, a few KiB, no external assets).
pub const LIVE_PAGE: &str = include_str!("stats/live.html");

/// The content type of `/stats`.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// What the endpoint's connections may hold at once: eight scrapers or pages ([`http::CONNECTION_BYTES`] each).
static BUDGET: http::MemoryBudget = http::MemoryBudget::new(8 * http::CONNECTION_BYTES);

/// Serves `/metrics`, `/stats`, `/live` and `/` (the live page) on TCP port `port` of `net`, from a task of its
/// own (and one per connection) for the domain's life; dropping the handle leaves it running, aborting it stops
/// accepting. Fails only if the port cannot be bound.
pub fn serve(net: &Net, port: u16) -> Result<JoinHandle<()>, NetError> {
    let mut listener = TcpListener::bind(net, port, 4)?;
    Ok(crate::spawn(async move {
        loop {
            let stream = listener.accept().await;
            crate::spawn(connection(stream));
        }
    }))
}

async fn connection(mut stream: TcpStream) {
    if let Err(e) = http::serve(&mut stream, &BUDGET, Endpoint).await {
        log::debug!("stats: connection ended: {e}");
    }
}

/// The endpoint's own router.
struct Endpoint;

impl http::Handler for Endpoint {
    fn body_mode(&mut self, _req: &http::Request<'_>) -> http::BodyMode {
        http::BodyMode::Stream // nothing here takes a body
    }

    async fn respond(&mut self, req: &http::Request<'_>) -> Vec<u8> {
        let k = req.keep_alive;
        if let Some(answer) = respond(req) {
            return answer;
        }
        match (req.method, path(req)) {
            ("GET" | "HEAD", "/") => live_page(k),
            ("GET" | "HEAD", _) => {
                http::response(404, "Not Found", "text/plain", b"try /metrics, /stats, /live or /logs\n", k)
            }
            _ => http::response(405, "Method Not Allowed", "text/plain", b"GET only\n", k),
        }
    }
}

fn path<'a>(req: &http::Request<'a>) -> &'a str {
    req.target.split('?').next().unwrap_or(req.target)
}

fn live_page(keep_alive: bool) -> Vec<u8> {
    http::response(200, "OK", "text/html; charset=utf-8", LIVE_PAGE.as_bytes(), keep_alive)
}

/// The whole response to `req` if it is a `GET` or `HEAD` of `/metrics`, `/stats`, `/live`, `/logs` or `/trace` (a query
/// string is ignored), for an app's own HTTP router; `None` for anything else.
pub fn respond(req: &http::Request<'_>) -> Option<Vec<u8>> {
    if req.method != "GET" && req.method != "HEAD" {
        return None;
    }
    let k = req.keep_alive;
    match path(req) {
        "/metrics" => {
            Some(http::response(200, "OK", metrics::PROMETHEUS_CONTENT_TYPE, metrics::prometheus().as_bytes(), k))
        }
        "/stats" => Some(http::response(200, "OK", JSON_CONTENT_TYPE, metrics::json().as_bytes(), k)),
        "/live" => Some(live_page(k)),
        "/logs" => Some(http::response(200, "OK", "text/plain; charset=utf-8", crate::logs::text().as_bytes(), k)),
        "/trace" => Some(http::response(200, "OK", JSON_CONTENT_TYPE, crate::trace::chrome_json().as_bytes(), k)),
        _ => None,
    }
}
