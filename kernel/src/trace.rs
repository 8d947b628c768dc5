//! The runtime's tracer (issue 15): `trace=run,net,tcp,...` (or `trace=all`) on the command line records those
//! categories into a ring of the last `tracebuf=N` events (8192 by default, about 320 KiB, allocated only when
//! tracing), read as Chrome trace-event JSON (Perfetto opens it) at `GET /trace` of the stats endpoint
//! (`sirocco::stats`). The ring and the export are `sirocco_kernel_logic::trace`, tested on the host.
//!
//! Trace points so far: the run loop (each round of tasks, each block in `SCHEDOP_poll`), each vif's stack poll
//! with its packet counters, and the app's own ([`event`]). A category that is off costs a relaxed load and a
//! branch.

use crate::runtime;
use alloc::string::String;
use sirocco_boot_logic::cmdline::Cmdline;
use sirocco_kernel_logic::trace::{chrome_json as encode, parse_categories, Event, Tracer};
pub use sirocco_kernel_logic::trace::{Category, Phase};

static TRACER: spin::Once<Tracer> = spin::Once::new();

/// Events kept when `tracebuf=` is not given.
const DEFAULT_EVENTS: usize = 8192;

/// Sets the tracer up from the command line (once, at start of day).
pub(crate) fn init(cmdline: &Cmdline<'_>) {
    let spec = cmdline.get("trace").unwrap_or("");
    let mask = parse_categories(spec).unwrap_or_else(|e| {
        log::warn!("{e}; nothing is traced");
        0
    });
    let capacity = match (mask, cmdline.get("tracebuf")) {
        (0, _) => 0,
        (_, None) => DEFAULT_EVENTS,
        (_, Some(v)) => v.parse().unwrap_or_else(|_| {
            log::warn!("tracebuf={v:?} is not a number of events; keeping {DEFAULT_EVENTS}");
            DEFAULT_EVENTS
        }),
    };
    TRACER.call_once(|| Tracer::new(capacity, mask));
    if mask != 0 {
        log::info!("tracing {spec}: the last {capacity} events are kept (GET /trace)");
    }
}

/// Whether `category` is being traced.
#[inline]
pub fn enabled(category: Category) -> bool {
    TRACER.get().is_some_and(|t| t.enabled(category))
}

/// Records an event now, if its category is traced: `name` is fixed text, `value` one number that goes with it.
#[inline]
pub fn event(category: Category, phase: Phase, name: &'static str, value: u64) {
    if let Some(t) = TRACER.get().filter(|t| t.enabled(category)) {
        t.record(Event { ts_ns: runtime::now_ns(), category, phase, name, value });
    }
}

/// The events recorded so far as Chrome trace-event JSON (only the threads' names when nothing is traced).
pub fn chrome_json() -> String {
    match TRACER.get() {
        Some(t) => {
            let (events, overwritten) = t.events();
            encode(&events, overwritten)
        }
        None => encode(&[], 0),
    }
}
