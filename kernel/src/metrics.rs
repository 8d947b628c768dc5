//! The domain's metrics: one registry every app shares with the runtime, read as Prometheus text or as one JSON
//! document (served by [`crate::stats`]).
//!
//! The runtime's own figures are read when a snapshot is taken, nothing counted twice: uptime, build information
//! (Sirocco's version, the app, the boot mode, Xen's version), the heap, where the vCPU's time went
//! ([`crate::profile::Profile`]), tasks, the log ring and the syslog queue ([`crate::logs::stats`]), the boot
//! steps, each vif's counters (netfront's and the TCP stack's,
//! connections by state) and each vbd's (blkfront's), and histograms of ring occupancy seen at each poll. An app
//! adds its own: instruments in `static`s ([`Counter`], [`Gauge`], [`Histogram`]), registered once, counted into
//! with one relaxed atomic operation (no lock, no allocation), and collectors for figures kept elsewhere
//! ([`add_collector`]).
//!
//! ```ignore
//! use sirocco::metrics::{self, Counter, LatencyHistogram};
//! static REQUESTS: Counter = Counter::new("http_requests_total", "HTTP requests answered.");
//! static LATENCY: LatencyHistogram =
//!     LatencyHistogram::latency("http_request_duration_seconds", "Time from a request to its response sent.");
//! metrics::register(&REQUESTS)?;   // once, at start (a name taken by another metric is an error)
//! metrics::register(&LATENCY)?;
//! REQUESTS.inc();                  // on the hot path
//! LATENCY.observe(started.elapsed().as_micros() as u64);
//! ```
//!
//! An app's metrics are in the JSON document under `"app"`, by name (`"app":{"http_requests_total":12}`), unless
//! their [`Desc`] places them elsewhere. The live page ([`crate::stats`]) charts the app's counters whose names
//! end in `_requests_total` as requests per second, and the percentiles of its first latency histogram.

use crate::net::http::MemoryBudget;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};
use sirocco_kernel_logic::metrics::Registry;

pub use sirocco_kernel_logic::metrics::{
    Counter, Desc, Family, Gauge, Histogram, HistogramValue, Json, Kind, Labels, LatencyHistogram, Metric, MetricError,
    Series, Snapshot, Unit, Value, LATENCY_BUCKETS_US, PROMETHEUS_CONTENT_TYPE,
};

static REGISTRY: Registry = Registry::new();
/// The application's crate name (`#[sirocco::main]` records it).
/// Whether a snapshot's problems were logged already (once is enough: they are in every JSON document too).
static PROBLEMS_LOGGED: AtomicBool = AtomicBool::new(false);

/// Registers `metric` for the domain's life; registering the same one again does nothing. Refused when its name
/// is another metric's of another kind, unit, help or JSON place, or with the same labels.
pub fn register(metric: &'static dyn Metric) -> Result<(), MetricError> {
    REGISTRY.register(metric)
}

/// Adds a collector: a function that adds samples to every snapshot (figures kept elsewhere: a store's size, a
/// pool's use), with [`Snapshot::counter`], [`Snapshot::gauge`], [`Snapshot::info`], [`Snapshot::histogram`]. It
/// runs in the task that asked for the snapshot; it must not register metrics itself.
pub fn add_collector(collector: impl Fn(&mut Snapshot) + Send + Sync + 'static) {
    REGISTRY.add_collector(collector)
}

/// Every metric now: the runtime's, then the registered instruments', then the collectors'. What could not be
/// encoded is left out (and logged, the first time; it is also in the JSON document's `"problems"`).
pub fn snapshot() -> Snapshot {
    let mut s = Snapshot::new();
    runtime(&mut s);
    crate::net::collect(&mut s);
    crate::block::collect(&mut s);
    REGISTRY.collect(&mut s);
    if !s.problems().is_empty() && !PROBLEMS_LOGGED.swap(true, Ordering::Relaxed) {
        for p in s.problems() {
            log::warn!("metrics: {p}");
        }
    }
    s
}

/// Every metric as Prometheus text (exposition format 0.0.4, [`PROMETHEUS_CONTENT_TYPE`]).
pub fn prometheus() -> String {
    snapshot().prometheus()
}

