//! The instruments: [`Counter`], [`Gauge`], [`Histogram`]. Each is built by a `const fn` (so it can be a
//! `static`), counts with relaxed atomic operations (no lock, no allocation: safe on any hot path) and is read by
//! the [`super::Registry`] it was registered with when a snapshot is taken.

use super::desc::valid_label_name;
use super::snapshot::{HistogramValue, Snapshot};
use super::{Desc, Kind, Unit};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Labels fixed when an instrument is built: `&[("vif", "0")]`.
pub type Labels = &'static [(&'static str, &'static str)];

/// What the [`super::Registry`] knows of an instrument.
pub trait Metric: Sync {
    /// Name, help, unit, JSON placement.
    fn desc(&self) -> &Desc;
    /// Counter, gauge, histogram.
    fn kind(&self) -> Kind;
    /// Its labels.
    fn labels(&self) -> Labels;
    /// Adds its current value to `into`.
    fn collect(&self, into: &mut Snapshot);
}

/// Panics (in a `const`, fails to compile) unless every label name is valid and `reserved` is not among them.
const fn check_labels(labels: Labels, reserved: &str) {
    let mut i = 0;
    while i < labels.len() {
        assert!(valid_label_name(labels[i].0), "a label name is [a-zA-Z_][a-zA-Z0-9_]*, not starting with __");
        assert!(!eq(labels[i].0, reserved), "a histogram cannot have a label `le` (its buckets use it)");
        let mut j = 0;
        while j < i {
            assert!(!eq(labels[i].0, labels[j].0), "a label name appears twice");
            j += 1;
        }
        i += 1;
    }
}

const fn eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A count that only goes up: requests, bytes, errors.
pub struct Counter {
    desc: Desc,
    labels: Labels,
    value: AtomicU64,
}

impl Counter {
    /// A counter named `name` (end it in `_total`), meaning `help`; see [`Desc::new`].
    pub const fn new(name: &'static str, help: &'static str) -> Counter {
        Counter::with_desc(Desc::new(name, help))
    }

    /// A counter described by `desc` (a unit, a JSON path).
    pub const fn with_desc(desc: Desc) -> Counter {
        Counter { desc, labels: &[], value: AtomicU64::new(0) }
    }

    /// The same counter with these labels (one series of the family its name makes).
    pub const fn labels(self, labels: Labels) -> Counter {
        check_labels(labels, "");
        Counter { labels, ..self }
    }

    /// Counts one.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n`.
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

impl Metric for Counter {
    fn desc(&self) -> &Desc {
        &self.desc
    }
    fn kind(&self) -> Kind {
        Kind::Counter
    }
    fn labels(&self) -> Labels {
        self.labels
    }
    fn collect(&self, into: &mut Snapshot) {
        into.counter(&self.desc, self.labels, self.get());
    }
}

/// A value that goes up and down: connections open, bytes in use, keys stored.
pub struct Gauge {
    desc: Desc,
    labels: Labels,
    value: AtomicI64,
}

impl Gauge {
    /// A gauge named `name`, meaning `help`; see [`Desc::new`].
    pub const fn new(name: &'static str, help: &'static str) -> Gauge {
        Gauge::with_desc(Desc::new(name, help))
    }

    /// A gauge described by `desc`.
    pub const fn with_desc(desc: Desc) -> Gauge {
        Gauge { desc, labels: &[], value: AtomicI64::new(0) }
    }

    /// The same gauge with these labels.
    pub const fn labels(self, labels: Labels) -> Gauge {
        check_labels(labels, "");
        Gauge { labels, ..self }
    }

    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.value.store(v, Ordering::Relaxed);
    }

    /// Adds `n` (negative: subtracts).
    pub fn add(&self, n: i64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.add(-1);
    }

    /// The value now.
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

impl Metric for Gauge {
    fn desc(&self) -> &Desc {
        &self.desc
    }
    fn kind(&self) -> Kind {
        Kind::Gauge
    }
    fn labels(&self) -> Labels {
        self.labels
    }
    fn collect(&self, into: &mut Snapshot) {
        into.gauge(&self.desc, self.labels, self.get());
    }
}

/// Latency buckets in microseconds, 25 µs to 2.5 s (the bounds of [`Histogram::latency`]).
pub const LATENCY_BUCKETS_US: [u64; 16] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
];

/// A latency histogram in microseconds with the bounds [`LATENCY_BUCKETS_US`]: the type of
/// [`Histogram::latency`], to write in a `static`.
pub type LatencyHistogram = Histogram<{ LATENCY_BUCKETS_US.len() }>;

