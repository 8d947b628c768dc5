//! The Prometheus text exposition format, version 0.0.4: for each family a `# HELP` and a `# TYPE` line, then one
//! line per sample, `name{label="value",...} value`; a histogram's series as `name_bucket{...,le="bound"}`
//! (cumulative, ending with `le="+Inf"`), `name_sum` and `name_count`. Help text escapes `\` and line breaks,
//! label values also `"`. Served as `text/plain; version=0.0.4; charset=utf-8` ([`CONTENT_TYPE`]).

use super::snapshot::{Snapshot, Value};
use super::Unit;
use core::fmt::Write;

/// The content type of the text this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Appends the exposition of every family `snapshot` has for Prometheus.
pub(crate) fn encode(snapshot: &Snapshot, out: &mut alloc::string::String) {
    for family in snapshot.families().iter().filter(|f| f.desc().in_prometheus()) {
        let desc = family.desc();
        let (name, unit) = (desc.name(), desc.unit_of());
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        escape(out, desc.help(), false);
        out.push_str("\n# TYPE ");
        out.push_str(name);
        out.push(' ');
        out.push_str(family.kind().prometheus_type());
        out.push('\n');
        for series in family.series() {
            let labels = &series.labels;
            match &series.value {
                Value::Number(v) => {
                    sample_start(out, name, "", labels, None);
                    scaled(out, v.is_negative(), v.unsigned_abs(), unit);
                }
                Value::Info => {
                    sample_start(out, name, "", labels, None);
                    out.push('1');
                }
                Value::Histogram(h) => {
                    let mut bound = alloc::string::String::new();
                    for &(le, n) in &h.buckets {
                        bound.clear();
                        scaled(&mut bound, false, le, unit);
                        sample_start(out, name, "_bucket", labels, Some(bound.as_str()));
                        let _ = writeln!(out, "{n}");
                    }
                    sample_start(out, name, "_bucket", labels, Some("+Inf"));
                    let _ = writeln!(out, "{}", h.count);
                    sample_start(out, name, "_sum", labels, None);
                    scaled(out, false, h.sum, unit);
                    out.push('\n');
                    sample_start(out, name, "_count", labels, None);
                    let _ = write!(out, "{}", h.count);
                }
            }
            out.push('\n');
        }
    }
}