/// Every metric as one JSON document.
pub fn json() -> String {
    snapshot().json()
}

/// Adds the figures of an HTTP server's memory budget (`http::MemoryBudget`: what its connections may hold) to
/// every snapshot: `http_budget_{limit,used,peak}_bytes` and `http_budget_refusals_total`, in the JSON document
/// at `"app":{"http_budget":{"limit":...,"used":...,"peak":...,"refusals":...}}`.
pub fn add_http_budget(budget: &'static MemoryBudget) {
    const LIMIT: Desc = Desc::new("http_budget_limit_bytes", "What the HTTP connections may hold at once.")
        .json("app.http_budget.limit");
    const USED: Desc =
        Desc::new("http_budget_used_bytes", "What the HTTP connections hold now.").json("app.http_budget.used");
    const PEAK: Desc =
        Desc::new("http_budget_peak_bytes", "The most the HTTP connections held at once.").json("app.http_budget.peak");
    const REFUSALS: Desc =
        Desc::new("http_budget_refusals_total", "Connections and bodies refused (503) by the budget.")
            .json("app.http_budget.refusals");
    add_collector(move |s| {
        s.gauge(&LIMIT, &[], budget.limit() as i64);
        s.gauge(&USED, &[], budget.used() as i64);
        s.gauge(&PEAK, &[], budget.peak() as i64);
        s.counter(&REFUSALS, &[], budget.refusals() as u64);
    });
}

const UPTIME: Desc =
    Desc::new("sirocco_uptime_seconds", "Time since the guest started.").unit(Unit::Milliseconds).json("uptime_ms");
const BUILD: Desc = Desc::new(
    "sirocco_build_info",
    "What runs: Sirocco's version, the application, how the domain booted, the hypervisor's version.",
)
.json("build");
const HEAP_SIZE: Desc = Desc::new("sirocco_heap_size_bytes", "Bytes the heap manages.").json("heap.size");
const HEAP_USED: Desc = Desc::new("sirocco_heap_used_bytes", "Heap bytes allocated.").json("heap.used");
const HEAP_FREE: Desc = Desc::new("sirocco_heap_free_bytes", "Heap bytes free (maybe fragmented).").json("heap.free");
const PROFILE_UPTIME: Desc = Desc::new("sirocco_profile_uptime_seconds", "Uptime read with the profile counters.")
    .unit(Unit::Nanoseconds)
    .json("profile.uptime_ns")
    .json_only();
const IDLE: Desc = Desc::new(
    "sirocco_cpu_idle_seconds_total",
    "Time the vCPU was given back to Xen, blocked in SCHEDOP_poll until an event or a timer.",
)
.unit(Unit::Nanoseconds)
.json("profile.idle_ns");
const WAKEUPS: Desc =
    Desc::new("sirocco_wakeups_total", "Times the run loop blocked in Xen and was woken.").json("profile.wakeups");
const NET_POLL: Desc = Desc::new(
    "sirocco_cpu_net_poll_seconds_total",
    "Time in the network stacks' polls (netfront RX/TX handling, smoltcp, socket wakes).",
)
.unit(Unit::Nanoseconds)
.json("profile.net_poll_ns");
const NET_POLLS: Desc = Desc::new("sirocco_net_polls_total", "Network stack polls.").json("profile.net_polls");
const OTHER: Desc = Desc::new(
    "sirocco_cpu_other_seconds_total",
    "Time the vCPU ran outside the network polls: the app, the executor, event dispatch.",
)
.unit(Unit::Nanoseconds)
.json("profile.other_ns");
const KICKS: Desc =
    Desc::new("sirocco_kicks_total", "Event-channel notifications sent to backends.").json("profile.kicks");
const TASKS: Desc = Desc::new("sirocco_tasks", "Tasks alive (spawned, not finished).").json("tasks.alive");
const SPAWNED: Desc = Desc::new("sirocco_tasks_spawned_total", "Tasks spawned.").json("tasks.spawned");
const LOG_RING_BYTES: Desc =
    Desc::new("sirocco_log_ring_bytes", "Bytes of records in the in-memory log ring (logring=).")
        .json("logs.ring_bytes");
