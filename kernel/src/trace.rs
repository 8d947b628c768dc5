//! The runtime's tracer (issue 15): `trace=run,net,tcp,...` (or `trace=all`) on the command line records those
//! categories into a ring of the last `tracebuf=N` events (8192 by default, about 320 KiB, allocated only when
//! tracing). It is read as Chrome trace-event JSON (Perfetto opens it) at `GET /trace` of the stats endpoint
//! (`sirocco::stats`), and reaches dom0 without a network as a dump on the console: when the guest crashes, and
//! whenever dom0 writes a new value to the domain's `control/sirocco-trace` key (`SEQ dump`; see the README).
//! `sirocco trace` on the host turns a dump into the JSON and into an HTML timeline.
//!
//! Every layer records into the one tracer (`sirocco_boot_logic::trace`): the run loop (rounds of tasks, each
//! task poll, each block in `SCHEDOP_poll`), event channels (notifications sent, upcalls), netfront (RX/TX batches,
//! a full ring), the TCP stack (each poll, each data segment in and out as a request's flow, retransmissions, window
//! changes), blkfront (requests submitted and completed), xenstore (requests and watch events), and the app
//! ([`span!`](crate::span) and [`mark!`](crate::mark)). A category that is off costs a relaxed load and a branch.

use crate::runtime;
use crate::xenstore::{self, Watch};
use alloc::format;
use alloc::string::String;
use sirocco_boot_logic::cmdline::Cmdline;
use sirocco_boot_logic::trace::{self as ring, parse_categories, Command, Tracer};
pub use sirocco_boot_logic::trace::{enabled, event, flow_id, span, Category, Phase, Span};
use sirocco_kernel_logic::trace::chrome_json as encode;

/// Events kept when `tracebuf=` is not given.
const DEFAULT_EVENTS: usize = 8192;

/// Sets the tracer up from the command line (once, at start of day).
pub(crate) fn init(cmdline: &Cmdline<'_>) {
    let spec = cmdline.get("trace").unwrap_or("");
    let mask = parse_categories(spec).unwrap_or_else(|e| {
        log::warn!("{e}; nothing is traced");
        0
    });
    // Allocated only once something is traced (from here, or from dom0's request).
    let capacity = match cmdline.get("tracebuf") {
        None => DEFAULT_EVENTS,
        Some(v) => v.parse().unwrap_or_else(|_| {
            log::warn!("tracebuf={v:?} is not a number of events; keeping {DEFAULT_EVENTS}");
            DEFAULT_EVENTS
        }),
    };
    ring::install(Tracer::new(capacity, mask), runtime::now_ns);
    if mask != 0 {
        log::info!("tracing {spec}: the last {capacity} events are kept (GET /trace, or a dump on the console)");
    }
    // Detached: it serves for the life of the domain.
    drop(runtime::spawn(serve_requests()));
}

/// Where dom0 writes its requests (`sirocco_boot_logic::trace::parse_request`), relative to the domain's path.
const REQUEST_PATH: &str = "control/sirocco-trace";
/// Where the guest answers them.
const ANSWER_PATH: &str = "data/sirocco-trace";

/// Carries out dom0's requests for the life of the domain: a dump on the console, or other categories. A request
/// is taken once (by its sequence word); the answer says when a dump is complete on the console.
async fn serve_requests() {
    let mut watch = match Watch::new_async(REQUEST_PATH).await {
        Ok(w) => w,
        Err(e) => return log::warn!("trace: cannot watch {REQUEST_PATH}: {e}; dom0 cannot ask for a dump"),
    };
    let mut last = String::new();
    loop {
        watch.next().await;
        let Ok(value) = xenstore::read_async(REQUEST_PATH).await else { continue };
        if value == last {
            continue;
        }
        last.clone_from(&value);
        let answer = match ring::parse_request(&value) {
            Err(e) => format!("error: {e}"),
            Ok((_, Command::Dump)) => match ring::global() {
                Some(t) if t.mask() != 0 => {
                    sirocco_boot::console::write_trace_dump(false);
                    String::from("ok")
                }
                _ => String::from("error: nothing is traced (trace= on the command line, or \"on CATEGORIES\")"),
            },
            Ok((_, Command::On(spec))) => match parse_categories(spec) {
                Ok(mask) => {
                    ring::set_mask(mask);
                    log::info!("trace: now tracing {spec} (asked by dom0)");
                    String::from("ok")
                }
                Err(e) => format!("error: {e}"),
            },
            Ok((_, Command::Off)) => {
                ring::set_mask(0);
                String::from("ok")
            }
        };
        let seq = value.split_whitespace().next().unwrap_or("");
        if let Err(e) = xenstore::write_async(ANSWER_PATH, &format!("{seq} {answer}")).await {
            log::warn!("trace: cannot answer in {ANSWER_PATH}: {e}");
        }
    }
}

/// The events recorded so far as Chrome trace-event JSON (only the threads' names when nothing is traced).
pub fn chrome_json() -> String {
    match ring::global() {
        Some(t) => {
            let (events, overwritten) = t.events();
            encode(&events, overwritten)
        }
        None => encode::<&str>(&[], 0),
    }
}

/// A span in the app's own category of the trace: begins here, ends when the value it returns is dropped. Takes a
/// fixed name and, optionally, a number that goes with it.
///
/// ```ignore
/// let _span = sirocco::span!("render page", page_id);
/// ```
#[macro_export]
macro_rules! span {
    ($name:literal) => {
        $crate::trace::span($crate::trace::Category::App, $name, 0)
    };
    ($name:literal, $value:expr) => {
        $crate::trace::span($crate::trace::Category::App, $name, ($value) as u64)
    };
}

/// A point in time in the app's own category of the trace, with a fixed name and optionally a number.
///
/// ```ignore
/// sirocco::mark!("cache miss", key_hash);
/// ```
#[macro_export]
macro_rules! mark {
    ($name:literal) => {
        $crate::trace::event($crate::trace::Category::App, $crate::trace::Phase::Instant, $name, 0)
    };
    ($name:literal, $value:expr) => {
        $crate::trace::event($crate::trace::Category::App, $crate::trace::Phase::Instant, $name, ($value) as u64)
    };
}