/// `name{labels,le="..."} ` (no braces without labels).
fn sample_start(
    out: &mut alloc::string::String,
    name: &str,
    suffix: &str,
    labels: &[(&str, alloc::string::String)],
    le: Option<&str>,
) {
    out.push_str(name);
    out.push_str(suffix);
    let extra = le.map(|le| ("le", le));
    let mut all = labels.iter().map(|(k, v)| (*k, v.as_str())).chain(extra).peekable();
    if all.peek().is_some() {
        out.push('{');
        for (i, (k, v)) in all.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape(out, v, true);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

/// Help text (`quotes` false) or a label value (`quotes` true), escaped as the format asks.
fn escape(out: &mut alloc::string::String, s: &str, quotes: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// `magnitude` (negative if `negative`) in `unit`, written in the base unit exactly: 1234 µs is `0.001234`.
pub(crate) fn scaled(out: &mut alloc::string::String, negative: bool, magnitude: u64, unit: Unit) {
    if negative {
        out.push('-');
    }
    let decimals = unit.decimals();
    if decimals == 0 {
        let _ = write!(out, "{magnitude}");
        return;
    }
    let scale = 10u64.pow(decimals);
    let (whole, frac) = (magnitude / scale, magnitude % scale);
    let _ = write!(out, "{whole}");
    if frac != 0 {
        let mut digits = alloc::format!("{frac:0width$}", width = decimals as usize);
        while digits.ends_with('0') {
            digits.pop();
        }
        out.push('.');
        out.push_str(&digits);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Desc, HistogramValue, Unit};
    use super::*;
    use alloc::string::String;

    fn s(unit: Unit, negative: bool, v: u64) -> String {
        let mut out = String::new();
        scaled(&mut out, negative, v, unit);
        out
    }

    #[test]
    fn values_are_written_exactly_in_base_units() {
        assert_eq!(s(Unit::Plain, false, 0), "0");
        assert_eq!(s(Unit::Plain, false, u64::MAX), "18446744073709551615");
        assert_eq!(s(Unit::Plain, true, 5), "-5");
        assert_eq!(s(Unit::Microseconds, false, 1234), "0.001234");
        assert_eq!(s(Unit::Microseconds, false, 2_500_000), "2.5");
        assert_eq!(s(Unit::Microseconds, false, 1_000_000), "1");
        assert_eq!(s(Unit::Nanoseconds, false, 12_000_000_001), "12.000000001");
        assert_eq!(s(Unit::Milliseconds, false, 7), "0.007");
        assert_eq!(s(Unit::Milliseconds, true, 1500), "-1.5");
    }

    #[test]
    fn the_exposition_matches_the_format_byte_for_byte() {
        let mut snap = Snapshot::new();
        let rx = Desc::new("sirocco_vif_rx_packets_total", "Packets received.");
        snap.counter(&rx, &[("vif", "0")], 12);
        snap.counter(&rx, &[("vif", "1")], 3);
        snap.gauge(&Desc::new("sirocco_uptime_seconds", "Time since boot.").unit(Unit::Milliseconds), &[], 61_234);
        snap.info(
            &Desc::new("sirocco_build_info", "What runs: a \\ back\\slash."),
            &[("version", "0.1.0"), ("note", "say \"hi\"\nback\\slash")],
        );
        snap.histogram(
            &Desc::new("http_request_duration_seconds", "Latency.").unit(Unit::Microseconds),
            &[("method", "GET")],
            HistogramValue { buckets: alloc::vec![(100, 2), (250, 3)], count: 4, sum: 1234 },
        );
        snap.gauge(&Desc::new("json_only", "Not here.").json_only(), &[], 1);
        let expected = "\
# HELP sirocco_vif_rx_packets_total Packets received.
# TYPE sirocco_vif_rx_packets_total counter
sirocco_vif_rx_packets_total{vif=\"0\"} 12
sirocco_vif_rx_packets_total{vif=\"1\"} 3
# HELP sirocco_uptime_seconds Time since boot.
# TYPE sirocco_uptime_seconds gauge
sirocco_uptime_seconds 61.234
# HELP sirocco_build_info What runs: a \\\\ back\\\\slash.
# TYPE sirocco_build_info gauge
sirocco_build_info{version=\"0.1.0\",note=\"say \\\"hi\\\"\\nback\\\\slash\"} 1
# HELP http_request_duration_seconds Latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method=\"GET\",le=\"0.0001\"} 2
http_request_duration_seconds_bucket{method=\"GET\",le=\"0.00025\"} 3
http_request_duration_seconds_bucket{method=\"GET\",le=\"+Inf\"} 4
http_request_duration_seconds_sum{method=\"GET\"} 0.001234
http_request_duration_seconds_count{method=\"GET\"} 4
";
        assert_eq!(snap.prometheus(), expected);
    }

    #[test]
    fn an_unlabelled_histogram_has_only_le() {
        let mut snap = Snapshot::new();
        snap.histogram(&Desc::new("h", "h"), &[], HistogramValue { buckets: alloc::vec![(1, 0)], count: 0, sum: 0 });
        assert_eq!(
            snap.prometheus(),
            "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n"
        );
    }

    #[test]
    fn every_line_of_a_big_exposition_is_well_formed() {
        // The lab's strict check, on the host: every sample line is `name({labels})? value`, every family has a
        // TYPE line before its samples.
        let mut snap = Snapshot::new();
        for i in 0..5u64 {
            let labels = [("vif", alloc::format!("{i}")), ("state", String::from("time_wait"))];
            let labels: alloc::vec::Vec<(&'static str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            snap.gauge(&Desc::new("tcp", "TCP sockets."), &labels, i as i64);
            snap.histogram(
                &Desc::new("ring", "Ring.").unit(Unit::Nanoseconds),
                &labels,
                HistogramValue { buckets: alloc::vec![(1, 1), (10, 2)], count: 3, sum: 99 },
            );
        }
        let text = snap.prometheus();
        let mut typed = alloc::vec::Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.push(rest.split(' ').next().unwrap().to_string());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
            let name = series.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
            assert!(typed.iter().any(|t| t == name || t == family), "{line}");
            if let Some(labels) = series.strip_prefix(name) {
                assert!(labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')), "{line}");
            }
        }
    }
}
