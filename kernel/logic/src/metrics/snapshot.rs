//! [`Snapshot`]: every metric family and its series at one moment, as the instruments and collectors gave them,
//! ready to encode. Samples that would make invalid output (a bad label name, a name used as two kinds, the same
//! series twice) are left out and said in [`Snapshot::problems`], never encoded.

use super::desc::valid_label_name;
use super::{Desc, Kind};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A histogram's state: cumulative counts by upper bound (in the metric's unit; the `+Inf` bucket is `count`),
/// the number of observations and their sum.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramValue {
    /// `(upper bound, observations at or below it)`, bounds increasing.
    pub buckets: Vec<(u64, u64)>,
    /// Observations in all.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
}

/// The value of one series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A counter's or a gauge's value, in the family's unit.
    Number(i64),
    /// An info series: its labels are the facts.
    Info,
    /// A histogram's buckets, count and sum.
    Histogram(HistogramValue),
}

/// One series: a family's value for one set of labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    /// Label names and values, in the order given.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: Value,
}

/// The series of one metric name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Family {
    desc: Desc,
    kind: Kind,
    series: Vec<Series>,
}

impl Family {
    /// What the family is.
    pub fn desc(&self) -> &Desc {
        &self.desc
    }
    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }
    /// Its series, in the order they were added.
    pub fn series(&self) -> &[Series] {
        &self.series
    }
}

/// Families in the order their first series was added; see the module's documentation.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    families: Vec<Family>,
    problems: Vec<String>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// Adds a counter's series.
    pub fn counter(&mut self, desc: &Desc, labels: &[(&'static str, &str)], value: u64) {
        self.add(desc, Kind::Counter, labels, Value::Number(i64::try_from(value).unwrap_or(i64::MAX)));
    }

    /// Adds a gauge's series.
    pub fn gauge(&mut self, desc: &Desc, labels: &[(&'static str, &str)], value: i64) {
        self.add(desc, Kind::Gauge, labels, Value::Number(value));
    }

    /// Adds an info series: `labels` are the facts (`version`, `mode`...).
    pub fn info(&mut self, desc: &Desc, labels: &[(&'static str, &str)]) {
        self.add(desc, Kind::Info, labels, Value::Info);
    }

    /// Adds a histogram's series.
    pub fn histogram(&mut self, desc: &Desc, labels: &[(&'static str, &str)], value: HistogramValue) {
        self.add(desc, Kind::Histogram, labels, Value::Histogram(value));
    }

    /// The families, in the order their first series was added.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The family called `name`.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.desc.name() == name)
    }

    /// What was left out, and why (one sentence each).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The Prometheus text exposition (format 0.0.4) of every family the Prometheus text has.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        super::prometheus::encode(self, &mut out);
        out
    }

    /// The JSON document of every family that has a place in it (see [`super::Json`]).
    pub fn json(&self) -> String {
        super::json::encode(self)
    }

    fn add(&mut self, desc: &Desc, kind: Kind, labels: &[(&'static str, &str)], value: Value) {
        let name = desc.name();
        if let Some(why) = label_problem(kind, labels) {
            self.problems.push(format!("metric {name}: {why}; series left out"));
            return;
        }
        let series = Series { labels: labels.iter().map(|&(k, v)| (k, v.to_string())).collect(), value };
        match self.families.iter_mut().find(|f| f.desc.name() == name) {
            None => self.families.push(Family { desc: *desc, kind, series: alloc::vec![series] }),
            Some(f) if f.kind != kind || f.desc != *desc => self.problems.push(format!(
                "metric {name}: given as a {} with another description after a {}; series left out",
                kind.prometheus_type(),
                f.kind.prometheus_type()
            )),
            Some(f) if f.series.iter().any(|s| same_labels(&s.labels, &series.labels)) => {
                self.problems.push(format!("metric {name}: the series {:?} twice; the second left out", series.labels))
            }
            Some(f) => f.series.push(series),
        }
    }
}

/// Why `labels` cannot be a series of a `kind` family, if they cannot.
fn label_problem(kind: Kind, labels: &[(&'static str, &str)]) -> Option<String> {
    for (i, (name, _)) in labels.iter().enumerate() {
        if !valid_label_name(name) {
            return Some(format!("label name {name:?} is not [a-zA-Z_][a-zA-Z0-9_]* (or starts with __)"));
        }
        if kind == Kind::Histogram && *name == "le" {
            return Some("a histogram cannot have a label `le`".into());
        }
        if labels[..i].iter().any(|(other, _)| other == name) {
            return Some(format!("label {name:?} given twice"));
        }
    }
    None
}

/// The same label set, whatever the order.
fn same_labels(a: &[(&'static str, String)], b: &[(&'static str, String)]) -> bool {
    a.len() == b.len() && a.iter().all(|l| b.contains(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Desc = Desc::new("c_total", "c");

    #[test]
    fn series_of_one_name_make_one_family_in_first_seen_order() {
        let mut s = Snapshot::new();
        s.counter(&C, &[("vif", "0")], 1);
        s.gauge(&Desc::new("g", "g"), &[], -3);
        s.counter(&C, &[("vif", "1")], 2);
        let names: Vec<_> = s.families().iter().map(|f| f.desc().name()).collect();
        assert_eq!(names, ["c_total", "g"]);
        assert_eq!(s.family("c_total").unwrap().series().len(), 2);
        assert_eq!(s.family("g").unwrap().series()[0].value, Value::Number(-3));
        assert!(s.problems().is_empty());
    }

    #[test]
    fn what_would_be_invalid_is_left_out_and_said() {
        let mut s = Snapshot::new();
        s.counter(&C, &[("vif", "0")], 1);
        s.counter(&C, &[("vif", "0")], 5); // the same series again
        s.gauge(&C, &[("vif", "2")], 1); // the name as another kind
        s.counter(&Desc::new("c_total", "other help"), &[("vif", "3")], 1); // another description
        s.counter(&Desc::new("d", "d"), &[("__x", "1")], 1);
        s.counter(&Desc::new("d", "d"), &[("a", "1"), ("a", "2")], 1);
        s.histogram(&Desc::new("h", "h"), &[("le", "1")], HistogramValue::default());
        assert_eq!(s.family("c_total").unwrap().series().len(), 1);
        assert!(s.family("d").is_none() && s.family("h").is_none());
        assert_eq!(s.problems().len(), 6, "{:?}", s.problems());
        assert!(s.problems()[0].contains("twice"), "{:?}", s.problems());
        assert!(s.problems()[1].contains("as a gauge"), "{:?}", s.problems());
    }

    #[test]
    fn label_order_does_not_make_another_series() {
        let mut s = Snapshot::new();
        s.counter(&C, &[("a", "1"), ("b", "2")], 1);
        s.counter(&C, &[("b", "2"), ("a", "1")], 1);
        assert_eq!(s.family("c_total").unwrap().series().len(), 1);
    }
}