const LOG_RING_RECORDS: Desc =
    Desc::new("sirocco_log_ring_records", "Records in the in-memory log ring.").json("logs.ring_records");
const LOG_RING_EVICTED: Desc =
    Desc::new("sirocco_log_ring_evicted_total", "Records the log ring forgot to make room for newer ones.")
        .json("logs.ring_evicted");
const SYSLOG_QUEUED: Desc = Desc::new("sirocco_syslog_queued", "Records waiting to be sent to the syslog collector.")
    .json("logs.syslog_queued");
const SYSLOG_SENT: Desc =
    Desc::new("sirocco_syslog_sent_total", "Records sent to the syslog collector.").json("logs.syslog_sent");
const SYSLOG_DROPPED: Desc = Desc::new(
    "sirocco_syslog_dropped_total",
    "Records for the syslog collector dropped because its queue was full (slow or absent collector, no network).",
)
.json("logs.syslog_dropped");
const SYSLOG_ERRORS: Desc = Desc::new(
    "sirocco_syslog_send_errors_total",
    "Records for the syslog collector the network stack refused to send.",
)
.json("logs.syslog_send_errors");
const START: Desc = Desc::new("sirocco_start_time_seconds", "When the guest started, on the wall clock (Unix time).")
    .unit(Unit::Microseconds)
    .json("boot_steps_us.wall_start_us");
const BOOT_STEP: Desc = Desc::new(
    "sirocco_boot_step_seconds",
    "When each step of bringing the guest up first happened, since the start of day.",
)
.unit(Unit::Microseconds)
.json("boot_steps_us");

/// The runtime's own figures (the devices' are `net::collect` and `block::collect`).
fn runtime(s: &mut Snapshot) {
    let profile = crate::profile::Profile::now();
    s.gauge(&UPTIME, &[], (profile.uptime_ns / 1_000_000) as i64);
    let (mode, xen) = (format!("{}", sirocco_boot::boot_mode()), crate::xen_version().map(|x| format!("{x}")));
    s.info(
        &BUILD,
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("app", crate::app_name().unwrap_or("")),
            ("mode", &mode),
            ("xen", xen.as_deref().unwrap_or("")),
        ],
    );
    let heap = crate::heap_stats();
    s.gauge(&HEAP_SIZE, &[], heap.size as i64);
    s.gauge(&HEAP_USED, &[], heap.used as i64);
    s.gauge(&HEAP_FREE, &[], heap.free as i64);
    s.gauge(&PROFILE_UPTIME, &[], profile.uptime_ns as i64);
    s.counter(&IDLE, &[], profile.idle_ns);
    s.counter(&WAKEUPS, &[], profile.wakeups);
    s.counter(&NET_POLL, &[], profile.net_poll_ns);
    s.counter(&NET_POLLS, &[], profile.net_polls);
    s.counter(&OTHER, &[], profile.other_ns());
    s.counter(&KICKS, &[], profile.kicks);
    let tasks = crate::runtime::task_counts();
    s.gauge(&TASKS, &[], tasks.alive as i64);
    s.counter(&SPAWNED, &[], tasks.spawned);
    let logs = crate::logs::stats();
    s.gauge(&LOG_RING_BYTES, &[], logs.ring_bytes as i64);
    s.gauge(&LOG_RING_RECORDS, &[], logs.ring_records as i64);
    s.counter(&LOG_RING_EVICTED, &[], logs.ring_evicted);
    s.gauge(&SYSLOG_QUEUED, &[], logs.syslog_queued as i64);
    s.counter(&SYSLOG_SENT, &[], logs.syslog_sent);
    s.counter(&SYSLOG_DROPPED, &[], logs.syslog_dropped);
    s.counter(&SYSLOG_ERRORS, &[], logs.syslog_send_errors);
    let now_us = crate::runtime::wall_clock().as_micros() as u64;
    s.gauge(&START, &[], now_us.saturating_sub(sirocco_boot::uptime().as_micros() as u64) as i64);
    for (step, us) in crate::boot_steps::steps() {
        s.gauge(&BOOT_STEP, &[("step", step)], us as i64);
    }
}
