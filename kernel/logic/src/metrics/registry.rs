//! [`Registry`]: the instruments registered for the domain's life and the collectors that add samples read from
//! elsewhere, gathered into a [`Snapshot`] on demand.

use super::{Metric, MetricError, Snapshot};
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

/// A collector: adds samples to a snapshot when one is taken (driver counters, the heap, an app's own figures).
pub type Collector = Arc<dyn Fn(&mut Snapshot) + Send + Sync>;

/// Instruments and collectors, in the order they were registered (which is the order of the families in a
/// snapshot, after whatever the caller of [`Registry::collect`] added first). `const`, so it can be a `static`.
pub struct Registry {
    metrics: Mutex<Vec<&'static dyn Metric>>,
    collectors: Mutex<Vec<Collector>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// An empty registry.
    pub const fn new() -> Registry {
        Registry { metrics: Mutex::new(Vec::new()), collectors: Mutex::new(Vec::new()) }
    }

    /// Registers `metric` for good (registering the same one again does nothing). Refused when another metric
    /// of the same name is of another kind, unit, help text or JSON placement ([`MetricError::Conflict`]), or
    /// has the same labels ([`MetricError::Duplicate`]).
    pub fn register(&self, metric: &'static dyn Metric) -> Result<(), MetricError> {
        let mut metrics = self.metrics.lock();
        let name = metric.desc().name();
        for m in metrics.iter() {
            if core::ptr::addr_eq(*m as *const dyn Metric, metric as *const dyn Metric) {
                return Ok(());
            }
            if m.desc().name() != name {
                continue;
            }
            if m.kind() != metric.kind() || m.desc() != metric.desc() {
                return Err(MetricError::Conflict { name, registered: m.kind(), refused: metric.kind() });
            }
            let (a, b) = (m.labels(), metric.labels());
            if a.len() == b.len() && a.iter().all(|l| b.contains(l)) {
                return Err(MetricError::Duplicate { name });
            }
        }
        metrics.push(metric);
        Ok(())
    }

    /// Adds a collector, called by every [`Registry::collect`] after the instruments. It must not register
    /// anything itself.
    pub fn add_collector(&self, collector: impl Fn(&mut Snapshot) + Send + Sync + 'static) {
        self.collectors.lock().push(Arc::new(collector));
    }

    /// Adds every instrument's value, then every collector's samples, to `into`. The registry is not locked while
    /// they run.
    pub fn collect(&self, into: &mut Snapshot) {
        let metrics = self.metrics.lock().clone();
        for m in metrics {
            m.collect(into);
        }
        let collectors = self.collectors.lock().clone();
        for c in collectors {
            c(into);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Counter, Desc, Gauge, Histogram, Kind};
    use super::*;

    #[test]
    fn instruments_then_collectors_in_registration_order() {
        static REGISTRY: Registry = Registry::new();
        static A: Counter = Counter::new("a_total", "a").labels(&[("x", "1")]);
        static A2: Counter = Counter::new("a_total", "a").labels(&[("x", "2")]);
        static G: Gauge = Gauge::new("g", "g");
        static H: Histogram<2> = Histogram::new(Desc::new("h", "h"), [1, 2]);
        REGISTRY.register(&A).unwrap();
        REGISTRY.register(&G).unwrap();
        REGISTRY.register(&A2).unwrap();
        REGISTRY.register(&A).unwrap(); // again: nothing
        REGISTRY.register(&H).unwrap();
        REGISTRY.add_collector(|s: &mut Snapshot| s.gauge(&Desc::new("from_collector", "c"), &[], 9));
        A.inc();
        A2.add(2);
        G.set(-1);
        H.observe(2);
        let mut s = Snapshot::new();
        REGISTRY.collect(&mut s);
        let names: Vec<_> = s.families().iter().map(|f| f.desc().name()).collect();
        assert_eq!(names, ["a_total", "g", "h", "from_collector"]);
        assert_eq!(s.family("a_total").unwrap().series().len(), 2);
        assert!(s.prometheus().contains("a_total{x=\"2\"} 2\n"), "{}", s.prometheus());
        assert!(s.prometheus().contains("h_bucket{le=\"2\"} 1\n"), "{}", s.prometheus());
    }

    #[test]
    fn a_name_is_one_family_and_a_series_once() {
        static REGISTRY: Registry = Registry::new();
        static C: Counter = Counter::new("n", "n");
        static SAME: Counter = Counter::new("n", "n");
        static GAUGE: Gauge = Gauge::new("n", "n");
        static OTHER_HELP: Counter = Counter::new("n", "other").labels(&[("a", "b")]);
        REGISTRY.register(&C).unwrap();
        assert_eq!(REGISTRY.register(&SAME), Err(MetricError::Duplicate { name: "n" }));
        assert_eq!(
            REGISTRY.register(&GAUGE),
            Err(MetricError::Conflict { name: "n", registered: Kind::Counter, refused: Kind::Gauge })
        );
        let e = REGISTRY.register(&OTHER_HELP).unwrap_err();
        assert_eq!(
            e.to_string(),
            "metric n: registered already as a counter (or with another unit or help text); this counter cannot \
             share its name"
        );
    }
}
