//! Metrics: the instruments an app and the runtime count with, the registry that holds them, and the two formats
//! they are read in, all free of the hypervisor so that every byte of output is tested on the host.
//!
//! - [`Desc`]: a metric's name, help text, [`Unit`] and place in the JSON document ([`Json`]), checked when it is
//!   built (in a `static`, a bad name is a compile error).
//! - Instruments, made in `static`s and counted into without allocating or locking: [`Counter`] (only goes up),
//!   [`Gauge`] (set, up and down), [`Histogram`] (observations in fixed buckets: latency, ring occupancy).
//! - [`Registry`]: the instruments ([`Metric`]) and the collectors (functions that add samples read from elsewhere
//!   when a snapshot is taken: driver counters, the heap, a store's figures).
//! - [`Snapshot`]: every family with its series at one moment, which encodes as
//!   [Prometheus text exposition 0.0.4](https://prometheus.io/docs/instrumenting/exposition_formats/)
//!   ([`Snapshot::prometheus`]) and as one JSON document ([`Snapshot::json`]).
//!
//! Values are integers in the metric's [`Unit`]: the JSON document gives them as they are (its keys say the
//! unit: `uptime_ms`, `idle_ns`), Prometheus in base units (a time in seconds, printed exactly: 1234 µs is
//! `0.001234`).
//!
//! ```
//! use sirocco_kernel_logic::metrics::{Counter, LatencyHistogram, Registry, Snapshot};
//! static REQUESTS: Counter = Counter::new("http_requests_total", "HTTP requests answered.");
//! static LATENCY: LatencyHistogram = LatencyHistogram::latency("http_request_duration_seconds", "Time to answer.");
//! static REGISTRY: Registry = Registry::new();
//! REGISTRY.register(&REQUESTS).unwrap();
//! REGISTRY.register(&LATENCY).unwrap();
//! REQUESTS.inc();
//! LATENCY.observe(180); // microseconds
//! let mut snapshot = Snapshot::new();
//! REGISTRY.collect(&mut snapshot);
//! assert!(snapshot.prometheus().contains("http_requests_total 1\n"));
//! assert!(snapshot.json().starts_with("{\"app\":{\"http_requests_total\":1,"));
//! ```

mod desc;
mod instrument;
pub(crate) mod json;
mod prometheus;
mod registry;
mod snapshot;

use core::fmt;

pub use desc::{Desc, Json, Unit};
pub use instrument::{Counter, Gauge, Histogram, Labels, LatencyHistogram, Metric, LATENCY_BUCKETS_US};
pub use prometheus::CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE;
pub use registry::{Collector, Registry};
pub use snapshot::{Family, HistogramValue, Series, Snapshot, Value};

/// The kind of a metric family, as Prometheus types it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A count that only goes up (Prometheus `counter`).
    Counter,
    /// A value that goes up and down (Prometheus `gauge`).
    Gauge,
    /// Observations counted into buckets, with their sum and count (Prometheus `histogram`).
    Histogram,
    /// Facts carried as labels, the value always 1 (Prometheus `gauge`, the "info" pattern: `build_info`); in
    /// the JSON document the labels are string fields.
    Info,
}

impl Kind {
    /// The name Prometheus's `# TYPE` line gives this kind.
    pub fn prometheus_type(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge | Kind::Info => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Why [`Registry::register`] refused a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricError {
    /// Another metric is registered with the same name and the same labels: the two would be one series.
    Duplicate {
        /// The metric's name.
        name: &'static str,
    },
    /// The name is registered already as another kind of metric, or in another unit, or with other help text:
    /// one name is one family, which has one type.
    Conflict {
        /// The metric's name.
        name: &'static str,
        /// The kind registered first.
        registered: Kind,
        /// The kind of the metric refused.
        refused: Kind,
    },
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::Duplicate { name } => {
                write!(f, "metric {name}: another metric with this name and these labels is registered already")
            }
            MetricError::Conflict { name, registered, refused } => write!(
                f,
                "metric {name}: registered already as a {} (or with another unit or help text); this {} cannot \
                 share its name",
                registered.prometheus_type(),
                refused.prometheus_type()
            ),
        }
    }
}

impl core::error::Error for MetricError {}