/// Observations counted into `N` buckets by upper bound (each observation once, in the first bucket whose bound
/// it does not exceed, or only in the total beyond the last), with their sum and count: Prometheus's histogram,
/// from which percentiles over any interval are estimated.
pub struct Histogram<const N: usize> {
    desc: Desc,
    labels: Labels,
    bounds: [u64; N],
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    /// A histogram described by `desc` whose buckets end at `bounds` (strictly increasing, in `desc`'s unit),
    /// with a last one (`+Inf`) for the rest. Panics (in a `const`, fails to compile) if the bounds do not
    /// increase.
    pub const fn new(desc: Desc, bounds: [u64; N]) -> Self {
        let mut i = 1;
        while i < N {
            assert!(bounds[i - 1] < bounds[i], "a histogram's bucket bounds strictly increase");
            i += 1;
        }
        Histogram {
            desc,
            labels: &[],
            bounds,
            buckets: [const { AtomicU64::new(0) }; N],
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    /// The same histogram with these labels (not `le`, which its buckets use).
    pub const fn labels(self, labels: Labels) -> Self {
        check_labels(labels, "le");
        Histogram { labels, ..self }
    }

    /// Counts one observation of `v` (in the histogram's unit).
    pub fn observe(&self, v: u64) {
        let i = self.bounds.partition_point(|&b| b < v);
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(v, Ordering::Relaxed);
    }

    /// The buckets now (cumulative, as Prometheus counts them), the count and the sum. Consistent even if read
    /// while another context observes: the count is never below the last bucket.
    pub fn value(&self) -> HistogramValue {
        let mut cumulative = 0u64;
        let buckets: Vec<(u64, u64)> = self
            .bounds
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, n)| {
                cumulative = cumulative.saturating_add(n.load(Ordering::Relaxed));
                (bound, cumulative)
            })
            .collect();
        let count = self.count.load(Ordering::Relaxed).max(cumulative);
        HistogramValue { buckets, count, sum: self.sum.load(Ordering::Relaxed) }
    }
}

impl LatencyHistogram {
    /// A latency histogram named `name` (end it in `_seconds`: Prometheus sees seconds), meaning `help`,
    /// observing microseconds into [`LATENCY_BUCKETS_US`].
    pub const fn latency(name: &'static str, help: &'static str) -> Self {
        Histogram::new(Desc::new(name, help).unit(Unit::Microseconds), LATENCY_BUCKETS_US)
    }
}

impl<const N: usize> Metric for Histogram<N> {
    fn desc(&self) -> &Desc {
        &self.desc
    }
    fn kind(&self) -> Kind {
        Kind::Histogram
    }
    fn labels(&self) -> Labels {
        self.labels
    }
    fn collect(&self, into: &mut Snapshot) {
        into.histogram(&self.desc, self.labels, self.value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_count() {
        let c = Counter::new("c_total", "c");
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
        let g = Gauge::new("g", "g");
        g.set(5);
        g.inc();
        g.dec();
        g.add(-7);
        assert_eq!(g.get(), -2);
    }

    #[test]
    fn a_histogram_counts_each_observation_in_its_bucket() {
        let h = Histogram::new(Desc::new("h", "h"), [1, 10, 100]);
        for v in [0, 1, 2, 10, 11, 100, 101, 5000] {
            h.observe(v);
        }
        let v = h.value();
        // le 1: 0, 1; le 10: + 2, 10; le 100: + 11, 100; beyond: 101, 5000.
        assert_eq!(v.buckets, [(1, 2), (10, 4), (100, 6)]);
        assert_eq!(v.count, 8);
        assert_eq!(v.sum, 1 + 2 + 10 + 11 + 100 + 101 + 5000);
    }

    #[test]
    fn the_latency_histogram_has_its_bounds_and_unit() {
        static H: LatencyHistogram = LatencyHistogram::latency("x_seconds", "x");
        H.observe(30);
        assert_eq!(H.desc().unit_of(), Unit::Microseconds);
        assert_eq!(H.value().buckets[1], (50, 1));
    }

    #[test]
    #[should_panic(expected = "strictly increase")]
    fn bounds_must_increase() {
        let _ = Histogram::new(Desc::new("h", "h"), [1, 1]);
    }

    #[test]
    #[should_panic(expected = "label `le`")]
    fn a_histogram_refuses_the_label_le() {
        let _ = Histogram::new(Desc::new("h", "h"), [1]).labels(&[("le", "x")]);
    }

    #[test]
    #[should_panic(expected = "twice")]
    fn a_label_appears_once() {
        let _ = Counter::new("c", "c").labels(&[("a", "1"), ("a", "2")]);
    }
}
